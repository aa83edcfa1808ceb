//! The list of upcoming events (`/`) and an event's page (`/sales/{sale}`), whose form joins
//! the sale.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Notice, count_request, place_of, proof, query_value, remember, remembered};
use crate::db;
use crate::db::events::Listing;
use crate::sale::{
    Joining, LINK_LIFETIME, PrequeueEmail, PrequeueWindow, Quantity, SaleError, SaleFigures, SaleId, SaleState,
};
use crate::startup::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::money::money;
use crate::web::redirect::see_other;
use crate::web::session;
use crate::web::{assets, layout};

/// Most events the list shows.
const LIST_LIMIT: i64 = 50;
/// How stale the availability on the list may be: a second, against a crowd reloading it.
const LIST_FIGURES_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

#[handler]
pub async fn list(state: Data<&AppState>, req: &Request) -> Result<Markup, PageError> {
    count_request(&state.limits, req)?;
    let listings = db::events::upcoming_listings(&state.db, LIST_LIMIT)
        .await
        .map_err(WebError::reading("The list of events"))?;
    let mut rows = Vec::with_capacity(listings.len());
    for l in listings {
        // One sale that cannot be read (a bad row) leaves the list, not the whole page; Redis
        // or Postgres away is still a 503.
        match state
            .sales
            .recent_figures(SaleId(l.sale_id), LIST_FIGURES_MAX_AGE)
            .await
        {
            Ok(figures) => rows.push((l, figures)),
            Err(e) if e.is_unavailable() => return Err(WebError::reading("The list of events")(e).into()),
            Err(e) => tracing::warn!(sale = %l.sale_id, error = %e, "a listed sale cannot be read; left out"),
        }
    }
    let notice = query_value(req, "notice").and_then(Notice::parse);
    Ok(layout::page("Upcoming events", list_view(notice, &rows)))
}

fn list_view(notice: Option<Notice>, rows: &[(Listing, SaleFigures)]) -> Markup {
    html! {
        @if let Some(n) = notice { p.flash role="status" { (n.message()) } }
        h1 { "Upcoming events" }
        @if rows.is_empty() {
            p.muted { "No events on sale right now. Come back soon." }
        }
        ul.events {
            @for (l, f) in rows {
                li.card.event {
                    a.title href={ "/sales/" (l.sale_id) } { (l.title) }
                    p.when { (when(l.starts_at)) @if !l.venue.is_empty() { " · " (l.venue) } }
                    p.meta {
                        span.price { (money(l.price_minor, &l.currency)) }
                        " "
                        (availability(f))
                    }
                }
            }
        }
    }
}

/// On sale / opens at … / few left / sold out, from the live figures.
fn availability(f: &SaleFigures) -> Markup {
    let unsold = f.capacity - f.sold;
    let (class, text) = if f.state == SaleState::Closed {
        ("closed", "Sales closed".to_string())
    } else if unsold <= 0 {
        ("soldout", "Sold out".to_string())
    } else if f.opens_at > f.server_now {
        ("soon", format!("Opens {}", when(f.opens_at)))
    } else if f.state == SaleState::Paused {
        ("soon", "Sales paused".to_string())
    } else if f.available() == 0 {
        ("few", "All held right now: join the queue".to_string())
    } else if f.available() <= (f.capacity / 10).max(5) {
        ("few", format!("Few left: {}", f.available()))
    } else {
        ("onsale", "On sale".to_string())
    };
    html! { span class={ "badge " (class) } { (text) } }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%a %-d %b %Y, %H:%M UTC").to_string()
}

pub(super) async fn listing(state: &AppState, sale: &str) -> Result<(SaleId, Listing), PageError> {
    let sale: SaleId = sale.parse()?;
    let listing = state
        .sales
        .listing(sale)
        .await
        .map_err(WebError::reading("This event"))?;
    Ok((sale, listing))
}

