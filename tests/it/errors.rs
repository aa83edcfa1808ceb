//! One error mapping: a sale error has one status on the buyer's side and the organizer's; a
//! fault says what failed (a listing that cannot be read does not talk about orders); the JSON
//! API answers what its OpenAPI document declares (415 for a body that is not JSON, `Allow`
//! on a 405).

use boxoffice::admin::AdminError;
use boxoffice::sale::{FieldErrors, ReservationState, SaleError};
use boxoffice::web::error::WebError;
use poem::error::ResponseError;
use reqwest::StatusCode;
use serde_json::Value;

use crate::fault_support::app_behind_a_postgres_proxy;
use crate::support::TestApp;

fn every_sale_error(now: chrono::DateTime<chrono::Utc>) -> Vec<SaleError> {
    vec![
        SaleError::BadQuantity { max: 6 },
        SaleError::UnknownSale,
        SaleError::Closed,
        SaleError::Over,
        SaleError::NotOpenYet(now),
        SaleError::DrawUnderWay,
        SaleError::Beacon("round 7 is not emitted yet".into()),
        SaleError::MalformedCode,
        SaleError::UnknownReservation,
        SaleError::NotAdmitted(ReservationState::Expired),
        SaleError::NotAdmitted(ReservationState::Waiting),
        SaleError::SoldOut,
        SaleError::ConfirmInProgress,
        SaleError::NotSoldOut,
        SaleError::WaitlistEmailTaken,
        SaleError::OwnWaitlistPlace,
        SaleError::BadEmail,
        SaleError::UnknownWaitlistEntry,
        SaleError::EmailRequired,
        SaleError::UnknownLink,
        SaleError::LinkSpent,
        SaleError::EmailHasPlace,
        SaleError::PrequeueOver,
        SaleError::InvalidBuyer(FieldErrors::default()),
        SaleError::BadOwner,
        SaleError::BadSaleState,
        SaleError::ReturnsNotAllowed,
        SaleError::ReturnPending,
        SaleError::NothingToReturn,
        SaleError::TooManyToReturn { left: 1 },
        SaleError::NoReturnPending,
        SaleError::Redis(fred::error::Error::new(fred::error::ErrorKind::IO, "gone")),
        SaleError::Postgres(sqlx::Error::PoolTimedOut),
        SaleError::TimeOutOfRange,
        SaleError::Protocol {
            script: "join",
            reply: "?".into(),
        },
    ]
}

#[test]
fn a_sale_error_has_the_same_status_for_buyers_and_organizers() {
    let now = chrono::Utc::now();
    let buyer: Vec<(String, u16)> = every_sale_error(now)
        .into_iter()
        .map(|e| (format!("{e:?}"), WebError::from(e).status().as_u16()))
        .collect();
    let organizer: Vec<(String, u16)> = every_sale_error(now)
        .into_iter()
        .map(|e| (format!("{e:?}"), AdminError::from(e).status().as_u16()))
        .collect();
    assert_eq!(buyer, organizer);
    // The statuses the variants' docs name.
    let of = |name: &str| buyer.iter().find(|(e, _)| e.starts_with(name)).unwrap().1;
    assert_eq!(of("BadQuantity"), 422);
    assert_eq!(of("UnknownReservation"), 404);
    assert_eq!(of("Postgres"), 503);
    assert_eq!(of("DrawUnderWay"), 409);
    assert_eq!(of("Beacon"), 503);
}

/// The OpenAPI document the app serves.
pub(crate) async fn openapi_document(app: &TestApp) -> Value {
    let resp = app.client().get(app.url("/api/openapi.json")).send().await.unwrap();
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_listing_that_cannot_be_read_says_so_and_not_that_orders_cannot_be_saved() {
    let (app, proxy, _) = app_behind_a_postgres_proxy().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    proxy.down();

    let resp = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let page = resp.text().await.unwrap();
    assert!(page.contains("The list of events cannot be shown right now"), "{page}");
    assert!(!page.to_lowercase().contains("order"), "{page}");

    for path in [format!("/sales/{sale}"), format!("/api/v1/sales/{sale}")] {
        let resp = client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(resp.headers().contains_key("retry-after"), "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("cannot be shown right now"), "{path}: {body}");
        assert!(!body.to_lowercase().contains("order"), "{path}: {body}");
    }
    proxy.up();
}

#[tokio::test]
async fn the_organizer_api_answers_503_with_retry_after_when_postgres_is_away() {
    let (app, proxy, _) = app_behind_a_postgres_proxy().await;
    proxy.down();
    let resp = app
        .client()
        .get(app.url("/api/v1/admin/events"))
        .bearer_auth("any-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    proxy.up();
}

#[tokio::test]
async fn a_405_of_the_api_names_the_allowed_methods() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    for (method, path, allowed) in [
        (reqwest::Method::DELETE, format!("/api/v1/sales/{sale}"), "GET, HEAD"),
        (
            reqwest::Method::GET,
            format!("/api/v1/sales/{sale}/reservations"),
            "POST",
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/admin/events".to_string(),
            "GET, POST, HEAD",
        ),
    ] {
        let resp = client.request(method.clone(), app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let allow = resp.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(allow.as_deref(), Some(allowed), "{method} {path}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_the_415_the_document_declares() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    let resp = client
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .header("content-type", "text/plain")
        .body(r#"{"quantity": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type", "{body}");
    assert_eq!(app.world.sales.figures(sale).await.unwrap().held, 0);

    let doc = openapi_document(&app).await;
    let responses = &doc["paths"]["/sales/{sale}/reservations"]["post"]["responses"];
    for status in ["404", "409", "415", "422", "429", "503"] {
        assert!(responses[status].is_object(), "{status} not declared: {responses}");
    }
    // Each call declares what it can answer: a read takes no body, so no 415 or 422.
    let read = &doc["paths"]["/sales/{sale}"]["get"]["responses"];
    assert!(read["404"].is_object() && read["503"].is_object(), "{read}");
    assert!(read["415"].is_null() && read["422"].is_null(), "{read}");
    for status in ["429", "503"] {
        let headers = responses[status]["headers"].as_object();
        assert!(
            headers.is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("retry-after"))),
            "{status} without Retry-After: {responses}"
        );
    }
}

#[tokio::test]
async fn the_document_marks_required_fields_and_names_the_sale_states() {
    let app = TestApp::spawn().await;
    let doc = openapi_document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let required = |name: &str| -> Vec<String> {
        let mut r: Vec<String> = serde_json::from_value(schemas[name]["required"].clone()).unwrap_or_default();
        r.sort();
        r
    };
    assert_eq!(
        required("AdminEventInput"),
        [
            "capacity",
            "description",
            "ends_at",
            "price_minor",
            "starts_at",
            "title"
        ]
    );
    assert_eq!(required("JoinRequest"), ["quantity"]);
    assert_eq!(required("OrderRequest"), ["age", "email", "gender", "name"]);
    assert_eq!(
        schemas["AdminSalePatch"]["properties"]["state"]["enum"],
        serde_json::json!(["open", "paused", "closed"])
    );
    let quantity = &schemas["JoinRequest"]["properties"]["quantity"];
    assert_eq!(
        (quantity["minimum"].as_f64(), quantity["maximum"].as_f64()),
        (Some(1.0), Some(6.0))
    );
    let title = &schemas["AdminEventInput"]["properties"]["title"];
    assert_eq!(
        title["maxLength"].as_u64(),
        Some(boxoffice::admin::forms::MAX_TITLE as u64)
    );
}
