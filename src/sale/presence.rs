//! Presence reported in batches: the waiting buyers whose polls an instance refused as too
//! fast (see `lua/touch.lua`). One script call per sale and batch, however many buyers.

use super::script::{Touch, TouchReply};
use super::{SaleError, SaleId, TicketSales};
use crate::sale::{Owner, ReservationCode};

impl TicketSales {
    /// Notes the waiting buyers of `present` (codes of `sale` with their owners) as still here,
    /// so they keep their place in line; pairs that are not a waiting code of that owner are
    /// skipped. Returns how many were noted. A sale Redis has lost is not rebuilt for this:
    /// nobody waits in it.
    pub async fn keep_present(&self, sale: SaleId, present: &[(ReservationCode, Owner)]) -> Result<usize, SaleError> {
        let touch = Touch {
            present: present
                .iter()
                .filter(|(code, _)| code.sale == sale)
                .map(|(code, owner)| (code, owner))
                .collect(),
        };
        Ok(match self.call(sale, &touch).await? {
            TouchReply::Noted(n) => n,
            TouchReply::Missing => 0,
        })
    }
}
