use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::sale::{Buyer, SaleId};

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Order {
    /// The database's own id; it never leaves the database (tickets and mail refer to it).
    #[serde(skip)]
    pub id: i64,
    /// What the buyer quotes; random, so it tells nothing about other orders.
    pub number: String,
    #[serde(skip)]
    pub sale_id: Uuid,
    #[serde(skip)]
    pub reservation_code: Uuid,
    pub quantity: i16,
    pub unit_price_minor: i64,
    pub currency: String,
    pub buyer_name: String,
    pub buyer_email: String,
    pub buyer_age: i16,
    pub buyer_gender: String,
    pub created_at: DateTime<Utc>,
}

impl Order {
    pub fn total_minor(&self) -> i64 {
        self.unit_price_minor * i64::from(self.quantity)
    }
}

/// What became of an attempt to write an order.
#[derive(Debug)]
pub enum Placement {
    Placed(Order),
    /// The reservation had its order already (a retried or doubled checkout).
    AlreadyPlaced(Order),
    /// The sale has fewer unsold tickets than the order wants: Postgres's own guard.
    SoldOut,
    SaleClosed,
}

const COLUMNS: &str = "id, number, sale_id, reservation_code, quantity, unit_price_minor, currency, \
                       buyer_name, buyer_email, buyer_age, buyer_gender, created_at";

/// Writes the order of a reservation and counts its tickets as sold, in one transaction. The
/// statements that count them refuse to go beyond the event's seats (shared by its sales) and
/// the sale's capacity, and the unit price is the sale's price as that statement reads it.
pub async fn place(
    db: &PgPool,
    sale: SaleId,
    reservation: Uuid,
    quantity: u8,
    buyer: &Buyer,
    statement_timeout: Duration,
) -> Result<Placement, sqlx::Error> {
    let mut tx = db.begin().await?;
    let timeout_ms = statement_timeout.as_millis().to_string();
    sqlx::query(
        "select set_config('statement_timeout', $1, true),
                set_config('idle_in_transaction_session_timeout', $1, true)",
    )
    .bind(&timeout_ms)
    .execute(&mut *tx)
    .await?;

    if let Some(order) = find_by_reservation_in(&mut tx, reservation).await? {
        return Ok(Placement::AlreadyPlaced(order));
    }

    // An event's sales share its seats: the event's counter goes up first, in one statement
    // whose predicate Postgres re-checks on the newest row version after waiting for a
    // concurrent order, so two sales of one event can never both take its last seat.
    let event_seats_taken = sqlx::query(
        "update events set sold = sold + $2
         where id = (select event_id from ticket_sales where id = $1) and sold + $2 <= capacity",
    )
    .bind(sale.0)
    .bind(i32::from(quantity))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !event_seats_taken {
        tx.rollback().await?;
        return classify_refusal(db, sale, reservation).await;
    }

    let placed: Option<Order> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "with counted as (
             update ticket_sales set sold = sold + $2
             where id = $1 and state <> 'closed' and sold + $2 <= capacity
             returning price_minor, currency
         )
         insert into orders (number, sale_id, reservation_code, quantity, unit_price_minor, currency,
                             buyer_name, buyer_email, buyer_age, buyer_gender)
         select $3, $1, $4, $2, price_minor, currency, $5, $6, $7, $8 from counted
         on conflict (reservation_code) do nothing
         returning {COLUMNS}"
    )))
    .bind(sale.0)
    .bind(i16::from(quantity))
    .bind(new_order_number())
    .bind(reservation)
    .bind(&buyer.name)
    .bind(&buyer.email)
    .bind(buyer.age)
    .bind(buyer.gender.as_str())
    .fetch_optional(&mut *tx)
    .await?;

    if let Some(order) = placed {
        // Its tickets and the mail that sends them commit with it, or nothing does.
        crate::db::tickets::issue(&mut tx, order.id, quantity).await?;
        crate::db::outbox::enqueue(&mut tx, crate::db::outbox::Kind::Tickets, order.id).await?;
        tx.commit().await?;
        return Ok(Placement::Placed(order));
    }
    // Nothing written: a twin request placed it first, the sale closed, or it is sold out.
    tx.rollback().await?;
    classify_refusal(db, sale, reservation).await
}

/// Why an order was not written, read after its transaction rolled back.
async fn classify_refusal(db: &PgPool, sale: SaleId, reservation: Uuid) -> Result<Placement, sqlx::Error> {
    if let Some(order) = find_by_reservation(db, reservation).await? {
        return Ok(Placement::AlreadyPlaced(order));
    }
    let state: Option<String> = sqlx::query_scalar("select state from ticket_sales where id = $1")
        .bind(sale.0)
        .fetch_optional(db)
        .await?;
    Ok(match state.as_deref() {
        Some("closed") | None => Placement::SaleClosed,
        _ => Placement::SoldOut,
    })
}

pub async fn find_by_reservation(db: &PgPool, reservation: Uuid) -> Result<Option<Order>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    find_by_reservation_in(&mut conn, reservation).await
}

async fn find_by_reservation_in(conn: &mut PgConnection, reservation: Uuid) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from orders where reservation_code = $1"
    )))
    .bind(reservation)
    .fetch_optional(conn)
    .await
}

pub async fn find(db: &PgPool, id: i64) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from orders where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Orders of a sale, newest first.
pub async fn list_for_sale(db: &PgPool, sale: SaleId, limit: i64, offset: i64) -> Result<Vec<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from orders where sale_id = $1 order by created_at desc, id desc limit $2 offset $3"
    )))
    .bind(sale.0)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// `BO-` and ten characters of Crockford's base32 (50 random bits): easy to read out on the
/// phone, and no database id leaks through it.
fn new_order_number() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bits = Uuid::new_v4().as_u128();
    let chars: String = (0..10)
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect();
    format!("BO-{chars}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_numbers_are_short_and_distinct() {
        let a = super::new_order_number();
        let b = super::new_order_number();
        assert_eq!(a.len(), 13);
        assert!(a.starts_with("BO-"));
        assert_ne!(a, b);
    }
}

/// Orders, tickets and revenue (minor units, in the sale's currency) of a sale so far.
#[derive(Clone, Copy, Debug, Default, sqlx::FromRow)]
pub struct SaleTotals {
    pub orders: i64,
    pub tickets: i64,
    pub revenue_minor: i64,
}

pub async fn totals_for_sale(db: &PgPool, sale: SaleId) -> Result<SaleTotals, sqlx::Error> {
    sqlx::query_as(
        "select count(*) as orders,
                coalesce(sum(quantity), 0)::bigint as tickets,
                coalesce(sum(quantity::bigint * unit_price_minor), 0)::bigint as revenue_minor
         from orders where sale_id = $1",
    )
    .bind(sale.0)
    .fetch_one(db)
    .await
}
