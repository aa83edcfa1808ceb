//! CSRF protection of the portal's forms: a random token kept in the session, sent back as a
//! hidden field by every form, and checked on every POST before anything else happens. A
//! cross-site form cannot read the token, so it cannot send it. The bearer-token API needs no
//! such token: a browser never attaches a bearer token on its own.

use tower_sessions::Session;
use uuid::Uuid;

use super::AdminError;

const KEY: &str = "csrf";
/// The hidden field's name in every admin form.
pub const FIELD: &str = "csrf";

/// The session's token, made on first use.
pub async fn token(session: &Session) -> Result<String, AdminError> {
    if let Some(t) = session.get::<String>(KEY).await? {
        return Ok(t);
    }
    renew(session).await
}

/// A fresh token: at sign-in, so a token seen before signing in is worth nothing after.
pub async fn renew(session: &Session) -> Result<String, AdminError> {
    let t = Uuid::new_v4().simple().to_string();
    session.insert(KEY, &t).await?;
    Ok(t)
}

/// Refuses a form whose token is missing or not the session's.
pub async fn verify(session: &Session, given: &str) -> Result<(), AdminError> {
    match session.get::<String>(KEY).await? {
        Some(expected) if !given.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes()) => Ok(()),
        _ => Err(AdminError::Csrf),
    }
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_tokens() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
