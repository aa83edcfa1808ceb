//! What the polls of the pre-queue read, kept by each instance so that a crowd polling before
//! the opening does not read Postgres on every poll.
//!
//! A pre-queue entry is not in Redis until the draw, so its poll is answered from Postgres:
//! the entry (is this code this session's entry?), and the sale's pre-queue (when it opens,
//! its state, the draw's commitment, whether the draw is queued). Read on every poll, that
//! was five queries; near the opening every entry polls once a second, and 2,000 entries
//! saturated the pool (BENCHMARKS.md, "The pre-queue against the opening burst"). Here:
//!
//! - the sale's part ([`SaleFacts`]) is read at most once per [`FACTS_TTL`] per instance, one
//!   query, whoever asks; polls arriving meanwhile wait for that one read;
//! - an entry found is kept for [`ENTRY_TTL`] with its receipt (signing it is the costliest
//!   step of the answer), at most [`MAX_ENTRIES`] of them; an unknown code is not kept (a
//!   forged one costs a query, as before, under the per-client limits).
//!
//! What may be stale, and why it is harmless: a poll always asks Redis first, so a drawn entry
//! already queued is answered from Redis whatever these say; a draw queued less than
//! [`FACTS_TTL`] ago makes the poll ask Redis once more, as before. An entry that left the
//! pre-queue through another instance may be told "in the pre-queue" for up to [`ENTRY_TTL`]
//! there (it is out of the draw all the same: the list is Postgres's).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::SaleId;
use crate::draw::Digest;

/// How long the sale's pre-queue facts are used before they are read again.
pub const FACTS_TTL: Duration = Duration::from_secs(1);
/// How long an entry found in Postgres is used before it is looked up again.
pub const ENTRY_TTL: Duration = Duration::from_secs(10);
/// The most entries an instance keeps (about 300 bytes each).
pub const MAX_ENTRIES: usize = 200_000;

/// The sale's half of a pre-queue poll's answer.
#[derive(Clone, Debug)]
pub struct SaleFacts {
    pub opens_at: DateTime<Utc>,
    /// The sale's state (`open`, `paused`, `closed`).
    pub state: String,
    /// The draw's commitment; `None` before the first entry made the draw.
    pub commitment: Option<Digest>,
    /// The drawn entries are all in Redis's queue.
    pub enqueued: bool,
    /// Postgres's clock when read, and this instance's at the same moment: the pre-queue's
    /// clock is Postgres's, carried forward without asking again.
    read_at_db: DateTime<Utc>,
    read_at: Instant,
}

impl SaleFacts {
    pub fn new(
        opens_at: DateTime<Utc>,
        state: String,
        commitment: Option<Digest>,
        enqueued: bool,
        db_now: DateTime<Utc>,
    ) -> SaleFacts {
        SaleFacts {
            opens_at,
            state,
            commitment,
            enqueued,
            read_at_db: db_now,
            read_at: Instant::now(),
        }
    }

    /// Postgres's clock now, as far as this instance can tell without asking.
    pub fn now(&self) -> DateTime<Utc> {
        self.read_at_db + chrono::Duration::from_std(self.read_at.elapsed()).unwrap_or_default()
    }

    fn fresh(&self) -> bool {
        self.read_at.elapsed() < FACTS_TTL
    }
}

/// A pre-queue entry as its polls need it.
#[derive(Clone, Debug)]
pub struct KnownEntry {
    pub owner: String,
    pub quantity: u8,
    /// The entry's receipt, signed once.
    pub receipt: String,
}

/// The per-instance memory of the pre-queue's polls (see the module's documentation).
#[derive(Default)]
pub struct PrequeuePolls {
    facts: std::sync::Mutex<HashMap<SaleId, Arc<tokio::sync::Mutex<Option<SaleFacts>>>>>,
    entries: std::sync::Mutex<HashMap<(SaleId, Uuid), (Instant, KnownEntry)>>,
    /// Postgres reads made for polls (the sale's facts and entries looked up).
    reads: AtomicU64,
}

