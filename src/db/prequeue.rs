//! The pre-queue and its draw, as Postgres records them (see `sale::prequeue`): one draw row
//! per sale, the lock every entry is written under, and the entries themselves.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::draw::published::DrawResult;
use crate::sale::SaleId;

/// A sale's window and state as Postgres's clock sees them now.
#[derive(Debug, sqlx::FromRow)]
pub struct Window {
    pub opens_at: DateTime<Utc>,
    pub prequeue_secs: i32,
    /// Each place needs an email confirmed by a mailed link (`sale::verified_email`).
    pub one_place_per_email: bool,
    pub state: String,
    pub now: DateTime<Utc>,
}

impl Window {
    /// True from `prequeue_secs` before the opening until the opening.
    pub fn is_open(&self) -> bool {
        self.prequeue_secs > 0
            && self.now < self.opens_at
            && self.now >= self.opens_at - chrono::Duration::seconds(i64::from(self.prequeue_secs))
    }
}

pub async fn window(db: &PgPool, sale: SaleId) -> Result<Option<Window>, sqlx::Error> {
    sqlx::query_as(
        "select opens_at, prequeue_secs, one_place_per_email, state, clock_timestamp() as now
         from ticket_sales where id = $1",
    )
    .bind(sale.0)
    .fetch_optional(db)
    .await
}

/// What every poll of a sale's pre-queue needs beside its own entry, in one read.
#[derive(Debug, sqlx::FromRow)]
pub struct PollFacts {
    pub opens_at: DateTime<Utc>,
    pub state: String,
    /// The draw's secret seed; `None` before the first entry made the draw.
    pub server_seed: Option<Vec<u8>>,
    /// Every drawn entry is in Redis's queue.
    pub enqueued: bool,
    pub now: DateTime<Utc>,
}

pub async fn poll_facts(db: &PgPool, sale: SaleId) -> Result<Option<PollFacts>, sqlx::Error> {
    sqlx::query_as(
        "select s.opens_at, s.state, d.server_seed, coalesce(d.enqueued_at is not null, false) as enqueued,
                clock_timestamp() as now
         from ticket_sales s left join sale_draws d on d.sale_id = s.id
         where s.id = $1",
    )
    .bind(sale.0)
    .fetch_optional(db)
    .await
}

/// A sale's draw as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct DrawRow {
    pub server_seed: Vec<u8>,
    pub frozen_at: Option<DateTime<Utc>>,
    /// The result's JSON, as stored (see [`DrawRow::result`]).
    pub result_json: Option<String>,
    pub enqueued_at: Option<DateTime<Utc>>,
}

impl DrawRow {
    /// The stored result, once drawn.
    pub fn result(&self) -> Result<Option<DrawResult>, serde_json::Error> {
        self.result_json.as_deref().map(serde_json::from_str).transpose()
    }
}

pub async fn find_draw(db: impl sqlx::PgExecutor<'_>, sale: SaleId) -> Result<Option<DrawRow>, sqlx::Error> {
    sqlx::query_as(
        "select server_seed, frozen_at, result::text as result_json, enqueued_at from sale_draws where sale_id = $1",
    )
    .bind(sale.0)
    .fetch_optional(db)
    .await
}

/// A pre-queue entry.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EntryRow {
    pub owner: String,
    pub entry_id: Vec<u8>,
    pub reservation: Uuid,
    pub quantity: i16,
}

/// What a pre-queue join found or made.
#[derive(Debug)]
pub enum Joined {
    /// The entry of this owner: `created` when this call made it.
    Entry { entry: EntryRow, created: bool },
    /// The list is frozen (or the opening came): no entry is made any more.
    Frozen,
}

/// Puts `entry` on the sale's pre-queue unless its owner has one already, making the sale's
/// draw (with `server_seed`) if it has none yet. Under the draw row's share lock, so that the
/// freeze waits for this and this sees a freeze that came first.
pub async fn join(db: &PgPool, sale: SaleId, entry: &EntryRow, server_seed: &[u8]) -> Result<Joined, sqlx::Error> {
    let mut tx = db.begin().await?;
    make_draw(&mut *tx, sale, server_seed).await?;
    let open = lock_open_list(&mut tx, sale).await?;
    if let Some(existing) = owner_entry(&mut *tx, sale, &entry.owner).await? {
        tx.commit().await?;
        return Ok(Joined::Entry {
            entry: existing,
            created: false,
        });
    }
    if !open {
        // Kept even so: the caller has marked the sale in Redis as awaiting a draw, and only
        // a draw (with no entries, if need be) lifts the mark.
        tx.commit().await?;
        return Ok(Joined::Frozen);
    }
    let made = sqlx::query(
        "insert into prequeue_entries (sale_id, owner, entry_id, reservation, quantity)
         values ($1, $2, $3, $4, $5)
         on conflict (sale_id, owner) do nothing",
    )
    .bind(sale.0)
    .bind(&entry.owner)
    .bind(&entry.entry_id)
    .bind(entry.reservation)
    .bind(entry.quantity)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    // A racing join of the same owner committed first: its entry is the one.
    let stored = owner_entry(&mut *tx, sale, &entry.owner)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    Ok(Joined::Entry {
        entry: stored,
        created: made,
    })
}

