//! A crowd's joins, several to a script call. The joins of sessions made in their very
//! requests ([`SessionMade::Now`](super::SessionMade): owners new to every sale, so there is
//! nothing of theirs to look up) are the crowd's common case. While a call of
//! `join_batch.lua` for a sale is under way, the joins that arrive for that sale wait here;
//! when it returns they go together as the next call, in the order they came. A join alone
//! waits for nothing: with no call under way it is sent at once. Under load a call carries the
//! joins that arrived during the one before, so that Redis reads the sale's figures, its clock
//! and the waitlist once for them all and this instance makes one round trip for them: a
//! join costs less the bigger the crowd (BENCHMARKS.md).
//!
//! A batch the script cannot take whole (tickets free, a hold due, the waitlist, a sale closed,
//! not open yet or lost by Redis) changes nothing, and each of its joins goes its own way
//! through `join.lua`, as does every join when the call fails: each meets the fault itself.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;
use tracing::warn;

use super::script::{JoinBatch, JoinBatchReply, JoinReply, NewJoin};
use super::{Owner, Quantity, ReservationCode, SaleId, TicketSales};

/// Most joins one call carries; the rest go in the next.
const MOST_A_CALL: usize = 128;

/// A join waiting for its call, and where its answer goes: what `join.lua` would have answered
/// it, or `None` when it must be joined by `join.lua` after all.
type Waiting = (NewJoin, oneshot::Sender<Option<JoinReply>>);

/// The joins waiting, per sale whose calls are under way. A sale has an entry exactly while a
/// sender (`send_batches`) works for it.
#[derive(Default)]
pub(super) struct JoinBatches {
    sales: Mutex<HashMap<SaleId, Vec<Waiting>>>,
}

impl JoinBatches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SaleId, Vec<Waiting>>> {
        self.sales.lock().expect("join batches lock poisoned")
    }

    /// Adds a join for `sale`; true when no sender works for the sale: the caller starts one.
    fn add(&self, sale: SaleId, waiting: Waiting) -> bool {
        let mut sales = self.lock();
        match sales.get_mut(&sale) {
            Some(queue) => {
                queue.push(waiting);
                false
            }
            None => {
                sales.insert(sale, vec![waiting]);
                true
            }
        }
    }

    /// The joins for the sale's next call, oldest first, or `None` when none waits: the
    /// sender's work ends there (the sale's entry goes, so that the next join starts another).
    /// A join whose request is gone (its answer can no longer be heard) is not made.
    fn take(&self, sale: SaleId) -> Option<Vec<Waiting>> {
        let mut sales = self.lock();
        let queue = sales.get_mut(&sale)?;
        queue.retain(|(_, answer)| !answer.is_closed());
        if queue.is_empty() {
            sales.remove(&sale);
            return None;
        }
        let rest = queue.split_off(queue.len().min(MOST_A_CALL));
        Some(std::mem::replace(queue, rest))
    }

    /// Ends the sale's entry with the joins still in it, whose answers then go unheard: their
    /// requests join by `join.lua` (a sender that panicked must not leave them waiting).
    fn abandon(&self, sale: SaleId) {
        self.lock().remove(&sale);
    }
}

/// Ends the sale's entry if its sender stops without having emptied it (a panic).
struct SenderGuard<'a> {
    batches: &'a JoinBatches,
    sale: SaleId,
    done: bool,
}

impl Drop for SenderGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.batches.abandon(self.sale);
        }
    }
}

impl TicketSales {
    /// A new owner joins with the crowd: `Some` with what `join.lua` would have answered, or
    /// `None` when it must be joined by `join.lua` (not the common case).
    pub(super) async fn join_with_crowd(
        &self,
        sale: SaleId,
        first: ReservationCode,
        owner: &Owner,
        qty: Quantity,
    ) -> Option<JoinReply> {
        let (answer, answered) = oneshot::channel();
        let join = NewJoin {
            first,
            owner_tag: owner.tag(),
            qty,
        };
        if self.inner.join_batches.add(sale, (join, answer)) {
            tokio::spawn(self.clone().send_batches(sale));
        }
        answered.await.ok().flatten()
    }

