//! A sale's dashboard: the live figures (polled by HTMX every few seconds), the orders
//! newest first, and their CSV export. Only the sale's organizer sees any of it.

use maud::{Markup, html};
use poem::http::header;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::organizer;
use super::forms::show_price;
use super::sales::state_buttons;
use super::service::{self, Figures, Organizer, PAGE_SIZE};
use super::views::{admin_page, rfc3339, show_time};
use super::{AdminError, csrf};
use crate::db::orders::Order;
use crate::db::sales::SaleRecord;
use crate::startup::AppState;

fn figures_fragment(sale: &SaleRecord, f: &Figures) -> Markup {
    let url = format!("/admin/sales/{}/figures", sale.id);
    html! {
        section #figures hx-get=(url) hx-trigger="every 3s" hx-swap="outerHTML" {
            dl.figures {
                dt { "State" } dd data-figure="state" { (f.live.state.as_str()) }
                dt { "Capacity" } dd data-figure="capacity" { (f.live.capacity) }
                dt { "Sold" } dd data-figure="sold" { (f.live.sold) }
                dt { "Held at checkout" } dd data-figure="held" { (f.live.held) }
                dt { "Waiting in the queue" } dd data-figure="waiting" { (f.live.waiting) }
                dt { "Admitted per minute" } dd data-figure="admitted_per_minute" {
                    @match f.admitted_per_minute { Some(r) => (format!("{r:.1}")), None => "–" }
                }
                dt { "Revenue" } dd data-figure="revenue" { (show_price(f.totals.revenue_minor)) " " (sale.currency) }
                dt { "Orders" } dd data-figure="orders" { (f.totals.orders) }
                dt { "Awaiting payment" } dd data-figure="awaiting_payment" { (f.totals.awaiting_payment) }
                dt { "Paid" } dd data-figure="paid" { (f.totals.paid) }
                dt { "Cancelled" } dd data-figure="cancelled" { (f.totals.cancelled) }
            }
            p.hint { "As of " (show_time(f.live.server_now)) "; refreshes every 3 seconds." }
        }
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<i64>,
}

fn orders_table(orders: &[Order]) -> Markup {
    html! {
        table.orders {
            thead { tr { th { "Order" } th { "State" } th { "Placed" } th { "Tickets" } th { "Total" } th { "Name" } th { "Email" } } }
            tbody {
                @for o in orders {
                    tr {
                        td { (o.number) }
                        td.state { (o.state.replace('_', " ")) }
                        td { (show_time(o.created_at)) }
                        td { (o.quantity) }
                        td { (show_price(o.total_minor())) " " (o.currency) }
                        td { (o.buyer_name) }
                        td { (o.buyer_email) }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn show(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    Path(sale): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Markup, AdminError> {
    let (sale, event) = service::sale_with_event(&state, me, service::parse_id(&sale)?).await?;
    let f = service::figures(&state, &sale).await?;
    let orders = service::orders(&state, &sale, q.page, Some(PAGE_SIZE)).await?;
    let token = csrf::token(&session).await?;
    let base = format!("/admin/sales/{}", sale.id);
    Ok(admin_page(
        &format!("{} · sale", event.title),
        Some(&token),
        html! {
            h1 { "Ticket sale of " a href={ "/admin/events/" (event.id) } { (event.title) } }
            p {
                "Opens " (show_time(sale.opens_at)) " · price " (show_price(sale.price_minor)) " " (sale.currency)
                " · hold " (sale.hold_secs / 60) " min " (sale.hold_secs % 60) " s"
                " · at checkout at once: " @if sale.max_active == 0 { "no limit" } @else { (sale.max_active) }
            }
            div.actions { (state_buttons(&token, sale.id, f.live.state)) }
            p { a href={ (base) "/check-in" } { "Door check-in" } }
            (figures_fragment(&sale, &f))
            h2 { "Orders" }
            p { a href={ (base) "/orders.csv" } download { "Export all orders as CSV" } }
            @if orders.orders.is_empty() {
                p { "No orders on this page." }
            } @else {
                (orders_table(&orders.orders))
            }
            nav.pages {
                @if orders.page > 1 { a rel="prev" href={ (base) "?page=" (orders.page - 1) } { "Newer" } " " }
                @if orders.has_more() { a rel="next" href={ (base) "?page=" (orders.page + 1) } { "Older" } }
            }
        },
    ))
}

/// The live figures alone, for the dashboard's polling.
#[handler]
pub async fn figures_part(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(sale): Path<String>,
) -> Result<Response, AdminError> {
    let me = match organizer(&session).await {
        // HTMX would follow a redirect and put the sign-in page inside the dashboard; this
        // header makes it load the sign-in page as a whole instead.
        Err(AdminError::Unauthenticated) if req.headers().contains_key("hx-request") => {
            return Ok(Response::builder().header("HX-Redirect", "/admin/sign-in").finish());
        }
        other => other?,
    };
    let sale = service::sale(&state, me, service::parse_id(&sale)?).await?;
    let f = service::figures(&state, &sale).await?;
    Ok(Response::builder()
        .header(header::CACHE_CONTROL, "no-store")
        .content_type("text/html; charset=utf-8")
        .body(figures_fragment(&sale, &f).into_string()))
}

#[handler]
pub async fn orders_csv(
    state: Data<&AppState>,
    me: Organizer,
    Path(sale): Path<String>,
) -> Result<Response, AdminError> {
    let sale = service::sale(&state, me, service::parse_id(&sale)?).await?;
    let mut out = String::from(
        "number,state,placed_at,quantity,unit_price,total,currency,buyer_name,buyer_email,buyer_age,buyer_gender\r\n",
    );
    // The file is built in memory: a sale has few orders.
    let orders = service::all_orders(&state, &sale).await?;
    for o in &orders {
        let row = [
            o.number.clone(),
            o.state.clone(),
            rfc3339(o.created_at),
            o.quantity.to_string(),
            show_price(o.unit_price_minor),
            show_price(o.total_minor()),
            o.currency.clone(),
            o.buyer_name.clone(),
            o.buyer_email.clone(),
            o.buyer_age.to_string(),
            o.buyer_gender.clone(),
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"orders-{}.csv\"", sale.id),
        )
        .body(out))
}

/// One CSV cell (RFC 4180). A cell a spreadsheet would run as a formula gets a leading `'`,
/// since buyer names are typed by anyone.
pub fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("Ada"), "Ada");
        assert_eq!(csv_cell("Lovelace, Ada"), "\"Lovelace, Ada\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("a\nb"), "\"a\nb\"");
    }
}
