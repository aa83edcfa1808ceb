//! The buyer's path: event list, event page, waiting room, checkout, confirmation, and the
//! buyer JSON API beside them.
//!
//! URLs: `/` events, `/sales/{sale}` an event's sale (POST joins it), `/wait/{code}` the
//! waiting room and `/wait/{code}/poll` its HTMX poll, `/checkout/{code}` (POST confirms),
//! `/reservations/{code}/release` give up, `/orders/{code}` the confirmation (or the payment,
//! with Stripe; POST `/orders/{code}/pay` pays it with a card entered on the page, POST
//! `/orders/{code}/cancel` gives an unpaid order up) and
//! `/orders/{code}/tickets.pdf` its tickets. A buyer told the sale is sold out lands on
//! `/sales/{sale}/waitlist`, the waitlist's form; `/waitlist/{code}` is the place in line,
//! which sends the buyer to `/checkout/{code}` while an offer holds tickets for it.
//! `/prequeue/confirm?token=…` is the page a mailed pre-queue link opens (POST takes the place).
//!
//! The session holds a map sale → reservation code and the codes that became orders, only to
//! find them again; what is exact (one reservation per session and sale, its state) lives in
//! the sale's Redis state. The poll never loads the session: the owner comes from the cookie
//! and the status script checks it, one Redis round trip in all.

mod api;
pub mod api_poll;
mod checkout;
mod confirmation;
mod eta;
mod events;
mod prequeue_link;
mod proof;
mod returns;
pub mod waiting;
mod waitlist_api;
mod waitlist_pages;

use std::collections::HashMap;

use poem::{Request, Route, get, post};
use tower_sessions::Session;

pub use api::BuyerApi;
pub use waitlist_api::WaitlistApi;

use crate::sale::{Reservation, ReservationCode, ReservationState, SaleId};
use crate::web::error::WebError;
use crate::web::rate_limit::BuyerLimits;

/// Pages that use the session (mounted inside the session middleware).
pub fn pages() -> Route {
    Route::new()
        .at("/", get(events::list))
        .at("/sales/:sale", get(events::show).post(events::join))
        .at("/wait/:code", get(waiting::page))
        .at("/checkout/:code", get(checkout::page).post(checkout::confirm))
        .at("/reservations/:code/release", post(checkout::release))
        .at("/orders/:code", get(confirmation::page))
        .at("/orders/:code/pay", post(confirmation::pay))
        .at("/orders/:code/cancel", post(confirmation::cancel))
        .at("/orders/:code/return", post(returns::offer))
        .at("/orders/:code/return/withdraw", post(returns::withdraw))
        .at("/orders/:code/tickets.pdf", get(confirmation::tickets_pdf))
        .at(
            "/sales/:sale/waitlist",
            get(waitlist_pages::form).post(waitlist_pages::join),
        )
        .at("/waitlist/:code", get(waitlist_pages::page))
        .at("/waitlist/:code/leave", post(waitlist_pages::leave))
        .at(
            "/prequeue/confirm",
            get(prequeue_link::page).post(prequeue_link::confirm),
        )
}

/// Milliseconds a waiting client should wait before its next poll: about 2 s at the head,
/// 20 ms more per place, at most a minute. The crowd's total poll rate then stays near
/// 50 polls/s per thousand places however long the queue grows.
pub fn poll_after_ms(state: ReservationState, position: u64) -> u64 {
    match state {
        ReservationState::Waiting => position.saturating_mul(20).clamp(2_000, 60_000),
        // At checkout the page runs its own countdown; an API client may check now and then.
        ReservationState::Admitted | ReservationState::Confirming => 5_000,
        _ => 0,
    }
}

/// Milliseconds before the next poll of `r`: in the pre-queue by the time left to the
/// opening, otherwise as [`poll_after_ms`].
pub fn next_poll_ms(r: &Reservation) -> u64 {
    match &r.prequeue {
        Some(ticket) if r.state == ReservationState::Prequeue => ticket.poll_after_ms(r.server_now),
        _ => poll_after_ms(r.state, r.position),
    }
}