    /// Sends the sale's gathered joins, a call at a time, until none waits.
    async fn send_batches(self, sale: SaleId) {
        let batches = &self.inner.join_batches;
        let mut guard = SenderGuard {
            batches,
            sale,
            done: false,
        };
        while let Some(batch) = batches.take(sale) {
            let (joins, answers): (Vec<NewJoin>, Vec<_>) = batch.into_iter().unzip();
            let reply = self.call(sale, &JoinBatch { joins: &joins }).await.unwrap_or_else(|e| {
                warn!(%sale, error = %e, "a batch of joins failed; each joins on its own");
                JoinBatchReply::Slow
            });
            for (i, (join, answer)) in joins.iter().zip(answers).enumerate() {
                // A request that is gone hears nothing; its join stands, as any join whose
                // client left after it was sent.
                let _ = answer.send(reply.reply_for(i, join));
            }
        }
        guard.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(sale: SaleId) -> (Waiting, oneshot::Receiver<Option<JoinReply>>) {
        let owner = Owner::random();
        let join = NewJoin {
            first: ReservationCode::first_of(sale, &owner),
            owner_tag: owner.tag(),
            qty: Quantity::new(1, 1).unwrap(),
        };
        let (answer, answered) = oneshot::channel();
        ((join, answer), answered)
    }

    #[test]
    fn joins_gather_while_a_sender_works_and_go_oldest_first_at_most_a_call_s_worth() {
        let batches = JoinBatches::default();
        let sale = SaleId::new();
        let mut heard = Vec::new();
        let mut firsts = Vec::new();
        for i in 0..MOST_A_CALL + 3 {
            let ((join, answer), answered) = waiting(sale);
            firsts.push(join.first);
            heard.push(answered);
            assert_eq!(
                batches.add(sale, (join, answer)),
                i == 0,
                "only the first starts a sender"
            );
        }
        let taken = batches.take(sale).unwrap();
        assert_eq!(taken.len(), MOST_A_CALL);
        assert_eq!(
            taken.iter().map(|(j, _)| j.first).collect::<Vec<_>>(),
            firsts[..MOST_A_CALL]
        );
        // A join arriving now waits for the next call, behind the three left.
        let ((join, answer), _later) = waiting(sale);
        assert!(!batches.add(sale, (join, answer)), "the sender still works");
        assert_eq!(batches.take(sale).unwrap().len(), 4);
        assert!(batches.take(sale).is_none(), "none left: the sender's work ends");
        let ((join, answer), _next) = waiting(sale);
        assert!(batches.add(sale, (join, answer)), "the next join starts a sender again");
    }

    #[test]
    fn a_join_whose_request_is_gone_is_not_made() {
        let batches = JoinBatches::default();
        let sale = SaleId::new();
        let (first, _first_heard) = waiting(sale);
        let (gone, gone_heard) = waiting(sale);
        let kept_first = first.0.first;
        batches.add(sale, first);
        batches.add(sale, gone);
        drop(gone_heard);
        let taken = batches.take(sale).unwrap();
        assert_eq!(taken.iter().map(|(j, _)| j.first).collect::<Vec<_>>(), [kept_first]);
    }

    #[test]
    fn a_sender_that_panics_leaves_no_join_waiting_for_it() {
        let batches = JoinBatches::default();
        let sale = SaleId::new();
        let (first, _) = waiting(sale);
        let (second, mut second_heard) = waiting(sale);
        batches.add(sale, first);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = SenderGuard {
                batches: &batches,
                sale,
                done: false,
            };
            batches.take(sale);
            batches.add(sale, second);
            panic!("the sender fails");
        }));
        // The join gathered for it hears nothing (its request joins by join.lua), and the next
        // join starts a sender of its own.
        assert!(matches!(
            second_heard.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        let (third, _) = waiting(sale);
        assert!(batches.add(sale, third));
    }
}
