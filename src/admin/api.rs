//! The organizer JSON API under `/api/v1/admin/`, in the same OpenAPI document as the buyer
//! API. A request carries `Authorization: Bearer <token>`; the token is one the organizer made
//! in the portal or with `boxoffice organizer token`. The operations are the organizer
//! service's, as the portal's are, so their rules and ownership checks are the same: another
//! organizer's event or sale is a 404, exactly like a missing one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::AdminError;
use super::extract::ApiOrganizer;
use super::forms::{
    EventFields, FieldErrors, MAX_CAPACITY, MAX_DESCRIPTION, MAX_HOLD_SECS, MAX_PREQUEUE_SECS, MAX_PRICE_MINOR,
    MAX_TITLE, MAX_VENUE, NOT_A_WHOLE_NUMBER, Parsed, SaleFields, api_time,
};
use super::series;
use super::service::{self, EventEdit, ServiceError};
use super::waitlist;
use crate::db::events::Event;
use crate::db::orders::Order;
use crate::db::sales::SaleRecord;
use crate::db::tickets::CheckIn;
use crate::db::waitlist::EntryRecord;
use crate::sale::SaleState;
use crate::startup::AppState;
use crate::web::api_fields::{
    Fixed, OPTIONAL_PLAIN_TEXT, OneOf, PLAIN_TEXT, Required, SaleStates, Text, TextRule, WholeNumber,
};
use crate::web::error::RETRY_AFTER_SECS;

/// The organizer API.
pub struct AdminApi;

#[derive(Tags)]
enum AdminTag {
    /// The organizer's events, ticket sales and dashboards (bearer token).
    Organizer,
}

/// An error: a machine-readable `error`, a `message` for people, and for invalid input the
/// message of each field that failed.
#[derive(Object)]
pub struct AdminProblem {
    pub error: String,
    pub message: String,
    #[oai(skip_serializing_if_is_none)]
    pub fields: Option<BTreeMap<String, String>>,
}

/// Every answer of the organizer API.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum Answer<T: ToJSON> {
    /// Done.
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Made.
    #[oai(status = 201)]
    Created(Json<T>),
    /// The request could not be read (not JSON, a wrong type).
    #[oai(status = 400)]
    BadRequest(Json<AdminProblem>),
    /// No valid bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<AdminProblem>),
    /// No such event or sale of yours.
    #[oai(status = 404)]
    NotFound(Json<AdminProblem>),
    /// Not possible in the current state (a closed sale cannot reopen), or beyond what one
    /// account may create (`limit_reached`).
    #[oai(status = 409)]
    Conflict(Json<AdminProblem>),
    /// Fields that do not pass; see `fields`.
    #[oai(status = 422)]
    Invalid(Json<AdminProblem>),
    /// Something broke on our side.
    #[oai(status = 500)]
    Internal(Json<AdminProblem>),
    /// Postgres or Redis did not answer; nothing changed, retry after the given seconds.
    #[oai(status = 503)]
    Unavailable(Json<AdminProblem>, #[oai(header = "Retry-After")] u64),
}

fn bad_request<T: ToJSON>(err: poem::Error) -> Answer<T> {
    // The bearer token's organizer is looked up before the handler runs; its errors are ours.
    let err = match err.downcast::<AdminError>() {
        Ok(e) => return e.into(),
        Err(err) => err,
    };
    if err.status() == poem::http::StatusCode::UNAUTHORIZED {
        return AdminError::Unauthenticated.into();
    }
    Answer::BadRequest(Json(AdminProblem {
        error: "bad_request".into(),
        message: crate::web::error::parser_message(&err),
        fields: None,
    }))
}

