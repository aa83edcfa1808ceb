//! The waitlist's durable record (`waitlist_entries`): every entry of a sale's waitlist, with
//! its place in line and where it stands, so that a Redis that lost the line rebuilds it
//! (see `lua/wl_restore.lua`). Redis decides every change; this record follows it, each
//! change one guarded update that only moves an entry forward (see [`record`]).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::outbox;
use crate::sale::SaleId;

/// An entry as Postgres keeps it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EntryRecord {
    pub id: Uuid,
    pub sale_id: Uuid,
    pub owner: String,
    pub email: String,
    pub quantity: i16,
    pub rank: i64,
    pub state: String,
    pub offer_expires_at: Option<DateTime<Utc>>,
}

/// A new entry, as Redis placed it.
pub struct NewEntry<'a> {
    pub id: Uuid,
    pub sale: SaleId,
    pub owner: &'a str,
    pub email: &'a str,
    pub quantity: i16,
    pub rank: i64,
}

/// What writing a new entry came to.
pub enum Inserted {
    Inserted,
    /// Postgres holds a live place for this email (or session) already.
    Duplicate,
}

pub async fn insert(db: &PgPool, e: &NewEntry<'_>) -> Result<Inserted, sqlx::Error> {
    let done = sqlx::query(
        "insert into waitlist_entries (id, sale_id, owner, email, quantity, rank)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (id) do nothing",
    )
    .bind(e.id)
    .bind(e.sale.0)
    .bind(e.owner)
    .bind(e.email)
    .bind(e.quantity)
    .bind(e.rank)
    .execute(db)
    .await;
    match done {
        Ok(_) => Ok(Inserted::Inserted),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(Inserted::Duplicate),
        Err(e) => Err(e),
    }
}

pub async fn find(db: &PgPool, id: Uuid) -> Result<Option<EntryRecord>, sqlx::Error> {
    sqlx::query_as(
        "select id, sale_id, owner, email, quantity, rank, state, offer_expires_at
         from waitlist_entries where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The entries of a sale still in line or holding an offer, in line order: what a Redis that
/// lost the waitlist puts back.
pub async fn live_of_sale(db: &PgPool, sale: SaleId) -> Result<Vec<EntryRecord>, sqlx::Error> {
    sqlx::query_as(
        "select id, sale_id, owner, email, quantity, rank, state, offer_expires_at
         from waitlist_entries where sale_id = $1 and state in ('waiting', 'offered')
         order by rank, id",
    )
    .bind(sale.0)
    .fetch_all(db)
    .await
}

/// One page of a sale's entries in every state, in line order: the organizer's list.
pub async fn page_of_sale(db: &PgPool, sale: SaleId, limit: i64, offset: i64) -> Result<Vec<EntryRecord>, sqlx::Error> {
    sqlx::query_as(
        "select id, sale_id, owner, email, quantity, rank, state, offer_expires_at
         from waitlist_entries where sale_id = $1
         order by rank, id limit $2 offset $3",
    )
    .bind(sale.0)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// Sales whose waitlist has entries in line or holding offers: the ones whose changes the
/// recorder looks for.
pub async fn sales_with_live_entries(db: &PgPool) -> Result<Vec<SaleId>, sqlx::Error> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("select distinct sale_id from waitlist_entries where state in ('waiting', 'offered')")
            .fetch_all(db)
            .await?;
    Ok(ids.into_iter().map(SaleId).collect())
}

/// The states an entry may come from into `state`: forward only, but for an offer that a
/// rebuilt Redis could not hold again, which waits in line once more.
fn comes_from(state: &str) -> &'static [&'static str] {
    match state {
        "offered" => &["waiting"],
        "waiting" => &["offered"],
        _ => &["waiting", "offered"],
    }
}

/// Records that an entry is now in `state` (with its offer's expiry). An offer made now gets
/// its mail in the same transaction: one mail per offer, however many instances record it.
/// True when the row changed (or already stood so); false when it is not there yet (its
/// insert has not committed) and must be recorded again later.
pub async fn record(
    db: &PgPool,
    id: Uuid,
    state: &str,
    offer_expires_at: Option<DateTime<Utc>>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let current: Option<String> = sqlx::query_scalar("select state from waitlist_entries where id = $1 for update")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(current) = current else {
        return Ok(false);
    };
    if current != state && comes_from(state).contains(&current.as_str()) {
        sqlx::query("update waitlist_entries set state = $2, offer_expires_at = $3, updated_at = now() where id = $1")
            .bind(id)
            .bind(state)
            .bind(offer_expires_at)
            .execute(&mut *tx)
            .await?;
        if state == "offered" {
            outbox::enqueue_about_entry(&mut tx, outbox::Kind::WaitlistOffer, id).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// The offer window of a sale, in seconds.
pub async fn offer_secs(db: &PgPool, sale: SaleId) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("select offer_secs from ticket_sales where id = $1")
        .bind(sale.0)
        .fetch_optional(db)
        .await
}

pub async fn set_offer_secs(db: &PgPool, sale: SaleId, secs: i32) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("update ticket_sales set offer_secs = $2 where id = $1")
        .bind(sale.0)
        .bind(secs)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A sale's waitlist in figures, for the organizer.
#[derive(Clone, Debug, Default, sqlx::FromRow, serde::Serialize)]
pub struct WaitlistCounts {
    pub waiting: i64,
    pub offered: i64,
    pub taken: i64,
    pub lapsed: i64,
    pub left: i64,
}

pub async fn counts(db: &PgPool, sale: SaleId) -> Result<WaitlistCounts, sqlx::Error> {
    sqlx::query_as(
        "select count(*) filter (where state = 'waiting') as waiting,
                count(*) filter (where state = 'offered') as offered,
                count(*) filter (where state = 'taken') as taken,
                count(*) filter (where state = 'lapsed') as lapsed,
                count(*) filter (where state = 'left') as left
         from waitlist_entries where sale_id = $1",
    )
    .bind(sale.0)
    .fetch_one(db)
    .await
}

/// What raising a sale's capacity came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Raised {
    Raised,
    /// Not more than the sale has already.
    NotMore,
    /// More than the event's seats.
    BeyondEvent(i32),
}

/// Raises a sale's capacity to `capacity`, at most the event's seats; its revision moves on,
/// so that the live state takes the new figure at the next sync.
pub async fn raise_capacity(db: &PgPool, sale: SaleId, capacity: i32) -> Result<Raised, sqlx::Error> {
    let row: Option<(i32, i32)> = sqlx::query_as(
        "select s.capacity, e.capacity from ticket_sales s join events e on e.id = s.event_id
         where s.id = $1 for update of s",
    )
    .bind(sale.0)
    .fetch_optional(db)
    .await?;
    let Some((current, seats)) = row else {
        return Err(sqlx::Error::RowNotFound);
    };
    if capacity <= current {
        return Ok(Raised::NotMore);
    }
    if capacity > seats {
        return Ok(Raised::BeyondEvent(seats));
    }
    sqlx::query("update ticket_sales set capacity = $2, revision = revision + 1 where id = $1 and capacity < $2")
        .bind(sale.0)
        .bind(capacity)
        .execute(db)
        .await?;
    Ok(Raised::Raised)
}

/// The entry moved to another session (its offer's signed link opened there).
pub async fn set_owner(db: &PgPool, id: Uuid, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update waitlist_entries set owner = $2, updated_at = now() where id = $1 and owner <> $2")
        .bind(id)
        .bind(owner)
        .execute(db)
        .await?;
    Ok(())
}
