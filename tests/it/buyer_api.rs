//! The buyer JSON API over HTTP: the contract of DESIGN.md, the same session as the pages, and
//! a clear JSON error for every bad input.

use boxoffice::sale::{ReservationCode, SaleId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let resp = req.send().await.expect("the app answers");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {status}: {text}"))
    };
    (status, body, headers)
}

async fn join(app: &TestApp, c: &reqwest::Client, sale: SaleId, body: Value) -> (StatusCode, Value) {
    let (s, b, _) = call(
        c.post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
            .json(&body),
    )
    .await;
    (s, b)
}

fn good_buyer() -> Value {
    json!({"name": "Grace Hopper", "email": "grace@example.com", "age": 45, "gender": "female"})
}

#[tokio::test]
async fn join_poll_confirm_with_a_cookie_jar() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let c = app.client();

    let (s, info, _) = call(c.get(app.url(&format!("/api/v1/sales/{sale}")))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (info["capacity"].as_i64(), info["price"].as_i64()),
        (Some(10), Some(2500))
    );
    assert_eq!(info["state"], "open");

    let (s, first, headers) = call(
        c.post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
            .json(&json!({"quantity": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let cookie = headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.starts_with("bo_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert_eq!(first["state"], "admitted");
    assert_eq!(first["poll_after_ms"], 5000);
    assert!(first["expires_at"].is_string());
    let code = first["code"].as_str().unwrap().to_string();

    let (s, again) = join(&app, &c, sale, json!({"quantity": 3})).await;
    assert_eq!(s, StatusCode::OK, "joining again returns the same reservation");
    assert_eq!(
        (again["code"].as_str(), again["quantity"].as_i64()),
        (Some(code.as_str()), Some(2))
    );

    let (s, polled, _) = call(c.get(app.url(&format!("/api/v1/reservations/{code}")))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(polled["state"], "admitted");

    let order_url = app.url(&format!("/api/v1/reservations/{code}/order"));
    let (s, order, _) = call(c.post(&order_url).json(&good_buyer())).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let number = order["order"]["number"].as_str().unwrap().to_string();
    assert_eq!(order["order"]["total"], 5000);
    assert_eq!(order["order"]["unit_price"], 2500);
    assert_eq!(order["order"]["currency"], "EUR");
    let (s, repeat, _) = call(c.post(&order_url).json(&good_buyer())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(repeat["order"]["number"].as_str(), Some(number.as_str()));
    assert_eq!(app.world.pg_sold(sale).await, 2);

    // The pages of the same browser see the order the API made.
    let page = c.get(app.url(&format!("/orders/{code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(&number));
    let (_, polled, _) = call(c.get(app.url(&format!("/api/v1/reservations/{code}")))).await;
    assert_eq!(
        (polled["state"].as_str(), polled["poll_after_ms"].as_i64()),
        (Some("confirmed"), Some(0))
    );
}

#[tokio::test]
async fn a_waiting_client_gets_its_position_and_only_it_may_poll() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(1, 60).await.sale_id();
    let (a, b) = (app.client(), app.client());
    assert_eq!(
        join(&app, &a, sale, json!({"quantity": 1})).await.0,
        StatusCode::CREATED
    );
    let (s, w) = join(&app, &b, sale, json!({"quantity": 1})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (w["state"].as_str(), w["position"].as_i64(), w["waiting"].as_i64()),
        (Some("waiting"), Some(1), Some(1))
    );
    assert_eq!(w["poll_after_ms"], 2000);
    let url = app.url(&format!("/api/v1/reservations/{}", w["code"].as_str().unwrap()));

    for stranger in [app.client(), a.clone()] {
        let (s, e, _) = call(stranger.get(&url)).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(e["error"], "unknown_reservation");
        assert_eq!(call(stranger.delete(&url)).await.0, StatusCode::NOT_FOUND);
    }
    let (s, e, _) = call(b.post(format!("{url}/order")).json(&good_buyer())).await;
    assert_eq!(
        (s, e["error"].as_str(), e["state"].as_str()),
        (StatusCode::CONFLICT, Some("not_admitted"), Some("waiting"))
    );

    assert_eq!(call(b.delete(&url)).await.0, StatusCode::NO_CONTENT);
    let (_, r, _) = call(b.get(&url)).await;
    assert_eq!(r["state"], "released");
    assert_eq!(app.world.sales.figures(sale).await.unwrap().waiting, 0);
}

/// A join without a session cookie makes the session, and the join skips looking for the new
/// owner's reservations: tested with new clients joining at once, each of which must get one
/// place of its own, in a line whose counts agree, and the same reservation when it joins
/// again with its cookie.
#[tokio::test]
async fn new_sessions_joining_at_once_get_one_place_each() {
    // Every client comes from one address: the per-address limit on joins is off.
    let app = TestApp::spawn_with(|s| s.rate_join_per_min = 0).await;
    let sale = app.world.sale(1, 60).await.sale_id();
    let holder = app.client();
    assert_eq!(
        join(&app, &holder, sale, json!({"quantity": 1})).await.0,
        StatusCode::CREATED
    );

    const NEW: usize = 40;
    let clients: Vec<reqwest::Client> = (0..NEW).map(|_| app.client()).collect();
    let joined = futures::future::join_all(clients.iter().map(|c| join(&app, c, sale, json!({"quantity": 1})))).await;
    let mut positions = Vec::new();
    let mut codes = std::collections::HashSet::new();
    for (s, r) in &joined {
        assert_eq!((*s, r["state"].as_str()), (StatusCode::CREATED, Some("waiting")), "{r}");
        positions.push(r["position"].as_u64().unwrap());
        codes.insert(r["code"].as_str().unwrap().to_string());
    }
    positions.sort_unstable();
    assert_eq!(
        positions,
        (1..=NEW as u64).collect::<Vec<_>>(),
        "one place each, none twice"
    );
    assert_eq!(codes.len(), NEW);
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((f.waiting, f.joined), (NEW as i64, NEW as i64 + 1));

    // Again, with the cookie each got: the same reservation, where the queue itself has it.
    let again = futures::future::join_all(clients.iter().map(|c| join(&app, c, sale, json!({"quantity": 1})))).await;
    for ((s, r), (_, first)) in again.iter().zip(&joined) {
        assert_eq!(*s, StatusCode::OK, "{r}");
        assert_eq!(
            (r["code"].as_str(), r["position"].as_u64()),
            (first["code"].as_str(), first["position"].as_u64())
        );
    }
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!(
        (f.waiting, f.joined),
        (NEW as i64, NEW as i64 + 1),
        "joining again adds nobody"
    );
}

#[tokio::test]
async fn pages_and_api_of_one_browser_share_the_reservation() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(5, 60).await.sale_id();
    let c = app.client();
    let page = c
        .post(app.url(&format!("/sales/{sale}")))
        .form(&[("quantity", "2")])
        .send()
        .await
        .unwrap();
    let to = page.headers()["location"].to_str().unwrap().to_string();
    let (s, r) = join(&app, &c, sale, json!({"quantity": 1})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(to.ends_with(r["code"].as_str().unwrap()));

    // And the other way round: an API client's cookie opens the pages' session.
    let d = app.client();
    let (_, r) = join(&app, &d, sale, json!({"quantity": 1})).await;
    let checkout = d
        .get(app.url(&format!("/checkout/{}", r["code"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), StatusCode::OK);
    let event = d.get(app.url(&format!("/sales/{sale}"))).send().await.unwrap();
    assert!(
        event.headers().get("set-cookie").is_none(),
        "the same session, not a new one"
    );
}

#[tokio::test]
async fn bad_input_gets_a_json_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(5, 60).await.sale_id();
    let c = app.client();
    let long = "x".repeat(10_000);
    for q in [
        json!(0),
        json!(7),
        json!(-1),
        json!("abc"),
        // A whole number, as the document declares: not its digits in a string.
        json!("2"),
        json!(2.5),
        json!(null),
        json!([1]),
        json!(long),
    ] {
        let (s, e) = join(&app, &c, sale, json!({ "quantity": q })).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_quantity")),
            "{q}"
        );
        assert!(e["message"].as_str().unwrap().contains("between 1 and 6"));
    }
    let (s, e) = join(&app, &c, sale, json!({})).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_quantity"))
    );
    let (s, e, _) = call(
        c.post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    for bad in [SaleId::new().to_string(), "nope".to_string()] {
        let (s, e, headers) = call(
            c.post(app.url(&format!("/api/v1/sales/{bad}/reservations")))
                .json(&json!({"quantity": 1})),
        )
        .await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_sale")),
            "{bad}"
        );
        assert!(!headers.contains_key("set-cookie"), "a refused join starts no session");
        let (s, _, _) = call(c.get(app.url(&format!("/api/v1/sales/{bad}")))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting, f.admitted), (0, 0, 0));

    // Forged and malformed codes.
    let (_, r) = join(&app, &c, sale, json!({"quantity": 1})).await;
    let code = r["code"].as_str().unwrap().to_string();
    for bad in [ReservationCode::new(sale).to_string(), "abc".into(), long.clone()] {
        let (s, e, _) = call(c.get(app.url(&format!("/api/v1/reservations/{bad}")))).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_reservation"))
        );
    }
    // Bad buyer details: every field named, nothing written.
    let order_url = app.url(&format!("/api/v1/reservations/{code}/order"));
    let cases = [
        (
            json!({"name": "", "email": "a@b.co", "age": 30, "gender": "male"}),
            "name",
        ),
        (
            json!({"name": long, "email": "a@b.co", "age": 30, "gender": "male"}),
            "name",
        ),
        (
            json!({"name": "A", "email": "no-at-sign", "age": 30, "gender": "male"}),
            "email",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "age": "x", "gender": "male"}),
            "age",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "age": -1, "gender": "male"}),
            "age",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "age": 131, "gender": "male"}),
            "age",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "age": 30, "gender": "robot"}),
            "gender",
        ),
        (json!({}), "email"),
    ];
    for (body, field) in cases {
        let (s, e, _) = call(c.post(&order_url).json(&body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(e["error"], "invalid_buyer");
        assert!(e["fields"][field].is_string(), "{field} in {e}");
    }
    assert_eq!(app.world.pg_sold(sale).await, 0);
    let (_, r, _) = call(c.get(app.url(&format!("/api/v1/reservations/{code}")))).await;
    assert_eq!(r["state"], "admitted");
}

#[tokio::test]
async fn the_openapi_document_describes_the_buyer_api() {
    let app = TestApp::spawn().await;
    let (s, doc, _) = call(app.client().get(app.url("/api/openapi.json"))).await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/sales/{sale}",
        "/sales/{sale}/reservations",
        "/reservations/{code}",
        "/reservations/{code}/order",
        "/reservations/{code}/tickets.pdf",
    ] {
        assert!(paths.contains_key(p), "{p} in {:?}", paths.keys());
    }
}

/// The API and the pages tell a buyer who gave up the same thing: they had two wordings.
#[tokio::test]
async fn the_api_and_the_pages_word_a_released_reservation_alike() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let c = app.client();
    let (s, joined) = join(&app, &c, sale, json!({"quantity": 1})).await;
    assert_eq!(s, StatusCode::CREATED, "{joined}");
    let url = app.url(&format!("/api/v1/reservations/{}", joined["code"].as_str().unwrap()));
    assert_eq!(call(c.delete(&url)).await.0, StatusCode::NO_CONTENT);
    let (s, refused, _) = call(c.post(format!("{url}/order")).json(&good_buyer())).await;
    assert_eq!(s, StatusCode::CONFLICT, "{refused}");
    let said = refused["message"].as_str().unwrap().to_string();
    assert_eq!(said, "You gave up your reservation.");
    let page = c.get(app.url("/?notice=released")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(&said), "the page's notice says otherwise than {said:?}");
}
