//! The web edge: routes, views and the rendering of errors.

pub mod allow;
pub mod api_fields;
pub mod assets;
pub mod buyer;
pub mod client;
pub mod edge;
pub mod error;
pub mod health;
pub mod json_body;
pub mod layout;
pub mod metrics;
pub mod money;
pub mod presence;
pub mod rate_limit;
pub mod redirect;
pub mod request_id;
pub mod security;
pub mod session;
pub mod webhook;

use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Route, get};
use poem_openapi::{OpenApi, OpenApiService};
use tower_sessions_redis_store::RedisStore;

use crate::startup::AppState;

/// The whole application. Only the page routes run inside the session middleware: the hot
/// poll and the health checks never touch the session store. Every response carries the
/// security headers; every buyer request is rate-limited per client in its handler. A handler
/// that panics answers 500 (JSON under `/api/v1`, a page elsewhere) for its own request alone,
/// inside the layers that add the headers.
///
/// The layers around every request are written to keep its future small (it is moved into
/// a box for each request): each looks at the request and hands it on before it makes its
/// future, the inner one mapped in place (`FutureExt::map`), and what every request needs on
/// its way in and out is one layer, the edge (`edge`). A layer written as an `async fn`
/// keeps the request (a kilobyte) beside the inner future, an `async` block that awaits a
/// future made before it holds that future twice, and each `.data()` layer is one more: the
/// request's future was 11 kB, now under 4 kB (see BENCHMARKS.md). What every handler needs
/// is in the one [`AppState`].
///
/// The organizer's portal (`organizer_pages`, mounted at `/admin` inside the session
/// middleware) and its API (`organizer_api`, in the same OpenAPI document) are given by the
/// caller: they use this module's pieces (layout, client address, limits), so this module
/// does not depend on them.
pub fn app(
    state: AppState,
    organizer_pages: impl Endpoint + 'static,
    organizer_api: impl OpenApi + 'static,
) -> impl Endpoint {
    let api = OpenApiService::new(
        (buyer::BuyerApi, buyer::WaitlistApi, organizer_api),
        "boxoffice",
        env!("CARGO_PKG_VERSION"),
    )
    .server("/api/v1");
    let allowed = allow::AllowedMethods::from_spec(&api.spec());
    let security = security::SecurityHeaders::app(state.payments.as_ref());
    let sessions = session::layer(
        session::SessionsWithMinted::new(
            RedisStore::new(state.session_redis.clone()),
            state.settings.secret.clone(),
        ),
        state.settings.cookie_secure,
    );
    let pages = Route::new()
        .nest("/admin", organizer_pages)
        .nest("/", buyer::pages())
        .with(sessions);
    Route::new()
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/metrics", get(metrics::metrics))
        .at("/assets/:version/:file", get(assets::asset))
        .nest("/api/openapi.json", api.spec_endpoint())
        .nest("/api/docs", api.swagger_ui().with(security::SecurityHeaders::docs()))
        // The hot poll of the waiting room: outside the session middleware on purpose.
        .at("/wait/:code/poll", get(buyer::waiting::poll))
        // Stripe's deliveries carry no session; the signature is their proof.
        .at("/webhooks/stripe", poem::post(webhook::stripe))
        .nest(
            "/api/v1",
            allow::with_allow(api.into_endpoint().catch_all_error(error::api_catch_all), allowed)
                .with(CatchPanic::new().with_handler(error::panicked_json)),
        )
        .nest("/", pages)
        .data(state.clone())
        .with(CatchPanic::new().with_handler(error::panicked_page))
        .with(edge::Edge::new(security).with_short_poll(buyer::api_poll::ShortPoll::new(state, "/api/v1")))
}

#[cfg(test)]
mod tests {
    use poem::Request;
    use poem::endpoint::make_sync;

    use super::*;

    /// The size of the future `ep` makes for a request.
    fn future_size(ep: &impl Endpoint) -> usize {
        std::mem::size_of_val(&ep.call(Request::default()))
    }

    /// The edge and the `Allow` layer add to the request's future what they keep for the
    /// response (a start time, an id, a URI), never the request itself: written as an `async
    /// fn`, a layer would keep the request beside the inner future and the future, moved into
    /// its box for every request, would grow by a request a layer (see `app`).
    #[test]
    fn the_edge_layers_keep_no_request_in_their_future() {
        let inner = || make_sync(|_| "ok");
        let bare = future_size(&inner());
        let request = std::mem::size_of::<Request>();
        for (layer, size) in [
            (
                "edge",
                future_size(&inner().with(edge::Edge::new(security::SecurityHeaders::app(None)))),
            ),
            (
                "security headers",
                future_size(&inner().with(security::SecurityHeaders::docs())),
            ),
            (
                "Allow",
                future_size(&allow::with_allow(inner(), allow::AllowedMethods::default())),
            ),
        ] {
            assert!(
                size - bare < request,
                "{layer}: {size} bytes over the {bare} of its inner future (a request is {request})"
            );
        }
    }
}
