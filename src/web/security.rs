//! Security headers on every response.
//!
//! The pages load only the app's own scripts and styles from `/assets/` (no inline scripts,
//! styles or event handlers; HTMX's own indicator styles are switched off in the layout), so
//! the policy allows `'self'` alone. The Swagger UI at `/api/docs` is one page that poem-openapi
//! ships with its script and styles inline: it gets its own policy that allows inline script and
//! style and nothing else more. It shows no user content, only the API's own description.
//!
//! With Stripe configured the policy also lets the order page load Stripe.js, show its frames
//! and let it call Stripe's API ([`stripe_csp`]); without, no origin but the shop's own.

use futures_util::FutureExt;
use poem::http::HeaderValue;
use poem::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::payment::Payments;

/// The policy of every page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The policy of the Swagger UI page, whose script and styles are inline.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                            style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                            frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The policy of every page when Stripe is configured: [`CSP`] plus Stripe.js's origin for
/// scripts and frames (and Stripe's own frame host), and Stripe's API for the calls Stripe.js
/// makes from the page.
pub fn stripe_csp(payments: &Payments) -> String {
    let (js, api) = (payments.js_origin(), payments.api_origin());
    format!(
        "default-src 'self'; script-src 'self' {js}; style-src 'self'; img-src 'self' data:; \
         frame-src {js} https://hooks.stripe.com; connect-src 'self' {api} {js}; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )
}

/// Adds the security headers to every response; a `Content-Security-Policy` set further in
/// (the docs page) is kept. The app's own are added by the edge (`web::edge`); the docs page
/// has this middleware for its own policy.
#[derive(Clone)]
pub struct SecurityHeaders {
    csp: HeaderValue,
}

impl SecurityHeaders {
    /// The app's policy, for everything: Stripe's origins only when Stripe is configured.
    pub fn app(payments: Option<&Payments>) -> Self {
        let csp = match payments {
            Some(p) => HeaderValue::from_str(&stripe_csp(p)).expect("URLs checked by the settings are header text"),
            None => HeaderValue::from_static(CSP),
        };
        SecurityHeaders { csp }
    }

    /// The relaxed policy of the Swagger UI.
    pub fn docs() -> Self {
        SecurityHeaders {
            csp: HeaderValue::from_static(DOCS_CSP),
        }
    }

    /// Puts the headers on `resp`, keeping a policy set further in (the docs page's).
    pub fn add_to(&self, resp: &mut Response) {
        let headers = resp.headers_mut();
        if !headers.contains_key(CONTENT_SECURITY_POLICY) {
            headers.insert(CONTENT_SECURITY_POLICY, self.csp.clone());
        }
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SecurityHeadersEndpoint {
            inner,
            headers: self.clone(),
        }
    }
}

pub struct SecurityHeadersEndpoint<E> {
    inner: E,
    headers: SecurityHeaders,
}

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;

    // The request is handed on before the future is made (see `web::app`).
    fn call(&self, req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        self.inner.call(req).map(move |result| {
            // Errors become responses here, so that they carry the headers too.
            let mut resp = match result {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            };
            self.headers.add_to(&mut resp);
            Ok(resp)
        })
    }
}
