//! The vendored static files under `/assets/`: compiled into the binary, served with a long
//! cache lifetime. Their URLs carry a version, so a new release is fetched anew.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{IntoResponse, Response, handler};

/// Bump with any change to a file in `assets/`.
pub const VERSION: &str = "10";

pub fn url(file: &str) -> String {
    format!("/assets/{VERSION}/{file}")
}

#[handler]
pub fn asset(Path((_version, file)): Path<(String, String)>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "htmx.min.js" => (
            include_bytes!("../../assets/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "style.css" => (include_bytes!("../../assets/style.css"), "text/css; charset=utf-8"),
        "app.js" => (include_bytes!("../../assets/app.js"), "text/javascript; charset=utf-8"),
        "pow.js" => (include_bytes!("../../assets/pow.js"), "text/javascript; charset=utf-8"),
        "pay.js" => (include_bytes!("../../assets/pay.js"), "text/javascript; charset=utf-8"),
        "checkin.js" => (
            include_bytes!("../../assets/checkin.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .body(body)
}
