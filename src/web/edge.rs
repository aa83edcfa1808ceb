//! The one layer every request passes first: it bounds the body, gives the request its id and
//! span, answers a plain JSON poll itself (the routes would cost it more than its answer: see
//! `buyer::api_poll`), and on the way out counts and times the answer and puts the id and the
//! security headers on it. One layer rather than four: each layer took the request (near a
//! kilobyte) by value and wrapped the future of the next; as one they cost every request some
//! 800 instructions less (see BENCHMARKS.md). Each concern keeps its rule in its own module
//! (`request_id`, `metrics`, `security`); this is only their order.

use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::{Either, ready};
use poem::http::{Method, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, PathPattern, Request, Response};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use super::buyer::api_poll::ShortPoll;
use super::security::SecurityHeaders;
use super::{metrics, request_id};

/// The largest request body read: ample for every form and API call (a 100 kB field still
/// gets its own clear error), small enough that bodies cannot exhaust memory.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The edge, with the app's security headers and, if given, the JSON poll's short way.
pub struct Edge {
    security: SecurityHeaders,
    short_poll: Option<ShortPoll>,
}

impl Edge {
    pub fn new(security: SecurityHeaders) -> Self {
        Edge {
            security,
            short_poll: None,
        }
    }

    /// Plain JSON polls are answered here, before the routes (see `buyer::api_poll`).
    pub fn with_short_poll(self, short_poll: ShortPoll) -> Self {
        Edge {
            short_poll: Some(short_poll),
            ..self
        }
    }
}

impl<E: Endpoint> Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EdgeEndpoint {
            inner,
            security: self.security.clone(),
            short_poll: self.short_poll.clone(),
        }
    }
}

pub struct EdgeEndpoint<E> {
    inner: E,
    security: SecurityHeaders,
    short_poll: Option<ShortPoll>,
}

impl<E: Endpoint> Endpoint for EdgeEndpoint<E> {
    type Output = Response;

    // The request is handed on before the future is made (see `web::app`).
    fn call(&self, mut req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        let started = Instant::now();
        let method = metrics::method_label(req.method());
        let id = request_id::of(&req);
        let span = request_id::span(&id, &req);
        let short_poll = self.short_poll.as_ref().and_then(|s| Some((s, s.takes(&req)?)));
        let answer = match (limit_body(&mut req), short_poll) {
            (Err(refused), _) => Either::Left(ready(Ok(refused.into_response()))),
            // Boxed: its future (a Redis call's among them) is kilobytes, which every other
            // request's future would carry otherwise.
            (Ok(()), Some((short_poll, plain))) => Either::Right(Either::Left(
                Box::pin(short_poll.answer(req, plain)).instrument(span).map(Ok),
            )),
            (Ok(()), None) => Either::Right(Either::Right(
                span.in_scope(|| self.inner.call(req))
                    .instrument(span)
                    .map(|result| result.map(IntoResponse::into_response)),
            )),
        };
        answer.map(move |result| {
            // Errors become responses here, so that they carry the headers too.
            let (route, mut resp) = match result {
                Ok(resp) => (resp.data::<PathPattern>().cloned(), resp),
                Err(e) => (e.data::<PathPattern>().cloned(), e.into_response()),
            };
            metrics::record(route.as_ref(), method, resp.status(), started);
            self.security.add_to(&mut resp);
            request_id::add_to(&mut resp, &id);
            Ok(resp)
        })
    }
}

/// Forms and JSON bodies are read whole: a declared length beyond the bound is refused with
/// 413, and a body without one (chunked) is cut at the bound, so its parse fails with a 4xx.
fn limit_body(req: &mut Request) -> Result<(), StatusCode> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    if declared.is_none() && matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        let body = req.take_body().into_async_read().take(MAX_BODY_BYTES as u64);
        req.set_body(Body::from_async_read(body));
    }
    Ok(())
}
