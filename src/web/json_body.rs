//! A JSON reply written straight from its serde form, for the buyer's hot replies (the poll and
//! the join). poem-openapi's `Json` first builds a `serde_json::Value` of the object, a map
//! filled field by field, and then writes that: on the poll of a waiting buyer that was a tenth
//! of the app's work. The schema is still the object's own ([`Type`]), so the OpenAPI
//! document does not change; the object derives `Serialize` with the same field names and
//! writes its times as poem-openapi does ([`rfc3339`]), which the tests below hold it to.

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::{Serialize, Serializer};

/// A JSON body of `T`, documented as `T`'s schema and written by serde.
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + Serialize> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        // Room for a reservation's view at once: from serde_json's own 128 bytes, it grew
        // three times.
        let mut body = Vec::with_capacity(512);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => Response::builder().content_type(Self::CONTENT_TYPE).body(body),
            // Not for the objects it is used with (strings, numbers, times); a 500 all the same.
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

impl<T: Type + Serialize> ApiResponse for JsonBody<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A time as poem-openapi writes a `DateTime<Utc>` (`to_rfc3339`), for `serialize_with`.
pub fn rfc3339<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339())
}

/// An optional time as poem-openapi writes it: the time, or null.
pub fn rfc3339_or_null<S: Serializer>(time: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => rfc3339(time, serializer),
        None => serializer.serialize_none(),
    }
}
