//! tower-sessions inside poem, and the binding of a reservation to its session.
//!
//! poem's tower compatibility layer offers `Service<poem::Request>`, while tower-sessions
//! wants `Service<http::Request<B>>`, so the two do not plug together directly. This middleware
//! hands the session layer a bodiless request carrying only the cookies, lets it put the
//! `Session` into that request, runs the poem endpoint with the session in its extensions, and
//! hands the response back so the layer can save the session and set the cookie. Errors are
//! rendered into a response inside, so a session touched by a 4xx is still saved.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use poem::http::header::COOKIE;
use poem::{Endpoint, Middleware, Request, Response, ResponseParts};
use sha2::{Digest, Sha256};
use tower::{Layer, ServiceExt};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

use crate::sale::Owner;
use crate::startup::AppState;

/// The cookie that carries the session id over plain HTTP.
pub const SESSION_COOKIE: &str = "bo_session";
/// The cookie that carries the session id with `BOXOFFICE_COOKIE_SECURE=1`. Browsers accept a
/// `__Host-` cookie only with `Secure`, `Path=/` and no `Domain`, so neither a plain-HTTP page
/// nor a sibling subdomain can plant one (a session fixed in advance, say).
pub const SECURE_SESSION_COOKIE: &str = "__Host-bo_session";

/// The name of the session cookie: one rule for the pages, the API and the hot poll.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_SESSION_COOKIE } else { SESSION_COOKIE }
}

/// Builds the session layer: HttpOnly, SameSite=Lax, `Secure` and `__Host-` when configured,
/// Path=/ without a Domain, and sessions that end after a day without use.
pub fn layer<S: SessionStore + Clone>(store: S, secure: bool) -> SessionLayer<S> {
    SessionLayer {
        layer: SessionManagerLayer::new(store)
            .with_name(cookie_name(secure))
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(secure)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::days(
                SESSION_DAYS,
            ))),
    }
}

pub struct SessionLayer<S: SessionStore> {
    layer: SessionManagerLayer<S>,
}

impl<E: Endpoint + 'static, S: SessionStore + Clone> Middleware<E> for SessionLayer<S> {
    type Output = SessionEndpoint<E, S>;

    fn transform(&self, ep: E) -> Self::Output {
        SessionEndpoint {
            inner: Arc::new(ep),
            layer: self.layer.clone(),
        }
    }
}

pub struct SessionEndpoint<E, S: SessionStore> {
    inner: Arc<E>,
    layer: SessionManagerLayer<S>,
}

impl<E: Endpoint + 'static, S: SessionStore + Clone> Endpoint for SessionEndpoint<E, S> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let mut probe = http::Request::new(());
        for value in req.headers().get_all(COOKIE) {
            probe.headers_mut().append(COOKIE, value.clone());
        }
        let slot = Arc::new(Mutex::new(Some(req)));
        let inner = self.inner.clone();
        let service = tower::service_fn(move |probe: http::Request<()>| {
            let (slot, inner) = (slot.clone(), inner.clone());
            async move {
                let mut req = slot
                    .lock()
                    .expect("request slot")
                    .take()
                    .expect("the request runs once");
                let session = probe.extensions().get::<Session>().cloned();
                if let Some(session) = &session {
                    req.extensions_mut().insert(session.clone());
                }
                let mut answer = inner.get_response(req).await;
                // The layer would save a changed session after the handler and answer a failed
                // save with a bare 500. Saving here first turns that into the clear "try again"
                // every other passing fault gets (the layer's own save then finds it done).
                if let Some(session) = session
                    && session.is_modified()
                    && !session.is_empty().await
                    && let Err(e) = session.save().await
                {
                    tracing::error!(error = %e, "saving the session failed");
                    answer = store_unavailable();
                }
                let (parts, body) = answer.into_parts();
                let mut resp = http::Response::new(body);
                *resp.status_mut() = parts.status;
                *resp.version_mut() = parts.version;
                *resp.headers_mut() = parts.headers;
                *resp.extensions_mut() = parts.extensions;
                Ok::<_, Infallible>(resp)
            }
        });
        let resp = match self.layer.layer(service).oneshot(probe).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = %e, "session store failed");
                return Ok(store_unavailable());
            }
        };
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(
            ResponseParts {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                extensions: parts.extensions,
            },
            body,
        ))
    }
}

/// The answer when the session store does not answer: nothing was lost, try again shortly.
fn store_unavailable() -> Response {
    Response::builder()
        .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
        .header(poem::http::header::RETRY_AFTER, "2")
        .content_type("text/plain; charset=utf-8")
        .body("The service is unavailable right now; please try again in a moment.")
}

