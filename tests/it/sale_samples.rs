//! The sale's samples: one per interval whichever instance takes the turn, and the funnel and
//! series they feed.

use std::time::Duration;

use boxoffice::db;
use chrono::Utc;

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
