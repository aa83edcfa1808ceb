//! API tokens: made in the portal (or by `boxoffice organizer token`), shown once, stored as a
//! SHA-256 hash only.

use maud::{Markup, html};
use poem::web::{Data, Form, Path};
use poem::{Response, handler};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

use super::auth::{organizer, see_other};
use super::events::{parse_id, show_time};
use super::views::{admin_page, csrf_field};
use super::{AdminError, csrf};
use crate::db;
use crate::startup::AppState;

/// A new secret: `prefix` and 244 random bits (two v4 UUIDs) in hex. API tokens and invite
/// links are made of it.
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Makes a token for `organizer` and returns it; this is the only time it is seen. The label
/// is kept as plain text of at most 100 characters, whoever gives it (portal or command line).
pub async fn issue(db: &PgPool, organizer: Uuid, label: &str) -> Result<String, AdminError> {
    let token = new_secret("bo_");
    let label: String = label.trim().chars().filter(|c| !c.is_control()).take(100).collect();
    db::api_tokens::insert(db, organizer, &digest(&token), &label).await?;
    Ok(token)
}

/// The organizer a bearer token belongs to.
pub async fn organizer_for(db: &PgPool, token: &str) -> Result<Uuid, AdminError> {
    db::api_tokens::organizer_for(db, &digest(token))
        .await?
        .ok_or(AdminError::Unauthenticated)
}

async fn page(state: &AppState, session: &Session, fresh: Option<&str>) -> Result<Markup, AdminError> {
    let me = organizer(session).await?;
    let token = csrf::token(session).await?;
    let tokens = db::api_tokens::list_for_organizer(&state.db, me).await?;
    Ok(admin_page(
        "API tokens",
        Some(&token),
        html! {
            h1 { "API tokens" }
            p { "A token lets a script use the organizer API under " code { "/api/v1/admin/" }
                " as you, with " code { "Authorization: Bearer <token>" } "." }
            @if let Some(fresh) = fresh {
                p.notice role="status" { "Your new token — copy it now, it is not shown again:" }
                pre.token { (fresh) }
            }
            form method="post" action="/admin/tokens" {
                (csrf_field(&token))
                p.field { label for="f-label" { "Label" } input #f-label type="text" name="label" maxlength="100"; }
                button type="submit" { "Create a token" }
            }
            @if !tokens.is_empty() {
                table {
                    thead { tr { th { "Label" } th { "Created" } th { "Last used" } th {} } }
                    tbody {
                        @for t in &tokens {
                            tr {
                                td { (t.label) }
                                td { (show_time(t.created_at)) }
                                td { @match t.last_used_at { Some(u) => (show_time(u)), None => "never" } }
                                td {
                                    form.inline method="post" action={ "/admin/tokens/" (t.id) "/revoke" } {
                                        (csrf_field(&token))
                                        button type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

#[handler]
pub async fn list(state: Data<&AppState>, session: Data<&Session>) -> Result<Markup, AdminError> {
    page(&state, &session, None).await
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

#[handler]
pub async fn create(
    state: Data<&AppState>,
    session: Data<&Session>,
    Form(f): Form<NewTokenForm>,
) -> Result<Markup, AdminError> {
    let me = organizer(&session).await?;
    csrf::verify(&session, &f.csrf).await?;
    let fresh = issue(&state.db, me, &f.label).await?;
    page(&state, &session, Some(&fresh)).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub async fn revoke(
    state: Data<&AppState>,
    session: Data<&Session>,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AdminError> {
    let me = organizer(&session).await?;
    csrf::verify(&session, &f.csrf).await?;
    if !db::api_tokens::delete(&state.db, parse_id(&id)?, me).await? {
        return Err(AdminError::NotFound);
    }
    Ok(see_other("/admin/tokens"))
}
