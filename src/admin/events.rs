//! The portal's event pages: the list of one's events, the new-event form, and the event page
//! with its sales, the form that opens a sale and the form that edits the event. The
//! operations are the organizer service's.

use chrono::Utc;
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::auth::see_other;
use super::extract::CsrfForm;
use super::forms::{EventFields, FieldErrors, form_int, form_price, form_time, show_price};
use super::service::{self, EventEdit, Organizer, ServiceError};
use super::views::{admin_page, csrf_field, field, input_time, show_time};
use super::{AdminError, csrf};
use crate::db::events::Event;
use crate::db::sales::SaleRecord;
use crate::startup::AppState;

#[handler]
pub async fn list(state: Data<&AppState>, me: Organizer, session: Data<&Session>) -> Result<Markup, AdminError> {
    let token = csrf::token(&session).await?;
    let events = service::events(&state, me).await?;
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
#[serde(default)]
pub struct EventForm {
    title: String,
    description: String,
    venue: String,
    starts_at: String,
    ends_at: String,
    capacity: String,
    price: String,
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
                (field("Venue", "venue", "text", &f.venue, errors, Some("Where it takes place; may be left empty.")))
                (field("Starts (UTC)", "starts_at", "datetime-local", &f.starts_at, errors, Some("Times are in UTC.")))
                (field("Ends (UTC)", "ends_at", "datetime-local", &f.ends_at, errors, None))
                (field("Capacity", "capacity", "number", &f.capacity, errors, Some("Tickets in all.")))
                (field("Price", "price", "text", &f.price, errors, Some("Per ticket, such as 25.00.")))
                (field("Currency", "currency", "text", currency, errors, None))
                p.hint { "After creation only the title, description and venue can change." }
                button type="submit" { "Create event" }
            }
        },
    )
}

#[handler]
pub async fn new_form(_me: Organizer, session: Data<&Session>) -> Result<Markup, AdminError> {
    let token = csrf::token(&session).await?;
    Ok(new_event_page(&token, &EventForm::default(), &FieldErrors::default()))
}

