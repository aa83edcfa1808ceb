//! Returns: a buyer offers tickets of a confirmed (or paid) order back; they go down the
//! waitlist in order; the order that buys them takes them from the returning buyer in its own
//! transaction (refunded through Stripe when paid), so a seat is never held by two valid
//! tickets, nor by none; a withdrawal racing the purchase leaves exactly one winner.

use std::time::{Duration, Instant};

use boxoffice::db;
use boxoffice::db::tickets::CheckIn;
use boxoffice::sale::waitlist::{WaitlistEmail, WaitlistState};
use boxoffice::sale::{Owner, ReservationCode, ReservationState, SaleId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::buyer_pages::{get, post};
use crate::redis_servers;
use crate::stripe_fake::FakeStripe;
use crate::support::{TestApp, World, ada, api_join, test_settings};
use crate::tickets::{buy, ticket_codes};

/// Joins the waitlist of `sale` for `quantity` through the API; the entry's code.
async fn waitlist(app: &TestApp, client: &reqwest::Client, sale: SaleId, quantity: u8) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let url = app.url(&format!("/api/v1/sales/{sale}/waitlist"));
    let (status, entry) = call(client.post(url).json(&json!({ "quantity": quantity, "email": email }))).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    entry["code"].as_str().unwrap().to_string()
}

async fn entry_state(app: &TestApp, client: &reqwest::Client, code: &str) -> String {
    let entry = call(client.get(app.url(&format!("/api/v1/waitlist/{code}")))).await.1;
    entry["state"].as_str().unwrap().to_string()
}

async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = request.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `POST /api/v1/reservations/{code}/order/return` with `body`.
async fn offer_return(app: &TestApp, client: &reqwest::Client, code: &str, body: Value) -> (StatusCode, Value) {
    let url = app.url(&format!("/api/v1/reservations/{code}/order/return"));
    call(client.post(url).json(&body)).await
}

/// `DELETE /api/v1/reservations/{code}/order/return`.
async fn withdraw(app: &TestApp, client: &reqwest::Client, code: &str) -> (StatusCode, Value) {
    let url = app.url(&format!("/api/v1/reservations/{code}/order/return"));
    call(client.delete(url)).await
}

/// Orders the offer of waitlist entry `code` through the API.
async fn order(app: &TestApp, client: &reqwest::Client, code: &str) -> (StatusCode, Value) {
    let url = app.url(&format!("/api/v1/reservations/{code}/order"));
    let body = json!({"name": "Grace Hopper", "email": "grace@example.com", "age": 45, "gender": "female"});
    call(client.post(url).json(&body)).await
}

async fn order_of(app: &TestApp, client: &reqwest::Client, code: &str) -> Value {
    let url = app.url(&format!("/api/v1/reservations/{code}/order"));
    call(client.get(url)).await.1["order"].clone()
}

async fn allow_returns(w: &World, sale: SaleId) {
    assert!(db::returns::set_allowed(&w.db, sale, true).await.unwrap());
}

/// Tickets of the sale that would admit their holder at the door: never more, nor fewer, than
/// the seats sold.
async fn valid_tickets(w: &World, sale: SaleId) -> i64 {
    sqlx::query_scalar(
        "select count(*) from tickets t join orders o on o.id = t.order_id
         where o.sale_id = $1 and o.state in ('confirmed', 'paid')
           and t.return_state is distinct from 'returned'",
    )
    .bind(sale.0)
    .fetch_one(&w.db)
    .await
    .unwrap()
}

async fn event_sold(w: &World, sale: SaleId) -> i32 {
    sqlx::query_scalar("select e.sold from events e join ticket_sales s on s.event_id = e.id where s.id = $1")
        .bind(sale.0)
        .fetch_one(&w.db)
        .await
        .unwrap()
}

async fn door(w: &World, sale: SaleId, code: &str) -> bool {
    matches!(
        db::tickets::check_in(&w.db, sale, code).await.unwrap(),
        CheckIn::Admitted(_)
    )
}

