use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::sale::{SaleId, SaleState};

/// A ticket sale as Postgres records it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SaleRecord {
    pub id: Uuid,
    pub event_id: Uuid,
    pub capacity: i32,
    pub price_minor: i64,
    pub currency: String,
    pub sold: i32,
    pub opens_at: DateTime<Utc>,
    pub state: String,
    pub hold_secs: i32,
    pub max_active: i32,
    /// How long before `opens_at` the pre-queue is open; 0: no pre-queue.
    pub prequeue_secs: i32,
    /// Each pre-queue place needs an email confirmed by a mailed link, one place per email.
    pub one_place_per_email: bool,
}

impl SaleRecord {
    pub fn sale_id(&self) -> SaleId {
        SaleId(self.id)
    }

    pub fn sale_state(&self) -> SaleState {
        self.state.parse().unwrap_or(SaleState::Closed)
    }
}

/// A new sale, already checked.
#[derive(Clone, Debug)]
pub struct NewSale {
    pub event_id: Uuid,
    pub capacity: i32,
    pub price_minor: i64,
    pub currency: String,
    pub opens_at: DateTime<Utc>,
    pub hold_secs: i32,
    pub max_active: i32,
    pub prequeue_secs: i32,
    pub one_place_per_email: bool,
}

const COLUMNS: &str = "id, event_id, capacity, price_minor, currency, sold, opens_at, state, hold_secs, max_active, prequeue_secs, \
     one_place_per_email";
/// The same, for a statement that joins the events (which have columns of the same names).
const QUALIFIED_COLUMNS: &str = "ticket_sales.id, ticket_sales.event_id, ticket_sales.capacity, \
     ticket_sales.price_minor, ticket_sales.currency, ticket_sales.sold, ticket_sales.opens_at, \
     ticket_sales.state, ticket_sales.hold_secs, ticket_sales.max_active, ticket_sales.prequeue_secs, \
     ticket_sales.one_place_per_email";

pub async fn insert(db: impl sqlx::PgExecutor<'_>, s: &NewSale) -> Result<SaleRecord, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into ticket_sales (id, event_id, capacity, price_minor, currency, opens_at, hold_secs, max_active,
                                   prequeue_secs, one_place_per_email)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(s.event_id)
    .bind(s.capacity)
    .bind(s.price_minor)
    .bind(&s.currency)
    .bind(s.opens_at)
    .bind(s.hold_secs)
    .bind(s.max_active)
    .bind(s.prequeue_secs)
    .bind(s.one_place_per_email)
    .fetch_one(db)
    .await
}

/// How many sales the event has, closed ones included.
pub async fn count_for_event(db: impl sqlx::PgExecutor<'_>, event: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from ticket_sales where event_id = $1")
        .bind(event)
        .fetch_one(db)
        .await
}

pub async fn find(db: &PgPool, id: SaleId) -> Result<Option<SaleRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from ticket_sales where id = $1"
    )))
    .bind(id.0)
    .fetch_optional(db)
    .await
}

/// What the live state of a sale is rebuilt from, read in one statement so that every part
/// comes from the same snapshot.
#[derive(Debug, sqlx::FromRow)]
pub struct SaleSnapshot {
    #[sqlx(flatten)]
    pub sale: SaleRecord,
    /// Raised by every change of the sale's state.
    pub revision: i64,
    /// The event's seats not yet sold by any of its sales.
    pub event_seats_left: i64,
    pub event_ends_at: DateTime<Utc>,
    /// Tickets of the sale's orders offered for return and not taken yet (`db::returns`):
    /// sold in Postgres, free for the live sale to sell again.
    pub returns_open: i64,
    /// The `xmin` of this read's snapshot: every order of a transaction below it is seen here.
    pub read_xmin: i64,
    /// The orders written by transactions from `since` on (see `snapshot`): reservation code,
    /// quantity (0 for a cancelled order: its tickets went back) and transaction id, each list
    /// in the same order.
    pub order_codes: Vec<Uuid>,
    pub order_quantities: Vec<i16>,
    pub order_xacts: Vec<i64>,
    /// The sale has a pre-queue whose drawn entries are not in the Redis queue yet: joins after
    /// the opening wait for them (see `sale::prequeue`).
    pub draw_pending: bool,
}

