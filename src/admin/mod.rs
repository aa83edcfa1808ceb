//! The organizer's portal under `/admin`: accounts, events, ticket sales, the live dashboard,
//! and the organizer JSON API under `/api/v1/admin/`.

use poem::Route;
use poem_openapi::OpenApi;

/// Portal pages (mounted at `/admin`, inside the session middleware).
pub fn pages() -> Route {
    Route::new()
}

/// The organizer JSON API under `/api/v1/admin/`.
pub struct AdminApi;

#[OpenApi]
impl AdminApi {}
