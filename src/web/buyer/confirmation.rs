//! The order confirmation (`/orders/{code}`) and its tickets' PDF
//! (`/orders/{code}/tickets.pdf`), reachable again from the session that made the order, or
//! from anywhere with the signed link of the tickets mail (`?key=`), and from nothing else.

use maud::{Markup, html};
use poem::http::header;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use tower_sessions::Session;

use super::{count_request, has_order, query_value, remember_order};
use crate::db;
use crate::db::events::Listing;
use crate::db::orders::Order;
use crate::sale::{ReservationCode, ReservationState, SaleError};
use crate::startup::AppState;
use crate::tickets::{self, link};
use crate::web::error::{PageError, WebError};
use crate::web::money::money;
use crate::web::rate_limit::BuyerLimits;
use crate::web::{layout, session};

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
    state: Data<&AppState>,
    limits: Data<&BuyerLimits>,
    session: Data<&Session>,
    req: &Request,
    Path(code): Path<String>,
) -> Result<Markup, PageError> {
    count_request(&limits, req)?;
    let order = visible_order(&state, &session, req, &code).await?;
    let listing = listing(&state, &order).await?;
    // The PDF link carries the key this page was opened with, if any.
    let pdf = match query_value(req, link::KEY_PARAM) {
        Some(key) => format!("/orders/{code}/tickets.pdf?{}={key}", link::KEY_PARAM),
        None => format!("/orders/{code}/tickets.pdf"),
    };
    Ok(layout::page("Your order", view(&order, &listing, &pdf)))
}

/// The order's tickets, one PDF with a page per ticket.
#[handler]
pub async fn tickets_pdf(
    state: Data<&AppState>,
    limits: Data<&BuyerLimits>,
    session: Data<&Session>,
    req: &Request,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    count_request(&limits, req)?;
    let order = visible_order(&state, &session, req, &code).await?;
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

fn view(o: &Order, l: &Listing, pdf: &str) -> Markup {
    html! {
        section.card.confirmation {
            h1 { "Thank you! Your order is confirmed." }
            p { "Order number " strong.order-number { (o.number) } }
            table.summary {
                tr { th { "Event" } td { (l.title) } }
                tr { th { "When" } td { (l.starts_at.format("%a %-d %b %Y, %H:%M UTC")) } }
                @if !l.venue.is_empty() { tr { th { "Where" } td { (l.venue) } } }
                tr { th { "Tickets" } td.qty { (o.quantity) } }
                tr { th { "Price each" } td { (money(o.unit_price_minor, &o.currency)) } }
                tr.total { th { "Total" } td { (money(o.total_minor(), &o.currency)) } }
                tr { th { "Name" } td { (o.buyer_name) } }
                tr { th { "Email" } td { (o.buyer_email) } }
                tr { th { "Age" } td { (o.buyer_age) } }
                tr { th { "Gender" } td { (crate::sale::Gender::parse(&o.buyer_gender).map(|g| g.label()).unwrap_or("")) } }
            }
            p { a.button.download href=(pdf) download { "Download your tickets (PDF)" } }
            p.muted { "Keep the order number: it is your proof of purchase. This page stays reachable from this browser." }
            p { a href="/" { "Back to upcoming events" } }
        }
    }
}
