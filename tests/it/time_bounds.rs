//! Times at the edge of the calendar: the portal and the API refuse them with a 422 naming the
//! field, and a row written before that rule (or by hand) with such a time breaks neither the
//! home page, nor `/metrics`, nor the reconciliation of the other sales.

use boxoffice::db;
use boxoffice::sale::{Owner, SaleError, SaleId};
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::admin_support::{AdminApp, event_form, event_json, field_error, pairs};
use crate::support::{TestApp, ada};

fn form_at(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

#[tokio::test]
async fn far_dates_are_refused_with_422_by_the_form_and_the_api() {
    let app = AdminApp::spawn().await;
    let org = app.organizer().await;
    let six_years = Utc::now() + Duration::days(6 * 366);
    let cases: [(&str, String, String, &str); 3] = [
        // The calendar's end, as the form took it.
        (
            "starts_at",
            "+262142-12-30T00:00".into(),
            "+262142-12-31T00:00".into(),
            "starts_at",
        ),
        (
            "starts_at",
            form_at(six_years),
            form_at(six_years + Duration::hours(3)),
            "starts_at",
        ),
        (
            "ends_at",
            form_at(Utc::now() + Duration::days(1)),
            form_at(Utc::now() + Duration::days(800)),
            "ends_at",
        ),
    ];
    let before = (app.event_count().await, app.sale_count().await);
    for (what, start, end, field) in cases {
        let form = event_form(&[("starts_at", Some(&start)), ("ends_at", Some(&end))]);
        let resp = org
            .browser
            .submit("/admin/events/new", "/admin/events/new", &pairs(&form))
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "form {what} {start}");
        let page = resp.text().await.unwrap();
        assert!(
            field_error(&page, field).is_some(),
            "form {what}: no error beside {field}"
        );
    }
    let api_cases = [
        ("9999-12-30T00:00:00Z", "9999-12-31T00:00:00Z", "starts_at"),
        (
            &*six_years.to_rfc3339(),
            &*(six_years + Duration::hours(3)).to_rfc3339(),
            "starts_at",
        ),
        (
            &*(Utc::now() + Duration::days(1)).to_rfc3339(),
            &*(Utc::now() + Duration::days(800)).to_rfc3339(),
            "ends_at",
        ),
    ];
    for (start, end, field) in api_cases {
        let (s, body) = org
            .api
            .post("/events", event_json(json!({ "starts_at": start, "ends_at": end })))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "API {start}: {body}");
        assert!(body["fields"][field].is_string(), "API {start}: {body}");
    }
    // A sale may not open that far ahead either.
    let (_, event) = org.api.post("/events", event_json(json!({}))).await;
    let event: Uuid = event["id"].as_str().unwrap().parse().unwrap();
    let before = (before.0 + 1, before.1);
    let page = format!("/admin/events/{event}");
    let resp = org
        .browser
        .submit(&page, &format!("{page}/sales"), &[("opens_at", &form_at(six_years))])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (s, body) = org
        .api
        .post(
            &format!("/events/{event}/sales"),
            json!({ "opens_at": six_years.to_rfc3339() }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["fields"]["opens_at"].is_string(), "{body}");
    assert_eq!(
        (app.event_count().await, app.sale_count().await),
        before,
        "nothing stored"
    );
}

/// The app with two sales, the second one's event ending at `ends_at`, written behind the
/// app's back as an old row could hold it.
async fn app_with_a_bad_sale(ends_at: &str) -> (TestApp, SaleId, SaleId) {
    let app = TestApp::spawn().await;
    let good = app.world.sale(10, 60).await.sale_id();
    let bad = app.world.sale(10, 60).await.sale_id();
    sqlx::query(
        "update events set ends_at = $2::timestamptz where id = (select event_id from ticket_sales where id = $1)",
    )
    .bind(bad.0)
    .bind(ends_at)
    .execute(&app.world.db)
    .await
    .unwrap();
    (app, good, bad)
}

/// The reconcile goes past the bad sale: an order of the good one that Redis never heard of
/// is counted, and only the good sale counts as synced.
async fn reconcile_counts_an_order_of(app: &TestApp, good: SaleId) {
    let w = &app.world;
    let o = Owner::random();
    let r = w.sales.join(good, &o, w.sales.quantity(2).unwrap()).await.unwrap();
    db::orders::place(
        &w.db,
        good,
        r.code.token,
        2,
        &ada(),
        None,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(
        w.sales.sync_live_sales().await.unwrap(),
        1,
        "the good sale synced, the bad one not"
    );
    assert_eq!(w.sales.figures(good).await.unwrap().sold, 2);
}

#[tokio::test]
async fn an_event_ending_at_the_calendars_end_breaks_neither_pages_nor_the_reconcile() {
    let (app, good, bad) = app_with_a_bad_sale("262142-12-31 00:00:00+00").await;
    let http = app.client();
    for path in ["/", "/metrics"] {
        let resp = http
            .get(app.url(path))
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body = resp.text().await.unwrap();
        if path == "/" {
            assert!(body.contains(&good.0.to_string()), "the good sale is listed");
        }
    }
    reconcile_counts_an_order_of(&app, good).await;
    assert!(
        matches!(app.world.sales.sync(bad).await, Err(SaleError::TimeOutOfRange)),
        "the bad sale fails alone, with a typed error"
    );
}

#[tokio::test]
async fn a_panicking_request_gets_a_500_with_the_headers_and_the_reconcile_goes_on() {
    // Beyond what the time library can hold: reading the row panics.
    let (app, good, bad) = app_with_a_bad_sale("294276-01-01 00:00:00+00").await;
    let http = app.client();
    let page = http
        .get(app.url("/"))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.headers().contains_key("content-security-policy"));
    assert!(page.headers().contains_key("x-request-id"));
    assert!(page.text().await.unwrap().contains("try again"));
    let api = http
        .get(app.url(&format!("/api/v1/sales/{}", bad.0)))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(api.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(api.headers().contains_key("content-security-policy"));
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"], "internal");
    // The process serves on, and the reconcile syncs the other sale.
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    reconcile_counts_an_order_of(&app, good).await;
}
