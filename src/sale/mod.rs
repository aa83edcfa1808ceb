//! The ticket sale aggregate: the only way the state of a sale changes.
//!
//! Live state (queue, holds, counters) lives in Redis and changes only through the Lua scripts
//! in `lua/`, one EVALSHA per operation (a crowd's joins several to one, `join_batch`), atomic,
//! with Redis's clock; each script is called through its own argument and reply types
//! (`script`). Postgres is the durable record: an order exists once its row is committed, and
//! the statement that counts it refuses to go beyond the capacity, so even a wrong Redis state
//! cannot oversell.
//!
//! Checkout is two script calls around one Postgres transaction: `confirm_begin` marks the hold
//! confirming (it can no longer lapse), the order is written, then `confirm_finish` moves the
//! tickets from held to sold. Whatever happens in between, `sync` later makes Redis agree with
//! Postgres again.
//!
//! An order cancelled unpaid (see `payment`) gives its tickets back with `give_back`, which
//! admits the next buyers in line as every script does.
//!
//! Once the queue is empty, tickets that come back are offered down the sale's waitlist
//! (`waitlist`), in the same scripts.

mod admission;
mod buyer;
mod error;
mod join_batch;
mod keys;
mod line;
mod model;
mod prequeue;
mod prequeue_polls;
mod presence;
mod returns;
mod script;
mod verified_email;
pub mod waitlist;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use fred::prelude::*;
use sqlx::PgPool;
use tracing::{error, info, warn};

pub use admission::{AdmissionRate, wait_secs};
pub use buyer::{Buyer, BuyerInput, FieldErrors, Gender, MAX_EMAIL_BYTES, MAX_NAME_CHARS};
pub use error::SaleError;
pub use keys::{SaleKey, sale_key, sale_keys};
pub use line::{LineView, PLACE_HEX, Place};
pub use model::{
    Owner, Quantity, Reservation, ReservationCode, ReservationState, SaleFigures, SaleId, SaleState, SessionMade,
};
pub use prequeue::{DRAW_BATCH, PrequeueTicket, PrequeueWindow};
pub use script::{assemble_script, script_text};
pub use verified_email::{Joining, LINK_LIFETIME, LinkToken, PrequeueEmail};

use crate::db;
use crate::db::orders::{Order, Placement};
use script::{
    AbortOutcome, ConfirmAbort, ConfirmBegin, ConfirmBeginReply, ConfirmFinish, GiveBack, Join, JoinReply, Peek,
    Release, ReleaseReply, Reply, ScriptCall, Scripts, Status, StatusReply, Sync, SyncOrder, SyncRead, SyncReply,
};

/// The ticket sale service. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct TicketSales {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Pool,
    db: PgPool,
    scripts: Scripts,
    max_per_order: u8,
    confirm_grace_ms: i64,
    abandon_ms: i64,
    claim_ms: i64,
    checkout_timeout: std::time::Duration,
    /// How long a buyer has to pay an order; `None` without payment (orders are confirmed).
    payment_window: Option<std::time::Duration>,
    /// Figures recently read, for pages that list many sales (see `recent_figures`).
    recent: std::sync::Mutex<HashMap<SaleId, (std::time::Instant, SaleFigures)>>,
    /// One lock per sale being rebuilt after Redis lost it; an entry lives only while its
    /// rebuild runs, whatever its outcome.
    rebuilding: std::sync::Mutex<HashMap<SaleId, Arc<tokio::sync::Mutex<()>>>>,
    /// Sale ids Postgres recently said do not exist (see [`UnknownSales`]).
    unknown: std::sync::Mutex<UnknownSales>,
    /// The admission rate last read per sale, for the waiting room.
    rates: admission::RecentRates,
    /// The waiting line of each sale as this instance sees it (see `line`).
    lines: line::Lines,
    /// New owners' joins gathered while a call for their sale is under way (see `join_batch`).
    join_batches: join_batch::JoinBatches,
    /// The waitlists this instance is recording for its requests (see `waitlist`).
    recorders: waitlist::Recorders,
    /// Each sale's keys for its script calls.
    keys: keys::KeyCache,
    /// Signs the places in line that waiting codes carry.
    secret: crate::config::Secret,
    /// The secret keyed for the places of waiting buyers (src/sale/line.rs).
    place_key: line::PlaceKey,
    /// Signs the pre-queue's receipts.
    receipts: crate::draw::receipt::ReceiptSigner,
    /// What the pre-queue's polls read from Postgres, kept for a moment (see `prequeue_polls`).
    prequeue_polls: prequeue_polls::PrequeuePolls,
    /// The draws' public randomness.
    beacon: Arc<dyn crate::draw::beacon::Beacon>,
}

