//! Returns on the order page: a buyer who can no longer go offers some of the order's tickets
//! back (`POST /orders/{code}/return`), where the organizer allows it, and may withdraw the
//! return until another buyer has bought them (`POST /orders/{code}/return/withdraw`). The
//! operations are the sale's (`sale::returns`); the same rules answer the JSON API.

use maud::{Markup, html};
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::confirmation::{VisibleOrder, key_query};
use crate::db::orders::Order;
use crate::db::returns::ReturnCounts;
use crate::sale::SaleError;
use crate::startup::AppState;
use crate::web::error::PageError;
use crate::web::redirect::see_other;

/// What the order page shows of returns: how many tickets are offered or returned, the form
/// to offer some (when the sale takes returns and some are left) or the button that withdraws
/// the return.
pub fn section(o: &Order, returns: ReturnCounts, allowed: bool, base: &str, key: &str) -> Markup {
    let left = i64::from(o.quantity) - returns.pending - returns.returned;
    html! {
        section.returns {
            @if returns.returned > 0 {
                p #returned { (returns.returned) " of your tickets went to another buyer and are no longer valid"
                    @if o.payment_intent.is_some() { "; their price is refunded to your card" } "." }
            }
            @if returns.pending > 0 {
                p #returning { (returns.pending) " of your tickets are offered for return. They stay yours, and valid, until another buyer takes them; if nobody does before the event, you keep them." }
                form.leave method="post" action={ (base) "/return/withdraw" (key) } {
                    button.link #withdraw-return type="submit" { "Withdraw the return" }
                }
            } @else if allowed && left > 0 {
                form.inline #return-form method="post" action={ (base) "/return" (key) } {
                    label for="return-tickets" { "Can't go? Return tickets" }
                    select #return-tickets name="tickets" {
                        @for n in 1..=left { option value=(n) selected[n == left] { (n) } }
                    }
                    button type="submit" { "Offer for return" }
                }
                p.muted { "Returned tickets go to the people on the waitlist, in order. Yours stay valid until one of them buys them." }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReturnForm {
    tickets: String,
}

#[handler]
pub async fn offer(
    VisibleOrder { order, code }: VisibleOrder,
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<ReturnForm>,
) -> Result<Response, PageError> {
    let max = u8::try_from(order.quantity).unwrap_or(u8::MAX);
    let tickets = form
        .tickets
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=i64::from(max)).contains(n))
        .ok_or(SaleError::BadQuantity { max })?;
    state.sales.return_tickets(&order, tickets).await?;
    Ok(see_other(&format!("/orders/{code}{}", key_query(req))))
}

#[handler]
pub async fn withdraw(
    VisibleOrder { order, code }: VisibleOrder,
    state: Data<&AppState>,
    req: &Request,
) -> Result<Response, PageError> {
    state.sales.withdraw_return(&order).await?;
    Ok(see_other(&format!("/orders/{code}{}", key_query(req))))
}
