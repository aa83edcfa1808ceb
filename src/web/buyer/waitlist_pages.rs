//! The waitlist's pages: `/sales/{sale}/waitlist` (the join form: quantity and email; where a
//! buyer told "sold out" lands), `/waitlist/{code}` (the place in line; while an offer holds
//! tickets for it, it is the checkout; with the offer mail's signed `?key=` it moves the place
//! to the browser that opened it) and `/waitlist/{code}/leave`.

use maud::{Markup, html};
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use tower_sessions::Session;

use super::checkout::parse;
use super::events::listing;
use super::{count_request, query_value};
use crate::db::events::Listing;
use crate::sale::waitlist::{WaitlistEmail, WaitlistEntry, WaitlistState};
use crate::sale::{Quantity, ReservationCode, SaleError};
use crate::startup::AppState;
use crate::tickets::link;
use crate::web::error::{PageError, WebError, sale_status};
use crate::web::layout;
use crate::web::redirect::see_other;
use crate::web::session;

/// The page of a waitlist entry.
pub fn entry_url(code: &ReservationCode) -> String {
    format!("/waitlist/{code}")
}

#[derive(Deserialize, Default)]
pub struct JoinForm {
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    email: String,
}

#[handler]
pub async fn form(state: Data<&AppState>, req: &Request, Path(sale): Path<String>) -> Result<Markup, PageError> {
    count_request(&state.limits, req)?;
    let (_, l) = listing(&state, &sale).await?;
    let input = JoinForm {
        quantity: query_value(req, "quantity").unwrap_or("1").to_string(),
        email: String::new(),
    };
    Ok(join_page(&state, &l, &input, None))
}

/// Joins the waitlist and sends the buyer to its place in line. A refusal (not sold out, the
/// email taken, a bad field) comes back on the form with the values kept.
#[handler]
pub async fn join(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(sale): Path<String>,
    Form(input): Form<JoinForm>,
) -> Result<Response, PageError> {
    state
        .limits
        .check_join(req)
        .map_err(|retry_after| WebError::RateLimited { retry_after })?;
    let (sale, l) = listing(&state, &sale).await?;
    let joined = async {
        let quantity = Quantity::parse(&input.quantity, state.sales.max_per_order())?;
        let email = WaitlistEmail::parse(&input.email)?;
        let owner = session::owner_of(&session).await.map_err(|_| SaleError::BadOwner)?;
        state.sales.join_waitlist(sale, &owner, quantity, &email).await
    };
    match joined.await {
        Ok(e) => Ok(see_other(&entry_url(&e.code))),
        Err(e) if e.is_unavailable() || matches!(e, SaleError::Protocol { .. } | SaleError::BadOwner) => Err(e.into()),
        Err(e) => {
            let refused = join_page(&state, &l, &input, Some(&e.to_string()));
            Ok(refused.with_status(sale_status(&e)).into_response())
        }
    }
}

fn join_page(state: &AppState, l: &Listing, input: &JoinForm, error: Option<&str>) -> Markup {
    let max = state.sales.max_per_order();
    let body = html! {
        section.card.waitlist {
            h1 { "Waitlist" }
            p.muted { (l.title) }
            p { "Sorry, this event is sold out. Tickets may come back: holds that lapse, orders not paid, buyers who cannot go. Join the waitlist and they are offered to it in order, each offer held for you for a while; we write to you when it is your turn." }
            form.details method="post" action={ "/sales/" (l.sale_id) "/waitlist" } novalidate {
                div.field {
                    label for="quantity" { "Tickets" }
                    select #quantity name="quantity" {
                        @for n in 1..=max {
                            option value=(n) selected[input.quantity == n.to_string()] { (n) }
                        }
                    }
                }
                div.field {
                    label for="email" { "Email" }
                    input #email name="email" type="email" value=(input.email) required;
                }
                @if let Some(e) = error { p.field-error role="alert" { (e) } }
                button.button type="submit" { "Join the waitlist" }
            }
            p { a href={ "/sales/" (l.sale_id) } { "Back to the event" } }
        }
    };
    layout::page("Waitlist", body)
}

/// The place in line; an offer sends the buyer to its checkout, a taken one to its order.
#[handler]
pub async fn page(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    if let Some(key) = query_value(req, link::KEY_PARAM) {
        // The signed link of the offer mail: the place moves to this browser, then the page
        // is shown without the key (which stays out of its history and referrers).
        count_request(&state.limits, req)?;
        let code: ReservationCode = code.parse()?;
        if !link::verify_waitlist_entry(&state.settings.secret, &code, key) {
            return Err(SaleError::UnknownWaitlistEntry.into());
        }
        let owner = session::owner_of(&session).await?;
        state.sales.claim_waitlist_entry(&code, &owner).await?;
        return Ok(see_other(&entry_url(&code)));
    }
    let (code, owner) = parse(&state.limits, &code, req)?;
    let e = state.sales.waitlist_status(&code, &owner).await?;
    match e.state {
        WaitlistState::Offered => return Ok(see_other(&format!("/checkout/{code}"))),
        WaitlistState::Taken => return Ok(see_other(&format!("/orders/{code}"))),
        _ => {}
    }
    let l = state
        .sales
        .listing(code.sale)
        .await
        .map_err(WebError::reading("The waitlist"))?;
    Ok(entry_page(&e, &l).into_response())
}

fn entry_page(e: &WaitlistEntry, l: &Listing) -> Markup {
    let refresh = super::waitlist_api::waitlist_poll_after_ms(e.state).div_ceil(1000);
    let head = html! { @if refresh > 0 { meta http-equiv="refresh" content=(refresh); } };
    let body = html! {
        section.card.waitlist {
            h1 { "Waitlist" }
            p.muted { (l.title) }
            @match e.state {
                WaitlistState::Waiting => {
                    p.position { "You are number " strong { (e.position) } " on the waitlist (" (e.on_list) " waiting) for " (e.quantity) " ticket" @if e.quantity != 1 { "s" } "." }
                    @if !e.fits {
                        p.flash role="status" { "Fewer tickets are unsold than you asked for: you keep your place, and people behind you are offered the few that come back until enough do." }
                    }
                    p { "When tickets come back for you, we write to you and this page becomes your checkout." }
                    form.leave method="post" action={ "/waitlist/" (e.code) "/leave" } {
                        button.link type="submit" { "Leave the waitlist" }
                    }
                }
                WaitlistState::Lapsed => {
                    p { "Your offer ended unbought, and its tickets went to the next in line." }
                    p { a href={ "/sales/" (l.sale_id) "/waitlist" } { "Join the waitlist again" } }
                }
                _ => {
                    p { "You left the waitlist." }
                    p { a href={ "/sales/" (l.sale_id) "/waitlist" } { "Join the waitlist again" } }
                }
            }
        }
    };
    layout::page_with_head("Waitlist", head, body)
}

/// Leaves the waitlist, or turns the offer down (from the checkout of an offer, "give up"
/// does the same through the reservation).
#[handler]
pub async fn leave(state: Data<&AppState>, req: &Request, Path(code): Path<String>) -> Result<Response, PageError> {
    let (code, owner) = parse(&state.limits, &code, req)?;
    state.sales.leave_waitlist(&code, &owner).await?;
    Ok(see_other(&entry_url(&code)))
}