#[tokio::test]
async fn a_return_goes_down_the_waitlist_and_the_buyers_order_takes_the_returned_tickets() {
    let app = TestApp::spawn().await;
    let w = &app.world;
    let sale = w.sale(3, 60).await.sale_id();
    allow_returns(w, sale).await;
    let returner = app.client();
    let mine = buy(&app.base, &returner, sale, 3).await;
    // Sold out: two wait on the waitlist, a pair first.
    let (pair, single) = (app.client(), app.client());
    let pair_code = waitlist(&app, &pair, sale, 2).await;
    let single_code = waitlist(&app, &single, sale, 1).await;

    // The returner offers two: the pair, first in line, gets the offer at once.
    let (status, returned) = offer_return(&app, &returner, &mine, json!({"tickets": 2})).await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(
        (
            returned["order"]["state"].as_str(),
            returned["order"]["returning"].as_i64()
        ),
        (Some("confirmed"), Some(2))
    );
    assert_eq!(entry_state(&app, &pair, &pair_code).await, "offered");
    assert_eq!(entry_state(&app, &single, &single_code).await, "waiting");
    // Until someone buys them they stay the returner's: nothing changes in Postgres's count.
    assert_eq!((w.pg_sold(sale).await, valid_tickets(w, sale).await), (3, 3));
    let codes = ticket_codes(&w.db, &mine).await;

    // The pair buys: its order takes the two returned tickets (the highest-numbered) in the
    // same transaction; the sale still counts three, the event too, and three tickets admit.
    let (status, bought) = order(&app, &pair, &pair_code).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let mine_now = order_of(&app, &returner, &mine).await;
    assert_eq!(
        (
            mine_now["state"].as_str(),
            mine_now["returning"].as_i64(),
            mine_now["returned"].as_i64()
        ),
        (Some("confirmed"), Some(0), Some(2)),
        "{mine_now}"
    );
    assert_eq!((w.pg_sold(sale).await, event_sold(w, sale).await), (3, 3));
    assert_eq!(valid_tickets(w, sale).await, 3);
    assert!(
        !door(w, sale, &codes[2]).await,
        "a returned ticket is refused at the door"
    );
    assert!(!door(w, sale, &codes[1]).await);
    let pair_tickets = ticket_codes(&w.db, &pair_code).await;
    assert!(door(w, sale, &pair_tickets[0]).await);

    // Too late to withdraw: they are bought.
    let (status, refused) = withdraw(&app, &returner, &mine).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::CONFLICT, Some("no_return_pending")),
        "{refused}"
    );

    // The last ticket goes the same way, through the order page; the order is then returned.
    let page = post(&app, &returner, &format!("/orders/{mine}/return"), &[("tickets", "1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(entry_state(&app, &single, &single_code).await, "offered");
    assert_eq!(order(&app, &single, &single_code).await.0, StatusCode::CREATED);
    assert_eq!(order_of(&app, &returner, &mine).await["state"], "returned");
    let html = get(&app, &returner, &format!("/orders/{mine}")).await.body;
    assert!(html.contains("This order was returned"), "{html}");
    assert!(!door(w, sale, &codes[0]).await);
    assert_eq!((w.pg_sold(sale).await, valid_tickets(w, sale).await), (3, 3));
    // Redis agrees after a sync: nothing free, nothing held.
    w.sales.sync(sale).await.unwrap();
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (3, 0));
}

#[tokio::test]
async fn a_withdrawal_racing_the_purchase_of_the_returned_tickets_has_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let w = &app.world;
    let (mut bought, mut withdrawn) = (0, 0);
    for round in 0..8 {
        let sale = w.sale(2, 60).await.sale_id();
        allow_returns(w, sale).await;
        let returner = app.client();
        let mine = buy(&app.base, &returner, sale, 2).await;
        let fan = app.client();
        let entry = waitlist(&app, &fan, sale, 2).await;
        assert_eq!(
            offer_return(&app, &returner, &mine, json!({"tickets": 2})).await.0,
            StatusCode::OK
        );
        assert_eq!(entry_state(&app, &fan, &entry).await, "offered");

        // The fan's order and the returner's withdrawal, sent at the same moment.
        let ((ordered, answer), (withdrew, _)) =
            tokio::join!(order(&app, &fan, &entry), withdraw(&app, &returner, &mine));
        let mine_now = order_of(&app, &returner, &mine).await;
        match (ordered, withdrew) {
            (StatusCode::CREATED, StatusCode::CONFLICT) => {
                bought += 1;
                assert_eq!(mine_now["state"], "returned", "round {round}: {mine_now}");
            }
            (StatusCode::CONFLICT, StatusCode::OK) => {
                withdrawn += 1;
                assert_eq!(answer["error"], "sold_out", "round {round}: {answer}");
                assert_eq!(
                    (mine_now["state"].as_str(), mine_now["returning"].as_i64()),
                    (Some("confirmed"), Some(0)),
                    "round {round}"
                );
                let code: ReservationCode = entry.parse().unwrap();
                assert!(
                    db::orders::find_by_reservation(&w.db, code.token)
                        .await
                        .unwrap()
                        .is_none()
                );
            }
            other => panic!("round {round}: not exactly one winner: {other:?} {answer}"),
        }
        // Never both valid, never neither: two seats, two valid tickets.
        assert_eq!(
            (w.pg_sold(sale).await, valid_tickets(w, sale).await),
            (2, 2),
            "round {round}"
        );
    }
    assert_eq!(bought + withdrawn, 8);
}

