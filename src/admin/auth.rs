//! Organizer accounts: sign-up, sign-in, sign-out, password hashing, and the sign-in rate
//! limits.
//!
//! Who may sign up is `BOXOFFICE_SIGNUP`: nobody (accounts come from the command line), holders
//! of an invite link (`invites`), or anyone.
//!
//! The session holds the signed-in organizer's id; its id is renewed at sign-in (so a session
//! id planted before cannot be used after) and the whole session is deleted at sign-out.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use governor::Quota;
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use tower_sessions::cookie::time;
use tower_sessions::{Expiry, Session};
use uuid::Uuid;

use super::extract::CsrfForm;
use super::forms::{Email, FieldErrors, NewPassword};
use super::service::{self, Organizer};
use super::views::{admin_page, csrf_field, field, form_error};
use super::{AdminError, csrf};
use crate::config::SignUp;
use crate::db;
use crate::startup::AppState;
use crate::web::client::ClientKey;
use crate::web::rate_limit::KeyedLimit;

const ORGANIZER: &str = "organizer";

/// The signed-in organizer of this session, or `Unauthenticated`.
pub async fn organizer(session: &Session) -> Result<Organizer, AdminError> {
    session
        .get::<Uuid>(ORGANIZER)
        .await?
        .map(Organizer)
        .ok_or(AdminError::Unauthenticated)
}

/// Hashes a password with argon2id and a random salt (default parameters), off the async
/// threads: it is meant to be slow.
pub async fn hash_password(password: String) -> Result<String, AdminError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AdminError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| AdminError::Internal(format!("hashing a password: {e}")))?
}

/// Checks a password against a stored hash; with no hash (no such account) it checks against
/// a dummy, so that the answer takes as long whether the account exists or not.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let dummy = DUMMY.get_or_init(|| {
            Argon2::default()
                .hash_password(b"no such account")
                .map(|h| h.to_string())
                .unwrap_or_default()
        });
        let exists = hash.is_some();
        let hash = hash.as_deref().unwrap_or(dummy);
        Argon2::default().verify_password(password.as_bytes(), hash).is_ok() && exists
    })
    .await
    .unwrap_or(false)
}

/// Sign-in attempts allowed per client address and per account. Kept in this instance's
/// memory: with N instances behind a balancer a client gets up to N times as many. The shared
/// [`KeyedLimit`] drops recovered keys now and then, so attempts with ever new emails cannot
/// grow it without bound.
#[derive(Clone)]
pub struct SignInLimits {
    per_client: KeyedLimit<IpAddr>,
    /// Keyed by client and account together: guessing one account's password from one
    /// address is slowed, while its owner, elsewhere, still signs in.
    per_account: KeyedLimit<(Option<IpAddr>, String)>,
    /// Views of the sign-in and sign-up forms: each starts a session (for its CSRF token), so
    /// unlimited views could fill the session store.
    forms_per_client: KeyedLimit<IpAddr>,
}

/// 20 attempts at once per client, then one every 6 seconds (10 a minute).
pub const PER_CLIENT_BURST: u32 = 20;
/// 5 attempts at once per account and client, then one a minute.
pub const PER_ACCOUNT_BURST: u32 = 5;
/// Views of the sign-in and sign-up forms per client: 60 at once, then one a second.
pub const FORMS_PER_MINUTE: u32 = 60;
/// A session started by an anonymous form view lives this long without use; signing in
/// gives it the full day.
const ANONYMOUS_SESSION_MINUTES: i64 = 30;

impl Default for SignInLimits {
    fn default() -> Self {
        let nz = |n| NonZeroU32::new(n).expect("non-zero");
        let client = Quota::with_period(Duration::from_secs(6))
            .expect("non-zero period")
            .allow_burst(nz(PER_CLIENT_BURST));
        let account = Quota::per_minute(nz(1)).allow_burst(nz(PER_ACCOUNT_BURST));
        SignInLimits {
            per_client: KeyedLimit::new(client),
            per_account: KeyedLimit::new(account),
            forms_per_client: KeyedLimit::per_minute(FORMS_PER_MINUTE),
        }
    }
}

impl SignInLimits {
    fn check_client(&self, client: ClientKey) -> Result<(), AdminError> {
        let Some(ip) = client.0 else { return Ok(()) };
        self.per_client
            .check(&ip)
            .map_err(|retry_after| AdminError::RateLimited { retry_after })
    }

    fn check_form_view(&self, client: ClientKey) -> Result<(), AdminError> {
        let Some(ip) = client.0 else { return Ok(()) };
        self.forms_per_client
            .check(&ip)
            .map_err(|retry_after| AdminError::RateLimited { retry_after })
    }

