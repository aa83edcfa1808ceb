//! Returns: a buyer who can no longer go offers tickets of a confirmed (or paid) order back,
//! where the organizer allows it. Postgres records the offer (`db::returns`); the script that
//! tells the live sale (`return_tickets.lua`) gives the tickets to the queue, then down the
//! waitlist in order, as any freed ticket. The returning buyer's tickets stay valid until
//! another order takes them, in that order's own transaction; until then the return may be
//! withdrawn.

use tracing::warn;

use super::script::ReturnTickets;
use super::{SaleError, SaleId, TicketSales};
use crate::db;
use crate::db::orders::Order;
use crate::db::returns::Offered;

impl TicketSales {
    /// Offers `tickets` of the buyer's `order` for return (the caller checked the order is
    /// the buyer's). Returns how many are offered.
    pub async fn return_tickets(&self, order: &Order, tickets: i64) -> Result<i64, SaleError> {
        let offered = match db::returns::offer(&self.inner.db, order.id, tickets).await? {
            Offered::Offered(n) => n,
            Offered::NotAllowed => return Err(SaleError::ReturnsNotAllowed),
            Offered::Pending => return Err(SaleError::ReturnPending),
            Offered::Nothing => return Err(SaleError::NothingToReturn),
            Offered::TooMany { left } => return Err(SaleError::TooManyToReturn { left }),
        };
        self.tell_returns(SaleId(order.sale_id), offered).await;
        Ok(offered)
    }

    /// Withdraws the return of the buyer's `order`: the tickets not bought yet are the
    /// buyer's alone again. Returns how many were withdrawn; none left to withdraw (another
    /// buyer bought them, or there was no return) is [`SaleError::NoReturnPending`].
    pub async fn withdraw_return(&self, order: &Order) -> Result<i64, SaleError> {
        let withdrawn = db::returns::withdraw(&self.inner.db, order.id).await?;
        if withdrawn == 0 {
            return Err(SaleError::NoReturnPending);
        }
        self.tell_returns(SaleId(order.sale_id), -withdrawn).await;
        Ok(withdrawn)
    }

    /// Tells the live sale what Postgres has recorded. The return stands whatever happens
    /// here: if this call fails, the next sync counts it (`returns_open`).
    async fn tell_returns(&self, sale: SaleId, delta: i64) {
        if let Err(e) = self.call(sale, &ReturnTickets { delta }).await {
            warn!(%sale, error = %e, "return_tickets failed; the sync will count the return");
        }
    }
}
