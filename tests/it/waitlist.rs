//! The waitlist's promises: tickets that come back after the sell-out are offered down the
//! waitlist in order; a lapsed offer moves on; a head that does not fit stops the line unless
//! it can never fit; two instances racing offer each ticket once; a Redis that loses
//! everything mid-offer loses nothing Postgres recorded.

use std::time::Duration;

use boxoffice::db;
use boxoffice::sale::waitlist::{WaitlistEmail, WaitlistEntry, WaitlistState};
use boxoffice::sale::{Owner, ReservationCode, ReservationState, SaleError, SaleId, TicketSales};

use crate::redis_servers;
use crate::support::{World, ada, test_settings};

async fn join(w: &World, sale: SaleId, owner: &Owner, qty: i64) -> boxoffice::sale::Reservation {
    w.sales.join(sale, owner, w.sales.quantity(qty).unwrap()).await.unwrap()
}

fn email() -> WaitlistEmail {
    WaitlistEmail::parse(&format!("{}@example.com", uuid::Uuid::new_v4().simple())).unwrap()
}

/// A buyer who finds the sale sold out and joins its waitlist.
async fn waitlisted(w: &World, sale: SaleId, qty: i64) -> (Owner, WaitlistEntry) {
    let owner = Owner::random();
    let r = join(w, sale, &owner, qty).await;
    assert_eq!(r.state, ReservationState::SoldOut);
    let e = w
        .sales
        .join_waitlist(sale, &owner, w.sales.quantity(qty).unwrap(), &email())
        .await
        .unwrap();
    assert!(e.created);
    (owner, e)
}

async fn status(sales: &TicketSales, (owner, e): &(Owner, WaitlistEntry)) -> WaitlistEntry {
    sales.waitlist_status(&e.code, owner).await.unwrap()
}

/// The offer mails queued so far.
async fn offer_mails(w: &World) -> i64 {
    sqlx::query_scalar("select count(*) from outbox where kind = 'waitlist_offer'")
        .fetch_one(&w.db)
        .await
        .unwrap()
}

async fn set_offer_secs(w: &World, sale: SaleId, secs: i32) {
    w.sales.set_offer_window(sale, secs).await.unwrap();
}

/// A sale of `capacity` with `sold` tickets sold and `held` tickets held (one each) for
/// `hold_secs`: the holders, so a test can free their tickets.
async fn sold_out_sale(
    w: &World,
    capacity: i32,
    sold: i64,
    held: usize,
    hold_secs: i32,
) -> (SaleId, Vec<(Owner, ReservationCode)>) {
    let sale = w.sale(capacity, hold_secs).await.sale_id();
    let buyer = Owner::random();
    let r = join(w, sale, &buyer, sold).await;
    w.sales.confirm(&r.code, &buyer, &ada()).await.unwrap();
    let mut holders = Vec::new();
    for _ in 0..held {
        let o = Owner::random();
        let r = join(w, sale, &o, 1).await;
        assert_eq!(r.state, ReservationState::Admitted);
        holders.push((o, r.code));
    }
    (sale, holders)
}