/// A negative cache: sale ids Postgres said it does not know, each remembered for
/// [`UnknownSales::TTL`], at most [`UnknownSales::MAX`] of them, so that a client repeating a
/// forged id costs one Redis call and no Postgres query. Sale ids are random UUIDs minted when
/// the sale is created, so an id cannot be unknown first and exist a moment later.
#[derive(Default)]
struct UnknownSales(HashMap<SaleId, std::time::Instant>);

impl UnknownSales {
    const TTL: std::time::Duration = std::time::Duration::from_secs(60);
    const MAX: usize = 10_000;

    fn contains(&self, sale: SaleId) -> bool {
        self.0.get(&sale).is_some_and(|at| at.elapsed() < Self::TTL)
    }

    fn insert(&mut self, sale: SaleId) {
        if self.0.len() >= Self::MAX {
            self.0.retain(|_, at| at.elapsed() < Self::TTL);
        }
        if self.0.len() >= Self::MAX {
            // Still full of fresh ids: a flood of distinct forged ids, which the cache cannot
            // help against (the rate limits do). Start over rather than grow.
            self.0.clear();
        }
        self.0.insert(sale, std::time::Instant::now());
    }
}

/// How long a sale's Redis keys outlive its event.
const KEYS_OUTLIVE_EVENT: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Reads a sync makes before giving up, when each is overtaken by another instance's sync.
const SYNC_ROUNDS: usize = 4;

impl TicketSales {
    /// Loads the scripts into Redis. Fails when Redis does not answer.
    pub async fn new(redis: Pool, db: PgPool, settings: &crate::config::Settings) -> Result<Self, SaleError> {
        let scripts = Scripts::new();
        scripts.load(redis.next()).await?;
        Ok(TicketSales {
            inner: Arc::new(Inner {
                redis,
                db,
                scripts,
                max_per_order: settings.max_per_order,
                confirm_grace_ms: i64::from(settings.confirm_grace_secs) * 1000,
                abandon_ms: i64::from(settings.abandon_secs) * 1000,
                claim_ms: i64::from(settings.claim_secs) * 1000,
                checkout_timeout: settings.checkout_statement_timeout(),
                payment_window: settings
                    .stripe_secret_key
                    .as_ref()
                    .map(|_| std::time::Duration::from_secs(u64::from(settings.payment_secs))),
                rebuilding: Default::default(),
                unknown: Default::default(),
                recent: Default::default(),
                rates: Default::default(),
                lines: Default::default(),
                join_batches: Default::default(),
                recorders: Default::default(),
                secret: settings.secret.clone(),
                place_key: line::PlaceKey::new(&settings.secret),
                keys: keys::KeyCache::default(),
                receipts: crate::draw::receipt::ReceiptSigner::from_secret(&settings.secret),
                prequeue_polls: Default::default(),
                beacon: settings.beacon(),
            }),
        })
    }

    /// Records a join proof's nonce as used; `false` when it was used already. The key
    /// expires with the challenge, after which the proof is refused as expired anyway.
    pub async fn use_proof_once(&self, sale: SaleId, nonce: &str, remember_secs: i64) -> Result<bool, SaleError> {
        let set: Option<String> = self
            .inner
            .redis
            .set(
                keys::used_proof_key(sale, nonce),
                1,
                Some(Expiration::EX(remember_secs.max(1))),
                Some(SetOptions::NX),
                false,
            )
            .await?;
        Ok(set.is_some())
    }

    /// Counts a join request of the sale in the current minute, and returns the sale's joins
    /// in the last minute: the larger of the previous minute's count and this one's so far.
    pub async fn count_join(&self, sale: SaleId) -> Result<u64, SaleError> {
        let minute = Utc::now().timestamp().div_euclid(60);
        let this_minute = keys::joins_in_minute_key(sale, minute);
        let pipeline = self.inner.redis.next().pipeline();
        let _: () = pipeline.incr(&this_minute).await?;
        let _: () = pipeline.expire(&this_minute, 120, None).await?;
        let _: () = pipeline.get(keys::joins_in_minute_key(sale, minute - 1)).await?;
        let (now, _, before): (u64, i64, Option<u64>) = pipeline.all().await?;
        Ok(now.max(before.unwrap_or(0)))
    }

