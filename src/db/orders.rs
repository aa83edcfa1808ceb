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
    /// `confirmed` (no payment asked), `awaiting_payment`, `paid`, `cancelled` or `returned`
    /// (every ticket went to other buyers, see `db::returns`).
    pub state: String,
    /// Until when an order awaiting payment may be paid.
    pub payment_due_at: Option<DateTime<Utc>>,
    /// Its Stripe PaymentIntent, once made.
    #[serde(skip)]
    pub payment_intent: Option<String>,
}

impl Order {
    pub fn total_minor(&self) -> i64 {
        self.unit_price_minor * i64::from(self.quantity)
    }

    /// Whether its tickets are worth anything: confirmed (no payment asked) or paid. The
    /// statements over tickets say the same in SQL (`db::tickets`).
    pub fn tickets_valid(&self) -> bool {
        matches!(self.state.as_str(), "confirmed" | "paid")
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
                       buyer_name, buyer_email, buyer_age, buyer_gender, created_at, state, \
                       payment_due_at, payment_intent";

/// Writes the order of a reservation and counts its tickets as sold, in one transaction (less
/// the tickets offered for return it takes, `db::returns::take`, which were sold already). The
/// statements that count them refuse to go beyond the event's seats (shared by its sales) and
/// the sale's capacity, and the unit price is the sale's price as that statement reads it.
///
/// With `payment` (the time the buyer has to pay) the order is written `awaiting_payment`,
/// its tickets counted all the same, and the mail queued says it waits for the money; without,
/// it is `confirmed` and the tickets mail is queued.
pub async fn place(
    db: &PgPool,
    sale: SaleId,
    reservation: Uuid,
    quantity: u8,
    buyer: &Buyer,
    payment: Option<Duration>,
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

    // Tickets offered for return are sold first: the order takes them in this transaction, and
    // only the rest count as newly sold (a seat is never held by two valid tickets, nor none).
    let taken = crate::db::returns::take(&mut tx, sale, quantity).await?;
    let newly_sold = i32::from(quantity) - taken;

    // An event's sales share its seats: the event's counter goes up first, in one statement
    // whose predicate Postgres re-checks on the newest row version after waiting for a
    // concurrent order, so two sales of one event can never both take its last seat.
    let event_seats_taken = sqlx::query(
        "update events set sold = sold + $2
         where id = (select event_id from ticket_sales where id = $1) and sold + $2 <= capacity",
    )
    .bind(sale.0)
    .bind(newly_sold)
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
             update ticket_sales set sold = sold + $10
             where id = $1 and state <> 'closed' and sold + $10 <= capacity
             returning price_minor, currency
         )
         insert into orders (number, sale_id, reservation_code, quantity, unit_price_minor, currency,
                             buyer_name, buyer_email, buyer_age, buyer_gender, state, payment_due_at)
         select $3, $1, $4, $2, price_minor, currency, $5, $6, $7, $8,
                case when $9::float8 is null then 'confirmed' else 'awaiting_payment' end,
                now() + make_interval(secs => $9::float8)
         from counted
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
    .bind(payment.map(|d| d.as_secs_f64()))
    .bind(newly_sold)
    .fetch_optional(&mut *tx)
    .await?;

    if let Some(order) = placed {
        // Its tickets and the mail that sends them commit with it, or nothing does.
        crate::db::tickets::issue(&mut tx, order.id, quantity).await?;
        let mail = match payment {
            Some(_) => crate::db::outbox::Kind::AwaitingPayment,
            None => crate::db::outbox::Kind::Tickets,
        };
        crate::db::outbox::enqueue(&mut tx, mail, order.id).await?;
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

pub async fn find_by_number(db: &PgPool, number: &str) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from orders where number = $1"
    )))
    .bind(number)
    .fetch_optional(db)
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

/// Orders, tickets and revenue (minor units, in the sale's currency) of a sale so far. Tickets
/// count the orders that hold them (all but cancelled ones), less those returned (another
/// order holds them now); revenue only the money taken (paid orders, and confirmed ones of a
/// shop without payment), less the returned tickets' (refunded).
#[derive(Clone, Copy, Debug, Default, sqlx::FromRow)]
pub struct SaleTotals {
    pub orders: i64,
    pub tickets: i64,
    pub revenue_minor: i64,
    pub awaiting_payment: i64,
    pub paid: i64,
    pub cancelled: i64,
}

pub async fn totals_for_sale(db: &PgPool, sale: SaleId) -> Result<SaleTotals, sqlx::Error> {
    sqlx::query_as(
        "select count(*) as orders,
                coalesce(sum(quantity - r.n) filter (where state <> 'cancelled'), 0)::bigint as tickets,
                coalesce(sum((quantity - r.n) * unit_price_minor)
                         filter (where state in ('paid', 'confirmed')), 0)::bigint as revenue_minor,
                count(*) filter (where state = 'awaiting_payment') as awaiting_payment,
                count(*) filter (where state = 'paid') as paid,
                count(*) filter (where state = 'cancelled') as cancelled
         from orders o
         cross join lateral (select count(*) as n from tickets t
                             where t.order_id = o.id and t.return_state = 'returned') r
         where sale_id = $1",
    )
    .bind(sale.0)
    .fetch_one(db)
    .await
}

