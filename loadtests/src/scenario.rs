//! The flash crowd: each goose user is one buyer with its own cookie jar (goose gives every
//! user its own HTTP client). All buyers wait at a barrier until the last one is launched,
//! then join at the same moment, poll as often as the server asks, and check out, abandon or
//! leave according to their role. Each runs its journey once.
//!
//! In the sold-out scenario a buyer told "sold out" then joins the sale's waitlist through the
//! JSON API (quantity and email, the same cookie jar), polls its entry as often as the server
//! asks, and when offered tickets buys them at once or, for `--lapse-share` of them, lets the
//! offer lapse. It stops waiting once the organizer's new seats are in the sale and its entry
//! can never fit (it wants more tickets than are unsold).
//!
//! With `--return-share`, that share of the buyers who bought in the line return some of
//! their tickets (half, rounded up) through the JSON API once everyone else is out of the
//! line, before the organizer's raise: those tickets go down the waitlist too.
//!
//! In the pre-queue scenario the buyers join one after the other, spread evenly over the
//! pre-queue's window (buyer `i` of `n` at `(i + ½) / n` of it, the last a second before the
//! opening), keep their receipts, and poll as the server asks (not scaled: the opening comes
//! in real time) until the draw places them in the queue; from there on as in the crowd.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::DateTime;
use goose::prelude::*;
use serde_json::{Value, json};
use tokio::sync::{Barrier, Notify};

use crate::options::{QuantitySpec, ScenarioKind};
use crate::record::{BuyerRecord, Endpoint, Outcome, Recorder, ReturnRecord, Role, SeenOffer, WaitlistRecord};

/// What every buyer shares: the sale, the crowd's settings, the start line and the recorder.
pub struct Crowd {
    pub scenario: ScenarioKind,
    pub sale: String,
    pub quantity: QuantitySpec,
    pub poll_scale: f64,
    pub abandon_share: f64,
    pub leave_share: f64,
    pub lapse_share: f64,
    pub return_share: f64,
    pub max_wait: Duration,
    pub start: Barrier,
    pub recorder: Recorder,
    /// The sold-out scenario's stages: buyers still in the line's part of their journey
    /// (counted down; `line_done` is notified at zero), and when the organizer's raise of
    /// capacity returned (set by whoever raises; at once when nothing is raised).
    pub in_line: AtomicUsize,
    pub line_done: Notify,
    pub raised: OnceLock<Instant>,
    /// Returners still in the line, waiting for everyone else to leave it.
    pub returners_waiting: AtomicUsize,
    /// The pre-queue scenario's opening, on this machine's clock; the buyers' joins are spread
    /// from when they pass the start line (`released`, set by the first) to a second before it.
    pub opens_at: Option<Instant>,
    pub released: OnceLock<Instant>,
    pub buyers: usize,
}

impl Crowd {
    /// The role of buyer `index`. The golden-ratio sequence spreads each role evenly over the
    /// crowd (and so over the queue), the same way in every run.
    pub fn role_of(&self, index: usize) -> Role {
        let u = (index as f64 * 0.618_033_988_749_895).fract();
        if u < self.abandon_share {
            Role::Abandoner
        } else if u < self.abandon_share + self.leave_share {
            Role::Leaver
        } else {
            Role::Buyer
        }
    }

    /// Whether buyer `index`, offered tickets from the waitlist, lets the offer lapse. A
    /// second low-discrepancy sequence (the plastic ratio), so that lapsing is spread over
    /// the crowd's roles too.
    pub fn lets_offer_lapse(&self, index: usize) -> bool {
        (index as f64 * 0.754_877_666_246_692_7).fract() < self.lapse_share
    }

    /// Whether buyer `index`, having bought in the line, returns some of its tickets. A third
    /// sequence (the square root of 2), spread over the roles and the lapsing.
    pub fn returns_tickets(&self, index: usize) -> bool {
        (index as f64 * std::f64::consts::SQRT_2).fract() < self.return_share
    }

