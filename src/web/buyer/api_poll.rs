//! The JSON poll's short way: `GET /reservations/{code}?place=…` answered before poem-openapi's
//! dispatch, which parses every request's query into owned strings and matches its path a
//! second time: on a waiting client's poll that was a fifth of the shop's work (see
//! BENCHMARKS.md). The operation stays the documented one, and the answer is the same
//! function's ([`super::api::poll`]); a request that is not plainly that poll (another method,
//! a path or query with escapes, anything not 64 hex digits) goes to the operation itself.

use poem::http::Method;
use poem::{Endpoint, IntoResponse, PathPattern, Request, Response};

use crate::startup::AppState;

/// The API's endpoint, with the poll's short way in front. `pattern` is the operation's route
/// template as the metrics name it (`/api/v1/reservations/:param0`).
pub struct ShortPoll<E> {
    inner: E,
    pattern: PathPattern,
}

impl<E> ShortPoll<E> {
    pub fn new(inner: E, pattern: &str) -> Self {
        ShortPoll {
            inner,
            pattern: PathPattern(pattern.into()),
        }
    }
}

/// The code and the place of a plain poll of this path and query; `None` for anything else.
/// The code is checked by the poll itself, with the operation's own error.
fn plain_poll<'a>(method: &Method, path: &'a str, query: Option<&'a str>) -> Option<(&'a str, Option<&'a str>)> {
    let code = path.strip_prefix("/reservations/")?;
    let query = query.unwrap_or_default();
    // Escapes and `+` are the operation's to decode.
    let plain = |text: &str| !text.bytes().any(|b| matches!(b, b'%' | b'+' | b'/'));
    if *method != Method::GET || code.is_empty() || !plain(code) || !plain(query) {
        return None;
    }
    let place = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "place")
        .map(|(_, value)| value);
    Some((code, place))
}

impl<E: Endpoint> Endpoint for ShortPoll<E> {
    type Output = Response;

    // The inner endpoint is poem-openapi's, whose future is boxed: awaiting it here keeps no
    // more than the short way's own future does.
    async fn call(&self, req: Request) -> poem::Result<Response> {
        let short = plain_poll(req.method(), req.uri().path(), req.uri().query());
        let (Some((code, place)), Some(state)) = (short, req.data::<AppState>()) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        // Failures go on as the operation's do, to the API's catch-all.
        match super::api::poll(state, &req, code, place).await {
            Ok(view) => {
                let mut resp = view.into_response();
                resp.set_data(self.pattern.clone());
                Ok(resp)
            }
            Err(e) => {
                let mut err = poem::Error::from(e);
                err.set_data(self.pattern.clone());
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_a_plain_poll_takes_the_short_way() {
        let path = format!("/reservations/{CODE}");
        assert_eq!(plain_poll(&Method::GET, &path, None), Some((CODE, None)));
        assert_eq!(
            plain_poll(&Method::GET, &path, Some("x=1&place=ab12&place=cd")),
            Some((CODE, Some("ab12")))
        );
        assert_eq!(plain_poll(&Method::DELETE, &path, None), None);
        assert_eq!(plain_poll(&Method::HEAD, &path, None), None);
        assert_eq!(plain_poll(&Method::GET, &format!("{path}/order"), None), None);
        assert_eq!(plain_poll(&Method::GET, "/reservations/", None), None);
        assert_eq!(plain_poll(&Method::GET, &path, Some("place=a%62")), None);
        assert_eq!(plain_poll(&Method::GET, &path.replace('a', "%61"), None), None);
        assert_eq!(plain_poll(&Method::GET, "/sales/x/reservations", None), None);
    }
}
