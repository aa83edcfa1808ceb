//! `boxoffice demo`: its crowd against a real app over HTTP (joins, waits honouring
//! `poll_after_ms`, orders that reach Postgres, and a stop that stops everything), and its setup
//! (the demo organizer signs in with the printed password; the sale is found again while open
//! and made anew once closed).

use std::time::{Duration, Instant};

use boxoffice::db;
use boxoffice::demo::crowd::{Crowd, CrowdPlan};
use boxoffice::demo::{settings_for_the_crowd, setup};
use chrono::Utc;
use reqwest::StatusCode;
use tokio::sync::watch;

use crate::admin_support::{AdminApp, location};
use crate::support::TestApp;

/// A crowd that would take minutes to arrive, with quick buyers at checkout.
fn plan() -> CrowdPlan {
    CrowdPlan {
        buyers: 1000,
        burst: 30,
        burst_secs: 0.5,
        per_sec: 4.0,
        think: Duration::from_millis(100)..Duration::from_millis(300),
        patience: Duration::from_secs(300)..Duration::from_secs(600),
        ..CrowdPlan::demo()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_crowd_joins_waits_buys_and_stops_when_told() {
    let app = TestApp::spawn_with(settings_for_the_crowd).await;
    // Four buyers at checkout at once: the burst has to queue.
    let sale = app
        .world
        .sale_with(300, 2, 4, Utc::now() - chrono::Duration::minutes(1))
        .await;
    let crowd = Crowd::new(&app.base, sale.id, plan()).unwrap();
    let counts = crowd.counts();
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let running = tokio::spawn(crowd.run(stopped));

    loop {
        let t = counts.tally();
        if t.joined >= 30 && t.ordered >= 4 && t.queued >= 10 && t.polls >= 10 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the crowd did not get going: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(true).unwrap();
    let tally = tokio::time::timeout(Duration::from_secs(3), running)
        .await
        .expect("the crowd stops at once when told")
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();

    assert!(tally.arrived < 1000, "stopped before the whole crowd came: {tally:?}");
    assert!(
        tally.joined >= 30 && tally.admitted >= 4 && tally.ordered >= 4,
        "{tally:?}"
    );
    assert_eq!(tally.failed, 0, "{tally:?}");
    // The server asks for polls at least 2 s apart; a buyer that asked sooner would show here.
    assert!(
        tally.polls as f64 <= tally.queued as f64 * (elapsed / 2.0 + 1.0),
        "{} polls by {} queued buyers in {elapsed:.1} s: faster than the server asks",
        tally.polls,
        tally.queued
    );
    // Every order the crowd saw confirmed is in Postgres (one cut off by the stop may be
    // there without the crowd having seen it).
    let totals = db::orders::totals_for_sale(&app.world.db, sale.sale_id())
        .await
        .unwrap();
    assert!(totals.orders >= tally.ordered as i64, "{totals:?} {tally:?}");
    assert!(totals.tickets >= tally.tickets as i64, "{totals:?} {tally:?}");

    // Nobody walks on after the stop: a buyer left running would poll again within 2 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(counts.tally(), tally, "the crowd went on after the stop");
}

#[tokio::test]
async fn the_demo_sale_is_found_again_while_open_and_made_anew_once_closed() {
    let app = AdminApp::spawn_with(settings_for_the_crowd).await;
    let db = &app.state.db;

    let organizer = setup::organizer(db).await.unwrap();
    assert_eq!(setup::organizer(db).await.unwrap(), organizer, "one demo organizer");
    let resp = app.browser().sign_in(setup::DEMO_EMAIL, setup::DEMO_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin", "the printed password signs in");

    let old_token = setup::token(db, organizer).await.unwrap();
    let token = setup::token(db, organizer).await.unwrap();
    let events = |token: String| {
        reqwest::Client::new()
            .get(format!("{}/api/v1/admin/events", app.base))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        events(old_token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "the last run's token is revoked"
    );
    assert_eq!(events(token.clone()).await.unwrap().status(), StatusCode::OK);

    let api = setup::OrganizerApi::new(&app.base, token.clone()).unwrap();
    let first = api.demo_sale().await.unwrap();
    assert!(!first.reused);
    assert_eq!(first.capacity, setup::DEMO_CAPACITY);
    let again = api.demo_sale().await.unwrap();
    assert!(again.reused);
    assert_eq!((again.event, again.sale), (first.event, first.sale));

    let closed = reqwest::Client::new()
        .patch(format!("{}/api/v1/admin/sales/{}", app.base, first.sale))
        .bearer_auth(&token)
        .json(&serde_json::json!({"state": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), StatusCode::OK);
    let next = api.demo_sale().await.unwrap();
    assert!(!next.reused);
    assert_ne!(next.sale, first.sale, "a closed sale is not reused");
}
