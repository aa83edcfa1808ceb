//! Returns: tickets of a confirmed (or paid) order that its buyer offers back. They stay the
//! buyer's, valid at the door, until another order of the sale takes them: [`take`], in that
//! order's own transaction, marks them `returned` (and an order with every ticket returned
//! `returned`), so a seat is never held by two valid tickets, nor by none. A return may be
//! withdrawn ([`withdraw`]) until then: both are guarded statements on the ticket rows, and
//! whichever reaches a row first decides it. Once the event has started a return is over and
//! the buyer keeps the tickets ([`OPEN`]).
//!
//! For the live sale a ticket offered for return is an unsold one: the sale's sync counts
//! Postgres's `sold` less the open returns ([`open_of_sale_sql`]), and the script that records
//! a return gives its tickets to the waitlist as any freed ticket.

use sqlx::{PgConnection, PgPool};

use crate::sale::SaleId;

/// The one rule of an open return, over a ticket `t` of an order of a sale whose event is `e`:
/// offered, not used at the door, and the event not started.
const OPEN: &str = "t.return_state = 'offered' and t.checked_in_at is null and e.starts_at > now()";

/// The tickets `t` with their event `e`.
const TICKETS_WITH_EVENT: &str = "tickets t join orders o on o.id = t.order_id
     join ticket_sales s on s.id = o.sale_id join events e on e.id = s.event_id";

/// The number of open returns of the sale named by the SQL expression `sale`, as a subquery.
pub fn open_of_sale_sql(sale: &str) -> String {
    format!("(select count(*) from {TICKETS_WITH_EVENT} where o.sale_id = {sale} and {OPEN})")
}

/// What offering an order's tickets for return came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered {
    /// These many tickets are offered now.
    Offered(i64),
    /// The organizer does not take returns for this sale.
    NotAllowed,
    /// Tickets of the order are offered already: withdraw that return first.
    Pending,
    /// Nothing to return: the order is not confirmed or paid, its tickets are used or
    /// returned, or the event has started.
    Nothing,
    /// Fewer tickets left to return than asked for.
    TooMany { left: i64 },
}

/// Offers `tickets` of the order for return, its highest-numbered ones not used or returned.
/// The order's row is taken `for update`, so two returns of one order at once offer once.
pub async fn offer(db: &PgPool, order_id: i64, tickets: i64) -> Result<Offered, sqlx::Error> {
    let mut tx = db.begin().await?;
    let row: Option<(bool, bool, bool, i64, i64)> = sqlx::query_as(
        "select o.state in ('confirmed', 'paid'), s.returns_allowed, e.starts_at > now(),
                (select count(*) from tickets t where t.order_id = o.id and t.return_state = 'offered'),
                (select count(*) from tickets t
                 where t.order_id = o.id and t.return_state is null and t.checked_in_at is null)
         from orders o join ticket_sales s on s.id = o.sale_id join events e on e.id = s.event_id
         where o.id = $1 for update of o",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((valid, allowed, before_start, offered, left)) = row else {
        return Ok(Offered::Nothing);
    };
    let refusal = if !allowed {
        Some(Offered::NotAllowed)
    } else if offered > 0 && before_start {
        Some(Offered::Pending)
    } else if !valid || !before_start || left == 0 {
        Some(Offered::Nothing)
    } else if tickets > left {
        Some(Offered::TooMany { left })
    } else {
        None
    };
    if let Some(refusal) = refusal {
        tx.rollback().await?;
        return Ok(refusal);
    }
    let done = sqlx::query(
        "update tickets set return_state = 'offered', return_offered_at = now()
         where id in (select id from tickets
                      where order_id = $1 and return_state is null and checked_in_at is null
                      order by number desc limit $2)",
    )
    .bind(order_id)
    .bind(tickets)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Offered::Offered(done as i64))
}

/// Withdraws the order's return: its tickets offered and not yet taken are the buyer's alone
/// again. One statement: a ticket an order is taking at this moment is waited for, and then
/// found returned, so of a withdrawal and a purchase of one ticket exactly one wins. Returns
/// how many tickets were withdrawn (0: none was offered any more). The tickets are locked in
/// the order [`take`] locks them (offered first, then id): two transactions that lock the same
/// rows in different orders deadlock, and Postgres would then fail one of them, the purchase
/// as likely as the withdrawal.
pub async fn withdraw(db: &PgPool, order_id: i64) -> Result<i64, sqlx::Error> {
    let done = sqlx::query(
        "update tickets t set return_state = null, return_offered_at = null
         from (select id from tickets
               where order_id = $1 and return_state = 'offered'
               order by return_offered_at, id
               for update) mine
         where t.id = mine.id and t.return_state = 'offered'",
    )
    .bind(order_id)
    .execute(db)
    .await?
    .rows_affected();
    Ok(done as i64)
}

