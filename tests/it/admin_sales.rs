//! Ticket sales opened in the portal: their own capacity and price, their rules, pause,
//! resume and close, and a dashboard that moves when buyers join and buy.

use boxoffice::sale::{Buyer, BuyerInput, Owner, ReservationState, SaleId};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::admin_support::{AdminApp, Organizer, api_time, event_form, field_error, form_time, pairs};

async fn event(o: &Organizer, capacity: &str) -> Uuid {
    o.browser
        .create_event(&pairs(&event_form(&[
            ("capacity", Some(capacity)),
            ("price", Some("30.00")),
        ])))
        .await
}

/// A figure of the dashboard's live fragment.
pub fn figure(body: &str, name: &str) -> String {
    let marker = format!("data-figure=\"{name}\">");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no {name} in {body}")) + marker.len();
    body[at..].split('<').next().unwrap().trim().to_string()
}

#[tokio::test]
async fn a_sale_made_in_the_portal_is_joined_by_buyers_and_its_dashboard_moves() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let event = event(&o, "10").await;
    let sale = o
        .browser
        .create_sale(
            event,
            &[
                ("capacity", "3"),
                ("opens_at", ""),
                ("hold_minutes", "8"),
                ("max_active", "0"),
            ],
        )
        .await;
    let (status, page) = o.browser.page(&format!("/admin/sales/{sale}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("hx-trigger=\"every 3s\""), "the figures poll");
    let figures = format!("/admin/sales/{sale}/figures");
    let f = o.browser.page(&figures).await.1;
    assert_eq!(
        (
            figure(&f, "capacity"),
            figure(&f, "sold"),
            figure(&f, "held"),
            figure(&f, "waiting")
        ),
        ("3".into(), "0".into(), "0".into(), "0".into())
    );

    let sales = &app.state.sales;
    let id = SaleId(sale);
    let (first, second) = (Owner::random(), Owner::random());
    let held = sales.join(id, &first, sales.quantity(2).unwrap()).await.unwrap();
    assert_eq!(held.state, ReservationState::Admitted);
    let queued = sales.join(id, &second, sales.quantity(2).unwrap()).await.unwrap();
    assert_eq!(queued.state, ReservationState::Waiting);
    let f = o.browser.page(&figures).await.1;
    assert_eq!((figure(&f, "held"), figure(&f, "waiting")), ("2".into(), "1".into()));

    let buyer = Buyer::parse(&BuyerInput {
        name: "=HYPERLINK(\"http://evil\")".into(),
        email: "ada@example.com".into(),
        age: "36".into(),
        gender: "female".into(),
    })
    .unwrap();
    let order = sales.confirm(&held.code, &first, &buyer).await.unwrap();
    assert_eq!(order.unit_price_minor, 3000, "the price came from the event");
    let f = o.browser.page(&figures).await.1;
    assert_eq!(
        (
            figure(&f, "sold"),
            figure(&f, "held"),
            figure(&f, "revenue"),
            figure(&f, "orders")
        ),
        ("2".into(), "0".into(), "60.00 EUR".into(), "1".into())
    );

    let page = o.browser.page(&format!("/admin/sales/{sale}")).await.1;
    assert!(page.contains(&order.number), "the order is listed");
    let resp = o.browser.get(&format!("/admin/sales/{sale}/orders.csv")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = resp.text().await.unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(row.starts_with(&format!("{},", order.number)), "{row}");
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil\"\")\",ada@example.com,36,female"),
        "{row}"
    );

    let (status, f) = o.api.get(&format!("/sales/{sale}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((f["sold"].as_i64(), f["revenue_minor"].as_i64()), (Some(2), Some(6000)));
    assert_eq!((f["capacity"].as_i64(), f["admitted"].as_i64()), (Some(3), Some(1)));
    let (status, page) = o.api.get(&format!("/sales/{sale}/orders?per_page=10")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 1);
    assert_eq!(page["orders"][0]["number"].as_str(), Some(order.number.as_str()));
    assert_eq!(page["orders"][0]["total_minor"], 6000);
}

#[tokio::test]
async fn orders_are_listed_newest_first_a_page_at_a_time() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let event = event(&o, "40").await;
    let (_, sale) = o.api.post(&format!("/events/{event}/sales"), json!({})).await;
    let id = SaleId(sale["id"].as_str().unwrap().parse().unwrap());
    let buyer = crate::support::ada();
    let mut numbers = Vec::new();
    for _ in 0..27 {
        let owner = Owner::random();
        let r = app
            .state
            .sales
            .join(id, &owner, app.state.sales.quantity(1).unwrap())
            .await
            .unwrap();
        numbers.push(app.state.sales.confirm(&r.code, &owner, &buyer).await.unwrap().number);
    }
    let first = o.browser.page(&format!("/admin/sales/{}", id)).await.1;
    assert!(
        first.contains(&numbers[26]) && !first.contains(&numbers[1]),
        "newest first"
    );
    assert!(first.contains("?page=2"));
    let second = o.browser.page(&format!("/admin/sales/{}?page=2", id)).await.1;
    assert!(second.contains(&numbers[0]) && !second.contains(&numbers[26]));
    let (_, api) = o.api.get(&format!("/sales/{}/orders?page=2&per_page=25", id)).await;
    assert_eq!(
        (api["total"].as_i64(), api["orders"].as_array().unwrap().len()),
        (Some(27), 2)
    );
    let csv = o
        .browser
        .get(&format!("/admin/sales/{}/orders.csv", id))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 28, "a header and every order");
}