    /// The sale's joins in the last minute, as [`TicketSales::count_join`] counts them,
    /// without counting one.
    pub async fn joins_last_minute(&self, sale: SaleId) -> Result<u64, SaleError> {
        let minute = Utc::now().timestamp().div_euclid(60);
        let counts: Vec<Option<u64>> = self
            .inner
            .redis
            .mget(vec![
                keys::joins_in_minute_key(sale, minute),
                keys::joins_in_minute_key(sale, minute - 1),
            ])
            .await?;
        Ok(counts.into_iter().flatten().max().unwrap_or(0))
    }

    pub fn max_per_order(&self) -> u8 {
        self.inner.max_per_order
    }

    /// Parses a quantity against this shop's per-order maximum.
    pub fn quantity(&self, n: i64) -> Result<Quantity, SaleError> {
        Quantity::new(n, self.inner.max_per_order)
    }

    /// A buyer asks for `quantity` tickets. Idempotent per owner: while the owner's reservation
    /// in this sale is live, the same one comes back (`created == false`). A pre-queue join of
    /// a sale that gives one place per verified email is `EmailRequired` here: see
    /// [`TicketSales::join_with_email`].
    pub async fn join(&self, sale: SaleId, owner: &Owner, quantity: Quantity) -> Result<Reservation, SaleError> {
        match self
            .join_with_email(sale, owner, SessionMade::Before, quantity, None)
            .await?
        {
            Joining::Placed(r) => Ok(r),
            Joining::LinkMailed => Err(SaleError::EmailRequired),
        }
    }

    /// [`TicketSales::join`] with the buyer's email, which only a pre-queue join of a sale
    /// that gives one place per verified email uses: a link to the place is mailed to it
    /// (`sale::verified_email`). Anywhere else the email is not read.
    pub async fn join_with_email(
        &self,
        sale: SaleId,
        owner: &Owner,
        session: SessionMade,
        quantity: Quantity,
        email: Option<&PrequeueEmail>,
    ) -> Result<Joining, SaleError> {
        let first = ReservationCode::first_of(sale, owner);
        let batched = match session {
            SessionMade::Now => self.join_with_crowd(sale, first, owner, quantity).await,
            SessionMade::Before => None,
        };
        let reply = match batched {
            Some(reply) => reply,
            None => {
                let join = Join {
                    code: &ReservationCode::new(sale),
                    owner,
                    qty: quantity,
                    first: &first,
                    session,
                };
                self.call_synced(sale, &join).await?
            }
        };
        match reply {
            JoinReply::Closed => Err(SaleError::Closed),
            JoinReply::NotOpen { opens_at } => {
                Box::pin(self.join_prequeue(sale, owner, quantity, opens_at, email)).await
            }
            JoinReply::Drawing => Box::pin(self.join_while_drawing(sale, owner))
                .await
                .map(Joining::Placed),
            JoinReply::Joined {
                reservation,
                created,
                seq,
                epoch,
            } => {
                if created {
                    crate::metrics::get().joined();
                }
                let r = self.placed(reservation.into_reservation(sale, created), owner, seq, epoch);
                Ok(Joining::Placed(r))
            }
        }
    }

    /// The poll: lapses due holds, admits from the head of the queue, and tells where this
    /// reservation stands. A code of another owner is `UnknownReservation`.
    pub async fn status(&self, code: &ReservationCode, owner: &Owner) -> Result<Reservation, SaleError> {
        match self.call_synced(code.sale, &Status { code, owner }).await? {
            // Not in the queue: maybe in the sale's pre-queue, which Postgres keeps.
            StatusReply::NotFound => Box::pin(self.prequeue_status(code, owner)).await,
            StatusReply::Found {
                reservation,
                seq,
                epoch,
            } => Ok(self.placed(reservation.into_reservation(code.sale, false), owner, seq, epoch)),
        }
    }

    /// A reservation with its signed place in line, when it waits (`seq` > 0).
    fn placed(&self, mut r: Reservation, owner: &Owner, seq: u64, epoch: i64) -> Reservation {
        if r.state == ReservationState::Waiting && seq > 0 {
            r.place = Some(self.place_of(&r, owner, seq, epoch));
        }
        r
    }