impl<T: ToJSON> From<AdminError> for Answer<T> {
    fn from(e: AdminError) -> Self {
        use poem::error::ResponseError;
        e.log();
        let fields = match &e {
            AdminError::Invalid(f) => Some(f.0.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
            _ => None,
        };
        let message = match &e {
            AdminError::Unauthenticated => "A valid bearer token is required.".to_string(),
            AdminError::NotFound => "There is no such event or sale of yours.".to_string(),
            e => e.message(),
        };
        let p = Json(AdminProblem {
            error: e.code().into(),
            message,
            fields,
        });
        match e {
            AdminError::Unauthenticated => Answer::Unauthorized(p),
            AdminError::NotFound => Answer::NotFound(p),
            AdminError::Invalid(_) => Answer::Invalid(p),
            e => match e.status().as_u16() {
                404 => Answer::NotFound(p),
                409 => Answer::Conflict(p),
                422 => Answer::Invalid(p),
                503 => Answer::Unavailable(p, e.retry_after().unwrap_or(RETRY_AFTER_SECS)),
                400..=499 => Answer::BadRequest(p),
                _ => Answer::Internal(p),
            },
        }
    }
}

fn answer<T: ToJSON>(r: Result<T, impl Into<AdminError>>) -> Answer<T> {
    r.map_or_else(|e| Answer::from(e.into()), |v| Answer::Ok(Json(v)))
}

fn created<T: ToJSON>(r: Result<T, impl Into<AdminError>>) -> Answer<T> {
    r.map_or_else(|e| Answer::from(e.into()), |v| Answer::Created(Json(v)))
}

/// A title as the document declares it: plain text, at most `forms::MAX_TITLE` characters.
pub struct TitleRule;

impl TextRule for TitleRule {
    const SCHEMA: &'static str = "Title";
    const MAX_LENGTH: usize = MAX_TITLE;
    const PATTERN: Option<&'static str> = Some(PLAIN_TEXT);
}

/// A description: plain text, at most `forms::MAX_DESCRIPTION` characters.
pub struct DescriptionRule;

impl TextRule for DescriptionRule {
    const SCHEMA: &'static str = "Description";
    const MAX_LENGTH: usize = MAX_DESCRIPTION;
    const PATTERN: Option<&'static str> = Some(PLAIN_TEXT);
}

/// A venue: plain text, at most `forms::MAX_VENUE` characters.
pub struct VenueRule;

impl TextRule for VenueRule {
    const SCHEMA: &'static str = "Venue";
    const MAX_LENGTH: usize = MAX_VENUE;
    const PATTERN: Option<&'static str> = Some(OPTIONAL_PLAIN_TEXT);
}

/// An RFC 3339 time; its bounds relative to now are the handler's to check.
pub struct TimeRule;

impl TextRule for TimeRule {
    const SCHEMA: &'static str = "Time";
    const MAX_LENGTH: usize = 64;
    const PATTERN: Option<&'static str> = None;
}

/// Three capital letters.
pub struct CurrencyRule;

impl TextRule for CurrencyRule {
    const SCHEMA: &'static str = "Currency";
    const MAX_LENGTH: usize = 3;
    const PATTERN: Option<&'static str> = Some("^[A-Z]{3}$");
}

/// An optional whole number as the form rules read it: left out or null is `None`, anything
/// but a whole number the field's error.
fn whole_number<const MIN: i64, const MAX: i64>(v: &Option<WholeNumber<MIN, MAX>>) -> Parsed<i64> {
    v.as_ref().map(|n| n.value().ok_or(NOT_A_WHOLE_NUMBER)).transpose()
}

/// A new event. Every field but `venue` and `currency` (EUR by default) is required; the bounds are those
/// of the portal's form. The times' rules relative to now are checked by the handler, which
/// names the field in a 422, as it does for every other rule.
#[derive(Object)]
pub struct AdminEventInput {
    title: Required<Text<TitleRule>>,
    description: Required<Text<DescriptionRule>>,
    /// Where it takes place; may be left out.
    #[oai(nullable)]
    venue: Option<Text<VenueRule>>,
    /// RFC 3339; not in the past, at most 5 years ahead.
    starts_at: Required<Text<TimeRule>>,
    /// RFC 3339; after `starts_at`, at most a year after it.
    ends_at: Required<Text<TimeRule>>,
    capacity: Required<WholeNumber<1, MAX_CAPACITY>>,
    /// Price per ticket in minor units (cents).
    price_minor: Required<WholeNumber<0, MAX_PRICE_MINOR>>,
    /// EUR when left out or null.
    #[oai(nullable)]
    currency: Option<Text<CurrencyRule>>,
}

/// A change to an event: only `title`, `description` and `venue` may change after creation
/// (null or left out keeps them); the other fields are read-only, and one given is refused (422).
#[derive(Object)]
pub struct AdminEventPatch {
    #[oai(nullable)]
    title: Option<Text<TitleRule>>,
    #[oai(nullable)]
    description: Option<Text<DescriptionRule>>,
    #[oai(nullable)]
    venue: Option<Text<VenueRule>>,
    starts_at: Option<Fixed>,
    ends_at: Option<Fixed>,
    capacity: Option<Fixed>,
    price_minor: Option<Fixed>,
    currency: Option<Fixed>,
}

#[derive(Object)]
pub struct AdminEvent {
    id: Uuid,
    title: String,
    description: String,
    /// Empty when not given.
    venue: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    capacity: i32,
    price_minor: i64,
    currency: String,
}

impl From<Event> for AdminEvent {
    fn from(e: Event) -> Self {
        AdminEvent {
            id: e.id,
            title: e.title,
            description: e.description,
            venue: e.venue,
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            capacity: e.capacity,
            price_minor: e.price_minor,
            currency: e.currency,
        }
    }
}

/// A new ticket sale; every field is optional (null or left out takes the default). The
/// capacity is further bounded by the event's, and the opening time by the rules relative to
/// now, which the handler checks (422 naming the field).
#[derive(Object)]
pub struct AdminSaleInput {
    /// Up to the event's capacity; the event's capacity by default.
    #[oai(nullable)]
    capacity: Option<WholeNumber<1, MAX_CAPACITY>>,
    /// RFC 3339; now by default; at most 5 years ahead.
    #[oai(nullable)]
    opens_at: Option<Text<TimeRule>>,
    /// How long a buyer at checkout holds tickets, in seconds; the shop's default otherwise.
    #[oai(nullable)]
    hold_secs: Option<WholeNumber<1, MAX_HOLD_SECS>>,
    /// Buyers at checkout at once; 0 (the default) for no limit.
    #[oai(nullable)]
    max_active: Option<WholeNumber<0, MAX_CAPACITY>>,
    /// Seconds before `opens_at` from which buyers may join the sale's pre-queue (their places
    /// are drawn at the opening); 1800 by default, 0 for no pre-queue, at most a day.
    #[oai(nullable)]
    prequeue_secs: Option<WholeNumber<0, MAX_PREQUEUE_SECS>>,
    /// One pre-queue place per verified email: a pre-queue join gives an email, the shop mails
    /// it a one-time link, and the place is made when the link is opened; an email holds one
    /// place. False by default; true only where the shop sends mail (422 otherwise).
    #[oai(nullable)]
    one_place_per_email: Option<bool>,
}

/// A change of a sale's state: `open` (resume), `paused` or `closed` (final).
#[derive(Object)]
pub struct AdminSalePatch {
    state: OneOf<SaleStates>,
}

#[derive(Object)]
pub struct AdminSale {
    id: Uuid,
    event_id: Uuid,
    capacity: i32,
    /// Copied from the event when the sale was made.
    price_minor: i64,
    currency: String,
    sold: i32,
    opens_at: DateTime<Utc>,
    /// `open`, `paused` or `closed`.
    state: String,
    hold_secs: i32,
    max_active: i32,
    /// Seconds before `opens_at` that the pre-queue opens; 0: no pre-queue.
    prequeue_secs: i32,
    /// Each pre-queue place needs an email confirmed by a mailed link, one place per email.
    one_place_per_email: bool,
}

impl From<SaleRecord> for AdminSale {
    fn from(s: SaleRecord) -> Self {
        AdminSale {
            id: s.id,
            event_id: s.event_id,
            capacity: s.capacity,
            price_minor: s.price_minor,
            currency: s.currency,
            sold: s.sold,
            opens_at: s.opens_at,
            state: s.state,
            hold_secs: s.hold_secs,
            max_active: s.max_active,
            prequeue_secs: s.prequeue_secs,
            one_place_per_email: s.one_place_per_email,
        }
    }
}

/// A sale's dashboard figures, live from the sale service and Postgres.
#[derive(Object)]
pub struct AdminSaleFigures {
    sale: AdminSale,
    /// `open`, `paused` or `closed`.
    state: String,
    capacity: i64,
    sold: i64,
    /// Tickets held at checkout.
    held: i64,
    /// Buyers in the queue.
    waiting: i64,
    /// Buyers admitted to checkout since the sale's live state was built.
    admitted: i64,
    /// Over the last minute of the sale's live state, the same on every instance and in the
    /// waiting room's estimate; null before its first ten seconds.
    #[oai(nullable)]
    admitted_per_minute: Option<f64>,
    orders: i64,
    /// Orders waiting for their payment, paid, and cancelled (not paid in time, or given up).
    orders_awaiting_payment: i64,
    orders_paid: i64,
    orders_cancelled: i64,
    /// Money taken: paid orders, and confirmed ones of a shop without payment.
    revenue_minor: i64,
    currency: String,
    as_of: DateTime<Utc>,
}

/// Where an order stands: `confirmed` (a shop without payment), `awaiting_payment`, `paid`,
/// `cancelled`.
#[derive(poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum OrderState {
    Confirmed,
    AwaitingPayment,
    Paid,
    Cancelled,
}