#[tokio::test]
async fn offers_go_down_the_waitlist_in_order_and_a_lapsed_offer_moves_on() {
    let w = World::new().await;
    // 3 tickets: 2 sold, 1 held for 2 s; a group of 2 is sold out and starts the waitlist.
    let (sale, _holder) = sold_out_sale(&w, 3, 2, 1, 2).await;
    set_offer_secs(&w, sale, 2).await;
    let group = waitlisted(&w, sale, 2).await;
    let (a, b, c) = (
        waitlisted(&w, sale, 1).await,
        waitlisted(&w, sale, 1).await,
        waitlisted(&w, sale, 1).await,
    );
    assert_eq!(
        [&group, &a, &b, &c].map(|x| x.1.position),
        [1, 2, 3, 4],
        "in the order they came"
    );
    // Nobody gets past the waitlist: a newcomer is sold out and goes behind.
    let late = Owner::random();
    assert_eq!(join(&w, sale, &late, 1).await.state, ReservationState::SoldOut);

    // The hold lapses: its ticket goes to A, the first whose quantity can fit; the group of two
    // wants more than the one ticket unsold and is passed over, keeping its place.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let offered = status(&w.sales, &a).await;
    assert_eq!(offered.state, WaitlistState::Offered);
    assert!(offered.offer_expires_at.is_some());
    let g = status(&w.sales, &group).await;
    assert_eq!((g.state, g.position, g.fits), (WaitlistState::Waiting, 1, false));
    assert_eq!(status(&w.sales, &b).await.state, WaitlistState::Waiting);
    // The offer is a hold at checkout under the entry's code, for its session.
    let hold = w.sales.status(&a.1.code, &a.0).await.unwrap();
    assert_eq!((hold.state, hold.quantity), (ReservationState::Admitted, 1));

    // A lets the offer lapse: it moves on to B, not to C.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(status(&w.sales, &b).await.state, WaitlistState::Offered);
    assert_eq!(status(&w.sales, &a).await.state, WaitlistState::Lapsed);
    assert_eq!(status(&w.sales, &c).await.state, WaitlistState::Waiting);

    // B buys: the offer is taken, the sale is sold out again and C keeps waiting.
    let order = w.sales.confirm(&b.1.code, &b.0, &ada()).await.unwrap();
    assert_eq!(order.quantity, 1);
    assert_eq!(status(&w.sales, &b).await.state, WaitlistState::Taken);
    assert_eq!(w.pg_sold(sale).await, 3);
    let c_now = status(&w.sales, &c).await;
    assert_eq!((c_now.state, c_now.position), (WaitlistState::Waiting, 2));

    // Postgres follows: offered twice, taken once, lapsed once, one offer mail per offer.
    w.sales.record_waitlist(sale).await.unwrap();
    let counts = db::waitlist::counts(&w.db, sale).await.unwrap();
    assert_eq!(
        (counts.waiting, counts.offered, counts.taken, counts.lapsed),
        (2, 0, 1, 1)
    );
    let mails = offer_mails(&w).await;
    assert_eq!(mails, 2);
    // The sale's funnel still adds up: an offer is a reservation made and admitted.
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!(
        f.joined,
        f.admitted + f.waiting + f.left + f.abandoned + f.sold_out,
        "{f:?}"
    );
    assert_eq!(f.admitted, 2 + f.active + f.released + f.lapsed, "two orders: {f:?}");
}

#[tokio::test]
async fn a_head_that_may_fit_stops_the_line_one_that_never_fits_is_passed_over() {
    let w = World::new().await;
    // 5 tickets: 2 sold, 3 held; unsold at most 3.
    let (sale, holders) = sold_out_sale(&w, 5, 2, 3, 60).await;
    let four = waitlisted(&w, sale, 4).await; // can never fit (3 unsold)
    let two = waitlisted(&w, sale, 2).await; // fits once two come back
    let one = waitlisted(&w, sale, 1).await;

    // One ticket comes back: the head that can fit wants two, so nobody behind it gets it.
    w.sales.release(&holders[0].1, &holders[0].0).await.unwrap();
    assert_eq!(status(&w.sales, &one).await.state, WaitlistState::Waiting);
    let t = status(&w.sales, &two).await;
    assert_eq!((t.state, t.fits), (WaitlistState::Waiting, true));
    let f = status(&w.sales, &four).await;
    assert_eq!((f.state, f.position, f.fits), (WaitlistState::Waiting, 1, false));
    assert_eq!(w.sales.figures(sale).await.unwrap().held, 2);

    // A second comes back: the two go to the group of two; the one behind still waits.
    w.sales.release(&holders[1].1, &holders[1].0).await.unwrap();
    assert_eq!(status(&w.sales, &two).await.state, WaitlistState::Offered);
    assert_eq!(status(&w.sales, &one).await.state, WaitlistState::Waiting);
    assert_eq!(status(&w.sales, &four).await.state, WaitlistState::Waiting);
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (2, 3));
}