    /// The waiting buyer's poll, with the place in line it carries beside its code, if any
    /// (`place`, as the join gave it): a buyer far from the head is answered from this
    /// instance's view of the line without a Redis call; any other by `status`. A place not
    /// signed for this code and owner is `UnknownReservation`, refused without asking Redis;
    /// a place that is not a place at all is ignored.
    pub async fn poll(
        &self,
        code: &ReservationCode,
        place: Option<&str>,
        owner: &Owner,
    ) -> Result<Reservation, SaleError> {
        let place = place.and_then(Place::parse);
        if let Some(place) = &place {
            let mut answer = self.answer_from_line(code, owner, place);
            if let line::Answer::NotRead = answer {
                Box::pin(self.read_line_now(code.sale)).await;
                answer = self.answer_from_line(code, owner, place);
            }
            match answer {
                line::Answer::Far(r) => return Ok(r),
                line::Answer::Forged => return Err(SaleError::UnknownReservation),
                line::Answer::AskRedis | line::Answer::NotRead => {}
            }
        }
        self.status(code, owner).await
    }

    /// The buyer gives up: leaves the queue or releases the held tickets at once.
    pub async fn release(&self, code: &ReservationCode, owner: &Owner) -> Result<Reservation, SaleError> {
        match self.call_synced(code.sale, &Release { code, owner }).await? {
            ReleaseReply::NotFound => Box::pin(self.leave_prequeue(code, owner)).await,
            ReleaseReply::Confirming => Err(SaleError::ConfirmInProgress),
            ReleaseReply::Done(r) => {
                self.inner.lines.note_left(code);
                Ok(r.into_reservation(code.sale, false))
            }
        }
    }

    /// Checkout: turns a live hold into an order. The order is committed in Postgres before the
    /// tickets count as sold in Redis; if Postgres fails the hold stays the buyer's, to retry
    /// while it lasts.
    pub async fn confirm(&self, code: &ReservationCode, owner: &Owner, buyer: &Buyer) -> Result<Order, SaleError> {
        let sale = code.sale;
        let quantity = match self.call_synced(sale, &ConfirmBegin { code, owner }).await? {
            ConfirmBeginReply::Confirming { qty } => qty,
            ConfirmBeginReply::NotFound => return Err(SaleError::UnknownReservation),
            ConfirmBeginReply::Closed => return Err(SaleError::Closed),
            ConfirmBeginReply::NotAdmitted(state) => return Err(SaleError::NotAdmitted(state)),
        };

        let placement = db::orders::place(
            &self.inner.db,
            sale,
            code.token,
            quantity,
            buyer,
            self.inner.payment_window,
            self.inner.checkout_timeout,
        )
        .await;
        if let Ok(Placement::Placed(_)) = &placement {
            crate::metrics::get().ordered();
        }
        match placement {
            Ok(Placement::Placed(order)) | Ok(Placement::AlreadyPlaced(order)) => {
                self.finish_confirm(code, &order).await;
                Ok(order)
            }
            Ok(Placement::SoldOut) => {
                // Redis admitted more than Postgres can sell: bring Redis back in step. The
                // answer stays "sold out" even if that fails; the reconciler retries.
                warn!(%sale, "Postgres refused an order beyond capacity; syncing the sale");
                self.abort_confirm(code, AbortOutcome::SoldOut).await;
                self.sync_or_log(sale).await;
                Err(SaleError::SoldOut)
            }
            Ok(Placement::SaleClosed) => {
                self.abort_confirm(code, AbortOutcome::Closed).await;
                self.sync_or_log(sale).await;
                Err(SaleError::Closed)
            }
            Err(e) => {
                // The commit may have happened although its answer was lost: look before
                // giving the hold back, or the buyer would be told "not saved" of a saved order.
                if let Ok(Some(order)) = db::orders::find_by_reservation(&self.inner.db, code.token).await {
                    self.finish_confirm(code, &order).await;
                    return Ok(order);
                }
                warn!(%sale, error = %e, "writing an order failed; the hold goes back to the buyer");
                self.abort_confirm(code, AbortOutcome::Retry).await;
                Err(SaleError::Postgres(e))
            }
        }
    }