impl OrderState {
    fn of(state: &str) -> OrderState {
        match state {
            "awaiting_payment" => OrderState::AwaitingPayment,
            "paid" => OrderState::Paid,
            "cancelled" => OrderState::Cancelled,
            _ => OrderState::Confirmed,
        }
    }
}

/// A sale over time: its samples from the opening to now, the funnel of its buyers and the
/// estimates, as the dashboard shows them.
#[derive(Object)]
pub struct AdminSaleSeries {
    /// Seconds between samples (`BOXOFFICE_SAMPLE_SECS`).
    interval_secs: u64,
    /// Oldest first.
    samples: Vec<AdminSample>,
    funnel: AdminFunnel,
    estimates: AdminEstimates,
    as_of: DateTime<Utc>,
}

/// The sale's figures at the start of one interval. Counts are cumulative since the sale's
/// live state was built; `waiting`, `held`, `at_checkout` and `sold` are levels.
#[derive(Object)]
pub struct AdminSample {
    taken_at: DateTime<Utc>,
    waiting: i64,
    /// Tickets held at checkout.
    held: i64,
    /// Buyers at checkout.
    at_checkout: i64,
    sold: i64,
    admitted: i64,
    orders: i64,
    joined: i64,
    left_queue: i64,
    released: i64,
    abandoned: i64,
    lapsed: i64,
    sold_out: i64,
}

