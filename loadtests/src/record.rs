//! What the simulated buyers saw, gathered while they run and read once they are done: one
//! record per buyer, and the latency of every request per endpoint.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a buyer sets out to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Waits, and buys when admitted.
    Buyer,
    /// Waits, is admitted, and never confirms: the hold lapses.
    Abandoner,
    /// Gives up after the first wait: leaves the queue (or releases the hold).
    Leaver,
}

/// How a buyer's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Bought {
        quantity: i64,
    },
    Abandoned,
    Left,
    /// The server said sold out (at join, or at the head of the queue).
    SoldOut,
    /// The hold lapsed or the reservation ended otherwise before an order.
    Ended(String),
    /// Still waiting after `--max-wait-secs`.
    TimedOut,
    /// Sold-out scenario: on the waitlist, offered tickets, and let the offer lapse.
    OfferLapsed,
    /// Sold-out scenario: on the waitlist, and passed over for good: it wants more tickets
    /// than are unsold, and no more seats come.
    NeverOffered,
    /// An answer the buyer could not use (an error status, a broken body, no answer).
    Failed(String),
}

/// One buyer's path through the sale. Server times are the `server_now` of the answers: Redis's
/// clock in milliseconds, the same clock for every buyer and every app instance.
#[derive(Clone, Debug)]
pub struct BuyerRecord {
    pub index: usize,
    pub role: Role,
    pub quantity: u8,
    /// Its reservation's code, once joined.
    pub code: Option<String>,
    /// When the join request was sent (this machine's clock).
    pub join_sent: Option<Instant>,
    /// Server time of the join.
    pub join_server_ms: Option<i64>,
    /// Place in the queue the join answer gave (0: admitted at once); in the pre-queue, the
    /// first answer after the draw placed it.
    pub first_position: Option<u64>,
    /// The pre-queue entry's receipt (`v1.<sale>.<entry id>.<signature>`), when it joined one.
    pub receipt: Option<String>,
    /// Server time of the last answer that said "waiting".
    pub last_waiting_server_ms: Option<i64>,
    /// Server time of the first answer that said "admitted".
    pub admitted_server_ms: Option<i64>,
    /// When that answer arrived (this machine's clock).
    pub admitted_at: Option<Instant>,
    /// When the order answer arrived (this machine's clock).
    pub ordered_at: Option<Instant>,
    /// Server time of an answer that showed the order confirmed (sold-out scenario): the
    /// order counted as sold by then.
    pub order_seen_server_ms: Option<i64>,
    pub polls: u32,
    /// The buyer's waitlist entry, when it joined one (sold-out scenario).
    pub waitlist: Option<WaitlistRecord>,
    /// The tickets it returned after the sell-out, when it did (sold-out scenario).
    pub returned: Option<ReturnRecord>,
    pub outcome: Outcome,
}

/// A return of some of a buyer's tickets, bounded in server time by the answers around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnRecord {
    pub tickets: i64,
    /// Server time of the last answer before the return was sent: it ran after this.
    pub after_ms: i64,
    /// Server time of the first answer after it was answered: it ran before this (None when
    /// no such answer came).
    pub before_ms: Option<i64>,
    /// The status and error when the shop refused the return.
    pub refused: Option<String>,
}

/// One buyer's time on the waitlist; server times as in [`BuyerRecord`].
#[derive(Clone, Debug, Default)]
pub struct WaitlistRecord {
    /// The email it joined with: how the checks find its entry in Postgres.
    pub email: String,
    /// Server time of the join.
    pub joined_server_ms: i64,
    /// Server time of the last answer that said "waiting".
    pub last_waiting_server_ms: Option<i64>,
    /// The first server time seen in an answer to a request sent after the organizer's raise
    /// of capacity returned: the new seats were in the sale by then.
    pub after_raise_server_ms: Option<i64>,
    /// The offer, when one was seen.
    pub offer: Option<SeenOffer>,
    /// Another offer expiry seen for the same entry: an entry offered twice.
    pub second_offer_expiry_ms: Option<i64>,
    /// The entry's last state seen.
    pub last_state: String,
}

/// An offer as its buyer saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenOffer {
    /// When its hold ends (server time): the offer was made the offer window before.
    pub expires_ms: i64,
    /// Server time of the last answer that still said "offered".
    pub last_seen_ms: i64,
}
impl BuyerRecord {
    pub fn new(index: usize, role: Role, quantity: u8) -> BuyerRecord {
        BuyerRecord {
            index,
            role,
            quantity,
            code: None,
            join_sent: None,
            join_server_ms: None,
            first_position: None,
            receipt: None,
            last_waiting_server_ms: None,
            admitted_server_ms: None,
            admitted_at: None,
            ordered_at: None,
            order_seen_server_ms: None,
            polls: 0,
            waitlist: None,
            returned: None,
            outcome: Outcome::Failed("did not finish".into()),
        }
    }

