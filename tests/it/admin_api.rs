//! Ownership across pages and API, bearer tokens, and the organizer API in the OpenAPI
//! document.

use boxoffice::sale::{Owner, SaleId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_support::{AdminApp, event_form, event_json, field_error, location, pairs};

#[tokio::test]
async fn an_organizer_cannot_see_or_change_another_organizers_event_sale_dashboard_or_orders() {
    let app = AdminApp::spawn().await;
    let owner = app.organizer().await;
    let other = app.organizer().await;
    let event = owner.browser.create_event(&pairs(&event_form(&[]))).await;
    let sale = owner.browser.create_sale(event, &[]).await;
    let buyer = crate::support::ada();
    let o = Owner::random();
    let r = app
        .state
        .sales
        .join(SaleId(sale), &o, app.state.sales.quantity(1).unwrap())
        .await
        .unwrap();
    let order = app.state.sales.confirm(&r.code, &o, &buyer).await.unwrap();

    // Pages: everything of the owner's is a 404 for the other, exactly like a missing id.
    let b = &other.browser;
    for path in [
        format!("/admin/events/{event}"),
        format!("/admin/sales/{sale}"),
        format!("/admin/sales/{sale}/figures"),
        format!("/admin/sales/{sale}/orders.csv"),
    ] {
        let (status, body) = b.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !body.contains(&order.number) && !body.contains("ada@example.com"),
            "{path}"
        );
    }
    let token = b.csrf("/admin").await;
    let edit = b
        .post(
            &format!("/admin/events/{event}"),
            &[("csrf", &token), ("title", "Taken"), ("description", "Mine now")],
        )
        .await;
    assert_eq!(edit.status(), StatusCode::NOT_FOUND);
    let open = b
        .post(&format!("/admin/events/{event}/sales"), &[("csrf", &token)])
        .await;
    assert_eq!(open.status(), StatusCode::NOT_FOUND);
    let close = b
        .post(
            &format!("/admin/sales/{sale}/state"),
            &[("csrf", &token), ("state", "closed")],
        )
        .await;
    assert_eq!(close.status(), StatusCode::NOT_FOUND);
    assert!(
        !b.page("/admin").await.1.contains(&event.to_string()),
        "not in the other's list"
    );

    // API: the same.
    let api = &other.api;
    let not_found = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"], "not_found");
    };
    not_found(api.get(&format!("/events/{event}")).await);
    not_found(api.get(&format!("/events/{event}/sales")).await);
    let (status, mine) = api.get("/events").await;
    assert_eq!(
        (status, mine.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "not in the other's list"
    );
    not_found(api.patch(&format!("/events/{event}"), json!({"title": "Taken"})).await);
    not_found(api.post(&format!("/events/{event}/sales"), json!({})).await);
    not_found(api.get(&format!("/sales/{sale}")).await);
    not_found(api.patch(&format!("/sales/{sale}"), json!({"state": "closed"})).await);
    not_found(api.get(&format!("/sales/{sale}/orders")).await);

    // Nothing changed.
    let (_, e) = owner.api.get(&format!("/events/{event}")).await;
    assert_eq!(e["title"], "The Few Tickets Tour");
    let (_, listed) = owner.api.get("/events").await;
    assert_eq!(listed[0]["id"].as_str(), Some(event.to_string().as_str()));
    let (_, sales) = owner.api.get(&format!("/events/{event}/sales")).await;
    assert_eq!(sales[0]["id"].as_str(), Some(sale.to_string().as_str()));
    let (_, s) = owner.api.get(&format!("/sales/{sale}")).await;
    assert_eq!((s["state"].as_str(), s["sold"].as_i64()), (Some("open"), Some(1)));
    assert_eq!(app.sale_count().await, 1);
    // and ids that are not ids are 404s too, never 500s
    assert_eq!(
        owner.browser.page("/admin/sales/not-a-uuid").await.0,
        StatusCode::NOT_FOUND
    );
    not_found(owner.api.get("/sales/not-a-uuid").await);
}

