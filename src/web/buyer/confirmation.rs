//! The order confirmation (`/orders/{code}`) and its tickets' PDF
//! (`/orders/{code}/tickets.pdf`), reachable again from the session that made the order, or
//! from anywhere with the signed link of the tickets mail (`?key=`), and from nothing else.
//!
//! With Stripe, an order awaiting payment shows the Payment Element instead (`assets/pay.js`;
//! where Stripe.js has none, the card element, whose card [`pay`] confirms), and a button that
//! cancels it. Each view of such an order asks Stripe for its PaymentIntent and applies a
//! success found there, as the webhook does: a lost webhook loses no payment.
//!
//! Every handler here takes [`VisibleOrder`] first: the request counted, and the order found
//! only for the session that made it or the signed link.

use maud::{Markup, html};
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{FromRequest, Request, RequestBody, Response, handler};
use serde_json::json;
use tower_sessions::Session;
use tracing::warn;

use super::{count_request, has_order, query_value, remember_order};
use crate::db;
use crate::db::events::Listing;
use crate::db::orders::Order;
use crate::payment::{Outlook, PaymentError, PaymentIntent, Payments, StripeError, stripe};
use crate::sale::{ReservationCode, ReservationState, SaleError};
use crate::startup::AppState;
use crate::tickets::{self, link};
use crate::web::error::{PageError, WebError};
use crate::web::money::money;
use crate::web::redirect::see_other;
use crate::web::{layout, session};

/// What every handler of an order's pages starts with: the request counted against its
/// client's limit (before anything costs Redis or Postgres), then the order of the path's
/// `code`, if this request may see it ([`visible_order`]); a 429 or a 404 otherwise, before the
/// handler runs.
pub struct VisibleOrder {
    pub order: Order,
    /// The reservation code as the path has it, for the order's own links.
    pub code: String,
}

impl<'a> FromRequest<'a> for VisibleOrder {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = <Data<&AppState>>::from_request(req, body).await?;
        count_request(&state.limits, req).map_err(PageError::from)?;
        let session = <Data<&Session>>::from_request(req, body).await?;
        let Path(code) = <Path<String>>::from_request(req, body).await?;
        let order = visible_order(&state, &session, req, &code).await?;
        Ok(VisibleOrder { order, code })
    }
}