    /// Counts a committed order as sold in Redis. The order stands whatever happens here; if
    /// this call fails, the next sync counts it.
    async fn finish_confirm(&self, code: &ReservationCode, order: &Order) {
        let finish = ConfirmFinish {
            code,
            qty: i64::from(order.quantity),
        };
        if let Err(e) = self.call(code.sale, &finish).await {
            warn!(sale = %code.sale, error = %e, "confirm_finish failed; sync will count the order");
        }
    }

    /// Gives the tickets of a cancelled order (committed in Postgres) back to the sale and
    /// admits the next buyers in line. True when they went back now; false when they had
    /// already, or Redis had lost the sale (its rebuild reads `sold` from Postgres).
    pub async fn give_back(&self, sale: SaleId, reservation: uuid::Uuid) -> Result<bool, SaleError> {
        let code = ReservationCode {
            sale,
            token: reservation,
        };
        self.call(sale, &GiveBack { code: &code }).await
    }

    async fn sync_or_log(&self, sale: SaleId) {
        if let Err(e) = self.sync(sale).await {
            warn!(%sale, error = %e, "syncing the sale failed; the reconciler will retry");
        }
    }

    async fn abort_confirm(&self, code: &ReservationCode, outcome: AbortOutcome) {
        if let Err(e) = self.call(code.sale, &ConfirmAbort { code, outcome }).await {
            warn!(sale = %code.sale, error = %e, "confirm_abort failed; sync will settle the hold");
        }
    }

    /// A sale's figures at most `max_age` old: for a page that lists many sales, so that a
    /// crowd reloading it costs Redis one call per sale and period, not one per visitor.
    pub async fn recent_figures(&self, sale: SaleId, max_age: std::time::Duration) -> Result<SaleFigures, SaleError> {
        if let Some((at, f)) = self.inner.recent.lock().expect("recent figures lock").get(&sale)
            && at.elapsed() < max_age
        {
            return Ok(f.clone());
        }
        let f = self.figures(sale).await?;
        self.inner
            .recent
            .lock()
            .expect("recent figures lock")
            .insert(sale, (std::time::Instant::now(), f.clone()));
        Ok(f)
    }

    /// A sale's live figures; for a sale whose event is over (its live state gone), what
    /// Postgres recorded.
    pub async fn figures(&self, sale: SaleId) -> Result<SaleFigures, SaleError> {
        match self.call_synced(sale, &Peek).await {
            Err(SaleError::Over) => self.final_figures(sale).await,
            figures => figures,
        }
    }

    /// The figures of a sale that is over, from Postgres alone: nobody waits or holds any more.
    async fn final_figures(&self, sale: SaleId) -> Result<SaleFigures, SaleError> {
        let record = db::sales::find(&self.inner.db, sale)
            .await?
            .ok_or(SaleError::UnknownSale)?;
        let now = Utc::now();
        Ok(SaleFigures {
            capacity: i64::from(record.capacity),
            sold: i64::from(record.sold),
            held: 0,
            waiting: 0,
            state: record.sale_state(),
            opens_at: record.opens_at,
            admitted: 0,
            lapsed: 0,
            active: 0,
            joined: 0,
            left: 0,
            released: 0,
            abandoned: 0,
            sold_out: 0,
            server_now: now,
            admission_rate: AdmissionRate::none(now),
        })
    }

    /// The figures of every sale that is not closed, for monitoring. A sale whose figures
    /// cannot be read is left out rather than failing the whole reading.
    pub async fn live_figures(&self) -> Result<Vec<(SaleId, SaleFigures)>, SaleError> {
        let ids = db::sales::live_ids(&self.inner.db).await?;
        let mut out = Vec::with_capacity(ids.len());
        for sale in ids {
            match self.figures(sale).await {
                Ok(f) => out.push((sale, f)),
                Err(e) => warn!(%sale, error = %e, "reading a sale's figures failed"),
            }
        }
        Ok(out)
    }

    /// Opens, pauses or closes a sale: Postgres first, then Redis follows.
    pub async fn set_state(&self, sale: SaleId, state: SaleState) -> Result<(), SaleError> {
        if !db::sales::set_state(&self.inner.db, sale, state).await? {
            return Err(SaleError::UnknownSale);
        }
        match self.sync(sale).await {
            // Postgres has the new state; an event over has no live state to follow it.
            Err(SaleError::Over) => Ok(()),
            synced => synced,
        }
    }