#[tokio::test]
async fn a_sale_copies_the_event_and_keeps_its_own_figures_when_the_event_changes() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let event = event(&o, "50").await;
    let (status, sale) = o
        .api
        .post(&format!("/events/{event}/sales"), json!({"capacity": 20}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(
        (sale["capacity"].as_i64(), sale["price_minor"].as_i64()),
        (Some(20), Some(3000))
    );
    assert_eq!(
        (sale["hold_secs"].as_i64(), sale["max_active"].as_i64()),
        (Some(480), Some(0)),
        "defaults"
    );
    assert_eq!(sale["state"], "open");

    let default = o.browser.create_sale(event, &[]).await;
    let (_, d) = o.api.get(&format!("/sales/{default}")).await;
    assert_eq!(d["sale"]["capacity"], 50, "the event's capacity by default");

    o.api
        .patch(&format!("/events/{event}"), json!({"title": "Renamed"}))
        .await;
    let (_, after) = o.api.get(&format!("/sales/{}", sale["id"].as_str().unwrap())).await;
    assert_eq!(
        (
            after["sale"]["capacity"].as_i64(),
            after["sale"]["price_minor"].as_i64()
        ),
        (Some(20), Some(3000))
    );
    let page = o.browser.page(&format!("/admin/events/{event}")).await.1;
    assert!(
        page.contains("Renamed") && page.contains("Dashboard"),
        "sales listed on the event page"
    );
}

#[tokio::test]
async fn sale_fields_are_checked_through_the_page_and_the_api() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let event = event(&o, "50").await;
    let page = format!("/admin/events/{event}");
    let opens = form_time(1, 0);
    for (form_field, form_value, api_field, api_value, message) in [
        ("capacity", "0", "capacity", json!(0), "Between 1"),
        ("capacity", "51", "capacity", json!(51), "event's capacity"),
        ("hold_minutes", "0", "hold_secs", json!(0), "Between 1 second"),
        ("hold_minutes", "61", "hold_secs", json!(3601), "Between 1 second"),
        ("max_active", "-1", "max_active", json!(-1), "no limit"),
        ("opens_at", "soon", "opens_at", json!("soon"), "such as"),
    ] {
        let mut form = vec![("opens_at", opens.as_str()), ("hold_minutes", "8")];
        form.retain(|(k, _)| *k != form_field);
        form.push((form_field, form_value));
        let resp = o.browser.submit(&page, &format!("{page}/sales"), &form).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{form_field}");
        let body = resp.text().await.unwrap();
        let error = field_error(&body, form_field).unwrap_or_default();
        assert!(error.contains(message), "{form_field}: {error:?}");
        assert!(body.contains(&format!("value=\"{form_value}\"")), "kept {form_field}");

        let (status, answer) = o
            .api
            .post(&format!("/events/{event}/sales"), json!({ api_field: api_value }))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{api_field}: {answer}");
        assert!(
            answer["fields"][api_field].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
    assert_eq!(app.sale_count().await, 0);
    let (status, _) = o
        .api
        .post(
            &format!("/events/{event}/sales"),
            json!({"opens_at": api_time(1, 0), "hold_secs": 60, "max_active": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_sale_pauses_resumes_and_closes_for_good() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let event = event(&o, "5").await;
    let sale = o.browser.create_sale(event, &[]).await;
    let dashboard = format!("/admin/sales/{sale}");
    let state = |body: &str| figure(body, "state");

    let resp = o
        .browser
        .submit(&dashboard, &format!("{dashboard}/state"), &[("state", "paused")])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&o.browser.page(&dashboard).await.1), "paused");
    let owner = Owner::random();
    let q = app.state.sales.quantity(1).unwrap();
    let r = app.state.sales.join(SaleId(sale), &owner, q).await.unwrap();
    assert_eq!(
        r.state,
        ReservationState::Waiting,
        "a paused sale queues but admits nobody"
    );

    let (status, s) = o.api.patch(&format!("/sales/{sale}"), json!({"state": "open"})).await;
    assert_eq!((status, s["state"].as_str()), (StatusCode::OK, Some("open")));
    let r = app.state.sales.status(&r.code, &owner).await.unwrap();
    assert_eq!(r.state, ReservationState::Admitted, "resumed");

    let (status, answer) = o.api.patch(&format!("/sales/{sale}"), json!({"state": "sold"})).await;
    assert_eq!(
        (status, answer["fields"]["state"].is_string()),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );

    let resp = o
        .browser
        .submit(&dashboard, &format!("{dashboard}/state"), &[("state", "closed")])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let body = o.browser.page(&dashboard).await.1;
    assert_eq!(state(&body), "closed");
    assert!(body.contains("closed for good"));
    let (status, answer) = o.api.patch(&format!("/sales/{sale}"), json!({"state": "open"})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let resp = o
        .browser
        .submit(&dashboard, &format!("{dashboard}/state"), &[("state", "open")])
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(state(&o.browser.page(&dashboard).await.1), "closed");
}

#[tokio::test]
async fn a_dashboard_polled_after_sign_out_sends_the_browser_to_sign_in() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let event = event(&o, "5").await;
    let sale = o.browser.create_sale(event, &[]).await;
    let token = o.browser.csrf("/admin").await;
    o.browser.post("/admin/sign-out", &[("csrf", &token)]).await;
    let resp = o
        .browser
        .http
        .get(format!("{}/admin/sales/{sale}/figures", app.base))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["hx-redirect"], "/admin/sign-in");
    let plain = o.browser.get(&format!("/admin/sales/{sale}/figures")).await;
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
}
