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
use hmac::{Hmac, Mac};
use poem::http::header::COOKIE;
use poem::{Endpoint, Middleware, Request, Response, ResponseParts};
use sha2::{Digest, Sha256};
use tower::{Layer, ServiceExt};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore, session_store};

use crate::config::Secret;
use crate::sale::{Owner, SessionMade};
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
    owner_and_when(session).await.map(|(owner, _)| owner)
}

/// [`owner_of`], and whether this request made the session: a join then need not look for
/// the owner's reservations ([`SessionMade`]).
pub async fn owner_and_when(session: &Session) -> Result<(Owner, SessionMade), tower_sessions::session::Error> {
    // Reading loads the record: a cookie whose session the store no longer has loses its id
    // here, and must not bind a reservation to a session that will never come back.
    session.get::<i64>("since").await?;
    let made = if session.id().is_none() {
        session.set_expiry(Some(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::minutes(UNBOUND_SESSION_MINUTES),
        )));
        session.insert("since", chrono::Utc::now().timestamp()).await?;
        session.save().await?;
        SessionMade::Now
    } else {
        SessionMade::Before
    };
    let id = session.id().expect("a saved session has an id");
    Ok((owner_from_session_id(&id.to_string()), made))
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
/// session cookie gets a new session id, [`Minted`] under the app's secret, whose owner is
/// known at once and which is never stored for the API: [`NewSession::cookie`] hands it to
/// the client once the request has succeeded, and a refused request leaves nothing behind. A
/// request that carries a cookie costs no store access.
pub fn owner_or_new(req: &Request) -> (Owner, Option<NewSession>) {
    if let Some(owner) = owner_from_cookie(req) {
        return (owner, None);
    }
    let state = req.data::<AppState>().expect("the app's state is in every request");
    let id = Minted::mint(&state.settings.secret);
    (owner_from_session_id(&id.to_string()), Some(NewSession { id }))
}

/// A session started by the API: an id, nothing stored.
pub struct NewSession {
    id: Id,
}

impl NewSession {
    /// The `Set-Cookie` value that gives the client this session, as the layer would set it.
    pub fn cookie(self, secure: bool) -> String {
        let expires = tower_sessions::cookie::time::OffsetDateTime::now_utc()
            + tower_sessions::cookie::time::Duration::days(SESSION_DAYS);
        tower_sessions::cookie::Cookie::build((cookie_name(secure), self.id.to_string()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/")
            .expires(expires)
            .build()
            .to_string()
    }
}

/// Buyer sessions the API starts cost the store nothing: their id is minted here, tagged with
/// an HMAC under `BOXOFFICE_SECRET`, and never written until a page has something to keep in
/// it (a page join, an order). [`SessionsWithMinted`] answers the load of such an id as a
/// session holding nothing yet, so that the pages bind the same owner as the API; an id that
/// is neither stored nor tagged (tampered with, made up, or minted under another secret) is no
/// session, as before.
///
/// The id's 128 bits: the hour it was minted (24 bits, so that a tag is good for
/// [`SESSION_DAYS`] only), 64 random bits, and 40 bits of the tag over the other 88.
struct Minted;

impl Minted {
    const HOUR: usize = 3;
    const RANDOM: usize = 8;

    fn mac(secret: &Secret, head: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
        mac.update(b"buyer-session\0");
        mac.update(head);
        mac
    }

    fn hours_now() -> u32 {
        (chrono::Utc::now().timestamp() / 3600) as u32 & 0x00ff_ffff
    }

    fn mint(secret: &Secret) -> Id {
        let mut bytes = [0u8; 16];
        bytes[..Self::HOUR].copy_from_slice(&Self::hours_now().to_be_bytes()[1..]);
        getrandom::fill(&mut bytes[Self::HOUR..Self::HOUR + Self::RANDOM])
            .expect("the operating system's random source is available");
        let head = Self::HOUR + Self::RANDOM;
        let tag = Self::mac(secret, &bytes[..head]).finalize().into_bytes();
        bytes[head..].copy_from_slice(&tag[..16 - head]);
        Id(i128::from_be_bytes(bytes))
    }

    /// Whether this process (or one with the same secret) minted `id` within the last
    /// [`SESSION_DAYS`]; the tag is compared in constant time.
    fn genuine(secret: &Secret, id: &Id) -> bool {
        let bytes = id.0.to_be_bytes();
        let head = Self::HOUR + Self::RANDOM;
        let minted = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        let age = Self::hours_now().wrapping_sub(minted) & 0x00ff_ffff;
        age <= 24 * SESSION_DAYS as u32
            && Self::mac(secret, &bytes[..head])
                .verify_truncated_left(&bytes[head..])
                .is_ok()
    }
}

/// The session store of the app: the given store, plus the ids [`Minted`] by the API, which
/// it holds nothing for until they are saved.
#[derive(Clone, Debug)]
pub struct SessionsWithMinted<S> {
    store: S,
    secret: Secret,
}

impl<S> SessionsWithMinted<S> {
    pub fn new(store: S, secret: Secret) -> Self {
        SessionsWithMinted { store, secret }
    }
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for SessionsWithMinted<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.store.create(record).await
    }

    /// The store's save only replaces a record (Redis `SET … XX`, an error when there is
    /// none), so a minted session's first save creates it under its own id. When a racing
    /// request of the same session created it first, the create fails (or, in a store that
    /// picks another id then, makes a record that is deleted again) and the save replaces it.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let replaced = self.store.save(record).await;
        if replaced.is_ok() || !Minted::genuine(&self.secret, &record.id) {
            return replaced;
        }
        let mut first = record.clone();
        match self.store.create(&mut first).await {
            Ok(()) if first.id == record.id => return Ok(()),
            Ok(()) => self.store.delete(&first.id).await?,
            Err(_) => {}
        }
        self.store.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        if let Some(record) = self.store.load(id).await? {
            return Ok(Some(record));
        }
        Ok(Minted::genuine(&self.secret, id).then(|| fresh_record(*id)))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete(id).await
    }
}

