//! The mails of an order's payment: "order received, awaiting payment" when it is written, and
//! "order cancelled" when its deadline passed or its buyer gave up. Plain-text and HTML parts
//! and the signed link back to the order page; no attachment (the tickets mail follows payment).

use lettre::Message;
use lettre::message::MultiPart;
use maud::html;

use crate::config::Settings;
use crate::db::events::Listing;
use crate::db::orders::Order;
use crate::db::outbox::Kind;

/// The subject: the event and the order, nothing about the buyer (it is logged).
pub fn subject(kind: Kind, order: &Order, listing: &Listing) -> String {
    match kind {
        Kind::Cancelled => format!("Order {} cancelled: {}", order.number, listing.title),
        _ => format!("Order {} received, awaiting payment: {}", order.number, listing.title),
    }
}

/// The mail of `kind` (awaiting payment or cancelled) for `order`.
pub fn message(settings: &Settings, kind: Kind, order: &Order, listing: &Listing) -> Result<Message, String> {
    let url = super::tickets::order_url(settings, order);
    let total = crate::web::money::money(order.total_minor(), &order.currency);
    let (lead, next) = match kind {
        Kind::Cancelled => (
            format!(
                "your order {} for {} was cancelled: it was not paid in time, or you cancelled it. \
                 Its tickets went back on sale, and nothing was charged.",
                order.number, listing.title
            ),
            "If you still want to go, you may buy tickets again while the sale lasts.".to_string(),
        ),
        _ => (
            format!(
                "we have your order {} for {}: {} ticket(s), {total}.",
                order.number, listing.title, order.quantity
            ),
            match order.payment_due_at {
                Some(due) => format!(
                    "Please pay by {} on the order page; after that the order is cancelled and its tickets go back on sale. Your tickets come by mail once it is paid.",
                    due.format("%H:%M UTC")
                ),
                None => "Please pay on the order page. Your tickets come by mail once it is paid.".to_string(),
            },
        ),
    };
    let text = format!(
        "Hello {name},\n\n{lead}\n\n{next}\n\nYour order:\n{url}\n\nKeep this link to yourself: it opens your order.\n",
        name = order.buyer_name
    );
    let html = html! {
        p { "Hello " (order.buyer_name) "," }
        p { (lead) }
        p { (next) }
        p { a href=(url) { "Your order" } }
        p { small { "Keep this link to yourself: it opens your order." } }
    };
    super::tickets::builder(settings, order)?
        .subject(subject(kind, order, listing))
        .multipart(MultiPart::alternative_plain_html(text, html.into_string()))
        .map_err(|e| format!("building the mail: {e}"))
}
