//! The buyer JSON API under `/api/v1/`: the same rules and errors as the pages, for apps and
//! load tests. A client keeps its cookie jar: the first join mints the session cookie that
//! binds its reservations, the same session the pages use.
//!
//! Payload fields are declared exactly in the document (`api_fields`) but read loosely, so
//! that `"quantity": "abc"` or a missing field gets the API's own error body, not a parser's.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Serialize;
use tracing::warn;

use super::{next_poll_ms, proof};
use crate::db;
use crate::db::orders::Order;
use crate::db::returns::ReturnCounts;
use crate::payment::Outlook;
use crate::sale::{
    BuyerInput, Joining, LINK_LIFETIME, LinkToken, MAX_EMAIL_BYTES, MAX_NAME_CHARS, PrequeueEmail, Quantity,
    Reservation, ReservationCode, ReservationState, SaleError, SaleId, SessionMade,
};
use crate::startup::AppState;
use crate::tickets;
use crate::web::api_fields::{Genders, OneOf, Required, Text, TextRule, WholeNumber};
use crate::web::error::{ApiError, CallError, Failures, WebError};
use crate::web::json_body::{JsonBody, rfc3339, rfc3339_or_null};
use crate::web::session;

/// The buyer JSON API under `/api/v1/`.
pub struct BuyerApi;

/// A call's answer; the OpenAPI document declares the failures `F` names.
pub(super) type ApiResult<T, F> = Result<T, CallError<F>>;

/// A read: no sale or reservation (404), too many requests (429), Redis or Postgres away (503).
pub(super) struct Reads;

impl Failures for Reads {
    const STATUSES: &'static [u16] = &[404, 429, 500, 503];
}

/// A call with a JSON body: besides a read's failures, a body that cannot be read (400) or is
/// not JSON (415), a state that forbids it (409), a value that breaks a rule (422).
pub(super) struct WithBody;

impl Failures for WithBody {
    const STATUSES: &'static [u16] = &[400, 404, 409, 415, 422, 429, 500, 503];
}

/// A join: besides a body's failures, a proof of work required and missing (428).
struct JoinFailures;

impl Failures for JoinFailures {
    const STATUSES: &'static [u16] = &[400, 404, 409, 415, 422, 428, 429, 500, 503];
}

/// Giving up: besides a read's failures, an order being written right now (409).
pub(super) struct Release;

impl Failures for Release {
    const STATUSES: &'static [u16] = &[404, 409, 429, 500, 503];
}

pub(super) fn fail<F>(e: impl Into<ApiError>) -> CallError<F> {
    e.into().into()
}

/// A sale's public state.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct SaleView {
    id: String,
    title: String,
    starts_at: DateTime<Utc>,
    capacity: i64,
    sold: i64,
    held: i64,
    waiting: i64,
    /// Tickets neither sold nor held right now.
    available: i64,
    /// Price of one ticket in minor units (cents) of `currency`.
    price: i64,
    currency: String,
    /// open, paused or closed.
    state: String,
    opens_at: DateTime<Utc>,
}

/// Join a sale.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct JoinRequest {
    /// Tickets wanted, 1 to the shop's most per order (6 unless set lower).
    quantity: WholeNumber<1, { crate::config::MAX_PER_ORDER_LIMIT as i64 }>,
    /// When the sale is busy: the solved challenge of `GET /sales/{sale}/challenge`, as
    /// base64 of the JSON `{"challenge": <the challenge as given>, "solution": {"counter": n,
    /// "derivedKey": "<hex>"}}`. Each is good for one join. Absent or null: no proof.
    #[oai(nullable, skip_serializing_if_is_none)]
    proof: Option<Text<ProofText>>,
    /// The buyer's email. Needed by a pre-queue join of a sale that gives one place per
    /// verified email (422 `email_required` without it): the shop mails it a one-time link
    /// and answers 202; the place is made by `POST /prequeue/confirmations` with the link's
    /// token. Anywhere else it is not read (but must be an address, 422 `bad_email`).
    #[oai(nullable, skip_serializing_if_is_none)]
    email: Option<Text<EmailRule>>,
}

/// A mailed pre-queue link's token, as the document declares it: the link's id (32 hex
/// digits), a dot, its signature (43 base64url characters); anything else is a 404.
struct LinkTokenText;

impl TextRule for LinkTokenText {
    const SCHEMA: &'static str = "PrequeueLinkToken";
    const MAX_LENGTH: usize = LinkToken::LEN;
    const PATTERN: Option<&'static str> = Some(r"^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$");
}

/// Confirm a mailed pre-queue link.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct LinkConfirmation {
    /// The `token` of the link in the mail (`…/prequeue/confirm?token=<this>`).
    token: Required<Text<LinkTokenText>>,
}

