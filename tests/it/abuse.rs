//! Abuse: rate limits on join and poll, one live reservation per session and sale however a
//! browser tries, codes and cookies that mean nothing to another session, and the security
//! headers on every response.

use boxoffice::sale::{ReservationCode, SaleId};
use boxoffice::web::security::{CSP, DOCS_CSP};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

const BUYER: [(&str, &str); 4] = [
    ("name", "Ada Lovelace"),
    ("email", "ada@example.com"),
    ("age", "36"),
    ("gender", "female"),
];

fn buyer_json() -> Value {
    json!({"name": "Ada Lovelace", "email": "ada@example.com", "age": 36, "gender": "female"})
}

/// The code in a redirect such as `/checkout/<code>` or `/wait/<code>?start=1`.
fn code_in(location: &str) -> ReservationCode {
    let tail = location.rsplit('/').next().unwrap();
    tail.split('?').next().unwrap().parse().expect("a reservation code")
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

async fn page_join(app: &TestApp, c: &reqwest::Client, sale: SaleId, quantity: u8) -> reqwest::Response {
    c.post(app.url(&format!("/sales/{sale}")))
        .form(&[("quantity", quantity.to_string())])
        .send()
        .await
        .unwrap()
}

async fn api_join(app: &TestApp, c: &reqwest::Client, sale: SaleId, quantity: u8) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&json!({ "quantity": quantity }))
        .send()
        .await
        .unwrap()
}

/// The code a join answered with, from either kind of answer.
async fn code_of(resp: reqwest::Response) -> ReservationCode {
    if resp.status() == StatusCode::SEE_OTHER {
        return code_in(&location(&resp));
    }
    assert!(resp.status().is_success(), "{}", resp.status());
    let body: Value = resp.json().await.unwrap();
    body["code"].as_str().unwrap().parse().unwrap()
}

// ---- rate limits ---------------------------------------------------------------------------

#[tokio::test]
async fn joins_beyond_the_limit_get_429_as_a_page_and_as_json() {
    let app = TestApp::spawn_with(|s| s.rate_join_per_min = 2).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let c = app.client();
    assert_eq!(page_join(&app, &c, sale, 1).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(api_join(&app, &c, sale, 1).await.status(), StatusCode::OK);

    let page = page_join(&app, &c, sale, 1).await;
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = page.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = page.text().await.unwrap();
    assert!(body.contains("Too many requests") && body.contains("<html"), "{body}");

    let api = api_join(&app, &c, sale, 1).await;
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(api.headers().contains_key("retry-after"));
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("seconds"));
}

