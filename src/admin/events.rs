//! Events: create one, list one's own, edit the title and description of one's own. The
//! operations here serve the pages and the API alike.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

use super::auth::{organizer, see_other};
use super::forms::{EventDraft, EventFields, EventText, FieldErrors, form_int, form_price, form_time, show_price};
use super::views::{admin_page, csrf_field, field};
use super::{AdminError, csrf, sales};
use crate::db;
use crate::db::events::{Event, NewEvent};
use crate::startup::AppState;

/// Creates an event for `organizer`, unless it has `BOXOFFICE_MAX_LIVE_EVENTS` events that
/// have not ended: the count and the insert hold the organizer's lock, so concurrent requests
/// cannot pass the limit together.
pub async fn create(state: &AppState, organizer: Uuid, d: EventDraft) -> Result<Event, AdminError> {
    let limit = state.settings.max_live_events;
    let mut tx = state.db.begin().await?;
    db::organizers::lock(&mut *tx, organizer).await?;
    if db::events::count_live_of_organizer(&mut *tx, organizer).await? >= i64::from(limit) {
        return Err(AdminError::LimitReached(format!(
            "An account may have {limit} events that have not ended yet; this one has as many."
        )));
    }
    let event = db::events::insert(
        &mut *tx,
        &NewEvent {
            organizer_id: organizer,
            title: d.text.title,
            description: d.text.description,
            venue: String::new(),
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

/// The organizer's own event; anyone else's is `NotFound`.
pub async fn owned(db: &PgPool, organizer: Uuid, id: Uuid) -> Result<Event, AdminError> {
    db::events::find_owned(db, id, organizer)
        .await?
        .ok_or(AdminError::NotFound)
}

/// Changes title and description of the organizer's own event.
pub async fn edit(db: &PgPool, organizer: Uuid, id: Uuid, text: EventText) -> Result<Event, AdminError> {
    db::events::update_text(db, id, organizer, &text.title, &text.description)
        .await?
        .ok_or(AdminError::NotFound)
}

/// An id from a path: anything that is not a UUID is simply not found.
pub fn parse_id(s: &str) -> Result<Uuid, AdminError> {
    Uuid::try_parse(s).map_err(|_| AdminError::NotFound)
}

pub fn show_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time as a `datetime-local` value (UTC).
pub fn input_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[handler]
pub async fn list(state: Data<&AppState>, session: Data<&Session>) -> Result<Markup, AdminError> {
    let me = organizer(&session).await?;
    let token = csrf::token(&session).await?;
    let events = db::events::list_for_organizer(&state.db, me).await?;
    Ok(admin_page(
        "Your events",
        Some(&token),
        html! {
            h1 { "Your events" }
            p { a href="/admin/events/new" { "Create an event" } }
            @if events.is_empty() {
                p { "No events yet." }
            } @else {
                table {
                    thead { tr { th { "Event" } th { "Starts" } th { "Capacity" } th { "Price" } } }
                    tbody {
                        @for e in &events {
                            tr {
                                td { a href={ "/admin/events/" (e.id) } { (e.title) } }
                                td { (show_time(e.starts_at)) }
                                td { (e.capacity) }
                                td { (show_price(e.price_minor)) " " (e.currency) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// The new-event form as typed, so that a refused form comes back with its values.
#[derive(Deserialize, Default)]
pub struct EventForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    currency: String,
}

fn new_event_page(token: &str, f: &EventForm, errors: &FieldErrors) -> Markup {
    let currency = if f.currency.is_empty() { "EUR" } else { &f.currency };
    admin_page(
        "New event",
        Some(token),
        html! {
            h1 { "New event" }
            form method="post" action="/admin/events/new" {
                (csrf_field(token))
                (field("Title", "title", "text", &f.title, errors, None))
                (field("Description", "description", "textarea", &f.description, errors, None))
                (field("Starts (UTC)", "starts_at", "datetime-local", &f.starts_at, errors, Some("Times are in UTC.")))
                (field("Ends (UTC)", "ends_at", "datetime-local", &f.ends_at, errors, None))
                (field("Capacity", "capacity", "number", &f.capacity, errors, Some("Tickets in all.")))
                (field("Price", "price", "text", &f.price, errors, Some("Per ticket, such as 25.00.")))
                (field("Currency", "currency", "text", currency, errors, None))
                p.hint { "After creation only the title and description can change." }
                button type="submit" { "Create event" }
            }
        },
    )
}

#[handler]
pub async fn new_form(session: Data<&Session>) -> Result<Markup, AdminError> {
    organizer(&session).await?;
    let token = csrf::token(&session).await?;
    Ok(new_event_page(&token, &EventForm::default(), &FieldErrors::default()))
}

#[handler]
pub async fn create_from_form(
    state: Data<&AppState>,
    session: Data<&Session>,
    Form(f): Form<EventForm>,
) -> Result<Response, AdminError> {
    let me = organizer(&session).await?;
    csrf::verify(&session, &f.csrf).await?;
    let fields = EventFields {
        title: Some(&f.title),
        description: Some(&f.description),
        starts_at: form_time(Some(&f.starts_at)),
        ends_at: form_time(Some(&f.ends_at)),
        capacity: form_int(Some(&f.capacity)),
        price_minor: form_price(Some(&f.price)),
        currency: Some(&f.currency),
    };
    match EventDraft::parse(fields, Utc::now()) {
        Ok(draft) => {
            let event = create(&state, me, draft).await?;
            Ok(see_other(&format!("/admin/events/{}", event.id)))
        }
        Err(errors) => {
            let token = csrf::token(&session).await?;
            Ok(new_event_page(&token, &f, &errors)
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .into_response())
        }
    }
}

/// The event page: its fixed facts, the edit form for title and description, its sales and
/// the form that opens a new sale.
pub struct EventPage<'a> {
    pub token: &'a str,
    pub event: &'a Event,
    pub sales: &'a [db::sales::SaleRecord],
    /// Title and description as typed.
    pub text: (&'a str, &'a str),
    pub text_errors: &'a FieldErrors,
    pub sale_form: &'a sales::SaleForm,
    pub sale_errors: &'a FieldErrors,
    pub default_hold_secs: u32,
}

pub fn event_page(p: EventPage<'_>) -> Markup {
    let EventPage {
        token,
        event,
        sales,
        text,
        text_errors,
        sale_form,
        sale_errors,
        default_hold_secs,
    } = p;
    admin_page(
        &event.title,
        Some(token),
        html! {
            h1 { (event.title) }
            dl {
                dt { "Starts" } dd { (show_time(event.starts_at)) }
                dt { "Ends" } dd { (show_time(event.ends_at)) }
                dt { "Capacity" } dd { (event.capacity) }
                dt { "Price" } dd { (show_price(event.price_minor)) " " (event.currency) }
            }
            h2 { "Ticket sales" }
            @if sales.is_empty() {
                p { "No ticket sale yet." }
            } @else {
                table {
                    thead { tr { th { "Sale" } th { "Opens" } th { "Capacity" } th { "Sold" } th { "State" } } }
                    tbody {
                        @for s in sales {
                            tr {
                                td { a href={ "/admin/sales/" (s.id) } { "Dashboard" } }
                                td { (show_time(s.opens_at)) }
                                td { (s.capacity) }
                                td { (s.sold) }
                                td { (s.state) }
                            }
                        }
                    }
                }
            }
            h3 { "Open a ticket sale" }
            (sales::new_sale_form(token, event, sale_form, sale_errors, default_hold_secs))
            h2 { "Edit" }
            form method="post" action={ "/admin/events/" (event.id) } {
                (csrf_field(token))
                (field("Title", "title", "text", text.0, text_errors, None))
                (field("Description", "description", "textarea", text.1, text_errors, None))
                button type="submit" { "Save" }
            }
        },
    )
}

#[handler]
pub async fn show(
    state: Data<&AppState>,
    session: Data<&Session>,
    Path(id): Path<String>,
) -> Result<Markup, AdminError> {
    let me = organizer(&session).await?;
    let event = owned(&state.db, me, parse_id(&id)?).await?;
    let sales = db::sales::list_for_event(&state.db, event.id).await?;
    let token = csrf::token(&session).await?;
    Ok(event_page(EventPage {
        token: &token,
        event: &event,
        sales: &sales,
        text: (&event.title, &event.description),
        text_errors: &FieldErrors::default(),
        sale_form: &sales::SaleForm::default(),
        sale_errors: &FieldErrors::default(),
        default_hold_secs: state.settings.hold_secs,
    }))
}

#[derive(Deserialize)]
pub struct TextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
}

#[handler]
pub async fn edit_from_form(
    state: Data<&AppState>,
    session: Data<&Session>,
    Path(id): Path<String>,
    Form(f): Form<TextForm>,
) -> Result<Response, AdminError> {
    let me = organizer(&session).await?;
    csrf::verify(&session, &f.csrf).await?;
    let event = owned(&state.db, me, parse_id(&id)?).await?;
    match EventText::parse(Some(&f.title), Some(&f.description)) {
        Ok(text) => {
            edit(&state.db, me, event.id, text).await?;
            Ok(see_other(&format!("/admin/events/{}", event.id)))
        }
        Err(errors) => {
            let sales = db::sales::list_for_event(&state.db, event.id).await?;
            let token = csrf::token(&session).await?;
            Ok(event_page(EventPage {
                token: &token,
                event: &event,
                sales: &sales,
                text: (&f.title, &f.description),
                text_errors: &errors,
                sale_form: &sales::SaleForm::default(),
                sale_errors: &FieldErrors::default(),
                default_hold_secs: state.settings.hold_secs,
            })
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
    }
}