    /// Makes the sale's Redis state agree with Postgres (see `lua/sync.lua`). Creates it when
    /// Redis has lost it. Reads only the orders the last sync may not have seen, unless Redis
    /// has lost the sale: then all of them. An event over for more than a day is `Over`: its
    /// keys are gone for good and are not made again.
    pub async fn sync(&self, sale: SaleId) -> Result<(), SaleError> {
        // A read overtaken by a newer sync is read again; a few rounds settle any race.
        for _ in 0..SYNC_ROUNDS {
            if self.sync_once(sale).await? {
                return Ok(());
            }
        }
        Err(SaleError::Protocol {
            script: "sync",
            reply: format!("{SYNC_ROUNDS} reads in a row overtaken by other syncs"),
        })
    }

    /// One round of `sync`: false when the script asked for a fresh read.
    async fn sync_once(&self, sale: SaleId) -> Result<bool, SaleError> {
        let mark = self.call(sale, &SyncRead).await?;
        let (since, read_ms) = (mark.xact_mark, mark.now_ms);
        let snap = db::sales::snapshot(&self.inner.db, sale, since)
            .await?
            .ok_or(SaleError::UnknownSale)?;
        let record = &snap.sale;
        let keys_expire_at = snap
            .event_ends_at
            .checked_add_signed(KEYS_OUTLIVE_EVENT)
            .ok_or(SaleError::TimeOutOfRange)?;
        if keys_expire_at.timestamp_millis() <= read_ms {
            return Err(SaleError::Over);
        }
        let orders = snap
            .order_codes
            .iter()
            .zip(&snap.order_quantities)
            .zip(&snap.order_xacts)
            .map(|((code, quantity), xact)| SyncOrder {
                code: code.simple().to_string(),
                quantity: i64::from(*quantity),
                xact: *xact,
            })
            .collect();
        let sync = Sync {
            capacity: snap.live_capacity(),
            // Tickets offered for return are for sale again (the order that buys them takes
            // them, `db::returns`).
            pg_sold: i64::from(record.sold) - snap.returns_open,
            hold_ms: i64::from(record.hold_secs) * 1000,
            grace_ms: self.inner.confirm_grace_ms,
            max_active: i64::from(record.max_active),
            state: record.sale_state(),
            opens_ms: record.opens_at.timestamp_millis(),
            abandon_ms: self.inner.abandon_ms,
            claim_ms: self.inner.claim_ms,
            revision: snap.revision,
            expire_at_s: keys_expire_at.timestamp(),
            read_ms,
            since,
            read_xmin: snap.read_xmin,
            draw_pending: snap.draw_pending,
            orders,
        };
        match self.call(sale, &sync).await? {
            SyncReply::Reread => Ok(false),
            SyncReply::Synced { sold, held } => {
                info!(%sale, redis_sold = sold, held, pg_sold = record.sold,
                      orders_read = snap.order_codes.len(), "sale synced");
                if since == 0 {
                    // The sale was (re)built: its waitlist comes back from Postgres with it.
                    self.restore_waitlist(sale).await?;
                }
                Ok(true)
            }
        }
    }

    /// Syncs every sale of an event not long over (closed ones too, so that a close Redis
    /// missed reaches it); run at start-up and periodically, so that a checkout interrupted
    /// between Postgres and Redis is settled within one period. Each sale is synced in a task
    /// of its own: one that fails, or even panics, is logged with its id and the others are
    /// still synced. Returns how many were synced.
    pub async fn sync_live_sales(&self) -> Result<usize, SaleError> {
        let ids = db::sales::live_ids(&self.inner.db).await?;
        let mut synced = 0;
        for sale in ids {
            let this = self.clone();
            match tokio::spawn(async move { this.sync(sale).await }).await {
                Ok(Ok(())) => synced += 1,
                Ok(Err(e)) => warn!(%sale, error = %e, "reconciling a sale failed; will retry"),
                Err(e) => error!(%sale, error = %e, "reconciling a sale panicked; will retry"),
            }
        }
        Ok(synced)
    }

