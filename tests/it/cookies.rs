//! The session cookie's name and attributes, with `BOXOFFICE_COOKIE_SECURE` off and on: the
//! buyer's pages, the buyer API and the portal set the same cookie, and only its own name
//! counts.

use fred::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

/// Every `Set-Cookie` of a response.
fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The session cookies an answer set, checked against what `secure` asks for; the
/// `name=value` pair of the last one.
fn checked_session_cookie(resp: &reqwest::Response, secure: bool, what: &str) -> String {
    let cookies = set_cookies(resp);
    let session: Vec<&String> = cookies.iter().filter(|c| c.contains("bo_session=")).collect();
    assert!(!session.is_empty(), "{what}: a session cookie, got {cookies:?}");
    for cookie in &session {
        let attrs: Vec<String> = cookie.split(';').map(|a| a.trim().to_ascii_lowercase()).collect();
        let has = |a: &str| attrs.iter().any(|x| x == a);
        assert!(
            has("httponly") && has("samesite=lax") && has("path=/"),
            "{what}: {cookie}"
        );
        assert!(
            !attrs.iter().any(|a| a.starts_with("domain")),
            "{what}: no Domain: {cookie}"
        );
        if secure {
            assert!(cookie.starts_with("__Host-bo_session="), "{what}: {cookie}");
            assert!(has("secure"), "{what}: {cookie}");
        } else {
            assert!(cookie.starts_with("bo_session="), "{what}: {cookie}");
            assert!(!has("secure"), "{what}: {cookie}");
        }
    }
    session.last().unwrap().split(';').next().unwrap().to_string()
}

async fn cookies_follow_the_setting(secure: bool) {
    let app = TestApp::spawn_with(|s| s.cookie_secure = secure).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    // no cookie jar: a jar would not send a Secure cookie back over plain HTTP
    let http = crate::support::http().build().unwrap();

    let resp = http.get(app.url("/admin/sign-in")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    checked_session_cookie(&resp, secure, "portal form");

    let resp = http
        .post(app.url(&format!("/sales/{sale}")))
        .form(&[("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    checked_session_cookie(&resp, secure, "page join");

    let resp = http
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let cookie = checked_session_cookie(&resp, secure, "API join");
    let code = resp.json::<serde_json::Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();

    // the API's session is the cookie alone: nothing of it is in the store
    let id = cookie.split_once('=').unwrap().1.to_string();
    let stored: i64 = app.world.redis.exists(&id).await.unwrap();
    assert_eq!(stored, 0, "an API join stores no session");

    // the session is found under its own name, and under the other name it is nobody's
    let poll = |cookie: String| {
        http.get(app.url(&format!("/api/v1/reservations/{code}")))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(poll(cookie.clone()).await.unwrap().status(), StatusCode::OK);
    let value = cookie.split_once('=').unwrap().1;
    let other = if secure { "bo_session" } else { "__Host-bo_session" };
    assert_eq!(
        poll(format!("{other}={value}")).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "{other} is not the session cookie here"
    );
    let page = http
        .get(app.url(&format!("/wait/{code}")))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert!(
        page.status() == StatusCode::OK || page.status() == StatusCode::SEE_OTHER,
        "the pages find the session too: {}",
        page.status()
    );
    // a page join of the same session finds the same reservation, keeps the cookie's id and
    // only now stores the session (it remembers the reservation for the event's page)
    let resp = http
        .post(app.url(&format!("/sales/{sale}")))
        .header("cookie", cookie.clone())
        .form(&[("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains(&code), "{location} is the API's reservation");
    for set in set_cookies(&resp) {
        assert!(!set.contains("bo_session=") || set.contains(&id), "the id stays: {set}");
    }
    let stored: i64 = app.world.redis.exists(&id).await.unwrap();
    assert_eq!(stored, 1, "stored once a page keeps something in it");
}

#[tokio::test]
async fn session_cookies_are_plain_without_the_secure_setting() {
    cookies_follow_the_setting(false).await;
}

#[tokio::test]
async fn session_cookies_are_host_prefixed_and_secure_with_the_setting() {
    cookies_follow_the_setting(true).await;
}