    fn check_account(&self, client: ClientKey, email: &Email) -> Result<(), AdminError> {
        self.per_account
            .check(&(client.0, email.as_str().to_string()))
            .map_err(|retry_after| AdminError::RateLimited { retry_after })
    }
}

#[derive(Deserialize, Default)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// The secret of the invite link the sign-up form came from, if any.
    #[serde(default)]
    invite: String,
}

/// What a credentials page shows besides its fields.
#[derive(Default)]
struct PageText<'a> {
    /// The invite a sign-up form carries on.
    invite: &'a str,
    /// An error about the whole form (a wrong password).
    error: Option<&'a str>,
    /// A notice (after sign-up).
    notice: Option<&'a str>,
}

fn credentials_page(new_account: bool, token: &str, email: &str, errors: &FieldErrors, text: PageText) -> Markup {
    let (title, action, other) = if new_account {
        (
            "Create an organizer account",
            "/admin/sign-up",
            html! { "Have an account? " a href="/admin/sign-in" { "Sign in" } },
        )
    } else {
        (
            "Sign in",
            "/admin/sign-in",
            html! { "New here? " a href="/admin/sign-up" { "Create an account" } },
        )
    };
    admin_page(
        title,
        None,
        html! {
            h1 { (title) }
            @if let Some(n) = text.notice { p.notice role="status" { (n) } }
            (form_error(text.error))
            form method="post" action=(action) {
                (csrf_field(token))
                @if !text.invite.is_empty() { input type="hidden" name="invite" value=(text.invite); }
                (field("Email", "email", "email", email, errors, None))
                (field("Password", "password", "password", "", errors, new_account.then_some("At least 10 characters.")))
                button type="submit" { (title) }
            }
            p { (other) }
        },
    )
}

/// The sign-in page after a sign-up. It says the same whether the email was new or not, so
/// that sign-up does not tell who has an account.
const AFTER_SIGN_UP: &str = "If this email had no account, it has one now: sign in with it. \
    If it had one already, nothing was changed: sign in with that account's password.";

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    #[serde(default, rename = "signed-up")]
    signed_up: Option<String>,
}

#[handler]
pub async fn sign_in_form(
    limits: Data<&SignInLimits>,
    session: Data<&Session>,
    client: ClientKey,
    Query(q): Query<SignInQuery>,
) -> Result<Markup, AdminError> {
    limits.check_form_view(client)?;
    let token = form_token(&session).await?;
    let text = PageText {
        notice: q.signed_up.is_some().then_some(AFTER_SIGN_UP),
        ..PageText::default()
    };
    Ok(credentials_page(false, &token, "", &FieldErrors::default(), text))
}

/// The CSRF token of a sign-in or sign-up form, once the view has passed the per-client limit
/// of form views. A session that starts here belongs to nobody yet, so it lives only half an
/// hour without use (a buyer's session keeps its own life).
async fn form_token(session: &Session) -> Result<String, AdminError> {
    // Loading first: a cookie whose session the store lost counts as no session.
    session.get::<Uuid>(ORGANIZER).await?;
    if session.id().is_none() {
        session.set_expiry(Some(Expiry::OnInactivity(time::Duration::minutes(
            ANONYMOUS_SESSION_MINUTES,
        ))));
    }
    csrf::token(session).await
}

const SIGN_UP_CLOSED: &str = "New organizer accounts are made by the operator of this shop; please ask them.";
const INVITE_NEEDED: &str = "A new organizer account needs an invite link from an organizer of this shop.";
const INVITE_SPENT: &str = "This invite link has been used or has expired; please ask for a new one.";

/// Whether `BOXOFFICE_SIGNUP` lets this sign-up go ahead at all. Whether the invite still
/// works is decided when the account is made.
fn sign_up_allowed(mode: SignUp, invite: &str) -> Result<(), AdminError> {
    match mode {
        SignUp::Closed => Err(AdminError::Forbidden(SIGN_UP_CLOSED)),
        SignUp::Invite if invite.is_empty() => Err(AdminError::Forbidden(INVITE_NEEDED)),
        SignUp::Invite | SignUp::Open => Ok(()),
    }
}

#[derive(Deserialize, Default)]
pub struct SignUpQuery {
    #[serde(default)]
    invite: String,
}

