//! The buyer's pages over HTTP against the running app: every page and every state of the
//! path, and bad input that must change nothing.

use std::time::Duration;

use boxoffice::sale::{ReservationCode, SaleId};
use reqwest::StatusCode;

use crate::support::TestApp;

pub(crate) struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub hx_redirect: Option<String>,
    pub body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Page {
    let resp = req.send().await.expect("the app answers");
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (location, hx_redirect) = (header("location"), header("hx-redirect"));
    Page {
        status: resp.status(),
        location,
        hx_redirect,
        body: resp.text().await.unwrap(),
    }
}

pub(crate) async fn get(app: &TestApp, c: &reqwest::Client, path: &str) -> Page {
    send(c.get(app.url(path))).await
}

async fn hx_get(app: &TestApp, c: &reqwest::Client, path: &str) -> Page {
    send(c.get(app.url(path)).header("HX-Request", "true")).await
}

pub(crate) async fn post(app: &TestApp, c: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> Page {
    send(c.post(app.url(path)).form(form)).await
}

/// Joins through the event page's form; returns where the app sent the buyer.
pub(crate) async fn join(app: &TestApp, c: &reqwest::Client, sale: SaleId, quantity: &str) -> String {
    let p = post(app, c, &format!("/sales/{sale}"), &[("quantity", quantity)]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    p.location.expect("a redirect")
}

/// The reservation code in a path such as `/checkout/<code>` or `/wait/<code>?start=1`.
pub(crate) fn code_in(path: &str) -> ReservationCode {
    let tail = path.rsplit('/').next().unwrap();
    tail.split('?').next().unwrap().parse().expect("a reservation code")
}

pub(crate) const GOOD: [(&str, &str); 4] = [
    ("name", "Ada Lovelace"),
    ("email", "ada@example.com"),
    ("age", "36"),
    ("gender", "female"),
];

#[tokio::test]
async fn quiet_sale_goes_straight_to_checkout_and_the_confirmation_stays_reachable() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let c = app.client();

    let list = get(&app, &c, "/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("The Few Tickets Tour"), "{}", list.body);
    assert!(list.body.contains("€25.00"));
    assert!(list.body.contains("On sale"));
    assert!(list.body.contains(&format!("/sales/{sale}")));

    let event = get(&app, &c, &format!("/sales/{sale}")).await;
    assert_eq!(event.status, StatusCode::OK);
    assert!(event.body.contains("One night only."));
    assert!(event.body.contains(r#"<option value="6">"#));
    assert!(!event.body.contains(r#"<option value="7">"#));

    let to = join(&app, &c, sale, "2").await;
    assert!(to.starts_with("/checkout/"), "{to}");
    let code = code_in(&to);

    let checkout = get(&app, &c, &to).await;
    assert_eq!(checkout.status, StatusCode::OK);
    assert!(checkout.body.contains("€50.00"), "total of two tickets");
    assert!(checkout.body.contains("data-expires-in-ms"));
    assert!(checkout.body.contains("Give up these tickets"));

    let done = post(&app, &c, &to, &GOOD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let order_url = format!("/orders/{code}");
    assert_eq!(done.location.as_deref(), Some(order_url.as_str()));
    assert_eq!(app.world.pg_sold(sale).await, 2);

    for _ in 0..2 {
        let order = get(&app, &c, &order_url).await;
        assert_eq!(order.status, StatusCode::OK);
        for text in [
            "Order number",
            "BO-",
            "The Few Tickets Tour",
            "Ada Lovelace",
            "€25.00",
            "€50.00",
        ] {
            assert!(order.body.contains(text), "{text} missing");
        }
    }
    // Checkout and the waiting room of a confirmed reservation lead to the order.
    assert_eq!(get(&app, &c, &to).await.location.as_deref(), Some(order_url.as_str()));
    assert_eq!(
        get(&app, &c, &format!("/wait/{code}")).await.location.as_deref(),
        Some(order_url.as_str())
    );
    // A second submit does not make a second order.
    let again = post(&app, &c, &to, &GOOD).await;
    assert_eq!(again.location.as_deref(), Some(order_url.as_str()));
    assert_eq!(app.world.pg_sold(sale).await, 2);

    // Another browser that learns the code sees nothing.
    let other = app.client();
    get(&app, &other, "/").await;
    assert_eq!(get(&app, &other, &order_url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, &other, &to).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.client().get(app.url(&order_url)).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn reloading_or_a_second_tab_never_makes_a_second_reservation() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let c = app.client();
    let first = join(&app, &c, sale, "2").await;
    let second = join(&app, &c, sale, "3").await;
    assert_eq!(first, second, "the same reservation comes back");
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting, f.admitted), (2, 0, 1));

    let event = get(&app, &c, &format!("/sales/{sale}")).await;
    assert!(event.body.contains("You already have a reservation"), "{}", event.body);
    assert!(event.body.contains(&first));
    assert!(!event.body.contains("Get tickets"));
}

#[tokio::test]
async fn waiting_buyer_sees_the_position_and_moves_to_checkout_when_tickets_free_up() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(2, 60).await.sale_id();
    let (a, b) = (app.client(), app.client());
    let a_to = join(&app, &a, sale, "2").await;
    assert!(a_to.starts_with("/checkout/"));

    let b_to = join(&app, &b, sale, "1").await;
    assert!(b_to.starts_with("/wait/") && b_to.ends_with("?start=1"), "{b_to}");
    let b_code = code_in(&b_to);
    let wait = get(&app, &b, &b_to).await;
    assert_eq!(wait.status, StatusCode::OK);
    assert!(wait.body.contains("You are number"), "{}", wait.body);
    assert!(wait.body.contains(r#"<strong class="pos">1</strong>"#));
    assert!(wait.body.contains("(1 waiting)"));
    assert!(wait.body.contains("Estimated wait"));
    assert!(wait.body.contains(r#"hx-trigger="load delay:2000ms""#));
    assert!(
        wait.body
            .contains(r#"<noscript><meta http-equiv="refresh" content="2">"#)
    );

    let poll_url = format!("/wait/{b_code}/poll?start=1");
    let poll = hx_get(&app, &b, &poll_url).await;
    assert_eq!(poll.status, StatusCode::OK);
    assert!(
        poll.body.starts_with("<div") && poll.body.contains(r#"id="queue""#) && !poll.body.contains("<html"),
        "a fragment, not a page: {}",
        poll.body
    );
    assert!(poll.hx_redirect.is_none());
    // Another browser cannot poll this code.
    assert_eq!(
        hx_get(&app, &app.client(), &poll_url).await.status,
        StatusCode::NOT_FOUND
    );
    // Checkout is not open to a waiting buyer.
    assert_eq!(
        get(&app, &b, &format!("/checkout/{b_code}")).await.location.as_deref(),
        Some(b_to.split('?').next().unwrap())
    );

    // A gives up; B's next poll moves B to checkout.
    let gave_up = post(&app, &a, &format!("/reservations/{}/release", code_in(&a_to)), &[]).await;
    assert_eq!(gave_up.location.as_deref(), Some("/?notice=released"));
    let poll = hx_get(&app, &b, &poll_url).await;
    assert_eq!(poll.hx_redirect, Some(format!("/checkout/{b_code}")));
    let checkout = get(&app, &b, &format!("/checkout/{b_code}")).await;
    assert_eq!(checkout.status, StatusCode::OK);
    assert!(checkout.body.contains("Checkout"));
}

#[tokio::test]
async fn sold_out_waiters_land_on_the_waitlist_form_with_the_message() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(2, 60).await.sale_id();
    let (a, b) = (app.client(), app.client());
    let a_to = join(&app, &a, sale, "2").await;
    let b_to = join(&app, &b, sale, "1").await;
    let b_code = code_in(&b_to);
    assert_eq!(post(&app, &a, &a_to, &GOOD).await.status, StatusCode::SEE_OTHER);

    let poll = hx_get(&app, &b, &format!("/wait/{b_code}/poll")).await;
    let waitlist = format!("/sales/{sale}/waitlist?quantity=1");
    assert_eq!(poll.hx_redirect.as_deref(), Some(waitlist.as_str()));
    let form = get(&app, &b, &waitlist).await;
    assert!(form.body.contains("Sorry, this event is sold out."));
    assert!(form.body.contains("Join the waitlist"));
    let list = get(&app, &b, "/").await;
    assert!(list.body.contains("Sold out"));
    // A latecomer is told at once.
    assert_eq!(join(&app, &app.client(), sale, "1").await, waitlist);
}

#[tokio::test]
async fn an_expired_hold_sends_the_buyer_to_the_list() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(5, 1).await.sale_id();
    let c = app.client();
    let to = join(&app, &c, sale, "1").await;
    assert!(to.starts_with("/checkout/"));
    tokio::time::sleep(Duration::from_millis(1_300)).await;

    assert_eq!(get(&app, &c, &to).await.location.as_deref(), Some("/?notice=expired"));
    let late = post(&app, &c, &to, &GOOD).await;
    assert_eq!(late.location.as_deref(), Some("/?notice=expired"));
    assert_eq!(app.world.pg_sold(sale).await, 0);
    let list = get(&app, &c, "/?notice=expired").await;
    assert!(list.body.contains("Your reservation expired."));
    // The event page offers a fresh start, not the lapsed reservation.
    assert!(
        get(&app, &c, &format!("/sales/{sale}"))
            .await
            .body
            .contains("Get tickets")
    );
}

#[tokio::test]
async fn checkout_shows_each_error_beside_its_field_and_keeps_the_values() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(5, 60).await.sale_id();
    let c = app.client();
    let to = join(&app, &c, sale, "1").await;
    let long = "n".repeat(10_000);
    let cases: Vec<[(&str, &str); 4]> = vec![
        [
            ("name", ""),
            ("email", "ada@example.com"),
            ("age", "36"),
            ("gender", "female"),
        ],
        [
            ("name", "Ada"),
            ("email", "no-at-sign"),
            ("age", "36"),
            ("gender", "female"),
        ],
        [
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("age", "x"),
            ("gender", "female"),
        ],
        [
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("age", "-1"),
            ("gender", "female"),
        ],
        [
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("age", "131"),
            ("gender", "female"),
        ],
        [
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("age", "36"),
            ("gender", "robot"),
        ],
        [
            ("name", &long),
            ("email", "ada@example.com"),
            ("age", "36"),
            ("gender", "female"),
        ],
    ];
    for form in &cases {
        let p = post(&app, &c, &to, form).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert!(p.body.contains("field-error"), "{form:?}");
        assert!(p.body.contains("Please check the fields marked below."));
        for (field, value) in form {
            if *field != "gender" && !value.is_empty() {
                assert!(p.body.contains(&format!(r#"value="{value}""#)), "{field} kept");
            }
        }
    }
    let p = post(
        &app,
        &c,
        &to,
        &[("name", "<b>Ada</b>"), ("email", "x"), ("age", "1"), ("gender", "male")],
    )
    .await;
    assert!(p.body.contains("&lt;b&gt;Ada&lt;/b&gt;"), "escaped");
    assert!(p.body.contains(r#"<option value="male" selected>"#));
    assert!(p.body.contains("Please enter a valid email address"));
    // Nothing changed: still held, no order.
    assert_eq!(app.world.pg_sold(sale).await, 0);
    assert_eq!(app.world.sales.figures(sale).await.unwrap().held, 1);
    assert_eq!(get(&app, &c, &to).await.status, StatusCode::OK);
}

#[tokio::test]
async fn giving_up_at_checkout_returns_the_tickets_at_once() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(3, 60).await.sale_id();
    let c = app.client();
    let to = join(&app, &c, sale, "3").await;
    assert_eq!(app.world.sales.figures(sale).await.unwrap().held, 3);
    let p = post(&app, &c, &format!("/reservations/{}/release", code_in(&to)), &[]).await;
    assert_eq!(p.location.as_deref(), Some("/?notice=released"));
    assert_eq!(app.world.sales.figures(sale).await.unwrap().held, 0);
    assert_eq!(get(&app, &c, &to).await.location.as_deref(), Some("/?notice=released"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_answer_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(5, 60).await.sale_id();
    let c = app.client();
    let long = "9".repeat(10_000);
    for q in ["0", "7", "-1", "abc", "", "2.5", long.as_str()] {
        let p = post(&app, &c, &format!("/sales/{sale}"), &[("quantity", q)]).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "quantity {q:?}");
        assert!(p.body.contains("Please choose between 1 and 6 tickets."));
    }
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting, f.admitted), (0, 0, 0));

    let unknown = SaleId::new();
    let forged = ReservationCode::new(sale);
    for path in [
        format!("/sales/{unknown}"),
        "/sales/not-a-sale".to_string(),
        format!("/wait/{forged}"),
        "/wait/abc".to_string(),
        format!("/checkout/{forged}"),
        format!("/checkout/{}", "z".repeat(10_000)),
        format!("/orders/{forged}"),
    ] {
        let p = get(&app, &c, &path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(p.body.contains("<h1>"), "a page for people: {path}");
    }
    let p = post(&app, &c, &format!("/sales/{unknown}"), &[("quantity", "1")]).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = post(&app, &c, &format!("/checkout/{forged}"), &GOOD).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = post(&app, &c, &format!("/reservations/{forged}/release"), &[]).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    // A crafted notice shows nothing.
    let list = get(&app, &c, "/?notice=%3Cscript%3E").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains("flash"));
    let f = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting, f.admitted, f.sold), (0, 0, 0, 0));
}

#[tokio::test]
async fn the_list_tells_which_sales_open_later() {
    let app = TestApp::spawn().await;
    let opens = chrono::Utc::now() + chrono::Duration::hours(2);
    let sale = app.world.sale_with(10, 60, 0, opens).await.sale_id();
    let c = app.client();
    let list = get(&app, &c, "/").await;
    assert!(list.body.contains("Opens "), "{}", list.body);
    let p = post(&app, &c, &format!("/sales/{sale}"), &[("quantity", "1")]).await;
    assert_eq!(p.status, StatusCode::CONFLICT);
    assert!(p.body.contains("This ticket sale opens at"));
}

#[tokio::test]
async fn the_poll_neither_reads_nor_writes_the_session_store() {
    use fred::prelude::KeysInterface;
    use reqwest::cookie::CookieStore;

    let app = TestApp::spawn().await;
    let sale = app.world.sale(1, 60).await.sale_id();
    join(&app, &app.client(), sale, "1").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let b = crate::support::http().cookie_provider(jar.clone()).build().unwrap();
    let to = join(&app, &b, sale, "1").await;
    let cookies = jar.cookies(&app.base.parse().unwrap()).unwrap();
    let session_id = cookies
        .to_str()
        .unwrap()
        .strip_prefix("bo_session=")
        .unwrap()
        .to_string();
    let exists: i64 = app.world.redis.exists(&session_id).await.unwrap();
    assert_eq!(exists, 1, "the session is stored under its id");

    // Without the session record the poll still answers: the cookie alone binds the code.
    let _: i64 = app.world.redis.del(&session_id).await.unwrap();
    let poll = hx_get(&app, &b, &format!("/wait/{}/poll", code_in(&to))).await;
    assert_eq!(poll.status, StatusCode::OK);
    assert!(poll.body.contains("You are number"));
    let exists: i64 = app.world.redis.exists(&session_id).await.unwrap();
    assert_eq!(exists, 0, "the poll wrote no session");
}