/// A pre-queue join of a sale that gives one place per verified email: a link is on its way
/// to the address. The same answer whatever the address (one that holds a place already, or
/// has links out, gets no new mail).
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct LinkMailedView {
    /// Always `link_mailed`.
    state: String,
    /// Seconds the link works for once mailed; it works once.
    link_lifetime_secs: u64,
}

/// A join's proof of work as the document declares it: standard base64, at most
/// [`crate::pow::MAX_PROOF_LEN`] long ([`crate::pow::is_well_formed`]; anything else is a 400).
struct ProofText;

impl TextRule for ProofText {
    const SCHEMA: &'static str = "ProofOfWork";
    const MAX_LENGTH: usize = crate::pow::MAX_PROOF_LEN;
    const PATTERN: Option<&'static str> = Some(r"^[A-Za-z0-9+/=]*$");
}

/// Whether a join must carry a proof of work now, and the challenge to solve.
///
/// Solving (ALTCHA v2, SHA-256): with `p = challenge.parameters`, for `counter = 0, 1, 2, …`
/// compute `key = SHA-256(hex_decode(p.salt) ‖ hex_decode(p.nonce) ‖ counter as 4 big-endian
/// bytes)` until `hex(key)` starts with `p.keyPrefix`. The challenge expires at
/// `p.expiresAt` (Unix seconds) and is bound to the sale and this session's cookie.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct ChallengeView {
    /// Whether a join of this sale must carry a proof now.
    required: bool,
    /// The challenge, when required: `{"parameters": {"algorithm", "cost", "data", "expiresAt",
    /// "keyLength", "keyPrefix", "keySignature", "nonce", "salt"}, "signature"}`, to be sent
    /// back unchanged.
    #[oai(skip_serializing_if_is_none)]
    challenge: Option<serde_json::Value>,
}

#[derive(ApiResponse)]
enum ChallengeResponse {
    /// The answer; with a new session cookie when a challenge was issued to a client that had
    /// none (the challenge is bound to it).
    #[oai(status = 200)]
    Ok(Json<ChallengeView>, #[oai(header = "Set-Cookie")] Option<String>),
}

/// Where a reservation stands. Written by serde ([`JsonBody`]): the poll's reply.
#[derive(Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub(super) struct ReservationView {
    /// The reservation code: keep it, with the cookie jar, to poll, confirm or release.
    code: String,
    /// While waiting: the client's signed place in line (50 hex digits), with the position
    /// this answer shows. Poll with the one the last answer gave
    /// (`GET /reservations/{code}?place=…`): a client far from the head is answered without
    /// a look at the queue itself, and never with a larger position than before; without it
    /// every poll reads the queue. Bound to this code and this session: with another it is a
    /// 404. Null when not waiting.
    #[oai(nullable)]
    place: Option<String>,
    /// prequeue (in the sale's pre-queue before its opening: the place in line comes from the
    /// draw at the opening; see `receipt`, `commitment`, `opens_at`), waiting, admitted,
    /// confirming, confirmed, sold_out, expired, released, closed,
    /// abandoned (the client stopped polling while waiting and lost its place) or cancelled
    /// (its order was cancelled: not paid by its deadline, or given up; its tickets went back
    /// on sale). confirmed means the reservation became an order: `order_state` says whether
    /// it is paid or still awaits payment.
    state: String,
    quantity: u8,
    /// 1-based place in the queue while waiting, else 0. Far from the head (see
    /// `position_approximate`) a bound from above: the client is never further back than it
    /// says, and polling with each answer's `place` it never grows; near the head it is exact.
    position: u64,
    /// True when `position` is the bound of a client far from the head, false when exact.
    position_approximate: bool,
    /// Buyers waiting in this sale's queue.
    waiting: u64,
    /// When the hold at checkout lapses (admitted or confirming); null otherwise.
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    expires_at: Option<DateTime<Utc>>,
    /// The server's clock when this was read.
    #[serde(serialize_with = "rfc3339")]
    server_now: DateTime<Utc>,
    /// Milliseconds to wait before polling again; grows with the position (in the pre-queue,
    /// with the time left to the opening). 0: nothing will change any more.
    poll_after_ms: u64,
    /// In the pre-queue: the entry's receipt, `v1.<sale>.<entry>.<signature>`, signed by the
    /// shop (the key is in `GET /sales/{sale}/draw`); keep it to check the draw with
    /// `boxoffice verify-draw`. Null otherwise.
    #[oai(nullable)]
    receipt: Option<String>,
    /// In the pre-queue: the draw's commitment, SHA-256 of its secret seed (64 hex digits),
    /// revealed with the result. Null otherwise.
    #[oai(nullable)]
    commitment: Option<String>,
    /// In the pre-queue: when the sale opens and the draw is made. Null otherwise.
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    opens_at: Option<DateTime<Utc>>,
    /// Once the reservation is an order (confirmed or cancelled): the order's state, confirmed
    /// (no payment asked), awaiting_payment, paid or cancelled; null before.
    #[oai(nullable)]
    order_state: Option<String>,
    /// Once the reservation is an order: its page in the shop (a path; the session's browser
    /// opens it), which shows how it stands; `GET /reservations/{code}/order` says the same in
    /// JSON. Null before.
    #[oai(nullable)]
    order_url: Option<String>,
}