impl PrequeuePolls {
    /// The sale's facts, read by `read` when those kept are older than [`FACTS_TTL`]: one read
    /// at a time per sale, the polls that arrive meanwhile take its result.
    pub async fn facts<E, F>(&self, sale: SaleId, read: impl FnOnce() -> F) -> Result<Option<SaleFacts>, E>
    where
        F: Future<Output = Result<Option<SaleFacts>, E>>,
    {
        let slot = self.facts.lock().expect("facts").entry(sale).or_default().clone();
        let mut kept = slot.lock().await;
        if let Some(facts) = kept.as_ref().filter(|f| f.fresh()) {
            return Ok(Some(facts.clone()));
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let read = read().await?;
        if read.as_ref().is_some_and(|f| f.enqueued) {
            // Once a read, not once a poll: the entries' polls go to Redis from now on.
            self.forget_sale(sale);
        }
        *kept = read.clone();
        Ok(read)
    }

    /// The entry `reservation` of `sale`, if kept and younger than [`ENTRY_TTL`].
    pub fn entry(&self, sale: SaleId, reservation: Uuid) -> Option<KnownEntry> {
        let entries = self.entries.lock().expect("entries");
        entries
            .get(&(sale, reservation))
            .filter(|(at, _)| at.elapsed() < ENTRY_TTL)
            .map(|(_, entry)| entry.clone())
    }

    /// Keeps an entry found in Postgres (counted as one read).
    pub fn keep(&self, sale: SaleId, reservation: Uuid, entry: KnownEntry) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().expect("entries");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < ENTRY_TTL);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert((sale, reservation), (Instant::now(), entry));
    }

    /// A code unknown to Postgres was polled (counted as one read).
    pub fn missed(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// The entry left the pre-queue: its polls here find nothing from now on.
    pub fn forget(&self, sale: SaleId, reservation: Uuid) {
        self.entries.lock().expect("entries").remove(&(sale, reservation));
    }

    /// The draw of `sale` is in the queue: its entries' polls go to Redis from now on.
    fn forget_sale(&self, sale: SaleId) {
        self.entries.lock().expect("entries").retain(|(s, _), _| *s != sale);
    }

    /// Postgres reads made for the pre-queue's polls so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(enqueued: bool) -> SaleFacts {
        SaleFacts::new(Utc::now(), "open".into(), None, enqueued, Utc::now())
    }

    #[tokio::test]
    async fn facts_are_read_once_while_fresh_and_again_after() {
        let polls = PrequeuePolls::default();
        let sale = SaleId::new();
        for _ in 0..5 {
            let f = polls
                .facts(sale, || async { Ok::<_, ()>(Some(facts(false))) })
                .await
                .unwrap();
            assert!(!f.unwrap().enqueued);
        }
        assert_eq!(polls.reads(), 1);
        // Another sale is its own read.
        polls
            .facts(SaleId::new(), || async { Ok::<_, ()>(None) })
            .await
            .unwrap();
        assert_eq!(polls.reads(), 2);
    }

    #[tokio::test]
    async fn a_failed_read_is_an_error_and_keeps_nothing() {
        let polls = PrequeuePolls::default();
        let sale = SaleId::new();
        assert!(
            polls
                .facts(sale, || async { Err::<Option<SaleFacts>, _>("down") })
                .await
                .is_err()
        );
        let f = polls
            .facts(sale, || async { Ok::<_, &str>(Some(facts(true))) })
            .await
            .unwrap();
        assert!(f.unwrap().enqueued);
        assert_eq!(polls.reads(), 2);
    }

    #[tokio::test]
    async fn a_read_that_finds_the_draw_queued_forgets_that_sales_entries_only() {
        let polls = PrequeuePolls::default();
        let (sale, other) = (SaleId::new(), SaleId::new());
        let entry = KnownEntry {
            owner: "o".into(),
            quantity: 1,
            receipt: "r".into(),
        };
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        polls.keep(sale, a, entry.clone());
        polls.keep(other, b, entry);
        polls
            .facts(sale, || async { Ok::<_, ()>(Some(facts(true))) })
            .await
            .unwrap();
        assert!(polls.entry(sale, a).is_none());
        assert!(polls.entry(other, b).is_some());
    }

    #[test]
    fn entries_are_kept_per_sale_and_forgotten() {
        let polls = PrequeuePolls::default();
        let (sale, other) = (SaleId::new(), SaleId::new());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let entry = KnownEntry {
            owner: "o".into(),
            quantity: 2,
            receipt: "r".into(),
        };
        polls.keep(sale, a, entry.clone());
        polls.keep(other, b, entry);
        assert_eq!(polls.entry(sale, a).unwrap().quantity, 2);
        assert!(polls.entry(sale, b).is_none());
        polls.forget(sale, a);
        assert!(polls.entry(sale, a).is_none());
        polls.forget_sale(other);
        assert!(polls.entry(other, b).is_none());
    }
}
