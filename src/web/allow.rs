//! `Allow` on every 405 of the JSON API, as RFC 9110 requires: the router answers 405 for a
//! known path with a method it does not have, but does not say which methods the path has.
//! They are read once from the OpenAPI document, which lists every operation, so the header
//! cannot drift from the routes.

use futures_util::FutureExt;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

/// The methods of each path of the API, from its OpenAPI document.
#[derive(Debug, Default)]
pub struct AllowedMethods {
    paths: Vec<(Vec<Segment>, HeaderValue)>,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    /// `{name}` in the document: any one segment.
    Param,
}

impl AllowedMethods {
    /// Reads the `paths` of an OpenAPI document (JSON). A path with GET also answers HEAD.
    pub fn from_spec(spec: &str) -> AllowedMethods {
        let doc: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let Some(paths) = doc["paths"].as_object() else {
            return AllowedMethods::default();
        };
        let paths = paths
            .iter()
            .filter_map(|(path, ops)| {
                let mut methods: Vec<String> = ops.as_object()?.keys().map(|m| m.to_uppercase()).collect();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                let value = HeaderValue::from_str(&methods.join(", ")).ok()?;
                Some((segments(path), value))
            })
            .collect();
        AllowedMethods { paths }
    }

    /// The `Allow` value of a request path, when it is a path of the API.
    pub fn of(&self, path: &str) -> Option<&HeaderValue> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.paths
            .iter()
            .find(|(template, _)| {
                template.len() == parts.len()
                    && template.iter().zip(&parts).all(|(t, p)| match t {
                        Segment::Literal(l) => l == p,
                        Segment::Param => !p.is_empty(),
                    })
            })
            .map(|(_, value)| value)
    }
}

fn segments(path: &str) -> Vec<Segment> {
    path.trim_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s.to_string())
            }
        })
        .collect()
}

/// Wraps the API: a 405 gets the `Allow` of its path.
pub fn with_allow<E: Endpoint>(inner: E, allowed: AllowedMethods) -> WithAllow<E> {
    WithAllow { inner, allowed }
}

pub struct WithAllow<E> {
    inner: E,
    allowed: AllowedMethods,
}

impl<E: Endpoint> Endpoint for WithAllow<E> {
    type Output = Response;

    // The request is handed on before the future is made (see `web::app`). The path is read
    // only on a 405: a clone of the URI shares the request's bytes.
    fn call(&self, req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        let uri = req.uri().clone();
        self.inner.call(req).map(move |result| {
            let mut resp = result?.into_response();
            if resp.status() == StatusCode::METHOD_NOT_ALLOWED
                && let Some(value) = self.allowed.of(uri.path())
            {
                resp.headers_mut().insert(header::ALLOW, value.clone());
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_gets_the_methods_of_its_template() {
        let allowed = AllowedMethods::from_spec(
            r#"{"paths": {"/sales/{sale}": {"get": {}}, "/sales/{sale}/reservations": {"post": {}},
                "/reservations/{code}": {"get": {}, "delete": {}}}}"#,
        );
        assert_eq!(allowed.of("/sales/abc").unwrap(), "GET, HEAD");
        assert_eq!(allowed.of("/sales/abc/reservations").unwrap(), "POST");
        assert_eq!(allowed.of("/reservations/x").unwrap(), "DELETE, GET, HEAD");
        assert!(allowed.of("/sales").is_none());
        assert!(allowed.of("/sales/abc/other").is_none());
    }
}
