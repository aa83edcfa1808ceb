//! Invite links: with `BOXOFFICE_SIGNUP=invite` a new organizer account needs one. An
//! organizer makes a link in the portal (or the operator with `boxoffice organizer invite`);
//! it is random, shown once, stored as its SHA-256 only, works once and lapses after
//! [`INVITE_DAYS`].

use chrono::{Duration, Utc};
use maud::{Markup, html};
use poem::http::header;
use poem::web::{Data, Form};
use poem::{Request, handler};
use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

use super::auth::{CsrfOnly, organizer};
use super::events::show_time;
use super::tokens::{digest, new_secret};
use super::views::{admin_page, csrf_field};
use super::{AdminError, csrf};
use crate::config::SignUp;
use crate::db;
use crate::startup::AppState;

/// How long an invite link works.
pub const INVITE_DAYS: i64 = 7;

/// Makes an invite from `organizer` and returns the path of its link (`/admin/sign-up?invite=…`);
/// this is the only time the link is seen.
pub async fn issue(db: &PgPool, organizer: Uuid) -> Result<String, AdminError> {
    let secret = new_secret("inv_");
    db::invites::insert(
        db,
        organizer,
        &digest(&secret),
        Utc::now() + Duration::days(INVITE_DAYS),
    )
    .await?;
    Ok(format!("/admin/sign-up?invite={secret}"))
}

/// Whether the invite in a sign-up link can still make an account.
pub async fn is_usable(db: &PgPool, secret: &str) -> Result<bool, AdminError> {
    Ok(db::invites::is_usable(db, &digest(secret)).await?)
}

/// Uses the invite inside the transaction that makes the account; false when it is unknown,
/// used or expired. Of two sign-ups with one invite, one wins: see [`db::invites::consume`].
pub async fn consume(tx: &mut sqlx::PgConnection, secret: &str) -> Result<bool, AdminError> {
    Ok(db::invites::consume(tx, &digest(secret)).await?)
}

async fn page(state: &AppState, session: &Session, fresh: Option<&str>) -> Result<Markup, AdminError> {
    let me = organizer(session).await?;
    let token = csrf::token(session).await?;
    let invites = db::invites::list_for_organizer(&state.db, me).await?;
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
pub async fn list(state: Data<&AppState>, session: Data<&Session>) -> Result<Markup, AdminError> {
    page(&state, &session, None).await
}

#[handler]
pub async fn create(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Form(f): Form<CsrfOnly>,
) -> Result<Markup, AdminError> {
    let me = organizer(&session).await?;
    csrf::verify(&session, &f.csrf).await?;
    let path = issue(&state.db, me).await?;
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
    page(&state, &session, Some(&link)).await
}
