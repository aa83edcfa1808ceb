//! The buyer's path: event list, event page, waiting room, checkout, confirmation, and the
//! buyer JSON API beside them.

use poem::Route;
use poem_openapi::OpenApi;

/// Pages that use the session (mounted inside the session middleware).
pub fn pages() -> Route {
    Route::new()
}

/// The buyer JSON API under `/api/v1/`.
pub struct BuyerApi;

#[OpenApi]
impl BuyerApi {}
