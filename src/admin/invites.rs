//! Invite links: with `BOXOFFICE_SIGNUP=invite` a new organizer account needs one. An
//! organizer makes a link in the portal (or the operator with `boxoffice organizer invite`);
//! it is random, shown once, stored as its SHA-256 only, works once and lapses after
//! [`INVITE_DAYS`].

use chrono::Utc;
use maud::{Markup, html};
use poem::http::header;
use poem::web::Data;
use poem::{Request, handler};
use tower_sessions::Session;

use super::extract::CsrfForm;
use super::service::{self, INVITE_DAYS, Organizer};
use super::views::{admin_page, csrf_field, show_time};
use super::{AdminError, csrf};
use crate::config::SignUp;
use crate::startup::AppState;

async fn page(state: &AppState, me: Organizer, session: &Session, fresh: Option<&str>) -> Result<Markup, AdminError> {
    let token = csrf::token(session).await?;
    let invites = service::invites(state, me).await?;
    let now = Utc::now();
    Ok(admin_page(
        "Invites",
        Some(&token),
        html! {
            h1 { "Invites" }
            @match state.settings.signup {
                SignUp::Invite => p { "An invite link lets one person make an organizer account. It works once, for "
                    (INVITE_DAYS) " days." },
                SignUp::Open => p { "Anyone may make an organizer account on this shop; invite links work too." },
                SignUp::Closed => p { "New organizer accounts are made by the operator alone on this shop; invite links do not work." },
            }
            @if let Some(fresh) = fresh {
                p.notice role="status" { "Your new invite link — copy it now, it is not shown again:" }
                pre.token { (fresh) }
            }
            form method="post" action="/admin/invites" {
                (csrf_field(&token))
                button type="submit" { "Make an invite link" }
            }
            @if !invites.is_empty() {
                table {
                    thead { tr { th { "Made" } th { "Expires" } th { "State" } } }
                    tbody {
                        @for i in &invites {
                            tr {
                                td { (show_time(i.created_at)) }
                                td { (show_time(i.expires_at)) }
                                td { @match i.used_at {
                                    Some(u) => { "used " (show_time(u)) },
                                    None if i.expires_at <= now => "expired",
                                    None => "open",
                                } }
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

#[handler]
pub async fn create(
    state: Data<&AppState>,
    me: Organizer,
    session: Data<&Session>,
    req: &Request,
    _: CsrfForm,
) -> Result<Markup, AdminError> {
    let path = service::issue_invite(&state.db, me).await?;
    // The whole link, as the organizer's own browser reached this shop.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let scheme = if state.settings.cookie_secure { "https" } else { "http" };
    let link = if host.is_empty() {
        path
    } else {
        format!("{scheme}://{host}{path}")
    };
    page(&state, me, &session, Some(&link)).await
}