/// The owner a reservation is bound to, derived from the session id alone: the hot poll reads
/// it straight from the cookie, without loading the session from the store. A hash, so the
/// reservation data in Redis never holds a usable session id.
pub fn owner_from_session_id(session_id: &str) -> Owner {
    let digest = Sha256::digest(session_id.as_bytes());
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18]);
    Owner::new(token).expect("24 base64url characters make a valid owner")
}

/// The owner of the request's session cookie, if it has one; no store access. Reads the
/// `Cookie` header itself: `Request::cookie` needs poem's cookie middleware, which the hot poll
/// does without. The cookie's name follows the app's settings: with `Secure` cookies a plain
/// `bo_session` (which anyone on the way could have set) is no session at all.
pub fn owner_from_cookie(req: &Request) -> Option<Owner> {
    let name = cookie_name(req.data::<AppState>().is_some_and(|s| s.settings.cookie_secure));
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        // the last one, as the session layer reads it, so pages and poll agree
        .rfind(|(n, value)| *n == name && !value.is_empty())
        .map(|(_, value)| owner_from_session_id(value.trim_matches('"')))
}

/// The owner of a session, saving the session first if it is new (a new session has no id
/// until it is stored). A new session is stored for [`UNBOUND_SESSION_MINUTES`] only, until
/// [`keep_for_its_reservations`] says it holds something: a join refused after this leaves
/// nothing in the store for long.
pub async fn owner_of(session: &Session) -> Result<Owner, tower_sessions::session::Error> {
    // Reading loads the record: a cookie whose session the store no longer has loses its id
    // here, and must not bind a reservation to a session that will never come back.
    session.get::<i64>("since").await?;
    if session.id().is_none() {
        session.set_expiry(Some(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::minutes(UNBOUND_SESSION_MINUTES),
        )));
        session.insert("since", chrono::Utc::now().timestamp()).await?;
        session.save().await?;
    }
    let id = session.id().expect("a saved session has an id");
    Ok(owner_from_session_id(&id.to_string()))
}

/// How long a session lives without use; the same for the layer and for sessions minted by
/// the API.
const SESSION_DAYS: i64 = 1;

/// How long a buyer session that holds no reservation yet lives without use.
pub const UNBOUND_SESSION_MINUTES: i64 = 30;

/// The session now holds a reservation or an order: it lives the full [`SESSION_DAYS`] without
/// use, so that its buyer finds them again.
pub fn keep_for_its_reservations(session: &Session) {
    session.set_expiry(Some(Expiry::OnInactivity(
        tower_sessions::cookie::time::Duration::days(SESSION_DAYS),
    )));
}

/// The owner for a request outside the session middleware (the JSON API). A client without a
/// session cookie gets a new session whose id, and so whose owner, is known at once but which
/// is stored only by [`NewSession::keep`], once the request has succeeded: a refused request
/// leaves nothing behind in the store. A request that carries a cookie costs no store access.
pub fn owner_or_new(req: &Request) -> (Owner, Option<NewSession>) {
    if let Some(owner) = owner_from_cookie(req) {
        return (owner, None);
    }
    let expiry = tower_sessions::cookie::time::OffsetDateTime::now_utc()
        + tower_sessions::cookie::time::Duration::days(SESSION_DAYS);
    // Not empty: the layer drops the cookie of a session that holds nothing.
    let data = [(
        "since".to_string(),
        serde_json::Value::from(chrono::Utc::now().timestamp()),
    )]
    .into_iter()
    .collect();
    let record = tower_sessions::session::Record {
        id: tower_sessions::session::Id::default(),
        data,
        expiry_date: expiry,
    };
    (
        owner_from_session_id(&record.id.to_string()),
        Some(NewSession { record }),
    )
}

/// A session started by the API, not stored yet.
pub struct NewSession {
    record: tower_sessions::session::Record,
}

impl NewSession {
    /// Stores the session exactly as the layer would, so that the pages of the same browser
    /// find it, and returns the `Set-Cookie` value to send. The id is already bound to what
    /// the request made; a store that had to change it (an id taken, never seen with 128
    /// random bits) is an error rather than a session bound to nothing.
    pub async fn keep<S: SessionStore>(
        mut self,
        store: &S,
        secure: bool,
    ) -> Result<String, tower_sessions::session::Error> {
        let id = self.record.id;
        store
            .create(&mut self.record)
            .await
            .map_err(tower_sessions::session::Error::Store)?;
        if self.record.id != id {
            return Err(tower_sessions::session::Error::Store(
                tower_sessions::session_store::Error::Backend("a new session id was taken".into()),
            ));
        }
        let cookie = tower_sessions::cookie::Cookie::build((cookie_name(secure), self.record.id.to_string()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/")
            .expires(self.record.expiry_date)
            .build();
        Ok(cookie.to_string())
    }
}