#[handler]
pub async fn show(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(sale): Path<String>,
) -> Result<Markup, PageError> {
    count_request(&state.limits, req)?;
    let (sale, l) = listing(&state, &sale).await?;
    let figures = state.sales.figures(sale).await?;
    // Offer the way back only to a reservation that is still live, read from Redis.
    let mut current = None;
    if let (Some(code), Some(owner)) = (remembered(&session, sale).await?, session::owner_from_cookie(req)) {
        match state.sales.status(&code, &owner).await {
            Ok(r) if r.state.is_live() => current = Some(place_of(&r)),
            Ok(_) | Err(SaleError::UnknownReservation) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Before the opening only: the pre-queue's window and the draw's commitment.
    let prequeue = match figures.opens_at > figures.server_now {
        true => state.sales.prequeue_window(sale).await?,
        false => None,
    };
    Ok(event_page_with(
        &state,
        &l,
        &figures,
        current.as_deref(),
        None,
        prequeue.as_ref(),
    ))
}

/// The pre-queue's notice on the event page: when it opens, that places are drawn at the
/// opening, and the draw's commitment once published.
fn prequeue_notice(w: &PrequeueWindow) -> Markup {
    html! {
        p.flash.prequeue role="status" {
            "Pre-queue from " (when(w.from)) ": everyone who joins before the opening at " (when(w.opens_at))
            " gets a place in line by a public draw at the opening, whenever they joined."
            @if let Some(c) = &w.commitment {
                " Draw commitment: " code.commitment { (c) }
            }
        }
    }
}

fn event_page_with(
    state: &AppState,
    l: &Listing,
    f: &SaleFigures,
    current: Option<&str>,
    error: Option<&str>,
    prequeue: Option<&PrequeueWindow>,
) -> Markup {
    let max = state.sales.max_per_order();
    let pow = state.puzzles.settings().joins_per_min > 0;
    let body = html! {
        article.card.event-page {
            h1 { (l.title) }
            p.when { (when(l.starts_at)) @if !l.venue.is_empty() { " · " (l.venue) } }
            p.meta { span.price { (money(l.price_minor, &l.currency)) " per ticket" } " " (availability(f)) }
            @for para in l.description.split("\n\n") { p { (para) } }
            @if let Some(w) = prequeue { (prequeue_notice(w)) }
            @if f.capacity - f.sold <= 0 && f.state != SaleState::Closed {
                p.flash role="status" {
                    "Sold out. Tickets that come back go to the waitlist, in order. "
                    a href={ "/sales/" (l.sale_id) "/waitlist" } { "Join the waitlist" }
                }
            }
            @if let Some(url) = current {
                p.flash role="status" { "You already have a reservation for this event. " a href=(url) { "Continue" } }
            } @else {
                // With the proof of work on, pow.js asks for a challenge before sending the form.
                form.buy method="post" action={ "/sales/" (l.sale_id) }
                    data-challenge=[pow.then(|| format!("/api/v1/sales/{}/challenge", l.sale_id))] {
                    @if pow { input type="hidden" name="proof" value=""; }
                    label for="quantity" { "Tickets" }
                    select #quantity name="quantity" {
                        @for n in 1..=max { option value=(n) { (n) } }
                    }
                    @if prequeue.is_some_and(|w| w.one_place_per_email) {
                        label for="email" { "Email" }
                        input #email type="email" name="email" required maxlength=(crate::email::MAX_BYTES)
                            autocomplete="email";
                        p.hint { "One place per email: we mail you a link, and your place is made when you open it." }
                    }
                    @if let Some(e) = error { p.field-error role="alert" { (e) } }
                    button.button type="submit" { "Get tickets" }
                    @if pow { p.pow-status role="status" {} }
                }
                @if pow { script src=(assets::url("pow.js")) defer {} }
            }
        }
    };
    layout::page(&l.title, body)
}

#[derive(Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    quantity: String,
    /// The solved proof of work, when the sale is busy (see `crate::pow`).
    #[serde(default)]
    proof: String,
    /// The buyer's email, which a pre-queue join of a sale that gives one place per verified
    /// email needs (see `sale::verified_email`).
    #[serde(default)]
    email: String,
}

/// The event page again, with the pre-queue's notice and form as before the join, and the
/// reason the join was refused.
async fn refused(
    state: &AppState,
    sale: SaleId,
    l: &Listing,
    message: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    let figures = state.sales.figures(sale).await?;
    let prequeue = match figures.opens_at > figures.server_now {
        true => state.sales.prequeue_window(sale).await?,
        false => None,
    };
    let page = event_page_with(state, l, &figures, None, Some(message), prequeue.as_ref());
    Ok(page.with_status(status).into_response())
}

/// What a buyer who asked for a pre-queue place by email is told: the same whatever the
/// address (one that holds a place already gets no second link, and is not told so here).
fn link_mailed_page(l: &Listing, email: &str) -> Markup {
    let minutes = LINK_LIFETIME.as_secs() / 60;
    let body = html! {
        section.card.link-mailed {
            h1 { "Check your mail" }
            p role="status" {
                "We are mailing a link to " strong { (email) } " for a place in the pre-queue of " (l.title) "."
            }
            p {
                "Open it within " (minutes) " minutes, in this browser or another: your place is made in the browser "
                "that opens it. One email holds one place in this sale; asking again for an email that holds one "
                "sends nothing."
            }
            p { a href={ "/sales/" (l.sale_id) } { "Back to the event" } }
        }
    };
    layout::page("Check your mail", body)
}

/// Joins the sale and sends the buyer where the reservation stands: checkout when it is
/// quiet, the waiting room otherwise. Joining again returns the same reservation.
#[handler]
pub async fn join(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(sale): Path<String>,
    Form(form): Form<JoinForm>,
) -> Result<Response, PageError> {
    // First, before the session or anything else is read.
    state
        .limits
        .check_join(req)
        .map_err(|retry_after| WebError::RateLimited { retry_after })?;
    let (sale, l) = listing(&state, &sale).await?;
    let quantity = Quantity::parse(&form.quantity, state.sales.max_per_order());
    let email = Some(form.email.trim())
        .filter(|e| !e.is_empty())
        .map(PrequeueEmail::parse)
        .transpose();
    let (quantity, email) = match (quantity, email) {
        (Ok(q), Ok(e)) => (q, e),
        (Err(e), _) | (_, Err(e)) => {
            return refused(&state, sale, &l, &e.to_string(), crate::web::error::sale_status(&e)).await;
        }
    };
    let (owner, made) = session::owner_and_when(&session).await?;
    match proof::check_join(&state, sale, &owner, Some(&form.proof)).await {
        Ok(()) => {}
        Err(e @ WebError::Pow(_)) => return refused(&state, sale, &l, &e.message(), e.status()).await,
        Err(e) => return Err(e.into()),
    }
    let r = match state
        .sales
        .join_with_email(sale, &owner, made, quantity, email.as_ref())
        .await
    {
        Ok(Joining::Placed(r)) => r,
        Ok(Joining::LinkMailed) => return Ok(link_mailed_page(&l, form.email.trim()).into_response()),
        Err(e @ SaleError::EmailRequired) => {
            return refused(&state, sale, &l, &e.to_string(), crate::web::error::sale_status(&e)).await;
        }
        Err(e) => return Err(e.into()),
    };
    remember(&session, r.code).await?;
    let mut to = place_of(&r);
    if r.state == crate::sale::ReservationState::Waiting {
        // Where the buyer started, so the waiting room can show how far it has come.
        to = format!("{to}?start={}", r.position);
    }
    Ok(see_other(&to))
}