    /// The tickets bought, if any.
    pub fn bought(&self) -> Option<i64> {
        match self.outcome {
            Outcome::Bought { quantity } => Some(quantity),
            _ => None,
        }
    }

    /// Time from sending the join to seeing "admitted".
    pub fn join_to_admission(&self) -> Option<Duration> {
        Some(self.admitted_at?.duration_since(self.join_sent?))
    }
}

/// The endpoints of the buyer API, as named in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Join,
    Poll,
    /// A poll of a pre-queue entry, before the draw placed it.
    PrequeuePoll,
    Order,
    Leave,
    WaitlistJoin,
    WaitlistPoll,
    WaitlistLeave,
    Return,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Join => "join",
            Endpoint::Poll => "poll",
            Endpoint::PrequeuePoll => "pre-queue poll",
            Endpoint::Order => "order",
            Endpoint::Leave => "leave",
            Endpoint::WaitlistJoin => "waitlist join",
            Endpoint::WaitlistPoll => "waitlist poll",
            Endpoint::WaitlistLeave => "waitlist leave",
            Endpoint::Return => "return",
        }
    }

    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Join => "POST /api/v1/sales/{sale}/reservations",
            Endpoint::Poll => "GET /api/v1/reservations/{code}",
            Endpoint::PrequeuePoll => "GET /api/v1/reservations/{code} (pre-queue)",
            Endpoint::Order => "POST /api/v1/reservations/{code}/order",
            Endpoint::Leave => "DELETE /api/v1/reservations/{code}",
            Endpoint::WaitlistJoin => "POST /api/v1/sales/{sale}/waitlist",
            Endpoint::WaitlistPoll => "GET /api/v1/waitlist/{code}",
            Endpoint::WaitlistLeave => "DELETE /api/v1/waitlist/{code}",
            Endpoint::Return => "POST /api/v1/reservations/{code}/order/return",
        }
    }
}

/// One request: when it was sent and how long its answer took (body read included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed {
    pub sent: Instant,
    pub latency: Duration,
}

impl Timed {
    pub fn answered(&self) -> Instant {
        self.sent + self.latency
    }
}

/// Latencies and outcomes of one endpoint's requests.
#[derive(Default)]
pub struct EndpointLog {
    /// Every request, in the order the answers were recorded.
    pub requests: Vec<Timed>,
    pub errors: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

/// Everything the buyers record; shared by all of them behind one lock (held for a push).
#[derive(Default)]
pub struct Recorder {
    buyers: Mutex<Vec<BuyerRecord>>,
    endpoints: Mutex<BTreeMap<Endpoint, EndpointLog>>,
    /// Waiting answers whose `poll_after_ms` the planner's model did not expect.
    model_mismatches: AtomicU64,
}

impl Recorder {
    pub fn request(&self, endpoint: Endpoint, started: Instant, latency: Duration, ok: bool) {
        let mut map = self.endpoints.lock().expect("recorder lock");
        let log = map.entry(endpoint).or_default();
        log.requests.push(Timed { sent: started, latency });
        if !ok {
            log.errors += 1;
        }
        log.first = Some(log.first.map_or(started, |f| f.min(started)));
        let done = started + latency;
        log.last = Some(log.last.map_or(done, |l| l.max(done)));
    }

    /// Compares the poll spacing of a waiting answer with the model "what this run says"
    /// projects from.
    pub fn poll_spacing(&self, position: u64, poll_after_ms: u64) {
        if poll_after_ms != crate::findings::poll_interval_ms(position) {
            self.model_mismatches.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn model_mismatches(&self) -> u64 {
        self.model_mismatches.load(Ordering::Relaxed)
    }

    pub fn buyer(&self, record: BuyerRecord) {
        self.buyers.lock().expect("recorder lock").push(record);
    }

    /// The buyers' records, ordered by buyer index, and the endpoint logs.
    pub fn take(&self) -> (Vec<BuyerRecord>, BTreeMap<Endpoint, EndpointLog>) {
        let mut buyers = std::mem::take(&mut *self.buyers.lock().expect("recorder lock"));
        buyers.sort_by_key(|b| b.index);
        let endpoints = std::mem::take(&mut *self.endpoints.lock().expect("recorder lock"));
        (buyers, endpoints)
    }
}