    /// Buyer done with the line (bought, gone, or on to the waitlist).
    fn out_of_line(&self) {
        if self.in_line.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.line_done.notify_one();
        }
    }

    /// When buyer `index` joins in the pre-queue scenario (at once otherwise).
    fn join_moment(&self, index: usize) -> Option<Instant> {
        let opens_at = self.opens_at?;
        let released = *self.released.get_or_init(Instant::now);
        let window = opens_at
            .checked_sub(Duration::from_secs(1))?
            .saturating_duration_since(released);
        Some(released + window.mul_f64((index as f64 + 0.5) / self.buyers.max(1) as f64))
    }

    /// Whether a request sent at `sent` saw the organizer's new seats.
    fn after_raise(&self, sent: Instant) -> bool {
        self.raised.get().is_some_and(|r| sent > *r)
    }
}

/// Goose's transactions are plain functions without captures, so the crowd lives here.
static CROWD: OnceLock<Arc<Crowd>> = OnceLock::new();

/// Makes `crowd` the one the buyers use; once per process.
pub fn install(crowd: Crowd) -> Arc<Crowd> {
    let crowd = Arc::new(crowd);
    assert!(CROWD.set(crowd.clone()).is_ok(), "the crowd is installed once");
    crowd
}

fn crowd() -> Arc<Crowd> {
    CROWD.get().expect("the crowd is installed before the attack").clone()
}

/// The goose scenario: one transaction, the buyer's whole journey.
pub fn buyers() -> Scenario {
    scenario!("buyers").register_transaction(transaction!(journey).set_name("journey"))
}

async fn journey(user: &mut GooseUser) -> TransactionResult {
    let crowd = crowd();
    let index = user.weighted_users_index;
    let mut record = BuyerRecord::new(index, crowd.role_of(index), crowd.quantity.for_buyer(index));
    crowd.start.wait().await;
    if let Some(moment) = crowd.join_moment(index) {
        tokio::time::sleep_until(moment.into()).await;
    }
    let mut result = walk(user, &crowd, &mut record).await;
    if result.is_ok()
        && crowd.scenario == ScenarioKind::SoldOut
        && record.bought().is_some()
        && crowd.returns_tickets(index)
    {
        result = give_back(user, &crowd, &mut record).await;
    }
    crowd.out_of_line();
    if result.is_ok() && crowd.scenario == ScenarioKind::SoldOut && record.outcome == Outcome::SoldOut {
        result = waitlist(user, &crowd, &mut record).await;
    }
    crowd.recorder.buyer(record);
    result
}

/// Where a reservation stands, as the join and the poll answer.
struct View {
    code: String,
    /// The signed place in line while waiting: polls carry it, so that far from the head
    /// they are answered without a Redis call.
    place: Option<String>,
    state: String,
    position: u64,
    poll_after_ms: u64,
    server_ms: i64,
    /// In the pre-queue: the entry's receipt.
    receipt: Option<String>,
}

impl View {
    fn parse(body: &Value) -> Option<View> {
        Some(View {
            code: body["code"].as_str()?.to_string(),
            place: body["place"].as_str().map(str::to_string),
            receipt: body["receipt"].as_str().map(str::to_string),
            state: body["state"].as_str()?.to_string(),
            position: body["position"].as_u64()?,
            poll_after_ms: body["poll_after_ms"].as_u64()?,
            server_ms: DateTime::parse_from_rfc3339(body["server_now"].as_str()?)
                .ok()?
                .timestamp_millis(),
        })
    }
}