#[tokio::test]
async fn joining_is_for_a_sold_out_sale_once_per_session_and_per_email() {
    let w = World::new().await;
    let sale = w.sale(4, 60).await.sale_id();
    let owner = Owner::random();
    let q = w.sales.quantity(1).unwrap();
    // Tickets can still be had: the line, not the waitlist.
    assert!(matches!(
        w.sales.join_waitlist(sale, &owner, q, &email()).await,
        Err(SaleError::NotSoldOut)
    ));
    let (sale, _) = sold_out_sale(&w, 2, 2, 0, 60).await;
    let mail = email();
    let first = w.sales.join_waitlist(sale, &owner, q, &mail).await.unwrap();
    let again = w.sales.join_waitlist(sale, &owner, q, &email()).await.unwrap();
    assert_eq!((again.code, again.created), (first.code, false));
    assert!(matches!(
        w.sales.join_waitlist(sale, &Owner::random(), q, &mail).await,
        Err(SaleError::WaitlistEmailTaken)
    ));
    // Leaving frees the place; the same email may come back, at the back.
    let left = w.sales.leave_waitlist(&first.code, &owner).await.unwrap();
    assert_eq!(left.state, WaitlistState::Left);
    let back = w.sales.join_waitlist(sale, &Owner::random(), q, &mail).await.unwrap();
    assert!(back.created);
    let rows = db::waitlist::counts(&w.db, sale).await.unwrap();
    assert_eq!((rows.waiting, rows.left), (1, 1));
}

/// The same two rules with the joins racing: one session joining eight times at once holds one
/// place, and ten sessions joining with one email at once hold one place between them.
#[tokio::test]
async fn racing_joins_hold_one_place_per_session_and_per_email() {
    let w = World::new().await;
    let (sale, _) = sold_out_sale(&w, 2, 2, 0, 60).await;
    let q = w.sales.quantity(1).unwrap();

    let owner = Owner::random();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (sales, owner) = (w.sales.clone(), owner.clone());
        tasks.spawn(async move { sales.join_waitlist(sale, &owner, q, &email()).await.unwrap() });
    }
    let mut codes = Vec::new();
    let mut created = 0;
    while let Some(done) = tasks.join_next().await {
        let e = done.unwrap();
        created += usize::from(e.created);
        codes.push(e.code);
    }
    assert_eq!(created, 1, "one session's racing joins make one place");
    assert!(
        codes.iter().all(|c| *c == codes[0]),
        "every join answers the same place"
    );

    let mail = email();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (sales, mail) = (w.sales.clone(), mail.clone());
        tasks.spawn(async move { sales.join_waitlist(sale, &Owner::random(), q, &mail).await });
    }
    let (mut placed, mut taken) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(e) => placed += usize::from(e.created),
            Err(SaleError::WaitlistEmailTaken) => taken += 1,
            Err(e) => panic!("a racing join failed otherwise: {e}"),
        }
    }
    assert_eq!((placed, taken), (1, 9), "one email holds one place");
    w.sales.record_waitlist(sale).await.unwrap();
    let rows = db::waitlist::counts(&w.db, sale).await.unwrap();
    assert_eq!(rows.waiting, 2, "Postgres has the two places and no more");
}

#[tokio::test]
async fn two_instances_racing_offer_each_ticket_once() {
    let w = World::new().await;
    let other = TicketSales::new(w.redis.clone(), w.db.clone(), &w.settings)
        .await
        .unwrap();
    // 8 tickets: 3 sold, 5 held; a group of six starts the waitlist, twelve singles follow.
    let (sale, holders) = sold_out_sale(&w, 8, 3, 5, 60).await;
    let six = waitlisted(&w, sale, 6).await;
    let mut singles = Vec::new();
    for _ in 0..12 {
        singles.push(waitlisted(&w, sale, 1).await);
    }
    // Both instances at once: the holds given back, every entry polled, the line recorded.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (owner, code)) in holders.into_iter().enumerate() {
        let sales = if i % 2 == 0 { w.sales.clone() } else { other.clone() };
        tasks.spawn(async move {
            sales.release(&code, &owner).await.unwrap();
        });
    }
    for (i, entry) in singles.iter().chain([&six]).cloned().enumerate() {
        for sales in [w.sales.clone(), other.clone()] {
            let entry = entry.clone();
            tasks.spawn(async move {
                for _ in 0..5 {
                    status(&sales, &entry).await;
                    sales.record_waitlist(sale).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5 * (i as u64 % 3))).await;
                }
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    w.sales.record_waitlist(sale).await.unwrap();

    let mut states = Vec::new();
    for e in &singles {
        states.push(status(&w.sales, e).await.state);
    }
    let offered = WaitlistState::Offered;
    assert_eq!(&states[..5], &[offered; 5], "the first five singles, in order");
    assert!(states[5..].iter().all(|s| *s == WaitlistState::Waiting), "{states:?}");
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (3, 5), "five tickets, five offers");
    let mails: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("select waitlist_entry_id, count(*) from outbox where kind = 'waitlist_offer' group by 1")
            .fetch_all(&w.db)
            .await
            .unwrap();
    assert_eq!(mails.len(), 5);
    assert!(mails.iter().all(|(_, n)| *n == 1), "one mail per offer: {mails:?}");
}

