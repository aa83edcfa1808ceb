//! The portal's sale forms: open a sale of an event (from the event page), pause, resume or
//! close it (from its dashboard). The operations are the organizer service's.

use maud::{Markup, html};
use poem::web::{Data, Path};
use poem::{Response, handler};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::AdminError;
use super::auth::see_other;
use super::events::{Refused, SaleForm, refused};
use super::extract::CsrfForm;
use super::forms::{SaleFields, form_int, form_time};
use super::service::{self, Organizer, ServiceError};
use super::views::csrf_field;
use crate::sale::SaleState;
use crate::startup::AppState;

#[handler]
pub async fn create_from_form(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    Path(event): Path<String>,
    CsrfForm(f): CsrfForm<SaleForm>,
) -> Result<Response, AdminError> {
    let event = service::parse_id(&event)?;
    let hold_secs = form_int(Some(&f.hold_minutes)).map(|m| m.map(|m| m.saturating_mul(60)));
    let prequeue_secs = form_int(Some(&f.prequeue_minutes)).map(|m| m.map(|m| m.saturating_mul(60)));
    let fields = SaleFields {
        capacity: form_int(Some(&f.capacity)),
        opens_at: form_time(Some(&f.opens_at)),
        hold_secs,
        max_active: form_int(Some(&f.max_active)),
        prequeue_secs,
        one_place_per_email: f.one_place_per_email == "on",
    };
    match service::open_sale(&state, me, event, fields).await {
        Ok(sale) => Ok(see_other(&format!("/admin/sales/{}", sale.id))),
        Err(ServiceError::Invalid(mut errors)) => {
            // The form asks for minutes; its error belongs beside that field.
            if let Some(m) = errors.0.remove("hold_secs") {
                errors.add("hold_minutes", m);
            }
            if let Some(m) = errors.0.remove("prequeue_secs") {
                errors.add("prequeue_minutes", m);
            }
            refused(&state, me, &session, event, Refused::NewSale(&f, errors)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StateForm {
    state: String,
}

#[handler]
pub async fn state_from_form(
    state: Data<&AppState>,
    me: Organizer,
    Path(sale): Path<String>,
    CsrfForm(f): CsrfForm<StateForm>,
) -> Result<Response, AdminError> {
    let want: SaleState = f.state.parse()?;
    let sale = service::set_sale_state(&state, me, service::parse_id(&sale)?, want).await?;
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