async fn walk(user: &mut GooseUser, crowd: &Crowd, rec: &mut BuyerRecord) -> TransactionResult {
    rec.join_sent = Some(Instant::now());
    let path = format!("/api/v1/sales/{}/reservations", crowd.sale);
    let mut answer = join(user, crowd, rec, &path).await?;
    // Joining between the opening and the draw's last batch: "try again in a moment", as a
    // buyer's page does (the draw takes a beacon round, about two seconds).
    for _ in 0..DRAW_RETRIES {
        if answer.status != 409 || answer.error() != "draw_under_way" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        answer = join(user, crowd, rec, &path).await?;
    }
    let Some(mut view) = answer.view() else {
        rec.outcome = answer.failure();
        return Ok(());
    };
    rec.join_server_ms = Some(view.server_ms);
    rec.code = Some(view.code.clone());
    if view.state != "prequeue" {
        rec.first_position = Some(view.position);
    }
    let deadline = Instant::now() + crowd.max_wait;
    let poll_path = format!("/api/v1/reservations/{}", view.code);
    let mut waited = false;
    loop {
        match view.state.as_str() {
            "waiting" => {
                rec.last_waiting_server_ms = Some(view.server_ms);
                crowd.recorder.poll_spacing(view.position, view.poll_after_ms);
                if Instant::now() >= deadline {
                    rec.outcome = Outcome::TimedOut;
                    // Step out of the line, so the buyers behind are not held up by a ghost.
                    call(user, crowd, Endpoint::Leave, &poll_path, None).await?;
                    return Ok(());
                }
                let pause = Duration::from_millis(view.poll_after_ms).mul_f64(crowd.poll_scale);
                tokio::time::sleep(pause).await;
                waited = true;
                if rec.role == Role::Leaver {
                    return leave(user, crowd, rec, &poll_path).await;
                }
                let with_place = match &view.place {
                    Some(place) => format!("{poll_path}?place={place}"),
                    None => poll_path.clone(),
                };
                match poll(user, crowd, rec, Endpoint::Poll, &with_place).await? {
                    Some(v) => view = v,
                    None => return Ok(()),
                }
            }
            "admitted" => {
                rec.admitted_server_ms = Some(view.server_ms);
                rec.admitted_at = Some(Instant::now());
                return match rec.role {
                    Role::Abandoner => {
                        rec.outcome = Outcome::Abandoned;
                        Ok(())
                    }
                    // A leaver admitted at once gives up at checkout instead of in the queue.
                    Role::Leaver if !waited => leave(user, crowd, rec, &poll_path).await,
                    _ => check_out(user, crowd, rec, &view.code).await,
                };
            }
            "prequeue" => {
                if rec.receipt.is_none() {
                    rec.receipt.clone_from(&view.receipt);
                }
                if Instant::now() >= deadline {
                    rec.outcome = Outcome::TimedOut;
                    call(user, crowd, Endpoint::Leave, &poll_path, None).await?;
                    return Ok(());
                }
                // The opening comes in real time: the server's interval, not scaled.
                tokio::time::sleep(Duration::from_millis(view.poll_after_ms)).await;
                match poll(user, crowd, rec, Endpoint::PrequeuePoll, &poll_path).await? {
                    Some(v) => view = v,
                    None => return Ok(()),
                }
                if view.state != "prequeue" {
                    rec.first_position = Some(view.position);
                }
            }
            "sold_out" => {
                rec.outcome = Outcome::SoldOut;
                return Ok(());
            }
            other => {
                rec.outcome = Outcome::Ended(other.to_string());
                return Ok(());
            }
        }
    }
}

/// One poll of the buyer's reservation: where it stands, or `None` when the answer is of no
/// use (the record's outcome then says why).
async fn poll(
    user: &mut GooseUser,
    crowd: &Crowd,
    rec: &mut BuyerRecord,
    endpoint: Endpoint,
    path: &str,
) -> Result<Option<View>, Box<TransactionError>> {
    let answer = call(user, crowd, endpoint, path, None).await?;
    rec.polls += 1;
    let view = answer.view();
    if view.is_none() {
        rec.outcome = answer.failure();
    }
    Ok(view)
}

/// Joins after the opening retried while the draw is under way, at most.
const DRAW_RETRIES: usize = 30;

async fn join(
    user: &mut GooseUser,
    crowd: &Crowd,
    rec: &BuyerRecord,
    path: &str,
) -> Result<Answer, Box<TransactionError>> {
    call(
        user,
        crowd,
        Endpoint::Join,
        path,
        Some(json!({"quantity": rec.quantity})),
    )
    .await
}

async fn leave(user: &mut GooseUser, crowd: &Crowd, rec: &mut BuyerRecord, path: &str) -> TransactionResult {
    let answer = call(user, crowd, Endpoint::Leave, path, None).await?;
    rec.outcome = if answer.ok() { Outcome::Left } else { answer.failure() };
    Ok(())
}