#[tokio::test]
async fn a_return_refused_changes_nothing_and_returning_twice_is_refused() {
    let app = TestApp::spawn().await;
    let w = &app.world;
    let sale = w.sale(4, 60).await.sale_id();
    let returner = app.client();
    let mine = buy(&app.base, &returner, sale, 2).await;
    let sold_in_redis = w.sales.figures(sale).await.unwrap().sold;

    // The organizer takes no returns (the default): 409, nothing offered.
    let (status, refused) = offer_return(&app, &returner, &mine, json!({"tickets": 1})).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::CONFLICT, Some("returns_not_allowed"))
    );
    assert_eq!(order_of(&app, &returner, &mine).await["returning"], 0);
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, sold_in_redis);

    allow_returns(w, sale).await;
    // Another buyer's order is no order of this session: 404, from the API and the page.
    let stranger = app.client();
    assert_eq!(api_join(&app.base, &stranger, sale, 1).await["state"], "admitted");
    assert_eq!(
        offer_return(&app, &stranger, &mine, json!({"tickets": 1})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(withdraw(&app, &stranger, &mine).await.0, StatusCode::NOT_FOUND);
    let page = post(&app, &stranger, &format!("/orders/{mine}/return"), &[("tickets", "1")]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // Counts the order does not have, or no count: 422.
    for bad in [
        json!({"tickets": 0}),
        json!({"tickets": 3}),
        json!({"tickets": "two"}),
        json!({}),
    ] {
        let (status, answer) = offer_return(&app, &returner, &mine, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {answer}");
    }
    assert_eq!(order_of(&app, &returner, &mine).await["returning"], 0);
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, sold_in_redis);

    // Once: a second return while the first is pending is a 409 and changes nothing.
    assert_eq!(
        offer_return(&app, &returner, &mine, json!({"tickets": 1})).await.0,
        StatusCode::OK
    );
    let (status, again) = offer_return(&app, &returner, &mine, json!({"tickets": 2})).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::CONFLICT, Some("return_pending"))
    );
    assert_eq!(order_of(&app, &returner, &mine).await["returning"], 1);
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, sold_in_redis - 1);
    // Withdrawn: the ticket is counted as sold again; a second withdrawal is a 409.
    assert_eq!(withdraw(&app, &returner, &mine).await.0, StatusCode::OK);
    assert_eq!(withdraw(&app, &returner, &mine).await.0, StatusCode::CONFLICT);
    assert_eq!(order_of(&app, &returner, &mine).await["returning"], 0);
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, sold_in_redis);
    assert_eq!(valid_tickets(w, sale).await, 2);
}

