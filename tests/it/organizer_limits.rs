//! What one organizer account may create: live events and sales per event, through the pages
//! and the API alike, and never more with requests at once.

use reqwest::StatusCode;
use serde_json::json;

use crate::admin_support::{AdminApp, event_form, event_json, pairs};

async fn app_with(max_live_events: u32, max_sales_per_event: u32) -> AdminApp {
    AdminApp::spawn_with(|s| {
        s.max_live_events = max_live_events;
        s.max_sales_per_event = max_sales_per_event;
    })
    .await
}

#[tokio::test]
async fn live_events_beyond_the_limit_are_refused_with_a_409_on_pages_and_api() {
    let app = app_with(2, 10).await;
    let o = app.organizer().await;
    let first = o.browser.create_event(&pairs(&event_form(&[]))).await;
    let (status, _) = o.api.post("/events", event_json(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);

    let form = event_form(&[]);
    let resp = o
        .browser
        .submit("/admin/events/new", "/admin/events/new", &pairs(&form))
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(
        resp.text().await.unwrap().contains("An account may have 2 events"),
        "the page says why"
    );
    let (status, answer) = o.api.post("/events", event_json(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "limit_reached");
    assert!(answer["message"].as_str().unwrap().contains("2 events"), "{answer}");
    assert_eq!(app.event_count().await, 2, "nothing more created");

    // another organizer has its own allowance
    let other = app.organizer().await;
    assert_eq!(
        other.api.post("/events", event_json(json!({}))).await.0,
        StatusCode::CREATED
    );
    // an event that has ended no longer counts
    sqlx::query(
        "update events set starts_at = now() - interval '2 hours', ends_at = now() - interval '1 hour' where id = $1",
    )
    .bind(first)
    .execute(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        o.api.post("/events", event_json(json!({}))).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn events_created_at_once_never_pass_the_limit() {
    let limit = 5;
    let app = app_with(limit, 10).await;
    let o = app.organizer().await;
    let answers =
        futures::future::join_all((0..30).map(|_| async { o.api.post("/events", event_json(json!({}))).await.0 }))
            .await;
    let created = answers.iter().filter(|s| **s == StatusCode::CREATED).count();
    assert_eq!(created, limit as usize, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{answers:?}"
    );
    assert_eq!(app.event_count().await, i64::from(limit));
}

#[tokio::test]
async fn sales_of_an_event_beyond_the_limit_are_refused_even_at_once() {
    let limit = 3;
    let app = app_with(50, limit).await;
    let o = app.organizer().await;
    let event = o.browser.create_event(&pairs(&event_form(&[]))).await;
    let answers = futures::future::join_all(
        (0..20).map(|_| async { o.api.post(&format!("/events/{event}/sales"), json!({})).await }),
    )
    .await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, limit as usize, "{answers:?}");
    for (status, answer) in &answers {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::CONFLICT, "{answer}");
            assert_eq!(answer["error"], "limit_reached", "{answer}");
        }
    }
    assert_eq!(app.sale_count().await, i64::from(limit));

    // a closed sale still counts (its keys live until the event is over)
    let (_, sales) = o.api.get(&format!("/events/{event}/sales")).await;
    let sale = sales[0]["id"].as_str().unwrap();
    let (status, _) = o.api.patch(&format!("/sales/{sale}"), json!({"state": "closed"})).await;
    assert_eq!(status, StatusCode::OK);
    let page = format!("/admin/events/{event}");
    let resp = o.browser.submit(&page, &format!("{page}/sales"), &[]).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(resp.text().await.unwrap().contains("An event may have 3 ticket sales"));
    assert_eq!(app.sale_count().await, i64::from(limit));

    // another event has its own allowance
    let second = o.browser.create_event(&pairs(&event_form(&[]))).await;
    assert_eq!(
        o.api.post(&format!("/events/{second}/sales"), json!({})).await.0,
        StatusCode::CREATED
    );
}
