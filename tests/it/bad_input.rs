//! Bad input, table-driven: every form field and API field of buyers and organizers gets
//! empty, huge (100 kB), negative, non-numeric, unicode and script content. A value a field
//! refuses gets a clear 4xx and changes nothing (Postgres counts, the sale's live figures); a
//! value it accepts (unicode or markup in a name or a title is a name or a title) is stored
//! as text. No answer ever carries the script unescaped.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin_support::{AdminApp, Organizer, event_form, event_json, pairs};

const SCRIPT: &str = "<script>alert(1)</script>";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Bad {
    Empty,
    Huge,
    Negative,
    NonNumeric,
    Unicode,
    Script,
}

use Bad::*;

const EVERY: [Bad; 6] = [Empty, Huge, Negative, NonNumeric, Unicode, Script];

impl Bad {
    /// As typed into a form.
    fn text(self) -> String {
        match self {
            Empty => String::new(),
            Huge => "9".repeat(100 * 1024),
            Negative => "-1".into(),
            NonNumeric => "abc".into(),
            Unicode => "Zoë Ødegård 🎟 名前".into(),
            Script => SCRIPT.into(),
        }
    }

    /// As sent in JSON: a number where the value is one, a string otherwise.
    fn json(self) -> Value {
        match self {
            Negative => json!(-1),
            other => json!(other.text()),
        }
    }

    /// As sent in JSON for a text field, which takes only strings: always a string.
    fn json_text(self) -> Value {
        json!(self.text())
    }
}

/// One field, and the kinds of value it takes as valid (all others it must refuse).
struct Field {
    name: &'static str,
    accepts: &'static [Bad],
}

const fn field(name: &'static str, accepts: &'static [Bad]) -> Field {
    Field { name, accepts }
}

/// Refused: a 4xx, and the script never comes back raw.
fn assert_refused(status: StatusCode, body: &str, what: &str) {
    assert!(status.is_client_error(), "{what}: expected a 4xx, got {status}");
    assert!(
        !body.contains(SCRIPT),
        "{what}: the script came back unescaped: {}",
        &body[..body.len().min(300)]
    );
}

async fn answer(resp: reqwest::Response) -> (StatusCode, String) {
    (resp.status(), resp.text().await.unwrap())
}

/// What a refused request must leave alone.
#[derive(Debug, PartialEq)]
struct Counts {
    events: i64,
    sales: i64,
    orders: i64,
    held: i64,
    waiting: i64,
}

async fn counts(app: &AdminApp, sale: Uuid) -> Counts {
    let count = |sql: &'static str| {
        let db = app.state.db.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db).await.unwrap() }
    };
    let f = app.state.sales.figures(boxoffice::sale::SaleId(sale)).await.unwrap();
    Counts {
        events: count("select count(*) from events").await,
        sales: count("select count(*) from ticket_sales").await,
        orders: count("select count(*) from orders").await,
        held: f.held,
        waiting: f.waiting,
    }
}