    /// Runs a script; when Redis has lost the sale, rebuilds it from Postgres and runs the
    /// script once more.
    ///
    /// The rare paths that read Postgres (this rebuild, the pre-queue's answers) are boxed here
    /// and in the buyer's calls: a query's future is kilobytes, and inline it would make the
    /// future of every poll and join that big, moved from layer to layer of each request.
    async fn call_synced<C: ScriptCall>(&self, sale: SaleId, call: &C) -> Result<C::Reply, SaleError> {
        let mut reply = self.eval(sale, call).await?;
        if reply.is_missing() {
            Box::pin(self.rebuild_if_missing(sale)).await?;
            reply = self.eval(sale, call).await?;
            if reply.is_missing() {
                return Err(SaleError::Protocol {
                    script: C::SCRIPT.as_str(),
                    reply: "the sale is still missing after it was rebuilt".into(),
                });
            }
        }
        Ok(C::decode(reply)?)
    }

    /// Rebuilds a sale Redis has lost. Concurrent callers of one instance wait for a single
    /// rebuild instead of each asking Postgres (a crowd arrives all at once after a restart).
    /// An id Postgres does not know is remembered for a while and refused without asking again.
    async fn rebuild_if_missing(&self, sale: SaleId) -> Result<(), SaleError> {
        if self.known_unknown(sale) {
            return Err(SaleError::UnknownSale);
        }
        let lock = self
            .inner
            .rebuilding
            .lock()
            .expect("rebuild lock poisoned")
            .entry(sale)
            .or_default()
            .clone();
        let rebuilt = async {
            let _guard = lock.lock().await;
            let exists: i64 = self
                .inner
                .redis
                .exists(keys::sale_key(sale, keys::SaleKey::Sale))
                .await?;
            if exists == 0 {
                info!(%sale, "sale missing in Redis; rebuilding it from Postgres");
                self.sync(sale).await?;
            }
            Ok(())
        }
        .await;
        // Whatever the outcome: an entry left behind by a failed rebuild would stay for good.
        self.inner
            .rebuilding
            .lock()
            .expect("rebuild lock poisoned")
            .remove(&sale);
        if let Err(SaleError::UnknownSale) = rebuilt {
            self.note_unknown(sale);
        }
        rebuilt
    }

    /// The public listing of a sale; an id Postgres recently did not know is refused from the
    /// negative cache without asking again.
    pub async fn listing(&self, sale: SaleId) -> Result<db::events::Listing, SaleError> {
        if self.known_unknown(sale) {
            return Err(SaleError::UnknownSale);
        }
        match db::events::listing_of_sale(&self.inner.db, sale.0).await? {
            Some(listing) => Ok(listing),
            None => {
                self.note_unknown(sale);
                Err(SaleError::UnknownSale)
            }
        }
    }

    /// Postgres said recently that it does not know this sale id.
    fn known_unknown(&self, sale: SaleId) -> bool {
        self.inner.unknown.lock().expect("unknown sales lock").contains(sale)
    }

    fn note_unknown(&self, sale: SaleId) {
        self.inner.unknown.lock().expect("unknown sales lock").insert(sale);
    }

    /// Rebuilds in progress in this process, for tests that check nothing is left behind.
    #[doc(hidden)]
    pub fn rebuilds_in_progress(&self) -> usize {
        self.inner.rebuilding.lock().expect("rebuild lock poisoned").len()
    }

    /// Runs a script and reads its reply.
    async fn call<C: ScriptCall>(&self, sale: SaleId, call: &C) -> Result<C::Reply, SaleError> {
        Ok(C::decode(self.eval(sale, call).await?)?)
    }

    /// The one place every script call passes: KEYS are the sale's, ARGV the call's.
    async fn eval<C: ScriptCall>(&self, sale: SaleId, call: &C) -> Result<Reply, SaleError> {
        // Timed here: the round trip as the app sees it, NOSCRIPT reloads included.
        let started = std::time::Instant::now();
        // Boxed: the client's future for one call is about 5 KB; inline, every buyer's request
        // future would carry it and copy it at each layer (see call_synced).
        let reply = Box::pin(self.inner.scripts.get(C::SCRIPT).evalsha_with_reload::<Value, _, _>(
            self.inner.redis.next(),
            self.inner.keys.keys(sale),
            call.argv(),
        ))
        .await;
        crate::metrics::get().script_call(C::SCRIPT.as_str(), started.elapsed(), reply.is_ok());
        Ok(Reply::new(C::SCRIPT, reply?))
    }
}
