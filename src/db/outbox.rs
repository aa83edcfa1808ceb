//! The mail outbox: rows written in the transaction of what they tell about, taken by the
//! sender of any app instance (`for update skip locked`, then a lease), marked sent or given a
//! later attempt.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

/// What a mail is about; its content is rendered from what it tells about when it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The tickets of a confirmed or paid order, the PDF attached.
    Tickets,
    /// An order written, waiting for its payment until its deadline.
    AwaitingPayment,
    /// An order cancelled: not paid by its deadline, or by the buyer.
    Cancelled,
    /// An offer to a waitlist entry: tickets held for it, with the link to buy them.
    WaitlistOffer,
    /// The one-time link to a pre-queue place, to the address that asked for it.
    PrequeueLink,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tickets => "tickets",
            Kind::AwaitingPayment => "awaiting_payment",
            Kind::Cancelled => "cancelled",
            Kind::WaitlistOffer => "waitlist_offer",
            Kind::PrequeueLink => "prequeue_link",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "tickets" => Some(Kind::Tickets),
            "awaiting_payment" => Some(Kind::AwaitingPayment),
            "cancelled" => Some(Kind::Cancelled),
            "waitlist_offer" => Some(Kind::WaitlistOffer),
            "prequeue_link" => Some(Kind::PrequeueLink),
            _ => None,
        }
    }
}

/// Queues a mail, inside the caller's transaction.
pub async fn enqueue(tx: &mut PgConnection, kind: Kind, order_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("insert into outbox (kind, order_id) values ($1, $2)")
        .bind(kind.as_str())
        .bind(order_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Queues a mail about a waitlist entry, inside the caller's transaction.
pub async fn enqueue_about_entry(tx: &mut PgConnection, kind: Kind, entry: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("insert into outbox (kind, waitlist_entry_id) values ($1, $2)")
        .bind(kind.as_str())
        .bind(entry)
        .execute(tx)
        .await?;
    Ok(())
}

/// Queues the mail of a pre-queue link, inside the caller's transaction.
pub async fn enqueue_prequeue_link(tx: &mut PgConnection, link: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("insert into outbox (kind, prequeue_link_id) values ($1, $2)")
        .bind(Kind::PrequeueLink.as_str())
        .bind(link)
        .execute(tx)
        .await?;
    Ok(())
}

/// What a mail is about.
#[derive(Clone, Copy, Debug)]
pub enum About {
    Order(i64),
    WaitlistEntry(uuid::Uuid),
    PrequeueLink(uuid::Uuid),
}

/// A mail taken for sending.
#[derive(Clone, Copy, Debug)]
pub struct Taken {
    pub id: i64,
    pub kind: Kind,
    pub about: About,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// A taken row: id, kind, order_id, waitlist_entry_id, prequeue_link_id, attempts.
type TakenRow = (i64, String, Option<i64>, Option<uuid::Uuid>, Option<uuid::Uuid>, i32);

/// Takes the oldest due mail and leases it for `lease`: until then no sender of any instance
/// takes it again, so one mail is not sent twice at once. A sender that dies meanwhile leaves
/// the lease to run out, and the mail is taken again after it.
pub async fn take_due(db: &PgPool, lease: Duration) -> Result<Option<Taken>, sqlx::Error> {
    let row: Option<TakenRow> = sqlx::query_as(
        "update outbox set attempts = attempts + 1,
                           next_attempt_at = now() + make_interval(secs => $1)
         where id = (select id from outbox
                     where sent_at is null and next_attempt_at <= now()
                     order by next_attempt_at, id
                     limit 1
                     for update skip locked)
         returning id, kind, order_id, waitlist_entry_id, prequeue_link_id, attempts",
    )
    .bind(lease.as_secs_f64())
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|(id, kind, order_id, entry, link, attempts)| {
        Some(Taken {
            id,
            kind: Kind::parse(&kind)?,
            // the table's check: exactly one of the three
            about: match (order_id, entry, link) {
                (Some(order), _, _) => About::Order(order),
                (None, Some(entry), _) => About::WaitlistEntry(entry),
                (None, None, link) => About::PrequeueLink(link?),
            },
            attempts,
        })
    }))
}

pub async fn mark_sent(db: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("update outbox set sent_at = now(), last_error = null where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records a failed attempt; the mail is taken again after `retry_in`.
pub async fn mark_failed(db: &PgPool, id: i64, error: &str, retry_in: Duration) -> Result<(), sqlx::Error> {
    sqlx::query("update outbox set last_error = $2, next_attempt_at = now() + make_interval(secs => $3) where id = $1")
        .bind(id)
        .bind(error.chars().take(500).collect::<String>())
        .bind(retry_in.as_secs_f64())
        .execute(db)
        .await?;
    Ok(())
}
