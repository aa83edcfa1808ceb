//! Security headers on every response.
//!
//! The pages load only the app's own scripts and styles from `/assets/` (no inline scripts,
//! styles or event handlers; HTMX's own indicator styles are switched off in the layout), so
//! the policy allows `'self'` alone. The Swagger UI at `/api/docs` is one page that poem-openapi
//! ships with its script and styles inline: it gets its own policy that allows inline script and
//! style and nothing else more. It shows no user content, only the API's own description.

use poem::http::HeaderValue;
use poem::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// The policy of every page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The policy of the Swagger UI page, whose script and styles are inline.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                            style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                            frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Adds the security headers to every response; a `Content-Security-Policy` set further in
/// (the docs page) is kept.
pub struct SecurityHeaders {
    csp: &'static str,
}

impl SecurityHeaders {
    /// The app's policy, for everything.
    pub fn app() -> Self {
        SecurityHeaders { csp: CSP }
    }

    /// The relaxed policy of the Swagger UI.
    pub fn docs() -> Self {
        SecurityHeaders { csp: DOCS_CSP }
    }
}

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SecurityHeadersEndpoint { inner, csp: self.csp }
    }
}

pub struct SecurityHeadersEndpoint<E> {
    inner: E,
    csp: &'static str,
}

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        // Errors become responses here, so that they carry the headers too.
        let mut resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let headers = resp.headers_mut();
        if !headers.contains_key(CONTENT_SECURITY_POLICY) {
            headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(self.csp));
        }
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        Ok(resp)
    }
}
