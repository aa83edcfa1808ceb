//! What every organizer handler needs before it starts, checked once: the signed-in
//! [`Organizer`] of a portal page, the organizer of an API token ([`ApiOrganizer`]), and a
//! portal form whose CSRF token is the session's ([`CsrfForm`]).
//!
//! poem extracts a handler's arguments in their order, so a handler that takes `Organizer`
//! before `CsrfForm` checks who is asking before it looks at the form.

use poem::web::{Data, Form};
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use super::service::{self, Organizer};
use super::{AdminError, auth, csrf};
use crate::startup::AppState;

/// The signed-in organizer of a portal page; without one the page sends the browser to sign in.
impl<'a> FromRequest<'a> for Organizer {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let session = <Data<&Session>>::from_request(req, body).await?;
        Ok(auth::organizer(&session).await?)
    }
}

/// `Authorization: Bearer <token>`, a token made in the portal under API tokens.
#[derive(SecurityScheme)]
#[oai(rename = "OrganizerToken", ty = "bearer", checker = "organizer_of_bearer")]
pub struct ApiOrganizer(pub Organizer);

/// The organizer the bearer token belongs to; an unknown token is `Unauthenticated`.
async fn organizer_of_bearer(req: &Request, bearer: Bearer) -> poem::Result<Organizer> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| AdminError::Internal("the app state is missing".into()))?;
    let found = service::organizer_of_token(&state.db, &bearer.token)
        .await
        .map_err(AdminError::from)?;
    Ok(found.ok_or(AdminError::Unauthenticated)?)
}

/// A portal form of fields `T` whose hidden `csrf` field holds the session's token; any other
/// form is refused with 403 before the handler runs, so nothing changes.
pub struct CsrfForm<T = NoFields>(pub T);

/// The fields of a form that carries nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct WithToken<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

impl<'a, T: DeserializeOwned + Send> FromRequest<'a> for CsrfForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Form(form) = <Form<WithToken<T>>>::from_request(req, body).await?;
        let session = <Data<&Session>>::from_request(req, body).await?;
        csrf::verify(&session, &form.csrf).await?;
        Ok(CsrfForm(form.fields))
    }
}