impl ReservationView {
    /// Says what became of the reservation's order, read from Postgres: the poll's own record
    /// says only that it became one.
    fn with_order(mut self, order: &Order) -> Self {
        if order.state == "cancelled" {
            self.state = order.state.clone();
        }
        self.order_state = Some(order.state.clone());
        self.order_url = Some(format!("/orders/{}", self.code));
        self
    }
}

impl From<&Reservation> for ReservationView {
    fn from(r: &Reservation) -> Self {
        ReservationView {
            code: r.code.to_string(),
            place: r.place_text(),
            state: r.state.as_str().to_string(),
            quantity: r.quantity,
            position: r.position,
            position_approximate: r.approximate,
            waiting: r.waiting,
            expires_at: r.expires_at,
            server_now: r.server_now,
            poll_after_ms: next_poll_ms(r),
            order_state: None,
            order_url: None,
            receipt: r.prequeue.as_ref().map(|t| t.receipt.clone()),
            commitment: r.prequeue.as_ref().map(|t| t.commitment.to_string()),
            opens_at: r.prequeue.as_ref().map(|t| t.opens_at),
        }
    }
}

#[derive(ApiResponse)]
enum JoinResponse {
    /// A new reservation.
    #[oai(status = 201)]
    Created(JsonBody<ReservationView>, #[oai(header = "Set-Cookie")] Option<String>),
    /// This session's reservation in this sale existed already; it is returned unchanged.
    #[oai(status = 200)]
    Existing(JsonBody<ReservationView>, #[oai(header = "Set-Cookie")] Option<String>),
    /// The sale gives one pre-queue place per verified email: a one-time link is mailed to
    /// the address given; the place is made when it is confirmed.
    #[oai(status = 202)]
    LinkMailed(Json<LinkMailedView>, #[oai(header = "Set-Cookie")] Option<String>),
}

#[derive(ApiResponse)]
enum ConfirmationResponse {
    /// The place is made, for this session: a pre-queue entry with its receipt.
    #[oai(status = 201)]
    Created(JsonBody<ReservationView>, #[oai(header = "Set-Cookie")] Option<String>),
    /// This session had a place in the sale's pre-queue already; it is returned and the link
    /// stays unused.
    #[oai(status = 200)]
    Existing(JsonBody<ReservationView>, #[oai(header = "Set-Cookie")] Option<String>),
}

/// A confirmation: besides a body's failures, a link used or expired (410).
struct ConfirmationFailures;

impl Failures for ConfirmationFailures {
    const STATUSES: &'static [u16] = &[400, 404, 409, 410, 415, 422, 429, 500, 503];
}

/// A buyer's name as the document declares it: not blank, no control characters.
struct NameRule;

impl TextRule for NameRule {
    const SCHEMA: &'static str = "BuyerName";
    const MAX_LENGTH: usize = MAX_NAME_CHARS;
    const PATTERN: Option<&'static str> =
        Some(r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$");
}

/// A buyer's email as the document declares it: one `@` with text on both sides, a dot inside
/// the domain, no spaces. The document asks for ASCII, so that its length in characters is
/// the limit in bytes; the shop also takes other characters.
pub(super) struct EmailRule;

impl TextRule for EmailRule {
    const SCHEMA: &'static str = "BuyerEmail";
    const MAX_LENGTH: usize = MAX_EMAIL_BYTES;
    const PATTERN: Option<&'static str> = Some(r"^[!-?A-~]+@[!-\-/-?A-~]+(\.[!-\-/-?A-~]+)+$");
}

/// The buyer's details, declared with the rules `sale::Buyer::parse` enforces; a detail that
/// breaks one gets a 422 naming it.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct OrderRequest {
    name: Required<Text<NameRule>>,
    email: Required<Text<EmailRule>>,
    age: WholeNumber<0, 130>,
    gender: OneOf<Genders>,
}

#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct OrderView {
    number: String,
    /// confirmed (the shop takes no payment: the tickets are valid), awaiting_payment (pay by
    /// `payment_due_at`, see `payment`), paid (the tickets are valid) or cancelled (not paid
    /// in time, or given up: the tickets went back on sale and nothing was charged; money that
    /// came late was refunded) or returned (every ticket was returned and bought by another
    /// buyer; a paid order's money refunded).
    state: String,
    /// Tickets offered for return and not bought by anyone yet: still the buyer's and valid
    /// at the door, until another buyer's order takes them (or the return is withdrawn).
    returning: i64,
    /// Tickets returned: bought by another buyer, no longer valid (refunded when paid).
    returned: i64,
    /// Until when an order awaiting payment may be paid; after it the order is cancelled.
    /// Null for an order that never awaited payment.
    #[oai(nullable)]
    payment_due_at: Option<DateTime<Utc>>,
    /// How to pay, while the order awaits payment; null otherwise.
    #[oai(nullable)]
    payment: Option<PaymentView>,
    quantity: i16,
    /// Minor units of `currency`, copied from the sale when the order was made.
    unit_price: i64,
    /// What the order costs (and, awaiting payment, the amount to pay), in minor units of
    /// `currency`.
    total: i64,
    currency: String,
    name: String,
    email: String,
    age: i16,
    gender: String,
    created_at: DateTime<Utc>,
}

/// How to pay an order awaiting payment: in a browser on `page_url`, or in an app with
/// Stripe.js (or Stripe's mobile SDKs) given `publishable_key` and `client_secret`. The webhook
/// (or the next read of the order) makes the order paid.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct PaymentView {
    /// The order page, where the buyer pays by card (a path; it opens for the session that
    /// ordered).
    page_url: String,
    /// Stripe's publishable key, for Stripe.js.
    publishable_key: String,
    /// The client secret of the order's Stripe PaymentIntent, which Stripe.js confirms the
    /// payment with. Null when Stripe could not be reached just now: read the order again.
    #[oai(nullable)]
    client_secret: Option<String>,
}

#[derive(Object)]
struct OrderEnvelope {
    order: OrderView,
}

impl OrderEnvelope {
    fn new(o: Order, payment: Option<PaymentView>, returns: ReturnCounts) -> Self {
        OrderEnvelope {
            order: OrderView {
                number: o.number.clone(),
                state: o.state.clone(),
                returning: returns.pending,
                returned: returns.returned,
                payment_due_at: o.payment_due_at,
                payment,
                quantity: o.quantity,
                unit_price: o.unit_price_minor,
                total: o.total_minor(),
                currency: o.currency,
                name: o.buyer_name,
                email: o.buyer_email,
                age: o.buyer_age,
                gender: o.buyer_gender,
                created_at: o.created_at,
            },
        }
    }
}

/// The order of a reservation as its buyer sees it now. An order awaiting payment is looked
/// up at Stripe (`Payments::look_up`, as the order page does): a payment found there is applied
/// at once, and the answer says how to pay otherwise.
async fn order_as_it_stands<F>(state: &AppState, code: ReservationCode, order: Order) -> ApiResult<OrderEnvelope, F> {
    let Some(payments) = state.payments.as_ref().filter(|_| order.state == "awaiting_payment") else {
        let returns = db::returns::of_order(&state.db, order.id)
            .await
            .map_err(WebError::reading("Your order"))?;
        return Ok(OrderEnvelope::new(order, None, returns));
    };
    let client_secret = match payments.look_up(&state.db, &order).await {
        Ok(Outlook::Unpaid(intent)) => Some(intent.client_secret),
        Ok(Outlook::Charged) => {
            let settled = find_order(state, code)
                .await?
                .ok_or_else(|| fail(SaleError::UnknownReservation))?;
            return Ok(OrderEnvelope::new(settled, None, ReturnCounts::default()));
        }
        Err(e) => {
            warn!(order = %order.number, error = %e, "Stripe is unavailable for the order");
            None
        }
    };
    let payment = PaymentView {
        page_url: format!("/orders/{code}"),
        publishable_key: payments.publishable_key.clone(),
        client_secret,
    };
    Ok(OrderEnvelope::new(order, Some(payment), ReturnCounts::default()))
}

#[derive(ApiResponse)]
enum OrderResponse {
    /// The order is written.
    #[oai(status = 201)]
    Created(Json<OrderEnvelope>),
    /// The reservation had its order already (a repeated request).
    #[oai(status = 200)]
    Existing(Json<OrderEnvelope>),
}

/// Tickets of an order to offer for return.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct ReturnRequest {
    /// How many of the order's tickets (its highest-numbered ones not used or returned).
    tickets: WholeNumber<1, { crate::config::MAX_PER_ORDER_LIMIT as i64 }>,
}

#[derive(ApiResponse)]
enum TicketsPdfResponse {
    /// The order's tickets: one PDF, a page per ticket with its QR code.
    #[oai(status = 200, content_type = "application/pdf")]
    Pdf(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
enum ReleaseResponse {
    /// The tickets are back on sale, or the reservation left the queue.
    #[oai(status = 204)]
    Released,
}

/// A JSON number as the text the buyer parser reads; anything else is empty, which it refuses.
fn number_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

pub(super) fn rate_limited<F>(retry_after: std::time::Duration) -> CallError<F> {
    fail(WebError::RateLimited { retry_after })
}

/// The order of a reservation, if it has one.
async fn find_order<F>(state: &AppState, code: ReservationCode) -> ApiResult<Option<Order>, F> {
    Ok(db::orders::find_by_reservation(&state.db, code.token)
        .await
        .map_err(WebError::reading("Your order"))?)
}

/// What a call about a reservation's order starts with: the request counted against its
/// client's limit, then the order of the reservation `code` of this session (the sale's record
/// of the owner proves it); anything else is a 404, as for an order that does not exist.
async fn session_order<F>(state: &AppState, req: &Request, code: &str) -> ApiResult<(ReservationCode, Order), F> {
    state.limits.check_request(req).map_err(rate_limited)?;
    let code = reservation_code(code)?;
    let owner = session::owner_from_cookie(req).ok_or_else(|| fail(SaleError::UnknownReservation))?;
    let r = state.sales.status(&code, &owner).await.map_err(fail)?;
    if r.state != ReservationState::Confirmed {
        return Err(fail(SaleError::UnknownReservation));
    }
    let order = find_order(state, code)
        .await?
        .ok_or_else(|| fail(SaleError::UnknownReservation))?;
    Ok((code, order))
}

/// The quantity of a join's body, within the shop's most per order.
pub(super) fn quantity_of<F>(
    state: &AppState,
    quantity: &WholeNumber<1, { crate::config::MAX_PER_ORDER_LIMIT as i64 }>,
) -> ApiResult<Quantity, F> {
    let max = state.sales.max_per_order();
    quantity
        .value()
        .ok_or(SaleError::BadQuantity { max })
        .and_then(|n| state.sales.quantity(n))
        .map_err(fail)
}

/// The cookie of a session this call started (a join that went through); nothing is stored.
pub(super) fn new_session_cookie(state: &AppState, new_session: Option<session::NewSession>) -> Option<String> {
    new_session.map(|s| s.cookie(state.settings.cookie_secure))
}

/// The poll of reservation `code` with the `place` the last answer gave: the operation's, and
/// its short way's (`api_poll`).
pub(super) async fn poll(
    state: &AppState,
    req: &Request,
    code: &str,
    place: Option<&str>,
) -> ApiResult<JsonBody<ReservationView>, Reads> {
    if let Err(wait) = state.limits.check_poll(req) {
        // A waiting client polling too fast is still here: it keeps its place.
        state.presence.note_refused_poll(req, code);
        return Err(rate_limited(wait));
    }
    let code = reservation_code(code)?;
    let owner = session::owner_from_cookie(req).ok_or_else(|| fail(SaleError::UnknownReservation))?;
    let r = state.sales.poll(&code, place, &owner).await.map_err(fail)?;
    let view = ReservationView::from(&r);
    if r.state != ReservationState::Confirmed {
        return Ok(JsonBody(view));
    }
    // The order's fate (paid, cancelled) is Postgres's: read only once there is an order, so a
    // waiting client's poll stays one Redis call at most. Boxed: a query's future is kilobytes,
    // which every poll's future would carry otherwise.
    Ok(JsonBody(match Box::pin(find_order(state, code)).await? {
        Some(order) => view.with_order(&order),
        None => view,
    }))
}

pub(super) fn reservation_code<F>(code: &str) -> ApiResult<ReservationCode, F> {
    code.parse().map_err(fail)
}

#[OpenApi]
impl BuyerApi {
    /// A sale's public state: capacity, sold, held, waiting, price, state, opening time.
    #[oai(path = "/sales/:sale", method = "get")]
    async fn sale(
        &self,
        state: Data<&AppState>,
        req: &Request,
        sale: Path<String>,
    ) -> ApiResult<Json<SaleView>, Reads> {
        state.limits.check_request(req).map_err(rate_limited)?;
        let sale: SaleId = sale.0.parse().map_err(fail)?;
        let listing = state
            .sales
            .listing(sale)
            .await
            .map_err(WebError::reading("This sale"))?;
        let f = state
            .sales
            .figures(sale)
            .await
            .map_err(WebError::reading("This sale"))?;
        Ok(Json(SaleView {
            id: sale.to_string(),
            title: listing.title,
            starts_at: listing.starts_at,
            capacity: f.capacity,
            sold: f.sold,
            held: f.held,
            waiting: f.waiting,
            available: f.available(),
            price: listing.price_minor,
            currency: listing.currency,
            state: f.state.as_str().to_string(),
            opens_at: f.opens_at,
        }))
    }

    /// The sale's pre-queue draw (algorithm `boxoffice-draw-v1`): `{"algorithm", "sale",
    /// "commitment", "receipt_key", "beacon_chain", "result"}`, where `result` is null until the
    /// opening's draw is done and then reveals `frozen_at`, `list_hash`, `beacon` (`round`,
    /// `signature`), `server_seed`, `seed` and `entries` (`place`, `entry_hash`) in drawn
    /// order. `boxoffice verify-draw` checks it all against a receipt. 404 when the sale has
    /// no pre-queue draw (nobody joined one).
    #[oai(path = "/sales/:sale/draw", method = "get")]
    async fn draw(
        &self,
        state: Data<&AppState>,
        req: &Request,
        sale: Path<String>,
    ) -> ApiResult<Json<serde_json::Value>, Reads> {
        state.limits.check_request(req).map_err(rate_limited)?;
        let sale: SaleId = sale.0.parse().map_err(fail)?;
        let draw = state
            .sales
            .published_draw(sale)
            .await
            .map_err(WebError::reading("This sale's draw"))?
            .ok_or_else(|| fail(WebError::NotFound))?;
        Ok(Json(serde_json::to_value(&draw).expect("a draw serializes")))
    }

    /// Whether joining this sale needs a proof of work right now (it does when the sale's joins
    /// per minute pass the shop's threshold), and the challenge to solve. Mints the session
    /// cookie when a challenge is issued to a client without one.
    #[oai(path = "/sales/:sale/challenge", method = "get")]
    async fn challenge(
        &self,
        state: Data<&AppState>,
        req: &Request,
        sale: Path<String>,
    ) -> ApiResult<ChallengeResponse, Reads> {
        state.limits.check_request(req).map_err(rate_limited)?;
        let sale: SaleId = sale.0.parse().map_err(fail)?;
        state
            .sales
            .figures(sale)
            .await
            .map_err(WebError::reading("This sale"))?;
        let (owner, new_session) = session::owner_or_new(req);
        let Some(challenge) = proof::challenge_for(&state, sale, &owner).await.map_err(fail)? else {
            return Ok(ChallengeResponse::Ok(
                Json(ChallengeView {
                    required: false,
                    challenge: None,
                }),
                None,
            ));
        };
        let cookie = new_session_cookie(&state, new_session);
        let challenge = serde_json::to_value(&challenge).expect("a challenge serializes");
        Ok(ChallengeResponse::Ok(
            Json(ChallengeView {
                required: true,
                challenge: Some(challenge),
            }),
            cookie,
        ))
    }

    /// Join a sale (idempotent per session: joining again returns the same reservation).
    /// In the sale's pre-queue window (before it opens) the reservation is an entry of the
    /// pre-queue (state `prequeue`, with its receipt); at the opening it gets its place in line
    /// by the draw. Just after the opening, while the draw goes into the queue, a join is a
    /// 409 `draw_under_way`: try again in a few seconds.
    /// Mints the session cookie when the client has none. A busy sale asks for a proof of work
    /// first (428 `proof_required`; see `GET /sales/{sale}/challenge`).
    #[oai(path = "/sales/:sale/reservations", method = "post")]
    async fn join(
        &self,
        state: Data<&AppState>,
        req: &Request,
        sale: Path<String>,
        body: Json<JoinRequest>,
    ) -> ApiResult<JoinResponse, JoinFailures> {
        state.limits.check_join(req).map_err(rate_limited)?;
        let sale: SaleId = sale.0.parse().map_err(fail)?;
        let quantity = quantity_of(&state, &body.0.quantity)?;
        // A refused join (unknown sale, closed, ...) stores no session.
        let (owner, new_session) = session::owner_or_new(req);
        let made = if new_session.is_some() {
            SessionMade::Now
        } else {
            SessionMade::Before
        };
        proof::check_join(&state, sale, &owner, body.0.proof.as_ref().map(|p| &p.0[..]))
            .await
            .map_err(fail)?;
        let email = match body.0.email.as_ref() {
            Some(text) => Some(PrequeueEmail::parse(&text.0).map_err(fail)?),
            None => None,
        };
        let joining = state
            .sales
            .join_with_email(sale, &owner, made, quantity, email.as_ref())
            .await
            .map_err(fail)?;
        let cookie = new_session_cookie(&state, new_session);
        let r = match joining {
            Joining::Placed(r) => r,
            Joining::LinkMailed => {
                let view = LinkMailedView {
                    state: "link_mailed".into(),
                    link_lifetime_secs: LINK_LIFETIME.as_secs(),
                };
                return Ok(JoinResponse::LinkMailed(Json(view), cookie));
            }
        };
        let view = JsonBody(ReservationView::from(&r));
        Ok(if r.created {
            JoinResponse::Created(view, cookie)
        } else {
            JoinResponse::Existing(view, cookie)
        })
    }

    /// Confirm a pre-queue link mailed by a sale that gives one place per verified email: the
    /// place (a pre-queue entry with its receipt, as a join's) is made for this session, once
    /// per link and once per email in the sale. 404 `unknown_link` for a token the shop did
    /// not sign, 410 `link_spent` for a link used already or expired, 409 `email_has_place`
    /// when the link's email holds a place already (the link stays unused), 409
    /// `prequeue_over` once the sale has opened. Mints the session cookie when the client has
    /// none.
    #[oai(path = "/prequeue/confirmations", method = "post")]
    async fn confirm_prequeue_link(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LinkConfirmation>,
    ) -> ApiResult<ConfirmationResponse, ConfirmationFailures> {
        state.limits.check_join(req).map_err(rate_limited)?;
        let token = body.0.token.0.as_ref().map(|t| t.0.as_str()).unwrap_or_default();
        // Before a session is made: a token that is not the shop's costs nothing.
        LinkToken::verify(&state.settings.secret, token).map_err(fail)?;
        let (owner, new_session) = session::owner_or_new(req);
        let r = state.sales.confirm_prequeue_link(token, &owner).await.map_err(fail)?;
        let cookie = new_session_cookie(&state, new_session);
        let view = JsonBody(ReservationView::from(&r));
        Ok(if r.created {
            ConfirmationResponse::Created(view, cookie)
        } else {
            ConfirmationResponse::Existing(view, cookie)
        })
    }

    /// The poll: where a reservation of this session stands. No session read; far from the
    /// head (with the code as the join gave it) no Redis call either, near it one.
    #[oai(path = "/reservations/:code", method = "get")]
    async fn reservation(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
        /// The `place` the join or the last poll answered, to be answered without a look at
        /// the queue while far from its head.
        place: Query<Option<String>>,
    ) -> ApiResult<JsonBody<ReservationView>, Reads> {
        poll(&state, req, &code.0, place.0.as_deref()).await
    }

    /// The order of a reservation of this session: its state (awaiting_payment, paid,
    /// cancelled or confirmed), payment deadline and amount, and while it awaits payment how to
    /// pay it (`payment`). A payment Stripe has taken is applied by this read if its webhook
    /// has not come yet. 404 before the reservation has an order.
    #[oai(path = "/reservations/:code/order", method = "get")]
    async fn order_of(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
    ) -> ApiResult<Json<OrderEnvelope>, Reads> {
        let (code, order) = session_order(&state, req, &code.0).await?;
        Ok(Json(order_as_it_stands(&state, code, order).await?))
    }

    /// Confirm an admitted reservation with the buyer's details: writes the order.
    #[oai(path = "/reservations/:code/order", method = "post")]
    async fn order(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
        body: Json<OrderRequest>,
    ) -> ApiResult<OrderResponse, WithBody> {
        state.limits.check_request(req).map_err(rate_limited)?;
        let code = reservation_code(&code.0)?;
        let owner = session::owner_from_cookie(req).ok_or_else(|| fail(SaleError::UnknownReservation))?;
        let body = body.0;
        let input = BuyerInput {
            name: body.name.0.map(|t| t.0).unwrap_or_default(),
            email: body.email.0.map(|t| t.0).unwrap_or_default(),
            age: number_text(&body.age.0),
            gender: body.gender.0,
        };
        let buyer = crate::sale::Buyer::parse(&input).map_err(|e| fail(SaleError::InvalidBuyer(e)))?;
        match state.sales.confirm(&code, &owner, &buyer).await {
            Ok(order) => Ok(OrderResponse::Created(Json(
                order_as_it_stands(&state, code, order).await?,
            ))),
            // A repeated request after success: the same order, not a second one.
            Err(SaleError::NotAdmitted(ReservationState::Confirmed)) => {
                let order = find_order(&state, code)
                    .await?
                    .ok_or_else(|| fail(SaleError::NotAdmitted(ReservationState::Confirmed)))?;
                Ok(OrderResponse::Existing(Json(
                    order_as_it_stands(&state, code, order).await?,
                )))
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// Give up paying: cancels this session's order if it still awaits payment, and its
    /// tickets go back on sale at once (the next buyers in line are admitted). The answer is
    /// the order as it stands: cancelled, or paid when the payment came first (a paid order is
    /// not cancelled here); calling again changes nothing. Without Stripe no order awaits
    /// payment, and the order comes back unchanged.
    #[oai(path = "/reservations/:code/order/cancel", method = "post")]
    async fn cancel_order(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
    ) -> ApiResult<Json<OrderEnvelope>, Reads> {
        let (code, mut order) = session_order(&state, req, &code.0).await?;
        if let Some(payments) = &state.payments {
            payments
                .cancel(&state.db, &state.sales, &order)
                .await
                .map_err(|e| fail(SaleError::from(e)))?;
            // Cancelled now, before, or paid first: as Postgres has it after the attempt.
            order = find_order(&state, code)
                .await?
                .ok_or_else(|| fail(SaleError::UnknownReservation))?;
        }
        Ok(Json(order_as_it_stands(&state, code, order).await?))
    }

    /// Offer `tickets` of this session's confirmed (or paid) order for return, where the
    /// organizer allows returns: they go down the sale's waitlist in order (or to the line),
    /// and stay this buyer's, valid at the door, until another buyer's order takes them; then
    /// they are `returned` (a paid order refunded for them). If nobody buys them before the
    /// event, the buyer keeps them. Answers the order with its `returning` count. 409 when the
    /// sale takes no returns, a return is pending already (withdraw it first) or nothing can
    /// be returned; 422 for more tickets than the order has left.
    #[oai(path = "/reservations/:code/order/return", method = "post")]
    async fn return_tickets(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
        body: Json<ReturnRequest>,
    ) -> ApiResult<Json<OrderEnvelope>, WithBody> {
        let (code, order) = session_order(&state, req, &code.0).await?;
        let max = u8::try_from(order.quantity).unwrap_or(u8::MAX);
        let tickets = body
            .0
            .tickets
            .value()
            .filter(|n| (1..=i64::from(max)).contains(n))
            .ok_or_else(|| fail(SaleError::BadQuantity { max }))?;
        state.sales.return_tickets(&order, tickets).await.map_err(fail)?;
        Ok(Json(order_as_it_stands(&state, code, order).await?))
    }

    /// Withdraw the return of this session's order: the tickets nobody has bought yet are the
    /// buyer's alone again. 409 `no_return_pending` when none is offered any more (another
    /// buyer bought them: the order says `returned`).
    #[oai(path = "/reservations/:code/order/return", method = "delete")]
    async fn withdraw_return(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
    ) -> ApiResult<Json<OrderEnvelope>, Release> {
        let (code, order) = session_order(&state, req, &code.0).await?;
        state.sales.withdraw_return(&order).await.map_err(fail)?;
        Ok(Json(order_as_it_stands(&state, code, order).await?))
    }

    /// The tickets of this session's order as one PDF, a page per ticket; once it is paid (or
    /// confirmed without payment), else a 404.
    #[oai(path = "/reservations/:code/tickets.pdf", method = "get")]
    async fn tickets_pdf(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
    ) -> ApiResult<TicketsPdfResponse, Reads> {
        let (_, order) = session_order(&state, req, &code.0).await?;
        // No ticket without payment: an order awaiting it, or cancelled, has none to give.
        if !order.tickets_valid() {
            return Err(fail(SaleError::UnknownReservation));
        }
        let pdf = tickets::order_pdf(&state.db, &order)
            .await
            .map_err(WebError::reading("Your tickets"))?
            .ok_or_else(|| fail(SaleError::UnknownReservation))?;
        Ok(TicketsPdfResponse::Pdf(
            Binary(pdf),
            tickets::pdf_disposition(&order),
            "private, no-store".into(),
        ))
    }

    /// Give up: leave the queue, or release held tickets at once.
    #[oai(path = "/reservations/:code", method = "delete")]
    async fn release(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
    ) -> ApiResult<ReleaseResponse, Release> {
        state.limits.check_request(req).map_err(rate_limited)?;
        let code = reservation_code(&code.0)?;
        let owner = session::owner_from_cookie(req).ok_or_else(|| fail(SaleError::UnknownReservation))?;
        state.sales.release(&code, &owner).await.map_err(fail)?;
        Ok(ReleaseResponse::Released)
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::*;

    fn view(all: bool) -> ReservationView {
        let now = Utc::now();
        let some = |text: &str| all.then(|| text.to_string());
        ReservationView {
            code: "0f6c1c55-4b0e-4a0c-9d43-3d3c2f3b9a10.8d1c0b1e2f3a4b5c6d7e8f9a0b1c2d3e".into(),
            place: some("00000000000100000001010000000123456789abcdef0123456789ab"),
            state: "waiting".into(),
            quantity: 2,
            position: 1_234_567,
            position_approximate: all,
            waiting: 9_876_543,
            expires_at: all.then_some(now + chrono::Duration::milliseconds(90_123)),
            server_now: now,
            poll_after_ms: 5_000,
            receipt: some("v1.sale.entry.signature"),
            commitment: some("ab".repeat(32).as_str()),
            opens_at: all.then(|| DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
            order_state: some("awaiting_payment"),
            order_url: some("/orders/x \"quoted\" \\ é"),
        }
    }

    /// The poll's reply as serde writes it is what poem-openapi's `Json` would write: the same
    /// fields, the same nulls, the same times to the nanosecond.
    #[test]
    fn a_reservation_is_written_as_poem_openapi_writes_it() {
        for all in [true, false] {
            let view = view(all);
            let written: serde_json::Value = serde_json::from_slice(&serde_json::to_vec(&view).unwrap()).unwrap();
            assert_eq!(written, view.to_json().unwrap(), "all fields set: {all}");
        }
    }
}
