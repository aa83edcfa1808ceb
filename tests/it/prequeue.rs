//! The pre-queue and its draw at the opening: entries with receipts before the opening (one per
//! session), one draw however many instances race to make it (also one of several batches),
//! admission in drawn order, later joins behind, Redis lost before the draw, a sale paused or
//! closed before its opening, the crowd's polls before the opening kept off Postgres, and
//! `boxoffice verify-draw` against the real published draw.

use std::time::Duration;

use boxoffice::config::{BeaconSource, Settings};
use boxoffice::draw::beacon::{Beacon, BeaconChain, LocalBeacon};
use boxoffice::draw::published::PublishedDraw;
use boxoffice::draw::receipt::Receipt;
use boxoffice::sale::{
    DRAW_BATCH, Owner, Quantity, Reservation, ReservationState, SaleError, SaleId, SaleState, sale_keys,
};
use chrono::Utc;
use fred::prelude::KeysInterface;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, World, api_join, get_json, test_settings};

fn local_beacon_settings() -> Settings {
    Settings {
        beacon: BeaconSource::Local,
        ..test_settings()
    }
}

/// The local beacon's key, which a verifier must be told to trust.
pub(crate) fn trusted_key(settings: &Settings) -> String {
    let BeaconChain::Local { public_key, .. } = LocalBeacon::from_secret(&settings.secret).chain() else {
        unreachable!("a local beacon")
    };
    public_key.to_string()
}

/// A sale of `capacity` whose pre-queue opened ten minutes ago and that opens in `opens_in`.
pub(crate) async fn prequeue_sale(world: &World, capacity: i32, opens_in: chrono::Duration) -> SaleId {
    let sale = world.sale_with(capacity, 600, 0, Utc::now() + opens_in).await.sale_id();
    sqlx::query("update ticket_sales set prequeue_secs = 1800, revision = revision + 1 where id = $1")
        .bind(sale.0)
        .execute(&world.db)
        .await
        .unwrap();
    world.sales.sync(sale).await.unwrap();
    sale
}

fn one() -> Quantity {
    Quantity::new(1, 6).unwrap()
}

async fn entries_in_postgres(world: &World, sale: SaleId) -> i64 {
    sqlx::query_scalar("select count(*) from prequeue_entries where sale_id = $1")
        .bind(sale.0)
        .fetch_one(&world.db)
        .await
        .unwrap()
}

async fn sleep_until_open(world: &World, sale: SaleId) {
    let opens_at = boxoffice::db::sales::find(&world.db, sale)
        .await
        .unwrap()
        .unwrap()
        .opens_at;
    if let Ok(wait) = (opens_at - Utc::now()).to_std() {
        tokio::time::sleep(wait + Duration::from_millis(200)).await;
    }
}

/// `n` buyers of one ticket each join the sale through `world`'s service.
async fn join_many(world: &World, sale: SaleId, n: usize) -> Vec<(Owner, Reservation)> {
    let mut buyers = Vec::with_capacity(n);
    for _ in 0..n {
        let owner = Owner::random();
        let r = world.sales.join(sale, &owner, one()).await.unwrap();
        assert_eq!(r.state, ReservationState::Prequeue);
        buyers.push((owner, r));
    }
    buyers
}

fn receipt_of(r: &Reservation) -> Receipt {
    r.prequeue.as_ref().expect("a pre-queue entry").receipt.parse().unwrap()
}

