//! `sale_samples`: a sale's figures at fixed intervals, one row per interval whichever
//! instance took it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::sale::SaleId;

/// A sale's figures at `taken_at` (the start of its interval, on Redis's clock).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Sample {
    pub taken_at: DateTime<Utc>,
    pub waiting: i64,
    pub held: i64,
    pub at_checkout: i64,
    pub sold: i64,
    pub admitted: i64,
    pub orders: i64,
    pub joined: i64,
    pub left_queue: i64,
    pub released: i64,
    pub abandoned: i64,
    pub lapsed: i64,
    pub sold_out: i64,
}

/// Whether some instance has recorded the sale's sample of the turn `taken_at` already.
pub async fn taken(db: &PgPool, sale: SaleId, taken_at: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select 1 from sale_samples where sale_id = $1 and taken_at = $2)")
        .bind(sale.0)
        .bind(taken_at)
        .fetch_one(db)
        .await
}

/// Records the sample unless one of its interval is there already (another instance took
/// the turn); true when this one was recorded.
pub async fn insert_once(db: &PgPool, sale: SaleId, s: &Sample) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into sale_samples (sale_id, taken_at, waiting, held, at_checkout, sold, admitted,
                                   orders, joined, left_queue, released, abandoned, lapsed,
                                   sold_out)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         on conflict (sale_id, taken_at) do nothing",
    )
    .bind(sale.0)
    .bind(s.taken_at)
    .bind(s.waiting)
    .bind(s.held)
    .bind(s.at_checkout)
    .bind(s.sold)
    .bind(s.admitted)
    .bind(s.orders)
    .bind(s.joined)
    .bind(s.left_queue)
    .bind(s.released)
    .bind(s.abandoned)
    .bind(s.lapsed)
    .bind(s.sold_out)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sale's samples, oldest first.
pub async fn list_for_sale(db: &PgPool, sale: SaleId) -> Result<Vec<Sample>, sqlx::Error> {
    sqlx::query_as(
        "select taken_at, waiting, held, at_checkout, sold, admitted, orders, joined, left_queue, released,
                abandoned, lapsed, sold_out
         from sale_samples where sale_id = $1 order by taken_at",
    )
    .bind(sale.0)
    .fetch_all(db)
    .await
}
