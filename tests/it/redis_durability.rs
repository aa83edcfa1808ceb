//! The waiting line outlives its Redis server: a server killed with SIGKILL comes back from
//! its append-only file, and a primary that dies is replaced by its replica through Sentinel.
//! Either way no place in line or hold acknowledged before the fault is lost (up to the
//! replication lag, which these tests let drain first), nothing is oversold, no committed order
//! is lost, buyers meanwhile get a 503 with Retry-After, and selling goes on by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::faults::{assert_unavailable, join, json_of, order, poll};
use crate::redis_servers::{Sentinel, Server};
use crate::support::TestApp;
use crate::support::browser;

/// The queue's Redis as `docker-compose.yml` runs it: every write appended to a file, the file
/// flushed to disk once a second.
const PERSISTENT: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "everysec"];

/// One buyer in the sale, as the test saw it answered before the fault.
struct Buyer {
    client: reqwest::Client,
    code: String,
    seen: Value,
}

/// A sale of 3 tickets mid-way: one sold, two held at checkout, three waiting in line.
struct MidSale {
    sale: boxoffice::sale::SaleId,
    holders: Vec<Buyer>,
    waiters: Vec<Buyer>,
}

async fn mid_sale(app: &TestApp) -> MidSale {
    let sale = app.world.sale(3, 120).await.sale_id();
    let base = &app.base;
    let first = browser();
    let r = json_of(join(&first, base, sale, 1).await).await;
    let resp = order(&first, base, r["code"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut buyers = Vec::new();
    for _ in 0..5 {
        let client = browser();
        let seen = json_of(join(&client, base, sale, 1).await).await;
        let code = seen["code"].as_str().unwrap().to_string();
        buyers.push(Buyer { client, code, seen });
    }
    let waiters = buyers.split_off(2);
    for (i, b) in buyers.iter().enumerate() {
        assert_eq!(b.seen["state"], "admitted", "holder {i}: {}", b.seen);
    }
    for (i, b) in waiters.iter().enumerate() {
        assert_eq!(b.seen["state"], "waiting", "waiter {i}: {}", b.seen);
        assert_eq!(b.seen["position"], i + 1, "waiter {i}: {}", b.seen);
    }
    MidSale {
        sale,
        holders: buyers,
        waiters,
    }
}

/// Polls until the app answers a poll with 200 again (it reconnects by itself), or panics.
async fn until_answered(app: &TestApp, buyer: &Buyer, what: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        let resp = poll(&buyer.client, &app.base, &buyer.code).await;
        match resp.status() {
            StatusCode::OK => return json_of(resp).await,
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("{what}: a poll answered {other}: {}", resp.text().await.unwrap()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: the app did not answer again within 15 s");
}

/// Every hold and place in line is as it was before the fault, and selling goes on from there:
/// a holder buys, the other gives up and the head of the line moves up and buys the last
/// ticket; then the rest of the line and a newcomer hear "sold out", and Postgres has exactly
/// the orders that were answered 201.
async fn line_is_intact_and_selling_goes_on(app: &TestApp, mid: &MidSale) {
    let base = &app.base;
    for (i, b) in mid.holders.iter().enumerate() {
        let now = json_of(poll(&b.client, base, &b.code).await).await;
        assert_eq!(now["state"], "admitted", "holder {i} keeps the hold: {now}");
        assert_eq!(
            now["expires_at"], b.seen["expires_at"],
            "holder {i}: the same hold: {now}"
        );
    }
    for (i, b) in mid.waiters.iter().enumerate() {
        let now = json_of(poll(&b.client, base, &b.code).await).await;
        assert_eq!(now["state"], "waiting", "waiter {i} keeps the place: {now}");
        assert_eq!(now["position"], i + 1, "waiter {i} keeps the place: {now}");
    }
    let figures = app.world.sales.figures(mid.sale).await.unwrap();
    assert_eq!((figures.sold, figures.held, figures.waiting), (1, 2, 3));

    let (buyer, leaver, head) = (&mid.holders[0], &mid.holders[1], &mid.waiters[0]);
    assert_eq!(
        order(&buyer.client, base, &buyer.code).await.status(),
        StatusCode::CREATED
    );
    let gone = leaver
        .client
        .delete(format!("{base}/api/v1/reservations/{}", leaver.code))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let now = json_of(poll(&head.client, base, &head.code).await).await;
    assert_eq!(now["state"], "admitted", "the head moves up: {now}");
    assert_eq!(
        order(&head.client, base, &head.code).await.status(),
        StatusCode::CREATED
    );
    for b in &mid.waiters[1..] {
        let now = json_of(poll(&b.client, base, &b.code).await).await;
        assert_eq!(now["state"], "sold_out", "{now}");
    }
    let late = json_of(join(&browser(), base, mid.sale, 1).await).await;
    assert_eq!(late["state"], "sold_out", "{late}");

    assert_eq!(app.world.pg_sold(mid.sale).await, 3);
    let figures = app.world.sales.figures(mid.sale).await.unwrap();
    assert_eq!((figures.sold, figures.held), (3, 0), "nothing oversold");
}

/// One buyer of a crowd that keeps buying through a failover, as a patient person would: a
/// 503 is tried again, a reservation the failover lost (404) is joined again. Ends bought
/// (true) or told sold out (false); panics on any other answer, a 500 above all.
async fn buy_through_faults(base: String, sale: boxoffice::sale::SaleId, arrives_after: Duration) -> bool {
    tokio::time::sleep(arrives_after).await;
    let client = browser();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut code: Option<String> = None;
    while std::time::Instant::now() < deadline {
        let resp = match &code {
            None => join(&client, &base, sale, 1).await,
            Some(c) => poll(&client, &base, c).await,
        };
        let status = resp.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if status == StatusCode::NOT_FOUND && code.is_some() {
            code = None;
            continue;
        }
        assert!(
            status.is_success(),
            "a buyer got {status}: {}",
            resp.text().await.unwrap()
        );
        let r = json_of(resp).await;
        code = r["code"].as_str().map(str::to_string);
        match r["state"].as_str() {
            Some("sold_out") => return false,
            Some("admitted") => {
                let resp = order(&client, &base, code.as_deref().unwrap()).await;
                match resp.status() {
                    StatusCode::CREATED => return true,
                    StatusCode::CONFLICT => {
                        let body = json_of(resp).await;
                        assert_eq!(body["error"], "sold_out", "{body}");
                        return false;
                    }
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::NOT_FOUND => {}
                    other => panic!("an order got {other}: {}", resp.text().await.unwrap()),
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("a buyer neither bought nor heard sold out within 40 s");
}

#[tokio::test]
async fn redis_killed_with_sigkill_comes_back_from_its_files_with_the_line_intact() {
    let mut redis = Server::start_with(&PERSISTENT);
    let app = TestApp::spawn_with(|s| s.redis_url = redis.url()).await;
    let mid = mid_sale(&app).await;

    redis.kill();
    let waiter = &mid.waiters[0];
    assert_unavailable(
        poll(&waiter.client, &app.base, &waiter.code).await,
        "poll while Redis is down",
    )
    .await;
    assert_unavailable(
        join(&browser(), &app.base, mid.sale, 1).await,
        "join while Redis is down",
    )
    .await;

    redis.start_again();
    until_answered(&app, waiter, "after the restart").await;
    line_is_intact_and_selling_goes_on(&app, &mid).await;
}

#[tokio::test]
async fn a_primary_failed_over_by_sentinel_keeps_the_line_and_sells_on() {
    const SERVICE: &str = "boxoffice-test";
    let mut primary = Server::start_with(&PERSISTENT);
    let replica_of = primary.port.to_string();
    let replica = Server::start_with(&[&PERSISTENT[..], &["--replicaof", "127.0.0.1", &replica_of]].concat());
    let sentinel = Sentinel::start(SERVICE, primary.port);
    let mut known = false;
    for _ in 0..100 {
        if sentinel.replicas(SERVICE).contains(&replica.port.to_string()) {
            known = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(known, "Sentinel learned of the replica");
    let app = TestApp::spawn_with(|s| {
        s.redis_sentinels = format!("127.0.0.1:{}", sentinel.port);
        s.redis_sentinel_service = SERVICE.into();
    })
    .await;
    let mid = mid_sale(&app).await;

    // The replica has everything the primary acknowledged: the lag has drained.
    let mut caught_up = false;
    for _ in 0..100 {
        let offset = primary.replication("master_repl_offset");
        if !offset.is_empty() && replica.replication("master_repl_offset") == offset {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the replica caught up with the primary");

    // A buyer keeps polling through the failover: every answer is a 200 or a 503, never a 500.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, client, code, base) = (
            stop.clone(),
            mid.holders[0].client.clone(),
            mid.holders[0].code.clone(),
            app.base.clone(),
        );
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                statuses.push(poll(&client, &base, &code).await.status());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            statuses
        })
    };

    // A crowd buys the ten tickets of another sale while the primary dies under it: one buyer
    // arrives every 50 ms, from before the kill until after the failover.
    let crowd_sale = app.world.sale(10, 120).await.sale_id();
    let crowd: Vec<_> = (0..20u64)
        .map(|i| {
            let arrives_after = Duration::from_millis(50 * i);
            tokio::spawn(buy_through_faults(app.base.clone(), crowd_sale, arrives_after))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    primary.kill();
    let mut promoted = false;
    for _ in 0..200 {
        if sentinel.primary_port(SERVICE) == Some(replica.port) {
            promoted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(promoted, "Sentinel promoted the replica within 20 s");
    until_answered(&app, &mid.waiters[0], "after the failover").await;
    stop.store(true, Ordering::SeqCst);
    let statuses = watcher.await.unwrap();
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(s)),
        "only 200 and 503 through the failover: {statuses:?}"
    );
    assert_eq!(replica.replication("role"), "master");

    line_is_intact_and_selling_goes_on(&app, &mid).await;

    // Every order answered 201 is in Postgres, none beyond the capacity, and Redis agrees.
    let mut bought = 0;
    for buyer in crowd {
        bought += i32::from(buyer.await.unwrap());
    }
    assert_eq!(bought, 10, "the crowd bought every ticket and no more");
    assert_eq!(app.world.pg_sold(crowd_sale).await, 10);
    let figures = app.world.sales.figures(crowd_sale).await.unwrap();
    assert_eq!((figures.sold, figures.held), (10, 0));
}