/// Makes the sale's draw with `server_seed` unless it has one.
async fn make_draw(db: impl sqlx::PgExecutor<'_>, sale: SaleId, server_seed: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("insert into sale_draws (sale_id, server_seed) values ($1, $2) on conflict (sale_id) do nothing")
        .bind(sale.0)
        .bind(server_seed)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes the draw row's share lock, so that the freeze waits for the caller's transaction;
/// true while the list is not frozen and the opening has not come.
async fn lock_open_list(tx: &mut sqlx::PgConnection, sale: SaleId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select d.frozen_at is null and clock_timestamp() < s.opens_at
         from sale_draws d join ticket_sales s on s.id = d.sale_id
         where d.sale_id = $1
         for share of d",
    )
    .bind(sale.0)
    .fetch_one(tx)
    .await
}

/// What the confirmation of a mailed link found or made.
#[derive(Debug)]
pub enum Confirmed {
    /// The entry of this owner: made by this call (`created`), or the owner's own from before
    /// (the link left unused).
    Entry { entry: EntryRow, created: bool },
    /// The list is frozen (or the opening came).
    Frozen,
    /// The link was used already, or has expired.
    LinkSpent,
    /// The link's address holds a place in the sale already; the link is left unused.
    EmailTaken,
}

/// Spends the link `link` and puts `entry` on the sale's pre-queue under the link's address
/// digest, in one transaction under the draw row's share lock: the link is used only if the
/// entry is made. Of two confirmations of one link, or of two links of one address, at the
/// same moment, one makes the entry: the link's row lock and the unique digest per sale decide.
pub async fn confirm(
    db: &PgPool,
    sale: SaleId,
    entry: &EntryRow,
    server_seed: &[u8],
    link: Uuid,
) -> Result<Confirmed, sqlx::Error> {
    // Committed on its own: the caller has marked the sale in Redis as awaiting a draw, and
    // only a draw (with no entries, if need be) lifts the mark.
    make_draw(db, sale, server_seed).await?;
    let mut tx = db.begin().await?;
    if !lock_open_list(&mut tx, sale).await? {
        return Ok(Confirmed::Frozen);
    }
    if let Some(existing) = owner_entry(&mut *tx, sale, &entry.owner).await? {
        return Ok(Confirmed::Entry {
            entry: existing,
            created: false,
        });
    }
    let digest: Option<Vec<u8>> = sqlx::query_scalar(
        "update prequeue_links set used_at = clock_timestamp()
         where id = $1 and sale_id = $2 and used_at is null and expires_at > clock_timestamp()
         returning email_digest",
    )
    .bind(link)
    .bind(sale.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(digest) = digest else {
        return Ok(Confirmed::LinkSpent);
    };
    let made = sqlx::query(
        "insert into prequeue_entries (sale_id, owner, entry_id, reservation, quantity, email_digest)
         values ($1, $2, $3, $4, $5, $6)
         on conflict do nothing",
    )
    .bind(sale.0)
    .bind(&entry.owner)
    .bind(&entry.entry_id)
    .bind(entry.reservation)
    .bind(entry.quantity)
    .bind(&digest)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !made {
        // A racing join of the same owner, or of the same address, committed first.
        return Ok(match owner_entry(&mut *tx, sale, &entry.owner).await? {
            Some(existing) => Confirmed::Entry {
                entry: existing,
                created: false,
            },
            None => Confirmed::EmailTaken,
        });
    }
    let stored = owner_entry(&mut *tx, sale, &entry.owner)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    Ok(Confirmed::Entry {
        entry: stored,
        created: true,
    })
}

/// The entry of `owner` in the sale's pre-queue.
pub async fn owner_entry(
    db: impl sqlx::PgExecutor<'_>,
    sale: SaleId,
    owner: &str,
) -> Result<Option<EntryRow>, sqlx::Error> {
    sqlx::query_as(
        "select owner, entry_id, reservation, quantity from prequeue_entries where sale_id = $1 and owner = $2",
    )
    .bind(sale.0)
    .bind(owner)
    .fetch_optional(db)
    .await
}

/// The entry whose reservation code is `reservation`, if `owner` holds it.
pub async fn find_entry(
    db: &PgPool,
    sale: SaleId,
    reservation: Uuid,
    owner: &str,
) -> Result<Option<EntryRow>, sqlx::Error> {
    sqlx::query_as(
        "select owner, entry_id, reservation, quantity from prequeue_entries
         where sale_id = $1 and reservation = $2 and owner = $3",
    )
    .bind(sale.0)
    .bind(reservation)
    .bind(owner)
    .fetch_optional(db)
    .await
}

/// What a leave did.
#[derive(Debug, PartialEq, Eq)]
pub enum Left {
    Removed,
    /// No such entry of this owner.
    NotFound,
    /// The list is frozen: the entry is in the draw.
    Frozen,
}

/// Takes the entry off the pre-queue while the list is not frozen.
pub async fn leave(db: &PgPool, sale: SaleId, reservation: Uuid, owner: &str) -> Result<Left, sqlx::Error> {
    let mut tx = db.begin().await?;
    let frozen: Option<bool> =
        sqlx::query_scalar("select frozen_at is not null from sale_draws where sale_id = $1 for share")
            .bind(sale.0)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(frozen) = frozen else {
        return Ok(Left::NotFound);
    };
    if !find_entry_in(&mut *tx, sale, reservation, owner).await? {
        return Ok(Left::NotFound);
    }
    if frozen {
        return Ok(Left::Frozen);
    }
    sqlx::query("delete from prequeue_entries where sale_id = $1 and reservation = $2 and owner = $3")
        .bind(sale.0)
        .bind(reservation)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Left::Removed)
}

