//! The organizer service: everything an organizer can do to events, ticket sales, orders, API
//! tokens and invites, whoever asks (the portal's pages or the JSON API). Each function takes
//! the [`Organizer`] and returns values or one [`ServiceError`]; nothing here knows about HTTP
//! or HTML, so the pages and the API are thin adapters that read their own representation
//! into the fields of [`super::forms`] and render what comes back.
//!
//! Ownership is checked here, once: another organizer's event or sale is
//! [`ServiceError::NotFound`], exactly like a missing one, so ids cannot be probed.

use chrono::Utc;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::forms::{EventDraft, EventFields, EventText, FieldErrors, SaleDraft, SaleFields};
use crate::db;
use crate::db::api_tokens::ApiToken;
use crate::db::events::{Event, NewEvent};
use crate::db::invites::Invite;
use crate::db::orders::{Order, SaleTotals};
use crate::db::sales::{NewSale, SaleRecord};
use crate::db::tickets::CheckIn;
use crate::sale::{SaleError, SaleFigures, SaleId, SaleState};
use crate::startup::AppState;

/// A signed-in organizer (from the portal's session or an API token): the one whose events,
/// sales and orders every operation here is limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Organizer(pub Uuid);

/// Why an operation did not happen; nothing was changed. What a user reads is said by
/// `AdminError`, which each variant becomes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such event, sale or token of this organizer (or another organizer's).
    #[error("no such event, sale or token of this organizer")]
    NotFound,
    /// Fields that do not pass, each with its message.
    #[error("fields that do not pass: {0:?}")]
    Invalid(FieldErrors),
    /// The request contradicts the current state (a closed sale cannot reopen).
    #[error("{0}")]
    Conflict(&'static str),
    /// The organizer has as many events or sales as one account may have.
    #[error("{0}")]
    LimitReached(String),
    /// Postgres did not answer.
    #[error("Postgres failed: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The sale service's own errors.
    #[error("the sale service: {0}")]
    Sale(#[from] SaleError),
}

type Result<T> = std::result::Result<T, ServiceError>;

/// An id as a client wrote it: anything that is not a UUID is simply not found.
pub fn parse_id(s: &str) -> Result<Uuid> {
    Uuid::try_parse(s).map_err(|_| ServiceError::NotFound)
}

// Events.

/// Creates an event, unless the organizer has `BOXOFFICE_MAX_LIVE_EVENTS` events that have
/// not ended: the count and the insert hold the organizer's lock, so concurrent requests
/// cannot pass the limit together.
pub async fn create_event(state: &AppState, me: Organizer, fields: EventFields<'_>) -> Result<Event> {
    let d = EventDraft::parse(fields, Utc::now()).map_err(ServiceError::Invalid)?;
    let limit = state.settings.max_live_events;
    let mut tx = state.db.begin().await?;
    db::organizers::lock(&mut *tx, me.0).await?;
    if db::events::count_live_of_organizer(&mut *tx, me.0).await? >= i64::from(limit) {
        return Err(ServiceError::LimitReached(format!(
            "An account may have {limit} events that have not ended yet; this one has as many."
        )));
    }
    let event = db::events::insert(
        &mut *tx,
        &NewEvent {
            organizer_id: me.0,
            title: d.text.title,
            description: d.text.description,
            venue: d.text.venue,
            starts_at: d.starts_at,
            ends_at: d.ends_at,
            capacity: d.capacity,
            price_minor: d.price_minor,
            currency: d.currency,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// The organizer's events, newest first.
pub async fn events(state: &AppState, me: Organizer) -> Result<Vec<Event>> {
    Ok(db::events::list_for_organizer(&state.db, me.0).await?)
}

/// The organizer's own event.
pub async fn event(state: &AppState, me: Organizer, id: Uuid) -> Result<Event> {
    db::events::find_owned(&state.db, id, me.0)
        .await?
        .ok_or(ServiceError::NotFound)
}

/// What may change of an event after creation; a field left out keeps its value.
#[derive(Default)]
pub struct EventEdit<'a> {
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    pub venue: Option<&'a str>,
}

/// Changes the title, description or venue of the organizer's own event; nothing else of an
/// event changes after creation, and its sales are not touched.
pub async fn edit_event(state: &AppState, me: Organizer, id: Uuid, edit: EventEdit<'_>) -> Result<Event> {
    let current = event(state, me, id).await?;
    let text = EventText::parse(
        Some(edit.title.unwrap_or(&current.title)),
        Some(edit.description.unwrap_or(&current.description)),
        Some(edit.venue.unwrap_or(&current.venue)),
    )
    .map_err(ServiceError::Invalid)?;
    db::events::update_text(&state.db, id, me.0, &text.title, &text.description, &text.venue)
        .await?
        .ok_or(ServiceError::NotFound)
}

// Sales.

/// The sales of one of the organizer's events, oldest first.
pub async fn sales_of(state: &AppState, event: &Event) -> Result<Vec<SaleRecord>> {
    Ok(db::sales::list_for_event(&state.db, event.id).await?)
}

/// Opens a sale of the organizer's own event: capacity, price and currency are copied now,
/// so later changes to the event never reach the sale. An event has at most
/// `BOXOFFICE_MAX_SALES_PER_EVENT` sales, closed ones included. The sale is written to
/// Postgres and then handed to the sale service (`TicketSales::sync`), which makes its live
/// state in Redis.
pub async fn open_sale(state: &AppState, me: Organizer, event_id: Uuid, fields: SaleFields) -> Result<SaleRecord> {
    let event = event(state, me, event_id).await?;
    let sends_mail = state.settings.smtp_url.is_some();
    let draft = SaleDraft::parse(fields, event.capacity, state.settings.hold_secs, sends_mail, Utc::now())
        .map_err(ServiceError::Invalid)?;
    // As for events: count and insert under the organizer's lock, so concurrent requests
    // cannot pass the limit together.
    let limit = state.settings.max_sales_per_event;
    let mut tx = state.db.begin().await?;
    db::organizers::lock(&mut *tx, me.0).await?;
    if db::sales::count_for_event(&mut *tx, event.id).await? >= i64::from(limit) {
        return Err(ServiceError::LimitReached(format!(
            "An event may have {limit} ticket sales, closed ones included; this one has as many."
        )));
    }
    let sale = db::sales::insert(
        &mut *tx,
        &NewSale {
            event_id: event.id,
            capacity: draft.capacity,
            price_minor: event.price_minor,
            currency: event.currency.clone(),
            opens_at: draft.opens_at,
            hold_secs: draft.hold_secs,
            max_active: draft.max_active,
            prequeue_secs: draft.prequeue_secs,
            one_place_per_email: draft.one_place_per_email,
        },
    )
    .await?;
    tx.commit().await?;
    // The sale is recorded: were Redis down now, the first buyer or the next reconciliation
    // builds its live state. Failing here would invite a retry that opens a second sale.
    if let Err(e) = state.sales.sync(sale.sale_id()).await {
        tracing::warn!(sale = %sale.id, error = %e, "a new sale is not in Redis yet; it will be built on first use");
    }
    Ok(sale)
}

/// The organizer's own sale.
pub async fn sale(state: &AppState, me: Organizer, id: Uuid) -> Result<SaleRecord> {
    db::sales::find_owned(&state.db, SaleId(id), me.0)
        .await?
        .ok_or(ServiceError::NotFound)
}

/// The organizer's own sale with its event.
pub async fn sale_with_event(state: &AppState, me: Organizer, id: Uuid) -> Result<(SaleRecord, Event)> {
    let sale = sale(state, me, id).await?;
    let event = event(state, me, sale.event_id).await?;
    Ok((sale, event))
}

/// Moves the organizer's sale to `want`: open ↔ paused, and either to closed, which is final.
/// Later state changes go through `TicketSales::set_state` alone.
pub async fn set_sale_state(state: &AppState, me: Organizer, id: Uuid, want: SaleState) -> Result<SaleRecord> {
    const CLOSED: &str = "A closed sale cannot be opened again.";
    let sale = sale(state, me, id).await?;
    let current = sale.sale_state();
    if current == SaleState::Closed && want != SaleState::Closed {
        return Err(ServiceError::Conflict(CLOSED));
    }
    if current == want {
        // Already so in Postgres; Redis may have missed it (it was away): tell it again.
        state.sales.sync(sale.sale_id()).await?;
        return Ok(sale);
    }
    match state.sales.set_state(sale.sale_id(), want).await {
        // Closed in the meantime by another request: closing is final.
        Err(SaleError::UnknownSale) => return Err(ServiceError::Conflict(CLOSED)),
        other => other?,
    }
    Ok(SaleRecord {
        state: want.as_str().to_string(),
        ..sale
    })
}

// The door.

/// Longer than any ticket code by far: a scanner that read something else gets "not a
/// ticket", only nonsense of this size is refused as input.
pub const MAX_TICKET_CODE_LEN: usize = 200;

/// Checks `code` in at the door of the organizer's sale `id`: a ticket is admitted once,
/// whichever door scans it first (one Postgres statement, `db::tickets::check_in`).
pub async fn check_in(state: &AppState, me: Organizer, id: Uuid, code: &str) -> Result<CheckIn> {
    let sale = sale(state, me, id).await?;
    // The bound is on what was sent, in characters as the API's document counts them: a code
    // padded with spaces past it is refused, not trimmed back under it.
    if code.chars().count() > MAX_TICKET_CODE_LEN {
        return Err(ServiceError::Invalid(FieldErrors::one(
            "code",
            "That is far too long to be a ticket code.",
        )));
    }
    let code = code.trim();
    if code.is_empty() {
        return Err(ServiceError::Invalid(FieldErrors::one(
            "code",
            "Type or scan a ticket code.",
        )));
    }
    Ok(db::tickets::check_in(&state.db, sale.sale_id(), code).await?)
}

/// How many of the tickets of the event of the organizer's sale have been admitted, of all.
pub async fn admitted_at_the_door(state: &AppState, sale: &SaleRecord) -> Result<(i64, i64)> {
    Ok(db::tickets::admitted_of_event(&state.db, sale.sale_id()).await?)
}

// Figures and orders.

/// What the dashboard shows of a sale right now.
pub struct Figures {
    pub live: SaleFigures,
    /// Buyers admitted to checkout per minute over the last minute, the sale's one rate (the
    /// waiting room's estimate reads the same); `None` before its first whole window.
    pub admitted_per_minute: Option<f64>,
    pub totals: SaleTotals,
}

/// The live figures of the organizer's own sale.
pub async fn figures(state: &AppState, sale: &SaleRecord) -> Result<Figures> {
    let live = state.sales.figures(sale.sale_id()).await?;
    let totals = db::orders::totals_for_sale(&state.db, sale.sale_id()).await?;
    let admitted_per_minute = live.admission_rate.per_minute;
    Ok(Figures {
        live,
        admitted_per_minute,
        totals,
    })
}

/// Orders on one page of the dashboard (and the API's default page size).
pub const PAGE_SIZE: i64 = 25;
/// The most orders one page of the API holds.
pub const MAX_PAGE_SIZE: i64 = 500;

/// One page of a sale's orders, newest first.
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// From 1.
    pub page: i64,
    pub per_page: i64,
    /// Orders of the sale in all.
    pub total: i64,
}

impl OrderPage {
    /// Whether older orders follow this page.
    pub fn has_more(&self) -> bool {
        (self.page - 1) * self.per_page + (self.orders.len() as i64) < self.total
    }
}

/// A page of the sale's orders. Page numbers start at 1; nonsense means the first page. Page
/// sizes are held to 1–[`MAX_PAGE_SIZE`], [`PAGE_SIZE`] when not given.
pub async fn orders(
    state: &AppState,
    sale: &SaleRecord,
    page: Option<i64>,
    per_page: Option<i64>,
) -> Result<OrderPage> {
    let (page, per_page, offset) = page_window(page, per_page);
    let orders = db::orders::list_for_sale(&state.db, sale.sale_id(), per_page, offset).await?;
    let total = db::orders::totals_for_sale(&state.db, sale.sale_id()).await?.orders;
    Ok(OrderPage {
        orders,
        page,
        per_page,
        total,
    })
}

/// The page, its size (1–[`MAX_PAGE_SIZE`], [`PAGE_SIZE`] when not given) and its offset in
/// rows, for any list of the API that pages.
pub fn page_window(page: Option<i64>, per_page: Option<i64>) -> (i64, i64, i64) {
    let per_page = per_page.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let (page, offset) = page_offset(page, per_page);
    (page, per_page, offset)
}

fn page_offset(page: Option<i64>, per_page: i64) -> (i64, i64) {
    let page = page.filter(|p| (1..=1_000_000).contains(p)).unwrap_or(1);
    (page, (page - 1) * per_page)
}

/// Every order of the sale, newest first, in one statement and so one snapshot: orders
/// arriving meanwhile cannot shift rows between pages and repeat them.
pub async fn all_orders(state: &AppState, sale: &SaleRecord) -> Result<Vec<Order>> {
    Ok(db::orders::list_for_sale(&state.db, sale.sale_id(), i64::MAX, 0).await?)
}

// API tokens and invites: secrets shown once, stored as their SHA-256 only.

/// A new secret: `prefix` and 244 random bits (two v4 UUIDs) in hex. API tokens and invite
/// links are made of it.
fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Makes an API token for the organizer and returns it; this is the only time it is seen. The
/// label is kept as plain text of at most 100 characters, whoever gives it (portal or command
/// line).
pub async fn issue_token(db: &PgPool, me: Organizer, label: &str) -> Result<String> {
    let token = new_secret("bo_");
    let label: String = label.trim().chars().filter(|c| !c.is_control()).take(100).collect();
    db::api_tokens::insert(db, me.0, &digest(&token), &label).await?;
    Ok(token)
}

/// The organizer a bearer token belongs to, if any.
pub async fn organizer_of_token(db: &PgPool, token: &str) -> Result<Option<Organizer>> {
    Ok(db::api_tokens::organizer_for(db, &digest(token)).await?.map(Organizer))
}

/// The organizer's API tokens.
pub async fn tokens(state: &AppState, me: Organizer) -> Result<Vec<ApiToken>> {
    Ok(db::api_tokens::list_for_organizer(&state.db, me.0).await?)
}

/// Revokes one of the organizer's tokens.
pub async fn revoke_token(state: &AppState, me: Organizer, id: Uuid) -> Result<()> {
    if db::api_tokens::delete(&state.db, id, me.0).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// How long an invite link works.
pub const INVITE_DAYS: i64 = 7;

/// Makes an invite from the organizer and returns the path of its link
/// (`/admin/sign-up?invite=…`); this is the only time the link is seen.
pub async fn issue_invite(db: &PgPool, me: Organizer) -> Result<String> {
    let secret = new_secret("inv_");
    db::invites::insert(
        db,
        me.0,
        &digest(&secret),
        Utc::now() + chrono::Duration::days(INVITE_DAYS),
    )
    .await?;
    Ok(format!("/admin/sign-up?invite={secret}"))
}

/// The organizer's invites.
pub async fn invites(state: &AppState, me: Organizer) -> Result<Vec<Invite>> {
    Ok(db::invites::list_for_organizer(&state.db, me.0).await?)
}

/// Whether the invite in a sign-up link can still make an account.
pub async fn invite_is_usable(db: &PgPool, secret: &str) -> Result<bool> {
    Ok(db::invites::is_usable(db, &digest(secret)).await?)
}

/// Uses the invite inside the transaction that makes the account; false when it is unknown,
/// used or expired. Of two sign-ups with one invite, one wins: see [`db::invites::consume`].
pub async fn consume_invite(tx: &mut sqlx::PgConnection, secret: &str) -> Result<bool> {
    Ok(db::invites::consume(tx, &digest(secret)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_start_at_one() {
        assert_eq!(page_offset(None, 25), (1, 0));
        assert_eq!(page_offset(Some(0), 25), (1, 0));
        assert_eq!(page_offset(Some(3), 25), (3, 50));
    }
}
