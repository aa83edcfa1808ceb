//! The tickets mail of a confirmed order: a plain-text and an HTML part saying what was
//! bought, the signed link back to the order page, and the PDF with every ticket attached.

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use maud::html;

use crate::config::Settings;
use crate::db::events::Listing;
use crate::db::orders::Order;
use crate::db::tickets::Ticket;
use crate::sale::{ReservationCode, SaleId};
use crate::tickets::{link, pdf};

/// The subject: it names the event and the order, nothing about the buyer (it is logged).
pub fn subject(order: &Order, listing: &Listing) -> String {
    format!("Your tickets for {} (order {})", listing.title, order.number)
}

/// The mail, or why it cannot be made (a recipient address the mail library refuses).
pub fn message(settings: &Settings, order: &Order, listing: &Listing, tickets: &[Ticket]) -> Result<Message, String> {
    let url = order_url(settings, order);
    let when = listing.starts_at.format("%A %-d %B %Y, %H:%M UTC").to_string();
    let count = match tickets.len() {
        1 => "your ticket".to_string(),
        n => format!("your {n} tickets"),
    };
    let text = format!(
        "Hello {name},\n\nthank you for your order {number}. Attached is {count} for\n\n  {title}\n  {when}\n{venue}\n\
         Show each ticket's QR code at the door, printed or on your phone. Each ticket admits one person, once.\n\n\
         Your order, and the tickets again, at any time:\n{url}\n\nKeep this link to yourself: it opens your order.\n",
        name = order.buyer_name,
        number = order.number,
        title = listing.title,
        venue = if listing.venue.is_empty() {
            String::new()
        } else {
            format!("  {}\n", listing.venue)
        },
    );
    let html = html! {
        p { "Hello " (order.buyer_name) "," }
        p { "thank you for your order " strong { (order.number) } ". Attached is " (count) " for" }
        p { strong { (listing.title) } br; (when) @if !listing.venue.is_empty() { br; (listing.venue) } }
        p { "Show each ticket's QR code at the door, printed or on your phone. Each ticket admits one person, once." }
        p { a href=(url) { "Your order, and the tickets again, at any time" } }
        p { small { "Keep this link to yourself: it opens your order." } }
    };
    let pdf = pdf::render(order, listing, tickets);
    builder(settings, order)?
        .subject(subject(order, listing))
        .multipart(
            MultiPart::mixed()
                .multipart(
                    MultiPart::alternative()
                        .singlepart(SinglePart::plain(text))
                        .singlepart(SinglePart::html(html.into_string())),
                )
                .singlepart(Attachment::new(crate::tickets::pdf_file_name(order)).body(
                    pdf,
                    ContentType::parse("application/pdf").expect("a valid content type"),
                )),
        )
        .map_err(|e| format!("building the mail: {e}"))
}

/// The order page, opened by the signed link without the buyer's session.
pub fn order_url(settings: &Settings, order: &Order) -> String {
    let code = ReservationCode {
        sale: SaleId(order.sale_id),
        token: order.reservation_code,
    };
    format!("{}{}", settings.public_url, link::signed_path(&settings.secret, &code))
}

/// A mail from the shop to the order's buyer, or why there cannot be one (a recipient address
/// the mail library refuses).
pub fn builder(settings: &Settings, order: &Order) -> Result<lettre::message::MessageBuilder, String> {
    let to: Mailbox = format!("{} <{}>", quote_name(&order.buyer_name), order.buyer_email)
        .parse()
        .or_else(|_| order.buyer_email.parse())
        .map_err(|_| "the recipient's address is not one the mail library accepts".to_string())?;
    let from: Mailbox = settings
        .mail_from
        .parse()
        .map_err(|_| "MAIL_FROM is not an address".to_string())?;
    Ok(Message::builder().from(from).to(to))
}

/// A display name as a quoted string, so that commas or brackets in a name cannot change the
/// address.
fn quote_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .collect();
    format!("\"{clean}\"")
}
