//! Ticket sales of an event: open one, pause, resume, close. A sale is written to Postgres
//! and then handed to the sale service (`TicketSales::sync`), which makes its live state in
//! Redis; later state changes go through `TicketSales::set_state` alone.

use chrono::Utc;
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::auth::{organizer, see_other};
use super::events::{EventPage, event_page, input_time, owned, parse_id};
use super::forms::{FieldErrors, SaleDraft, SaleFields, form_int, form_time, show_price};
use super::views::{csrf_field, field};
use super::{AdminError, csrf};
use crate::db;
use crate::db::events::Event;
use crate::db::sales::{NewSale, SaleRecord};
use crate::sale::{SaleId, SaleState};
use crate::startup::AppState;

/// Opens a sale of the organizer's own event: capacity, price and currency are copied now,
/// so later changes to the event (title, description) never reach the sale.
pub async fn create(
    state: &AppState,
    organizer: Uuid,
    event: Uuid,
    fields: SaleFields,
) -> Result<(Event, SaleRecord), AdminError> {
    let event = owned(&state.db, organizer, event).await?;
    let draft =
        SaleDraft::parse(fields, event.capacity, state.settings.hold_secs, Utc::now()).map_err(AdminError::Invalid)?;
    // As for events: count and insert under the organizer's lock, so concurrent requests
    // cannot pass the limit together.
    let limit = state.settings.max_sales_per_event;
    let mut tx = state.db.begin().await?;
    db::organizers::lock(&mut *tx, organizer).await?;
    if db::sales::count_for_event(&mut *tx, event.id).await? >= i64::from(limit) {
        return Err(AdminError::LimitReached(format!(
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
        },
    )
    .await?;
    tx.commit().await?;
    // The sale is recorded: were Redis down now, the first buyer or the next reconciliation
    // builds its live state. Failing here would invite a retry that opens a second sale.
    if let Err(e) = state.sales.sync(sale.sale_id()).await {
        tracing::warn!(sale = %sale.id, error = %e, "a new sale is not in Redis yet; it will be built on first use");
    }
    Ok((event, sale))
}

/// The organizer's own sale; anyone else's is `NotFound`.
pub async fn owned_sale(state: &AppState, organizer: Uuid, id: &str) -> Result<SaleRecord, AdminError> {
    let id = SaleId(parse_id(id)?);
    db::sales::find_owned(&state.db, id, organizer)
        .await?
        .ok_or(AdminError::NotFound)
}

/// Moves the sale to `want`: open ↔ paused, and either to closed, which is final.
pub async fn set_state(state: &AppState, organizer: Uuid, id: &str, want: SaleState) -> Result<SaleRecord, AdminError> {
    let sale = owned_sale(state, organizer, id).await?;
    let current = sale.sale_state();
    if current == SaleState::Closed && want != SaleState::Closed {
        return Err(AdminError::Conflict("A closed sale cannot be opened again."));
    }
    if current == want {
        // Already so in Postgres; Redis may have missed it (it was away): tell it again.
        state.sales.sync(sale.sale_id()).await?;
        return Ok(sale);
    }
    match state.sales.set_state(sale.sale_id(), want).await {
        // Closed in the meantime by another request: closing is final.
        Err(crate::sale::SaleError::UnknownSale) => {
            return Err(AdminError::Conflict("A closed sale cannot be opened again."));
        }
        other => other?,
    }
    Ok(SaleRecord {
        state: want.as_str().to_string(),
        ..sale
    })
}

/// The new-sale form as typed.
#[derive(Deserialize, Default)]
pub struct SaleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    opens_at: String,
    #[serde(default)]
    hold_minutes: String,
    #[serde(default)]
    max_active: String,
}

pub fn new_sale_form(token: &str, event: &Event, f: &SaleForm, errors: &FieldErrors, default_hold_secs: u32) -> Markup {
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
            p.hint { "Price: " (show_price(event.price_minor)) " " (event.currency) ", copied from the event." }
            button type="submit" { "Open the sale" }
        }
    }
}

#[handler]
pub async fn create_from_form(
    state: Data<&AppState>,
    session: Data<&Session>,
    Path(event): Path<String>,
    Form(f): Form<SaleForm>,
) -> Result<Response, AdminError> {
    let me = organizer(&session).await?;
    csrf::verify(&session, &f.csrf).await?;
    let event = parse_id(&event)?;
    let hold_secs = form_int(Some(&f.hold_minutes)).map(|m| m.map(|m| m.saturating_mul(60)));
    let fields = SaleFields {
        capacity: form_int(Some(&f.capacity)),
        opens_at: form_time(Some(&f.opens_at)),
        hold_secs,
        max_active: form_int(Some(&f.max_active)),
    };
    match create(&state, me, event, fields).await {
        Ok((_, sale)) => Ok(see_other(&format!("/admin/sales/{}", sale.id))),
        Err(AdminError::Invalid(mut errors)) => {
            // The form asks for minutes; its error belongs beside that field.
            if let Some(m) = errors.0.remove("hold_secs") {
                errors.add("hold_minutes", m);
            }
            let event = owned(&state.db, me, event).await?;
            let sales = db::sales::list_for_event(&state.db, event.id).await?;
            let token = csrf::token(&session).await?;
            Ok(event_page(EventPage {
                token: &token,
                event: &event,
                sales: &sales,
                text: (&event.title, &event.description),
                text_errors: &FieldErrors::default(),
                sale_form: &f,
                sale_errors: &errors,
                default_hold_secs: state.settings.hold_secs,
            })
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
}

#[handler]
pub async fn state_from_form(
    state: Data<&AppState>,
    session: Data<&Session>,
    Path(sale): Path<String>,
    Form(f): Form<StateForm>,
) -> Result<Response, AdminError> {
    let me = organizer(&session).await?;
    csrf::verify(&session, &f.csrf).await?;
    let want: SaleState = f.state.parse()?;
    let sale = set_state(&state, me, &sale, want).await?;
    Ok(see_other(&format!("/admin/sales/{}", sale.id)))
}

/// The buttons that move a sale on from `current`.
pub fn state_buttons(token: &str, sale: Uuid, current: SaleState) -> Markup {
    let button = |to: &str, label: &str| {
        html! {
            form.inline method="post" action={ "/admin/sales/" (sale) "/state" } {
                (csrf_field(token))
                input type="hidden" name="state" value=(to);
                button type="submit" { (label) }
            }
        }
    };
    html! {
        @match current {
            SaleState::Open => { (button("paused", "Pause")) " " (button("closed", "Close")) }
            SaleState::Paused => { (button("open", "Resume")) " " (button("closed", "Close")) }
            SaleState::Closed => { "This sale is closed for good." }
        }
    }
}
