//! The waiting room: a page (`/wait/{code}`) and its HTMX poll (`/wait/{code}/poll`).
//!
//! The poll is the hot path of a busy sale: it runs outside the session middleware, takes the
//! owner from the session cookie alone, and makes exactly one Redis script call (`status`),
//! which both checks that the code belongs to this session and admits buyers from the head.

use maud::{Markup, PreEscaped, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, handler};

use super::{eta, next_poll_ms, place_of, query_pairs};
use crate::db;
use crate::sale::{PLACE_HEX, PrequeueTicket, Reservation, ReservationCode, ReservationState, SaleError};
use crate::startup::AppState;
use crate::web::error::{FragmentError, PageError, WebError};
use crate::web::rate_limit;
use crate::web::redirect::redirect;
use crate::web::{layout, session};

/// The poll of `code` with the place in line it carries (`?place=`): answered in-process far
/// from the head, by Redis near it (see `TicketSales::poll`).
async fn status(state: &AppState, req: &Request, code: &str, query: &PollQuery<'_>) -> Result<Reservation, SaleError> {
    let code: ReservationCode = code.parse()?;
    let owner = session::owner_from_cookie(req).ok_or(SaleError::UnknownReservation)?;
    state.sales.poll(&code, query.place, &owner).await
}

/// The query parameter of a waiting room's URLs that carries the buyer's place in line.
const PLACE: &str = "place";

/// What a waiting room's URL carries, read in one pass over its query: the place in line the
/// buyer started from (see `events::join`) and its signed place (`?place=`), each the first
/// given. The place is read as it came: `TicketSales::poll` checks it.
struct PollQuery<'a> {
    start: Option<u64>,
    place: Option<&'a str>,
}

impl<'a> PollQuery<'a> {
    fn of(req: &'a Request) -> Self {
        let mut query = PollQuery {
            start: None,
            place: None,
        };
        for (name, value) in query_pairs(req.uri().query().unwrap_or_default()) {
            match name {
                "start" if query.start.is_none() => query.start = value.parse().ok(),
                PLACE if query.place.is_none() => query.place = Some(value),
                _ => {}
            }
        }
        query
    }

    /// The start, never nearer the head than the buyer is now.
    fn start_at(&self, position: u64) -> u64 {
        self.start.unwrap_or(position).max(position)
    }

    /// The place for the URL of a fragment that retries: only a place's hex digits, as it
    /// goes back into a URL unescaped.
    fn place_to_repeat(&self) -> Option<&'a str> {
        self.place.filter(|p| crate::sale::Place::parse(p).is_some())
    }
}

/// The URL a waiting room's fragment polls: the code, the place the buyer started from and
/// the signed place in line, each if known. Hex digits and decimal figures only, so it is
/// written as it is, `&` already escaped for the attribute: it is most of a far poll's answer,
/// and maud's escaping of it cost more than the rest of the fragment.
fn poll_url(code: &ReservationCode, start: Option<u64>, place: Option<&str>) -> PreEscaped<String> {
    let mut url = String::with_capacity(POLL_URL_BYTES);
    url.push_str("/wait/");
    url.push_str(code.encode(&mut [0; 64]));
    url.push_str("/poll");
    let mut separator = "?";
    if let Some(start) = start {
        url.push_str("?start=");
        url.push_str(itoa::Buffer::new().format(start));
        separator = "&amp;";
    }
    if let Some(place) = place {
        url.push_str(separator);
        url.push_str(PLACE);
        url.push('=');
        url.push_str(place);
    }
    PreEscaped(url)
}

/// Room for the longest poll URL: the code, a start of 20 digits and a place.
const POLL_URL_BYTES: usize = "/wait//poll?start=&amp;place=".len() + 64 + 20 + PLACE_HEX;

