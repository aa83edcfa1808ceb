//! Faults injected against real services: Redis restarted empty mid-sale, Postgres gone during
//! checkout, an app instance killed while its buyers are at checkout. None may oversell or
//! lose a committed order, and buyers get a clear answer (503 and Retry-After), never a 500.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fault_support::{AppProcess, app_behind_a_postgres_proxy};
use crate::redis_servers;
use crate::support::{TestApp, World, browser};

fn buyer_details() -> Value {
    json!({"name": "Ada Lovelace", "email": "ada@example.com", "age": 36, "gender": "female"})
}

pub(crate) async fn join(
    client: &reqwest::Client,
    base: &str,
    sale: impl std::fmt::Display,
    qty: i64,
) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/sales/{sale}/reservations"))
        .json(&json!({ "quantity": qty }))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn order(client: &reqwest::Client, base: &str, code: &str) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/reservations/{code}/order"))
        .json(&buyer_details())
        .send()
        .await
        .unwrap()
}

pub(crate) async fn poll(client: &reqwest::Client, base: &str, code: &str) -> reqwest::Response {
    client
        .get(format!("{base}/api/v1/reservations/{code}"))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

/// Asserts a clear "try again" answer: 503 with Retry-After and a JSON error, never a 500.
pub(crate) async fn assert_unavailable(resp: reqwest::Response, what: &str) {
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(resp.headers().contains_key("retry-after"), "{what}: Retry-After");
    let body = json_of(resp).await;
    assert_eq!(body["error"], "unavailable", "{what}: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("try again"),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn redis_restarted_empty_mid_sale_recovers_without_losing_or_overselling() {
    let mut redis = redis_servers::Server::start();
    let app = TestApp::spawn_with(|s| s.redis_url = redis.url()).await;
    let sale = app.world.sale(4, 60).await.sale_id();
    let base = app.base.clone();

    let first = browser();
    let r = json_of(join(&first, &base, sale, 1).await).await;
    assert_eq!(
        order(&first, &base, r["code"].as_str().unwrap()).await.status(),
        StatusCode::CREATED
    );
    let holder = browser();
    let held = json_of(join(&holder, &base, sale, 1).await).await;
    assert_eq!(held["state"], "admitted");

    redis.stop();
    assert_unavailable(
        app.client()
            .get(app.url(&format!("/api/v1/sales/{sale}")))
            .send()
            .await
            .unwrap(),
        "sale while Redis is down",
    )
    .await;
    assert_unavailable(join(&browser(), &base, sale, 1).await, "join while Redis is down").await;
    assert_unavailable(
        poll(&holder, &base, held["code"].as_str().unwrap()).await,
        "poll while Redis is down",
    )
    .await;
    let page = app
        .client()
        .get(app.url(&format!("/sales/{sale}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "event page while Redis is down"
    );

    redis.restart();
    // The clients reconnect by themselves; the sale is rebuilt from Postgres on first use.
    let mut figures = Value::Null;
    for _ in 0..100 {
        let resp = app
            .client()
            .get(app.url(&format!("/api/v1/sales/{sale}")))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::OK {
            figures = json_of(resp).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(figures["sold"], 1, "the committed order survived: {figures}");
    assert_eq!(figures["held"], 0, "the lost hold is gone with Redis: {figures}");

    // The buyer whose hold was lost is told so plainly, and joins again.
    let lost = poll(&holder, &base, held["code"].as_str().unwrap()).await;
    assert_eq!(lost.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(lost).await["error"], "unknown_reservation");
    let again = json_of(join(&holder, &base, sale, 1).await).await;
    assert_eq!(again["state"], "admitted", "{again}");
    assert_eq!(
        order(&holder, &base, again["code"].as_str().unwrap()).await.status(),
        StatusCode::CREATED
    );

    // Selling goes on, up to the capacity and not one ticket further.
    let mut sold = 2;
    for _ in 0..5 {
        let buyer = browser();
        let r = json_of(join(&buyer, &base, sale, 1).await).await;
        if r["state"] == "admitted" {
            assert_eq!(
                order(&buyer, &base, r["code"].as_str().unwrap()).await.status(),
                StatusCode::CREATED
            );
            sold += 1;
        } else {
            assert_eq!(r["state"], "sold_out", "{r}");
        }
    }
    assert_eq!(sold, 4);
    assert_eq!(app.world.pg_sold(sale).await, 4);
}

#[tokio::test]
async fn postgres_down_at_checkout_keeps_the_hold_for_a_retry() {
    let (app, proxy, direct_url) = app_behind_a_postgres_proxy().await;
    let sale = app.world.sale(2, 60).await.sale_id();
    let watcher = sqlx::PgPool::connect(&direct_url).await.unwrap();
    let base = app.base.clone();

    let buyer = browser();
    let r = json_of(join(&buyer, &base, sale, 2).await).await;
    assert_eq!(r["state"], "admitted");
    let code = r["code"].as_str().unwrap().to_string();

    proxy.down();
    let resp = order(&buyer, &base, &code).await;
    assert_unavailable(resp, "order while Postgres is down").await;

    // Nothing half-written, nothing sold in Redis, and the hold is still the buyer's.
    let orders: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(&watcher)
        .await
        .unwrap();
    let pg_sold: i32 = sqlx::query_scalar("select sold from ticket_sales where id = $1")
        .bind(sale.0)
        .fetch_one(&watcher)
        .await
        .unwrap();
    assert_eq!((orders, pg_sold), (0, 0));
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (0, 2));
    assert_eq!(json_of(poll(&buyer, &base, &code).await).await["state"], "admitted");

    proxy.up();
    let resp = order(&buyer, &base, &code).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body = json_of(resp).await;
    assert_eq!(body["order"]["quantity"], 2, "{body}");
    let pg_sold: i32 = sqlx::query_scalar("select sold from ticket_sales where id = $1")
        .bind(sale.0)
        .fetch_one(&watcher)
        .await
        .unwrap();
    assert_eq!(pg_sold, 2);
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (2, 0));
}

#[tokio::test]
async fn a_killed_instance_leaves_its_buyers_to_the_other() {
    let world = World::new().await;
    let sale = world.sale(2, 2).await.sale_id();
    let redis_url = crate::support::redis_url();
    let mut doomed = AppProcess::start(&world.settings.database_url, &redis_url).await;
    let survivor = AppProcess::start(&world.settings.database_url, &redis_url).await;

    // A holds one ticket through the doomed instance, C another; B waits on the survivor.
    let (a, b, c) = (browser(), browser(), browser());
    let a_r = json_of(join(&a, &doomed.base, sale, 1).await).await;
    let c_r = json_of(join(&c, &doomed.base, sale, 1).await).await;
    let b_r = json_of(join(&b, &survivor.base, sale, 1).await).await;
    assert_eq!(
        (a_r["state"].as_str(), c_r["state"].as_str()),
        (Some("admitted"), Some("admitted"))
    );
    assert_eq!(b_r["state"], "waiting");

    doomed.kill();

    // C finishes checkout on the survivor: the app keeps nothing a buyer needs.
    let c_code = c_r["code"].as_str().unwrap();
    assert_eq!(order(&c, &survivor.base, c_code).await.status(), StatusCode::CREATED);

    // A's hold still lapses on time, without the instance that made it, and B moves up.
    let b_code = b_r["code"].as_str().unwrap();
    let mut admitted = false;
    for _ in 0..60 {
        let s = json_of(poll(&b, &survivor.base, b_code).await).await;
        if s["state"] == "admitted" {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(admitted, "B was admitted after A's hold lapsed");
    let a_state = json_of(poll(&a, &survivor.base, a_r["code"].as_str().unwrap()).await).await;
    assert_eq!(a_state["state"], "expired");
    assert_eq!(order(&b, &survivor.base, b_code).await.status(), StatusCode::CREATED);
    assert_eq!(world.pg_sold(sale).await, 2);
    let late = json_of(join(&browser(), &survivor.base, sale, 1).await).await;
    assert_eq!(late["state"], "sold_out");
}