#[tokio::test]
async fn redis_lost_mid_offer_loses_nothing_postgres_recorded_and_oversells_nothing() {
    let mut redis = redis_servers::Server::start();
    let mut settings = test_settings();
    settings.redis_url = redis.url();
    let w = World::with_settings(settings).await;
    let (sale, holders) = sold_out_sale(&w, 4, 2, 2, 60).await;
    let _three = waitlisted(&w, sale, 3).await; // can never fit: passed over, first in line
    let a = waitlisted(&w, sale, 1).await;
    let b = waitlisted(&w, sale, 1).await;
    let c = waitlisted(&w, sale, 1).await;
    // One ticket back: A's offer, recorded in Postgres (its mail queued).
    w.sales.release(&holders[0].1, &holders[0].0).await.unwrap();
    let offer = status(&w.sales, &a).await;
    assert_eq!(offer.state, WaitlistState::Offered);
    w.sales.record_waitlist(sale).await.unwrap();

    redis.restart();

    // The line comes back from Postgres: A's offer until its own expiry, the others in order.
    let again = status(&w.sales, &a).await;
    assert_eq!(again.state, WaitlistState::Offered);
    assert_eq!(again.offer_expires_at, offer.offer_expires_at);
    // The other holder's hold was lost with Redis (as every hold is): its ticket goes to B,
    // the next in line; nothing more is offered.
    assert_eq!(status(&w.sales, &b).await.state, WaitlistState::Offered);
    let c_now = status(&w.sales, &c).await;
    assert_eq!((c_now.state, c_now.position), (WaitlistState::Waiting, 2));
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (2, 2));
    // A buys: Postgres counts it; nothing is oversold.
    w.sales.confirm(&a.1.code, &a.0, &ada()).await.unwrap();
    assert_eq!(w.pg_sold(sale).await, 3);
    w.sales.record_waitlist(sale).await.unwrap();
    let mails = offer_mails(&w).await;
    assert_eq!(mails, 2, "A once (not again after the restart), and B");
    drop(redis);
}

#[tokio::test]
async fn buyers_in_line_at_the_sell_out_keep_their_order_on_the_waitlist() {
    let w = World::new().await;
    // 4 tickets: 2 sold, 2 held; two buyers of two queue behind the hold.
    let (sale, _) = sold_out_sale(&w, 4, 2, 0, 60).await;
    let holder = Owner::random();
    let hold = join(&w, sale, &holder, 2).await;
    let (q1, q2) = (Owner::random(), Owner::random());
    let r1 = join(&w, sale, &q1, 2).await;
    let r2 = join(&w, sale, &q2, 2).await;
    assert_eq!(
        (r1.state, r2.state),
        (ReservationState::Waiting, ReservationState::Waiting)
    );
    // The hold is bought: both are sold out, and a newcomer finds the sale sold out.
    w.sales.confirm(&hold.code, &holder, &ada()).await.unwrap();
    assert_eq!(
        w.sales.status(&r2.code, &q2).await.unwrap().state,
        ReservationState::SoldOut
    );
    assert_eq!(
        w.sales.status(&r1.code, &q1).await.unwrap().state,
        ReservationState::SoldOut
    );
    let newcomer = waitlisted(&w, sale, 1).await;
    // They join the waitlist after the newcomer, yet stand before it, in the queue's order.
    let q = w.sales.quantity(2).unwrap();
    let e2 = w.sales.join_waitlist(sale, &q2, q, &email()).await.unwrap();
    let e1 = w.sales.join_waitlist(sale, &q1, q, &email()).await.unwrap();
    assert_eq!(status(&w.sales, &(q1, e1)).await.position, 1);
    assert_eq!(status(&w.sales, &(q2, e2)).await.position, 2);
    assert_eq!(status(&w.sales, &newcomer).await.position, 3);
    // Postgres keeps the same order, for a rebuild.
    let ranks: Vec<uuid::Uuid> = db::waitlist::live_of_sale(&w.db, sale)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ranks.last(), Some(&newcomer.1.code.token));
}