/// Where the buyers went: `joined` = `admitted` + `waiting` + `left_queue` + `abandoned` +
/// `sold_out`, and `admitted` = `ordered` + `at_checkout` + `released` + `lapsed` (buyers whose
/// sale closed under them aside).
#[derive(Object)]
pub struct AdminFunnel {
    joined: i64,
    admitted: i64,
    ordered: i64,
    waiting: i64,
    left_queue: i64,
    abandoned: i64,
    sold_out: i64,
    at_checkout: i64,
    released: i64,
    lapsed: i64,
}

/// At the current rates; null where nothing moves to estimate from.
#[derive(Object)]
pub struct AdminEstimates {
    /// Over the last minute of samples.
    #[oai(nullable)]
    sold_per_minute: Option<f64>,
    /// Seconds until every ticket is sold (0: sold out).
    #[oai(nullable)]
    sell_out_secs: Option<f64>,
    /// The sale's one admission rate.
    #[oai(nullable)]
    admitted_per_minute: Option<f64>,
    /// Seconds the last buyer in line waits.
    #[oai(nullable)]
    last_in_line_wait_secs: Option<f64>,
}

impl AdminSaleSeries {
    fn new(s: series::SaleSeries, interval_secs: u64) -> Self {
        let f = s.funnel;
        let e = s.estimates;
        AdminSaleSeries {
            interval_secs,
            samples: s
                .samples
                .into_iter()
                .map(|x| AdminSample {
                    taken_at: x.taken_at,
                    waiting: x.waiting,
                    held: x.held,
                    at_checkout: x.at_checkout,
                    sold: x.sold,
                    admitted: x.admitted,
                    orders: x.orders,
                    joined: x.joined,
                    left_queue: x.left_queue,
                    released: x.released,
                    abandoned: x.abandoned,
                    lapsed: x.lapsed,
                    sold_out: x.sold_out,
                })
                .collect(),
            funnel: AdminFunnel {
                joined: f.joined,
                admitted: f.admitted,
                ordered: f.ordered,
                waiting: f.waiting,
                left_queue: f.left_queue,
                abandoned: f.abandoned,
                sold_out: f.sold_out,
                at_checkout: f.at_checkout,
                released: f.released,
                lapsed: f.lapsed,
            },
            estimates: AdminEstimates {
                sold_per_minute: e.sold_per_minute,
                sell_out_secs: e.sell_out_secs,
                admitted_per_minute: e.admitted_per_minute,
                last_in_line_wait_secs: e.last_in_line_wait_secs,
            },
            as_of: s.as_of,
        }
    }
}

