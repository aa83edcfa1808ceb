//! The web edge: routes, views and the rendering of errors.

pub mod health;
pub mod session;

use poem::{Route, get};

/// Routes that need no session.
pub fn routes() -> Route {
    Route::new()
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
}
