//! `/metrics` in the Prometheus text format, and the counting and timing of every request by
//! its route template.

use std::time::Instant;

use poem::PathPattern;
use poem::http::{Method, StatusCode};
use poem::web::Data;
use poem::{IntoResponse, handler};

use crate::startup::AppState;

/// Reads the live sales' figures (one script call per live sale, on the scrape only, never on
/// a buyer's request) and renders everything. When Redis or Postgres is away the per-sale
/// figures are left out and the rest is still served.
#[handler]
pub async fn metrics(state: Data<&AppState>) -> impl IntoResponse {
    let m = crate::metrics::get();
    match state.sales.live_figures().await {
        Ok(figures) => m.set_sales(&figures),
        Err(e) => {
            tracing::warn!(error = %e, "reading the live sales for /metrics failed");
            m.set_sales(&[]);
        }
    }
    m.render()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .with_status(StatusCode::OK)
}

/// The label of a request's method. Any token is a valid method: only the standard ones get a
/// label of their own, so a client cannot grow the number of series.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times one answered request (the edge, `web::edge`, calls it for every one). The
/// route is the template poem matched (`/wait/:code/poll`; poem-openapi names its parameters
/// `:param0` and so on), so codes and ids in paths never become label values; a path that
/// matched nothing is `unmatched`.
pub fn record(route: Option<&PathPattern>, method: &'static str, status: StatusCode, started: Instant) {
    // A path that only reached the catch-all nest of the pages has an empty template.
    let route = route.map(|p| &*p.0).filter(|r| !r.is_empty()).unwrap_or("unmatched");
    crate::metrics::get().http_request(route, method, status.as_u16(), started.elapsed());
}