#[derive(Object)]
pub struct AdminOrder {
    number: String,
    state: OrderState,
    /// Until when an order awaiting payment may be paid; null without payment.
    #[oai(nullable)]
    payment_due_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    quantity: i16,
    unit_price_minor: i64,
    total_minor: i64,
    currency: String,
    buyer_name: String,
    buyer_email: String,
    buyer_age: i16,
    buyer_gender: String,
}

impl From<Order> for AdminOrder {
    fn from(o: Order) -> Self {
        AdminOrder {
            total_minor: o.total_minor(),
            state: OrderState::of(&o.state),
            payment_due_at: o.payment_due_at,
            number: o.number,
            created_at: o.created_at,
            quantity: o.quantity,
            unit_price_minor: o.unit_price_minor,
            currency: o.currency,
            buyer_name: o.buyer_name,
            buyer_email: o.buyer_email,
            buyer_age: o.buyer_age,
            buyer_gender: o.buyer_gender,
        }
    }
}

/// One page of a sale's orders, newest first.
#[derive(Object)]
pub struct AdminOrderPage {
    orders: Vec<AdminOrder>,
    page: i64,
    per_page: i64,
    /// Orders of the sale in all.
    total: i64,
}

/// A ticket scanned at the door.
#[derive(Object)]
pub struct AdminCheckInInput {
    /// The code of the ticket's QR code (printed under it).
    code: Required<Text<TicketCodeRule>>,
}

/// A scanned code: whatever the scanner read, up to `service::MAX_TICKET_CODE_LEN` characters
/// (anything else it read is answered `not_valid`, not refused).
pub struct TicketCodeRule;

impl TextRule for TicketCodeRule {
    const SCHEMA: &'static str = "TicketCode";
    const MAX_LENGTH: usize = service::MAX_TICKET_CODE_LEN;
    const PATTERN: Option<&'static str> = None;
}

/// What the door does with a scanned ticket.
#[derive(Object)]
pub struct AdminCheckIn {
    /// `admitted` (first scan: let in), `already_used` (scanned before, at `checked_in_at`) or
    /// `not_valid` (no valid ticket of this sale's event has this code).
    result: String,
    /// When the ticket was admitted: now for `admitted`, the first scan for `already_used`.
    #[oai(nullable)]
    checked_in_at: Option<DateTime<Utc>>,
    /// The buyer named on the order.
    #[oai(nullable)]
    holder: Option<String>,
    /// Its place in the order, as "2 of 3".
    #[oai(nullable)]
    ticket: Option<String>,
}

impl From<CheckIn> for AdminCheckIn {
    fn from(c: CheckIn) -> Self {
        let (result, ticket) = match c {
            CheckIn::Admitted(t) => ("admitted", Some(t)),
            CheckIn::AlreadyUsed(t) => ("already_used", Some(t)),
            CheckIn::NotValid => ("not_valid", None),
        };
        AdminCheckIn {
            result: result.into(),
            checked_in_at: ticket.as_ref().map(|t| t.checked_in_at),
            ticket: ticket.as_ref().map(|t| format!("{} of {}", t.number, t.of)),
            holder: ticket.map(|t| t.holder),
        }
    }
}

#[OpenApi(prefix_path = "/admin", tag = "AdminTag::Organizer")]
impl AdminApi {
    /// Create an event.
    #[oai(path = "/events", method = "post")]
    async fn create_event(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        body: Json<AdminEventInput>,
    ) -> Answer<AdminEvent> {
        let b = &body.0;
        let fields = EventFields {
            title: b.title.as_deref(),
            description: b.description.as_deref(),
            venue: b.venue.as_deref(),
            starts_at: api_time(b.starts_at.as_deref()),
            ends_at: api_time(b.ends_at.as_deref()),
            capacity: whole_number(&b.capacity),
            price_minor: whole_number(&b.price_minor),
            currency: b.currency.as_deref(),
        };
        let event = service::create_event(&state, me, fields).await.map_err(|e| match e {
            // The API names the price by its unit.
            ServiceError::Invalid(mut fields) => {
                if let Some(m) = fields.0.remove("price") {
                    fields.add("price_minor", m);
                }
                ServiceError::Invalid(fields)
            }
            e => e,
        });
        created(event.map(Into::into))
    }

