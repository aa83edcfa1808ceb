//! The offer mail of a waitlist entry: tickets are held for it until the offer's expiry, and
//! the link to the entry's page, which turns into the checkout while the offer lasts. No
//! personal data beyond the address; the signed link opens the page in any browser.

use lettre::Message;
use maud::html;

use crate::config::Settings;
use crate::db::events::Listing;
use crate::db::waitlist::EntryRecord;
use crate::sale::{ReservationCode, SaleId};

/// The subject: the event, nothing about the buyer (it is logged).
pub fn subject(listing: &Listing) -> String {
    format!("Tickets for you: {}", listing.title)
}

/// The page of the entry, where the offer is bought, signed: opened in another browser, it
/// moves the entry there.
pub fn offer_link(settings: &Settings, entry: &EntryRecord) -> String {
    let code = ReservationCode {
        sale: SaleId(entry.sale_id),
        token: entry.id,
    };
    let key = crate::tickets::link::sign_waitlist_entry(&settings.secret, &code);
    format!(
        "{}/waitlist/{code}?{}={key}",
        settings.public_url,
        crate::tickets::link::KEY_PARAM
    )
}

pub fn message(settings: &Settings, entry: &EntryRecord, listing: &Listing) -> Result<Message, String> {
    let url = offer_link(settings, entry);
    let until = entry
        .offer_expires_at
        .map(|t| t.format("%H:%M UTC").to_string())
        .unwrap_or_else(|| "the offer's end".into());
    let lead = format!(
        "tickets came back for {}: {} ticket(s) are held for you until {until}.",
        listing.title, entry.quantity
    );
    let next = "Buy them on your waitlist page. If you do not, they go to the next person on the waitlist. Keep this link to yourself: it opens your place.";
    let text = format!("Hello,\n\n{lead}\n\n{next}\n\n{url}\n");
    let html = html! {
        p { "Hello," }
        p { (lead) }
        p { (next) }
        p { a href=(url) { "Buy your tickets" } }
    };
    super::plain_and_html(settings, &entry.email, subject(listing), text, html)
}
