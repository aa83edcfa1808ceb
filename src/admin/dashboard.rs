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
use super::series::{self, Funnel, SaleSeries, levels, per_minute, share, thinned};
use super::service::{self, Figures, Organizer, PAGE_SIZE};
use super::views::{admin_page, rfc3339, show_time};
use super::{AdminError, csrf};
use crate::charts::{Axis, Chart, Series, TickFormat};
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
            (super::waitlist::section(&token, &sale, &super::waitlist::figures(&state, &sale).await?))
            (series_fragment(&sale, &series::series(&state, &sale).await?))
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
    polled_part(&state, &session, req, &sale, Part::Figures).await
}

/// The charts, funnel and estimates alone, for the dashboard's polling.
#[handler]
pub async fn series_part(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(sale): Path<String>,
) -> Result<Response, AdminError> {
    polled_part(&state, &session, req, &sale, Part::Series).await
}

/// The parts of the dashboard that HTMX polls.
enum Part {
    Figures,
    Series,
}

/// One polled part of the signed-in organizer's sale, never cached.
async fn polled_part(
    state: &AppState,
    session: &Session,
    req: &Request,
    sale: &str,
    part: Part,
) -> Result<Response, AdminError> {
    let me = match organizer(session).await {
        // HTMX would follow a redirect and put the sign-in page inside the dashboard; this
        // header makes it load the sign-in page as a whole instead.
        Err(AdminError::Unauthenticated) if req.headers().contains_key("hx-request") => {
            return Ok(Response::builder().header("HX-Redirect", "/admin/sign-in").finish());
        }
        other => other?,
    };
    let sale = service::sale(state, me, service::parse_id(sale)?).await?;
    let fragment = match part {
        Part::Figures => figures_fragment(&sale, &service::figures(state, &sale).await?),
        Part::Series => series_fragment(&sale, &series::series(state, &sale).await?),
    };
    Ok(Response::builder()
        .header(header::CACHE_CONTROL, "no-store")
        .content_type("text/html; charset=utf-8")
        .body(fragment.into_string()))
}

/// Estimates, funnel and charts of the sale, refreshed with the figures.
fn series_fragment(sale: &SaleRecord, s: &SaleSeries) -> Markup {
    let url = format!("/admin/sales/{}/series", sale.id);
    html! {
        section #series hx-get=(url) hx-trigger="every 3s" hx-swap="outerHTML" data-samples=(drawn(s).len()) {
            h2 { "Estimates" }
            (estimates_fragment(s))
            h2 { "Funnel" }
            (funnel_fragment(&s.funnel))
            h2 { "Over time" }
            (charts_fragment(s))
        }
    }
}

fn estimates_fragment(s: &SaleSeries) -> Markup {
    let e = &s.estimates;
    html! {
        dl.figures {
            dt { "Tickets sold per minute" } dd data-estimate="sold_per_minute" {
                @match e.sold_per_minute { Some(r) => (format!("{r:.1}")), None => "–" }
            }
            dt { "Sells out" } dd data-estimate="sell_out" {
                @match e.sell_out_secs {
                    Some(secs) if secs <= 0.0 => "sold out",
                    Some(secs) => { "in " (duration_in_words(secs)) ", about "
                        (show_time(s.as_of + chrono::TimeDelta::seconds(secs as i64))) }
                    None => "not while nothing sells",
                }
            }
            dt { "The last buyer in line waits" } dd data-estimate="last_in_line" {
                @match e.last_in_line_wait_secs {
                    Some(secs) => (duration_in_words(secs)),
                    None => "–",
                }
            }
        }
    }
}

/// A duration as a person reads an estimate: under a minute, minutes, or hours and minutes.
fn duration_in_words(secs: f64) -> String {
    let minutes = (secs / 60.0).ceil() as i64;
    match minutes {
        ..=0 => "no time".into(),
        1 if secs < 60.0 => "less than a minute".into(),
        1 => "about 1 minute".into(),
        2..=119 => format!("about {minutes} minutes"),
        _ => format!("about {} h {} min", minutes / 60, minutes % 60),
    }
}

fn funnel_fragment(f: &Funnel) -> Markup {
    let row = |key: &str, label: &str, count: i64, of: i64, whole: &str| {
        html! {
            tr data-funnel=(key) {
                th scope="row" { (label) }
                td.count { (count) }
                td.share { @match share(count, of) { Some(p) => (format!("{:.0} % of {whole}", p * 100.0)), None => "–" } }
            }
        }
    };
    html! {
        table.funnel {
            thead { tr { th scope="col" { "Buyers" } th scope="col" { "Count" } th scope="col" { "Share" } } }
            tbody {
                (row("joined", "Joined", f.joined, f.joined, "joined"))
                (row("admitted", "Admitted to checkout", f.admitted, f.joined, "joined"))
                (row("ordered", "Ordered", f.ordered, f.admitted, "admitted"))
            }
            tbody {
                (row("waiting", "Still in the queue", f.waiting, f.joined, "joined"))
                (row("left_queue", "Left the queue", f.left_queue, f.joined, "joined"))
                (row("abandoned", "Lost their place (stopped polling)", f.abandoned, f.joined, "joined"))
                (row("sold_out", "Told sold out", f.sold_out, f.joined, "joined"))
            }
            tbody {
                (row("at_checkout", "At checkout now", f.at_checkout, f.admitted, "admitted"))
                (row("released", "Gave their tickets back", f.released, f.admitted, "admitted"))
                (row("lapsed", "Hold lapsed", f.lapsed, f.admitted, "admitted"))
            }
        }
    }
}

/// Most samples a chart draws (a day's sale at 10 s has 8,640).
const MOST_DRAWN: usize = 360;

fn drawn(s: &SaleSeries) -> Vec<crate::db::samples::Sample> {
    thinned(&s.samples, MOST_DRAWN)
}

/// The sale's charts from its samples: one point per sample for levels, one per sample after
/// the first for rates.
fn charts_fragment(s: &SaleSeries) -> Markup {
    let samples = &drawn(s);
    let chart = |id: &str, title: &str, y: &str| {
        Chart::new(
            id,
            title,
            Axis::new("Time (UTC)", TickFormat::TimeOfDay),
            Axis::new(y, TickFormat::Number),
        )
    };
    let charts = [
        chart("chart-queue", "Queue length", "Buyers waiting")
            .with(Series::area("Waiting", levels(samples, |x| x.waiting))),
        chart("chart-checkout", "Buyers at checkout", "Buyers")
            .with(Series::area("At checkout", levels(samples, |x| x.at_checkout))),
        chart("chart-sold", "Tickets sold", "Tickets").with(Series::area("Sold", levels(samples, |x| x.sold))),
        chart("chart-rates", "Admissions and orders per minute", "Per minute")
            .with(Series::line("Admitted", per_minute(samples, |x| x.admitted)))
            .with(Series::line("Orders", per_minute(samples, |x| x.orders))),
    ];
    html! {
        @for chart in &charts {
            figure.chart data-chart=(chart.id) {
                (chart.svg())
                details { summary { "The figures as a table" } (chart.table()) }
            }
        }
    }
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