#[tokio::test]
async fn polls_beyond_the_limit_get_429_fragments_that_keep_polling_and_json() {
    let app = TestApp::spawn_with(|s| s.rate_poll_per_min = 3).await;
    // One ticket, taken: the second buyer waits.
    let sale = app.world.sale(1, 60).await.sale_id();
    let first = app.client();
    assert_eq!(api_join(&app, &first, sale, 1).await.status(), StatusCode::CREATED);
    let c = app.client();
    let code = code_of(page_join(&app, &c, sale, 1).await).await;

    let poll = |path: String| {
        let c = c.clone();
        let url = app.url(&path);
        async move { c.get(url).header("HX-Request", "true").send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(
            poll(format!("/wait/{code}/poll?start=1")).await.status(),
            StatusCode::OK
        );
    }
    let limited = poll(format!("/wait/{code}/poll?start=1")).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = limited.headers()["retry-after"].to_str().unwrap().to_string();
    let body = limited.text().await.unwrap();
    assert!(!body.contains("<html"), "a fragment, not a page: {body}");
    assert!(body.contains("Too many requests"), "{body}");
    // It polls again by itself once the wait is over.
    assert!(
        body.contains(&format!("hx-get=\"/wait/{code}/poll?start=1\"")),
        "{body}"
    );
    assert!(
        body.contains(&format!("load delay:{}ms", wait.parse::<u64>().unwrap() * 1000)),
        "{body}"
    );

    // Reloading the waiting room (how a browser without JavaScript polls) counts too: the
    // page says so and reloads itself after the wait, the place in line kept.
    let page = c.get(app.url(&format!("/wait/{code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = page.headers()["retry-after"].to_str().unwrap().to_string();
    let body = page.text().await.unwrap();
    assert!(body.contains("Too many requests") && body.contains("<html"), "{body}");
    assert!(
        body.contains(&format!(r#"http-equiv="refresh" content="{wait}""#)),
        "{body}"
    );

    // The API poll shares the client's allowance.
    let api = c
        .get(app.url(&format!("/api/v1/reservations/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(api.headers().contains_key("retry-after"));
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
}

#[tokio::test]
async fn the_default_limits_let_a_real_buyer_through() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(1, 60).await.sale_id();
    assert_eq!(
        api_join(&app, &app.client(), sale, 1).await.status(),
        StatusCode::CREATED
    );
    let c = app.client();
    let code = code_of(page_join(&app, &c, sale, 1).await).await;
    // A minute's worth of polls of a buyer (every 2 s), and a few reloads on top, at once.
    for _ in 0..40 {
        let r = c.get(app.url(&format!("/wait/{code}/poll"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    for _ in 0..10 {
        assert_eq!(page_join(&app, &c, sale, 1).await.status(), StatusCode::SEE_OTHER);
    }
}

// ---- one live reservation per session and sale ---------------------------------------------

async fn held(app: &TestApp, sale: SaleId) -> i64 {
    app.world.sales.figures(sale).await.unwrap().held
}

async fn waiting(app: &TestApp, sale: SaleId) -> i64 {
    app.world.sales.figures(sale).await.unwrap().waiting
}

#[tokio::test]
async fn reloads_and_repeated_joins_hold_one_reservation() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(50, 60).await.sale_id();
    let c = app.client();
    let first = code_of(page_join(&app, &c, sale, 6).await).await;
    for quantity in [6, 1, 3, 6, 2] {
        assert_eq!(code_of(page_join(&app, &c, sale, quantity).await).await, first);
        assert_eq!(code_of(api_join(&app, &c, sale, quantity).await).await, first);
        // Reloading the event page offers the way back, not a second reservation.
        let page = c.get(app.url(&format!("/sales/{sale}"))).send().await.unwrap();
        assert!(page.text().await.unwrap().contains("You already have a reservation"));
    }
    assert_eq!(held(&app, sale).await, 6, "never more than the per-order maximum");
}

#[tokio::test]
async fn two_tabs_joining_at_once_share_one_reservation() {
    let app = TestApp::spawn().await;
    let other = app.world.sale(10, 60).await.sale_id();
    let sale = app.world.sale(50, 60).await.sale_id();
    let c = app.client();
    // The browser has its session already (from another event), as two tabs would.
    page_join(&app, &c, other, 1).await;
    let tabs = (0..12).map(|i| {
        let (app, c) = (&app, c.clone());
        async move {
            if i % 2 == 0 {
                code_of(page_join(app, &c, sale, 6).await).await
            } else {
                code_of(api_join(app, &c, sale, 6).await).await
            }
        }
    });
    let codes = join_all(tabs).await;
    assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
    assert_eq!(held(&app, sale).await, 6);
}

#[tokio::test]
async fn an_api_client_and_its_pages_share_one_reservation_in_a_busy_sale() {
    let app = TestApp::spawn().await;
    // Nothing free: every join queues, so each extra reservation would show in the queue.
    let sale = app.world.sale(6, 60).await.sale_id();
    api_join(&app, &app.client(), sale, 6).await;
    let c = app.client();
    let code = code_of(api_join(&app, &c, sale, 6).await).await;
    let joins = (0..10).map(|i| {
        let (app, c) = (&app, c.clone());
        async move {
            if i % 2 == 0 {
                code_of(page_join(app, &c, sale, 2).await).await
            } else {
                code_of(api_join(app, &c, sale, 3).await).await
            }
        }
    });
    assert!(join_all(joins).await.iter().all(|c| *c == code));
    assert_eq!(waiting(&app, sale).await, 1);

    // Once given up, the session may join again: still one live reservation.
    let gone = c
        .delete(app.url(&format!("/api/v1/reservations/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let again = code_of(page_join(&app, &c, sale, 2).await).await;
    assert_ne!(again, code);
    assert_eq!(code_of(api_join(&app, &c, sale, 2).await).await, again);
    assert_eq!(waiting(&app, sale).await, 1);
}

// ---- codes and cookies ---------------------------------------------------------------------

/// Every page and API route of a reservation, as another session would try it.
async fn every_route_is_404(app: &TestApp, c: &reqwest::Client, code: ReservationCode) {
    let tries = [
        ("GET", format!("/wait/{code}"), None),
        ("GET", format!("/wait/{code}/poll"), None),
        ("GET", format!("/checkout/{code}"), None),
        ("POST", format!("/checkout/{code}"), None),
        ("POST", format!("/reservations/{code}/release"), None),
        ("GET", format!("/orders/{code}"), None),
        ("GET", format!("/api/v1/reservations/{code}"), None),
        ("POST", format!("/api/v1/reservations/{code}/order"), Some(buyer_json())),
        ("DELETE", format!("/api/v1/reservations/{code}"), None),
    ];
    for (method, path, body) in tries {
        let mut req = c.request(method.parse().unwrap(), app.url(&path));
        req = match body {
            Some(b) => req.json(&b),
            None if method == "POST" => req.form(&BUYER),
            None => req,
        };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn another_sessions_code_is_404_on_every_route_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let (a, b) = (app.client(), app.client());
    let code = code_of(page_join(&app, &a, sale, 2).await).await;
    page_join(&app, &b, sale, 1).await; // B has a session and a reservation of its own

    every_route_is_404(&app, &b, code).await;
    // With no cookie at all, the same.
    every_route_is_404(&app, &app.client(), code).await;

    // A's hold is untouched and A can still buy.
    assert_eq!(held(&app, sale).await, 3);
    let done = a
        .post(app.url(&format!("/checkout/{code}")))
        .form(&BUYER)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&done), format!("/orders/{code}"));
    // Confirmed, the code still opens nothing for B.
    every_route_is_404(&app, &b, code).await;
    assert_eq!(
        a.get(app.url(&format!("/orders/{code}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.world.pg_sold(sale).await, 2);
}

/// The `bo_session` value a response sets, if any.
fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("bo_session="))
        .map(str::to_string)
}

#[tokio::test]
async fn a_tampered_session_cookie_gets_a_fresh_session() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let a = app.client();
    let resp = page_join(&app, &a, sale, 1).await;
    let set = session_cookie(&resp).expect("a session cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    let code = code_in(&location(&resp));
    let id = set
        .trim_start_matches("bo_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // One character changed, or made up altogether: neither opens A's reservation, and a join
    // with it starts a new session with a new id.
    let mut flipped = id.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    for forged in [String::from_utf8(flipped).unwrap(), "tampered".to_string()] {
        let plain = crate::support::http().build().unwrap();
        let cookie = format!("bo_session={forged}");
        for path in [format!("/checkout/{code}"), format!("/api/v1/reservations/{code}")] {
            let r = plain
                .get(app.url(&path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path} with {forged}");
        }
        let joined = plain
            .post(app.url(&format!("/sales/{sale}")))
            .header("cookie", &cookie)
            .form(&[("quantity", "1")])
            .send()
            .await
            .unwrap();
        let fresh = session_cookie(&joined).expect("a fresh session cookie");
        assert!(!fresh.contains(&forged) && !fresh.contains(&id), "{fresh}");
        assert!(fresh.contains("HttpOnly") && fresh.contains("SameSite=Lax"), "{fresh}");
        assert_ne!(code_in(&location(&joined)), code);
    }
}

// ---- security headers ----------------------------------------------------------------------

fn assert_security_headers(resp: &reqwest::Response, csp: &str) {
    let h = resp.headers();
    let url = resp.url().path();
    assert_eq!(h["content-security-policy"], csp, "{url}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
    assert_eq!(h["referrer-policy"], "same-origin", "{url}");
    assert_eq!(h["x-frame-options"], "DENY", "{url}");
}

/// No inline script, style or event handler: the CSP would block them.
fn assert_nothing_inline(body: &str, path: &str) {
    for (i, _) in body.match_indices("<script") {
        assert!(body[i..].starts_with("<script src="), "{path}: an inline script");
    }
    assert!(
        !body.contains("<style") && !body.contains(" style="),
        "{path}: an inline style"
    );
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onchange=",
        " oninput=",
        "javascript:",
        " hx-on",
    ] {
        assert!(!body.contains(handler), "{path}: {handler}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(1, 60).await.sale_id();
    let c = app.client();
    let code = code_of(page_join(&app, &c, sale, 1).await).await;
    let waiter = app.client();
    let waiting = code_of(page_join(&app, &waiter, sale, 1).await).await;

    let pages = [
        "/".to_string(),
        format!("/sales/{sale}"),
        format!("/checkout/{code}"),
        "/admin/sign-in".to_string(),
        "/admin/sign-up".to_string(),
        "/no/such/page".to_string(),
        format!("/sales/{}", SaleId::new()),
    ];
    for path in pages {
        let resp = c.get(app.url(&path)).send().await.unwrap();
        assert_security_headers(&resp, CSP);
        let body = resp.text().await.unwrap();
        assert_nothing_inline(&body, &path);
        if body.contains("<html") {
            assert!(
                body.contains(r#"name="htmx-config""#),
                "{path}: HTMX would inject its styles"
            );
        }
    }
    for path in [format!("/wait/{waiting}"), format!("/wait/{waiting}/poll")] {
        let resp = waiter.get(app.url(&path)).send().await.unwrap();
        assert_security_headers(&resp, CSP);
        assert_nothing_inline(&resp.text().await.unwrap(), &path);
    }
    let others = [
        format!("/api/v1/sales/{sale}"),
        "/api/v1/reservations/nonsense".to_string(),
        "/api/openapi.json".to_string(),
        "/healthz".to_string(),
        format!("/assets/{}/app.js", boxoffice::web::assets::VERSION),
    ];
    for path in others {
        assert_security_headers(&c.get(app.url(&path)).send().await.unwrap(), CSP);
    }
    // The Swagger UI ships its script and styles inline: its own policy, and only there.
    let docs = c.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert_security_headers(&docs, DOCS_CSP);
}

#[tokio::test]
async fn fields_the_api_sends_as_null_are_nullable_in_its_document() {
    let app = TestApp::spawn().await;
    let doc = crate::errors::openapi_document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let reservation = schemas
        .as_object()
        .unwrap()
        .iter()
        .find(|(name, _)| name.contains("ReservationView"))
        .map(|(_, s)| s)
        .expect("the reservation schema");
    assert_eq!(reservation["properties"]["expires_at"]["nullable"], true);
    assert_eq!(
        schemas["AdminSaleFigures"]["properties"]["admitted_per_minute"]["nullable"],
        true
    );
}