/// Inside the transaction of a new order of `sale` for `quantity` tickets: takes up to that
/// many open returns of the sale, oldest first, marks them `returned` (an order with all its
/// tickets returned becomes `returned`), and queues the refund of each paid order they came
/// from. Returns how many were taken; the caller counts only the rest as newly sold. The
/// tickets are locked `for update`: a withdrawal that got there first is waited for and its
/// tickets skipped; one that comes after finds them returned.
pub async fn take(tx: &mut PgConnection, sale: SaleId, quantity: u8) -> Result<i32, sqlx::Error> {
    let from: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "with due as (
             select t.id from {TICKETS_WITH_EVENT}
             where o.sale_id = $1 and {OPEN}
             order by t.return_offered_at, t.id limit $2
             for update of t
         )
         update tickets t set return_state = 'returned'
         from due where t.id = due.id
         returning t.order_id"
    )))
    .bind(sale.0)
    .bind(i64::from(quantity))
    .fetch_all(&mut *tx)
    .await?;
    if from.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "update orders o set state = 'returned'
         where o.id = any($1) and o.state in ('confirmed', 'paid')
           and not exists (select 1 from tickets t
                           where t.order_id = o.id and t.return_state is distinct from 'returned')",
    )
    .bind(&from)
    .execute(&mut *tx)
    .await?;
    // A paid order gets back the price of each ticket taken; the row is named by how many of
    // its tickets are returned now, which is also the refund's idempotency key.
    sqlx::query(
        "insert into return_refunds (order_id, returned, amount_minor)
         select o.id, (select count(*) from tickets t where t.order_id = o.id and t.return_state = 'returned'),
                x.n * o.unit_price_minor
         from orders o join (select id, count(*) as n from unnest($1::bigint[]) as u(id) group by id) x
              on x.id = o.id
         where o.payment_intent is not null and o.unit_price_minor > 0",
    )
    .bind(&from)
    .execute(&mut *tx)
    .await?;
    Ok(from.len() as i32)
}

/// Tickets offered for return (open: not bought yet) and returned (bought by other orders).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ReturnCounts {
    pub pending: i64,
    pub returned: i64,
}

/// The returns of one order.
pub async fn of_order(db: &PgPool, order_id: i64) -> Result<ReturnCounts, sqlx::Error> {
    counts(db, Some(order_id), None).await
}

/// The returns of all the sale's orders.
pub async fn of_sale(db: &PgPool, sale: SaleId) -> Result<ReturnCounts, sqlx::Error> {
    counts(db, None, Some(sale)).await
}

async fn counts(db: &PgPool, order_id: Option<i64>, sale: Option<SaleId>) -> Result<ReturnCounts, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select count(*) filter (where {OPEN}) as pending,
                count(*) filter (where t.return_state = 'returned') as returned
         from {TICKETS_WITH_EVENT}
         where t.return_state is not null
           and ($1::bigint is null or t.order_id = $1) and ($2::uuid is null or o.sale_id = $2)"
    )))
    .bind(order_id)
    .bind(sale.map(|s| s.0))
    .fetch_one(db)
    .await
}

/// Whether the sale takes returns.
pub async fn allowed(db: &PgPool, sale: SaleId) -> Result<bool, sqlx::Error> {
    let allowed: Option<bool> = sqlx::query_scalar("select returns_allowed from ticket_sales where id = $1")
        .bind(sale.0)
        .fetch_optional(db)
        .await?;
    Ok(allowed.unwrap_or(false))
}

/// Sets whether the sale takes returns. False when there is no such sale.
pub async fn set_allowed(db: &PgPool, sale: SaleId, allowed: bool) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("update ticket_sales set returns_allowed = $2 where id = $1")
        .bind(sale.0)
        .bind(allowed)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A refund owed for returned tickets of a paid order.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DueRefund {
    pub order_id: i64,
    pub returned: i16,
    pub amount_minor: i64,
    pub payment_intent: String,
    pub number: String,
}

impl DueRefund {
    /// The refund's idempotency key: one refund per taking, however often it is retried.
    pub fn key(&self) -> String {
        format!("return-{}-{}", self.number, self.returned)
    }
}

/// The oldest refunds owed, at most `limit`.
pub async fn due_refunds(db: &PgPool, limit: i64) -> Result<Vec<DueRefund>, sqlx::Error> {
    sqlx::query_as(
        "select r.order_id, r.returned, r.amount_minor, o.payment_intent, o.number
         from return_refunds r join orders o on o.id = r.order_id
         where r.refund_id is null and o.payment_intent is not null
         order by r.created_at limit $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn set_refund(db: &PgPool, due: &DueRefund, refund: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update return_refunds set refund_id = $3 where order_id = $1 and returned = $2")
        .bind(due.order_id)
        .bind(due.returned)
        .bind(refund)
        .execute(db)
        .await?;
    Ok(())
}
