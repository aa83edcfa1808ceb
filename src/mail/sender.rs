//! The background task that drains the outbox. Every app instance runs one; `take_due` leases
//! each mail to one of them.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tracing::{info, warn};

use super::{Mailer, payment, prequeue, tickets, waitlist};
use crate::config::Settings;
use crate::db;
use crate::db::outbox::{About, Kind, Taken};

/// How long a taken mail is left to its sender before another may take it: well beyond the
/// SMTP timeouts of one attempt.
const LEASE: Duration = Duration::from_secs(300);
/// The longest wait between two attempts of one mail.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often an idle sender looks for due mail.
const IDLE: Duration = Duration::from_secs(1);

/// Sends due mail until the task is aborted.
pub async fn send_forever(db: PgPool, mailer: Mailer, settings: Arc<Settings>) {
    loop {
        match send_one(&db, &mailer, &settings).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "reading the mail outbox failed; will retry"),
        }
        tokio::time::sleep(IDLE).await;
    }
}

/// Takes and sends one due mail; `false` when none is due.
async fn send_one(db: &PgPool, mailer: &Mailer, settings: &Settings) -> Result<bool, sqlx::Error> {
    let Some(mail) = db::outbox::take_due(db, LEASE).await? else {
        return Ok(false);
    };
    let attempt = async {
        let (message, order_number) = compose(db, settings, mail).await?;
        match mailer {
            Mailer::Log => info!(
                mail = mail.id,
                kind = mail.kind.as_str(),
                order = %order_number,
                "mail {} to <redacted> not sent: no SMTP_URL",
                mail.id
            ),
            Mailer::Smtp(_) => {}
        }
        mailer.send(message).await
    };
    let outcome = attempt.await;
    crate::metrics::get().mail_attempt(outcome.is_ok());
    match outcome {
        Ok(()) => {
            db::outbox::mark_sent(db, mail.id).await?;
            if let About::PrequeueLink(link) = mail.about {
                // The link's mail was the address's only use.
                db::prequeue_links::forget_address(db, link).await?;
            }
            info!(
                mail = mail.id,
                kind = mail.kind.as_str(),
                attempts = mail.attempts,
                "mail {} to <redacted> sent",
                mail.id
            );
        }
        Err(error) => {
            let retry_in = backoff(settings, mail.attempts);
            db::outbox::mark_failed(db, mail.id, &error, retry_in).await?;
            warn!(
                mail = mail.id,
                attempts = mail.attempts,
                retry_in_secs = retry_in.as_secs(),
                %error,
                "mail {} to <redacted> not sent; will retry",
                mail.id
            );
        }
    }
    Ok(true)
}

/// The wait after the `attempts`-th failure: `BOXOFFICE_MAIL_RETRY_SECS`, doubled each time,
/// at most an hour.
fn backoff(settings: &Settings, attempts: i32) -> Duration {
    let doublings = attempts.clamp(1, 20) as u32 - 1;
    Duration::from_secs(u64::from(settings.mail_retry_secs).saturating_mul(1 << doublings)).min(MAX_BACKOFF)
}

/// The message of a taken mail and what it is about (an order number, or "waitlist"),
/// rendered from Postgres now.
async fn compose(db: &PgPool, settings: &Settings, mail: Taken) -> Result<(lettre::Message, String), String> {
    let failed = |e: sqlx::Error| format!("reading what the mail is about: {e}");
    let order_id = match mail.about {
        About::Order(id) => id,
        About::WaitlistEntry(id) => {
            let entry = db::waitlist::find(db, id)
                .await
                .map_err(failed)?
                .ok_or("the entry is gone")?;
            let listing = db::events::listing_of_sale(db, entry.sale_id)
                .await
                .map_err(failed)?
                .ok_or("the sale is gone")?;
            return Ok((waitlist::message(settings, &entry, &listing)?, "waitlist".into()));
        }
        About::PrequeueLink(id) => {
            let link = db::prequeue_links::find(db, id)
                .await
                .map_err(failed)?
                .ok_or("the link is gone")?;
            let listing = db::events::listing_of_sale(db, link.sale_id)
                .await
                .map_err(failed)?
                .ok_or("the sale is gone")?;
            return Ok((prequeue::message(settings, &link, &listing)?, "pre-queue link".into()));
        }
    };
    let order = db::orders::find(db, order_id)
        .await
        .map_err(failed)?
        .ok_or("the order is gone")?;
    let listing = db::events::listing_of_sale(db, order.sale_id)
        .await
        .map_err(failed)?
        .ok_or("the sale is gone")?;
    let message = match mail.kind {
        Kind::Tickets => {
            let tickets = db::tickets::of_order(db, order.id).await.map_err(failed)?;
            tickets::message(settings, &order, &listing, &tickets)?
        }
        Kind::AwaitingPayment | Kind::Cancelled => payment::message(settings, mail.kind, &order, &listing)?,
        Kind::WaitlistOffer | Kind::PrequeueLink => {
            return Err(format!("a {} mail about an order", mail.kind.as_str()));
        }
    };
    Ok((message, order.number))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn retries_back_off_to_an_hour() {
        let s = crate::config::Settings::default();
        assert_eq!(super::backoff(&s, 1), Duration::from_secs(30));
        assert_eq!(super::backoff(&s, 2), Duration::from_secs(60));
        assert_eq!(super::backoff(&s, 30), Duration::from_secs(3600));
    }
}
