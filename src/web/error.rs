//! Errors rendered once, at the edge: as a page, as an HTMX fragment, or as the JSON the API
//! promises (`{"error": code, "message": ...}`). Each gets the status its variant names; a
//! passing fault (Redis or Postgres away) is a 503 with `Retry-After`; only a bug is a 500, and
//! its cause is logged, never shown. [`sale_status`] is the one mapping of a [`SaleError`] to
//! its status, for the buyer's side and the organizer's alike.

use maud::html;
use poem::error::ResponseError;
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};

use std::time::Duration;

use super::layout;
use super::rate_limit::retry_secs;
use crate::pow::PowError;
use crate::sale::SaleError;

/// Seconds a client should wait before retrying after a 503, on both sides of the shop.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Everything a buyer-facing handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The sale service's own errors, with the status [`sale_status`] gives each.
    #[error(transparent)]
    Sale(#[from] SaleError),
    /// 503 with `Retry-After`: Postgres did not answer a read of `what` the page shows;
    /// nothing changed. The message names what could not be shown, not orders.
    #[error("{what} cannot be shown right now; please try again in a moment.")]
    ReadFailed {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// 503: the session store did not answer.
    #[error("Your session cannot be read right now; please try again in a moment.")]
    Session(#[from] tower_sessions::session::Error),
    /// 404: nothing here, or nothing this session may see.
    #[error("There is nothing here.")]
    NotFound,
    /// The join's proof of work ([`crate::pow`]): 428 required and missing, 400 unreadable,
    /// 422 expired or not valid for this sale and session, 409 used already.
    #[error(transparent)]
    Pow(#[from] PowError),
    /// 429 with `Retry-After`: this client asked too often (see `rate_limit`).
    #[error("Too many requests from your address. Please wait {} seconds and try again.", retry_secs(*.retry_after))]
    RateLimited { retry_after: Duration },
}

impl WebError {
    /// For a read of `what` a page or answer shows ("The list of events"): Postgres away
    /// becomes [`WebError::ReadFailed`], which says that this cannot be shown; every other
    /// error keeps its own meaning.
    pub fn reading<E: Into<SaleError>>(what: &'static str) -> impl FnOnce(E) -> WebError {
        move |e| match e.into() {
            SaleError::Postgres(source) => WebError::ReadFailed { what, source },
            e => WebError::Sale(e),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Sale(e) => sale_status(e),
            WebError::ReadFailed { .. } | WebError::Session(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Pow(e) => match e {
                PowError::Required => StatusCode::PRECONDITION_REQUIRED,
                PowError::Malformed => StatusCode::BAD_REQUEST,
                PowError::Expired | PowError::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                PowError::Reused => StatusCode::CONFLICT,
            },
        }
    }

    /// The stable machine-readable name of the API.
    pub fn code(&self) -> &'static str {
        match self {
            WebError::Sale(e) => e.code(),
            WebError::ReadFailed { .. } | WebError::Session(_) => "unavailable",
            WebError::NotFound => "not_found",
            WebError::RateLimited { .. } => "rate_limited",
            WebError::Pow(e) => match e {
                PowError::Required => "proof_required",
                PowError::Malformed => "proof_malformed",
                PowError::Expired => "proof_expired",
                PowError::Invalid => "proof_invalid",
                PowError::Reused => "proof_reused",
            },
        }
    }

    /// The message for people; never the cause of a 500.
    pub fn message(&self) -> String {
        match self {
            WebError::Sale(SaleError::Protocol { .. } | SaleError::TimeOutOfRange) => {
                "Something went wrong on our side; please try again.".into()
            }
            WebError::Sale(SaleError::InvalidBuyer(_)) => "Please check your details.".into(),
            e => e.to_string(),
        }
    }

    fn log(&self) {
        let status = self.status();
        if status.is_server_error() {
            // The cause names no buyer: errors carry codes and states, never form values.
            let cause = std::error::Error::source(self).map(ToString::to_string);
            tracing::error!(error = %self, cause, code = self.code(), "request failed");
        }
    }

    fn finish(&self, mut resp: Response) -> Response {
        resp.set_status(self.status());
        match self {
            WebError::RateLimited { retry_after } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, retry_secs(*retry_after).into());
            }
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => {
                resp.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
            }
            _ => {}
        }
        resp
    }
}

/// The status of each sale error, as its doc in `SaleError` names it: the one mapping, used by
/// the buyer's pages and API and by the organizer's portal and API.
pub fn sale_status(e: &SaleError) -> StatusCode {
    match e {
        SaleError::BadQuantity { .. }
        | SaleError::InvalidBuyer(_)
        | SaleError::BadSaleState
        | SaleError::BadEmail
        | SaleError::EmailRequired
        | SaleError::TooManyToReturn { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        SaleError::UnknownSale
        | SaleError::MalformedCode
        | SaleError::UnknownReservation
        | SaleError::UnknownWaitlistEntry
        | SaleError::UnknownLink => StatusCode::NOT_FOUND,
        SaleError::LinkSpent => StatusCode::GONE,
        SaleError::Closed
        | SaleError::Over
        | SaleError::NotOpenYet(_)
        | SaleError::DrawUnderWay
        | SaleError::NotAdmitted(_)
        | SaleError::SoldOut
        | SaleError::ConfirmInProgress
        | SaleError::NotSoldOut
        | SaleError::WaitlistEmailTaken
        | SaleError::OwnWaitlistPlace
        | SaleError::ReturnsNotAllowed
        | SaleError::ReturnPending
        | SaleError::NothingToReturn
        | SaleError::NoReturnPending
        | SaleError::EmailHasPlace
        | SaleError::PrequeueOver => StatusCode::CONFLICT,
        SaleError::BadOwner => StatusCode::BAD_REQUEST,
        SaleError::Redis(_) | SaleError::Postgres(_) | SaleError::Beacon(_) => StatusCode::SERVICE_UNAVAILABLE,
        SaleError::Protocol { .. } | SaleError::TimeOutOfRange => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error shown as a whole page.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PageError(#[from] pub WebError);

impl From<SaleError> for PageError {
    fn from(e: SaleError) -> Self {
        PageError(e.into())
    }
}

impl From<tower_sessions::session::Error> for PageError {
    fn from(e: tower_sessions::session::Error) -> Self {
        PageError(e.into())
    }
}

impl ResponseError for PageError {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        self.0.log();
        let title = match self.0.status() {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Slow down",
            s if s.is_server_error() => "Please try again",
            _ => "Sorry",
        };
        let body = html! {
            section.card.error {
                h1 { (title) }
                p.flash { (self.0.message()) }
                p { a.button href="/" { "See upcoming events" } }
            }
        };
        self.0.finish(layout::page(title, body).into_response())
    }
}

/// An error inside an HTMX-swapped fragment of the waiting room.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FragmentError(#[from] pub WebError);

impl From<SaleError> for FragmentError {
    fn from(e: SaleError) -> Self {
        FragmentError(e.into())
    }
}

impl ResponseError for FragmentError {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        self.0.log();
        let body = html! { div #queue.card.error role="status" { p.flash { (self.0.message()) } a href="/" { "Back to events" } } };
        self.0.finish(body.into_response())
    }
}

/// An error of the JSON API: `{"error": code, "message": ..., "fields": {...}}`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub WebError);

impl From<SaleError> for ApiError {
    fn from(e: SaleError) -> Self {
        ApiError(e.into())
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        self.0.log();
        let mut body = serde_json::json!({ "error": self.0.code(), "message": self.0.message() });
        if let WebError::Sale(SaleError::InvalidBuyer(fields)) = &self.0 {
            let fields: serde_json::Map<_, _> = fields
                .0
                .iter()
                .map(|(f, m)| (f.to_string(), m.as_str().into()))
                .collect();
            body["fields"] = fields.into();
        }
        if let WebError::Sale(SaleError::NotAdmitted(state)) = &self.0 {
            body["state"] = state.as_str().into();
        }
        self.0.finish(poem::web::Json(body).into_response())
    }
}

/// The body of every error of the buyer API, as the OpenAPI document declares it.
#[derive(poem_openapi::Object)]
pub struct Problem {
    /// Machine-readable: `bad_quantity`, `unknown_sale`, `sale_closed`, `rate_limited`, ...
    pub error: String,
    /// For people.
    pub message: String,
    /// Invalid buyer details (`invalid_buyer`): the message of each field that failed.
    #[oai(skip_serializing_if_is_none)]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
    /// A reservation not at checkout (`not_admitted`, `hold_expired`): where it stands.
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<String>,
}

/// What a call of the buyer API may answer when it fails, for the OpenAPI document; each call
/// declares those it can answer ([`CallError`]), and [`ApiError`] renders the answer.
#[derive(poem_openapi::ApiResponse)]
#[allow(dead_code)] // never built: only its description is used
enum BuyerApiFailure {
    /// The request could not be read (a path or body of the wrong shape).
    #[oai(status = 400)]
    BadRequest(poem_openapi::payload::Json<Problem>),
    /// No such sale, or no such reservation of this session.
    #[oai(status = 404)]
    NotFound(poem_openapi::payload::Json<Problem>),
    /// Not possible now: the sale is closed, over, not open yet or sold out; the reservation
    /// is not at checkout (see `state`), or its order is being written; a join's proof of
    /// work was used already (`proof_reused`).
    #[oai(status = 409)]
    Conflict(poem_openapi::payload::Json<Problem>),
    /// A mailed link used already or expired (`link_spent`): ask for a new one.
    #[oai(status = 410)]
    Gone(poem_openapi::payload::Json<Problem>),
    /// A body that is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(poem_openapi::payload::Json<Problem>),
    /// A quantity out of range, or buyer details that do not pass (see `fields`); a join's
    /// proof of work expired (`proof_expired`) or not valid for this sale and session
    /// (`proof_invalid`).
    #[oai(status = 422)]
    Invalid(poem_openapi::payload::Json<Problem>),
    /// The sale is busy: a join must carry the solution of a challenge from
    /// `GET /api/v1/sales/{sale}/challenge` (`proof_required`).
    #[oai(status = 428)]
    ProofRequired(poem_openapi::payload::Json<Problem>),
    /// Too many requests from this client; retry after the given seconds.
    #[oai(status = 429)]
    RateLimited(poem_openapi::payload::Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Something broke on our side.
    #[oai(status = 500)]
    Internal(poem_openapi::payload::Json<Problem>),
    /// Redis or Postgres did not answer; nothing changed, retry after the given seconds.
    #[oai(status = 503)]
    Unavailable(poem_openapi::payload::Json<Problem>, #[oai(header = "Retry-After")] u64),
}

/// The statuses one call of the buyer API may fail with, among those of [`BuyerApiFailure`].
pub trait Failures: Send + Sync + 'static {
    const STATUSES: &'static [u16];
}

/// An [`ApiError`] of a call that fails only with the statuses `F` names: the OpenAPI document
/// declares those for the call, and the error renders as any [`ApiError`].
#[derive(Debug)]
pub struct CallError<F>(pub ApiError, std::marker::PhantomData<F>);

impl<F> From<ApiError> for CallError<F> {
    fn from(e: ApiError) -> Self {
        CallError(e, std::marker::PhantomData)
    }
}

impl<F> From<WebError> for CallError<F> {
    fn from(e: WebError) -> Self {
        ApiError(e).into()
    }
}

impl<F> From<SaleError> for CallError<F> {
    fn from(e: SaleError) -> Self {
        ApiError(e.into()).into()
    }
}

impl<F> From<CallError<F>> for poem::Error {
    fn from(e: CallError<F>) -> Self {
        e.0.into()
    }
}

impl<F: Failures> poem_openapi::ApiResponse for CallError<F> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        let mut meta = BuyerApiFailure::meta();
        meta.responses
            .retain(|r| r.status.is_some_and(|s| F::STATUSES.contains(&s)));
        meta
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        BuyerApiFailure::register(registry);
    }
}

/// Turns any error of the JSON API that is not already an [`ApiError`] (a body that is not
/// JSON, an unknown path, a wrong method) into the same JSON shape, keeping its status.
pub async fn api_catch_all(err: poem::Error) -> Response {
    if err.is::<ApiError>() {
        return err.into_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if status.is_server_error() {
        tracing::error!(error = %err, "API request failed");
        "Something went wrong on our side; please try again.".to_string()
    } else {
        parser_message(&err)
    };
    poem::web::Json(serde_json::json!({ "error": code, "message": message }))
        .with_status(status)
        .into_response()
}

/// The answer to a request whose handler panicked: a 500 page; the cause is logged, never shown.
pub fn panicked_page(cause: Box<dyn std::any::Any + Send>) -> Response {
    log_panic(cause.as_ref());
    let title = "Please try again";
    let body = html! {
        section.card.error {
            h1 { (title) }
            p.flash { "Something went wrong on our side; please try again." }
            p { a.button href="/" { "See upcoming events" } }
        }
    };
    layout::page(title, body)
        .with_status(StatusCode::INTERNAL_SERVER_ERROR)
        .into_response()
}

/// The same for the JSON API, in its error shape.
pub fn panicked_json(cause: Box<dyn std::any::Any + Send>) -> Response {
    log_panic(cause.as_ref());
    poem::web::Json(serde_json::json!({
        "error": "internal",
        "message": "Something went wrong on our side; please try again.",
    }))
    .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    .into_response()
}

fn log_panic(cause: &(dyn std::any::Any + Send)) {
    let what = cause
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| cause.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    tracing::error!(panic = what, "a request's handler panicked; answered 500");
}

/// The message of a request the parser refused, fit to send back: a parser quotes what the
/// client sent, so angle brackets become `‹ ›` (an echoed `<script>` never reads as markup,
/// whatever a client does with the body) and a long message is cut (a 100 kB value is not
/// sent back whole).
pub fn parser_message(err: &poem::Error) -> String {
    const MAX_CHARS: usize = 300;
    let text = err.to_string().replace('<', "‹").replace('>', "›");
    match text.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_value_comes_back_neither_as_markup_nor_whole() {
        let err = poem::Error::from_string(
            format!("found \"<script>alert(1)</script>{}\"", "9".repeat(100_000)),
            StatusCode::BAD_REQUEST,
        );
        let m = parser_message(&err);
        assert!(m.starts_with("found \"‹script›alert(1)‹/script›999"), "{m}");
        assert!(m.chars().count() <= 301, "{}", m.len());
    }
}