/// The order of `code`, if this request may see it: a valid signed key, or the session that
/// made it. Anything else is a 404, as for an order that does not exist.
async fn visible_order(state: &AppState, session: &Session, req: &Request, code: &str) -> Result<Order, PageError> {
    let code: ReservationCode = code.parse()?;
    let order = db::orders::find_by_reservation(&state.db, code.token)
        .await
        .map_err(WebError::reading("Your order"))?
        .filter(|o| o.sale_id == code.sale.0)
        .ok_or(WebError::NotFound)?;
    // A key that does not verify (forged, or signed with an earlier secret) proves nothing;
    // the session may still prove the order is this browser's.
    if query_value(req, link::KEY_PARAM).is_some_and(|key| link::verify(&state.settings.secret, &code, key)) {
        return Ok(order);
    }
    // The session lists its orders; an order made through the API by the same browser is
    // proven by the sale's own record of the owner instead.
    if !has_order(session, code).await? {
        let owner = session::owner_from_cookie(req).ok_or(WebError::NotFound)?;
        match state.sales.status(&code, &owner).await {
            Ok(r) if r.state == ReservationState::Confirmed => remember_order(session, code).await?,
            Ok(_) | Err(SaleError::UnknownReservation) => return Err(WebError::NotFound.into()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(order)
}

async fn listing(state: &AppState, order: &Order) -> Result<Listing, PageError> {
    Ok(db::events::listing_of_sale(&state.db, order.sale_id)
        .await
        .map_err(WebError::reading("Your order"))?
        .ok_or(WebError::NotFound)?)
}

#[handler]
pub async fn page(
    VisibleOrder { mut order, code }: VisibleOrder,
    state: Data<&AppState>,
    req: &Request,
) -> Result<Markup, PageError> {
    let listing = listing(&state, &order).await?;
    let key = key_query(req);
    let pdf = format!("/orders/{code}/tickets.pdf{key}");
    if order.state == "awaiting_payment"
        && let Some(payments) = &state.payments
    {
        match payments.look_up(&state.db, &order).await {
            Ok(Outlook::Charged) => order = reread(&state, &order).await?,
            Ok(Outlook::Unpaid(intent)) => {
                let urls = PaymentUrls {
                    back: format!("{}/orders/{code}{key}", state.settings.public_url),
                    pay: format!("/orders/{code}/pay{key}"),
                    cancel: format!("/orders/{code}/cancel{key}"),
                };
                let body = awaiting(&order, &listing, payments, &intent, &urls);
                return Ok(layout::page_with_head(
                    "Pay for your order",
                    payment_head(payments),
                    body,
                ));
            }
            Err(e) => {
                warn!(order = %order.number, error = %e, "Stripe is unavailable for the order page");
                return Ok(layout::page("Your order", unavailable(&order, &listing)));
            }
        }
    }
    if order.state == "cancelled" {
        return Ok(layout::page("Order cancelled", cancelled(&order, &listing)));
    }
    if order.state == "returned" {
        return Ok(layout::page("Order returned", returned(&order, &listing)));
    }
    // Still awaiting payment here: Stripe has money that Postgres could not yet apply to the
    // order (it failed, or the intent is not the order's as it should be), or Stripe is no
    // longer configured. Nothing to pay on this page, and no tickets yet.
    if !order.tickets_valid() {
        return Ok(layout::page("Your order", unavailable(&order, &listing)));
    }
    let returns = db::returns::of_order(&state.db, order.id)
        .await
        .map_err(WebError::reading("Your order"))?;
    let allowed = db::returns::allowed(&state.db, crate::sale::SaleId(order.sale_id))
        .await
        .map_err(WebError::reading("Your order"))?;
    let returns = super::returns::section(&order, returns, allowed, &format!("/orders/{code}"), &key);
    Ok(layout::page("Your order", view(&order, &listing, &pdf, returns)))
}

/// The buyer gives up paying: the order is cancelled if it still awaits payment (a paid one
/// stays paid), and the tickets go back to the sale at once.
#[handler]
pub async fn cancel(
    VisibleOrder { order, code }: VisibleOrder,
    state: Data<&AppState>,
    req: &Request,
) -> Result<Response, PageError> {
    if let Some(payments) = &state.payments {
        payments
            .cancel(&state.db, &state.sales, &order)
            .await
            .map_err(SaleError::from)?;
    }
    let key = key_query(req);
    Ok(see_other(&format!("/orders/{code}{key}")))
}

#[derive(serde::Deserialize)]
pub struct PayForm {
    #[serde(default)]
    payment_method: String,
}

/// The page pays with the card the buyer entered, where Stripe.js confirms no payment itself
/// (a Stripe.js without the Payment Element; `assets/pay.js`): the shop confirms the order's
/// PaymentIntent with that card. Answers JSON for the page's script: `{"status": …}` as Stripe
/// left the intent (`succeeded`, or `requires_action` for the buyer's authentication), 402
/// with Stripe's words for a declined card, 409 for an order that awaits no payment (the page
/// reloads and shows it), 422 for text that names no card, 503 when Stripe does not answer.
#[handler]
pub async fn pay(
    VisibleOrder { order, .. }: VisibleOrder,
    state: Data<&AppState>,
    Form(form): Form<PayForm>,
) -> Result<Response, PageError> {
    let answer = |status: StatusCode, body: serde_json::Value| {
        Response::builder()
            .status(status)
            .content_type("application/json")
            .body(body.to_string())
    };
    let Some(payments) = state.payments.as_ref().filter(|_| order.state == "awaiting_payment") else {
        let message = "This order awaits no payment.";
        return Ok(answer(
            StatusCode::CONFLICT,
            json!({ "state": order.state, "message": message }),
        ));
    };
    if !stripe::is_card_id(&form.payment_method) {
        let message = "The card could not be read; please enter it again.";
        return Ok(answer(StatusCode::UNPROCESSABLE_ENTITY, json!({ "message": message })));
    }
    Ok(match payments.pay_with(&state.db, &order, &form.payment_method).await {
        Ok(intent) => answer(StatusCode::OK, json!({ "status": intent.status })),
        Err(PaymentError::Stripe(StripeError::Refused { status: 402, message })) => {
            answer(StatusCode::PAYMENT_REQUIRED, json!({ "message": message }))
        }
        Err(e) => {
            warn!(order = %order.number, error = %e, "paying with the buyer's card failed");
            let message = "Payment is unavailable right now; nothing was charged. Please try again in a moment.";
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "message": message }))
        }
    })
}

/// `?key=…` when the request was opened with the signed link's key: links and redirects from
/// the order page keep it, so a buyer without the session stays able to see the order.
pub(super) fn key_query(req: &Request) -> String {
    query_value(req, link::KEY_PARAM)
        .map(|key| format!("?{}={key}", link::KEY_PARAM))
        .unwrap_or_default()
}

async fn reread(state: &AppState, order: &Order) -> Result<Order, PageError> {
    Ok(db::orders::find(&state.db, order.id)
        .await
        .map_err(SaleError::from)?
        .ok_or(WebError::NotFound)?)
}

/// Stripe.js and the page's own script that mounts the Payment Element.
fn payment_head(payments: &Payments) -> Markup {
    html! {
        script src=(payments.js_url) {}
        script src=(crate::web::assets::url("pay.js")) defer {}
    }
}