    /// Your events, newest first.
    #[oai(path = "/events", method = "get")]
    async fn list_events(&self, state: Data<&AppState>, ApiOrganizer(me): ApiOrganizer) -> Answer<Vec<AdminEvent>> {
        let events = service::events(&state, me).await;
        answer(events.map(|events| events.into_iter().map(Into::into).collect()))
    }

    /// The ticket sales of one of your events, oldest first.
    #[oai(path = "/events/:event/sales", method = "get")]
    async fn list_sales(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        event: Path<String>,
    ) -> Answer<Vec<AdminSale>> {
        let sales = async {
            let event = service::event(&state, me, service::parse_id(&event)?).await?;
            service::sales_of(&state, &event).await
        };
        answer(sales.await.map(|sales| sales.into_iter().map(Into::into).collect()))
    }

    /// One of your events.
    #[oai(path = "/events/:event", method = "get")]
    async fn get_event(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        event: Path<String>,
    ) -> Answer<AdminEvent> {
        let event = async { service::event(&state, me, service::parse_id(&event)?).await };
        answer(event.await.map(Into::into))
    }

    /// Change the title, description or venue of one of your events (nothing else can change).
    #[oai(path = "/events/:event", method = "patch")]
    async fn patch_event(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        event: Path<String>,
        body: Json<AdminEventPatch>,
    ) -> Answer<AdminEvent> {
        let b = &body.0;
        let event = async {
            let current = service::event(&state, me, service::parse_id(&event)?).await?;
            let mut fixed = FieldErrors::default();
            for (name, given) in [
                ("starts_at", &b.starts_at),
                ("ends_at", &b.ends_at),
                ("capacity", &b.capacity),
                ("price_minor", &b.price_minor),
                ("currency", &b.currency),
            ] {
                if given.is_some() {
                    fixed.add(name, "Only the title, description and venue can change after creation.");
                }
            }
            if !fixed.is_empty() {
                return Err(ServiceError::Invalid(fixed));
            }
            let edit = EventEdit {
                title: b.title.as_deref(),
                description: b.description.as_deref(),
                venue: b.venue.as_deref(),
            };
            service::edit_event(&state, me, current.id, edit).await
        };
        answer(event.await.map(Into::into))
    }

    /// Open a ticket sale of one of your events. Its price is the event's.
    #[oai(path = "/events/:event/sales", method = "post")]
    async fn create_sale(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        event: Path<String>,
        body: Json<AdminSaleInput>,
    ) -> Answer<AdminSale> {
        let b = &body.0;
        let fields = SaleFields {
            capacity: whole_number(&b.capacity),
            opens_at: api_time(b.opens_at.as_deref()),
            hold_secs: whole_number(&b.hold_secs),
            max_active: whole_number(&b.max_active),
            prequeue_secs: whole_number(&b.prequeue_secs),
            one_place_per_email: b.one_place_per_email.unwrap_or(false),
        };
        let sale = async { service::open_sale(&state, me, service::parse_id(&event)?, fields).await };
        created(sale.await.map(Into::into))
    }

    /// A sale's dashboard figures.
    #[oai(path = "/sales/:sale", method = "get")]
    async fn get_sale(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
    ) -> Answer<AdminSaleFigures> {
        let figures = async {
            let (sale, _) = service::sale_with_event(&state, me, service::parse_id(&sale)?).await?;
            let f = service::figures(&state, &sale).await?;
            Ok::<_, ServiceError>(AdminSaleFigures {
                state: f.live.state.as_str().into(),
                capacity: f.live.capacity,
                sold: f.live.sold,
                held: f.live.held,
                waiting: f.live.waiting,
                admitted: f.live.admitted,
                admitted_per_minute: f.admitted_per_minute,
                orders: f.totals.orders,
                orders_awaiting_payment: f.totals.awaiting_payment,
                orders_paid: f.totals.paid,
                orders_cancelled: f.totals.cancelled,
                revenue_minor: f.totals.revenue_minor,
                currency: sale.currency.clone(),
                as_of: f.live.server_now,
                sale: sale.into(),
            })
        };
        answer(figures.await)
    }

