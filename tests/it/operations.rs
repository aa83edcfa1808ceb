//! What operators rely on: `/healthz`, `/readyz` (503 when Redis is away), `/metrics`, the
//! request id, and a graceful shutdown that finishes requests in flight and refuses new ones.

use std::time::Duration;

use fred::prelude::*;

use boxoffice::config::Settings;
use boxoffice::startup::Application;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::redis_servers;
use crate::support::{TestApp, World, test_settings};

#[tokio::test]
async fn healthz_answers_and_readyz_checks_redis_and_postgres() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let health = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let ready = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "redis: up\nsessions: up\npostgres: up\n");
}

#[tokio::test]
async fn readyz_is_503_while_redis_is_away_and_healthz_stays_ok() {
    let mut redis = redis_servers::Server::start();
    let world = World::with_settings(Settings {
        redis_url: redis.url(),
        ..test_settings()
    })
    .await;
    let app = TestApp::on(world).await;
    let c = app.client();
    assert_eq!(c.get(app.url("/readyz")).send().await.unwrap().status(), 200);

    redis.stop();
    let ready = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.text().await.unwrap(),
        "redis: down\nsessions: down\npostgres: up\n"
    );
    assert_eq!(c.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

/// On the machine of its Redis the shop may reach it by its Unix socket
/// (`REDIS_URL=redis+unix:///…/redis.sock`): `/readyz` sees it, buyers join and are admitted
/// in order, and the sale lives in that Redis.
#[tokio::test]
async fn the_shop_reaches_redis_by_its_unix_socket() {
    let redis = redis_servers::Server::start_with_socket();
    let world = World::with_settings(Settings {
        redis_url: redis.unix_url(),
        ..test_settings()
    })
    .await;
    let sale = world.sale(1, 60).await.sale_id();
    let app = TestApp::on(world).await;
    let c = app.client();
    let ready = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.text().await.unwrap(), "redis: up\nsessions: up\npostgres: up\n");

    let first = crate::support::api_join(&app.url(""), &crate::support::browser(), sale, 1).await;
    let second = crate::support::api_join(&app.url(""), &crate::support::browser(), sale, 1).await;
    assert_eq!(
        (first["state"].as_str(), second["state"].as_str()),
        (Some("admitted"), Some("waiting"))
    );
    assert_eq!(second["position"], 1);
    let sale_keys = redis_servers::redis_cli(redis.port, &["keys", &format!("bo:{{{}}}:*", sale.0.simple())]);
    assert!(
        sale_keys.lines().count() >= 3,
        "the sale's keys in the socket's Redis: {sale_keys}"
    );
}

