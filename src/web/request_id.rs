//! A request id for every request: taken from the client's (or the proxy's) `X-Request-Id`
//! when it is a sane token, made up otherwise, sent back in the response's `X-Request-Id`, and
//! recorded in the request's span so that every log line of the request carries it.
//!
//! The span holds the method and the id only: the raw path may carry a reservation code, and
//! nothing about the buyer belongs in logs.

use futures_util::FutureExt;
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The middleware; put it outermost so its span covers everything else.
pub struct RequestId;

impl<E: Endpoint> Middleware<E> for RequestId {
    type Output = RequestIdEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestIdEndpoint { inner: ep }
    }
}

pub struct RequestIdEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestIdEndpoint<E> {
    type Output = Response;

    // The request is handed on before the future is made (see `web::app`).
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        let id = req
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| acceptable(v))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let span = tracing::info_span!("request", request_id = %id, method = %req.method());
        let inner = span.in_scope(|| self.inner.call(req)).instrument(span);
        inner.map(move |result| {
            let mut resp = match result {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            };
            if let Ok(value) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert(HEADER, value);
            }
            Ok(resp)
        })
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
