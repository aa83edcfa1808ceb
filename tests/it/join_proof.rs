//! The proof of work on join at a busy sale, over HTTP: required when the sale is busy, checked
//! for its sale and session, good for one join only, even when it is sent many times at once.

use boxoffice::sale::SaleId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

/// An app whose sales ask every join for a proof (one join a minute is "busy"), with tiny
/// challenges so that a debug build solves them at once.
async fn busy_shop() -> TestApp {
    TestApp::spawn_with(|s| {
        s.pow_joins_per_min = 1;
        s.pow_min_counter = 20;
        s.pow_max_counter = 40;
    })
    .await
}

async fn challenge(app: &TestApp, c: &reqwest::Client, sale: SaleId) -> Value {
    let resp = c
        .get(app.url(&format!("/api/v1/sales/{sale}/challenge")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// A challenge for this client, solved as a client does.
async fn proof(app: &TestApp, c: &reqwest::Client, sale: SaleId) -> String {
    let answer = challenge(app, c, sale).await;
    assert_eq!(answer["required"], true, "{answer}");
    let challenge: altcha::Challenge = serde_json::from_value(answer["challenge"].clone()).unwrap();
    boxoffice::pow::solve(&challenge).unwrap()
}

async fn join(app: &TestApp, c: &reqwest::Client, sale: SaleId, proof: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({ "quantity": 1 });
    if let Some(p) = proof {
        body["proof"] = p.into();
    }
    let resp = c
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_busy_sale_asks_for_a_proof_and_takes_each_one_once_for_its_sale_and_session() {
    let app = busy_shop().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let other_sale = app.world.sale(10, 60).await.sale_id();
    let buyer = app.client();

    let (s, body) = join(&app, &buyer, sale, None).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::PRECONDITION_REQUIRED, Some("proof_required"))
    );
    let figures = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((figures.waiting, figures.held), (0, 0), "a refused join makes nothing");

    let mine = proof(&app, &buyer, sale).await;
    let (s, body) = join(&app, &buyer, other_sale, Some(&mine)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("proof_invalid")),
        "another sale"
    );
    let stranger = app.client();
    let _ = challenge(&app, &stranger, sale).await; // a session of its own
    let (s, body) = join(&app, &stranger, sale, Some(&mine)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("proof_invalid")),
        "another session"
    );
    let (s, body) = join(&app, &buyer, sale, Some("garbage")).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("proof_malformed"))
    );

    let (s, body) = join(&app, &buyer, sale, Some(&mine)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = join(&app, &buyer, sale, Some(&mine)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("proof_reused"))
    );
}

#[tokio::test]
async fn one_proof_sent_many_times_at_once_passes_once() {
    let app = busy_shop().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let buyer = app.client();
    // One join makes the sale busy.
    let (s, _) = join(&app, &app.client(), sale, None).await;
    assert_eq!(s, StatusCode::PRECONDITION_REQUIRED);
    let mine = proof(&app, &buyer, sale).await;
    let answers = futures::future::join_all((0..12).map(|_| join(&app, &buyer, sale, Some(&mine)))).await;
    let passed = answers.iter().filter(|(s, _)| s.is_success()).count();
    let reused = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"] == "proof_reused")
        .count();
    assert_eq!((passed, reused), (1, 11), "{answers:?}");
}

#[tokio::test]
async fn a_quiet_sale_or_shop_asks_for_no_proof() {
    let app = TestApp::spawn_with(|s| s.pow_joins_per_min = 1000).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let buyer = app.client();
    assert_eq!(challenge(&app, &buyer, sale).await, json!({ "required": false }));
    assert_eq!(join(&app, &buyer, sale, None).await.0, StatusCode::CREATED);
    let page = app
        .client()
        .get(app.url(&format!("/sales/{sale}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("pow.js"),
        "the solver is on the page of a shop that may ask for a proof"
    );

    let off = TestApp::spawn().await;
    let sale = off.world.sale(10, 60).await.sale_id();
    assert_eq!(challenge(&off, &buyer, sale).await, json!({ "required": false }));
    let page = off
        .client()
        .get(off.url(&format!("/sales/{sale}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("data-challenge"),
        "no solver on the page when the shop has no proof of work"
    );
}

#[tokio::test]
async fn an_unknown_sale_has_no_challenge() {
    let app = busy_shop().await;
    let resp = app
        .client()
        .get(app.url(&format!("/api/v1/sales/{}/challenge", SaleId::new())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_event_page_form_asks_for_a_proof_and_joins_with_one() {
    let app = busy_shop().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let browser = app.client();
    let form = |proof: &str| {
        browser
            .post(app.url(&format!("/sales/{sale}")))
            .form(&[("quantity", "1"), ("proof", proof)])
    };
    let refused = form("").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::PRECONDITION_REQUIRED);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("This sale is busy") && page.contains("data-challenge"),
        "{page}"
    );

    // What pow.js does: ask for a challenge with the page's cookies, solve it, send the form.
    let mine = proof(&app, &browser, sale).await;
    let joined = form(&mine).send().await.unwrap();
    assert_eq!(
        joined.status(),
        StatusCode::SEE_OTHER,
        "{}",
        joined.text().await.unwrap()
    );
}