#[tokio::test]
async fn the_api_wants_a_valid_bearer_token_and_answers_in_json() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/admin/events", app.base);
    for req in [
        http.post(&url).json(&json!({})),
        http.post(&url).bearer_auth("bo_not_a_token").json(&json!({})),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
    }
    let resp = http
        .post(&url)
        .bearer_auth(&o.api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_token_made_in_the_portal_is_shown_once_works_and_can_be_revoked() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let resp = o
        .browser
        .submit("/admin/tokens", "/admin/tokens", &[("label", "deploy script")])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    let start = body.find("<pre class=\"token\">").unwrap() + "<pre class=\"token\">".len();
    let token = body[start..].split('<').next().unwrap().to_string();
    assert!(token.starts_with("bo_") && token.len() >= 3 + 32, "{token}");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select token_sha256 from api_tokens")
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes()).to_vec();
    assert_eq!(stored.len(), 2, "the test's own token and this one");
    assert!(stored.contains(&digest), "only the hash is stored");
    let list = o.browser.page("/admin/tokens").await.1;
    assert!(list.contains("deploy script") && !list.contains(&token), "shown once");

    let call = || {
        reqwest::Client::new()
            .post(format!("{}/api/v1/admin/events", app.base))
            .bearer_auth(&token)
            .json(&crate::admin_support::event_json(json!({})))
            .send()
    };
    assert_eq!(call().await.unwrap().status(), StatusCode::CREATED);

    let at = list.find("deploy script").unwrap();
    let action = list[at..].split("action=\"").nth(1).unwrap().split('"').next().unwrap();
    let resp = o.browser.submit("/admin/tokens", action, &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin/tokens");
    assert_eq!(call().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_organizer_api_is_in_the_openapi_document() {
    let app = AdminApp::spawn().await;
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/admin/events",
        "/admin/events/{event}",
        "/admin/events/{event}/sales",
        "/admin/sales/{sale}",
        "/admin/sales/{sale}/orders",
        "/admin/sales/{sale}/check-ins",
    ] {
        assert!(paths.contains_key(path), "{path} in {:?}", paths.keys());
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.values().any(|s| s["scheme"] == "bearer"), "{schemes:?}");
}

#[tokio::test]
async fn one_place_per_verified_email_is_off_by_default_and_needs_mail_to_be_turned_on() {
    // Without mail: refused on the form and through the API, and nothing is made.
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let (status, event) = o.api.post("/events", event_json(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    let event = event["id"].as_str().unwrap().to_string();
    let sales = format!("/events/{event}/sales");
    let (status, body) = o.api.post(&sales, json!({ "one_place_per_email": true })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["one_place_per_email"]
            .as_str()
            .unwrap()
            .contains("no mail"),
        "{body}"
    );
    let page = format!("/admin/events/{event}");
    let refused = o
        .browser
        .submit(&page, &format!("{page}/sales"), &[("one_place_per_email", "on")])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = refused.text().await.unwrap();
    assert!(field_error(&body, "one_place_per_email").is_some(), "{body}");
    assert_eq!(app.sale_count().await, 0);
    let (status, sale) = o.api.post(&sales, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["one_place_per_email"], false, "off by default");

    // With mail: on, by the form and the API, and read back.
    let smtp = crate::smtp_sink::SmtpSink::start();
    let url = smtp.url();
    let app = AdminApp::spawn_with(move |s| s.smtp_url = Some(boxoffice::config::Secret::new(url))).await;
    let o = app.organizer().await;
    let (_, event) = o.api.post("/events", event_json(json!({}))).await;
    let event = event["id"].as_str().unwrap().to_string();
    let (status, sale) = o
        .api
        .post(
            &format!("/events/{event}/sales"),
            json!({ "one_place_per_email": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["one_place_per_email"], true);
    let (_, figures) = o.api.get(&format!("/sales/{}", sale["id"].as_str().unwrap())).await;
    assert_eq!(figures["sale"]["one_place_per_email"], true, "{figures}");
    let by_form = o
        .browser
        .create_sale(event.parse().unwrap(), &[("one_place_per_email", "on")])
        .await;
    let record = boxoffice::db::sales::find(&app.state.db, SaleId(by_form))
        .await
        .unwrap()
        .unwrap();
    assert!(record.one_place_per_email);
}