impl SaleSnapshot {
    /// The most tickets the sale may still count as sold or held: its own capacity, less what
    /// the event's other sales took of the event's seats.
    pub fn live_capacity(&self) -> i64 {
        i64::from(self.sale.capacity).min(i64::from(self.sale.sold) + self.event_seats_left.max(0))
    }
}

/// The sale with the orders written by transactions `since` or later: all of them when
/// `since` is 0, only those a read with `read_xmin` = `since` may have missed otherwise.
pub async fn snapshot(db: &PgPool, id: SaleId, since: i64) -> Result<Option<SaleSnapshot>, sqlx::Error> {
    let returns_open = crate::db::returns::open_of_sale_sql("ticket_sales.id");
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {QUALIFIED_COLUMNS}, ticket_sales.revision,
                (e.capacity - e.sold)::bigint
                    as event_seats_left,
                e.ends_at as event_ends_at,
                {returns_open} as returns_open,
                pg_snapshot_xmin(pg_current_snapshot())::text::bigint as read_xmin,
                array(select reservation_code from orders
                      where sale_id = ticket_sales.id and xact >= $2 order by id) as order_codes,
                array(select case when state = 'cancelled' then 0::int2 else quantity end from orders
                      where sale_id = ticket_sales.id and xact >= $2 order by id) as order_quantities,
                array(select xact from orders
                      where sale_id = ticket_sales.id and xact >= $2 order by id) as order_xacts,
                exists(select 1 from sale_draws d
                       where d.sale_id = ticket_sales.id and d.enqueued_at is null) as draw_pending
         from ticket_sales join events e on e.id = ticket_sales.event_id
         where ticket_sales.id = $1"
    )))
    .bind(id.0)
    .bind(since)
    .fetch_optional(db)
    .await
}

/// Sales whose Redis state must be kept in step: those of events that have not ended (a day
/// ago at the latest), closed ones included, so that a close Redis missed still reaches it.
pub async fn live_ids(db: &PgPool) -> Result<Vec<SaleId>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "select s.id from ticket_sales s join events e on e.id = s.event_id
         where e.ends_at > now() - interval '1 day'",
    )
    .fetch_all(db)
    .await?;
    Ok(ids.into_iter().map(SaleId).collect())
}

/// Moves a sale to `state`, unless it is closed: closing is final, whatever raced with it.
/// False when no open or paused sale `id` exists.
pub async fn set_state(db: &PgPool, id: SaleId, state: SaleState) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("update ticket_sales set state = $2, revision = revision + 1 where id = $1 and state <> 'closed'")
            .bind(id.0)
            .bind(state.as_str())
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The sale `id` if it belongs to an event of `organizer`; another organizer's sale looks
/// exactly like a missing one.
pub async fn find_owned(db: &PgPool, id: SaleId, organizer: Uuid) -> Result<Option<SaleRecord>, sqlx::Error> {
    sqlx::query_as(
        "select s.id, s.event_id, s.capacity, s.price_minor, s.currency, s.sold, s.opens_at, s.state,
                s.hold_secs, s.max_active, s.prequeue_secs, s.one_place_per_email
         from ticket_sales s join events e on e.id = s.event_id
         where s.id = $1 and e.organizer_id = $2",
    )
    .bind(id.0)
    .bind(organizer)
    .fetch_optional(db)
    .await
}

/// The sales of an event, oldest first.
pub async fn list_for_event(db: &PgPool, event: Uuid) -> Result<Vec<SaleRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from ticket_sales where event_id = $1 order by created_at, id"
    )))
    .bind(event)
    .fetch_all(db)
    .await
}
