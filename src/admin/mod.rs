//! The organizer's portal under `/admin`: accounts, events, ticket sales, the live dashboard,
//! and the organizer JSON API under `/api/v1/admin/`.
//!
//! # Layout
//!
//! - `service` — the organizer service: every operation on events, sales, figures, orders,
//!   API tokens and invites, with the creation limits and the ownership checks. Pages and API
//!   are thin adapters over it.
//! - `extract` — what handlers take instead of repeating it: the signed-in `Organizer`, the
//!   `ApiOrganizer` of a bearer token, a `CsrfForm`.
//! - `auth` — sign-up, sign-in, sign-out, password hashing, sign-in rate limits.
//! - `csrf` — the token every portal form carries.
//! - `forms` — parsing of what organizers type, shared by pages and API.
//! - `events`, `sales`, `dashboard`, `tokens`, `invites` — the portal's pages; `views` the
//!   pieces they share.
//! - `sampler` — the samples of every live sale at a fixed interval, one per turn whichever
//!   instance takes it; `series` the dashboard's and the API's series, funnel and estimates.
//! - `checkin` — the door: ticket scans, as a page and as the operation the API calls.
//! - `api` — the JSON API over the same service, with bearer tokens.
//! - `error` — the one error type, rendered as a page here and as JSON in `api`.
//!
//! Another organizer's event, sale, dashboard or orders answer 404, exactly like missing
//! ones, so ids cannot be probed.

mod api;
mod auth;
mod checkin;
mod csrf;
mod dashboard;
mod error;
mod events;
mod extract;
pub mod forms;
mod invites;
mod sales;
pub mod sampler;
pub mod series;
pub mod service;
mod tokens;
mod views;
mod waitlist;

use poem::{Endpoint, EndpointExt, Route, get, post};

pub use api::AdminApi;
pub use auth::{FORMS_PER_MINUTE, PER_ACCOUNT_BURST, PER_CLIENT_BURST, create_organizer};
pub use error::AdminError;
pub use service::{Organizer, issue_invite, issue_token};

/// Portal pages (mounted at `/admin`, inside the session middleware). The sign-in limits
/// live here, one set per running app.
pub fn pages() -> impl Endpoint {
    Route::new()
        .at("/", get(events::list))
        .at("/sign-up", get(auth::sign_up_form).post(auth::sign_up))
        .at("/sign-in", get(auth::sign_in_form).post(auth::sign_in))
        .at("/sign-out", post(auth::sign_out))
        .at("/events/new", get(events::new_form).post(events::create_from_form))
        .at("/events/:event", get(events::show).post(events::edit_from_form))
        .at("/events/:event/sales", post(sales::create_from_form))
        .at("/sales/:sale", get(dashboard::show))
        .at("/sales/:sale/figures", get(dashboard::figures_part))
        .at("/sales/:sale/series", get(dashboard::series_part))
        .at("/sales/:sale/state", post(sales::state_from_form))
        .at("/sales/:sale/offer-window", post(waitlist::offer_window_from_form))
        .at("/sales/:sale/capacity", post(waitlist::capacity_from_form))
        .at("/sales/:sale/returns", post(waitlist::returns_from_form))
        .at("/sales/:sale/orders.csv", get(dashboard::orders_csv))
        .at(
            "/sales/:sale/check-in",
            get(checkin::page).post(checkin::scan_from_form),
        )
        .at("/tokens", get(tokens::list).post(tokens::create))
        .at("/tokens/:token/revoke", post(tokens::revoke))
        .at("/invites", get(invites::list).post(invites::create))
        .data(auth::SignInLimits::default())
}
