//! The mail of a pre-queue link: the one-time link that makes the place of the address that
//! asked, in a sale that gives one pre-queue place per verified email. The address is the only
//! personal data; the link opens a place in any browser, once.

use lettre::Message;
use maud::html;

use crate::config::Settings;
use crate::db::events::Listing;
use crate::db::prequeue_links::LinkRecord;
use crate::sale::LinkToken;

/// The query parameter of the confirmation page that carries the token.
pub const TOKEN_PARAM: &str = "token";

/// The page that confirms the link, with its token.
pub fn confirm_link(settings: &Settings, link: &LinkRecord) -> String {
    let token = LinkToken::sign(&settings.secret, link.id);
    format!("{}/prequeue/confirm?{TOKEN_PARAM}={token}", settings.public_url)
}

/// The subject: the event, nothing about the buyer (it is logged).
pub fn subject(listing: &Listing) -> String {
    format!("Your pre-queue place: {}", listing.title)
}

pub fn message(settings: &Settings, link: &LinkRecord, listing: &Listing) -> Result<Message, String> {
    let url = confirm_link(settings, link);
    let address = link
        .address
        .as_deref()
        .ok_or("the link's address is erased: its mail was sent")?;
    let lead = format!(
        "open this link to take your place in the pre-queue of {} ({} ticket(s)). Places are drawn at the opening, {}.",
        listing.title,
        link.quantity,
        listing.opens_at.format("%a %-d %b %Y, %H:%M UTC")
    );
    let rules = format!(
        "The link works once, until {}, and makes the place in the browser that opens it. This email address holds one place in this sale. If you did not ask for it, ignore this mail: nothing happens unless the link is opened.",
        link.expires_at.format("%H:%M UTC")
    );
    let text = format!("Hello,\n\n{lead}\n\n{url}\n\n{rules}\n");
    let html = html! {
        p { "Hello," }
        p { (lead) }
        p { a href=(url) { "Take my place" } }
        p { (rules) }
    };
    super::plain_and_html(settings, address, subject(listing), text, html)
}
