//! The ticket sale aggregate: the only way the state of a sale changes.
//!
//! Live state (queue, holds, counters) lives in Redis and changes only through the Lua scripts
//! in `lua/`, one EVALSHA per operation, atomic, with Redis's clock. Postgres is the durable
//! record: an order exists once its row is committed, and the statement that counts it refuses
//! to go beyond the capacity, so even a wrong Redis state cannot oversell.
//!
//! Checkout is two script calls around one Postgres transaction: `confirm_begin` marks the hold
//! confirming (it can no longer lapse), the order is written, then `confirm_finish` moves the
//! tickets from held to sold. Whatever happens in between, `sync` later makes Redis agree with
//! Postgres again.

mod buyer;
mod error;
mod keys;
mod model;
mod presence;
mod scripts;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use fred::prelude::*;
use fred::types::scripts::Script;
use sqlx::PgPool;
use tracing::{error, info, warn};

pub use buyer::{Buyer, BuyerInput, FieldErrors, Gender, MAX_EMAIL_BYTES, MAX_NAME_CHARS};
pub use error::SaleError;
pub use keys::sale_keys;
pub use model::{Owner, Quantity, Reservation, ReservationCode, ReservationState, SaleFigures, SaleId, SaleState};

use crate::db;
use crate::db::orders::{Order, Placement};
use scripts::Scripts;

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
    /// Figures recently read, for pages that list many sales (see `recent_figures`).
    recent: std::sync::Mutex<HashMap<SaleId, (std::time::Instant, SaleFigures)>>,
    /// One lock per sale being rebuilt after Redis lost it; an entry lives only while its
    /// rebuild runs, whatever its outcome.
    rebuilding: std::sync::Mutex<HashMap<SaleId, Arc<tokio::sync::Mutex<()>>>>,
    /// Sale ids Postgres recently said do not exist (see [`UnknownSales`]).
    unknown: std::sync::Mutex<UnknownSales>,
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

