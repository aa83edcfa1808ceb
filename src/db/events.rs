use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Event {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub title: String,
    pub description: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub price_minor: i64,
    pub currency: String,
}

/// A new event, already checked.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub organizer_id: Uuid,
    pub title: String,
    pub description: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub price_minor: i64,
    pub currency: String,
}

const COLUMNS: &str =
    "id, organizer_id, title, description, venue, starts_at, ends_at, capacity, price_minor, currency";

pub async fn insert(db: impl sqlx::PgExecutor<'_>, e: &NewEvent) -> Result<Event, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into events (id, organizer_id, title, description, venue, starts_at, ends_at, capacity, price_minor, currency)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(e.organizer_id)
    .bind(&e.title)
    .bind(&e.description)
    .bind(&e.venue)
    .bind(e.starts_at)
    .bind(e.ends_at)
    .bind(e.capacity)
    .bind(e.price_minor)
    .bind(&e.currency)
    .fetch_one(db)
    .await
}

/// How many of the organizer's events have not ended yet.
pub async fn count_live_of_organizer(db: impl sqlx::PgExecutor<'_>, organizer: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from events where organizer_id = $1 and ends_at > now()")
        .bind(organizer)
        .fetch_one(db)
        .await
}

pub async fn find(db: &PgPool, id: Uuid) -> Result<Option<Event>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from events where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// An event together with one ticket sale of it: what the buyer's pages show.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Listing {
    pub sale_id: Uuid,
    pub event_id: Uuid,
    pub title: String,
    pub description: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The sale's own price, copied from the event when the sale was made.
    pub price_minor: i64,
    pub currency: String,
    pub opens_at: DateTime<Utc>,
}

const LISTING_COLUMNS: &str = "s.id as sale_id, e.id as event_id, e.title, e.description, e.venue, e.starts_at, \
                               e.ends_at, s.price_minor, s.currency, s.opens_at";

/// Events that have not started, soonest first, each with its newest ticket sale. Events
/// without a sale are not for sale and are left out.
pub async fn upcoming_listings(db: &PgPool, limit: i64) -> Result<Vec<Listing>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select * from (
             select distinct on (e.id) {LISTING_COLUMNS}
             from events e join ticket_sales s on s.event_id = e.id
             where e.starts_at > now()
             order by e.id, s.created_at desc
         ) newest
         order by starts_at, event_id
         limit $1"
    )))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The listing of one sale.
pub async fn listing_of_sale(db: &PgPool, sale: Uuid) -> Result<Option<Listing>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {LISTING_COLUMNS} from ticket_sales s join events e on e.id = s.event_id where s.id = $1"
    )))
    .bind(sale)
    .fetch_optional(db)
    .await
}

/// The event `id` if `organizer` made it. Another organizer's event looks exactly like a
/// missing one, so that ids of others cannot be probed.
pub async fn find_owned(db: &PgPool, id: Uuid, organizer: Uuid) -> Result<Option<Event>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from events where id = $1 and organizer_id = $2"
    )))
    .bind(id)
    .bind(organizer)
    .fetch_optional(db)
    .await
}

/// An organizer's events, newest first.
pub async fn list_for_organizer(db: &PgPool, organizer: Uuid) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from events where organizer_id = $1 order by created_at desc, id"
    )))
    .bind(organizer)
    .fetch_all(db)
    .await
}

/// Changes the title, description and venue, the only parts of an event that may change
/// after it was made, and only by its organizer. `None` when there is no such event of theirs.
pub async fn update_text(
    db: &PgPool,
    id: Uuid,
    organizer: Uuid,
    title: &str,
    description: &str,
    venue: &str,
) -> Result<Option<Event>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update events set title = $3, description = $4, venue = $5 where id = $1 and organizer_id = $2
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(organizer)
    .bind(title)
    .bind(description)
    .bind(venue)
    .fetch_optional(db)
    .await
}