#[tokio::test]
async fn redis_restarted_mid_offer_of_a_return_loses_nothing_committed() {
    let mut redis = redis_servers::Server::start();
    let mut settings = test_settings();
    settings.redis_url = redis.url();
    let w = World::with_settings(settings).await;
    let sale = w.sale(2, 60).await.sale_id();
    allow_returns(&w, sale).await;
    let returner = Owner::random();
    let r = w
        .sales
        .join(sale, &returner, w.sales.quantity(2).unwrap())
        .await
        .unwrap();
    let mine = w.sales.confirm(&r.code, &returner, &ada()).await.unwrap();
    let fan = Owner::random();
    let q = w.sales.quantity(2).unwrap();
    assert_eq!(
        w.sales.join(sale, &fan, q).await.unwrap().state,
        ReservationState::SoldOut
    );
    let email = WaitlistEmail::parse("fan@example.com").unwrap();
    let entry = w.sales.join_waitlist(sale, &fan, q, &email).await.unwrap();
    assert_eq!(w.sales.return_tickets(&mine, 2).await.unwrap(), 2);
    let offer = w.sales.waitlist_status(&entry.code, &fan).await.unwrap();
    assert_eq!(offer.state, WaitlistState::Offered);
    w.sales.record_waitlist(sale).await.unwrap();

    redis.restart();

    // The rebuild counts the return as unsold (Postgres has it), so the offer comes back as
    // the hold it was, until its own expiry; nobody else gets those tickets.
    let again = w.sales.waitlist_status(&entry.code, &fan).await.unwrap();
    assert_eq!(
        (again.state, again.offer_expires_at),
        (WaitlistState::Offered, offer.offer_expires_at)
    );
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (0, 2));
    let late = Owner::random();
    let late = (
        w.sales.join(sale, &late, w.sales.quantity(1).unwrap()).await.unwrap(),
        late,
    );
    assert_eq!(late.0.state, ReservationState::Waiting, "behind the offer, not past it");
    // The fan buys: the returned tickets change hands in one transaction; nothing oversold,
    // and the newcomer learns the sale is sold out.
    w.sales.confirm(&entry.code, &fan, &ada()).await.unwrap();
    assert_eq!(
        w.sales.status(&late.0.code, &late.1).await.unwrap().state,
        ReservationState::SoldOut
    );
    assert_eq!(w.pg_sold(sale).await, 2);
    assert_eq!(valid_tickets(&w, sale).await, 2);
    let returned = db::orders::find(&w.db, mine.id).await.unwrap().unwrap();
    assert_eq!(returned.state, "returned");
    drop(redis);
}