async fn check_out(user: &mut GooseUser, crowd: &Crowd, rec: &mut BuyerRecord, code: &str) -> TransactionResult {
    let path = format!("/api/v1/reservations/{code}/order");
    let details = json!({
        "name": format!("Buyer {}", rec.index),
        "email": format!("buyer{}@example.com", rec.index),
        "age": 30,
        "gender": "unspecified",
    });
    let answer = call(user, crowd, Endpoint::Order, &path, Some(details)).await?;
    rec.ordered_at = Some(Instant::now());
    rec.outcome = match answer.body.as_ref().and_then(|b| b["order"]["quantity"].as_i64()) {
        Some(quantity) if answer.ok() => Outcome::Bought { quantity },
        _ => answer.failure(),
    };
    if crowd.scenario == ScenarioKind::SoldOut && rec.bought().is_some() {
        // When the order counted as sold at the latest, for the waitlist's checks: an answer
        // that shows it confirmed (an offer's reservation shares the entry's code).
        let answer = call(
            user,
            crowd,
            Endpoint::Poll,
            &format!("/api/v1/reservations/{code}"),
            None,
        )
        .await?;
        rec.order_seen_server_ms = answer.view().filter(|v| v.state == "confirmed").map(|v| v.server_ms);
    }
    Ok(())
}

/// The returner's part: wait until everyone else is out of the line (the sale sold out and
/// the queue empty), then return half its tickets (rounded up), reading the server's time
/// just before and just after.
async fn give_back(user: &mut GooseUser, crowd: &Crowd, rec: &mut BuyerRecord) -> TransactionResult {
    crowd.returners_waiting.fetch_add(1, Ordering::AcqRel);
    // Everyone still in the line is a returner waiting here; none comes back once it holds.
    while crowd.in_line.load(Ordering::Acquire) > crowd.returners_waiting.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(code) = rec.code.clone() else { return Ok(()) };
    let poll_path = format!("/api/v1/reservations/{code}");
    let before = call(user, crowd, Endpoint::Poll, &poll_path, None).await?;
    let Some(after_ms) = before.view().map(|v| v.server_ms) else {
        return Ok(());
    };
    let tickets = (rec.bought().unwrap_or(1) + 1) / 2;
    let path = format!("{poll_path}/order/return");
    let answer = call(
        user,
        crowd,
        Endpoint::Return,
        &path,
        Some(json!({ "tickets": tickets })),
    )
    .await?;
    let refused = (!answer.ok()).then(|| match answer.failure() {
        Outcome::Failed(why) => why,
        other => format!("{other:?}"),
    });
    let after = call(user, crowd, Endpoint::Poll, &poll_path, None).await?;
    rec.returned = Some(ReturnRecord {
        tickets,
        after_ms,
        before_ms: after.view().map(|v| v.server_ms),
        refused,
    });
    Ok(())
}

/// Where a waitlist entry stands, as its join and poll answer.
struct EntryView {
    code: String,
    state: String,
    /// False when the entry wants more tickets than are unsold.
    fits: bool,
    offer_expires_ms: Option<i64>,
    poll_after_ms: u64,
    server_ms: i64,
}

impl EntryView {
    fn parse(body: &Value) -> Option<EntryView> {
        let ms = |v: &Value| Some(DateTime::parse_from_rfc3339(v.as_str()?).ok()?.timestamp_millis());
        Some(EntryView {
            code: body["code"].as_str()?.to_string(),
            state: body["state"].as_str()?.to_string(),
            fits: body["fits"].as_bool()?,
            offer_expires_ms: ms(&body["offer_expires_at"]),
            poll_after_ms: body["poll_after_ms"].as_u64()?,
            server_ms: ms(&body["server_now"])?,
        })
    }
}

