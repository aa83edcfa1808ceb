//! A request id for every request: taken from the client's (or the proxy's) `X-Request-Id`
//! when it is a sane token, made up otherwise, sent back in the response's `X-Request-Id`, and
//! recorded in the request's span so that every log line of the request carries it. The edge
//! (`web::edge`) does all three, outermost, so that the span covers everything else.
//!
//! The span holds the method and the id only: the raw path may carry a reservation code, and
//! nothing about the buyer belongs in logs.

use poem::http::{HeaderName, HeaderValue};
use poem::{Request, Response};

/// Its header, named once: a name given as text is parsed again at every insert.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id: the client's when it is [`acceptable`], a new one otherwise.
pub fn of(req: &Request) -> String {
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The span of the request `id`: the method and the id, nothing about the buyer.
pub fn span(id: &str, req: &Request) -> tracing::Span {
    tracing::info_span!("request", request_id = %id, method = %req.method())
}

/// Sends the id back with the response.
pub fn add_to(resp: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(&HEADER, value);
    }
}

/// A client's id is kept when it is short and plain, so that it cannot forge log lines or
/// bloat them.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_kept_and_odd_ones_replaced() {
        assert!(acceptable("0f8c2a7e-1b2c-4d5e-9f00-123456789abc"));
        assert!(acceptable("lb:42.7"));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable(&"x".repeat(65)));
    }
}