/// What became of an order's payment when it was reported.
#[derive(Debug, PartialEq, Eq)]
pub enum Payment {
    /// It moved from awaiting payment to paid now; the tickets mail is queued.
    Paid,
    /// It was paid (or confirmed) before: a repeated report changes nothing.
    AlreadyPaid,
    /// It was cancelled before the money came: the payment must be given back.
    Cancelled,
}

/// Records that an order awaiting payment is paid: one guarded statement (the state it leaves
/// in the `where`), so a webhook delivered twice, or a webhook and the buyer's return at once,
/// move it once and queue its tickets mail once.
pub async fn mark_paid(db: &PgPool, order_id: i64) -> Result<Payment, sqlx::Error> {
    let mut tx = db.begin().await?;
    let moved = sqlx::query("update orders set state = 'paid' where id = $1 and state = 'awaiting_payment'")
        .bind(order_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if moved {
        crate::db::outbox::enqueue(&mut tx, crate::db::outbox::Kind::Tickets, order_id).await?;
        tx.commit().await?;
        return Ok(Payment::Paid);
    }
    let state: String = sqlx::query_scalar("select state from orders where id = $1")
        .bind(order_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(if state == "cancelled" {
        Payment::Cancelled
    } else {
        Payment::AlreadyPaid
    })
}

/// An order cancelled now, whose tickets go back to its sale.
#[derive(Clone, Debug)]
pub struct Cancelled {
    pub order_id: i64,
    pub sale_id: Uuid,
    pub reservation_code: Uuid,
    pub quantity: i16,
    pub payment_intent: Option<String>,
}

/// Cancels an order still awaiting payment: one guarded statement, then its tickets are
/// taken off the sale's and the event's `sold` in the same transaction, and the cancellation
/// mail queued. `None` when it was not awaiting payment (paid, or cancelled already).
async fn cancel_in(tx: &mut PgConnection, order_id: i64) -> Result<Option<Cancelled>, sqlx::Error> {
    let row: Option<(Uuid, Uuid, i16, Option<String>)> = sqlx::query_as(
        "update orders set state = 'cancelled' where id = $1 and state = 'awaiting_payment'
         returning sale_id, reservation_code, quantity, payment_intent",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((sale_id, reservation_code, quantity, payment_intent)) = row else {
        return Ok(None);
    };
    // The event's row first, then the sale's: the order `place` takes them in, so that a
    // cancellation and an order of the same sale never wait for each other's second row.
    sqlx::query("update events set sold = sold - $2 where id = (select event_id from ticket_sales where id = $1)")
        .bind(sale_id)
        .bind(i32::from(quantity))
        .execute(&mut *tx)
        .await?;
    sqlx::query("update ticket_sales set sold = sold - $2 where id = $1")
        .bind(sale_id)
        .bind(i32::from(quantity))
        .execute(&mut *tx)
        .await?;
    crate::db::outbox::enqueue(tx, crate::db::outbox::Kind::Cancelled, order_id).await?;
    Ok(Some(Cancelled {
        order_id,
        sale_id,
        reservation_code,
        quantity,
        payment_intent,
    }))
}

/// The buyer gives up paying: cancels the order if it still awaits payment.
pub async fn cancel(db: &PgPool, order_id: i64) -> Result<Option<Cancelled>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let cancelled = cancel_in(&mut tx, order_id).await?;
    tx.commit().await?;
    Ok(cancelled)
}

/// Cancels one order whose payment deadline has passed, if there is one. The row is taken
/// `for update skip locked`, so several instances running this at once each take another
/// order, and none waits for another's.
pub async fn cancel_one_overdue(db: &PgPool) -> Result<Option<Cancelled>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let due: Option<i64> = sqlx::query_scalar(
        "select id from orders where state = 'awaiting_payment' and payment_due_at < now()
         order by payment_due_at limit 1 for update skip locked",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = due else {
        return Ok(None);
    };
    let cancelled = cancel_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(cancelled)
}

/// Records the order's PaymentIntent (made with the order number as its idempotency key, so
/// a second attempt gets the same one back).
pub async fn set_payment_intent(db: &PgPool, order_id: i64, intent: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update orders set payment_intent = $2 where id = $1")
        .bind(order_id)
        .bind(intent)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn find_by_payment_intent(db: &PgPool, intent: &str) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from orders where payment_intent = $1"
    )))
    .bind(intent)
    .fetch_optional(db)
    .await
}

/// Records the refund of a payment that came after the order was cancelled.
pub async fn set_refund(db: &PgPool, order_id: i64, refund: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update orders set refund_id = $2 where id = $1 and state = 'cancelled'")
        .bind(order_id)
        .bind(refund)
        .execute(db)
        .await?;
    Ok(())
}
