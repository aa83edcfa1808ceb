//! The organizer JSON API under `/api/v1/admin/`, in the same OpenAPI document as the buyer
//! API. A request carries `Authorization: Bearer <token>`; the token is one the organizer made
//! in the portal or with `boxoffice organizer token`. The operations are the portal's own
//! (`events`, `sales`, `dashboard`), so their rules and ownership checks are the same:
//! another organizer's event or sale is a 404, exactly like a missing one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme, Tags};
use uuid::Uuid;

use super::dashboard::{self, PAGE_SIZE, page_offset};
use super::forms::{
    EventDraft, EventFields, EventText, FieldErrors, MAX_CAPACITY, MAX_DESCRIPTION, MAX_HOLD_SECS, MAX_PRICE_MINOR,
    MAX_TITLE, NOT_A_WHOLE_NUMBER, Parsed, SaleFields, api_time,
};
use super::{AdminError, events, sales, tokens};
use crate::db;
use crate::db::events::Event;
use crate::db::orders::Order;
use crate::db::sales::SaleRecord;
use crate::sale::SaleState;
use crate::startup::AppState;
use crate::web::api_fields::{Fixed, OneOf, PLAIN_TEXT, Required, SaleStates, Text, TextRule, WholeNumber};
use crate::web::error::RETRY_AFTER_SECS;

/// The organizer API.
pub struct AdminApi;

#[derive(Tags)]
enum AdminTag {
    /// The organizer's events, ticket sales and dashboards (bearer token).
    Organizer,
}

/// `Authorization: Bearer <token>`, a token made in the portal under API tokens.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct OrganizerToken(Bearer);

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

fn answer<T: ToJSON>(r: Result<T, AdminError>) -> Answer<T> {
    r.map_or_else(Answer::from, |v| Answer::Ok(Json(v)))
}

