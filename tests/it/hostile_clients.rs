//! Hostile clients: forged sale ids and codes, floods on every buyer route, forged forwarding
//! headers, and the state one client can leave behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use boxoffice::sale::{Owner, ReservationCode, ReservationState, SaleId};
use fred::prelude::*;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

fn buyer_json() -> Value {
    json!({"name": "Ada Lovelace", "email": "ada@example.com", "age": 36, "gender": "female"})
}

fn buyer_form() -> [(&'static str, &'static str); 4] {
    [
        ("name", "Ada Lovelace"),
        ("email", "ada@example.com"),
        ("age", "36"),
        ("gender", "female"),
    ]
}

/// The app behind a reverse proxy on loopback: every test client names its address in
/// `X-Forwarded-For`, as the proxy would.
async fn behind_a_proxy(change: impl FnOnce(&mut boxoffice::config::Settings)) -> TestApp {
    TestApp::spawn_with(|s| {
        s.trusted_proxies = "127.0.0.1/32,::1/128".parse().unwrap();
        change(s);
    })
    .await
}

/// A client whose every request says it comes from `addr` (through the proxy, or forged).
fn client_at(addr: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", addr.parse().unwrap());
    crate::support::http()
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn api_join(app: &TestApp, c: &reqwest::Client, sale: SaleId) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&json!({ "quantity": 1 }))
        .send()
        .await
        .unwrap()
}

// ---- unknown sales and codes ---------------------------------------------------------------