/// A flash message carried in the URL of a redirect (`/?notice=expired`): only these names are
/// understood, so a crafted link cannot put text of its choice on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    Expired,
    SoldOut,
    Released,
    Closed,
    Abandoned,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Expired => "expired",
            Notice::SoldOut => "sold_out",
            Notice::Released => "released",
            Notice::Closed => "closed",
            Notice::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Notice> {
        [
            Notice::Expired,
            Notice::SoldOut,
            Notice::Released,
            Notice::Closed,
            Notice::Abandoned,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
    }

    /// The same words the API answers for a reservation in this state.
    pub fn message(self) -> String {
        crate::sale::SaleError::NotAdmitted(self.state()).to_string()
    }

    /// The state of the reservation the notice tells of.
    fn state(self) -> ReservationState {
        match self {
            Notice::Expired => ReservationState::Expired,
            Notice::SoldOut => ReservationState::SoldOut,
            Notice::Released => ReservationState::Released,
            Notice::Closed => ReservationState::Closed,
            Notice::Abandoned => ReservationState::Abandoned,
        }
    }

    fn url(self) -> String {
        format!("/?notice={}", self.as_str())
    }
}

/// The page where a reservation in this state belongs: the waiting room, checkout, its order,
/// or the event list with the notice that says why it ended.
pub fn place_of(r: &Reservation) -> String {
    let code = r.code;
    match r.state {
        ReservationState::Prequeue | ReservationState::Waiting => format!("/wait/{code}"),
        ReservationState::Admitted | ReservationState::Confirming => format!("/checkout/{code}"),
        ReservationState::Confirmed => format!("/orders/{code}"),
        // Sold out: the waitlist's form, for as many tickets.
        ReservationState::SoldOut => format!("/sales/{}/waitlist?quantity={}", code.sale, r.quantity),
        ReservationState::Expired => Notice::Expired.url(),
        ReservationState::Released => Notice::Released.url(),
        ReservationState::Closed => Notice::Closed.url(),
        ReservationState::Abandoned => Notice::Abandoned.url(),
    }
}

/// A value of the query string, without failing the request on a malformed one.
pub fn query_value<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    query_param(req.uri().query()?, name)
}

/// The first value of `name` in the query string `query`, as it came (not decoded).
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query_pairs(query).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The names and values of the query string `query`, in order, as they came (not decoded); a
/// part without `=` is no pair.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter_map(|pair| pair.split_once('='))
}

/// Counts one buyer request that is neither a join nor a poll against its client's limit;
/// first in each handler, before anything costs Redis or Postgres.
fn count_request(limits: &BuyerLimits, req: &Request) -> Result<(), WebError> {
    limits
        .check_request(req)
        .map_err(|retry_after| WebError::RateLimited { retry_after })
}

const RESERVATIONS: &str = "reservations";
const ORDERS: &str = "orders";

/// The session's reservation code for a sale, if it made one.
async fn remembered(
    session: &Session,
    sale: SaleId,
) -> Result<Option<ReservationCode>, tower_sessions::session::Error> {
    let map: HashMap<String, String> = session.get(RESERVATIONS).await?.unwrap_or_default();
    Ok(map.get(&sale.to_string()).and_then(|c| c.parse().ok()))
}

async fn remember(session: &Session, code: ReservationCode) -> Result<(), tower_sessions::session::Error> {
    let mut map: HashMap<String, String> = session.get(RESERVATIONS).await?.unwrap_or_default();
    if map.insert(code.sale.to_string(), code.to_string()).as_deref() != Some(&code.to_string()) {
        crate::web::session::keep_for_its_reservations(session);
        session.insert(RESERVATIONS, map).await?;
    }
    Ok(())
}

async fn remember_order(session: &Session, code: ReservationCode) -> Result<(), tower_sessions::session::Error> {
    let mut codes: Vec<String> = session.get(ORDERS).await?.unwrap_or_default();
    let code = code.to_string();
    if !codes.contains(&code) {
        crate::web::session::keep_for_its_reservations(session);
        codes.push(code);
        session.insert(ORDERS, codes).await?;
    }
    Ok(())
}

async fn has_order(session: &Session, code: ReservationCode) -> Result<bool, tower_sessions::session::Error> {
    let codes: Vec<String> = session.get(ORDERS).await?.unwrap_or_default();
    Ok(codes.contains(&code.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_interval_grows_with_the_position_within_bounds() {
        let w = ReservationState::Waiting;
        assert_eq!(poll_after_ms(w, 1), 2_000);
        assert_eq!(poll_after_ms(w, 100), 2_000);
        assert_eq!(poll_after_ms(w, 500), 10_000);
        assert_eq!(poll_after_ms(w, 1_000_000), 60_000);
        assert!(poll_after_ms(w, 1_000) > poll_after_ms(w, 200));
        assert_eq!(poll_after_ms(ReservationState::Expired, 3), 0);
    }

    #[test]
    fn notices_are_a_closed_list() {
        assert_eq!(Notice::parse("expired"), Some(Notice::Expired));
        assert_eq!(Notice::parse("<script>"), None);
    }
}
