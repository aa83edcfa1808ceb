//! Tickets: one per seat of an order, made in the order's transaction, admitted at the door
//! once.
//!
//! A ticket is valid only while its order is `confirmed` (the shop without payment) or `paid`
//! and the ticket itself has not been returned (another order took its seat, `db::returns`);
//! [`VALID_TICKET`] is that rule, used by every statement that asks it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::sale::SaleId;

/// When a ticket `t` of order `o` admits its holder: the order's states of
/// `Order::tickets_valid` in Rust, and the ticket not returned.
const VALID_TICKET: &str = "o.state in ('confirmed', 'paid') and t.return_state is distinct from 'returned'";

/// One ticket as the PDF and the door show it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Ticket {
    /// What the QR code holds.
    pub code: String,
    /// 1-based place among the order's tickets ("2 of 3").
    pub number: i16,
    /// How many tickets its order has.
    pub of: i16,
}

/// A new ticket code: 128 random bits from the operating system, base64url (22 characters), so
/// it is safe in a URL and a QR code and cannot be guessed.
pub fn new_code() -> String {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits).expect("the operating system's random source is available");
    URL_SAFE_NO_PAD.encode(bits)
}

/// Whether `text` could be a ticket code at all: base64url characters only, as `new_code` and
/// the migration write them. Anything else is no ticket, and never reaches Postgres (which
/// refuses a NUL byte in text).
pub fn could_be_a_code(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Makes the `quantity` tickets of a new order, inside the order's transaction.
pub async fn issue(tx: &mut PgConnection, order_id: i64, quantity: u8) -> Result<(), sqlx::Error> {
    let codes: Vec<String> = (0..quantity).map(|_| new_code()).collect();
    sqlx::query(
        "insert into tickets (order_id, number, code)
         select $1, n, code from unnest($2::text[]) with ordinality as t(code, n)",
    )
    .bind(order_id)
    .bind(&codes)
    .execute(tx)
    .await?;
    Ok(())
}

/// The tickets of an order that are still its buyer's (not returned), in their order ("1 of 3"
/// first).
pub async fn of_order(db: &PgPool, order_id: i64) -> Result<Vec<Ticket>, sqlx::Error> {
    sqlx::query_as(
        "select t.code, t.number, o.quantity as of
         from tickets t join orders o on o.id = t.order_id
         where t.order_id = $1 and t.return_state is distinct from 'returned' order by t.number",
    )
    .bind(order_id)
    .fetch_all(db)
    .await
}

/// What the door learns from a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckIn {
    /// First scan: let the holder in.
    Admitted(ScannedTicket),
    /// Scanned before, at `checked_in_at`.
    AlreadyUsed(ScannedTicket),
    /// No valid ticket of this sale's event has this code (unknown, another event, or an order
    /// that is not confirmed or paid).
    NotValid,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ScannedTicket {
    pub holder: String,
    pub number: i16,
    pub of: i16,
    pub checked_in_at: DateTime<Utc>,
}

/// Admits the ticket `code` at the door of `sale`'s event: one statement, so of any number of
/// scans of one ticket at the same moment exactly one is admitted. The update's
/// `checked_in_at is null` is re-checked by Postgres on the newest row version after waiting
/// for a concurrent scan, which then finds it set.
///
/// The order's row is read `for share`: a transaction that is changing the order (cancelling
/// it, paying it) makes the scan wait for its end, and Postgres then checks the order's state
/// again on the row as that transaction left it. A scan therefore never admits on the strength
/// of a state a concurrent cancellation is taking away; while a scan holds the row, a
/// cancellation waits for it instead.
///
/// Any sale of the event admits: the door is the event's, whichever sale the ticket came from.
pub async fn check_in(db: &PgPool, sale: SaleId, code: &str) -> Result<CheckIn, sqlx::Error> {
    if !could_be_a_code(code) {
        return Ok(CheckIn::NotValid);
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        holder: String,
        number: i16,
        of: i16,
        checked_in_at: Option<DateTime<Utc>>,
        admitted: bool,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "with ticket as (
             select t.id, o.buyer_name as holder, t.number, o.quantity as of, t.checked_in_at
             from tickets t
             join orders o on o.id = t.order_id
             join ticket_sales s on s.id = o.sale_id
             where t.code = $1 and {VALID_TICKET}
               and s.event_id = (select event_id from ticket_sales where id = $2)
             for share of o
         ), admitted as (
             update tickets t set checked_in_at = now()
             from ticket where t.id = ticket.id and t.checked_in_at is null
               and t.return_state is distinct from 'returned'
             returning t.id, t.checked_in_at
         )
         select ticket.id, ticket.holder, ticket.number, ticket.of,
                coalesce(admitted.checked_in_at, ticket.checked_in_at) as checked_in_at,
                admitted.id is not null as admitted
         from ticket left join admitted on admitted.id = ticket.id"
    )))
    .bind(code)
    .bind(sale.0)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(CheckIn::NotValid);
    };
    let checked_in_at = match row.checked_in_at {
        Some(at) => at,
        // A scan at the same moment won the row after this statement's snapshot was taken: the
        // time it set is read now that it has committed. None set: an order took the ticket's
        // seat at that moment (a return), and it admits nobody.
        None => match sqlx::query_scalar::<_, Option<DateTime<Utc>>>("select checked_in_at from tickets where id = $1")
            .bind(row.id)
            .fetch_one(db)
            .await?
        {
            Some(at) => at,
            None => return Ok(CheckIn::NotValid),
        },
    };
    let ticket = ScannedTicket {
        holder: row.holder,
        number: row.number,
        of: row.of,
        checked_in_at,
    };
    Ok(if row.admitted {
        CheckIn::Admitted(ticket)
    } else {
        CheckIn::AlreadyUsed(ticket)
    })
}

/// Tickets of `sale`'s event admitted so far, and all its valid tickets, for the door.
pub async fn admitted_of_event(db: &PgPool, sale: SaleId) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select count(t.checked_in_at), count(*)
         from tickets t
         join orders o on o.id = t.order_id
         join ticket_sales s on s.id = o.sale_id
         where {VALID_TICKET} and s.event_id = (select event_id from ticket_sales where id = $1)"
    )))
    .bind(sale.0)
    .fetch_one(db)
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_carry_128_bits_in_url_safe_text() {
        let a = super::new_code();
        assert_eq!(a.len(), 22);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, super::new_code());
        assert!(super::could_be_a_code(&a));
        assert!(
            !super::could_be_a_code("nul\u{0}byte") && !super::could_be_a_code("") && !super::could_be_a_code("a b")
        );
    }
}