    /// A sale over time: the dashboard's charts, funnel and estimates.
    #[oai(path = "/sales/:sale/series", method = "get")]
    async fn get_sale_series(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
    ) -> Answer<AdminSaleSeries> {
        let s = async {
            let sale = service::sale(&state, me, service::parse_id(&sale)?).await?;
            series::series(&state, &sale).await
        };
        let interval_secs = state.settings.sample_every.as_secs();
        answer(s.await.map(|s| AdminSaleSeries::new(s, interval_secs)))
    }

    /// Pause (`paused`), resume (`open`) or close (`closed`, final) a sale.
    #[oai(path = "/sales/:sale", method = "patch")]
    async fn patch_sale(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
        body: Json<AdminSalePatch>,
    ) -> Answer<AdminSale> {
        let sale = async {
            let want: SaleState = body
                .0
                .state
                .parse()
                .map_err(|_| ServiceError::Invalid(FieldErrors::one("state", "One of open, paused, closed.")))?;
            service::set_sale_state(&state, me, service::parse_id(&sale)?, want).await
        };
        answer(sale.await.map(Into::into))
    }

    /// Check a ticket in at the door of the sale's event: admitted once, whichever door scans
    /// it first; every later scan answers `already_used`.
    #[oai(path = "/sales/:sale/check-ins", method = "post")]
    async fn check_in(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
        body: Json<AdminCheckInInput>,
    ) -> Answer<AdminCheckIn> {
        let code = body.0.code.as_deref().unwrap_or_default().to_string();
        let scanned = async { service::check_in(&state, me, service::parse_id(&sale)?, &code).await };
        answer(scanned.await.map(Into::into))
    }

    /// A sale's orders, newest first.
    #[oai(path = "/sales/:sale/orders", method = "get")]
    async fn sale_orders(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
        /// 1 and up.
        page: Query<Option<i64>>,
        /// 1–500; 25 by default.
        per_page: Query<Option<i64>>,
    ) -> Answer<AdminOrderPage> {
        let orders = async {
            let sale = service::sale(&state, me, service::parse_id(&sale)?).await?;
            let p = service::orders(&state, &sale, page.0, per_page.0).await?;
            Ok::<_, ServiceError>(AdminOrderPage {
                orders: p.orders.into_iter().map(Into::into).collect(),
                page: p.page,
                per_page: p.per_page,
                total: p.total,
            })
        };
        answer(orders.await)
    }

    /// The sale's waitlist: entries waiting, offers out, taken and lapsed, places left, and
    /// the offer window.
    #[oai(path = "/sales/:sale/waitlist", method = "get")]
    async fn get_waitlist(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
    ) -> Answer<AdminWaitlist> {
        let w = async {
            let sale = service::sale(&state, me, service::parse_id(&sale)?).await?;
            waitlist::figures(&state, &sale).await
        };
        answer(w.await.map(Into::into))
    }

    /// The sale's waitlist entries in line order (lowest `rank` first), in every state, with
    /// the offer an entry holds. Changes Redis made that Postgres had yet to record are
    /// recorded first.
    #[oai(path = "/sales/:sale/waitlist/entries", method = "get")]
    async fn waitlist_entries(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
        /// 1 and up.
        page: Query<Option<i64>>,
        /// 1–500; 25 by default.
        per_page: Query<Option<i64>>,
    ) -> Answer<AdminWaitlistPage> {
        let entries = async {
            let sale = service::sale(&state, me, service::parse_id(&sale)?).await?;
            waitlist::entries(&state, &sale, page.0, per_page.0).await
        };
        answer(entries.await.map(Into::into))
    }

    /// Set how long an offer to the waitlist holds its tickets (60 s to a day; offers made
    /// from now on) and whether buyers may return tickets to the waitlist; a field left out
    /// stays as it is.
    #[oai(path = "/sales/:sale/waitlist", method = "patch")]
    async fn patch_waitlist(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
        body: Json<AdminWaitlistPatch>,
    ) -> Answer<AdminWaitlist> {
        let w = async {
            let id = service::parse_id(&sale)?;
            let secs = whole_number(&body.0.offer_secs).map_err(|m| invalid_field("offer_secs", m))?;
            let mut sale = service::sale(&state, me, id).await?;
            if secs.is_some() {
                sale = waitlist::set_offer_window(&state, me, id, secs).await?;
            }
            if let Some(allowed) = body.0.returns_allowed {
                sale = waitlist::set_returns_allowed(&state, me, id, allowed).await?;
            }
            waitlist::figures(&state, &sale).await
        };
        answer(w.await.map(Into::into))
    }

