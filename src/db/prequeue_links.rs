//! The links a sale that gives one pre-queue place per verified email mails to the addresses
//! that ask (see `sale::verified_email`): one row per link, its mail queued in the same
//! transaction, the address erased once that mail is sent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::sale::SaleId;

/// A link to make.
pub struct NewLink {
    pub id: Uuid,
    pub sale: SaleId,
    /// The keyed digest of the normalized address.
    pub email_digest: Vec<u8>,
    /// The normalized address, until the mail is sent.
    pub address: String,
    pub quantity: i16,
    pub lifetime: Duration,
}

/// Makes the link and queues its mail, unless the address holds a place in the sale already
/// or has `max_live` links out (unused, unexpired); true when a mail was queued. Two asks at
/// the same moment may both pass the count: it bounds a flood, not a race.
pub async fn offer(db: &PgPool, link: &NewLink, max_live: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let (placed, live): (bool, i64) = sqlx::query_as(
        "select exists (select 1 from prequeue_entries where sale_id = $1 and email_digest = $2),
                (select count(*) from prequeue_links
                 where sale_id = $1 and email_digest = $2 and used_at is null and expires_at > now())",
    )
    .bind(link.sale.0)
    .bind(&link.email_digest)
    .fetch_one(&mut *tx)
    .await?;
    if placed || live >= max_live {
        return Ok(false);
    }
    sqlx::query(
        "insert into prequeue_links (id, sale_id, email_digest, address, quantity, expires_at)
         values ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(link.id)
    .bind(link.sale.0)
    .bind(&link.email_digest)
    .bind(&link.address)
    .bind(link.quantity)
    .bind(link.lifetime.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    crate::db::outbox::enqueue_prequeue_link(&mut tx, link.id).await?;
    tx.commit().await?;
    Ok(true)
}

/// A link as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct LinkRecord {
    pub id: Uuid,
    pub sale_id: Uuid,
    /// Erased once the link's mail is sent.
    pub address: Option<String>,
    pub quantity: i16,
    pub expires_at: DateTime<Utc>,
    /// Neither used nor expired, by Postgres's clock now.
    pub live: bool,
}

pub async fn find(db: &PgPool, id: Uuid) -> Result<Option<LinkRecord>, sqlx::Error> {
    sqlx::query_as(
        "select id, sale_id, address, quantity, expires_at,
                used_at is null and expires_at > clock_timestamp() as live
         from prequeue_links where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Erases the link's address: its mail is sent, and nothing else ever writes to it.
pub async fn forget_address(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("update prequeue_links set address = null where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