/// A session holding only when it started, living [`SESSION_DAYS`]. Not empty: the layer
/// drops the cookie of a session that holds nothing.
fn fresh_record(id: Id) -> Record {
    let expiry_date = tower_sessions::cookie::time::OffsetDateTime::now_utc()
        + tower_sessions::cookie::time::Duration::days(SESSION_DAYS);
    let data = [(
        "since".to_string(),
        serde_json::Value::from(chrono::Utc::now().timestamp()),
    )]
    .into_iter()
    .collect();
    Record { id, data, expiry_date }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(format!("{s}-a-secret-of-at-least-32-characters"))
    }

    #[test]
    fn a_minted_id_is_genuine_under_its_secret_only_and_untouched() {
        let id = Minted::mint(&secret("one"));
        assert!(Minted::genuine(&secret("one"), &id));
        assert!(!Minted::genuine(&secret("two"), &id), "another secret");
        for bit in [0, 30, 64, 100, 127] {
            assert!(
                !Minted::genuine(&secret("one"), &Id(id.0 ^ (1i128 << bit))),
                "bit {bit} flipped"
            );
        }
        assert!(!Minted::genuine(&secret("one"), &Id::default()), "a random id");
        assert_ne!(Minted::mint(&secret("one")), id, "each mint is new");
    }

    #[test]
    fn a_minted_id_is_good_for_the_session_days_only() {
        let s = secret("one");
        let aged = |hours: u32| {
            let mut bytes = [0u8; 16];
            let minted = Minted::hours_now().wrapping_sub(hours) & 0x00ff_ffff;
            bytes[..3].copy_from_slice(&minted.to_be_bytes()[1..]);
            let head = Minted::HOUR + Minted::RANDOM;
            let tag = Minted::mac(&s, &bytes[..head]).finalize().into_bytes();
            bytes[head..].copy_from_slice(&tag[..16 - head]);
            Id(i128::from_be_bytes(bytes))
        };
        assert!(Minted::genuine(&s, &aged(0)));
        assert!(Minted::genuine(&s, &aged(24 * SESSION_DAYS as u32)));
        assert!(!Minted::genuine(&s, &aged(24 * SESSION_DAYS as u32 + 1)));
    }
}
