//! API tokens: made in the portal (or by `boxoffice organizer token`), shown once, stored as a
//! SHA-256 hash only.

use maud::{Markup, html};
use poem::web::{Data, Path};
use poem::{Response, handler};
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::see_other;
use super::extract::CsrfForm;
use super::service::{self, Organizer};
use super::views::{admin_page, csrf_field, show_time};
use super::{AdminError, csrf};
use crate::startup::AppState;

async fn page(state: &AppState, me: Organizer, session: &Session, fresh: Option<&str>) -> Result<Markup, AdminError> {
    let token = csrf::token(session).await?;
    let tokens = service::tokens(state, me).await?;
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
pub async fn list(state: Data<&AppState>, me: Organizer, session: Data<&Session>) -> Result<Markup, AdminError> {
    page(&state, me, &session, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewTokenForm {
    label: String,
}

#[handler]
pub async fn create(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    CsrfForm(f): CsrfForm<NewTokenForm>,
) -> Result<Markup, AdminError> {
    let fresh = service::issue_token(&state.db, me, &f.label).await?;
    page(&state, me, &session, Some(&fresh)).await
}

#[handler]
pub async fn revoke(
    state: Data<&AppState>,
    me: Organizer,
    Path(id): Path<String>,
    _: CsrfForm,
) -> Result<Response, AdminError> {
    service::revoke_token(&state, me, service::parse_id(&id)?).await?;
    Ok(see_other("/admin/tokens"))
}
