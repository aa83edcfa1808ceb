//! The pre-queue: buyers who join in the window before a sale opens get an entry and a signed
//! receipt instead of "opens at …", and at the opening the entries are drawn into the queue in
//! an order nobody chooses alone (`crate::draw`).
//!
//! **Postgres is the truth for the pre-queue.** An entry is written there (one per session,
//! `prequeue_entries`), never to Redis, until the draw: a Redis that loses the sale before the
//! opening loses no entry. The draw row (`sale_draws`, made with the first entry) holds the
//! secret `server_seed` whose hash is published as the commitment, and is the lock of the
//! list: a join or a leave holds it `for share`, the freeze updates it.
//!
//! **At the opening** any instance (the loop of [`TicketSales::run_due_draws`], every second)
//! may run the draw, and several may race:
//! 1. the freeze: one `update … where frozen_at is null` sets the moment, the others read it;
//! 2. the beacon round after the freeze, which the moment fixes;
//! 3. the result, a function of the seed, the frozen list and the round: every instance
//!    computes the same one, and the first stored stays;
//! 4. `draw.lua` queues the entries in drawn order, [`DRAW_BATCH`] a call so that no call
//!    blocks Redis for long, once (the sale's hash keeps how far it got, and a mark when all
//!    are in), and admission starts. Each entry's reservation code was fixed when it joined, so the
//!    buyer's next poll finds it waiting (or admitted).
//!
//! Between the opening and step 4, joins are answered "try again in a moment" (the sale's hash
//! says `draw pending`, set by `prequeue.lua` before the first entry is written): they land
//! behind the drawn entries. A sale that never had an entry has no draw and opens as before.

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use uuid::Uuid;

use super::prequeue_polls::{KnownEntry, SaleFacts};
use super::script::{DrawEnqueue, DrawnReservation, PrequeueMark, StatusReply};
use super::verified_email::{Joining, PrequeueEmail};
use super::{Owner, Quantity, Reservation, ReservationCode, ReservationState, SaleError, SaleId, TicketSales};
use crate::db;
use crate::db::prequeue::{EntryRow, Joined, Left};
use crate::draw::beacon::round_after;
use crate::draw::published::{DrawResult, PublishedDraw};
use crate::draw::{ALGORITHM, Digest, EntryId, ServerSeed};

/// How long past its time the draw waits for its beacon round before it gives up until the
/// next attempt (the freeze, and so the round, stay the same).
const BEACON_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// Drawn entries per call of `draw.lua`: a batch holds Redis for a few milliseconds (about
/// 12 µs of Redis CPU an entry; BENCHMARKS.md, "The draw in batches"), where a whole draw of
/// 100,000 in one call held it for 1.3 s.
pub const DRAW_BATCH: usize = 200;

/// What a buyer in the pre-queue holds: the entry's receipt and the draw's commitment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PrequeueTicket {
    /// `v1.<sale>.<entry id>.<signature>`: what `boxoffice verify-draw --receipt` takes.
    pub receipt: String,
    /// `SHA-256(server_seed)`, published before any entry was drawn.
    pub commitment: Digest,
    pub opens_at: DateTime<Utc>,
}

impl PrequeueTicket {
    /// When to poll again: by the time left to the opening, not by a place (there is none
    /// yet). A quarter of the time left, between 1 s and a minute, and never much after the
    /// opening, so that the crowd polls rarely while it waits and comes back as the draw is
    /// queued.
    pub fn poll_after_ms(&self, now: DateTime<Utc>) -> u64 {
        let left = (self.opens_at - now).num_milliseconds().max(0) as u64;
        (left / 4).clamp(1_000, 60_000).min(left + 1_000)
    }
}

/// A sale's pre-queue as its event page tells it before the opening.
#[derive(Clone, Debug)]
pub struct PrequeueWindow {
    /// When the pre-queue opens: joins before it are told when the sale opens.
    pub from: DateTime<Utc>,
    pub opens_at: DateTime<Utc>,
    /// The draw's commitment, once the first entry made the draw.
    pub commitment: Option<Digest>,
    /// A place needs an email confirmed by a mailed link (`verified_email`).
    pub one_place_per_email: bool,
}

fn entry_id(row: &EntryRow) -> Result<EntryId, SaleError> {
    row.entry_id
        .as_slice()
        .try_into()
        .map(EntryId)
        .map_err(|_| SaleError::Protocol {
            script: "prequeue",
            reply: "an entry id is not 16 bytes".into(),
        })
}

fn server_seed(bytes: &[u8]) -> Result<ServerSeed, SaleError> {
    bytes
        .try_into()
        .map(|b| ServerSeed(Digest(b)))
        .map_err(|_| SaleError::Protocol {
            script: "prequeue",
            reply: "a server seed is not 32 bytes".into(),
        })
}

