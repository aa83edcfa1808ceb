//! The one error type of the portal and the organizer API. Each variant's doc names its HTTP
//! status; pages render it here, the API renders it as JSON in `api.rs`. A [`SaleError`] gets
//! the status of the one mapping the buyer's side uses too (`web::error::sale_status`), except
//! that Redis or Postgres away is told as the service being unavailable, not as orders.

use std::time::Duration;

use poem::error::ResponseError;
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};

use super::forms::FieldErrors;
use super::service::ServiceError;
use super::views;
use crate::sale::SaleError;
use crate::web::error::{RETRY_AFTER_SECS, sale_status};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 303 to the sign-in page (pages); 401 (API).
    #[error("Please sign in.")]
    Unauthenticated,
    /// 403: a form without the session's CSRF token; nothing was changed.
    #[error(
        "This form has expired or was not sent from this site. Nothing was changed; please reload the page and try again."
    )]
    Csrf,
    /// 404: no such thing, or another organizer's — the two look the same on purpose.
    #[error("There is no such page.")]
    NotFound,
    /// 422: fields that do not pass, each with its message.
    #[error("Please check the marked fields.")]
    Invalid(FieldErrors),
    /// 409: the request contradicts the current state (a closed sale cannot reopen).
    #[error("{0}")]
    Conflict(&'static str),
    /// 409: the organizer has as many events or sales as one account may have.
    #[error("{0}")]
    LimitReached(String),
    /// 403: not allowed to anyone in this situation (sign-up closed, an invite that no longer
    /// works); nothing was changed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 429 with `Retry-After`: too many sign-in attempts from this client or for this account.
    #[error("Too many sign-in attempts. Please wait {} seconds and try again.", retry_secs(*.retry_after))]
    RateLimited { retry_after: Duration },
    /// 503 with `Retry-After`: Postgres did not answer; nothing changed.
    #[error("The service is unavailable right now; please try again in a moment.")]
    Postgres(#[from] sqlx::Error),
    /// 503 with `Retry-After`: Redis did not answer; nothing changed.
    #[error("The service is unavailable right now; please try again in a moment.")]
    Redis(#[source] fred::error::Error),
    /// 503 with `Retry-After`: the session store did not answer.
    #[error("The service is unavailable right now; please try again in a moment.")]
    Session(#[from] tower_sessions::session::Error),
    /// The sale service's own errors but its faults, with the status `sale_status` gives each.
    #[error("{0}")]
    Sale(SaleError),
    /// 500: hashing a password failed (it does not, short of running out of memory).
    #[error("Something went wrong on our side.")]
    Internal(String),
}

/// The organizer service's errors, one for one.
impl From<ServiceError> for AdminError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => AdminError::NotFound,
            ServiceError::Invalid(fields) => AdminError::Invalid(fields),
            ServiceError::Conflict(message) => AdminError::Conflict(message),
            ServiceError::LimitReached(message) => AdminError::LimitReached(message),
            ServiceError::Postgres(e) => AdminError::Postgres(e),
            ServiceError::Sale(e) => e.into(),
        }
    }
}

/// Postgres and Redis failures are the service being unavailable, whoever reports them.
impl From<SaleError> for AdminError {
    fn from(e: SaleError) -> Self {
        match e {
            SaleError::Postgres(e) => AdminError::Postgres(e),
            SaleError::Redis(e) => AdminError::Redis(e),
            e => AdminError::Sale(e),
        }
    }
}

pub fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl AdminError {
    /// A stable machine-readable name, for the JSON API.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthenticated => "unauthenticated",
            AdminError::Csrf => "csrf",
            AdminError::NotFound => "not_found",
            AdminError::Invalid(_) => "invalid",
            AdminError::Conflict(_) => "conflict",
            AdminError::LimitReached(_) => "limit_reached",
            AdminError::Forbidden(_) => "forbidden",
            AdminError::RateLimited { .. } => "rate_limited",
            AdminError::Postgres(_) | AdminError::Redis(_) | AdminError::Session(_) => "unavailable",
            AdminError::Sale(e) => e.code(),
            AdminError::Internal(_) => "internal",
        }
    }

    /// Seconds to wait before trying again, for `Retry-After`: after a 429, and after a 503
    /// (Postgres or Redis away passes by itself).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AdminError::RateLimited { retry_after } => Some(retry_secs(*retry_after)),
            e if e.status() == StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// The message for people: a bug's cause is logged, never shown.
    pub fn message(&self) -> String {
        match self.status() {
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong on our side.".into(),
            _ => self.to_string(),
        }
    }

    /// Logs what the client does not see: the cause of a 5xx.
    pub fn log(&self) {
        if self.status().is_server_error() {
            // The cause's own message names the failing statement or command, never the
            // values in it (no emails or names in logs).
            let cause = std::error::Error::source(self).map(ToString::to_string);
            tracing::error!(error = %self, cause, "admin request failed");
        }
    }
}

impl ResponseError for AdminError {
    fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthenticated => StatusCode::SEE_OTHER,
            AdminError::Csrf => StatusCode::FORBIDDEN,
            AdminError::NotFound => StatusCode::NOT_FOUND,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Conflict(_) | AdminError::LimitReached(_) => StatusCode::CONFLICT,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AdminError::Postgres(_) | AdminError::Redis(_) | AdminError::Session(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Sale(e) => sale_status(e),
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        self.log();
        if let AdminError::Unauthenticated = self {
            return Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, "/admin/sign-in")
                .finish();
        }
        let status = self.status();
        let mut resp = views::message_page(status.canonical_reason().unwrap_or("Error"), &self.message())
            .with_status(status)
            .into_response();
        if let Some(secs) = self.retry_after() {
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
