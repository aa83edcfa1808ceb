//! One admission rate: the dashboard's "admitted per minute" and the waiting room's estimated
//! wait come from the same figure in Redis, on every app instance.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_support::{AdminApp, Browser, event_form, pairs};
use crate::support::test_settings;

/// A number between `marker">` and the next `<`, or `None` for anything else ("–").
fn figure_after(body: &str, marker: &str) -> Option<f64> {
    let start = body.find(marker)? + marker.len();
    body[start..].split('<').next()?.trim().parse().ok()
}

async fn dashboard_rate(organizer: &Browser, sale: &str) -> Option<f64> {
    let (status, body) = organizer.page(&format!("/admin/sales/{sale}/figures")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    figure_after(&body, "data-figure=\"admitted_per_minute\">")
}

async fn waiting_room_rate(buyer: &reqwest::Client, base: &str, code: &str) -> Option<f64> {
    let resp = buyer.get(format!("{base}/wait/{code}/poll")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    let start = body.find("data-admitted-per-minute=\"")? + "data-admitted-per-minute=\"".len();
    body[start..].split('"').next()?.parse().ok()
}

fn one_decimal(rate: Option<f64>) -> Option<String> {
    rate.map(|r| format!("{r:.1}"))
}

#[tokio::test]
async fn the_dashboard_and_the_waiting_room_of_two_instances_show_one_admission_rate() {
    // Two app instances over one Postgres and one Redis.
    let database_url = test_settings().database_url;
    let a = AdminApp::spawn_with(|s| s.database_url = database_url.clone()).await;
    let b = AdminApp::spawn_with(|s| s.database_url = database_url.clone()).await;
    let organizer = a.organizer().await;
    let event = organizer.browser.create_event(&pairs(&event_form(&[]))).await;
    let sale = organizer
        .browser
        .create_sale(event, &[("capacity", "3")])
        .await
        .to_string();
    // Sessions live in Redis: the organizer's cookie works on the other instance too.
    let dashboards = [
        &organizer.browser,
        &Browser {
            base: b.base.clone(),
            http: organizer.browser.http.clone(),
        },
    ];

    // Three buyers are admitted at once; the fourth and fifth wait.
    let mut waiting = None;
    for i in 0..5 {
        let buyer = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let resp = buyer
            .post(format!("{}/api/v1/sales/{sale}/reservations", a.base))
            .json(&json!({"quantity": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let r: Value = resp.json().await.unwrap();
        let expected = if i < 3 { "admitted" } else { "waiting" };
        assert_eq!(r["state"], expected, "{r}");
        if i == 3 {
            waiting = Some((buyer, r["code"].as_str().unwrap().to_string()));
        }
    }
    let (buyer, code) = waiting.unwrap();

    // The rate counts whole ten-second buckets: it shows once the admissions' bucket is over.
    let mut shown = None;
    for _ in 0..50 {
        shown = dashboard_rate(dashboards[0], &sale).await.filter(|r| *r > 0.0);
        if shown.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(shown.is_some(), "the dashboard shows the admissions of the last minute");

    // Read everywhere within one bucket; a bucket boundary between the first and the last
    // reading moves the window, so the round is read again.
    for _ in 0..3 {
        let before = dashboard_rate(dashboards[0], &sale).await;
        // The waiting room reads the rate in the background: its first poll starts the read.
        for base in [&a.base, &b.base] {
            waiting_room_rate(&buyer, base, &code).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen = [
            one_decimal(before),
            one_decimal(dashboard_rate(dashboards[1], &sale).await),
            one_decimal(waiting_room_rate(&buyer, &a.base, &code).await),
            one_decimal(waiting_room_rate(&buyer, &b.base, &code).await),
        ];
        let after = dashboard_rate(dashboards[0], &sale).await;
        if after != before {
            // The window moved meanwhile: the waiting rooms read it again after their pause.
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            continue;
        }
        assert!(before.is_some_and(|r| r > 0.0));
        assert!(
            seen.iter().all(|s| *s == seen[0]),
            "dashboard A, dashboard B, waiting room A, waiting room B: {seen:?}"
        );
        return;
    }
    panic!("three rounds in a row crossed a bucket boundary");
}