/// One script's raw reply.
type Reply = Vec<Value>;

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
                rebuilding: Default::default(),
                unknown: Default::default(),
                recent: Default::default(),
            }),
        })
    }

    pub fn max_per_order(&self) -> u8 {
        self.inner.max_per_order
    }

    /// Parses a quantity against this shop's per-order maximum.
    pub fn quantity(&self, n: i64) -> Result<Quantity, SaleError> {
        Quantity::new(n, self.inner.max_per_order)
    }

    /// A buyer asks for `quantity` tickets. Idempotent per owner: while the owner's reservation
    /// in this sale is live, the same one comes back (`created == false`).
    pub async fn join(&self, sale: SaleId, owner: &Owner, quantity: Quantity) -> Result<Reservation, SaleError> {
        let code = ReservationCode::new(sale);
        let s = &self.inner.scripts;
        let reply = self
            .call_synced(&s.join, sale, || {
                vec![
                    code.member().into(),
                    owner.as_str().into(),
                    i64::from(quantity.get()).into(),
                ]
            })
            .await?;
        match tag(&reply) {
            "!closed" => Err(SaleError::Closed),
            "!not_open" => Err(SaleError::NotOpenYet(millis_to_time(int_at(&reply, 1)))),
            _ => {
                let r = reservation(sale, &reply, "join")?;
                if r.created {
                    crate::metrics::get().joined();
                }
                Ok(r)
            }
        }
    }

    /// The poll: lapses due holds, admits from the head of the queue, and tells where this
    /// reservation stands. A code of another owner is `UnknownReservation`.
    pub async fn status(&self, code: &ReservationCode, owner: &Owner) -> Result<Reservation, SaleError> {
        let reply = self
            .call_synced(&self.inner.scripts.status, code.sale, || {
                vec![code.member().into(), owner.as_str().into()]
            })
            .await?;
        match tag(&reply) {
            "!not_found" => Err(SaleError::UnknownReservation),
            _ => reservation(code.sale, &reply, "status"),
        }
    }

    /// The buyer gives up: leaves the queue or releases the held tickets at once.
    pub async fn release(&self, code: &ReservationCode, owner: &Owner) -> Result<Reservation, SaleError> {
        let reply = self
            .call_synced(&self.inner.scripts.release, code.sale, || {
                vec![code.member().into(), owner.as_str().into()]
            })
            .await?;
        match tag(&reply) {
            "!not_found" => Err(SaleError::UnknownReservation),
            "!bad_state" => Err(SaleError::ConfirmInProgress),
            _ => reservation(code.sale, &reply, "release"),
        }
    }

    /// Checkout: turns a live hold into an order. The order is committed in Postgres before the
    /// tickets count as sold in Redis; if Postgres fails the hold stays the buyer's, to retry
    /// while it lasts.
    pub async fn confirm(&self, code: &ReservationCode, owner: &Owner, buyer: &Buyer) -> Result<Order, SaleError> {
        let s = &self.inner.scripts;
        let sale = code.sale;
        let reply = self
            .call_synced(&s.confirm_begin, sale, || {
                vec![code.member().into(), owner.as_str().into()]
            })
            .await?;
        let quantity = match tag(&reply) {
            "confirming" => int_at(&reply, 2),
            "!not_found" => return Err(SaleError::UnknownReservation),
            "!closed" => return Err(SaleError::Closed),
            "!bad_state" => {
                let state = ReservationState::from_script(&str_at(&reply, 1))
                    .ok_or_else(|| protocol("confirm_begin", &reply))?;
                return Err(SaleError::NotAdmitted(state));
            }
            _ => return Err(protocol("confirm_begin", &reply)),
        };
        let quantity = u8::try_from(quantity).map_err(|_| protocol("confirm_begin", &reply))?;

        let placement = db::orders::place(
            &self.inner.db,
            sale,
            code.token,
            quantity,
            buyer,
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
                self.abort_confirm(code, "sold_out").await;
                self.sync_or_log(sale).await;
                Err(SaleError::SoldOut)
            }
            Ok(Placement::SaleClosed) => {
                self.abort_confirm(code, "closed").await;
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
                self.abort_confirm(code, "retry").await;
                Err(SaleError::Postgres(e))
            }
        }
    }

    /// Counts a committed order as sold in Redis. The order stands whatever happens here; if
    /// this call fails, the next sync counts it.
    async fn finish_confirm(&self, code: &ReservationCode, order: &Order) {
        let args = vec![code.member().into(), i64::from(order.quantity).into()];
        if let Err(e) = self.call(&self.inner.scripts.confirm_finish, code.sale, args).await {
            warn!(sale = %code.sale, error = %e, "confirm_finish failed; sync will count the order");
        }
    }

    async fn sync_or_log(&self, sale: SaleId) {
        if let Err(e) = self.sync(sale).await {
            warn!(%sale, error = %e, "syncing the sale failed; the reconciler will retry");
        }
    }

    /// `outcome` is `retry` (the hold goes back to the buyer), `sold_out` or `closed`.
    async fn abort_confirm(&self, code: &ReservationCode, outcome: &'static str) {
        let args = vec![code.member().into(), outcome.into()];
        if let Err(e) = self.call(&self.inner.scripts.confirm_abort, code.sale, args).await {
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
        let reply = match self.call_synced(&self.inner.scripts.peek, sale, Vec::new).await {
            Err(SaleError::Over) => return self.final_figures(sale).await,
            reply => reply?,
        };
        let state = str_at(&reply, 4).parse().map_err(|_| protocol("peek", &reply))?;
        Ok(SaleFigures {
            capacity: int_at(&reply, 0),
            sold: int_at(&reply, 1),
            held: int_at(&reply, 2),
            waiting: int_at(&reply, 3),
            state,
            opens_at: millis_to_time(int_at(&reply, 5)),
            admitted: int_at(&reply, 6),
            lapsed: int_at(&reply, 7),
            active: int_at(&reply, 8),
            server_now: millis_to_time(int_at(&reply, 9)),
        })
    }

    /// The figures of a sale that is over, from Postgres alone: nobody waits or holds any more.
    async fn final_figures(&self, sale: SaleId) -> Result<SaleFigures, SaleError> {
        let record = db::sales::find(&self.inner.db, sale)
            .await?
            .ok_or(SaleError::UnknownSale)?;
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
            server_now: Utc::now(),
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
        let s = &self.inner.scripts;
        let mark = self.call(&s.sync_read, sale, Vec::new()).await?;
        let (since, read_ms) = (int_at(&mark, 0), int_at(&mark, 1));
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
        let mut args: Vec<Value> = vec![
            snap.live_capacity().into(),
            i64::from(record.sold).into(),
            (i64::from(record.hold_secs) * 1000).into(),
            self.inner.confirm_grace_ms.into(),
            i64::from(record.max_active).into(),
            record.state.as_str().into(),
            record.opens_at.timestamp_millis().into(),
            self.inner.abandon_ms.into(),
            self.inner.claim_ms.into(),
            snap.revision.into(),
            keys_expire_at.timestamp().into(),
            read_ms.into(),
            since.into(),
            snap.read_xmin.into(),
        ];
        let orders = snap
            .order_codes
            .iter()
            .zip(&snap.order_quantities)
            .zip(&snap.order_xacts);
        for ((code, quantity), xact) in orders {
            args.push(Value::from(code.simple().to_string()));
            args.push(Value::from(i64::from(*quantity)));
            args.push(Value::from(*xact));
        }
        let reply = self.call(&s.sync, sale, args).await?;
        if tag(&reply) == "!reread" {
            return Ok(false);
        }
        info!(%sale, redis_sold = int_at(&reply, 0), held = int_at(&reply, 1), pg_sold = record.sold,
              orders_read = snap.order_codes.len(), "sale synced");
        Ok(true)
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
    async fn call_synced(
        &self,
        script: &Script,
        sale: SaleId,
        args: impl Fn() -> Vec<Value>,
    ) -> Result<Reply, SaleError> {
        let reply = self.call(script, sale, args()).await?;
        if tag(&reply) != "!missing" {
            return Ok(reply);
        }
        self.rebuild_if_missing(sale).await?;
        let reply = self.call(script, sale, args()).await?;
        if tag(&reply) == "!missing" {
            return Err(protocol("sync", &reply));
        }
        Ok(reply)
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
            let exists: i64 = self.inner.redis.exists(keys::sale_keys(sale).swap_remove(0)).await?;
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

    async fn call(&self, script: &Script, sale: SaleId, args: Vec<Value>) -> Result<Reply, SaleError> {
        // Timed here, at the one place every script call passes: the round trip as the app
        // sees it, NOSCRIPT reloads included.
        let started = std::time::Instant::now();
        let reply = script
            .evalsha_with_reload::<Value, _, _>(self.inner.redis.next(), keys::sale_keys(sale), args)
            .await;
        crate::metrics::get().script_call(self.inner.scripts.name_of(script), started.elapsed(), reply.is_ok());
        Ok(match reply? {
            Value::Array(values) => values,
            other => vec![other],
        })
    }
}

fn tag(reply: &Reply) -> &str {
    reply.first().and_then(|v| v.as_str_ref()).unwrap_or("")
}

trait AsStrRef {
    fn as_str_ref(&self) -> Option<&str>;
}

impl AsStrRef for Value {
    fn as_str_ref(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

fn int_at(reply: &Reply, i: usize) -> i64 {
    reply.get(i).and_then(Value::as_i64).unwrap_or(0)
}

fn str_at(reply: &Reply, i: usize) -> String {
    reply.get(i).and_then(|v| v.as_str_ref()).unwrap_or("").to_string()
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn protocol(script: &'static str, reply: &Reply) -> SaleError {
    SaleError::Protocol {
        script,
        reply: format!("{reply:?}"),
    }
}

/// Reads the shared reply shape `{ state, code, qty, position, waiting, expires_ms, now_ms,
/// created }` of join, status and release.
fn reservation(sale: SaleId, reply: &Reply, script: &'static str) -> Result<Reservation, SaleError> {
    let state = ReservationState::from_script(tag(reply)).ok_or_else(|| protocol(script, reply))?;
    let token = uuid::Uuid::try_parse(&str_at(reply, 1)).map_err(|_| protocol(script, reply))?;
    let expires_ms = int_at(reply, 5);
    Ok(Reservation {
        code: ReservationCode { sale, token },
        state,
        quantity: u8::try_from(int_at(reply, 2)).map_err(|_| protocol(script, reply))?,
        position: int_at(reply, 3).max(0) as u64,
        waiting: int_at(reply, 4).max(0) as u64,
        expires_at: (expires_ms > 0).then(|| millis_to_time(expires_ms)),
        server_now: millis_to_time(int_at(reply, 6)),
        created: int_at(reply, 7) == 1,
    })
}