fn created<T: ToJSON>(r: Result<T, AdminError>) -> Answer<T> {
    r.map_or_else(Answer::from, |v| Answer::Created(Json(v)))
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

/// A new event. Every field but `currency` (EUR by default) is required; the bounds are those
/// of the portal's form. The times' rules relative to now are checked by the handler, which
/// names the field in a 422, as it does for every other rule.
#[derive(Object)]
pub struct AdminEventInput {
    title: Required<Text<TitleRule>>,
    description: Required<Text<DescriptionRule>>,
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

/// A change to an event: only `title` and `description` may change after creation (null or
/// left out keeps them); the other fields are read-only, and one given is refused (422).
#[derive(Object)]
pub struct AdminEventPatch {
    #[oai(nullable)]
    title: Option<Text<TitleRule>>,
    #[oai(nullable)]
    description: Option<Text<DescriptionRule>>,
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
    /// Over about the last minute, once this instance has two readings some seconds apart;
    /// null until then.
    #[oai(nullable)]
    admitted_per_minute: Option<f64>,
    orders: i64,
    revenue_minor: i64,
    currency: String,
    as_of: DateTime<Utc>,
}

#[derive(Object)]
pub struct AdminOrder {
    number: String,
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

async fn who(state: &AppState, token: &OrganizerToken) -> Result<Uuid, AdminError> {
    tokens::organizer_for(&state.db, &token.0.token).await
}

#[OpenApi(prefix_path = "/admin", tag = "AdminTag::Organizer")]
impl AdminApi {
    /// Create an event.
    #[oai(path = "/events", method = "post")]
    async fn create_event(
        &self,
        state: Data<&AppState>,
        auth: OrganizerToken,
        body: Json<AdminEventInput>,
    ) -> Answer<AdminEvent> {
        created(
            async {
                let me = who(&state, &auth).await?;
                let b = &body.0;
                let fields = EventFields {
                    title: b.title.as_deref(),
                    description: b.description.as_deref(),
                    starts_at: api_time(b.starts_at.as_deref()),
                    ends_at: api_time(b.ends_at.as_deref()),
                    capacity: whole_number(&b.capacity),
                    price_minor: whole_number(&b.price_minor),
                    currency: b.currency.as_deref(),
                };
                let draft = EventDraft::parse(fields, Utc::now()).map_err(|mut e| {
                    // The API names the price by its unit.
                    if let Some(m) = e.0.remove("price") {
                        e.add("price_minor", m);
                    }
                    AdminError::Invalid(e)
                })?;
                Ok(events::create(&state, me, draft).await?.into())
            }
            .await,
        )
    }

    /// Your events, newest first.
    #[oai(path = "/events", method = "get")]
    async fn list_events(&self, state: Data<&AppState>, auth: OrganizerToken) -> Answer<Vec<AdminEvent>> {
        answer(
            async {
                let me = who(&state, &auth).await?;
                let events = db::events::list_for_organizer(&state.db, me).await?;
                Ok(events.into_iter().map(Into::into).collect())
            }
            .await,
        )
    }

    /// The ticket sales of one of your events, oldest first.
    #[oai(path = "/events/:event/sales", method = "get")]
    async fn list_sales(
        &self,
        state: Data<&AppState>,
        auth: OrganizerToken,
        event: Path<String>,
    ) -> Answer<Vec<AdminSale>> {
        answer(
            async {
                let me = who(&state, &auth).await?;
                let event = events::owned(&state.db, me, events::parse_id(&event)?).await?;
                let sales = db::sales::list_for_event(&state.db, event.id).await?;
                Ok(sales.into_iter().map(Into::into).collect())
            }
            .await,
        )
    }

    /// One of your events.
    #[oai(path = "/events/:event", method = "get")]
    async fn get_event(&self, state: Data<&AppState>, auth: OrganizerToken, event: Path<String>) -> Answer<AdminEvent> {
        answer(
            async {
                let me = who(&state, &auth).await?;
                Ok(events::owned(&state.db, me, events::parse_id(&event)?).await?.into())
            }
            .await,
        )
    }

    /// Change the title or description of one of your events (nothing else can change).
    #[oai(path = "/events/:event", method = "patch")]
    async fn patch_event(
        &self,
        state: Data<&AppState>,
        auth: OrganizerToken,
        event: Path<String>,
        body: Json<AdminEventPatch>,
    ) -> Answer<AdminEvent> {
        answer(
            async {
                let me = who(&state, &auth).await?;
                let current = events::owned(&state.db, me, events::parse_id(&event)?).await?;
                let b = &body.0;
                let mut fixed = FieldErrors::default();
                for (name, given) in [
                    ("starts_at", &b.starts_at),
                    ("ends_at", &b.ends_at),
                    ("capacity", &b.capacity),
                    ("price_minor", &b.price_minor),
                    ("currency", &b.currency),
                ] {
                    if given.is_some() {
                        fixed.add(name, "Only the title and description can change after creation.");
                    }
                }
                if !fixed.is_empty() {
                    return Err(AdminError::Invalid(fixed));
                }
                let text = EventText::parse(
                    Some(b.title.as_deref().unwrap_or(&current.title)),
                    Some(b.description.as_deref().unwrap_or(&current.description)),
                )
                .map_err(AdminError::Invalid)?;
                Ok(events::edit(&state.db, me, current.id, text).await?.into())
            }
            .await,
        )
    }

    /// Open a ticket sale of one of your events. Its price is the event's.
    #[oai(path = "/events/:event/sales", method = "post")]
    async fn create_sale(
        &self,
        state: Data<&AppState>,
        auth: OrganizerToken,
        event: Path<String>,
        body: Json<AdminSaleInput>,
    ) -> Answer<AdminSale> {
        created(
            async {
                let me = who(&state, &auth).await?;
                let b = &body.0;
                let fields = SaleFields {
                    capacity: whole_number(&b.capacity),
                    opens_at: api_time(b.opens_at.as_deref()),
                    hold_secs: whole_number(&b.hold_secs),
                    max_active: whole_number(&b.max_active),
                };
                let (_, sale) = sales::create(&state, me, events::parse_id(&event)?, fields).await?;
                Ok(sale.into())
            }
            .await,
        )
    }

    /// A sale's dashboard figures.
    #[oai(path = "/sales/:sale", method = "get")]
    async fn get_sale(
        &self,
        state: Data<&AppState>,
        auth: OrganizerToken,
        sale: Path<String>,
    ) -> Answer<AdminSaleFigures> {
        answer(
            async {
                let me = who(&state, &auth).await?;
                let (sale, _) = dashboard::owned_with_event(&state, me, &sale).await?;
                let f = dashboard::figures(&state, &sale).await?;
                Ok(AdminSaleFigures {
                    state: f.live.state.as_str().into(),
                    capacity: f.live.capacity,
                    sold: f.live.sold,
                    held: f.live.held,
                    waiting: f.live.waiting,
                    admitted: f.live.admitted,
                    admitted_per_minute: f.admitted_per_minute,
                    orders: f.totals.orders,
                    revenue_minor: f.totals.revenue_minor,
                    currency: sale.currency.clone(),
                    as_of: f.live.server_now,
                    sale: sale.into(),
                })
            }
            .await,
        )
    }

    /// Pause (`paused`), resume (`open`) or close (`closed`, final) a sale.
    #[oai(path = "/sales/:sale", method = "patch")]
    async fn patch_sale(
        &self,
        state: Data<&AppState>,
        auth: OrganizerToken,
        sale: Path<String>,
        body: Json<AdminSalePatch>,
    ) -> Answer<AdminSale> {
        answer(
            async {
                let me = who(&state, &auth).await?;
                let want: SaleState = body
                    .0
                    .state
                    .parse()
                    .map_err(|_| AdminError::Invalid(FieldErrors::one("state", "One of open, paused, closed.")))?;
                Ok(sales::set_state(&state, me, &sale, want).await?.into())
            }
            .await,
        )
    }

    /// A sale's orders, newest first.
    #[oai(path = "/sales/:sale/orders", method = "get")]
    async fn sale_orders(
        &self,
        state: Data<&AppState>,
        auth: OrganizerToken,
        sale: Path<String>,
        /// 1 and up.
        page: Query<Option<i64>>,
        /// 1–500; 25 by default.
        per_page: Query<Option<i64>>,
    ) -> Answer<AdminOrderPage> {
        answer(
            async {
                let me = who(&state, &auth).await?;
                let sale = sales::owned_sale(&state, me, &sale).await?;
                let per_page = per_page.0.unwrap_or(PAGE_SIZE).clamp(1, 500);
                let (page, offset) = page_offset(page.0, per_page);
                let orders = db::orders::list_for_sale(&state.db, sale.sale_id(), per_page, offset).await?;
                let total = db::orders::totals_for_sale(&state.db, sale.sale_id()).await?.orders;
                Ok(AdminOrderPage {
                    orders: orders.into_iter().map(Into::into).collect(),
                    page,
                    per_page,
                    total,
                })
            }
            .await,
        )
    }
}