#[handler]
pub async fn create_from_form(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    CsrfForm(f): CsrfForm<EventForm>,
) -> Result<Response, AdminError> {
    let fields = EventFields {
        title: Some(&f.title),
        description: Some(&f.description),
        venue: Some(&f.venue),
        starts_at: form_time(Some(&f.starts_at)),
        ends_at: form_time(Some(&f.ends_at)),
        capacity: form_int(Some(&f.capacity)),
        price_minor: form_price(Some(&f.price)),
        currency: Some(&f.currency),
    };
    match service::create_event(&state, me, fields).await {
        Ok(event) => Ok(see_other(&format!("/admin/events/{}", event.id))),
        Err(ServiceError::Invalid(errors)) => {
            let token = csrf::token(&session).await?;
            Ok(new_event_page(&token, &f, &errors)
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The edit form of an event as typed.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TextForm {
    title: String,
    description: String,
    venue: String,
}

/// The new-sale form as typed.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SaleForm {
    pub capacity: String,
    pub opens_at: String,
    pub hold_minutes: String,
    pub max_active: String,
    pub prequeue_minutes: String,
    /// The checkbox: `on` when ticked, absent otherwise.
    pub one_place_per_email: String,
}

/// The event page: its fixed facts, its sales, the form that opens a new sale and the form
/// that edits its title, description and venue. Built with the event's own values and empty
/// forms; a refused form is put back in with its errors.
pub struct EventPage<'a> {
    token: &'a str,
    event: &'a Event,
    sales: &'a [SaleRecord],
    default_hold_secs: u32,
    text: Option<&'a TextForm>,
    text_errors: FieldErrors,
    sale_form: Option<&'a SaleForm>,
    sale_errors: FieldErrors,
}

impl<'a> EventPage<'a> {
    pub fn new(token: &'a str, event: &'a Event, sales: &'a [SaleRecord], default_hold_secs: u32) -> Self {
        EventPage {
            token,
            event,
            sales,
            default_hold_secs,
            text: None,
            text_errors: FieldErrors::default(),
            sale_form: None,
            sale_errors: FieldErrors::default(),
        }
    }

    /// The edit form as it was typed, with its errors.
    pub fn refused_text(self, form: &'a TextForm, errors: FieldErrors) -> Self {
        EventPage {
            text: Some(form),
            text_errors: errors,
            ..self
        }
    }

    /// The new-sale form as it was typed, with its errors.
    pub fn refused_sale(self, form: &'a SaleForm, errors: FieldErrors) -> Self {
        EventPage {
            sale_form: Some(form),
            sale_errors: errors,
            ..self
        }
    }

    pub fn render(self) -> Markup {
        let EventPage {
            token,
            event,
            sales,
            default_hold_secs,
            text,
            text_errors,
            sale_form,
            sale_errors,
        } = self;
        let (title, description, venue) = match text {
            Some(t) => (t.title.as_str(), t.description.as_str(), t.venue.as_str()),
            None => (event.title.as_str(), event.description.as_str(), event.venue.as_str()),
        };
        admin_page(
            &event.title,
            Some(token),
            html! {
                h1 { (event.title) }
                dl {
                    @if !event.venue.is_empty() { dt { "Venue" } dd { (event.venue) } }
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
                (new_sale_form(token, event, sale_form.unwrap_or(&SaleForm::default()), &sale_errors, default_hold_secs))
                h2 { "Edit" }
                form method="post" action={ "/admin/events/" (event.id) } {
                    (csrf_field(token))
                    (field("Title", "title", "text", title, &text_errors, None))
                    (field("Description", "description", "textarea", description, &text_errors, None))
                    (field("Venue", "venue", "text", venue, &text_errors, None))
                    button type="submit" { "Save" }
                }
            },
        )
    }
}

/// A form of the event page that was refused.
pub enum Refused<'a> {
    Edit(&'a TextForm, FieldErrors),
    NewSale(&'a SaleForm, FieldErrors),
}

/// The event page again with a refused form as it was typed and its errors beside the
/// fields: a 422.
pub async fn refused(
    state: &AppState,
    me: Organizer,
    session: &Session,
    event: Uuid,
    form: Refused<'_>,
) -> Result<Response, AdminError> {
    let event = service::event(state, me, event).await?;
    let sales = service::sales_of(state, &event).await?;
    let token = csrf::token(session).await?;
    let page = EventPage::new(&token, &event, &sales, state.settings.hold_secs);
    let page = match form {
        Refused::Edit(f, errors) => page.refused_text(f, errors),
        Refused::NewSale(f, errors) => page.refused_sale(f, errors),
    };
    Ok(page
        .render()
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response())
}

/// The new-sale form's "one place per verified email" box, with its error (the shop sends no
/// mail) beside it.
fn one_place_per_email_box(f: &SaleForm, errors: &FieldErrors) -> Markup {
    let error = errors.get("one_place_per_email");
    html! {
        p.field.invalid[error.is_some()] {
            label for="f-one_place_per_email" {
                input id="f-one_place_per_email" name="one_place_per_email" type="checkbox" value="on"
                    checked[f.one_place_per_email == "on"]
                    aria-invalid=[error.is_some().then_some("true")]
                    aria-describedby=[error.is_some().then_some("f-one_place_per_email-error")];
                " One pre-queue place per verified email"
            }
            small.hint { "Buyers who join the pre-queue give an email and get their place by opening the link mailed to it; an email holds one place." }
            @if let Some(e) = error { strong.error id="f-one_place_per_email-error" role="alert" { (e) } }
        }
    }
}

fn new_sale_form(token: &str, event: &Event, f: &SaleForm, errors: &FieldErrors, default_hold_secs: u32) -> Markup {
    let or = |v: &str, d: String| if v.is_empty() { d } else { v.to_string() };
    html! {
        form method="post" action={ "/admin/events/" (event.id) "/sales" } {
            (csrf_field(token))
            (field("Capacity", "capacity", "number", &or(&f.capacity, event.capacity.to_string()), errors,
                Some("The event's capacity unless you give less.")))
            (field("Opens (UTC)", "opens_at", "datetime-local", &or(&f.opens_at, input_time(Utc::now())), errors,
                Some("Times are in UTC; leave empty to open now.")))
            (field("Hold time in minutes", "hold_minutes", "number", &or(&f.hold_minutes, (default_hold_secs / 60).max(1).to_string()), errors,
                Some("How long a buyer at checkout keeps the tickets.")))
            (field("Buyers at checkout at once", "max_active", "number", &or(&f.max_active, "0".into()), errors,
                Some("0 for no limit.")))
            (field("Pre-queue in minutes", "prequeue_minutes", "number", &or(&f.prequeue_minutes, "30".into()), errors,
                Some("Buyers who join this long before the opening wait in a pre-queue and get their places by a draw at the opening; 0 for none (at most 1440).")))
            (one_place_per_email_box(f, errors))
            p.hint { "Price: " (show_price(event.price_minor)) " " (event.currency) ", copied from the event." }
            button type="submit" { "Open the sale" }
        }
    }
}

#[handler]
pub async fn show(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    Path(id): Path<String>,
) -> Result<Markup, AdminError> {
    let event = service::event(&state, me, service::parse_id(&id)?).await?;
    let sales = service::sales_of(&state, &event).await?;
    let token = csrf::token(&session).await?;
    Ok(EventPage::new(&token, &event, &sales, state.settings.hold_secs).render())
}

#[handler]
pub async fn edit_from_form(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<TextForm>,
) -> Result<Response, AdminError> {
    let id = service::parse_id(&id)?;
    let edit = EventEdit {
        title: Some(&f.title),
        description: Some(&f.description),
        venue: Some(&f.venue),
    };
    match service::edit_event(&state, me, id, edit).await {
        Ok(event) => Ok(see_other(&format!("/admin/events/{}", event.id))),
        Err(ServiceError::Invalid(errors)) => refused(&state, me, &session, id, Refused::Edit(&f, errors)).await,
        Err(e) => Err(e.into()),
    }
}
