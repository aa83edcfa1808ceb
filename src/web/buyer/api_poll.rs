//! The JSON poll's short way: a plain `GET /api/v1/reservations/{code}?place=…` answered by the
//! edge (`web::edge`), before the app's routes. Through them the poll was matched three times
//! (the app's routes, the API's nest, poem-openapi's own), passed the API's layers and had its
//! query parsed into owned strings by poem-openapi's dispatch: on a waiting client's poll, a
//! third of the shop's own work (see BENCHMARKS.md). The operation stays the documented one,
//! and the answer is the same: the same function ([`super::api::poll`]), a failure rendered by
//! the API's catch-all and a panic by its handler, under the operation's route template for
//! the metrics. A request that is not plainly that poll (another method, a longer path,
//! escapes in the path or the query) goes on to the routes and the operation.

use std::ops::Range;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use poem::http::Method;
use poem::{IntoResponse, PathPattern, Request, Response};

use super::query_param;
use crate::startup::AppState;
use crate::web::error;

/// The short way of the API mounted at `api` (`/api/v1`).
#[derive(Clone)]
pub struct ShortPoll {
    state: AppState,
    /// `{api}/reservations/`
    prefix: String,
    /// The operation's route template as the metrics name it: `{api}/reservations/:param0`.
    pattern: PathPattern,
}

impl ShortPoll {
    pub fn new(state: AppState, api: &str) -> Self {
        ShortPoll {
            state,
            prefix: format!("{api}/reservations/"),
            pattern: PathPattern(format!("{api}/reservations/:param0").into()),
        }
    }

    /// Where the code and the place are in `req` if it is plainly the poll, for the short way.
    pub fn takes(&self, req: &Request) -> Option<PlainPoll> {
        plain_poll(&self.prefix, req.method(), req.uri().path(), req.uri().query())
    }

    /// The answer to the request `plain` was taken from (see [`takes`](Self::takes)).
    pub async fn answer(&self, mut req: Request, plain: PlainPoll) -> Response {
        // As the routes' `data` layer does: what reads the request's settings (the session
        // cookie's name) finds them.
        req.set_data(self.state.clone());
        let code = &req.uri().path()[plain.code];
        let place = plain.place.map(|at| &req.uri().query().unwrap_or_default()[at]);
        let answer = AssertUnwindSafe(super::api::poll(&self.state, &req, code, place))
            .catch_unwind()
            .await;
        let mut resp = match answer {
            Ok(Ok(view)) => view.into_response(),
            Ok(Err(e)) => error::api_catch_all(e.into()).await,
            Err(panic) => error::panicked_json(panic),
        };
        resp.set_data(self.pattern.clone());
        resp
    }
}

/// Where a plain poll's code is in its path and its place in its query: read once, when the
/// edge decides, and sliced from the request its answer owns.
#[derive(Debug, PartialEq)]
pub struct PlainPoll {
    code: Range<usize>,
    place: Option<Range<usize>>,
}

/// The code and the place of a plain poll of this path and query; `None` for anything else.
/// The code is checked by the poll itself, with the operation's own error.
fn plain_poll(prefix: &str, method: &Method, path: &str, query: Option<&str>) -> Option<PlainPoll> {
    let code = path.strip_prefix(prefix)?;
    let query = query.unwrap_or_default();
    // Escapes and `+` are the operation's to decode.
    let plain = |text: &str| !text.bytes().any(|b| matches!(b, b'%' | b'+' | b'/'));
    if *method != Method::GET || code.is_empty() || !plain(code) || !plain(query) {
        return None;
    }
    // The value is a slice of `query`: its place there is its address's distance from it.
    let place = query_param(query, "place").map(|value| {
        let at = value.as_ptr() as usize - query.as_ptr() as usize;
        at..at + value.len()
    });
    Some(PlainPoll {
        code: prefix.len()..path.len(),
        place,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const PREFIX: &str = "/api/v1/reservations/";

    #[test]
    fn only_a_plain_poll_takes_the_short_way() {
        let path = format!("{PREFIX}{CODE}");
        // The code and the place as text, from where the short way found them.
        fn poll<'a>(method: &Method, path: &'a str, query: Option<&'a str>) -> Option<(&'a str, Option<&'a str>)> {
            let plain = plain_poll(PREFIX, method, path, query)?;
            Some((&path[plain.code], plain.place.map(|at| &query.unwrap_or_default()[at])))
        }
        assert_eq!(poll(&Method::GET, &path, None), Some((CODE, None)));
        assert_eq!(
            poll(&Method::GET, &path, Some("x=1&place=ab12&place=cd")),
            Some((CODE, Some("ab12")))
        );
        assert_eq!(poll(&Method::DELETE, &path, None), None);
        assert_eq!(poll(&Method::HEAD, &path, None), None);
        assert_eq!(poll(&Method::GET, &format!("{path}/order"), None), None);
        assert_eq!(poll(&Method::GET, PREFIX, None), None);
        assert_eq!(poll(&Method::GET, &path, Some("place=a%62")), None);
        assert_eq!(poll(&Method::GET, &path.replace('a', "%61"), None), None);
        assert_eq!(poll(&Method::GET, &format!("/reservations/{CODE}"), None), None);
        assert_eq!(poll(&Method::GET, "/api/v1/sales/x/reservations", None), None);
    }
}