#[tokio::test]
async fn joins_in_the_window_get_receipts_one_entry_per_session_even_twenty_at_once() {
    let app = TestApp::spawn_with(|s| s.beacon = BeaconSource::Local).await;
    let sale = prequeue_sale(&app.world, 10, chrono::Duration::minutes(20)).await;
    let c = app.client();
    let first = c
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&serde_json::json!({ "quantity": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["state"], "prequeue", "{first}");
    let code = first["code"].as_str().unwrap().to_string();
    let receipt: Receipt = first["receipt"].as_str().unwrap().parse().unwrap();
    let poll_after = first["poll_after_ms"].as_u64().unwrap();
    assert!((1_000..=60_000).contains(&poll_after), "{poll_after}");
    assert_eq!(
        poll_after, 60_000,
        "twenty minutes before the opening: the slowest poll"
    );

    // Twenty joins of the same session at once: the same entry, none made.
    let joins = (0..20).map(|_| {
        let c = c.clone();
        let url = app.url(&format!("/api/v1/sales/{sale}/reservations"));
        async move {
            let resp = c
                .post(url)
                .json(&serde_json::json!({ "quantity": 1 }))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    });
    for (status, body) in futures::future::join_all(joins).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["code"], code.as_str());
        assert_eq!(body["receipt"], first["receipt"]);
        assert_eq!(body["quantity"], 2, "the first join's quantity stays");
    }
    assert_eq!(entries_in_postgres(&app.world, sale).await, 1);

    // The receipt is the shop's, and the commitment is the one published before the draw.
    let draw: PublishedDraw = get_json(&c, &app.url(&format!("/api/v1/sales/{sale}/draw"))).await;
    assert!(draw.result.is_none(), "nothing revealed before the opening");
    assert_eq!(draw.commitment.to_string(), first["commitment"].as_str().unwrap());
    assert_eq!(receipt.verify(&draw.receipt_key), Ok(()));
    assert_eq!(receipt.sale, sale.0);

    // The poll says the same; another session cannot see it.
    let polled: Value = get_json(&c, &app.url(&format!("/api/v1/reservations/{code}"))).await;
    assert_eq!(polled["state"], "prequeue");
    assert_eq!(polled["receipt"], first["receipt"]);
    let stranger = app.client();
    let other = stranger
        .get(app.url(&format!("/api/v1/reservations/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // The event page tells of the pre-queue and shows the commitment.
    let event = c
        .get(app.url(&format!("/sales/{sale}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(event.contains("Pre-queue from"), "{event}");
    assert!(event.contains(first["commitment"].as_str().unwrap()));

    // The countdown page shows the receipt and the commitment.
    let page = c.get(app.url(&format!("/wait/{code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("pre-queue"), "{page}");
    assert!(page.contains(first["receipt"].as_str().unwrap()));
    assert!(page.contains(first["commitment"].as_str().unwrap()));

    // Leaving takes the entry off; joining again makes a new one.
    let left = c
        .delete(app.url(&format!("/api/v1/reservations/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    assert_eq!(entries_in_postgres(&app.world, sale).await, 0);
    let again = api_join(&app.base, &c, sale, 1).await;
    assert_eq!(again["state"], "prequeue");
    assert_ne!(again["code"], code.as_str());
    assert_eq!(entries_in_postgres(&app.world, sale).await, 1);
}

/// A crowd polling its pre-queue entries reads Postgres about once per entry, not once per
/// poll: twenty entries polling at the same moment, ten times, on one instance. The answers stay
/// true: each entry's own receipt, a stranger's poll of an entry refused, an entry that left
/// gone, and after the draw the same polls find their places in Redis.
#[tokio::test]
async fn polls_of_the_prequeue_read_postgres_once_per_entry_not_once_per_poll() {
    let world = World::with_settings(local_beacon_settings()).await;
    let sale = prequeue_sale(&world, 2, chrono::Duration::seconds(4)).await;
    let buyers = join_many(&world, sale, 20).await;
    let before = world.sales.prequeue_poll_reads();
    // Ten rounds; in each, every entry polls once and all at the same moment (one browser
    // polls an entry, one poll after the other).
    for _ in 0..10 {
        let polls = buyers.iter().map(|(owner, r)| world.sales.status(&r.code, owner));
        for (answer, (_, joined)) in futures::future::join_all(polls).await.into_iter().zip(&buyers) {
            let answer = answer.unwrap();
            assert_eq!(answer.state, ReservationState::Prequeue);
            assert_eq!(receipt_of(&answer).to_string(), receipt_of(joined).to_string());
        }
    }
    let reads = world.sales.prequeue_poll_reads() - before;
    assert!(reads <= 20 + 2, "{reads} Postgres reads for 200 polls of 20 entries");

    let stranger = Owner::random();
    let err = world.sales.status(&buyers[0].1.code, &stranger).await.unwrap_err();
    assert!(matches!(err, SaleError::UnknownReservation), "{err:?}");
    let (leaver, left) = &buyers[19];
    world.sales.release(&left.code, leaver).await.unwrap();
    let err = world.sales.status(&left.code, leaver).await.unwrap_err();
    assert!(matches!(err, SaleError::UnknownReservation), "{err:?}");

    sleep_until_open(&world, sale).await;
    assert!(world.sales.run_draw(sale).await.unwrap());
    let mut admitted = 0;
    for (owner, r) in &buyers[..19] {
        match world.sales.status(&r.code, owner).await.unwrap().state {
            ReservationState::Admitted => admitted += 1,
            ReservationState::Waiting => {}
            other => panic!("a drawn entry is {other:?}"),
        }
    }
    assert_eq!(admitted, 2, "the draw's first two hold the two tickets");
}

#[tokio::test]
async fn a_join_before_the_window_is_told_when_the_sale_opens() {
    let world = World::with_settings(local_beacon_settings()).await;
    let sale = prequeue_sale(&world, 10, chrono::Duration::hours(2)).await;
    let err = world.sales.join(sale, &Owner::random(), one()).await.unwrap_err();
    assert!(matches!(err, SaleError::NotOpenYet(_)), "{err:?}");
    assert_eq!(entries_in_postgres(&world, sale).await, 0);
}

/// Eight entries, three tickets: three instances race to draw; one draw, once queued; the
/// drawn order is the admission order; a join after the opening goes behind them.
#[tokio::test]
async fn the_draw_happens_once_when_three_instances_race_and_admission_follows_it() {
    let settings = local_beacon_settings();
    let a = World::with_settings(settings.clone()).await;
    let b = World::with_settings(settings.clone()).await;
    let c = World::with_settings(settings.clone()).await;
    let sale = prequeue_sale(&a, 3, chrono::Duration::seconds(3)).await;
    let buyers = join_many(&a, sale, 8).await;
    assert!(buyers.iter().all(|(_, r)| r.created));
    // Before the opening no instance draws.
    assert!(!b.sales.run_draw(sale).await.unwrap());

    sleep_until_open(&a, sale).await;
    // Opened, not drawn: a newcomer would jump the drawn entries; it is asked to retry.
    let late = Owner::random();
    let err = b.sales.join(sale, &late, one()).await.unwrap_err();
    assert!(matches!(err, SaleError::DrawUnderWay), "{err:?}");
    // A buyer of the pre-queue joining again keeps its entry.
    let again = c.sales.join(sale, &buyers[0].0, one()).await.unwrap();
    assert_eq!(again.code, buyers[0].1.code);

    let (ra, rb, rc) = tokio::join!(a.sales.run_draw(sale), b.sales.run_draw(sale), c.sales.run_draw(sale));
    assert!(ra.unwrap() && rb.unwrap() && rc.unwrap());
    let f = a.sales.figures(sale).await.unwrap();
    assert_eq!(f.joined, 8, "every entry queued once");
    assert_eq!((f.held, f.waiting), (3, 5));
    let draws: i64 = sqlx::query_scalar("select count(*) from sale_draws where sale_id = $1 and result is not null")
        .bind(sale.0)
        .fetch_one(&a.db)
        .await
        .unwrap();
    assert_eq!(draws, 1);
    // A fourth attempt changes nothing.
    assert!(c.sales.run_draw(sale).await.unwrap());
    assert_eq!(a.sales.figures(sale).await.unwrap().joined, 8);

    let draw = a.sales.published_draw(sale).await.unwrap().unwrap();
    let result = draw.result.clone().unwrap();
    for (owner, entry) in &buyers {
        let receipt = receipt_of(entry);
        let place =
            boxoffice::draw::published::check(&draw, &receipt, Some(&trusted_key(&settings).parse().unwrap())).unwrap();
        let now = b.sales.status(&entry.code, owner).await.unwrap();
        if place <= 3 {
            assert_eq!(now.state, ReservationState::Admitted, "place {place}");
        } else {
            assert_eq!(now.state, ReservationState::Waiting, "place {place}");
            assert_eq!(now.position, place - 3, "the queue follows the draw");
        }
    }
    assert_eq!(result.entries.len(), 8);

    let behind = b.sales.join(sale, &late, one()).await.unwrap();
    assert_eq!(behind.state, ReservationState::Waiting);
    assert_eq!(behind.position, 6, "behind the five drawn entries still waiting");
}

/// A draw of more than one batch of `draw.lua` (two and a half), three instances racing to
/// queue it while a newcomer keeps trying to join: every entry queued once, the queue in drawn
/// order, and the newcomer refused until the last batch is in, then behind every drawn entry
/// (a join let in between two batches would stand in front of the later ones).
#[tokio::test]
async fn a_draw_of_several_batches_is_queued_once_in_order_and_joins_wait_for_its_last_batch() {
    use futures::StreamExt;
    let settings = local_beacon_settings();
    let a = World::with_settings(settings.clone()).await;
    let b = World::with_settings(settings.clone()).await;
    let c = World::with_settings(settings.clone()).await;
    let capacity: i32 = 5;
    let admitted = capacity as u64;
    let n = 2 * DRAW_BATCH + DRAW_BATCH / 2 + 7;
    let sale = prequeue_sale(&a, capacity, chrono::Duration::minutes(10)).await;
    let buyers: Vec<(Owner, Reservation)> = futures::stream::iter(0..n)
        .map(|_| async {
            let owner = Owner::random();
            let r = a.sales.join(sale, &owner, one()).await.unwrap();
            (owner, r)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(entries_in_postgres(&a, sale).await, n as i64);
    // The joins took their time: the opening comes a second from now.
    sqlx::query(
        "update ticket_sales set opens_at = clock_timestamp() + interval '1 second', revision = revision + 1 where id = $1",
    )
    .bind(sale.0)
    .execute(&a.db)
    .await
    .unwrap();
    a.sales.sync(sale).await.unwrap();
    sleep_until_open(&a, sale).await;

    let late = Owner::random();
    let newcomer = async {
        let mut refused = 0u32;
        loop {
            match c.sales.join(sale, &late, one()).await {
                Ok(r) => break (refused, r),
                Err(SaleError::DrawUnderWay) => refused += 1,
                Err(e) => panic!("a join during the draw: {e:?}"),
            }
        }
    };
    let draws = async { tokio::join!(a.sales.run_draw(sale), b.sales.run_draw(sale), c.sales.run_draw(sale)) };
    let ((refused, behind), (ra, rb, rc)) = tokio::join!(newcomer, draws);
    assert!(ra.unwrap() && rb.unwrap() && rc.unwrap());
    assert!(refused > 0, "the newcomer came during the draw");
    let drawn_waiting = n as u64 - admitted;
    assert_eq!(behind.state, ReservationState::Waiting);
    assert_eq!(behind.position, drawn_waiting + 1, "behind every drawn entry");
    let f = a.sales.figures(sale).await.unwrap();
    assert_eq!(f.joined, n as i64 + 1, "every entry queued once, and the newcomer");
    assert_eq!((f.held, f.waiting), (i64::from(capacity), drawn_waiting as i64 + 1));

    // Each buyer's place in line is its place in the published draw.
    let draw = a.sales.published_draw(sale).await.unwrap().unwrap();
    let trusted = trusted_key(&settings).parse().unwrap();
    boxoffice::draw::published::check(&draw, &receipt_of(&buyers[0].1), Some(&trusted)).unwrap();
    let places: std::collections::HashMap<_, _> = draw
        .result
        .unwrap()
        .entries
        .iter()
        .map(|e| (e.entry_hash, e.place))
        .collect();
    assert_eq!(places.len(), n);
    for (owner, entry) in &buyers {
        let place = places[&receipt_of(entry).entry.hash()];
        let now = b.sales.status(&entry.code, owner).await.unwrap();
        if place <= admitted {
            assert_eq!(now.state, ReservationState::Admitted, "place {place}");
        } else {
            assert_eq!(now.state, ReservationState::Waiting, "place {place}");
            assert_eq!(now.position, place - admitted, "the queue follows the draw");
        }
    }
}

#[tokio::test]
async fn redis_losing_the_sale_before_the_draw_loses_no_entry() {
    let world = World::with_settings(local_beacon_settings()).await;
    let sale = prequeue_sale(&world, 10, chrono::Duration::seconds(3)).await;
    let buyers = join_many(&world, sale, 5).await;
    // Only this sale's keys go, as when Redis restarts without them.
    let _: i64 = world.redis.del(sale_keys(sale)).await.unwrap();
    let polled = world.sales.status(&buyers[0].1.code, &buyers[0].0).await.unwrap();
    assert_eq!(polled.state, ReservationState::Prequeue, "the entry is Postgres's");

    sleep_until_open(&world, sale).await;
    // Rebuilt from Postgres, the sale still waits for its draw.
    let _: i64 = world.redis.del(sale_keys(sale)).await.unwrap();
    let err = world.sales.join(sale, &Owner::random(), one()).await.unwrap_err();
    assert!(matches!(err, SaleError::DrawUnderWay), "{err:?}");

    assert!(world.sales.run_draw(sale).await.unwrap());
    let f = world.sales.figures(sale).await.unwrap();
    assert_eq!(f.joined, 5);
    assert_eq!(f.held, 5, "all five admitted: ten tickets");
    for (owner, r) in &buyers {
        let now = world.sales.status(&r.code, owner).await.unwrap();
        assert_eq!(now.state, ReservationState::Admitted);
    }
}

#[tokio::test]
async fn a_sale_paused_before_its_opening_queues_the_draw_and_admits_on_resume() {
    let world = World::with_settings(local_beacon_settings()).await;
    let sale = prequeue_sale(&world, 10, chrono::Duration::seconds(3)).await;
    let buyers = join_many(&world, sale, 4).await;
    world.sales.set_state(sale, SaleState::Paused).await.unwrap();
    sleep_until_open(&world, sale).await;
    assert_eq!(world.sales.run_due_draws().await.unwrap(), 1);
    let f = world.sales.figures(sale).await.unwrap();
    assert_eq!(
        (f.held, f.waiting),
        (0, 4),
        "paused: queued in drawn order, nobody admitted"
    );
    world.sales.set_state(sale, SaleState::Open).await.unwrap();
    for (owner, r) in &buyers {
        let now = world.sales.status(&r.code, owner).await.unwrap();
        assert_eq!(now.state, ReservationState::Admitted);
    }
}

#[tokio::test]
async fn a_sale_closed_before_its_opening_tells_its_entries_and_draws_nothing() {
    let world = World::with_settings(local_beacon_settings()).await;
    let sale = prequeue_sale(&world, 10, chrono::Duration::seconds(2)).await;
    let owner = Owner::random();
    let r = world.sales.join(sale, &owner, one()).await.unwrap();
    world.sales.set_state(sale, SaleState::Closed).await.unwrap();
    let now = world.sales.status(&r.code, &owner).await.unwrap();
    assert_eq!(now.state, ReservationState::Closed);
    let err = world.sales.join(sale, &Owner::random(), one()).await.unwrap_err();
    assert!(matches!(err, SaleError::Closed), "{err:?}");
    sleep_until_open(&world, sale).await;
    assert_eq!(world.sales.run_due_draws().await.unwrap(), 0);
    let f = world.sales.figures(sale).await.unwrap();
    assert_eq!((f.joined, f.held, f.waiting), (0, 0, 0));
}

async fn verify_draw(base: &str, sale: SaleId, receipt: &str, trusted: &str) -> (bool, String) {
    crate::draw_verify::run_verify_draw(base, sale.0, receipt, Some(trusted)).await
}

/// The whole path over HTTP with the shop's own draw loop: buyers join the pre-queue, the
/// shop draws at the opening by itself, the polls turn into places in line, and
/// `verify-draw` confirms a buyer's place against the published draw, and fails once a
/// place in the stored draw is changed.
#[tokio::test]
async fn the_shop_draws_at_the_opening_by_itself_and_verify_draw_checks_the_real_draw() {
    let app = TestApp::spawn_with(|s| s.beacon = BeaconSource::Local).await;
    let sale = prequeue_sale(&app.world, 2, chrono::Duration::seconds(3)).await;
    let mut buyers = Vec::new();
    for _ in 0..5 {
        let c = app.client();
        let joined = api_join(&app.base, &c, sale, 1).await;
        assert_eq!(joined["state"], "prequeue", "{joined}");
        buyers.push((c, joined));
    }
    let not_yet = app
        .client()
        .get(app.url(&format!("/api/v1/sales/{sale}/draw")))
        .send()
        .await
        .unwrap();
    assert_eq!(not_yet.status(), StatusCode::OK);
    assert_eq!(not_yet.json::<Value>().await.unwrap()["result"], Value::Null);
    let (_, mine) = &buyers[0];
    let receipt = mine["receipt"].as_str().unwrap().to_string();
    let trusted = trusted_key(&app.world.settings);
    let (ok, out) = verify_draw(&app.base, sale, &receipt, &trusted).await;
    assert!(!ok && out.contains("not happened"), "before the draw: {out}");

    // Each poll turns from the pre-queue into a place once the shop has drawn.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut states = Vec::new();
    for (c, joined) in &buyers {
        let code = joined["code"].as_str().unwrap();
        loop {
            let polled: Value = get_json(c, &app.url(&format!("/api/v1/reservations/{code}"))).await;
            if polled["state"] != "prequeue" {
                states.push(polled);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no draw within 20 s");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let admitted = states.iter().filter(|s| s["state"] == "admitted").count();
    let waiting: Vec<u64> = states
        .iter()
        .filter(|s| s["state"] == "waiting")
        .map(|s| s["position"].as_u64().unwrap())
        .collect();
    assert_eq!(admitted, 2, "{states:?}");
    let mut positions = waiting.clone();
    positions.sort();
    assert_eq!(positions, vec![1, 2, 3]);

    let (ok, out) = verify_draw(&app.base, sale, &receipt, &trusted).await;
    assert!(ok, "{out}");
    let draw = app.world.sales.published_draw(sale).await.unwrap().unwrap();
    let my_place =
        boxoffice::draw::published::check(&draw, &receipt.parse().unwrap(), Some(&trusted.parse().unwrap())).unwrap();
    assert!(out.contains(&format!("your place   {my_place} of 5")), "{out}");
    let my_state = &states[0];
    if my_place <= 2 {
        assert_eq!(my_state["state"], "admitted");
    } else {
        assert_eq!(my_state["position"].as_u64().unwrap(), my_place - 2);
    }

    // The stored draw with two places swapped: the check names the order.
    sqlx::query(
        "update sale_draws set result = jsonb_set(jsonb_set(result, '{entries,0,entry_hash}', result #> '{entries,1,entry_hash}'),
                                                  '{entries,1,entry_hash}', result #> '{entries,0,entry_hash}')
         where sale_id = $1",
    )
    .bind(sale.0)
    .execute(&app.world.db)
    .await
    .unwrap();
    let (ok, out) = verify_draw(&app.base, sale, &receipt, &trusted).await;
    assert!(!ok && out.contains("order"), "a tampered place: {out}");
}
