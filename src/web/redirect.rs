//! The two ways a page handler sends the browser on: after a form that worked, and to where a
//! reservation belongs.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Request, Response};

/// The answer to a form that worked: go to `to` with a GET.
pub fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

/// A redirect that works for both kinds of request: `HX-Redirect` for HTMX (a 3xx would be
/// followed inside the XHR and swapped in), `303 See Other` for a plain browser.
pub fn redirect(req: &Request, to: &str) -> Response {
    let value = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    if req.headers().contains_key("hx-request") {
        Response::builder()
            .status(StatusCode::OK)
            .header("HX-Redirect", value)
            .finish()
    } else {
        Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, value)
            .finish()
    }
}