/// With `BOXOFFICE_SESSION_REDIS_URL` a browser's session is a key of the sessions' Redis and
/// none of the sales' one; with that Redis away the pages answer 503 and `/readyz` says which
/// one is down, while the JSON API (whose sessions are not stored) keeps selling.
#[tokio::test]
async fn sessions_live_in_their_own_redis_when_configured() {
    let mut sessions = redis_servers::Server::start();
    let world = World::with_settings(Settings {
        session_redis_url: sessions.url(),
        ..test_settings()
    })
    .await;
    let app = TestApp::on(world).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let browser = app.client();
    let joined = browser
        .post(app.url(&format!("/sales/{sale}")))
        .form(&[("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert!(
        joined.status().is_redirection() || joined.status().is_success(),
        "{}",
        joined.status()
    );
    let cookie = joined
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("bo_session="))
        .expect("the page join sets the session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        redis_servers::redis_cli(sessions.port, &["exists", &cookie]),
        "1",
        "the session is stored in the sessions' Redis"
    );
    let in_sales: i64 = app.world.redis.exists(cookie.as_str()).await.unwrap();
    assert_eq!(in_sales, 0, "and not beside the sales");

    sessions.stop();
    let ready = browser.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "redis: up\nsessions: down\npostgres: up\n");
    let page = app
        .client()
        .post(app.url(&format!("/sales/{sale}")))
        .form(&[("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503, "a page that needs a session says to try again");
    let api = app
        .client()
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 201, "the API still sells without the sessions' Redis");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_show_the_sales() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(1, 60).await.sale_id();
    let (a, b) = (app.client(), app.client());
    let join = |c: &reqwest::Client| {
        c.post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
            .json(&json!({"quantity": 1}))
            .send()
    };
    join(&a).await.unwrap();
    let waiting: Value = join(&b).await.unwrap().json().await.unwrap();
    assert_eq!(waiting["state"], "waiting");
    let code = waiting["code"].as_str().unwrap().to_string();
    let poll = b.get(app.url(&format!("/wait/{code}/poll"))).send().await.unwrap();
    assert_eq!(poll.status(), 200);
    // The JSON poll by its short way (GET) and by the operation (HEAD): one template.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let url = app.url(&format!("/api/v1/reservations/{code}"));
        assert_eq!(b.request(method, url).send().await.unwrap().status(), 200);
    }

    let resp = a.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    let id = sale.0.simple();
    for line in [
        r#"boxoffice_http_requests_total{method="GET",route="/wait/:code/poll",status="200"}"#,
        r#"boxoffice_http_request_duration_seconds_bucket{method="GET",route="/wait/:code/poll",le="#,
        r#"boxoffice_http_requests_total{method="GET",route="/api/v1/reservations/:param0",status="200"}"#,
        r#"boxoffice_http_requests_total{method="HEAD",route="/api/v1/reservations/:param0",status="200"}"#,
        r#"boxoffice_script_duration_seconds_count{script="status"}"#,
        r#"boxoffice_script_duration_seconds_count{script="join"}"#,
        "boxoffice_joins_total",
        "boxoffice_orders_total",
        &format!(r#"boxoffice_sale_waiting{{sale="{id}"}} 1"#),
        &format!(r#"boxoffice_sale_held{{sale="{id}"}} 1"#),
        &format!(r#"boxoffice_sale_admitted{{sale="{id}"}} 1"#),
        &format!(r#"boxoffice_sale_sold{{sale="{id}"}} 0"#),
        &format!(r#"boxoffice_sale_lapsed{{sale="{id}"}} 0"#),
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    // Labels are templates: no reservation code ever becomes a label value.
    assert!(!text.contains(&code), "a raw path leaked into the labels");
    // poem-openapi names path parameters by position.
    assert!(
        text.contains(
            r#"boxoffice_http_requests_total{method="POST",route="/api/v1/sales/:param0/reservations",status="201"}"#
        ),
        "the API's route template is a label:\n{text}"
    );
    let unmatched = a.get(app.url(&format!("/no/{code}"))).send().await.unwrap();
    assert_eq!(unmatched.status(), 404);
    let text = a.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"route="unmatched",status="404"}"#), "{text}");
    assert!(!text.contains(r#"route="""#), "{text}");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_plain_one_is_kept() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let given = c
        .get(app.url("/healthz"))
        .header("x-request-id", "lb-1234.5")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "lb-1234.5");
    let made = c.get(app.url("/no-such-page")).send().await.unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "a fresh id: {id}");
    let odd = c
        .get(app.url("/healthz"))
        .header("x-request-id", "has space")
        .send()
        .await
        .unwrap();
    assert_ne!(odd.headers()["x-request-id"], "has space");
}

/// Sends a join whose body arrives only in part, so that it is in flight until `finish`.
async fn half_sent_join(port: u16, sale: &str) -> TcpStream {
    let body = r#"{"quantity": 1}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /api/v1/sales/{sale}/reservations HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{}",
        body.len(),
        &body[..8]
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

async fn finish(mut s: TcpStream) -> String {
    s.write_all(br#"ty": 1}"#).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_connections() {
    let world = World::new().await;
    let sale = world.sale(10, 60).await.sale_id().to_string();
    let app = Application::with_state(world.app_state()).await.unwrap();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let mut in_flight = Vec::new();
    for _ in 0..3 {
        in_flight.push(half_sent_join(port, &sale).await);
    }
    // Let the server read the heads and start the handlers, which now wait for the bodies.
    // (A connection whose head the server had not read yet would count as idle and close.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(()).unwrap();

    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a new connection after shutdown began is refused");
    for s in in_flight {
        let answer = finish(s).await;
        assert!(
            answer.starts_with("HTTP/1.1 201"),
            "an in-flight join completes: {answer}"
        );
    }
    let served = tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server stops within its grace period");
    served.unwrap().unwrap();
    assert!(
        world.db.is_closed(),
        "the Postgres pool is closed after the last request"
    );
}
