//! The waitlist of a sold-out sale: buyers who missed the tickets wait in line, and every
//! ticket that comes back (a hold that lapses, an order cancelled unpaid, a buyer giving up)
//! is offered down the line in order, each offer holding its tickets for the sale's offer
//! window.
//!
//! Redis decides, in the same scripts that free tickets (`offer_waitlist` in
//! `lua/common.lua`): an offer is an ordinary hold under the entry's own code and session, so
//! the buyer checks out on the ordinary checkout page. Postgres keeps every entry
//! (`db::waitlist`): who, how many, the place in line and where it stands. Changes made in
//! Redis are recorded there by [`TicketSales::record_waitlist`] (the reconciler of every
//! instance, and the instance that served a waitlist request), which also queues each offer's
//! mail, once. A Redis that lost the sale puts the line back from Postgres
//! ([`TicketSales::restore_waitlist`]): entries in line at their places, offers recorded in
//! Postgres as the holds they were until their expiry. An offer Redis made but Postgres had
//! not recorded yet is made again from the restored line; nobody was mailed about it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use fred::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::warn;

use super::script::{
    RestoredEntry, WaitlistClaim, WaitlistClaimReply, WaitlistJoin, WaitlistJoinReply, WaitlistLeave,
    WaitlistLeaveReply, WaitlistPending, WaitlistRecorded, WaitlistRestore, WaitlistStatus,
};
use super::{Owner, Quantity, ReservationCode, SaleError, SaleId, TicketSales};
use crate::db;

/// Where a waitlist entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitlistState {
    /// In line.
    Waiting,
    /// Tickets are held for it until `offer_expires_at`: its page is the checkout.
    Offered,
    /// Its offer became an order.
    Taken,
    /// Its offer ended unbought (lapsed or turned down); the tickets went on down the line.
    Lapsed,
    /// The buyer left the line.
    Left,
}

