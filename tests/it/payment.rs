//! Payment through Stripe, against localstripe (`stripe_fake`): an order awaits its payment,
//! becomes paid through the signed webhook (once, however often it is delivered), is cancelled
//! when its deadline passes (its tickets back to the sale, the next buyer admitted), and money
//! that comes after that is refunded. The buyer API and the reservation poll say how an order
//! stands; the order page's pay route confirms the buyer's card.

use std::time::{Duration, Instant};

use boxoffice::payment::signature;
use boxoffice::sale::{ReservationCode, SaleId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stripe_fake::{FakeStripe, WEBHOOK_SECRET};
use crate::support::{TestApp, api_join};
use crate::tickets::buy;

/// The app taking payment through `stripe`, with `payment_secs` to pay.
async fn app_with(stripe: &FakeStripe, payment_secs: u32) -> TestApp {
    TestApp::spawn_with(|s| stripe.configure(s, payment_secs)).await
}

async fn order_state(app: &TestApp, code: &str) -> (String, Option<String>, Option<String>) {
    let code: ReservationCode = code.parse().unwrap();
    sqlx::query_as("select state, payment_intent, refund_id from orders where reservation_code = $1")
        .bind(code.token)
        .fetch_one(&app.world.db)
        .await
        .unwrap()
}

/// The kinds of mail queued, oldest first.
async fn mails(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("select kind from outbox order by id")
        .fetch_all(&app.world.db)
        .await
        .unwrap()
}

/// Waits up to 15 s for the order to reach `state`.
async fn wait_for_state(app: &TestApp, code: &str, state: &str) {
    let start = Instant::now();
    while order_state(app, code).await.0 != state {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the order never became {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the order page (which makes the PaymentIntent) and returns the intent's id.
async fn open_payment_page(app: &TestApp, client: &reqwest::Client, code: &str) -> String {
    let page = client.get(app.url(&format!("/orders/{code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Pay for your order") && html.contains("data-client-secret=\"pi_"),
        "{html}"
    );
    order_state(app, code).await.1.expect("the page made the PaymentIntent")
}

/// A `payment_intent.succeeded` delivery of `intent` (as Stripe sends it), signed with `secret`
/// at `t`.
fn delivery(intent: &Value, secret: &str, t: i64) -> (String, String) {
    let payload = json!({"id": "evt_test", "type": "payment_intent.succeeded", "data": {"object": intent}}).to_string();
    let header = signature::sign(secret, payload.as_bytes(), t);
    (payload, header)
}

async fn deliver(app: &TestApp, payload: &str, header: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(payload.to_string());
    if let Some(h) = header {
        request = request.header("stripe-signature", h);
    }
    request.send().await.unwrap().status()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An order of `quantity` tickets paid at Stripe, whose webhook reaches nobody: what the app
/// knows of the payment is up to the test.
struct PaidAtStripe {
    stripe: FakeStripe,
    app: TestApp,
    sale: SaleId,
    client: reqwest::Client,
    code: String,
    /// The PaymentIntent as Stripe has it, succeeded.
    intent: Value,
}

async fn paid_at_stripe(quantity: u8) -> PaidAtStripe {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 600).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    let code = buy(&app.base, &client, sale, quantity).await;
    let intent_id = open_payment_page(&app, &client, &code).await;
    stripe.pay(&intent_id).await;
    let intent = stripe.intent(&intent_id).await;
    assert_eq!(intent["status"], "succeeded");
    PaidAtStripe {
        stripe,
        app,
        sale,
        client,
        code,
        intent,
    }
}

#[tokio::test]
async fn paying_in_time_makes_the_order_paid_through_the_webhook_and_sends_the_tickets() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 600).await;
    stripe.send_webhooks_to(&app.base).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    let code = buy(&app.base, &client, sale, 2).await;

    // Written awaiting payment, its tickets counted, and only the "awaiting payment" mail.
    assert_eq!(order_state(&app, &code).await.0, "awaiting_payment");
    assert_eq!(app.world.pg_sold(sale).await, 2);
    assert_eq!(mails(&app).await, ["awaiting_payment"]);
    let pdf = client
        .get(app.url(&format!("/orders/{code}/tickets.pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::NOT_FOUND, "no tickets before payment");

    // The page uses Stripe.js from the configured place, which the CSP allows; the intent is
    // the order's amount, tagged with its number.
    let page = client.get(app.url(&format!("/orders/{code}"))).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains(&format!("script-src 'self' {}", stripe.base)), "{csp}");
    assert!(page.text().await.unwrap().contains(&stripe.js_url()));
    let intent_id = order_state(&app, &code).await.1.unwrap();
    let intent = stripe.intent(&intent_id).await;
    assert_eq!(intent["amount"], 2 * 2500);
    assert!(intent["metadata"]["order"].as_str().unwrap().starts_with("BO-"));

    // Paid at Stripe: the webhook alone (the page is not opened again) makes it paid.
    stripe.pay(&intent_id).await;
    wait_for_state(&app, &code, "paid").await;
    assert_eq!(mails(&app).await, ["awaiting_payment", "tickets"]);
    let pdf = client
        .get(app.url(&format!("/orders/{code}/tickets.pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(app.world.pg_sold(sale).await, 2);
}

#[tokio::test]
async fn a_lost_webhook_loses_no_payment_the_buyers_return_applies_it() {
    let PaidAtStripe {
        stripe: _stripe,
        app,
        client,
        code,
        ..
    } = paid_at_stripe(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(order_state(&app, &code).await.0, "awaiting_payment");

    let page = client.get(app.url(&format!("/orders/{code}"))).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Your order is paid"));
    assert_eq!(order_state(&app, &code).await.0, "paid");
    assert_eq!(mails(&app).await, ["awaiting_payment", "tickets"]);
}

#[tokio::test]
async fn a_webhook_delivered_many_times_at_once_pays_once() {
    let PaidAtStripe {
        stripe: _stripe,
        app,
        sale,
        code,
        intent,
        ..
    } = paid_at_stripe(2).await;

    // Ten deliveries of the same event at the same moment, then two more later.
    let (payload, header) = delivery(&intent, WEBHOOK_SECRET, now());
    let all = futures::future::join_all((0..10).map(|_| deliver(&app, &payload, Some(&header)))).await;
    assert!(all.iter().all(|s| *s == StatusCode::OK), "{all:?}");
    for _ in 0..2 {
        assert_eq!(deliver(&app, &payload, Some(&header)).await, StatusCode::OK);
    }
    assert_eq!(order_state(&app, &code).await.0, "paid");
    assert_eq!(mails(&app).await, ["awaiting_payment", "tickets"], "one tickets mail");
    assert_eq!(app.world.pg_sold(sale).await, 2);
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_is_400_and_changes_nothing() {
    let PaidAtStripe {
        stripe: _stripe,
        app,
        code,
        intent,
        ..
    } = paid_at_stripe(1).await;

    let (payload, good) = delivery(&intent, WEBHOOK_SECRET, now());
    let (_, other_secret) = delivery(&intent, "whsec_someone_else", now());
    let (_, stale) = delivery(&intent, WEBHOOK_SECRET, now() - signature::TOLERANCE_SECS - 60);
    let tampered = payload.replace("payment_intent.succeeded", "payment_intent.succeeded ");
    let zeros = format!("t={},v1={}", now(), "0".repeat(64));
    for (body, header) in [
        (payload.as_str(), None),
        (payload.as_str(), Some(other_secret.as_str())),
        (payload.as_str(), Some(stale.as_str())),
        (payload.as_str(), Some(zeros.as_str())),
        (payload.as_str(), Some("garbage")),
        (tampered.as_str(), Some(good.as_str())),
    ] {
        assert_eq!(deliver(&app, body, header).await, StatusCode::BAD_REQUEST, "{header:?}");
    }
    assert_eq!(order_state(&app, &code).await.0, "awaiting_payment");
    assert_eq!(mails(&app).await, ["awaiting_payment"]);

    // The same delivery, rightly signed, is taken: the refusals above were the signature's.
    assert_eq!(deliver(&app, &payload, Some(&good)).await, StatusCode::OK);
    assert_eq!(order_state(&app, &code).await.0, "paid");
}

/// The state the buyer API reports for a reservation.
async fn poll(app: &TestApp, client: &reqwest::Client, code: &str) -> String {
    poll_view(app, client, code).await["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The buyer's reservation poll, as JSON.
async fn poll_view(app: &TestApp, client: &reqwest::Client, code: &str) -> Value {
    client
        .get(app.url(&format!("/api/v1/reservations/{code}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The buyer presses *Cancel this order* on the order page.
async fn cancel_on_the_page(app: &TestApp, client: &reqwest::Client, code: &str) -> StatusCode {
    client
        .post(app.url(&format!("/orders/{code}/cancel")))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn an_order_not_paid_in_time_is_cancelled_its_tickets_go_back_and_the_next_buyer_is_admitted() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 2).await;
    let sale_record = app.world.sale(3, 60).await;
    let sale: SaleId = sale_record.sale_id();

    // A orders two of three and does not pay; B holds the third; C waits in line.
    let a = app.client();
    let code_a = buy(&app.base, &a, sale, 2).await;
    let b = app.client();
    assert_eq!(api_join(&app.base, &b, sale, 1).await["state"], "admitted");
    let c = app.client();
    let joined_c = api_join(&app.base, &c, sale, 1).await;
    assert_eq!(joined_c["state"], "waiting", "{joined_c}");
    let code_c = joined_c["code"].as_str().unwrap().to_string();

    wait_for_state(&app, &code_a, "cancelled").await;
    assert_eq!(mails(&app).await, ["awaiting_payment", "cancelled"]);
    assert_eq!(app.world.pg_sold(sale).await, 0, "the sale's sold counter went down");
    let event_sold: i32 = sqlx::query_scalar("select sold from events where id = $1")
        .bind(sale_record.event_id)
        .fetch_one(&app.world.db)
        .await
        .unwrap();
    assert_eq!(event_sold, 0, "the event's seats went back too");

    // C is admitted at its next poll, without waiting for a reconcile.
    assert_eq!(poll(&app, &c, &code_c).await, "admitted");
    let figures = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((figures.sold, figures.held), (0, 2));

    // The reconcile agrees: the cancelled order counts nothing.
    app.world.sales.sync(sale).await.unwrap();
    let figures = app.world.sales.figures(sale).await.unwrap();
    assert_eq!((figures.sold, figures.held), (0, 2));

    // The cancelled order's page says so and its tickets are gone.
    let page = a.get(app.url(&format!("/orders/{code_a}"))).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("This order was cancelled"));
    let pdf = a
        .get(app.url(&format!("/orders/{code_a}/tickets.pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_buyer_cancelling_gives_the_tickets_back_at_once() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 600).await;
    let sale = app.world.sale(2, 60).await.sale_id();
    let a = app.client();
    let code_a = buy(&app.base, &a, sale, 2).await;
    assert_eq!(cancel_on_the_page(&app, &a, &code_a).await, StatusCode::SEE_OTHER);
    assert_eq!(order_state(&app, &code_a).await.0, "cancelled");
    assert_eq!(app.world.pg_sold(sale).await, 0);
    // Another buyer gets both tickets now.
    let b = app.client();
    assert_eq!(api_join(&app.base, &b, sale, 2).await["state"], "admitted");
    // A second cancel changes nothing.
    cancel_on_the_page(&app, &a, &code_a).await;
    assert_eq!(app.world.pg_sold(sale).await, 0);
    assert_eq!(mails(&app).await, ["awaiting_payment", "cancelled"]);
}

#[tokio::test]
async fn a_payment_after_cancellation_is_refunded_never_a_ticket() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 2).await;
    stripe.send_webhooks_to(&app.base).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    let code = buy(&app.base, &client, sale, 2).await;
    let intent = open_payment_page(&app, &client, &code).await;
    wait_for_state(&app, &code, "cancelled").await;

    // The buyer's card is charged only now, after the deadline.
    stripe.pay(&intent).await;
    let start = Instant::now();
    while order_state(&app, &code).await.2.is_none() {
        assert!(start.elapsed() < Duration::from_secs(15), "no refund");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refunds = stripe.refunds().await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["payment_intent"], intent.as_str());
    assert_eq!(refunds[0]["amount"], 2 * 2500);
    assert_eq!(order_state(&app, &code).await.0, "cancelled");
    assert_eq!(app.world.pg_sold(sale).await, 0);
    assert_eq!(mails(&app).await, ["awaiting_payment", "cancelled"], "no tickets mail");
}

#[tokio::test]
async fn the_organizer_sees_awaiting_paid_and_cancelled_orders_and_revenue_from_paid_ones() {
    use boxoffice::sale::{Owner, SaleId};

    use crate::admin_support::{AdminApp, event_form, pairs};

    let stripe = FakeStripe::start().await;
    let app = AdminApp::spawn_with(|s| stripe.configure(s, 600)).await;
    let o = app.organizer().await;
    let event = o
        .browser
        .create_event(&pairs(&event_form(&[
            ("capacity", Some("10")),
            ("price", Some("30.00")),
        ])))
        .await;
    let sale = o
        .browser
        .create_sale(
            event,
            &[
                ("capacity", "10"),
                ("opens_at", ""),
                ("hold_minutes", "8"),
                ("max_active", "0"),
            ],
        )
        .await;
    let sales = &app.state.sales;
    let mut orders = Vec::new();
    for _ in 0..3 {
        let owner = Owner::random();
        let held = sales
            .join(SaleId(sale), &owner, sales.quantity(1).unwrap())
            .await
            .unwrap();
        orders.push(sales.confirm(&held.code, &owner, &crate::support::ada()).await.unwrap());
    }
    assert!(orders.iter().all(|o| o.state == "awaiting_payment"));
    let db = &app.state.db;
    boxoffice::db::orders::mark_paid(db, orders[0].id).await.unwrap();
    let payments = app.state.payments.as_ref().unwrap();
    assert!(payments.cancel(db, sales, &orders[1]).await.unwrap());

    let f = o.browser.page(&format!("/admin/sales/{sale}/figures")).await.1;
    let figure = |name: &str| crate::admin_sales::figure(&f, name);
    assert_eq!(
        [
            figure("orders"),
            figure("awaiting_payment"),
            figure("paid"),
            figure("cancelled"),
            figure("revenue")
        ],
        ["3", "1", "1", "1", "30.00 EUR"]
    );

    let (status, f) = o.api.get(&format!("/sales/{sale}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        [
            &f["orders_awaiting_payment"],
            &f["orders_paid"],
            &f["orders_cancelled"],
            &f["revenue_minor"],
            &f["sold"]
        ],
        [&json!(1), &json!(1), &json!(1), &json!(3000), &json!(2)]
    );
    let (_, page) = o.api.get(&format!("/sales/{sale}/orders?per_page=10")).await;
    let mut states: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["state"].as_str().unwrap())
        .collect();
    states.sort();
    assert_eq!(states, ["awaiting_payment", "cancelled", "paid"]);

    let csv = o
        .browser
        .get(&format!("/admin/sales/{sale}/orders.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("number,state,placed_at,"), "{csv}");
    assert!(csv.contains(&format!("{},paid,", orders[0].number)), "{csv}");
    assert!(csv.contains(&format!("{},cancelled,", orders[1].number)), "{csv}");
}

#[tokio::test]
async fn the_buyer_is_mailed_that_the_order_awaits_payment_and_then_that_it_was_cancelled() {
    use crate::smtp_sink::SmtpSink;

    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(|s| {
        stripe.configure(s, 2);
        s.smtp_url = Some(boxoffice::config::Secret::new(smtp.url()));
        s.public_url = "https://tickets.example".into();
    })
    .await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let code = buy(&app.base, &app.client(), sale, 2).await;
    wait_for_state(&app, &code, "cancelled").await;

    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    let subjects: Vec<&str> = mails.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects[0].contains("received, awaiting payment"), "{subjects:?}");
    assert!(subjects[1].contains("cancelled"), "{subjects:?}");
    for mail in &mails {
        assert_eq!(mail["rcpt_tos"], json!(["grace@example.com"]));
        let text = crate::mail::part(mail, "text/plain")["text"].as_str().unwrap();
        assert!(text.contains("https://tickets.example/orders/"), "{text}");
    }
}

#[tokio::test]
async fn a_payment_and_a_cancellation_at_the_same_moment_leave_one_outcome() {
    use boxoffice::db::orders::{self, Payment, Placement};
    let w = std::sync::Arc::new(crate::support::World::new().await);
    let sale = w.sale(100, 60).await.sale_id();
    for _ in 0..20 {
        let placed = orders::place(
            &w.db,
            sale,
            uuid::Uuid::new_v4(),
            2,
            &crate::support::ada(),
            Some(Duration::from_secs(600)),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let Placement::Placed(order) = placed else {
            panic!("{placed:?}")
        };
        // The webhook's payment and the deadline's cancellation, released together.
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let paying = tokio::spawn({
            let (w, start) = (w.clone(), start.clone());
            async move {
                start.wait().await;
                orders::mark_paid(&w.db, order.id).await.unwrap()
            }
        });
        let cancelling = tokio::spawn({
            let (w, start) = (w.clone(), start.clone());
            async move {
                start.wait().await;
                orders::cancel(&w.db, order.id).await.unwrap()
            }
        });
        let (paid, cancelled) = (paying.await.unwrap(), cancelling.await.unwrap());
        let state = orders::find(&w.db, order.id).await.unwrap().unwrap().state;
        match (&paid, &cancelled) {
            // Paid first: the cancellation found nothing awaiting payment.
            (Payment::Paid, None) => assert_eq!(state, "paid"),
            // Cancelled first: the payment is told so, and must be refunded.
            (Payment::Cancelled, Some(_)) => assert_eq!(state, "cancelled"),
            other => panic!("both or neither won: {other:?}"),
        }
    }
    // Every paid order still holds its tickets in the sale's count; no cancelled one does.
    let (sold, held): (i64, i64) = sqlx::query_as(
        "select (select sold from ticket_sales where id = $1)::bigint,
                (select coalesce(sum(quantity), 0) from orders where sale_id = $1 and state = 'paid')::bigint",
    )
    .bind(sale.0)
    .fetch_one(&w.db)
    .await
    .unwrap();
    assert_eq!(sold, held);
}

/// The buyer API's order of a reservation: its status and body.
async fn api_order(app: &TestApp, client: &reqwest::Client, code: &str) -> (StatusCode, Value) {
    let resp = client
        .get(app.url(&format!("/api/v1/reservations/{code}/order")))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_buyer_api_tells_how_an_order_stands_and_how_to_pay_it() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 600).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    let joined = api_join(&app.base, &client, sale, 2).await;
    let code = joined["code"].as_str().unwrap().to_string();
    let before = chrono::Utc::now();
    let resp = client
        .post(app.url(&format!("/api/v1/reservations/{code}/order")))
        .json(&json!({"name": "Grace Hopper", "email": "grace@example.com", "age": 45, "gender": "female"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let made: Value = resp.json().await.unwrap();
    let order = &made["order"];

    // Awaiting payment: the amount, the deadline, and both ways to pay.
    assert_eq!(order["state"], "awaiting_payment", "{made}");
    assert_eq!(order["total"], 2 * 2500);
    let due: chrono::DateTime<chrono::Utc> = order["payment_due_at"].as_str().unwrap().parse().unwrap();
    let window = (due - before).num_seconds();
    assert!((595..=605).contains(&window), "due in {window} s");
    let payment = &order["payment"];
    assert_eq!(payment["page_url"], format!("/orders/{code}"));
    assert_eq!(payment["publishable_key"], crate::stripe_fake::PUBLISHABLE_KEY);
    let intent_id = order_state(&app, &code).await.1.expect("the order's intent is made");
    let intent = stripe.intent(&intent_id).await;
    assert_eq!(payment["client_secret"], intent["client_secret"], "{made}");
    assert_eq!(intent["amount"], order["total"]);

    // The poll says it is an order awaiting payment, and where to see it; the order read
    // again is the same one intent; another session sees nothing; no tickets yet.
    let polled = poll_view(&app, &client, &code).await;
    assert_eq!(
        (&polled["state"], &polled["order_state"], &polled["order_url"]),
        (
            &json!("confirmed"),
            &json!("awaiting_payment"),
            &json!(format!("/orders/{code}"))
        ),
        "{polled}"
    );
    let (s, again) = api_order(&app, &client, &code).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["order"]["payment"]["client_secret"], payment["client_secret"]);
    let (s, _) = api_order(&app, &app.client(), &code).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let pdf = |client: reqwest::Client| {
        let url = app.url(&format!("/api/v1/reservations/{code}/tickets.pdf"));
        async move { client.get(url).send().await.unwrap().status() }
    };
    assert_eq!(
        pdf(client.clone()).await,
        StatusCode::NOT_FOUND,
        "no tickets before payment"
    );

    // Paid at Stripe, its webhook lost: reading the order applies the payment.
    stripe.pay(&intent_id).await;
    let (s, paid) = api_order(&app, &client, &code).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(paid["order"]["state"], "paid", "{paid}");
    assert!(paid["order"]["payment"].is_null(), "{paid}");
    assert_eq!(poll_view(&app, &client, &code).await["order_state"], "paid");
    assert_eq!(pdf(client.clone()).await, StatusCode::OK);

    // The document describes the states and the way to pay.
    let doc: Value = client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/reservations/{code}/order"]["get"].is_object());
    let schemas = &doc["components"]["schemas"];
    let order_schema = schemas["OrderView"]["properties"].to_string();
    for word in ["awaiting_payment", "paid", "cancelled", "payment_due_at"] {
        assert!(order_schema.contains(word), "{word} in {order_schema}");
    }
    let payment_schema = schemas["PaymentView"]["properties"].to_string();
    for word in ["client_secret", "publishable_key", "page_url"] {
        assert!(payment_schema.contains(word), "{word} in {payment_schema}");
    }
}

#[tokio::test]
async fn after_a_cancellation_the_poll_and_the_pages_say_the_order_was_cancelled() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 2).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    // A lets the deadline pass; B gives up at once.
    let a = app.client();
    let code_a = buy(&app.base, &a, sale, 1).await;
    let b = app.client();
    let code_b = buy(&app.base, &b, sale, 1).await;
    assert_eq!(cancel_on_the_page(&app, &b, &code_b).await, StatusCode::SEE_OTHER);
    wait_for_state(&app, &code_a, "cancelled").await;

    for (client, code) in [(&a, &code_a), (&b, &code_b)] {
        let order_url = format!("/orders/{code}");
        let polled = poll_view(&app, client, code).await;
        assert_eq!(
            (
                &polled["state"],
                &polled["order_state"],
                &polled["order_url"],
                &polled["poll_after_ms"]
            ),
            (&json!("cancelled"), &json!("cancelled"), &json!(order_url), &json!(0)),
            "{polled}"
        );
        let (s, order) = api_order(&app, client, code).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(order["order"]["state"], "cancelled");
        assert!(order["order"]["payment"].is_null());

        // The pages: the waiting room and its poll send the buyer to the order, which says it
        // was cancelled.
        let room = client.get(app.url(&format!("/wait/{code}"))).send().await.unwrap();
        assert_eq!(room.status(), StatusCode::SEE_OTHER);
        assert_eq!(room.headers()["location"], order_url.as_str());
        let hx = client
            .get(app.url(&format!("/wait/{code}/poll")))
            .header("hx-request", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(hx.headers()["hx-redirect"], order_url.as_str());
        let page = client
            .get(app.url(&order_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("This order was cancelled"), "{page}");
    }
}

/// `POST /orders/{code}/pay`, as the order page's script sends it.
async fn pay_on_the_page(app: &TestApp, client: &reqwest::Client, code: &str, method: &str) -> (StatusCode, Value) {
    let resp = client
        .post(app.url(&format!("/orders/{code}/pay")))
        .form(&[("payment_method", method)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_page_pays_with_the_card_entered_and_refuses_what_is_no_card() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 600).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    let code = buy(&app.base, &client, sale, 1).await;

    // Text that names no card never reaches Stripe.
    for text in ["", "tok_visa", "pm_1&amount=1", "card_../x"] {
        let (s, body) = pay_on_the_page(&app, &client, &code, text).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}: {body}");
    }
    // Another session cannot pay (or see) the order.
    let good = stripe.card("4242424242424242").await;
    let (s, _) = pay_on_the_page(&app, &app.client(), &code, &good).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(order_state(&app, &code).await.0, "awaiting_payment");

    // A declined card (another buyer's: localstripe takes no second card on an intent whose
    // charge failed): Stripe's words, and the order still awaits payment.
    let declined_buyer = app.client();
    let declined_code = buy(&app.base, &declined_buyer, sale, 1).await;
    let declined = stripe.card("4000000000000341").await;
    let (s, body) = pay_on_the_page(&app, &declined_buyer, &declined_code, &declined).await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(order_state(&app, &declined_code).await.0, "awaiting_payment");

    // A good card pays the order at once, without waiting for the webhook.
    let (s, body) = pay_on_the_page(&app, &client, &code, &good).await;
    assert_eq!((s, &body["status"]), (StatusCode::OK, &json!("succeeded")), "{body}");
    assert_eq!(order_state(&app, &code).await.0, "paid");
    assert_eq!(mails(&app).await, ["awaiting_payment", "awaiting_payment", "tickets"]);
    // Paid: there is nothing left to pay.
    let (s, body) = pay_on_the_page(&app, &client, &code, &good).await;
    assert_eq!((s, &body["state"]), (StatusCode::CONFLICT, &json!("paid")), "{body}");
    let intent = stripe.intent(&order_state(&app, &code).await.1.unwrap()).await;
    assert_eq!(intent["amount"], 2500);
}

#[tokio::test]
async fn with_stripe_away_the_order_still_reads_and_the_page_says_to_try_again() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 600).await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let client = app.client();
    let code = buy(&app.base, &client, sale, 1).await;
    let card = stripe.card("4242424242424242").await;
    // Stripe stops answering (localstripe stopped: its port refuses connections).
    drop(stripe);

    let (s, order) = api_order(&app, &client, &code).await;
    assert_eq!(s, StatusCode::OK);
    let order = &order["order"];
    assert_eq!(order["state"], "awaiting_payment");
    assert_eq!(order["payment"]["page_url"], format!("/orders/{code}"));
    assert!(order["payment"]["client_secret"].is_null(), "{order}");
    let page = client.get(app.url(&format!("/orders/{code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Payment is unavailable right now"));
    let (s, body) = pay_on_the_page(&app, &client, &code, &card).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(order_state(&app, &code).await.0, "awaiting_payment");
}

#[tokio::test]
async fn the_buyer_api_cancels_an_unpaid_order_and_never_a_paid_one() {
    let stripe = FakeStripe::start().await;
    let app = app_with(&stripe, 600).await;
    let sale = app.world.sale(3, 60).await.sale_id();
    let cancel = |client: reqwest::Client, code: String| {
        let url = app.url(&format!("/api/v1/reservations/{code}/order/cancel"));
        async move {
            let resp = client.post(url).send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };

    // An order awaiting payment: cancelled, its tickets back on sale; a second call, and
    // another session's, change nothing.
    let a = app.client();
    let code_a = buy(&app.base, &a, sale, 2).await;
    assert_eq!(app.world.pg_sold(sale).await, 2);
    let (s, _) = cancel(app.client(), code_a.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(order_state(&app, &code_a).await.0, "awaiting_payment");
    for _ in 0..2 {
        let (s, body) = cancel(a.clone(), code_a.clone()).await;
        assert_eq!(
            (s, &body["order"]["state"]),
            (StatusCode::OK, &json!("cancelled")),
            "{body}"
        );
        assert!(body["order"]["payment"].is_null());
    }
    assert_eq!(app.world.pg_sold(sale).await, 0);
    assert_eq!(mails(&app).await, ["awaiting_payment", "cancelled"]);

    // A paid order stays paid.
    let b = app.client();
    let code_b = buy(&app.base, &b, sale, 1).await;
    let intent = order_state(&app, &code_b).await.1.unwrap();
    stripe.pay(&intent).await;
    let (s, body) = cancel(b.clone(), code_b.clone()).await;
    assert_eq!((s, &body["order"]["state"]), (StatusCode::OK, &json!("paid")), "{body}");
    assert_eq!(order_state(&app, &code_b).await.0, "paid");
    assert_eq!(app.world.pg_sold(sale).await, 1);
}