#[tokio::test]
async fn forged_sale_ids_leave_no_state_behind() {
    let app = TestApp::spawn_with(|s| {
        s.rate_poll_per_min = 0;
        s.rate_buyer_per_min = 0;
    })
    .await;
    let c = app.client();
    // A cookie, so that every forged code reaches the sale service.
    let real = app.world.sale(5, 60).await.sale_id();
    assert_eq!(api_join(&app, &c, real).await.status(), StatusCode::CREATED);

    let forged: Vec<ReservationCode> = (0..300).map(|_| ReservationCode::new(SaleId::new())).collect();
    let statuses: Vec<StatusCode> = futures::stream::iter(&forged)
        .map(|code| {
            let (c, url) = (c.clone(), app.url(&format!("/api/v1/reservations/{code}")));
            async move { c.get(url).send().await.unwrap().status() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::NOT_FOUND), "{statuses:?}");
    assert_eq!(
        app.world.sales.rebuilds_in_progress(),
        0,
        "every failed rebuild left an entry"
    );
}

#[tokio::test]
async fn an_unknown_sale_id_is_answered_again_without_postgres() {
    let app = TestApp::spawn_with(|s| s.rate_buyer_per_min = 0).await;
    let c = app.client();
    let real = app.world.sale(5, 60).await.sale_id();
    assert_eq!(api_join(&app, &c, real).await.status(), StatusCode::CREATED);
    let sale = SaleId::new();
    let code = ReservationCode::new(sale);
    let routes = [
        format!("/api/v1/sales/{sale}"),
        format!("/api/v1/reservations/{code}"),
        format!("/sales/{sale}"),
        format!("/checkout/{code}"),
    ];
    for route in &routes {
        let resp = c.get(app.url(route)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{route}");
    }
    // Postgres away for this app: the same forged id is still a plain 404, from memory.
    app.world.db.close().await;
    for _ in 0..3 {
        for route in &routes {
            let resp = c.get(app.url(route)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{route} asked Postgres again");
        }
    }
}

#[tokio::test]
async fn every_buyer_route_is_limited_per_client_and_a_real_checkout_goes_through_meanwhile() {
    let app = behind_a_proxy(|s| s.rate_buyer_per_min = 40).await;
    let sale = app.world.sale(5, 60).await.sale_id();
    let attacker = client_at("198.51.100.7");
    // The attacker holds a session of its own, so its forged codes reach the sale service.
    assert_eq!(api_join(&app, &attacker, sale).await.status(), StatusCode::CREATED);

    let limited: Arc<[AtomicUsize; 9]> = Arc::new(Default::default());
    // The flood goes on until the buyer is done, and makes at least 900 requests.
    let buyer_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (attacker, base, limited) = (attacker.clone(), app.base.clone(), limited.clone());
        let buyer_done = buyer_done.clone();
        tokio::spawn(async move {
            futures::stream::iter(0usize..)
                .take_while(move |i| std::future::ready(*i < 900 || !buyer_done.load(Ordering::Relaxed)))
                .map(|i| {
                    let (c, base, limited) = (attacker.clone(), base.clone(), limited.clone());
                    async move {
                        let code = ReservationCode::new(if i % 2 == 0 { SaleId::new() } else { sale });
                        let route = i % 9;
                        let req = match route {
                            0 => c.delete(format!("{base}/api/v1/reservations/{code}")),
                            1 => c
                                .post(format!("{base}/api/v1/reservations/{code}/order"))
                                .json(&buyer_json()),
                            2 => c.get(format!("{base}/checkout/{code}")),
                            3 => c.post(format!("{base}/checkout/{code}")).form(&buyer_form()),
                            4 => c.post(format!("{base}/reservations/{code}/release")),
                            5 => c.get(format!("{base}/orders/{code}")),
                            6 => c.get(format!("{base}/sales/{}", code.sale)),
                            7 => c.get(format!("{base}/api/v1/sales/{}", code.sale)),
                            _ => c.get(format!("{base}/")),
                        };
                        let resp = req.send().await.unwrap();
                        assert!(!resp.status().is_server_error(), "{route}: {}", resp.status());
                        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                            assert!(resp.headers().contains_key("retry-after"));
                            limited[route].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
        })
    };

    // A real buyer at another address checks out while the flood runs.
    let buyer = client_at("203.0.113.5");
    let joined: Value = api_join(&app, &buyer, sale).await.json().await.unwrap();
    assert_eq!(joined["state"], "admitted");
    let code = joined["code"].as_str().unwrap();
    let order = buyer
        .post(app.url(&format!("/api/v1/reservations/{code}/order")))
        .json(&buyer_json())
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), StatusCode::CREATED);
    buyer_done.store(true, Ordering::Relaxed);
    flood.await.unwrap();

    for (route, n) in limited.iter().enumerate() {
        assert!(n.load(Ordering::Relaxed) > 50, "route {route} was not limited");
    }
    assert_eq!(app.world.pg_sold(sale).await, 1);
}

// ---- presence ------------------------------------------------------------------------------

#[tokio::test]
async fn a_buyer_whose_polls_are_refused_as_too_fast_keeps_its_place() {
    // One poll a minute: every poll after the first is refused for the whole test.
    let app = TestApp::spawn_with(|s| {
        s.rate_poll_per_min = 1;
        s.abandon_secs = 2;
        s.claim_secs = 60;
    })
    .await;
    let w = &app.world;
    let sale = w.sale(1, 60).await.sale_id();
    let (holder, other) = (Owner::random(), Owner::random());
    let held = w.sales.join(sale, &holder, w.sales.quantity(1).unwrap()).await.unwrap();

    let c = app.client();
    let joined = api_join(&app, &c, sale).await;
    let cookie = session_cookie(&joined).unwrap();
    let body: Value = joined.json().await.unwrap();
    assert_eq!(body["state"], "waiting");
    let code: ReservationCode = body["code"].as_str().unwrap().parse().unwrap();
    let me = boxoffice::web::session::owner_from_session_id(&cookie);

    // The page keeps polling, through the waiting room and the API, for three abandon windows;
    // all but the first poll are refused.
    let mut refused = 0;
    for i in 0..24 {
        let path = if i % 2 == 0 {
            format!("/wait/{code}/poll?start=1")
        } else {
            format!("/api/v1/reservations/{code}")
        };
        let resp = c.get(app.url(&path)).header("HX-Request", "true").send().await.unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(refused >= 23, "{refused}");

    // The ticket comes free; another buyer's poll admits from the head of the line.
    w.sales.release(&held.code, &holder).await.unwrap();
    let later = w.sales.join(sale, &other, w.sales.quantity(1).unwrap()).await.unwrap();
    w.sales.status(&later.code, &other).await.unwrap();
    let peek = w.sales.figures(sale).await.unwrap();
    assert_eq!(peek.held, 1, "the ticket went to the head of the line");
    assert_eq!(
        w.sales.status(&code, &me).await.unwrap().state,
        ReservationState::Admitted,
        "the buyer who kept polling lost its place"
    );
}

#[tokio::test]
async fn a_presence_report_notes_only_waiting_codes_of_their_own_owner() {
    let w = crate::support::World::new().await;
    let sale = w.sale(1, 60).await.sale_id();
    let one = w.sales.quantity(1).unwrap();
    let (holder, waiter) = (Owner::random(), Owner::random());
    let held = w.sales.join(sale, &holder, one).await.unwrap();
    let waiting = w.sales.join(sale, &waiter, one).await.unwrap();
    let forged = ReservationCode::new(sale);
    let report = [
        (waiting.code, Owner::random()),                       // someone else's cookie
        (held.code, holder.clone()),                           // not waiting
        (forged, waiter.clone()),                              // no such code
        (ReservationCode::new(SaleId::new()), waiter.clone()), // another sale
    ];
    assert_eq!(w.sales.keep_present(sale, &report).await.unwrap(), 0);
    assert_eq!(w.sales.keep_present(sale, &[(waiting.code, waiter)]).await.unwrap(), 1);
    // A sale Redis does not have is not rebuilt for a report.
    let unknown = SaleId::new();
    assert_eq!(
        w.sales
            .keep_present(unknown, &[(ReservationCode::new(unknown), holder)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(w.sales.rebuilds_in_progress(), 0);
}

// ---- the client address --------------------------------------------------------------------

#[tokio::test]
async fn a_forged_forwarding_header_from_an_untrusted_peer_changes_nothing() {
    // No trusted proxy: the headers are the client's own words.
    let app = TestApp::spawn_with(|s| s.rate_join_per_min = 2).await;
    let sale = app.world.sale(50, 60).await.sale_id();
    for i in 0..2 {
        let c = client_at(&format!("192.0.2.{i}"));
        assert!(api_join(&app, &c, sale).await.status().is_success());
    }
    let c = client_at("192.0.2.77");
    assert_eq!(api_join(&app, &c, sale).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let forwarded = app
        .client()
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .header("forwarded", "for=192.0.2.78")
        .json(&json!({ "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn behind_a_trusted_proxy_two_clients_are_limited_apart() {
    let app = behind_a_proxy(|s| s.rate_join_per_min = 2).await;
    let sale = app.world.sale(50, 60).await.sale_id();
    // What the client wrote first is forged; the proxy appended the address it saw.
    let a = client_at("6.6.6.6, 192.0.2.1");
    for _ in 0..2 {
        assert!(api_join(&app, &a, sale).await.status().is_success());
    }
    assert_eq!(api_join(&app, &a, sale).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // Forging another first hop does not make a new client.
    let a_again = client_at("7.7.7.7, 192.0.2.1");
    assert_eq!(
        api_join(&app, &a_again, sale).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let b = client_at("192.0.2.2");
    assert_eq!(api_join(&app, &b, sale).await.status(), StatusCode::CREATED);
    // The standard header works the same way.
    let c = app.client();
    let resp = c
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .header("forwarded", r#"for="[2001:db8::3]:4711";proto=https"#)
        .json(&json!({ "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

// ---- bounded anonymous state ---------------------------------------------------------------

#[tokio::test]
async fn joins_count_an_ipv6_subscriber_by_its_56() {
    let app = behind_a_proxy(|s| s.rate_join_per_min = 2).await;
    let sale = app.world.sale(50, 60).await.sale_id();
    // Two /64s of one /56: one subscriber.
    assert!(
        api_join(&app, &client_at("2001:db8:0:100::1"), sale)
            .await
            .status()
            .is_success()
    );
    assert!(
        api_join(&app, &client_at("2001:db8:0:1ff::1"), sale)
            .await
            .status()
            .is_success()
    );
    let fresh_64 = client_at("2001:db8:0:1ab::9");
    assert_eq!(
        api_join(&app, &fresh_64, sale).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The next /56 is someone else.
    assert_eq!(
        api_join(&app, &client_at("2001:db8:0:200::1"), sale).await.status(),
        StatusCode::CREATED
    );
}

/// The session id the response set, if any.
fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.cookies()
        .find(|c| c.name() == "bo_session")
        .map(|c| c.value().to_string())
}

#[tokio::test]
async fn a_refused_join_leaves_only_a_short_lived_session() {
    let app = TestApp::spawn().await;
    let later = app
        .world
        .sale_with(5, 60, 0, chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .sale_id();
    let c = app.client();
    // Looking stores nothing.
    for path in ["/".to_string(), format!("/sales/{later}")] {
        let resp = c.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(session_cookie(&resp), None, "{path} started a session");
    }
    let refused = c
        .post(app.url(&format!("/sales/{later}")))
        .form(&[("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let id = session_cookie(&refused).expect("the page join stored a session");
    let ttl: i64 = app.world.redis.ttl(id.as_str()).await.unwrap();
    assert!((1..=30 * 60).contains(&ttl), "a session holding nothing lives {ttl} s");

    // Once it holds a reservation, it lives a day, so its buyer finds it again.
    let open = app.world.sale(5, 60).await.sale_id();
    let joined = c
        .post(app.url(&format!("/sales/{open}")))
        .form(&[("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), StatusCode::SEE_OTHER);
    let ttl: i64 = app.world.redis.ttl(id.as_str()).await.unwrap();
    assert!(ttl > 23 * 3600, "a session with a reservation lives {ttl} s");
}

#[tokio::test]
async fn the_default_limits_let_a_buyer_walk_the_whole_path_with_reloads() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(5, 60).await.sale_id();
    let c = app.client();
    let ok = |resp: reqwest::Response, want: StatusCode| {
        assert_eq!(resp.status(), want, "{}", resp.url());
    };
    for _ in 0..10 {
        ok(c.get(app.url("/")).send().await.unwrap(), StatusCode::OK);
        ok(
            c.get(app.url(&format!("/sales/{sale}"))).send().await.unwrap(),
            StatusCode::OK,
        );
        ok(
            c.get(app.url(&format!("/api/v1/sales/{sale}"))).send().await.unwrap(),
            StatusCode::OK,
        );
    }
    let joined = c
        .post(app.url(&format!("/sales/{sale}")))
        .form(&[("quantity", "2")])
        .send()
        .await
        .unwrap();
    let to = joined.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/checkout/"), "{to}");
    for _ in 0..10 {
        ok(c.get(app.url(&to)).send().await.unwrap(), StatusCode::OK);
    }
    for _ in 0..5 {
        let invalid = c.post(app.url(&to)).form(&[("name", "Ada")]).send().await.unwrap();
        ok(invalid, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let confirmed = c.post(app.url(&to)).form(&buyer_form()).send().await.unwrap();
    ok(confirmed, StatusCode::SEE_OTHER);
    let code = to.trim_start_matches("/checkout/");
    for _ in 0..10 {
        ok(
            c.get(app.url(&format!("/orders/{code}"))).send().await.unwrap(),
            StatusCode::OK,
        );
    }
}
