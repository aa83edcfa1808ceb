//! `Allow` on every 405 of the JSON API, as RFC 9110 requires: the router answers 405 for a
//! known path with a method it does not have, but does not say which methods the path has.
//! They are read once from the OpenAPI document, which lists every operation, so the header
//! cannot drift from the routes.

use std::sync::Arc;

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
pub fn with_allow<E: Endpoint + 'static>(ep: E, allowed: AllowedMethods) -> impl Endpoint {
    let allowed = Arc::new(allowed);
    poem::EndpointExt::around(ep, move |ep, req: Request| {
        let allowed = allowed.clone();
        async move {
            let path = req.uri().path().to_string();
            let mut resp = ep.call(req).await?.into_response();
            if resp.status() == StatusCode::METHOD_NOT_ALLOWED
                && let Some(value) = allowed.of(&path)
            {
                resp.headers_mut().insert(header::ALLOW, value.clone());
            }
            Ok::<Response, poem::Error>(resp)
        }
    })
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
