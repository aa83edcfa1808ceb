//! Presence reported in batches: the waiting buyers whose polls an instance refused as too
//! fast (see `lua/touch.lua`). One script call per sale and batch, however many buyers.

use fred::prelude::*;

use super::{SaleError, SaleId, TicketSales, int_at, tag};
use crate::sale::{Owner, ReservationCode};

impl TicketSales {
    /// Notes the waiting buyers of `present` (codes of `sale` with their owners) as still here,
    /// so they keep their place in line; pairs that are not a waiting code of that owner are
    /// skipped. Returns how many were noted. A sale Redis has lost is not rebuilt for this:
    /// nobody waits in it.
    pub async fn keep_present(&self, sale: SaleId, present: &[(ReservationCode, Owner)]) -> Result<usize, SaleError> {
        let mut args = Vec::with_capacity(present.len() * 2);
        for (code, owner) in present.iter().filter(|(code, _)| code.sale == sale) {
            args.push(Value::from(code.member()));
            args.push(Value::from(owner.as_str()));
        }
        let reply = self.call(&self.inner.scripts.touch, sale, args).await?;
        Ok(if tag(&reply) == "!missing" {
            0
        } else {
            usize::try_from(int_at(&reply, 0)).unwrap_or(0)
        })
    }
}
