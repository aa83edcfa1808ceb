//! Mail to buyers, through the Postgres outbox: a request only writes a row (in the
//! transaction of what the mail tells about), and a background task of every app instance
//! sends due rows over SMTP with retries and backoff. An SMTP server that is down delays mail,
//! never a request, and loses nothing.
//!
//! # Layout
//!
//! - `mod.rs` — the transport: SMTP (`SMTP_URL`) or, without it, the log.
//! - `sender` — the background task that drains the outbox.
//! - `tickets` — the tickets mail: text and HTML parts, the PDF attached, the signed link.
//! - `payment` — "awaiting payment" and "cancelled", for orders paid through Stripe.
//! - `waitlist` — the offer to a waitlist entry, with the link to buy it.
//! - `prequeue` — the one-time link to a pre-queue place, for sales that give one per
//!   verified email.
//!
//! Logs name a mail by its outbox id, kind and order number, never the recipient, the
//! holder's name or the link (which opens the order).

mod payment;
mod prequeue;
mod sender;
mod tickets;
mod waitlist;

use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Settings;

pub use prequeue::TOKEN_PARAM;
pub use sender::send_forever;
pub use waitlist::offer_link;

/// A mail of a plain-text and an HTML part from `MAIL_FROM` to the address `to`.
fn plain_and_html(
    settings: &Settings,
    to: &str,
    subject: String,
    text: String,
    html: maud::Markup,
) -> Result<Message, String> {
    let to: lettre::message::Mailbox = to
        .parse()
        .map_err(|_| "the recipient's address is not one the mail library accepts".to_string())?;
    let from: lettre::message::Mailbox = settings
        .mail_from
        .parse()
        .map_err(|_| "MAIL_FROM is not an address".to_string())?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .multipart(lettre::message::MultiPart::alternative_plain_html(
            text,
            html.into_string(),
        ))
        .map_err(|e| format!("building the mail: {e}"))
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No `SMTP_URL`: each mail is noted in the log (without its recipient or content) and
    /// counts as sent, so a developer machine needs no mail server.
    Log,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> Result<Mailer, lettre::transport::smtp::Error> {
        Ok(match &settings.smtp_url {
            Some(url) => Mailer::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())?
                    // each SMTP command; a server that hangs fails the attempt, which is retried
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => Mailer::Log,
        })
    }

    /// Sends `message`; the error is the transport's, without the message.
    async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Mailer::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Mailer::Log => Ok(()),
        }
    }
}