/// The sold-out buyer's time on the waitlist (see the module's documentation).
async fn waitlist(user: &mut GooseUser, crowd: &Crowd, rec: &mut BuyerRecord) -> TransactionResult {
    let mut wl = WaitlistRecord {
        email: format!("buyer{}@example.com", rec.index),
        ..Default::default()
    };
    let path = format!("/api/v1/sales/{}/waitlist", crowd.sale);
    let body = json!({"quantity": rec.quantity, "email": wl.email});
    let mut sent = Instant::now();
    let answer = call(user, crowd, Endpoint::WaitlistJoin, &path, Some(body)).await?;
    let Some(mut entry) = answer.entry() else {
        rec.outcome = answer.failure();
        return Ok(());
    };
    wl.joined_server_ms = entry.server_ms;
    let entry_path = format!("/api/v1/waitlist/{}", entry.code);
    let deadline = Instant::now() + crowd.max_wait;
    let lapses = crowd.lets_offer_lapse(rec.index);
    let result = loop {
        if crowd.after_raise(sent) && wl.after_raise_server_ms.is_none() {
            wl.after_raise_server_ms = Some(entry.server_ms);
        }
        wl.last_state.clone_from(&entry.state);
        match entry.state.as_str() {
            "waiting" => {
                wl.last_waiting_server_ms = Some(entry.server_ms);
                if !entry.fits && crowd.after_raise(sent) {
                    rec.outcome = Outcome::NeverOffered;
                    break Ok(());
                }
                if Instant::now() >= deadline {
                    rec.outcome = Outcome::TimedOut;
                    call(user, crowd, Endpoint::WaitlistLeave, &entry_path, None).await?;
                    break Ok(());
                }
            }
            "offered" => {
                let expires_ms = entry.offer_expires_ms.unwrap_or_default();
                match &mut wl.offer {
                    Some(o) if o.expires_ms != expires_ms => wl.second_offer_expiry_ms = Some(expires_ms),
                    Some(o) => o.last_seen_ms = entry.server_ms,
                    None => {
                        wl.offer = Some(SeenOffer {
                            expires_ms,
                            last_seen_ms: entry.server_ms,
                        })
                    }
                }
                if !lapses {
                    check_out(user, crowd, rec, &entry.code).await?;
                    break Ok(());
                }
            }
            "lapsed" if lapses && wl.offer.is_some() => {
                rec.outcome = Outcome::OfferLapsed;
                break Ok(());
            }
            other => {
                rec.outcome = Outcome::Ended(format!("waitlist {other}"));
                break Ok(());
            }
        }
        let pause = Duration::from_millis(entry.poll_after_ms).mul_f64(crowd.poll_scale);
        tokio::time::sleep(pause).await;
        sent = Instant::now();
        let answer = call(user, crowd, Endpoint::WaitlistPoll, &entry_path, None).await?;
        rec.polls += 1;
        match answer.entry() {
            Some(e) => entry = e,
            None => {
                rec.outcome = answer.failure();
                break Ok(());
            }
        }
    };
    rec.waitlist = Some(wl);
    result
}

/// An answer of the buyer API: its status (0 when none came) and JSON body.
struct Answer {
    status: u16,
    body: Option<Value>,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn view(&self) -> Option<View> {
        self.ok().then(|| View::parse(self.body.as_ref()?)).flatten()
    }

    fn entry(&self) -> Option<EntryView> {
        self.ok().then(|| EntryView::parse(self.body.as_ref()?)).flatten()
    }

    /// The error code of an error answer (`""` when none).
    fn error(&self) -> &str {
        self.body.as_ref().and_then(|b| b["error"].as_str()).unwrap_or("")
    }

    fn failure(&self) -> Outcome {
        let error = self.error();
        match self.status {
            0 => Outcome::Failed("no answer".into()),
            s => Outcome::Failed(format!("{s} {error}").trim_end().to_string()),
        }
    }
}

/// Sends one request through goose (so it appears in goose's report under the endpoint's
/// name, not under each reservation's own URL) and records its latency, body read included.
async fn call(
    user: &mut GooseUser,
    crowd: &Crowd,
    endpoint: Endpoint,
    path: &str,
    body: Option<Value>,
) -> Result<Answer, Box<TransactionError>> {
    let method = match (endpoint, &body) {
        (Endpoint::Leave | Endpoint::WaitlistLeave, _) => GooseMethod::Delete,
        (_, Some(_)) => GooseMethod::Post,
        (_, None) => GooseMethod::Get,
    };
    let mut builder = user.get_request_builder(&method, path)?;
    if let Some(body) = &body {
        builder = builder.json(body);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(endpoint.name())
        .set_request_builder(builder)
        .build();
    let started = Instant::now();
    let goose = user.request(request).await?;
    let (status, text) = match goose.response {
        Ok(response) => (response.status().as_u16(), response.text().await.ok()),
        Err(_) => (0, None),
    };
    let answer = Answer {
        status,
        body: text.and_then(|t| serde_json::from_str(&t).ok()),
    };
    crowd
        .recorder
        .request(endpoint, started, started.elapsed(), answer.ok());
    Ok(answer)
}
