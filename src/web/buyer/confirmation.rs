//! The order confirmation (`/orders/{code}`), reachable again from the session that made the
//! order and from no other.

use maud::{Markup, html};
use poem::web::{Data, Path};
use poem::{Request, handler};
use tower_sessions::Session;

use super::{count_request, has_order, money, remember_order};
use crate::db;
use crate::db::events::Listing;
use crate::db::orders::Order;
use crate::sale::{ReservationCode, ReservationState, SaleError};
use crate::startup::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::rate_limit::BuyerLimits;
use crate::web::{layout, session};

#[handler]
pub async fn page(
    state: Data<&AppState>,
    limits: Data<&BuyerLimits>,
    session: Data<&Session>,
    req: &Request,
    Path(code): Path<String>,
) -> Result<Markup, PageError> {
    count_request(&limits, req)?;
    let code: ReservationCode = code.parse()?;
    let order = db::orders::find_by_reservation(&state.db, code.token)
        .await
        .map_err(WebError::reading("Your order"))?
        .filter(|o| o.sale_id == code.sale.0)
        .ok_or(WebError::NotFound)?;
    // The session lists its orders; an order made through the API by the same browser is
    // proven by the sale's own record of the owner instead.
    if !has_order(&session, code).await? {
        let owner = session::owner_from_cookie(req).ok_or(WebError::NotFound)?;
        match state.sales.status(&code, &owner).await {
            Ok(r) if r.state == ReservationState::Confirmed => remember_order(&session, code).await?,
            Ok(_) | Err(SaleError::UnknownReservation) => return Err(WebError::NotFound.into()),
            Err(e) => return Err(e.into()),
        }
    }
    let listing = db::events::listing_of_sale(&state.db, code.sale.0)
        .await
        .map_err(WebError::reading("Your order"))?
        .ok_or(WebError::NotFound)?;
    Ok(layout::page("Your order", view(&order, &listing)))
}

fn view(o: &Order, l: &Listing) -> Markup {
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
            p.muted { "Keep the order number: it is your proof of purchase. This page stays reachable from this browser." }
            p { a href="/" { "Back to upcoming events" } }
        }
    }
}