#[handler]
pub async fn sign_up_form(
    state: Data<&AppState>,
    limits: Data<&SignInLimits>,
    session: Data<&Session>,
    client: ClientKey,
    Query(q): Query<SignUpQuery>,
) -> Result<Markup, AdminError> {
    let mode = state.settings.signup;
    sign_up_allowed(mode, &q.invite)?;
    // Limited before the invite is looked up: forged links cost Postgres no more than views.
    limits.check_form_view(client)?;
    if mode == SignUp::Invite && !service::invite_is_usable(&state.db, &q.invite).await? {
        return Err(AdminError::Forbidden(INVITE_SPENT));
    }
    let token = form_token(&session).await?;
    let invite = if mode == SignUp::Invite { q.invite.as_str() } else { "" };
    let text = PageText {
        invite,
        ..PageText::default()
    };
    Ok(credentials_page(true, &token, "", &FieldErrors::default(), text))
}

#[handler]
pub async fn sign_in(
    state: Data<&AppState>,
    limits: Data<&SignInLimits>,
    session: Data<&Session>,
    client: ClientKey,
    CsrfForm(form): CsrfForm<Credentials>,
) -> Result<Response, AdminError> {
    limits.check_client(client)?;
    let refuse = |token: &str| {
        let text = PageText {
            error: Some("Wrong email or password."),
            ..PageText::default()
        };
        credentials_page(false, token, &form.email, &FieldErrors::default(), text)
            .with_status(StatusCode::UNAUTHORIZED)
            .into_response()
    };
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(message) => {
            let token = csrf::token(&session).await?;
            let errors = FieldErrors::one("email", message);
            return Ok(
                credentials_page(false, &token, &form.email, &errors, PageText::default())
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                    .into_response(),
            );
        }
    };
    limits.check_account(client, &email)?;
    let account = db::organizers::find_by_email(&state.db, email.as_str()).await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    match account {
        Some(account) if verify_password(form.password.clone(), hash).await => {
            start_session(&session, account.id).await?;
            Ok(see_other("/admin"))
        }
        other => {
            if other.is_none() {
                // Spend the same time as a real check, so probing for accounts learns nothing.
                verify_password(form.password.clone(), None).await;
            }
            Ok(refuse(&csrf::token(&session).await?))
        }
    }
}

/// Makes the account and sends the browser to sign in. Whether the email had an account
/// already changes nothing in the answer (the same redirect, no session, the password hashed
/// either way), so sign-up cannot be used to find out who has one. With invites, the invite is
/// used in the same transaction, whatever became of the email.
#[handler]
pub async fn sign_up(
    state: Data<&AppState>,
    limits: Data<&SignInLimits>,
    session: Data<&Session>,
    client: ClientKey,
    CsrfForm(form): CsrfForm<Credentials>,
) -> Result<Response, AdminError> {
    limits.check_client(client)?;
    let mode = state.settings.signup;
    sign_up_allowed(mode, &form.invite)?;
    let mut errors = FieldErrors::default();
    let email = Email::parse(&form.email).map_err(|m| errors.add("email", m)).ok();
    let password = NewPassword::parse(&form.password)
        .map_err(|m| errors.add("password", m))
        .ok();
    let (Some(email), Some(password)) = (email, password) else {
        let token = csrf::token(&session).await?;
        let text = PageText {
            invite: if mode == SignUp::Invite { &form.invite } else { "" },
            ..PageText::default()
        };
        return Ok(credentials_page(true, &token, &form.email, &errors, text)
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response());
    };
    let hash = hash_password(password.as_str().to_string()).await?;
    let mut tx = state.db.begin().await?;
    if mode == SignUp::Invite && !service::consume_invite(&mut tx, &form.invite).await? {
        return Err(AdminError::Forbidden(INVITE_SPENT));
    }
    db::organizers::insert_if_new(&mut *tx, email.as_str(), &hash).await?;
    tx.commit().await?;
    Ok(see_other("/admin/sign-in?signed-up"))
}

/// Makes an account; a second account with the same email is a field error.
pub async fn create_organizer(db: &sqlx::PgPool, email: &Email, password: &NewPassword) -> Result<Uuid, AdminError> {
    let hash = hash_password(password.as_str().to_string()).await?;
    match db::organizers::insert(db, email.as_str(), &hash).await {
        Ok(o) => Ok(o.id),
        Err(e) if db::organizers::is_duplicate_email(&e) => Err(AdminError::Invalid(FieldErrors::one(
            "email",
            "An account with this email exists already.",
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn start_session(session: &Session, organizer: Uuid) -> Result<(), AdminError> {
    session.cycle_id().await?;
    session.set_expiry(Some(Expiry::OnInactivity(time::Duration::days(1))));
    session.insert(ORGANIZER, organizer).await?;
    csrf::renew(session).await?;
    Ok(())
}

#[handler]
pub async fn sign_out(session: Data<&Session>, _: CsrfForm) -> Result<Response, AdminError> {
    session.flush().await?;
    Ok(see_other("/admin/sign-in"))
}

pub use crate::web::redirect::see_other;