#[tokio::test]
async fn a_buyer_told_sold_out_joins_the_waitlist_gets_the_offer_and_buys_it_through_the_pages() {
    use crate::buyer_pages::{GOOD, code_in, get, join as join_page, post};
    use reqwest::StatusCode;
    let app = crate::support::TestApp::spawn().await;
    let w = &app.world;
    let (sale, holders) = sold_out_sale(w, 3, 2, 1, 60).await;
    let fan = app.client();
    // Two wanted, one unsold: sold out, and sent to the waitlist's form.
    let to = join_page(&app, &fan, sale, "2").await;
    assert_eq!(to, format!("/sales/{sale}/waitlist?quantity=2"));
    let form = get(&app, &fan, &to).await;
    assert!(form.body.contains("Join the waitlist"), "{}", form.body);
    // A bad email comes back on the form, nothing joined.
    let bad = post(
        &app,
        &fan,
        &format!("/sales/{sale}/waitlist"),
        &[("quantity", "1"), ("email", "nope")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Please give an email address"));
    // Changes its mind: one ticket. Joins; its page says where it stands.
    let joined = post(
        &app,
        &fan,
        &format!("/sales/{sale}/waitlist"),
        &[("quantity", "1"), ("email", "fan@example.com")],
    )
    .await;
    assert_eq!(joined.status, StatusCode::SEE_OTHER, "{}", joined.body);
    let place = joined.location.unwrap();
    let page = get(&app, &fan, &place).await;
    assert!(page.body.contains("You are number"), "{}", page.body);
    // The hold is given up: the page turns into the checkout, and the offer is bought there.
    w.sales.release(&holders[0].1, &holders[0].0).await.unwrap();
    let offered = get(&app, &fan, &place).await;
    let checkout = offered.location.expect("to the checkout");
    assert_eq!(checkout, format!("/checkout/{}", code_in(&place)));
    assert!(get(&app, &fan, &checkout).await.body.contains("Checkout"));
    let bought = post(&app, &fan, &checkout, &GOOD).await;
    assert_eq!(bought.location, Some(format!("/orders/{}", code_in(&place))));
    assert_eq!(w.pg_sold(sale).await, 3);
    // The offer was mailed once (the log without SMTP), and the page now shows the order.
    assert_eq!(
        get(&app, &fan, &place).await.location,
        Some(format!("/orders/{}", code_in(&place)))
    );
    let mails = offer_mails(w).await;
    assert_eq!(mails, 1);
}

#[tokio::test]
async fn the_api_joins_polls_and_leaves_the_waitlist_with_clear_refusals() {
    let app = crate::support::TestApp::spawn().await;
    let w = &app.world;
    let open_sale = w.sale(5, 60).await.sale_id();
    let (sale, _) = sold_out_sale(w, 2, 2, 0, 60).await;
    let c = app.client();
    let api = |path: &str| app.url(&format!("/api/v1{path}"));
    let body = |q: serde_json::Value, email: &str| serde_json::json!({ "quantity": q, "email": email });
    // Not sold out: 409; a bad email or quantity: 422; an unknown sale: 404.
    let r = c
        .post(api(&format!("/sales/{open_sale}/waitlist")))
        .json(&body(1.into(), "a@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "not_sold_out");
    let r = c
        .post(api(&format!("/sales/{sale}/waitlist")))
        .json(&body(1.into(), "a@"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = c
        .post(api(&format!("/sales/{sale}/waitlist")))
        .json(&body(9.into(), "a@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = c
        .post(api(&format!("/sales/{}/waitlist", SaleId::new())))
        .json(&body(1.into(), "a@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let rows = db::waitlist::counts(&w.db, sale).await.unwrap();
    assert_eq!(rows.waiting, 0, "refusals change nothing");

    let r = c
        .post(api(&format!("/sales/{sale}/waitlist")))
        .json(&body(2.into(), "a@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (e["state"].as_str(), e["position"].as_u64(), e["quantity"].as_u64()),
        (Some("waiting"), Some(1), Some(2))
    );
    let code = e["code"].as_str().unwrap().to_string();
    let again = c
        .post(api(&format!("/sales/{sale}/waitlist")))
        .json(&body(2.into(), "b@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let other = app.client();
    let taken = other
        .post(api(&format!("/sales/{sale}/waitlist")))
        .json(&body(1.into(), "A@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    let polled: serde_json::Value = c
        .get(api(&format!("/waitlist/{code}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["state"], "waiting");
    // Another session does not see it.
    assert_eq!(
        other
            .get(api(&format!("/waitlist/{code}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.delete(api(&format!("/waitlist/{code}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let left: serde_json::Value = c
        .get(api(&format!("/waitlist/{code}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (left["state"].as_str(), left["poll_after_ms"].as_u64()),
        (Some("left"), Some(0))
    );
}

#[tokio::test]
async fn the_organizer_sees_the_waitlist_sets_the_offer_window_and_raises_capacity_for_it() {
    use crate::admin_support::AdminApp;
    use reqwest::StatusCode;
    use serde_json::json;
    let app = AdminApp::spawn().await;
    let (o, sale, line, _) = organizer_waitlist(&app, &[1, 2, 1]).await;
    let sales = &app.state.sales;
    let path = format!("/sales/{sale}/waitlist");
    let (status, w) = o.api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!((w["waiting"].as_i64(), w["offer_secs"].as_i64()), (Some(3), Some(900)));
    // The offer window: at least a minute.
    let (status, _) = o.api.patch(&path, json!({"offer_secs": 30})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, w) = o.api.patch(&path, json!({"offer_secs": 120})).await;
    assert_eq!((status, w["offer_secs"].as_i64()), (StatusCode::OK, Some(120)));
    // The capacity: more than now, within the event's seats.
    let capacity = format!("/sales/{sale}/capacity");
    for refused in [3, 11] {
        let (status, answer) = o.api.post(&capacity, json!({ "capacity": refused })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}: {answer}");
    }
    let (status, raised) = o.api.post(&capacity, json!({"capacity": 6})).await;
    assert_eq!(
        (status, raised["capacity"].as_i64()),
        (StatusCode::OK, Some(6)),
        "{raised}"
    );
    // Three new tickets, down the line in order: one, then two; the last one waits.
    let states = [
        status_of(sales, &line[0]).await,
        status_of(sales, &line[1]).await,
        status_of(sales, &line[2]).await,
    ];
    assert_eq!(
        states,
        [WaitlistState::Offered, WaitlistState::Offered, WaitlistState::Waiting]
    );
    let offer = sales.waitlist_status(&line[0].1.code, &line[0].0).await.unwrap();
    let window = (offer.offer_expires_at.unwrap() - offer.server_now).num_seconds();
    assert!((115..=120).contains(&window), "the organizer's window: {window} s");
    let (_, w) = o.api.get(&path).await;
    assert_eq!(
        (w["waiting"].as_i64(), w["offers_out"].as_i64()),
        (Some(1), Some(2)),
        "{w}"
    );
    // The dashboard shows the same.
    let (status, page) = o.browser.page(&format!("/admin/sales/{sale}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"data-figure="offers_out">2<"#), "{page}");
}

/// An organizer's sale of 3 tickets in an event of 10 seats, sold out by one order, and a
/// waitlist of buyers wanting `quantities`, joined in that order: the organizer, the sale, the
/// line and its emails.
async fn organizer_waitlist(
    app: &crate::admin_support::AdminApp,
    quantities: &[i64],
) -> (
    crate::admin_support::Organizer,
    SaleId,
    Vec<(Owner, WaitlistEntry)>,
    Vec<String>,
) {
    let o = app.organizer().await;
    let sale = o.api_sale(10, 3).await;
    let sales = &app.state.sales;
    let buyer = Owner::random();
    let r = sales.join(sale, &buyer, sales.quantity(3).unwrap()).await.unwrap();
    sales.confirm(&r.code, &buyer, &ada()).await.unwrap();
    let (mut line, mut emails) = (Vec::new(), Vec::new());
    for &qty in quantities {
        let owner = Owner::random();
        let q = sales.quantity(qty).unwrap();
        assert_eq!(
            sales.join(sale, &owner, q).await.unwrap().state,
            ReservationState::SoldOut
        );
        let mail = email();
        let e = sales.join_waitlist(sale, &owner, q, &mail).await.unwrap();
        line.push((owner, e));
        emails.push(mail.as_str().to_string());
    }
    (o, sale, line, emails)
}

/// The organizer's list of entries is the line as Redis has it: an offer the raise made, that
/// no waitlist request has recorded yet, is listed as offered with its expiry, in line order,
/// page by page; another organizer gets a 404.
#[tokio::test]
async fn the_organizer_lists_the_entries_in_line_order_with_offers_not_yet_recorded() {
    use crate::admin_support::AdminApp;
    use reqwest::StatusCode;
    use serde_json::json;
    let app = AdminApp::spawn().await;
    let (o, sale, _, emails) = organizer_waitlist(&app, &[2, 1, 1]).await;
    // Two new seats: the raise's sync offers them to the head, and nothing records it.
    let (status, _) = o
        .api
        .post(&format!("/sales/{sale}/capacity"), json!({"capacity": 5}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(db::waitlist::counts(&app.state.db, sale).await.unwrap().offered, 0);

    let list = format!("/sales/{sale}/waitlist/entries");
    let (status, first) = o.api.get(&format!("{list}?per_page=2")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = o.api.get(&format!("{list}?per_page=2&page=2")).await;
    let rows: Vec<&serde_json::Value> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["entries"].as_array().unwrap())
        .collect();
    assert_eq!((first["total"].as_i64(), rows.len()), (Some(3), 3), "{first} {second}");
    let listed: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|e| {
            (
                e["email"].as_str().unwrap(),
                e["state"].as_str().unwrap(),
                e["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (emails[0].as_str(), "offered", 2),
            (emails[1].as_str(), "waiting", 1),
            (emails[2].as_str(), "waiting", 1)
        ]
    );
    assert!(rows[0]["offer_expires_at"].is_string(), "{}", rows[0]);
    assert!(rows[1]["offer_expires_at"].is_null());
    let ranks: Vec<i64> = rows.iter().map(|e| e["rank"].as_i64().unwrap()).collect();
    assert!(ranks.is_sorted() && ranks[0] < ranks[2], "{ranks:?}");

    let stranger = app.organizer().await;
    let (status, _) = stranger.api.get(&list).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn status_of(sales: &TicketSales, entry: &(Owner, WaitlistEntry)) -> WaitlistState {
    status(sales, entry).await.state
}

#[tokio::test]
async fn the_offer_mails_signed_link_moves_the_place_to_the_browser_that_opens_it() {
    use crate::buyer_pages::{GOOD, get, join as join_page, post};
    use reqwest::StatusCode;
    let app = crate::support::TestApp::spawn().await;
    let w = &app.world;
    let (sale, holders) = sold_out_sale(w, 3, 2, 1, 60).await;
    let first = app.client();
    join_page(&app, &first, sale, "2").await;
    let joined = post(
        &app,
        &first,
        &format!("/sales/{sale}/waitlist"),
        &[("quantity", "1"), ("email", "fan@example.com")],
    )
    .await;
    let place = joined.location.expect("to the place in line");
    w.sales.release(&holders[0].1, &holders[0].0).await.unwrap();
    // The link as the mail has it.
    let entry = db::waitlist::live_of_sale(&w.db, sale).await.unwrap().remove(0);
    let link = boxoffice::mail::offer_link(&w.settings, &entry);
    let path = link.strip_prefix(&w.settings.public_url).unwrap();
    let code = ReservationCode { sale, token: entry.id };
    assert_eq!(path.split('?').next(), Some(place.as_str()));

    // A forged key moves nothing.
    let phone = app.client();
    let forged = get(&app, &phone, &format!("{place}?key=AAAA")).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, &first, &place).await.location,
        Some(format!("/checkout/{code}"))
    );

    // The phone opens the mail's link: the place and its offer are the phone's now.
    let opened = get(&app, &phone, path).await;
    assert_eq!(opened.location.as_deref(), Some(place.as_str()));
    let checkout = get(&app, &phone, &place).await.location.expect("to the checkout");
    let bought = post(&app, &phone, &checkout, &GOOD).await;
    assert_eq!(bought.location, Some(format!("/orders/{code}")));
    assert_eq!(get(&app, &first, &place).await.status, StatusCode::NOT_FOUND);
    let row = db::waitlist::find(&w.db, entry.id).await.unwrap().unwrap();
    assert_ne!(row.owner, entry.owner, "Postgres follows, for a rebuild");
}

#[tokio::test]
async fn the_reconcile_puts_back_a_waitlist_redis_lost_in_its_order() {
    use fred::prelude::*;
    let w = World::new().await;
    let (sale, _) = sold_out_sale(&w, 2, 2, 0, 60).await;
    let line = [
        waitlisted(&w, sale, 1).await,
        waitlisted(&w, sale, 2).await,
        waitlisted(&w, sale, 1).await,
    ];
    // The waitlist's keys alone are gone (the sale's stay, so no rebuild notices).
    let keys = boxoffice::sale::sale_keys(sale);
    let _: i64 = w.redis.del(keys[7..].to_vec()).await.unwrap();
    assert!(matches!(
        w.sales.waitlist_status(&line[0].1.code, &line[0].0).await,
        Err(SaleError::UnknownWaitlistEntry)
    ));
    w.sales.reconcile_waitlists().await.unwrap();
    for (place, entry) in line.iter().enumerate() {
        let e = status(&w.sales, entry).await;
        assert_eq!((e.state, e.position), (WaitlistState::Waiting, place as u64 + 1));
    }
}

#[tokio::test]
async fn a_place_postgres_refuses_is_taken_back_from_redis_at_once() {
    let w = World::new().await;
    let (sale, _) = sold_out_sale(&w, 2, 2, 0, 60).await;
    // Postgres holds a live place for this email that Redis does not know (it lost it).
    let mail = email();
    db::waitlist::insert(
        &w.db,
        &db::waitlist::NewEntry {
            id: uuid::Uuid::new_v4(),
            sale,
            owner: Owner::random().as_str(),
            email: mail.as_str(),
            quantity: 1,
            rank: 1,
        },
    )
    .await
    .unwrap();
    let owner = Owner::random();
    let q = w.sales.quantity(1).unwrap();
    assert!(matches!(
        w.sales.join_waitlist(sale, &owner, q, &mail).await,
        Err(SaleError::WaitlistEmailTaken)
    ));
    // Redis gave the place back: nobody waits there, and the session may join with its own
    // address; the refused place is never recorded, and leaves nothing pending.
    let again = w.sales.join_waitlist(sale, &owner, q, &email()).await.unwrap();
    assert!(again.created);
    assert_eq!(again.position, 1, "the refused place holds no spot in line");
    w.sales.record_waitlist(sale).await.unwrap();
    let pending: i64 = {
        use fred::prelude::*;
        w.redis
            .scard(&boxoffice::sale::sale_key(
                sale,
                boxoffice::sale::SaleKey::WaitlistPending,
            ))
            .await
            .unwrap()
    };
    assert_eq!(pending, 0);
}

/// Sixty buyers join at once: every join answers without waiting on the others' recording,
/// and Postgres has every place, with nothing left for Redis to record once they are done.
#[tokio::test]
async fn sixty_joins_at_once_all_answer_and_postgres_records_every_place() {
    const JOINS: usize = 60;
    let w = World::new().await;
    let (sale, _) = sold_out_sale(&w, 2, 2, 0, 60).await;
    let q = w.sales.quantity(1).unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(JOINS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..JOINS {
        let (sales, start) = (w.sales.clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            let began = std::time::Instant::now();
            let e = sales.join_waitlist(sale, &Owner::random(), q, &email()).await.unwrap();
            (e, began.elapsed())
        });
    }
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.push(done.unwrap());
        }
        all
    })
    .await
    .expect("sixty joins answer within 30 s");
    let mut took: Vec<Duration> = all.iter().map(|(_, t)| *t).collect();
    took.sort();
    println!(
        "{JOINS} joins at once: median {:?}, slowest {:?}",
        took[JOINS / 2],
        took[JOINS - 1]
    );
    assert!(all.iter().all(|(e, _)| e.created && e.state == WaitlistState::Waiting));
    let mut places: Vec<u64> = all.iter().map(|(e, _)| e.position).collect();
    places.sort();
    assert_eq!(
        places,
        (1..=JOINS as u64).collect::<Vec<_>>(),
        "one place each, in one line"
    );

    // Postgres has them all as soon as they answered, and the changes Redis noted are all
    // recorded soon after (by whichever request was recording), without a reconcile.
    let rows = db::waitlist::counts(&w.db, sale).await.unwrap();
    assert_eq!(rows.waiting, JOINS as i64, "Postgres has every place");
    let key = boxoffice::sale::sale_key(sale, boxoffice::sale::SaleKey::WaitlistPending);
    let mut pending: i64 = -1;
    for _ in 0..100 {
        use fred::prelude::*;
        pending = w.redis.scard(&key).await.unwrap();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "every change is recorded without a reconcile");
}