    /// Raise the sale's capacity, within the event's seats: the new tickets go to the queue,
    /// then down the waitlist, in order.
    #[oai(path = "/sales/:sale/capacity", method = "post")]
    async fn raise_capacity(
        &self,
        state: Data<&AppState>,
        ApiOrganizer(me): ApiOrganizer,
        sale: Path<String>,
        body: Json<AdminCapacityInput>,
    ) -> Answer<AdminSale> {
        let sale = async {
            let capacity = whole_number(&Some(body.0.capacity)).map_err(|m| invalid_field("capacity", m))?;
            waitlist::raise_capacity(&state, me, service::parse_id(&sale)?, capacity).await
        };
        answer(sale.await.map(Into::into))
    }
}

fn invalid_field(field: &'static str, message: &str) -> ServiceError {
    ServiceError::Invalid(crate::fields::FieldErrors::one(field, message))
}

/// A sale's waitlist in figures, and its offer window.
#[derive(Object)]
pub struct AdminWaitlist {
    /// Entries waiting in line.
    waiting: i64,
    /// Offers holding tickets now.
    offers_out: i64,
    /// Offers that became orders.
    offers_taken: i64,
    /// Offers that ended unbought (lapsed or turned down).
    offers_lapsed: i64,
    /// Entries whose buyer left the line.
    left: i64,
    /// How long an offer holds its tickets, in seconds.
    offer_secs: i32,
    /// Whether buyers may return tickets of their orders to the waitlist.
    returns_allowed: bool,
    /// Tickets offered for return that nobody has bought yet (still valid for their buyers).
    returns_pending: i64,
    /// Tickets returned: bought by other buyers, their first orders refunded when paid.
    tickets_returned: i64,
}

impl From<waitlist::WaitlistFigures> for AdminWaitlist {
    fn from(w: waitlist::WaitlistFigures) -> Self {
        AdminWaitlist {
            waiting: w.counts.waiting,
            offers_out: w.counts.offered,
            offers_taken: w.counts.taken,
            offers_lapsed: w.counts.lapsed,
            left: w.counts.left,
            offer_secs: w.offer_secs,
            returns_allowed: w.returns_allowed,
            returns_pending: w.returns.pending,
            tickets_returned: w.returns.returned,
        }
    }
}

/// One entry of a sale's waitlist.
#[derive(Object)]
pub struct AdminWaitlistEntry {
    email: String,
    quantity: i16,
    /// The place in line: the sale's arrival number (a buyer who was in the queue keeps its
    /// own); lower comes first.
    rank: i64,
    /// waiting, offered, taken (the offer became an order), lapsed (the offer ended unbought)
    /// or left.
    state: String,
    /// When the offer's hold ends, while offered; null otherwise.
    #[oai(nullable)]
    offer_expires_at: Option<DateTime<Utc>>,
}

impl From<EntryRecord> for AdminWaitlistEntry {
    fn from(e: EntryRecord) -> Self {
        AdminWaitlistEntry {
            email: e.email,
            quantity: e.quantity,
            rank: e.rank,
            state: e.state,
            offer_expires_at: e.offer_expires_at,
        }
    }
}

/// One page of a sale's waitlist entries, in line order.
#[derive(Object)]
pub struct AdminWaitlistPage {
    entries: Vec<AdminWaitlistEntry>,
    page: i64,
    per_page: i64,
    /// Entries of the sale in all.
    total: i64,
}

impl From<waitlist::EntryPage> for AdminWaitlistPage {
    fn from(p: waitlist::EntryPage) -> Self {
        AdminWaitlistPage {
            entries: p.entries.into_iter().map(Into::into).collect(),
            page: p.page,
            per_page: p.per_page,
            total: p.total,
        }
    }
}

/// A new offer window, or whether returns are taken; a field null or left out stays as it is.
#[derive(Object)]
pub struct AdminWaitlistPatch {
    /// Seconds, 60 to 86400.
    #[oai(nullable)]
    offer_secs: Option<WholeNumber<60, 86_400>>,
    /// Whether buyers may return tickets of their orders to the waitlist.
    #[oai(nullable)]
    returns_allowed: Option<bool>,
}

/// A raised capacity.
#[derive(Object)]
pub struct AdminCapacityInput {
    /// More than the sale's capacity now, at most the event's seats.
    capacity: WholeNumber<1, MAX_CAPACITY>,
}