impl WaitlistState {
    pub(crate) fn from_script(s: &str) -> Option<Self> {
        use WaitlistState::*;
        Some(match s {
            "waiting" => Waiting,
            "offered" => Offered,
            "taken" => Taken,
            "lapsed" => Lapsed,
            "left" => Left,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use WaitlistState::*;
        match self {
            Waiting => "waiting",
            Offered => "offered",
            Taken => "taken",
            Lapsed => "lapsed",
            Left => "left",
        }
    }
}

/// A waitlist entry as its buyer may see it.
#[derive(Clone, Debug, Serialize)]
pub struct WaitlistEntry {
    /// The entry's code, which is also the reservation code of its offer (its checkout).
    pub code: ReservationCode,
    pub state: WaitlistState,
    pub quantity: u8,
    /// 1-based place in line while waiting, else 0.
    pub position: u64,
    /// Entries waiting in line.
    pub on_list: u64,
    /// Until when the offer holds its tickets, while offered.
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// Redis's clock when this was read.
    pub server_now: DateTime<Utc>,
    /// False when the entry wants more tickets than are unsold at all: it keeps its place but
    /// is passed over until enough come back.
    pub fits: bool,
    /// True when this join made the entry.
    pub created: bool,
}

/// An email address to write the offer to, checked by the shop's one rule.
#[derive(Clone, Debug)]
pub struct WaitlistEmail(String);

impl WaitlistEmail {
    pub fn parse(s: &str) -> Result<Self, SaleError> {
        let s = s.trim();
        if crate::email::is_plausible(s) {
            Ok(WaitlistEmail(s.to_string()))
        } else {
            Err(SaleError::BadEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What Redis keeps to find a second place for the same address: a digest, so that Redis
    /// holds no email.
    fn digest(&self) -> String {
        hex(&Sha256::digest(self.0.to_lowercase().as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Most entries recorded in Postgres per round.
const RECORD_BATCH: usize = 100;

/// The sales whose waitlist this instance is recording for its requests now, each with
/// whether a request asked for another round meanwhile: one recorder per sale, so that a
/// burst of requests does not record the same entries at once, queueing on their rows.
#[derive(Clone, Default)]
pub(super) struct Recorders(Arc<Mutex<HashMap<SaleId, bool>>>);

impl Recorders {
    /// The recording of `sale`, unless one runs already: that one then goes round once more,
    /// so that the caller's changes are recorded too.
    fn start(&self, sale: SaleId) -> Option<Recording> {
        let mut running = self.0.lock().expect("recorders lock poisoned");
        if let Some(again) = running.get_mut(&sale) {
            *again = true;
            return None;
        }
        running.insert(sale, false);
        Some(Recording {
            recorders: self.clone(),
            sale,
            ended: false,
        })
    }
}

/// This instance's recording of one sale's waitlist; dropped, it ends (so that a request
/// cancelled mid-round does not keep the others from recording).
struct Recording {
    recorders: Recorders,
    sale: SaleId,
    ended: bool,
}

impl Recording {
    /// True when a request asked for another round while this one ran; otherwise the
    /// recording ends, in the same step, so that no request's ask falls between the two.
    fn again(&mut self) -> bool {
        let mut running = self.recorders.0.lock().expect("recorders lock poisoned");
        if running.get(&self.sale) == Some(&true) {
            running.insert(self.sale, false);
            return true;
        }
        running.remove(&self.sale);
        self.ended = true;
        false
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.ended {
            self.recorders
                .0
                .lock()
                .expect("recorders lock poisoned")
                .remove(&self.sale);
        }
    }
}

impl TicketSales {
    /// Joins the sale's waitlist for `quantity` tickets: a buyer whose reservation was sold
    /// out, or anybody while the sale is sold out for that many. Idempotent per session: the
    /// live entry comes back (`created == false`).
    pub async fn join_waitlist(
        &self,
        sale: SaleId,
        owner: &Owner,
        quantity: Quantity,
        email: &WaitlistEmail,
    ) -> Result<WaitlistEntry, SaleError> {
        let offer_secs = db::waitlist::offer_secs(&self.inner.db, sale)
            .await?
            .ok_or(SaleError::UnknownSale)?;
        let code = ReservationCode::new(sale);
        let digest = email.digest();
        let join = WaitlistJoin {
            code: &code,
            owner,
            qty: quantity,
            email_digest: &digest,
            offer_ms: i64::from(offer_secs) * 1000,
            first: &ReservationCode::first_of(sale, owner),
        };
        let (entry, rank) = match self.call_synced(sale, &join).await? {
            WaitlistJoinReply::Closed => return Err(SaleError::Closed),
            WaitlistJoinReply::NotSoldOut => return Err(SaleError::NotSoldOut),
            WaitlistJoinReply::EmailTaken => return Err(SaleError::WaitlistEmailTaken),
            WaitlistJoinReply::Joined {
                entry, created: false, ..
            } => return Ok(entry.into_entry(sale, false)),
            WaitlistJoinReply::Joined { entry, rank, .. } => (entry.into_entry(sale, true), rank),
        };
        let new = db::waitlist::NewEntry {
            id: code.token,
            sale,
            owner: owner.as_str(),
            email: email.as_str(),
            quantity: i16::from(quantity.get()),
            rank,
        };
        // Postgres keeps the place, or the buyer does not have it: a place Redis gave that
        // Postgres refused is taken back at once.
        let refused = match db::waitlist::insert(&self.inner.db, &new).await {
            Ok(db::waitlist::Inserted::Inserted) => None,
            Ok(db::waitlist::Inserted::Duplicate) => Some(SaleError::WaitlistEmailTaken),
            Err(e) => Some(SaleError::Postgres(e)),
        };
        if let Some(e) = refused {
            if let Err(undo) = self.call(sale, &WaitlistLeave { code: &code, owner }).await {
                warn!(%sale, error = %undo, "taking back a waitlist place Postgres refused failed");
            }
            return Err(e);
        }
        self.record_waitlist_soon(sale).await;
        Ok(entry)
    }

    /// The poll of a waitlist entry: frees what lapsed, offers down the line, and tells where
    /// this entry stands.
    pub async fn waitlist_status(&self, code: &ReservationCode, owner: &Owner) -> Result<WaitlistEntry, SaleError> {
        let entry = self
            .call_synced(code.sale, &WaitlistStatus { code, owner })
            .await?
            .ok_or(SaleError::UnknownWaitlistEntry)?;
        self.record_waitlist_soon(code.sale).await;
        Ok(entry.into_entry(code.sale, false))
    }

    /// The entry moves to `owner`, the session that opened the signed link of its offer mail
    /// (the caller checked the signature), with its offer's hold. An entry that has ended
    /// stays where it was.
    pub async fn claim_waitlist_entry(
        &self,
        code: &ReservationCode,
        owner: &Owner,
    ) -> Result<WaitlistEntry, SaleError> {
        let entry = match self.call_synced(code.sale, &WaitlistClaim { code, owner }).await? {
            WaitlistClaimReply::NotFound => return Err(SaleError::UnknownWaitlistEntry),
            WaitlistClaimReply::HasOwn => return Err(SaleError::OwnWaitlistPlace),
            WaitlistClaimReply::Claimed(entry) => entry,
        };
        // Postgres follows, for a rebuild; Redis holds the entry for its new owner already.
        db::waitlist::set_owner(&self.inner.db, code.token, owner.as_str()).await?;
        Ok(entry.into_entry(code.sale, false))
    }

    /// The buyer leaves the line, or turns its offer down: the tickets go on down the line.
    pub async fn leave_waitlist(&self, code: &ReservationCode, owner: &Owner) -> Result<WaitlistEntry, SaleError> {
        let entry = match self.call_synced(code.sale, &WaitlistLeave { code, owner }).await? {
            WaitlistLeaveReply::NotFound => return Err(SaleError::UnknownWaitlistEntry),
            WaitlistLeaveReply::Confirming => return Err(SaleError::ConfirmInProgress),
            WaitlistLeaveReply::Done(entry) => entry,
        };
        self.record_waitlist_soon(code.sale).await;
        Ok(entry.into_entry(code.sale, false))
    }

    /// Records the sale's waitlist after a request: one round now, unless another request of
    /// this instance is recording it (that one goes round again for this request's changes).
    /// Rounds asked for while this one ran go on in the background: a request waits for one
    /// round at most, never for the others of a burst.
    async fn record_waitlist_soon(&self, sale: SaleId) {
        let Some(mut recording) = self.inner.recorders.start(sale) else {
            return;
        };
        self.record_waitlist_or_log(sale).await;
        if recording.again() {
            let sales = self.clone();
            tokio::spawn(async move {
                loop {
                    sales.record_waitlist_or_log(sale).await;
                    if !recording.again() {
                        break;
                    }
                }
            });
        }
    }

    async fn record_waitlist_or_log(&self, sale: SaleId) {
        if let Err(e) = self.record_waitlist(sale).await {
            warn!(%sale, error = %e, "recording the waitlist failed; the reconciler will retry");
        }
    }

    /// Records in Postgres what changed on the sale's waitlist in Redis (offers made, taken,
    /// lapsed; places left), queueing each new offer's mail with it. Any instance may run it
    /// at any time: each change is one guarded update, so an offer is mailed once. Returns
    /// how many entries were recorded.
    pub async fn record_waitlist(&self, sale: SaleId) -> Result<usize, SaleError> {
        let pending = self.call_synced(sale, &WaitlistPending { limit: RECORD_BATCH }).await?;
        let mut recorded = Vec::with_capacity(pending.len());
        for p in pending {
            let stored = db::waitlist::record(&self.inner.db, p.token, p.state.as_str(), p.offer_expires_at).await?;
            // An entry Postgres never had and that has left: a place Postgres refused, taken
            // back at once (`join_waitlist`); nothing to record, ever.
            if stored || p.state == WaitlistState::Left {
                recorded.push((p.token, p.state));
            }
        }
        if recorded.is_empty() {
            return Ok(0);
        }
        self.call(sale, &WaitlistRecorded { entries: &recorded }).await?;
        Ok(recorded.len())
    }

    /// Puts back the entries of the sale's waitlist that Redis lost, from Postgres, and sets
    /// the offer window. Entries Redis has are left alone. Returns how many were put back.
    pub async fn restore_waitlist(&self, sale: SaleId) -> Result<usize, SaleError> {
        let offer_secs = db::waitlist::offer_secs(&self.inner.db, sale)
            .await?
            .ok_or(SaleError::UnknownSale)?;
        let entries = db::waitlist::live_of_sale(&self.inner.db, sale)
            .await?
            .into_iter()
            .map(|e| RestoredEntry {
                token: e.id,
                email_digest: WaitlistEmail(e.email).digest(),
                owner: e.owner,
                quantity: i64::from(e.quantity),
                rank: e.rank,
                state: if e.state == "offered" {
                    WaitlistState::Offered
                } else {
                    WaitlistState::Waiting
                },
                offer_expires_ms: e.offer_expires_at.map(|t| t.timestamp_millis()).unwrap_or(0),
            })
            .collect();
        let restore = WaitlistRestore {
            offer_ms: i64::from(offer_secs) * 1000,
            entries,
        };
        // Not `call_synced`: a sale Redis lost is rebuilt by a sync, which calls this.
        self.call(sale, &restore).await
    }

    /// Sets how long an offer of this sale holds its tickets (offers made from now on).
    pub async fn set_offer_window(&self, sale: SaleId, secs: i32) -> Result<(), SaleError> {
        if !db::waitlist::set_offer_secs(&self.inner.db, sale, secs).await? {
            return Err(SaleError::UnknownSale);
        }
        match self.restore_waitlist(sale).await {
            Err(SaleError::Over) => Ok(()),
            done => done.map(|_| ()),
        }
    }

    /// Records the waitlist of every sale that has one, and restores it where Redis has no
    /// trace of it (its rebuild restores it too; this catches a restore that failed): part of
    /// the reconcile.
    pub async fn reconcile_waitlists(&self) -> Result<(), SaleError> {
        for sale in db::waitlist::sales_with_live_entries(&self.inner.db).await? {
            let done = async {
                // `wlinfo` is written by every join and restore, so a waitlist with entries
                // has it while Redis keeps the sale: its absence means Redis lost it.
                let info = super::keys::sale_key(sale, super::keys::SaleKey::WaitlistInfo);
                let kept: i64 = self.inner.redis.exists(info).await?;
                if kept == 0 {
                    self.restore_waitlist(sale).await?;
                }
                self.record_waitlist(sale).await
            };
            if let Err(e) = done.await {
                warn!(%sale, error = %e, "reconciling a waitlist failed; will retry");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_checked_and_its_digest_ignores_case() {
        assert!(WaitlistEmail::parse("not an email").is_err());
        assert!(WaitlistEmail::parse("").is_err());
        let a = WaitlistEmail::parse(" Ada@Example.com ").unwrap();
        let b = WaitlistEmail::parse("ada@example.com").unwrap();
        assert_eq!(a.as_str(), "Ada@Example.com");
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
    }

    #[test]
    fn states_round_trip_through_their_script_names() {
        use WaitlistState::*;
        for s in [Waiting, Offered, Taken, Lapsed, Left] {
            assert_eq!(WaitlistState::from_script(s.as_str()), Some(s));
        }
        assert_eq!(WaitlistState::from_script("gone"), None);
    }
}