fn stored_result(row: &db::prequeue::DrawRow) -> Result<Option<DrawResult>, SaleError> {
    row.result().map_err(|e| SaleError::Protocol {
        script: "draw",
        reply: format!("a stored draw result does not read: {e}"),
    })
}

/// A pre-queue entry's reservation: no place yet, its receipt and the draw's commitment.
fn prequeue_answer(
    sale: SaleId,
    reservation: Uuid,
    entry: &KnownEntry,
    commitment: Digest,
    opens_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Reservation {
    Reservation {
        code: ReservationCode {
            sale,
            token: reservation,
        },
        state: ReservationState::Prequeue,
        quantity: entry.quantity,
        position: 0,
        waiting: 0,
        expires_at: None,
        server_now: now,
        created: false,
        place: None,
        approximate: false,
        prequeue: Some(PrequeueTicket {
            receipt: entry.receipt.clone(),
            commitment,
            opens_at,
        }),
    }
}

impl TicketSales {
    /// Postgres reads the pre-queue's polls made on this instance so far (the sale's facts,
    /// entries looked up): for the metrics and the tests that hold them down.
    pub fn prequeue_poll_reads(&self) -> u64 {
        self.inner.prequeue_polls.reads()
    }

    /// The pre-queue's public half of the draw of `sale`: algorithm, commitment, receipt key
    /// and beacon chain, with the result once drawn. `None` when the sale has no draw (no
    /// pre-queue entry was ever made).
    pub async fn published_draw(&self, sale: SaleId) -> Result<Option<PublishedDraw>, SaleError> {
        let Some(row) = db::prequeue::find_draw(&self.inner.db, sale).await? else {
            return Ok(None);
        };
        Ok(Some(PublishedDraw {
            algorithm: ALGORITHM.to_string(),
            sale: sale.0,
            commitment: server_seed(&row.server_seed)?.commitment(),
            receipt_key: self.inner.receipts.public_key(),
            beacon_chain: self.inner.beacon.chain(),
            result: stored_result(&row)?,
        }))
    }

    /// The sale's pre-queue, if it has one and has not opened yet.
    pub async fn prequeue_window(&self, sale: SaleId) -> Result<Option<PrequeueWindow>, SaleError> {
        let Some(window) = db::prequeue::window(&self.inner.db, sale).await? else {
            return Ok(None);
        };
        if window.prequeue_secs == 0 || window.now >= window.opens_at {
            return Ok(None);
        }
        let commitment = match db::prequeue::find_draw(&self.inner.db, sale).await? {
            Some(row) => Some(server_seed(&row.server_seed)?.commitment()),
            None => None,
        };
        Ok(Some(PrequeueWindow {
            from: window.opens_at - chrono::Duration::seconds(i64::from(window.prequeue_secs)),
            opens_at: window.opens_at,
            commitment,
            one_place_per_email: window.one_place_per_email,
        }))
    }

    /// A join that Redis answered "not open yet": an entry in the pre-queue when its window is
    /// open (idempotent per owner), or, where the sale gives one place per verified email, a
    /// link mailed to `email`; else the same "opens at …".
    pub(super) async fn join_prequeue(
        &self,
        sale: SaleId,
        owner: &Owner,
        quantity: Quantity,
        opens_at: DateTime<Utc>,
        email: Option<&PrequeueEmail>,
    ) -> Result<Joining, SaleError> {
        let window = db::prequeue::window(&self.inner.db, sale)
            .await?
            .ok_or(SaleError::UnknownSale)?;
        if !window.is_open() {
            return Err(if window.prequeue_secs > 0 && window.now >= window.opens_at {
                // Redis's clock is a little behind Postgres's: the opening is here.
                SaleError::DrawUnderWay
            } else {
                SaleError::NotOpenYet(opens_at)
            });
        }
        if window.one_place_per_email {
            return self.mail_prequeue_link(sale, owner, quantity, email).await;
        }
        // Before the entry exists: once any entry may be drawn, joins after the opening wait.
        self.call_synced(sale, &PrequeueMark).await?;
        let fresh = EntryRow {
            owner: owner.as_str().to_string(),
            entry_id: EntryId::random().0.to_vec(),
            reservation: Uuid::new_v4(),
            quantity: i16::from(quantity.get()),
        };
        let seed = ServerSeed::random();
        match db::prequeue::join(&self.inner.db, sale, &fresh, &seed.0.0).await? {
            Joined::Frozen => Err(SaleError::DrawUnderWay),
            Joined::Entry { entry, created } => {
                if created {
                    crate::metrics::get().joined();
                }
                let mut r = self.prequeue_reservation(sale, &entry, window.now).await?;
                r.created = created;
                Ok(Joining::Placed(r))
            }
        }
    }

    /// A join that Redis answered "the draw is not queued yet": the owner's entry if it has
    /// one (it will be queued in a moment), else "try again in a moment".
    pub(super) async fn join_while_drawing(&self, sale: SaleId, owner: &Owner) -> Result<Reservation, SaleError> {
        let entry = db::prequeue::owner_entry(&self.inner.db, sale, owner.as_str()).await?;
        match entry {
            Some(entry) => self.prequeue_reservation(sale, &entry, Utc::now()).await,
            None => Err(SaleError::DrawUnderWay),
        }
    }

    /// The poll of a code Redis does not know: a pre-queue entry of this owner not queued yet,
    /// or `UnknownReservation`. Answered from what this instance keeps of the pre-queue
    /// (`prequeue_polls`): near the opening the whole pre-queue polls every second.
    pub(super) async fn prequeue_status(
        &self,
        code: &ReservationCode,
        owner: &Owner,
    ) -> Result<Reservation, SaleError> {
        let polls = &self.inner.prequeue_polls;
        let facts = polls
            .facts(code.sale, || self.read_poll_facts(code.sale))
            .await?
            // No such sale, or one that never had a pre-queue entry: no such entry either.
            .ok_or(SaleError::UnknownReservation)?;
        let Some(commitment) = facts.commitment else {
            return Err(SaleError::UnknownReservation);
        };
        if facts.enqueued {
            // Queued since Redis was asked: ask again. Still unknown there, Redis lost the
            // queue after the draw, as it may lose any queue.
            return match self
                .call_synced(code.sale, &super::script::Status { code, owner })
                .await?
            {
                StatusReply::Found {
                    reservation,
                    seq,
                    epoch,
                } => Ok(self.placed(reservation.into_reservation(code.sale, false), owner, seq, epoch)),
                StatusReply::NotFound => Err(SaleError::UnknownReservation),
            };
        }
        let entry = match polls.entry(code.sale, code.token) {
            Some(entry) => entry,
            None => {
                let Some(row) = db::prequeue::find_entry(&self.inner.db, code.sale, code.token, owner.as_str()).await?
                else {
                    polls.missed();
                    return Err(SaleError::UnknownReservation);
                };
                let entry = self.known_entry(code.sale, &row)?;
                polls.keep(code.sale, code.token, entry.clone());
                entry
            }
        };
        if entry.owner != owner.as_str() {
            return Err(SaleError::UnknownReservation);
        }
        let mut r = prequeue_answer(code.sale, code.token, &entry, commitment, facts.opens_at, facts.now());
        if facts.state == "closed" {
            r.state = ReservationState::Closed;
            r.prequeue = None;
        }
        Ok(r)
    }

    async fn read_poll_facts(&self, sale: SaleId) -> Result<Option<SaleFacts>, SaleError> {
        let Some(read) = db::prequeue::poll_facts(&self.inner.db, sale).await? else {
            return Ok(None);
        };
        let commitment = match &read.server_seed {
            Some(seed) => Some(server_seed(seed)?.commitment()),
            None => None,
        };
        Ok(Some(SaleFacts::new(
            read.opens_at,
            read.state,
            commitment,
            read.enqueued,
            read.now,
        )))
    }

    /// An entry as its polls need it: its receipt signed once.
    fn known_entry(&self, sale: SaleId, row: &EntryRow) -> Result<KnownEntry, SaleError> {
        Ok(KnownEntry {
            owner: row.owner.clone(),
            quantity: u8::try_from(row.quantity).unwrap_or(1),
            receipt: self.inner.receipts.issue(sale.0, entry_id(row)?).to_string(),
        })
    }

    /// Leaving the pre-queue: the entry goes while the list is not frozen.
    pub(super) async fn leave_prequeue(&self, code: &ReservationCode, owner: &Owner) -> Result<Reservation, SaleError> {
        let entry = db::prequeue::find_entry(&self.inner.db, code.sale, code.token, owner.as_str())
            .await?
            .ok_or(SaleError::UnknownReservation)?;
        match db::prequeue::leave(&self.inner.db, code.sale, code.token, owner.as_str()).await? {
            Left::NotFound => Err(SaleError::UnknownReservation),
            Left::Frozen => Err(SaleError::DrawUnderWay),
            Left::Removed => {
                self.inner.prequeue_polls.forget(code.sale, code.token);
                let mut r = self.prequeue_reservation(code.sale, &entry, Utc::now()).await?;
                r.state = ReservationState::Released;
                r.prequeue = None;
                Ok(r)
            }
        }
    }

    pub(super) async fn prequeue_reservation(
        &self,
        sale: SaleId,
        entry: &EntryRow,
        now: DateTime<Utc>,
    ) -> Result<Reservation, SaleError> {
        let record = db::sales::find(&self.inner.db, sale)
            .await?
            .ok_or(SaleError::UnknownSale)?;
        let draw = db::prequeue::find_draw(&self.inner.db, sale)
            .await?
            .ok_or(SaleError::UnknownReservation)?;
        Ok(prequeue_answer(
            sale,
            entry.reservation,
            &self.known_entry(sale, entry)?,
            server_seed(&draw.server_seed)?.commitment(),
            record.opens_at,
            now,
        ))
    }

    /// Runs every draw whose opening has come and whose entries are not queued yet; each
    /// failure is logged and retried on the next call. Returns how many draws were queued.
    pub async fn run_due_draws(&self) -> Result<usize, SaleError> {
        let mut queued = 0;
        for sale in db::prequeue::due(&self.inner.db).await? {
            match self.run_draw(sale).await {
                Ok(true) => queued += 1,
                Ok(false) => {}
                Err(e) => warn!(%sale, error = %e, "the pre-queue's draw failed; will retry"),
            }
        }
        Ok(queued)
    }

    /// The draw of one sale, from the freeze to the queue (see the module's doc); safe to run
    /// on several instances at once and again after a failure at any step. False before the
    /// opening.
    pub async fn run_draw(&self, sale: SaleId) -> Result<bool, SaleError> {
        let pool = &self.inner.db;
        let Some(frozen_at) = db::prequeue::freeze(pool, sale).await? else {
            return Ok(false);
        };
        let row = db::prequeue::find_draw(pool, sale)
            .await?
            .ok_or(SaleError::UnknownSale)?;
        if row.enqueued_at.is_some() {
            return Ok(true);
        }
        let entries = db::prequeue::entries(pool, sale).await?;
        let result = match stored_result(&row)? {
            Some(stored) => stored,
            None => {
                let round = round_after(self.inner.beacon.as_ref(), frozen_at, BEACON_PATIENCE)
                    .await
                    .map_err(|e| SaleError::Beacon(e.to_string()))?;
                let ids = entries.iter().map(entry_id).collect::<Result<Vec<_>, _>>()?;
                let hashes: Vec<Digest> = ids.iter().map(EntryId::hash).collect();
                let computed = DrawResult::compute(&server_seed(&row.server_seed)?, frozen_at, &hashes, round);
                db::prequeue::store_result(pool, sale, &computed).await?;
                // Another instance may have stored first: its result is the one (the same).
                match db::prequeue::find_draw(pool, sale).await? {
                    Some(row) => stored_result(&row)?.unwrap_or(computed),
                    None => computed,
                }
            }
        };
        let mut by_hash = std::collections::HashMap::with_capacity(entries.len());
        for entry in &entries {
            by_hash.insert(entry_id(entry)?.hash(), entry);
        }
        let mut drawn = Vec::with_capacity(result.entries.len());
        for placed in &result.entries {
            let entry = by_hash.get(&placed.entry_hash).ok_or_else(|| SaleError::Protocol {
                script: "draw",
                reply: "a drawn entry is not in the frozen list".into(),
            })?;
            drawn.push(DrawnReservation {
                code: ReservationCode {
                    sale,
                    token: entry.reservation,
                },
                owner: Owner::new(entry.owner.clone())?,
                qty: Quantity::new(i64::from(entry.quantity), crate::config::MAX_PER_ORDER_LIMIT)?,
            });
        }
        let calls = self.enqueue_drawn(sale, &drawn).await?;
        db::prequeue::mark_enqueued(pool, sale).await?;
        info!(%sale, entries = drawn.len(), calls, "the pre-queue is drawn into the queue");
        Ok(true)
    }

    /// Queues the drawn entries in batches of [`DRAW_BATCH`], each from where `draw.lua` says
    /// the queue stands (another instance may be queuing the same draw); returns how many
    /// calls it made.
    async fn enqueue_drawn(&self, sale: SaleId, drawn: &[DrawnReservation]) -> Result<usize, SaleError> {
        let total = drawn.len();
        // Every call but a lost sale's moves `next` forward; this many calls without
        // finishing means Redis keeps losing the sale: give up until the next attempt.
        let most_calls = 2 * (total / DRAW_BATCH + 1) + 4;
        let mut next = 0;
        for calls in 1..=most_calls {
            let batch = &drawn[next.min(total)..(next + DRAW_BATCH).min(total)];
            next = self
                .call_synced(
                    sale,
                    &DrawEnqueue {
                        from: next,
                        total,
                        batch,
                    },
                )
                .await?;
            if next >= total {
                return Ok(calls);
            }
        }
        Err(SaleError::Protocol {
            script: "draw",
            reply: format!("the draw was not in the queue after {most_calls} calls"),
        })
    }
}