/// An organizer with one event and one open sale of 100 tickets.
async fn shop() -> (AdminApp, Organizer, Uuid, Uuid) {
    let app = AdminApp::spawn().await;
    let org = app.organizer().await;
    let (s, event) = org.api.post("/events", event_json(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{event}");
    let event: Uuid = event["id"].as_str().unwrap().parse().unwrap();
    let (s, sale) = org.api.post(&format!("/events/{event}/sales"), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{sale}");
    let sale = sale["id"].as_str().unwrap().parse().unwrap();
    (app, org, event, sale)
}

/// The organizer API's answer as sent: status and raw text (a JSON value printed again would
/// hide how the server wrote it).
async fn admin_api(org: &Organizer, method: Method, path: &str, body: Value) -> (StatusCode, String) {
    let resp = org
        .api
        .http
        .request(method, format!("{}/api/v1/admin{path}", org.api.base))
        .bearer_auth(&org.api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

/// A buyer admitted to checkout: its client and its code.
async fn admitted_buyer(app: &AdminApp, sale: Uuid) -> (reqwest::Client, String) {
    let c = crate::support::browser();
    let r = crate::support::api_join(&app.base, &c, sale, 1).await;
    assert_eq!(r["state"], "admitted", "{r}");
    (c, r["code"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn buyer_quantity_sale_ids_and_codes() {
    let (app, _org, _event, sale) = shop().await;
    let before = counts(&app, sale).await;
    let c = crate::support::browser();
    for bad in EVERY {
        let what = format!("quantity {bad:?}");
        let page = c
            .post(format!("{}/sales/{sale}", app.base))
            .form(&[("quantity", bad.text())])
            .send()
            .await
            .unwrap();
        let (s, body) = answer(page).await;
        assert_refused(s, &body, &format!("page {what}"));
        let api = c
            .post(format!("{}/api/v1/sales/{sale}/reservations", app.base))
            .json(&json!({ "quantity": bad.json() }))
            .send()
            .await
            .unwrap();
        let (s, body) = answer(api).await;
        assert_refused(s, &body, &format!("API {what}"));
        assert_eq!(counts(&app, sale).await, before, "{what}");
    }

    // Sale ids and reservation codes in every route that takes one.
    let (holder, _code) = admitted_buyer(&app, sale).await;
    let before = counts(&app, sale).await;
    let routes: [(Method, &str); 13] = [
        (Method::GET, "/sales/{}"),
        (Method::POST, "/sales/{}"),
        (Method::GET, "/api/v1/sales/{}"),
        (Method::POST, "/api/v1/sales/{}/reservations"),
        (Method::GET, "/wait/{}"),
        (Method::GET, "/wait/{}/poll"),
        (Method::GET, "/checkout/{}"),
        (Method::POST, "/checkout/{}"),
        (Method::POST, "/reservations/{}/release"),
        (Method::GET, "/orders/{}"),
        (Method::GET, "/api/v1/reservations/{}"),
        (Method::POST, "/api/v1/reservations/{}/order"),
        (Method::DELETE, "/api/v1/reservations/{}"),
    ];
    for bad in EVERY {
        // The value as one path segment, escaped as a browser would. A URL is at most 64 kB
        // (the HTTP client refuses longer ones), so the huge one is 60 kB here.
        let text = if bad == Huge { "9".repeat(60 * 1024) } else { bad.text() };
        let segment: String = text
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        for (method, route) in &routes {
            let url = format!("{}{}", app.base, route.replace("{}", &segment));
            let mut req = holder.request(method.clone(), &url);
            if route.starts_with("/api") && *method == Method::POST {
                req = req.json(&json!({"quantity": 1, "name": "A", "email": "a@b.co", "age": 30, "gender": "male"}));
            } else if *method == Method::POST {
                req = req.form(&[
                    ("quantity", "1"),
                    ("name", "A"),
                    ("email", "a@b.co"),
                    ("age", "30"),
                    ("gender", "male"),
                ]);
            }
            let (s, body) = answer(req.send().await.unwrap()).await;
            assert_refused(s, &body, &format!("{method} {route} with {bad:?}"));
        }
        assert_eq!(counts(&app, sale).await, before, "ids {bad:?}");
    }
}

/// The buyer's details at checkout, through the form and the API.
const BUYER_FIELDS: [Field; 4] = [
    field("name", &[Unicode, Script, Negative, NonNumeric]),
    field("email", &[]),
    field("age", &[]),
    field("gender", &[]),
];

fn good_buyer() -> Vec<(&'static str, String)> {
    vec![
        ("name", "Ada Lovelace".into()),
        ("email", "ada@example.com".into()),
        ("age", "36".into()),
        ("gender", "female".into()),
    ]
}

#[tokio::test]
async fn buyer_details_at_checkout() {
    let (app, _org, _event, sale) = shop().await;
    let (c, code) = admitted_buyer(&app, sale).await;
    for f in &BUYER_FIELDS {
        for bad in EVERY {
            let what = format!("{} {bad:?}", f.name);
            let mut form = good_buyer();
            form.retain(|(k, _)| *k != f.name);
            form.push((f.name, bad.text()));
            let mut body = json!({"name": "Ada Lovelace", "email": "ada@example.com", "age": 36, "gender": "female"});
            // Only the age is a number; the other details take only JSON strings.
            body[f.name] = if f.name == "age" { bad.json() } else { bad.json_text() };

            if f.accepts.contains(&bad) {
                // A valid name however it looks: each in a checkout of its own, shown as text.
                let (c, code) = admitted_buyer(&app, sale).await;
                let done = c
                    .post(format!("{}/checkout/{code}", app.base))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(done.status(), StatusCode::SEE_OTHER, "{what}");
                let (s, page) = answer(c.get(format!("{}/orders/{code}", app.base)).send().await.unwrap()).await;
                assert_eq!(s, StatusCode::OK, "{what}");
                assert!(!page.contains(SCRIPT), "{what}: the confirmation shows the script raw");
                let (c, code) = admitted_buyer(&app, sale).await;
                let (s, order) = answer(
                    c.post(format!("{}/api/v1/reservations/{code}/order", app.base))
                        .json(&body)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(s, StatusCode::CREATED, "{what}: {order}");
                continue;
            }
            let before = counts(&app, sale).await;
            let page = c
                .post(format!("{}/checkout/{code}", app.base))
                .form(&form)
                .send()
                .await
                .unwrap();
            let (s, page) = answer(page).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "page {what}");
            assert_refused(s, &page, &format!("page {what}"));
            let api = c
                .post(format!("{}/api/v1/reservations/{code}/order", app.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            let (s, api) = answer(api).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "API {what}: {api}");
            assert_refused(s, &api, &format!("API {what}"));
            assert_eq!(counts(&app, sale).await, before, "{what}");
        }
    }
}

/// The fields of a new event: (form name, API name, accepted kinds).
const EVENT_FIELDS: [(&str, &str, &[Bad]); 8] = [
    ("title", "title", &[Unicode, Script, Negative, NonNumeric]),
    ("description", "description", &[Unicode, Script, Negative, NonNumeric]),
    // The venue may be left empty.
    ("venue", "venue", &[Empty, Unicode, Script, Negative, NonNumeric]),
    ("starts_at", "starts_at", &[]),
    ("ends_at", "ends_at", &[]),
    ("capacity", "capacity", &[]),
    ("price", "price_minor", &[]),
    // Left empty, the currency is EUR.
    ("currency", "currency", &[Empty]),
];

#[tokio::test]
async fn organizer_event_fields() {
    let (app, org, _event, sale) = shop().await;
    for (form_name, api_name, accepts) in EVENT_FIELDS {
        for bad in EVERY {
            let what = format!("event {form_name} {bad:?}");
            let before = counts(&app, sale).await;
            let text = bad.text();
            let form = event_form(&[(form_name, Some(text.as_str()))]);
            let resp = org
                .browser
                .submit("/admin/events/new", "/admin/events/new", &pairs(&form))
                .await;
            let (s, page) = answer(resp).await;
            // The text fields (those that take any text) take only JSON strings.
            let value = if accepts.contains(&NonNumeric) {
                bad.json_text()
            } else {
                bad.json()
            };
            let (api_s, api) = admin_api(&org, Method::POST, "/events", event_json(json!({ api_name: value }))).await;
            if accepts.contains(&bad) {
                assert_eq!(s, StatusCode::SEE_OTHER, "page {what}");
                assert_eq!(api_s, StatusCode::CREATED, "API {what}: {api}");
                let after = counts(&app, sale).await;
                assert_eq!(after.events, before.events + 2, "{what}");
                continue;
            }
            assert_refused(s, &page, &format!("page {what}"));
            assert_refused(api_s, &api, &format!("API {what}"));
            assert_eq!(counts(&app, sale).await, before, "{what}");
        }
    }
    // Titles with markup are shown as text on the organizer's list.
    let (s, page) = org.browser.page("/admin").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!page.contains(SCRIPT), "the list shows the script raw");
    assert!(page.contains("&lt;script&gt;"), "the list shows the title as text");
    // Editing title and description of an event checks the same.
    let (_, event) = org.api.post("/events", event_json(json!({}))).await;
    let event = event["id"].as_str().unwrap().to_string();
    for bad in [Empty, Huge] {
        for field in ["title", "description"] {
            let before = counts(&app, sale).await;
            let (s, body) = admin_api(
                &org,
                Method::PATCH,
                &format!("/events/{event}"),
                json!({ field: bad.json() }),
            )
            .await;
            assert_refused(s, &body, &format!("edit {field} {bad:?}"));
            let (s, page) = answer(
                org.browser
                    .submit(
                        &format!("/admin/events/{event}"),
                        &format!("/admin/events/{event}"),
                        &[("title", "Fine"), ("description", "Fine."), (field, &bad.text())],
                    )
                    .await,
            )
            .await;
            assert_refused(s, &page, &format!("edit page {field} {bad:?}"));
            assert_eq!(counts(&app, sale).await, before);
        }
    }
    let (_, shown) = org.api.get(&format!("/events/{event}")).await;
    assert_eq!(
        shown["title"], "The Few Tickets Tour",
        "the refused edits changed nothing"
    );
}

/// The fields of a new sale: (form name, API name, kinds accepted by the form, by the API).
/// An empty form field takes its default; so does a field the API leaves out.
#[allow(clippy::type_complexity)]
const SALE_FIELDS: [(&str, &str, &[Bad], &[Bad]); 4] = [
    ("capacity", "capacity", &[Empty], &[]),
    ("opens_at", "opens_at", &[Empty], &[Empty]),
    ("hold_minutes", "hold_secs", &[Empty], &[]),
    ("max_active", "max_active", &[Empty], &[]),
];

#[tokio::test]
async fn organizer_sale_fields() {
    let (app, org, event, sale) = shop().await;
    let sales_url = format!("/events/{event}/sales");
    for (form_name, api_name, form_accepts, api_accepts) in SALE_FIELDS {
        for bad in EVERY {
            let what = format!("sale {form_name} {bad:?}");
            let before = counts(&app, sale).await;
            let text = bad.text();
            let resp = org
                .browser
                .submit(
                    &format!("/admin/events/{event}"),
                    &format!("/admin/events/{event}/sales"),
                    &[(form_name, text.as_str())],
                )
                .await;
            let (s, page) = answer(resp).await;
            if form_accepts.contains(&bad) {
                assert_eq!(s, StatusCode::SEE_OTHER, "page {what}");
            } else {
                assert_refused(s, &page, &format!("page {what}"));
            }
            let (s, api) = admin_api(&org, Method::POST, &sales_url, json!({ api_name: bad.json() })).await;
            if api_accepts.contains(&bad) {
                assert_eq!(s, StatusCode::CREATED, "API {what}");
            } else {
                assert_refused(s, &api, &format!("API {what}"));
            }
            let accepted = i64::from(form_accepts.contains(&bad)) + i64::from(api_accepts.contains(&bad));
            let after = counts(&app, sale).await;
            assert_eq!(after.sales, before.sales + accepted, "{what}");
            assert_eq!((after.events, after.orders), (before.events, before.orders), "{what}");
        }
    }
    // A sale's state takes only its three words.
    for bad in EVERY {
        let (s, body) = admin_api(
            &org,
            Method::PATCH,
            &format!("/sales/{sale}"),
            json!({ "state": bad.json() }),
        )
        .await;
        assert_refused(s, &body, &format!("state {bad:?}"));
        let (s, page) = answer(
            org.browser
                .submit(
                    &format!("/admin/sales/{sale}"),
                    &format!("/admin/sales/{sale}/state"),
                    &[("state", &bad.text())],
                )
                .await,
        )
        .await;
        assert_refused(s, &page, &format!("state page {bad:?}"));
    }
    let (_, figures) = org.api.get(&format!("/sales/{sale}")).await;
    assert_eq!(figures["state"], "open");
}