#[handler]
pub async fn page(state: Data<&AppState>, req: &Request, Path(code): Path<String>) -> Result<Response, PageError> {
    // Reloading this page is how a browser without JavaScript polls: it counts as a poll.
    if let Err(wait) = state.limits.check_poll(req) {
        state.presence.note_refused_poll(req, &code);
        return Ok(slow_down_page(wait));
    }
    let query = PollQuery::of(req);
    let r = status(&state, req, &code, &query).await?;
    if !matches!(r.state, ReservationState::Waiting | ReservationState::Prequeue) {
        return Ok(redirect(req, &place_of(&r)));
    }
    let title = db::events::listing_of_sale(&state.db, r.code.sale.0)
        .await
        .map_err(WebError::reading("The waiting room"))?
        .map(|l| l.title)
        .unwrap_or_default();
    let start = query.start_at(r.position);
    let rate = eta::admitted_per_minute(&state.sales, &r);
    let refresh_secs = next_poll_ms(&r).div_ceil(1000);
    // Without JavaScript the page reloads itself instead of polling.
    let head = html! { noscript { meta http-equiv="refresh" content=(refresh_secs); } };
    let heading = match r.state {
        ReservationState::Prequeue => "Pre-queue",
        _ => "Waiting room",
    };
    let body = html! {
        section.card.waiting {
            h1 { (heading) }
            @if !title.is_empty() { p.muted { (title) } }
            @if let Some(ticket) = &r.prequeue {
                (prequeue_fragment(&r, ticket))
            } @else {
                (fragment(&r, start, rate))
            }
            form.leave method="post" action={ "/reservations/" (r.code) "/release" } {
                button.link type="submit" {
                    @if r.prequeue.is_some() { "Leave the pre-queue" } @else { "Leave the queue" }
                }
            }
        }
    };
    Ok(layout::page_with_head(heading, head, body).into_response())
}

/// Too many reloads: says so, and reloads itself once the wait is over.
fn slow_down_page(wait: std::time::Duration) -> Response {
    let secs = rate_limit::retry_secs(wait);
    let head = html! { meta http-equiv="refresh" content=(secs); };
    let body = html! {
        section.card.waiting {
            h1 { "Waiting room" }
            p.flash role="status" { (WebError::RateLimited { retry_after: wait }.message()) }
            p.muted { "This page reloads by itself; your place in line is kept." }
        }
    };
    layout::page_with_head("Waiting room", head, body)
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_header(poem::http::header::RETRY_AFTER, secs)
        .into_response()
}

