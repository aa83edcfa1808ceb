//! Checkout (`/checkout/{code}`): the held tickets, the total, a countdown to the hold's expiry
//! (Redis's clock is the truth; the page only counts down from what the server said), and the
//! buyer's details. Giving up (`/reservations/{code}/release`) returns the tickets at once.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use tower_sessions::Session;

use super::{Notice, count_request, place_of, remember_order};
use crate::db;
use crate::db::events::Listing;
use crate::sale::{
    Buyer, BuyerInput, FieldErrors, Gender, Owner, Reservation, ReservationCode, ReservationState, SaleError,
};
use crate::startup::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::money::money;
use crate::web::rate_limit::BuyerLimits;
use crate::web::redirect::see_other;
use crate::web::{layout, session};

/// Counts the request against its client's limit, then reads the code and its owner.
pub(super) fn parse(limits: &BuyerLimits, code: &str, req: &Request) -> Result<(ReservationCode, Owner), PageError> {
    count_request(limits, req)?;
    let code: ReservationCode = code.parse()?;
    let owner = session::owner_from_cookie(req).ok_or(SaleError::UnknownReservation)?;
    Ok((code, owner))
}

/// The checkout form with these values and errors, answered with `status`; or, when the
/// reservation is not at checkout, a redirect to where it belongs.
async fn form(
    state: &AppState,
    code: &ReservationCode,
    owner: &Owner,
    input: &BuyerInput,
    errors: &FieldErrors,
    status: StatusCode,
) -> Result<Response, PageError> {
    let r = state.sales.status(code, owner).await?;
    if !matches!(r.state, ReservationState::Admitted | ReservationState::Confirming) {
        return Ok(see_other(&place_of(&r)));
    }
    let l = db::events::listing_of_sale(&state.db, r.code.sale.0)
        .await
        .map_err(WebError::reading("This checkout"))?
        .ok_or(WebError::NotFound)?;
    Ok(view(&r, &l, input, errors).with_status(status).into_response())
}

#[handler]
pub async fn page(state: Data<&AppState>, req: &Request, Path(code): Path<String>) -> Result<Response, PageError> {
    let (code, owner) = parse(&state.limits, &code, req)?;
    let (input, errors) = (BuyerInput::default(), FieldErrors::default());
    form(&state, &code, &owner, &input, &errors, StatusCode::OK).await
}

/// Confirms the order. Invalid details come back on the same form, each error beside its
/// field and every value kept; nothing is changed.
#[handler]
pub async fn confirm(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(code): Path<String>,
    Form(input): Form<BuyerInput>,
) -> Result<Response, PageError> {
    let (code, owner) = parse(&state.limits, &code, req)?;
    let buyer = match Buyer::parse(&input) {
        Ok(b) => b,
        Err(errors) => return form(&state, &code, &owner, &input, &errors, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    match state.sales.confirm(&code, &owner, &buyer).await {
        // A second submit of a confirmed checkout lands on the same order.
        Ok(_) | Err(SaleError::NotAdmitted(ReservationState::Confirmed)) => {
            remember_order(&session, code).await?;
            Ok(see_other(&format!("/orders/{code}")))
        }
        Err(SaleError::NotAdmitted(ReservationState::Expired)) => Ok(see_other(&Notice::Expired.url())),
        Err(SaleError::SoldOut) => Ok(see_other(&Notice::SoldOut.url())),
        Err(SaleError::NotAdmitted(ReservationState::Waiting)) => Ok(see_other(&format!("/wait/{code}"))),
        Err(e) => Err(e.into()),
    }
}

#[handler]
pub async fn release(state: Data<&AppState>, req: &Request, Path(code): Path<String>) -> Result<Response, PageError> {
    let (code, owner) = parse(&state.limits, &code, req)?;
    let r = state.sales.release(&code, &owner).await?;
    Ok(see_other(&place_of(&r)))
}

fn view(r: &Reservation, l: &Listing, input: &BuyerInput, errors: &FieldErrors) -> Markup {
    let left_ms = r
        .expires_at
        .map(|t| (t - r.server_now).num_milliseconds().max(0))
        .unwrap_or(0);
    let left_secs = (left_ms + 999) / 1000;
    let total = l.price_minor * i64::from(r.quantity);
    // Without JavaScript the page reloads when the hold lapses, which leads to the list.
    let head = html! { noscript { meta http-equiv="refresh" content=(left_secs + 1); } };
    let field = |name: &'static str, label: &str, kind: &str, value: &str, extra: Markup| {
        let error = errors.get(name);
        html! {
            div.field.invalid[error.is_some()] {
                label for=(name) { (label) }
                input #(name) name=(name) type=(kind) value=(value) required
                    aria-invalid=[error.map(|_| "true")] { }
                (extra)
                @if let Some(e) = error { p.field-error id={ (name) "-error" } { (e) } }
            }
        }
    };
    let body = html! {
        section.card.checkout {
            h1 { "Checkout" }
            p.muted { (l.title) }
            table.summary {
                tr { th { "Tickets" } td.qty { (r.quantity) } }
                tr { th { "Price each" } td { (money(l.price_minor, &l.currency)) } }
                tr.total { th { "Total" } td { (money(total, &l.currency)) } }
            }
            p.countdown {
                "Your tickets are held for "
                strong #countdown data-expires-in-ms=(left_ms) data-on-expiry={ "/checkout/" (r.code) } {
                    (left_secs / 60) ":" (format!("{:02}", left_secs % 60))
                }
                " minutes."
            }
            @if !errors.is_empty() { p.flash.bad role="alert" { "Please check the fields marked below." } }
            form.details method="post" action={ "/checkout/" (r.code) } novalidate {
                (field("name", "Name", "text", &input.name, html! {}))
                (field("email", "Email", "email", &input.email, html! {}))
                (field("age", "Age", "text", &input.age, html! {}))
                div.field.invalid[errors.get("gender").is_some()] {
                    label for="gender" { "Gender" }
                    select #gender name="gender" required {
                        option value="" { "Choose…" }
                        @for g in Gender::ALL {
                            option value=(g.as_str()) selected[input.gender == g.as_str()] { (g.label()) }
                        }
                    }
                    @if let Some(e) = errors.get("gender") { p.field-error id="gender-error" { (e) } }
                }
                button.button type="submit" { "Buy " (r.quantity) " ticket" @if r.quantity != 1 { "s" } " for " (money(total, &l.currency)) }
            }
            form.leave method="post" action={ "/reservations/" (r.code) "/release" } {
                button.link type="submit" { "Give up these tickets" }
            }
        }
    };
    layout::page_with_head("Checkout", head, body)
}
