//! Cancels orders whose payment deadline passed, and refunds returned tickets that other
//! orders took (`Payments::refund_returns`). Every instance runs it; each order is taken
//! `for update skip locked`, so instances share the work without waiting for each other, and
//! the guarded update cancels an order once whatever races it (a payment, the buyer).

use std::time::Duration;

use sqlx::PgPool;
use tracing::{info, warn};

use crate::db::orders;
use crate::sale::TicketSales;

/// How often overdue orders are looked for: a deadline is kept within this.
const EVERY: Duration = Duration::from_secs(2);

pub async fn cancel_overdue_forever(db: PgPool, sales: TicketSales, payments: Option<super::Payments>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if let Some(payments) = &payments
            && let Err(e) = payments.refund_returns(&db).await
        {
            warn!(error = %e, "refunding returned tickets failed; will retry");
        }
        loop {
            match orders::cancel_one_overdue(&db).await {
                Ok(Some(cancelled)) => {
                    info!(sale = %cancelled.sale_id, "an order was not paid in time; cancelled");
                    super::give_back(&sales, &cancelled).await;
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "cancelling overdue orders failed; will retry");
                    break;
                }
            }
        }
    }
}
