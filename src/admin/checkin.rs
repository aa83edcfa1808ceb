//! The door: a page per sale (`/admin/sales/{sale}/check-in`) where staff type or scan a
//! ticket code and get a big, clear answer — valid, admit; already used at 20:14; not a ticket
//! of this event — and the same as `POST /api/v1/admin/sales/{sale}/check-ins` for door apps.
//!
//! A USB scanner types the code like a keyboard and presses Enter: the field has the focus and
//! the form answers through HTMX, then clears itself for the next scan (`assets/checkin.js`,
//! which also reads QR codes from a camera where the browser has `BarcodeDetector`).
//!
//! [`scan`] is the operation, shared by the page and the API; the rule that admits a ticket
//! once is one Postgres statement, `db::tickets::check_in`.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::organizer;
use super::service::{self, Organizer, ServiceError};
use super::views::{admin_page, csrf_field, show_time};
use super::{AdminError, csrf};
use crate::db::sales::SaleRecord;
use crate::db::tickets::CheckIn;
use crate::startup::AppState;
use crate::web::assets;

/// "20:14 UTC", the time a door reads.
pub fn door_time(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

#[handler]
pub async fn page(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    Path(sale): Path<String>,
) -> Result<Markup, AdminError> {
    let (sale, event) = service::sale_with_event(&state, me, service::parse_id(&sale)?).await?;
    let token = csrf::token(&session).await?;
    let count = admitted_count(&state, &sale, false).await?;
    Ok(door_page(&event.title, sale.id, &token, html! {}, count))
}

/// "57 of 120 tickets admitted", as the door page shows it after every scan; `out_of_band`
/// for an HTMX answer, which replaces the page's own count with it.
async fn admitted_count(state: &AppState, sale: &SaleRecord, out_of_band: bool) -> Result<Markup, AdminError> {
    let (admitted, all) = service::admitted_at_the_door(state, sale).await?;
    Ok(html! {
        p #admitted-count.door-count aria-live="polite" hx-swap-oob=[out_of_band.then_some("true")] {
            (admitted) " of " (all) " tickets admitted"
        }
    })
}

#[derive(Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// A scan: the answer alone for HTMX, the whole page with the answer otherwise.
#[handler]
pub async fn scan_from_form(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Path(sale): Path<String>,
    Form(f): Form<ScanForm>,
) -> Result<Response, AdminError> {
    let htmx = req.headers().contains_key("hx-request");
    match scan_answer(&state, &session, &sale, &f, htmx).await {
        Ok(markup) => Ok(markup.into_response()),
        // HTMX would follow a redirect and put the sign-in page in the answer's place; this
        // header makes it load the sign-in page as a whole instead.
        Err(AdminError::Unauthenticated) if htmx => {
            Ok(Response::builder().header("HX-Redirect", "/admin/sign-in").finish())
        }
        // Anything else the door must see in the answer's place, not a silent nothing.
        Err(e) if htmx => {
            e.log();
            Ok(retry_view(&e.to_string()).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn scan_answer(
    state: &AppState,
    session: &Session,
    sale: &str,
    f: &ScanForm,
    htmx: bool,
) -> Result<Markup, AdminError> {
    // Checked here rather than by the extractors: a door answering through HTMX must see a
    // lapsed sign-in or form in the answer's place (see `scan_from_form`).
    let me = organizer(session).await?;
    csrf::verify(session, &f.csrf).await?;
    let (sale, event) = service::sale_with_event(state, me, service::parse_id(sale)?).await?;
    let answer = match service::check_in(state, me, sale.id, &f.code).await {
        Ok(result) => answer_view(&result),
        Err(ServiceError::Invalid(errors)) => retry_view(errors.get("code").unwrap_or("Type or scan a ticket code.")),
        Err(e) => return Err(e.into()),
    };
    let count = admitted_count(state, &sale, htmx).await?;
    if htmx {
        return Ok(html! { (answer) (count) });
    }
    let token = csrf::token(session).await?;
    Ok(door_page(&event.title, sale.id, &token, answer, count))
}

/// Nothing was checked: scan again (or, as the message says, reload or wait).
fn retry_view(message: &str) -> Markup {
    html! { div #answer.door-answer.retry role="alert" data-result="retry" { (message) } }
}

fn door_page(title: &str, sale: uuid::Uuid, token: &str, answer: Markup, count: Markup) -> Markup {
    let action = format!("/admin/sales/{sale}/check-in");
    admin_page(
        &format!("{title} · door"),
        Some(token),
        html! {
            script src=(assets::url("checkin.js")) defer {}
            h1 { "Door: " (title) }
            p { a href={ "/admin/sales/" (sale) } { "Back to the sale's dashboard" } }
            form #scan.door method="post" action=(action) hx-post=(action) hx-target="#answer" hx-swap="outerHTML" {
                (csrf_field(token))
                label for="code" { "Ticket code" }
                input #code type="text" name="code" autofocus autocomplete="off" autocapitalize="off"
                    spellcheck="false" maxlength="200" required;
                button type="submit" { "Check" }
                button #camera type="button" hidden { "Scan with the camera" }
            }
            video #camera-view hidden muted playsinline {}
            @if answer.0.is_empty() {
                div #answer.door-answer aria-live="assertive" { "Scan or type a ticket code." }
            } @else {
                (answer)
            }
            (count)
        },
    )
}

/// The answer the door staff read from a distance.
fn answer_view(result: &CheckIn) -> Markup {
    match result {
        CheckIn::Admitted(t) => html! {
            div #answer.door-answer.admit role="alert" data-result="admitted" {
                strong { "Valid — admit" }
                p { (t.holder) " · ticket " (t.number) " of " (t.of) }
            }
        },
        CheckIn::AlreadyUsed(t) => html! {
            div #answer.door-answer.used role="alert" data-result="already_used" {
                strong { "Already used at " (door_time(t.checked_in_at)) }
                p { (t.holder) " · ticket " (t.number) " of " (t.of) " · checked in " (show_time(t.checked_in_at)) }
            }
        },
        CheckIn::NotValid => html! {
            div #answer.door-answer.refuse role="alert" data-result="not_valid" {
                strong { "Not a ticket of this event" }
            }
        },
    }
}
