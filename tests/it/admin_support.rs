//! The running app for the portal's tests: started on port 0 against a fresh database, and a
//! browser-like client (cookies kept, redirects not followed) per organizer.

use std::net::IpAddr;

use boxoffice::config::{Settings, SignUp};
use boxoffice::db;
use boxoffice::startup::AppState;
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, http};

pub const PASSWORD: &str = "correct horse battery";

pub struct AdminApp {
    pub base: String,
    pub state: AppState,
}

impl AdminApp {
    /// The app with sign-up open to anyone, so that tests make organizers through the pages.
    pub async fn spawn() -> AdminApp {
        Self::spawn_with(|_| {}).await
    }

    /// The app with settings of the test's choosing, sign-up open unless it says otherwise.
    pub async fn spawn_with(change: impl FnOnce(&mut Settings)) -> AdminApp {
        let app = TestApp::spawn_with(|s| {
            s.signup = SignUp::Open;
            change(s);
        })
        .await;
        AdminApp {
            state: app.world.app_state(),
            base: app.base,
        }
    }

    pub fn browser(&self) -> Browser {
        self.browser_from("127.0.0.1".parse().unwrap())
    }

    /// A browser whose connections come from `address` (any of 127.0.0.0/8), so that tests
    /// can play clients at different addresses.
    pub fn browser_from(&self, address: IpAddr) -> Browser {
        Browser {
            base: self.base.clone(),
            http: http().cookie_store(true).local_address(address).build().unwrap(),
        }
    }

    /// A new organizer, signed up and then signed in through the pages.
    pub async fn organizer(&self) -> Organizer {
        let browser = self.browser();
        let email = format!("{}@example.com", Uuid::new_v4().simple());
        let resp = browser.sign_up(&email, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-up");
        let resp = browser.sign_in(&email, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in");
        let id = db::organizers::find_by_email(&self.state.db, &email)
            .await
            .unwrap()
            .unwrap()
            .id;
        let token = boxoffice::admin::issue_token(&self.state.db, boxoffice::admin::Organizer(id), "tests")
            .await
            .unwrap();
        Organizer {
            browser,
            email,
            api: Api {
                base: self.base.clone(),
                token,
                http: reqwest::Client::new(),
            },
        }
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(&self.state.db)
            .await
            .unwrap()
    }

    pub async fn sale_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from ticket_sales")
            .fetch_one(&self.state.db)
            .await
            .unwrap()
    }
}

pub struct Organizer {
    pub browser: Browser,
    pub email: String,
    pub api: Api,
}

impl Organizer {
    /// A sale of `capacity` tickets of a new event of `seats`, both made through the API.
    pub async fn api_sale(&self, seats: i64, capacity: i64) -> boxoffice::sale::SaleId {
        let (status, event) = self.api.post("/events", event_json(json!({ "capacity": seats }))).await;
        assert_eq!(status, StatusCode::CREATED, "{event}");
        let path = format!("/events/{}/sales", event["id"].as_str().unwrap());
        let (status, sale) = self.api.post(&path, json!({ "capacity": capacity })).await;
        assert_eq!(status, StatusCode::CREATED, "{sale}");
        boxoffice::sale::SaleId(sale["id"].as_str().unwrap().parse().unwrap())
    }
}

pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
}

impl Browser {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let resp = self.get(path).await;
        (resp.status(), resp.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form with the CSRF token of the page at `from`, as a browser would.
    pub async fn submit(&self, from: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf(from).await;
        let mut fields = vec![("csrf", token.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }

    pub async fn csrf(&self, from: &str) -> String {
        let (status, body) = self.page(from).await;
        assert_eq!(status, StatusCode::OK, "{from}: {body}");
        csrf_in(&body).unwrap_or_else(|| panic!("no CSRF token on {from}"))
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/admin/sign-up",
            "/admin/sign-up",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/admin/sign-in",
            "/admin/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Creates an event through the new-event form; returns its id.
    pub async fn create_event(&self, form: &[(&str, &str)]) -> Uuid {
        let resp = self.submit("/admin/events/new", "/admin/events/new", form).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap());
        let to = location(&resp);
        to.strip_prefix("/admin/events/").unwrap().parse().unwrap()
    }

    /// Opens a sale of `event` through its page; returns the sale id.
    pub async fn create_sale(&self, event: Uuid, form: &[(&str, &str)]) -> Uuid {
        let page = format!("/admin/events/{event}");
        let resp = self.submit(&page, &format!("{page}/sales"), form).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap());
        location(&resp).strip_prefix("/admin/sales/").unwrap().parse().unwrap()
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string()
}

pub fn csrf_in(body: &str) -> Option<String> {
    let start = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(body[start..].split('"').next()?.to_string())
}

/// The error shown beside the field `name`: the text of the error element inside the field's
/// paragraph.
pub fn field_error(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\""))?;
    let end = body[at..].find("</p>").map(|e| at + e)?;
    let part = &body[at..end];
    let start = part.find("role=\"alert\">")? + "role=\"alert\">".len();
    Some(part[start..].split('<').next()?.to_string())
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1/admin{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
}

/// A time `days` from now as a `datetime-local` value (UTC), and as RFC 3339.
pub fn form_time(days: i64, hours: i64) -> String {
    (Utc::now() + Duration::days(days) + Duration::hours(hours))
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

pub fn api_time(days: i64, hours: i64) -> String {
    (Utc::now() + Duration::days(days) + Duration::hours(hours)).to_rfc3339()
}

/// A good new-event form, with `changes` applied (a field set to `None` is left out).
pub fn event_form(changes: &[(&'static str, Option<&str>)]) -> Vec<(&'static str, String)> {
    let mut form: Vec<(&'static str, String)> = vec![
        ("title", "The Few Tickets Tour".into()),
        ("description", "One night only.".into()),
        ("starts_at", form_time(30, 0)),
        ("ends_at", form_time(30, 3)),
        ("capacity", "100".into()),
        ("price", "25.00".into()),
        ("currency", "EUR".into()),
    ];
    for (name, value) in changes {
        form.retain(|(n, _)| n != name);
        if let Some(v) = value {
            form.push((name, v.to_string()));
        }
    }
    form
}

/// A good new-event body for the API, with `changes` applied (`Value::Null` removes a field).
pub fn event_json(changes: Value) -> Value {
    let mut body = serde_json::json!({
        "title": "The Few Tickets Tour",
        "description": "One night only.",
        "starts_at": api_time(30, 0),
        "ends_at": api_time(30, 3),
        "capacity": 100,
        "price_minor": 2500,
        "currency": "EUR",
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    body
}

pub fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
