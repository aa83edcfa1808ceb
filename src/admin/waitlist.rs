//! The organizer's side of the waitlist: its figures on the dashboard, the offer window,
//! whether buyers may return tickets to it, and raising a sale's capacity (the new tickets go
//! to the queue first, then down the waitlist, in order: the sync that follows admits and
//! offers them). Forms here, the operations for the portal and the API alike.

use maud::{Markup, html};
use poem::web::{Data, Path};
use poem::{Response, handler};
use serde::Deserialize;

use super::AdminError;
use super::auth::see_other;
use super::extract::CsrfForm;
use super::forms::form_int;
use super::service::{self, Organizer, ServiceError};
use super::views::csrf_field;
use crate::db;
use crate::db::returns::ReturnCounts;
use crate::db::sales::SaleRecord;
use crate::db::waitlist::{EntryRecord, Raised, WaitlistCounts};
use crate::fields::FieldErrors;
use crate::sale::SaleError;
use crate::startup::AppState;

/// The shortest and longest offer window an organizer may set, in seconds.
pub const OFFER_SECS: std::ops::RangeInclusive<i64> = 60..=86_400;

/// The waitlist's figures and setting for the dashboard and the API.
pub struct WaitlistFigures {
    pub counts: WaitlistCounts,
    pub offer_secs: i32,
    /// Whether buyers may return tickets of their orders to the waitlist.
    pub returns_allowed: bool,
    /// Tickets offered for return and not bought yet, and tickets returned.
    pub returns: ReturnCounts,
}

pub async fn figures(state: &AppState, sale: &SaleRecord) -> Result<WaitlistFigures, ServiceError> {
    let counts = db::waitlist::counts(&state.db, sale.sale_id()).await?;
    let offer_secs = db::waitlist::offer_secs(&state.db, sale.sale_id())
        .await?
        .ok_or(ServiceError::NotFound)?;
    let returns_allowed = db::returns::allowed(&state.db, sale.sale_id()).await?;
    let returns = db::returns::of_sale(&state.db, sale.sale_id()).await?;
    Ok(WaitlistFigures {
        counts,
        offer_secs,
        returns_allowed,
        returns,
    })
}

/// Sets whether buyers may return tickets of the sale's orders. Returns offered already stay
/// open when returns are turned off: those buyers were promised them.
pub async fn set_returns_allowed(
    state: &AppState,
    me: Organizer,
    id: uuid::Uuid,
    allowed: bool,
) -> Result<SaleRecord, ServiceError> {
    let sale = service::sale(state, me, id).await?;
    if !db::returns::set_allowed(&state.db, sale.sale_id(), allowed).await? {
        return Err(ServiceError::NotFound);
    }
    Ok(sale)
}

/// One page of the sale's waitlist entries, in line order.
pub struct EntryPage {
    pub entries: Vec<EntryRecord>,
    pub page: i64,
    pub per_page: i64,
    /// Entries in all, in every state.
    pub total: i64,
}

/// Most rounds of recording before a read of the entries: each records up to a hundred
/// changes; what is left the reconcile records.
const RECORD_ROUNDS: usize = 20;