async fn find_entry_in(
    db: impl sqlx::PgExecutor<'_>,
    sale: SaleId,
    reservation: Uuid,
    owner: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i32> =
        sqlx::query_scalar("select 1 from prequeue_entries where sale_id = $1 and reservation = $2 and owner = $3")
            .bind(sale.0)
            .bind(reservation)
            .bind(owner)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Freezes the sale's list once its opening has come (by Postgres's clock); the moment of the
/// freeze, whoever made it, or `None` before the opening. Several instances may call this at
/// once: the row lock lets one set `frozen_at` and the others read it.
pub async fn freeze(db: &PgPool, sale: SaleId) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let set: Option<DateTime<Utc>> = sqlx::query_scalar(
        "update sale_draws d set frozen_at = clock_timestamp()
         from ticket_sales s
         where d.sale_id = $1 and s.id = d.sale_id and d.frozen_at is null and s.opens_at <= clock_timestamp()
         returning d.frozen_at",
    )
    .bind(sale.0)
    .fetch_optional(db)
    .await?;
    if set.is_some() {
        return Ok(set);
    }
    Ok(find_draw(db, sale).await?.and_then(|d| d.frozen_at))
}

/// Every entry of the sale (after the freeze: the frozen list).
pub async fn entries(db: &PgPool, sale: SaleId) -> Result<Vec<EntryRow>, sqlx::Error> {
    sqlx::query_as("select owner, entry_id, reservation, quantity from prequeue_entries where sale_id = $1")
        .bind(sale.0)
        .fetch_all(db)
        .await
}

/// Stores the draw's result unless one is stored; the stored one (every instance computes
/// the same).
pub async fn store_result(db: &PgPool, sale: SaleId, result: &DrawResult) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(result).expect("a draw result serializes");
    sqlx::query("update sale_draws set result = $2::jsonb where sale_id = $1 and result is null")
        .bind(sale.0)
        .bind(json)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mark_enqueued(db: &PgPool, sale: SaleId) -> Result<(), sqlx::Error> {
    sqlx::query("update sale_draws set enqueued_at = now() where sale_id = $1 and enqueued_at is null")
        .bind(sale.0)
        .execute(db)
        .await?;
    Ok(())
}

/// Sales whose opening has come and whose drawn entries are not in the queue yet (closed
/// sales aside: their buyers are told so, nobody is queued; and sales whose live state is gone
/// with their event).
pub async fn due(db: &PgPool) -> Result<Vec<SaleId>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "select d.sale_id from sale_draws d
         join ticket_sales s on s.id = d.sale_id join events e on e.id = s.event_id
         where d.enqueued_at is null and s.opens_at <= now() and s.state <> 'closed'
           and e.ends_at > now() - interval '1 day'",
    )
    .fetch_all(db)
    .await?;
    Ok(ids.into_iter().map(SaleId).collect())
}
