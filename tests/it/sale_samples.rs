//! The sale's samples: one per interval whichever instance takes the turn, and the funnel and
//! series they feed.

use std::time::Duration;

use boxoffice::db;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;

use crate::admin_support::{AdminApp, event_form, pairs};
use crate::support::{TestApp, World, api_join, http, test_settings};

#[tokio::test]
async fn two_instances_take_one_sample_per_interval_between_them() {
    let mut settings = test_settings();
    settings.sample_every = Duration::from_secs(1);
    // Two instances: each with its own pools and sale service, over one Postgres and Redis.
    let a = TestApp::on(World::with_settings(settings.clone()).await).await;
    let b = TestApp::on(World::with_settings(settings).await).await;
    let sale = a.world.sale(50, 300).await;
    let started = Utc::now();
    for (i, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let joined = api_join(&app.base, &http().cookie_store(true).build().unwrap(), sale.id, 1).await;
        assert_eq!(joined["state"], "admitted", "buyer {i}: {joined}");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let samples = db::samples::list_for_sale(&b.world.db, sale.sale_id()).await.unwrap();
    let elapsed = (Utc::now() - started).num_seconds();

    // Each sample is a turn of its own, on a whole second, one second after the previous.
    assert!(samples.len() >= 4, "{} samples in {elapsed} s", samples.len());
    assert!(
        samples.len() as i64 <= elapsed + 1,
        "{} samples in {elapsed} s",
        samples.len()
    );
    for s in &samples {
        assert_eq!(s.taken_at.timestamp_subsec_millis(), 0, "{s:?}");
    }
    for w in samples.windows(2) {
        assert_eq!((w[1].taken_at - w[0].taken_at).num_milliseconds(), 1_000, "{w:?}");
    }
    // They follow the sale: the last saw every buyer.
    let last = samples.last().unwrap();
    assert_eq!((last.joined, last.admitted, last.at_checkout, last.held), (4, 4, 4, 4));
    assert!(samples.first().unwrap().joined < 4);
}

/// Each kind of buyer once: ordered, released, at checkout, admitted later, left, sold out.
#[tokio::test]
async fn the_series_endpoint_returns_the_samples_and_a_funnel_that_adds_up() {
    let app = AdminApp::spawn_with(|s| s.sample_every = Duration::from_secs(1)).await;
    let organizer = app.organizer().await;
    let event = organizer.browser.create_event(&pairs(&event_form(&[]))).await;
    let sale = organizer.browser.create_sale(event, &[("capacity", "3")]).await;
    let base = app.base.clone();
    let buyer = || http().cookie_store(true).build().unwrap();
    let mut codes = Vec::new();
    let mut buyers = Vec::new();
    for (quantity, expected) in [
        (1, "admitted"),
        (1, "admitted"),
        (1, "admitted"),
        (1, "waiting"),
        (1, "waiting"),
        (4, "sold_out"),
    ] {
        let b = buyer();
        let r = api_join(&base, &b, sale, quantity).await;
        assert_eq!(r["state"], expected, "{r}");
        codes.push(r["code"].as_str().unwrap().to_string());
        buyers.push(b);
    }
    // A sample before the order, so that the last minute of samples sees a ticket sold.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let order = buyers[0]
        .post(format!("{base}/api/v1/reservations/{}/order", codes[0]))
        .json(&json!({"name": "Grace Hopper", "email": "grace@example.com", "age": 45, "gender": "female"}))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), StatusCode::CREATED);
    for i in [1, 4] {
        let gone = buyers[i]
            .delete(format!("{base}/api/v1/reservations/{}", codes[i]))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), StatusCode::NO_CONTENT, "buyer {i}");
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let (status, series) = organizer.api.get(&format!("/sales/{sale}/series")).await;
    assert_eq!(status, StatusCode::OK, "{series}");
    let f = &series["funnel"];
    let n = |k: &str| f[k].as_i64().unwrap_or_else(|| panic!("{k} in {f}"));
    // The second buyer gave the tickets back, so the fourth, who waited, was admitted.
    assert_eq!(
        [
            n("joined"),
            n("admitted"),
            n("ordered"),
            n("waiting"),
            n("left_queue"),
            n("sold_out")
        ],
        [6, 4, 1, 0, 1, 1],
        "{f}"
    );
    assert_eq!(
        [n("at_checkout"), n("released"), n("lapsed"), n("abandoned")],
        [2, 1, 0, 0],
        "{f}"
    );
    assert_eq!(
        n("joined"),
        n("admitted") + n("waiting") + n("left_queue") + n("abandoned") + n("sold_out")
    );
    assert_eq!(
        n("admitted"),
        n("ordered") + n("at_checkout") + n("released") + n("lapsed")
    );

    assert_eq!(series["interval_secs"], 1);
    let samples = series["samples"].as_array().unwrap();
    let stored = db::samples::list_for_sale(&app.state.db, boxoffice::sale::SaleId(sale))
        .await
        .unwrap();
    assert!(
        samples.len() >= 2 && samples.len() <= stored.len(),
        "{} of {}",
        samples.len(),
        stored.len()
    );
    assert_eq!(samples.last().unwrap()["sold"], 1, "{series}");
    assert_eq!(samples.last().unwrap()["orders"], 1);
    // The estimates: 2 tickets left, and one sold within the last minute.
    assert!(
        series["estimates"]["sold_per_minute"].as_f64().is_some_and(|r| r > 0.0),
        "{series}"
    );
    assert!(
        series["estimates"]["sell_out_secs"].as_f64().is_some_and(|s| s > 0.0),
        "{series}"
    );
    assert!(
        series["estimates"]["last_in_line_wait_secs"].is_number(),
        "nobody waits: 0 s, {series}"
    );

    // Another organizer's sale, or none: 404.
    let other = app.organizer().await;
    let (status, _) = other.api.get(&format!("/sales/{sale}/series")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = organizer.api.get("/sales/not-a-sale/series").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