/// A page of the sale's waitlist entries in line order, every state, with the offer each
/// holds. What Redis changed and Postgres has yet to record is recorded first, so the list is
/// the line as it stands.
pub async fn entries(
    state: &AppState,
    sale: &SaleRecord,
    page: Option<i64>,
    per_page: Option<i64>,
) -> Result<EntryPage, ServiceError> {
    for _ in 0..RECORD_ROUNDS {
        match state.sales.record_waitlist(sale.sale_id()).await {
            Ok(0) | Err(SaleError::Over) => break,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (page, per_page, offset) = service::page_window(page, per_page);
    let entries = db::waitlist::page_of_sale(&state.db, sale.sale_id(), per_page, offset).await?;
    let c = db::waitlist::counts(&state.db, sale.sale_id()).await?;
    Ok(EntryPage {
        entries,
        page,
        per_page,
        total: c.waiting + c.offered + c.taken + c.lapsed + c.left,
    })
}

/// Sets how long an offer holds its tickets, within [`OFFER_SECS`].
pub async fn set_offer_window(
    state: &AppState,
    me: Organizer,
    id: uuid::Uuid,
    secs: Option<i64>,
) -> Result<SaleRecord, ServiceError> {
    let sale = service::sale(state, me, id).await?;
    let secs = secs
        .filter(|s| OFFER_SECS.contains(s))
        .ok_or_else(|| invalid("offer_secs", "Between 60 seconds and a day."))?;
    state.sales.set_offer_window(sale.sale_id(), secs as i32).await?;
    Ok(sale)
}

/// Raises the sale's capacity, within the event's seats; the sync that follows gives the new
/// tickets to the queue, then down the waitlist.
pub async fn raise_capacity(
    state: &AppState,
    me: Organizer,
    id: uuid::Uuid,
    capacity: Option<i64>,
) -> Result<SaleRecord, ServiceError> {
    let sale = service::sale(state, me, id).await?;
    let capacity = capacity
        .and_then(|c| i32::try_from(c).ok())
        .ok_or_else(|| invalid("capacity", "A whole number of tickets."))?;
    match db::waitlist::raise_capacity(&state.db, sale.sale_id(), capacity).await? {
        Raised::NotMore => {
            return Err(invalid(
                "capacity",
                &format!("More than the {} the sale has.", sale.capacity),
            ));
        }
        Raised::BeyondEvent(seats) => {
            return Err(invalid("capacity", &format!("At most the event's {seats} seats.")));
        }
        Raised::Raised => {}
    }
    state.sales.sync(sale.sale_id()).await?;
    Ok(SaleRecord { capacity, ..sale })
}

fn invalid(field: &'static str, message: &str) -> ServiceError {
    ServiceError::Invalid(FieldErrors::one(field, message))
}

/// The dashboard's waitlist section: its figures and the two forms (a refused value answers
/// the portal's 422 page, as every form of the dashboard).
pub fn section(token: &str, sale: &SaleRecord, w: &WaitlistFigures) -> Markup {
    let c = &w.counts;
    let base = format!("/admin/sales/{}", sale.id);
    html! {
        section #waitlist {
            h2 { "Waitlist" }
            dl.figures {
                dt { "Waiting" } dd data-figure="waitlist_waiting" { (c.waiting) }
                dt { "Offers out" } dd data-figure="offers_out" { (c.offered) }
                dt { "Offers taken" } dd data-figure="offers_taken" { (c.taken) }
                dt { "Offers lapsed" } dd data-figure="offers_lapsed" { (c.lapsed) }
                dt { "Left" } dd data-figure="waitlist_left" { (c.left) }
                dt { "Returns pending" } dd data-figure="returns_pending" { (w.returns.pending) }
                dt { "Tickets returned" } dd data-figure="tickets_returned" { (w.returns.returned) }
            }
            form.inline method="post" action={ (base) "/returns" } {
                (csrf_field(token))
                label for="returns_allowed" {
                    input #returns_allowed name="returns_allowed" type="checkbox" value="on" checked[w.returns_allowed];
                    " Buyers may return tickets to the waitlist"
                }
                button type="submit" { "Save" }
            }
            form.inline method="post" action={ (base) "/offer-window" } {
                (csrf_field(token))
                label for="offer_minutes" { "Offer window (minutes)" }
                input #offer_minutes name="offer_minutes" type="number" min="1" max="1440" value=(w.offer_secs / 60);
                button type="submit" { "Save" }
            }
            form.inline method="post" action={ (base) "/capacity" } {
                (csrf_field(token))
                label for="capacity" { "Raise capacity to" }
                input #capacity name="capacity" type="number" min=(sale.capacity + 1) value=(sale.capacity + 1);
                button type="submit" { "Raise" }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OfferWindowForm {
    offer_minutes: String,
}

#[handler]
pub async fn offer_window_from_form(
    state: Data<&AppState>,
    me: Organizer,
    Path(sale): Path<String>,
    CsrfForm(f): CsrfForm<OfferWindowForm>,
) -> Result<Response, AdminError> {
    let secs = form_int(Some(&f.offer_minutes))
        .ok()
        .flatten()
        .map(|m| m.saturating_mul(60));
    let sale = set_offer_window(&state, me, service::parse_id(&sale)?, secs).await?;
    Ok(see_other(&format!("/admin/sales/{}", sale.id)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReturnsForm {
    /// "on" when the box is ticked; a form without it turns returns off.
    returns_allowed: String,
}

#[handler]
pub async fn returns_from_form(
    state: Data<&AppState>,
    me: Organizer,
    Path(sale): Path<String>,
    CsrfForm(f): CsrfForm<ReturnsForm>,
) -> Result<Response, AdminError> {
    let allowed = f.returns_allowed == "on";
    let sale = set_returns_allowed(&state, me, service::parse_id(&sale)?, allowed).await?;
    Ok(see_other(&format!("/admin/sales/{}", sale.id)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CapacityForm {
    capacity: String,
}

#[handler]
pub async fn capacity_from_form(
    state: Data<&AppState>,
    me: Organizer,
    Path(sale): Path<String>,
    CsrfForm(f): CsrfForm<CapacityForm>,
) -> Result<Response, AdminError> {
    let capacity = form_int(Some(&f.capacity)).ok().flatten();
    let sale = raise_capacity(&state, me, service::parse_id(&sale)?, capacity).await?;
    Ok(see_other(&format!("/admin/sales/{}", sale.id)))
}