#[tokio::test]
async fn a_paid_order_whose_returned_tickets_are_bought_is_refunded_through_stripe() {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with(|s| stripe.configure(s, 600)).await;
    stripe.send_webhooks_to(&app.base).await;
    let w = &app.world;
    let sale = w.sale(2, 60).await.sale_id();
    allow_returns(w, sale).await;
    let returner = app.client();
    let mine = buy(&app.base, &returner, sale, 2).await;
    // An order awaiting payment cannot be returned; once paid it can.
    let (status, _) = offer_return(&app, &returner, &mine, json!({"tickets": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        get(&app, &returner, &format!("/orders/{mine}")).await.status,
        StatusCode::OK
    );
    let code: ReservationCode = mine.parse().unwrap();
    let intent = db::orders::find_by_reservation(&w.db, code.token)
        .await
        .unwrap()
        .unwrap()
        .payment_intent
        .expect("the page made the PaymentIntent");
    stripe.pay(&intent).await;
    let start = Instant::now();
    while order_of(&app, &returner, &mine).await["state"] != "paid" {
        assert!(start.elapsed() < Duration::from_secs(15), "never paid");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let fan = app.client();
    let entry = waitlist(&app, &fan, sale, 1).await;
    assert_eq!(
        offer_return(&app, &returner, &mine, json!({"tickets": 1})).await.0,
        StatusCode::OK
    );
    assert_eq!(entry_state(&app, &fan, &entry).await, "offered");
    assert_eq!(order(&app, &fan, &entry).await.0, StatusCode::CREATED);
    let mine_now = order_of(&app, &returner, &mine).await;
    assert_eq!(
        (mine_now["state"].as_str(), mine_now["returned"].as_i64()),
        (Some("paid"), Some(1))
    );

    // The price of the one ticket goes back to the returner's card, once.
    let start = Instant::now();
    let refund_id = loop {
        let id: Option<String> = sqlx::query_scalar("select refund_id from return_refunds")
            .fetch_one(&w.db)
            .await
            .unwrap();
        if let Some(id) = id {
            break id;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never refunded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let refunds = stripe.refunds().await;
    let refund = refunds
        .iter()
        .find(|r| r["id"] == refund_id.as_str())
        .expect("Stripe has the refund");
    assert_eq!(
        (refund["amount"].as_i64(), refund["payment_intent"].as_str()),
        (Some(2500), Some(intent.as_str()))
    );
    assert_eq!(refunds.len(), 1);
}

#[tokio::test]
async fn the_organizer_allows_returns_and_sees_those_pending() {
    use crate::admin_support::AdminApp;
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let sale = o.api_sale(10, 3).await;
    let path = format!("/sales/{sale}/waitlist");
    let (_, wl) = o.api.get(&path).await;
    assert_eq!(
        (wl["returns_allowed"].as_bool(), wl["returns_pending"].as_i64()),
        (Some(false), Some(0))
    );
    let (status, _) = o.api.patch(&path, json!({"returns_allowed": "yes"})).await;
    assert!(status.is_client_error(), "{status}");
    let (status, wl) = o.api.patch(&path, json!({"returns_allowed": true})).await;
    assert_eq!(
        (status, wl["returns_allowed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{wl}"
    );
    assert_eq!(wl["offer_secs"], 900, "left as it was");

    let sales = &app.state.sales;
    let buyer = Owner::random();
    let r = sales.join(sale, &buyer, sales.quantity(3).unwrap()).await.unwrap();
    let order = sales.confirm(&r.code, &buyer, &ada()).await.unwrap();
    sales.return_tickets(&order, 2).await.unwrap();
    let (_, wl) = o.api.get(&path).await;
    assert_eq!(
        (wl["returns_pending"].as_i64(), wl["tickets_returned"].as_i64()),
        (Some(2), Some(0))
    );
    let (status, page) = o.browser.page(&format!("/admin/sales/{sale}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"data-figure="returns_pending">2<"#), "{page}");

    // The dashboard's form turns returns off (an unticked box sends nothing).
    let dashboard = format!("/admin/sales/{sale}");
    let resp = o
        .browser
        .submit(&dashboard, &format!("/admin/sales/{sale}/returns"), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, wl) = o.api.get(&path).await;
    assert_eq!(wl["returns_allowed"], false);
}

#[tokio::test]
async fn orders_racing_for_returned_tickets_take_each_one_once() {
    let app = TestApp::spawn().await;
    let w = &app.world;
    let sale = w.sale(4, 60).await.sale_id();
    allow_returns(w, sale).await;
    let returner = app.client();
    let mine = buy(&app.base, &returner, sale, 4).await;
    let mut line = Vec::new();
    for _ in 0..3 {
        let client = app.client();
        let code = waitlist(&app, &client, sale, 1).await;
        line.push((client, code));
    }
    let (status, returned) = offer_return(&app, &returner, &mine, json!({"tickets": 3})).await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    for (client, code) in &line {
        assert_eq!(entry_state(&app, client, code).await, "offered");
    }

    // The three offered buyers order at the same moment: three transactions race for the
    // three returned tickets, and each ticket goes to exactly one of them.
    let orders = futures::future::join_all(line.iter().map(|(client, code)| order(&app, client, code))).await;
    for (status, body) in &orders {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let mine_now = order_of(&app, &returner, &mine).await;
    assert_eq!(
        (mine_now["state"].as_str(), mine_now["returned"].as_i64()),
        (Some("confirmed"), Some(3)),
        "{mine_now}"
    );
    assert_eq!(
        (
            w.pg_sold(sale).await,
            event_sold(w, sale).await,
            valid_tickets(w, sale).await
        ),
        (4, 4, 4)
    );
}