/// The poll: the fragment again, or `HX-Redirect` once the buyer's turn has come (or the sale
/// has nothing left for them).
#[handler]
pub async fn poll(state: Data<&AppState>, req: &Request, Path(code): Path<String>) -> Result<Response, FragmentError> {
    let query = PollQuery::of(req);
    if let Err(wait) = state.limits.check_poll(req) {
        // The buyer is here all the same: it keeps its place (see `presence`).
        state.presence.note_refused_poll(req, &code);
        // Too fast: the fragment says so and keeps polling, slower, by itself.
        let code: ReservationCode = code.parse()?;
        let secs = rate_limit::retry_secs(wait);
        let message = WebError::RateLimited { retry_after: wait }.message();
        return Ok(retry_later(code, &query, StatusCode::TOO_MANY_REQUESTS, secs, &message));
    }
    let r = match status(&state, req, &code, &query).await {
        Ok(r) => r,
        // A passing fault must not end the polling: the fragment keeps trying by itself.
        Err(e) if e.is_unavailable() => {
            let code: ReservationCode = code.parse()?;
            return Ok(retry_later(
                code,
                &query,
                StatusCode::SERVICE_UNAVAILABLE,
                RETRY_SECS,
                "We cannot reach the queue right now; this page keeps trying.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(ticket) = &r.prequeue {
        return Ok(prequeue_fragment(&r, ticket).into_response());
    }
    if r.state != ReservationState::Waiting {
        return Ok(redirect(req, &place_of(&r)));
    }
    let rate = eta::admitted_per_minute(&state.sales, &r);
    Ok(fragment(&r, query.start_at(r.position), rate).into_response())
}

/// The pre-queue's countdown: when the sale opens, the receipt and the draw's commitment. It
/// polls by the time left; after the draw the poll answers with the place in line.
fn prequeue_fragment(r: &Reservation, ticket: &PrequeueTicket) -> Markup {
    let delay = next_poll_ms(r);
    let left = (ticket.opens_at - r.server_now).num_seconds().max(0);
    let countdown = match left {
        0 => "any moment now: the draw is under way".to_string(),
        s if s < 120 => format!("in {s} seconds"),
        s if s < 7200 => format!("in {} minutes", s / 60),
        s => format!("in {} hours", s / 3600),
    };
    html! {
        div #queue.queue.prequeue
            hx-get={ "/wait/" (r.code) "/poll" }
            hx-trigger={ "load delay:" (delay) "ms" }
            hx-swap="outerHTML"
            aria-live="polite"
        {
            p.position { "You are in the pre-queue." }
            p {
                "The sale opens at "
                time datetime=(ticket.opens_at.to_rfc3339()) { (ticket.opens_at.format("%H:%M:%S UTC")) }
                ", " strong.countdown data-opens-at=(ticket.opens_at.to_rfc3339()) { (countdown) } "."
            }
            p.muted {
                "At the opening everyone in the pre-queue gets a place in line by a public draw that "
                "nobody chooses, not even the shop: joining earlier in the pre-queue gives no advantage. "
                "Keep this page open; it moves on by itself."
            }
            p { "Your receipt:" }
            p { code.receipt { (ticket.receipt) } }
            p {
                "The draw's commitment (SHA-256 of its secret seed, revealed after the draw): "
                code.commitment { (ticket.commitment) }
            }
            p.muted {
                "After the draw, check your place with "
                code { "boxoffice verify-draw --sale " (r.code.sale) " --receipt '" (ticket.receipt) "'" }
                "."
            }
        }
    }
}

/// The live part of the waiting room; it replaces itself after `poll_after_ms`. The wait is
/// estimated from `admitted_per_minute`, which the page carries along for machines to read.
fn fragment(r: &Reservation, start: u64, admitted_per_minute: Option<f64>) -> Markup {
    let delay = next_poll_ms(r);
    let mut place_text = [0; PLACE_HEX];
    let place = r.waiting_place().map(|p| p.encode(&mut place_text) as &str);
    // Share of the way from where the buyer started to the head of the line.
    let progress = if start <= 1 {
        100
    } else {
        ((start - r.position).saturating_mul(100) / (start - 1)).min(100)
    };
    html! {
        div #queue.queue
            hx-get=(poll_url(&r.code, Some(start), place))
            hx-trigger={ "load delay:" (delay) "ms" }
            hx-swap="outerHTML"
            aria-live="polite"
        {
            p.position {
                // Far from the head the place is a bound from above, read without asking the
                // queue itself: it is said so, and it becomes exact near the head.
                "You are " @if r.approximate { "about " } "number " strong.pos { (r.position) } " in line "
                span.muted { "(" (r.waiting) " waiting)" }
            }
            @if r.approximate {
                p.muted.approximate { "Far from the front your place is an estimate: you are never further back than it says. It is exact once you are near." }
            }
            progress max="100" value=(progress) { (progress) "%" }
            p {
                "Estimated wait: "
                strong.eta data-admitted-per-minute=[admitted_per_minute] {
                    (eta::describe(admitted_per_minute, r.position))
                }
            }
            p.muted {
                "You asked for " (r.quantity) " ticket" @if r.quantity != 1 { "s" } ". "
                "Keep this page open: it moves to checkout by itself when it is your turn."
            }
        }
    }
}

/// Seconds until the next try after the queue could not be read.
const RETRY_SECS: u64 = 5;

/// The fragment when the poll cannot be answered now (Redis away: 503; too many polls: 429):
/// HTMX still swaps it in (see `app.js`), and it polls again after `secs`.
fn retry_later(code: ReservationCode, query: &PollQuery<'_>, status: StatusCode, secs: u64, message: &str) -> Response {
    let body = html! {
        div #queue.queue
            hx-get=(poll_url(&code, query.start, query.place_to_repeat()))
            hx-trigger={ "load delay:" (secs * 1000) "ms" }
            hx-swap="outerHTML"
            aria-live="polite"
        {
            p.flash { (message) }
        }
    };
    body.with_status(status)
        .with_header(poem::http::header::RETRY_AFTER, secs)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_queue_keeps_the_poll_going() {
        let code = ReservationCode::new(crate::sale::SaleId::new());
        let query = PollQuery {
            start: Some(7),
            place: None,
        };
        let resp = retry_later(code, &query, StatusCode::SERVICE_UNAVAILABLE, RETRY_SECS, "later");
        assert_eq!(resp.status(), poem::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "5");
    }
}