fn summary(o: &Order, l: &Listing) -> Markup {
    html! {
        table.summary {
            tr { th { "Event" } td { (l.title) } }
            tr { th { "When" } td { (l.starts_at.format("%a %-d %b %Y, %H:%M UTC")) } }
            @if !l.venue.is_empty() { tr { th { "Where" } td { (l.venue) } } }
            tr { th { "Tickets" } td.qty { (o.quantity) } }
            tr { th { "Price each" } td { (money(o.unit_price_minor, &o.currency)) } }
            tr.total { th { "Total" } td { (money(o.total_minor(), &o.currency)) } }
        }
    }
}

/// Where the payment form leads: back to the order page (Stripe's return, and after paying),
/// the shop's own confirmation with a card (`pay`), and giving up (`cancel`).
struct PaymentUrls {
    back: String,
    pay: String,
    cancel: String,
}

fn awaiting(o: &Order, l: &Listing, payments: &Payments, intent: &PaymentIntent, urls: &PaymentUrls) -> Markup {
    html! {
        section.card.payment {
            h1 { "Pay for your order" }
            p { "Order number " strong.order-number { (o.number) } }
            (summary(o, l))
            @if let Some(due) = o.payment_due_at {
                p.countdown { "Please pay by " strong #payment-due { (due.format("%H:%M:%S UTC")) } "; after that the order is cancelled and its tickets go back on sale." }
            }
            form #payment-form data-publishable-key=(payments.publishable_key)
                data-client-secret=(intent.client_secret) data-return-url=(urls.back) data-pay-url=(urls.pay) {
                div #payment-element {}
                button.button type="submit" { "Pay " (money(o.total_minor(), &o.currency)) }
                p #payment-message role="alert" {}
            }
            form.leave method="post" action=(urls.cancel) {
                button.link type="submit" { "Cancel this order" }
            }
        }
    }
}

fn unavailable(o: &Order, l: &Listing) -> Markup {
    html! {
        section.card.payment {
            h1 { "Payment is unavailable right now" }
            p { "Order number " strong.order-number { (o.number) } }
            (summary(o, l))
            p { "Your tickets stay reserved until the payment deadline. Please reload this page in a moment." }
        }
    }
}

fn cancelled(o: &Order, l: &Listing) -> Markup {
    let why = html! { p { "It was not paid in time, or it was cancelled. Its tickets went back on sale; nothing was charged." } };
    ended(o, l, "This order was cancelled", why)
}

fn returned(o: &Order, l: &Listing) -> Markup {
    let why = html! {
        p #returned { "You offered its tickets for return and other buyers bought them: they are no longer valid"
            @if o.payment_intent.is_some() { ", and their price is refunded to your card" } "." }
    };
    ended(o, l, "This order was returned", why)
}

/// An order whose tickets are no longer the buyer's, and why.
fn ended(o: &Order, l: &Listing, heading: &str, why: Markup) -> Markup {
    html! {
        section.card.confirmation {
            h1 { (heading) }
            p { "Order number " strong.order-number { (o.number) } }
            (summary(o, l))
            (why)
            p { a href="/" { "Back to upcoming events" } }
        }
    }
}

/// The order's tickets, one PDF with a page per ticket.
#[handler]
pub async fn tickets_pdf(
    VisibleOrder { order, .. }: VisibleOrder,
    state: Data<&AppState>,
) -> Result<Response, PageError> {
    if !order.tickets_valid() {
        return Err(WebError::NotFound.into());
    }
    let pdf = tickets::order_pdf(&state.db, &order)
        .await
        .map_err(SaleError::from)?
        .ok_or(WebError::NotFound)?;
    Ok(Response::builder()
        .content_type("application/pdf")
        .header(header::CONTENT_DISPOSITION, tickets::pdf_disposition(&order))
        // It is the buyer's: no shared cache may keep it.
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(pdf))
}

fn view(o: &Order, l: &Listing, pdf: &str, returns: Markup) -> Markup {
    html! {
        section.card.confirmation {
            h1 { "Thank you! Your order is " (if o.state == "paid" { "paid" } else { "confirmed" }) "." }
            p { "Order number " strong.order-number { (o.number) } }
            (summary(o, l))
            table.summary {
                tr { th { "Name" } td { (o.buyer_name) } }
                tr { th { "Email" } td { (o.buyer_email) } }
                tr { th { "Age" } td { (o.buyer_age) } }
                tr { th { "Gender" } td { (crate::sale::Gender::parse(&o.buyer_gender).map(|g| g.label()).unwrap_or("")) } }
            }
            p { a.button.download href=(pdf) download { "Download your tickets (PDF)" } }
            (returns)
            p.muted { "Keep the order number: it is your proof of purchase. This page stays reachable from this browser." }
            p { a href="/" { "Back to upcoming events" } }
        }
    }
}
