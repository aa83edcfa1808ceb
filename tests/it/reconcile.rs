//! Reconciling a sale with Postgres: it reads only the orders it may not have seen, counts an
//! order whose transaction outlived several reconciles, keeps a confirming hold whose order may
//! have committed after its read, keeps lapsing ordinary holds behind many stuck checkouts, and
//! leaves a sale whose event is long over readable.

use std::time::Duration;

use boxoffice::db;
use boxoffice::sale::{Owner, ReservationCode, ReservationState, SaleId, SaleKey, sale_key, sale_keys};
use fred::prelude::*;
use reqwest::StatusCode;

use crate::admin_support::{AdminApp, event_json};
use crate::support::{World, ada, test_settings};

async fn join(w: &World, sale: SaleId, owner: &Owner, qty: i64) -> boxoffice::sale::Reservation {
    w.sales.join(sale, owner, w.sales.quantity(qty).unwrap()).await.unwrap()
}

/// An order written straight into Postgres, as a checkout whose Redis step never ran.
async fn place(w: &World, sale: SaleId, qty: u8) -> ReservationCode {
    let code = ReservationCode::new(sale);
    let placed = db::orders::place(&w.db, sale, code.token, qty, &ada(), None, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(placed, db::orders::Placement::Placed(_)));
    code
}

/// Runs one of the sale scripts as the service does: `lua/common.lua` first.
async fn run_script(w: &World, sale: SaleId, body: &str, args: Vec<String>) -> fred::types::Value {
    let script = format!("{}\n{body}", include_str!("../../lua/common.lua"));
    w.redis.next().eval(script, sale_keys(sale), args).await.unwrap()
}

/// Marks the hold of `code` confirming, as the first half of a checkout whose instance then
/// stalls (or dies) before writing the order.
async fn begin_checkout(w: &World, code: &ReservationCode, owner: &Owner) {
    let reply = run_script(
        w,
        code.sale,
        include_str!("../../lua/confirm_begin.lua"),
        vec![code.token.simple().to_string(), owner.as_str().to_string()],
    )
    .await;
    assert!(format!("{reply:?}").contains("confirming"), "{reply:?}");
}

async fn recent_codes(w: &World, sale: SaleId) -> i64 {
    w.redis.zcard(&sale_key(sale, SaleKey::Recent)).await.unwrap()
}

/// Reconciles until no code is kept for the next reconcile: every order so far is behind the
/// mark. The mark only moves past transactions no longer open anywhere on the Postgres server,
/// and the other tests' transactions run on the same server: a reconcile while one of them is
/// open keeps more codes (which is safe), a later one trims them.
async fn reconcile_until_settled(w: &World, sale: SaleId) {
    for _ in 0..200 {
        w.sales.sync(sale).await.unwrap();
        if recent_codes(w, sale).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reconcile mark never passed the sale's orders");
}

#[tokio::test]
async fn a_reconcile_reads_only_the_orders_of_its_last_periods() {
    let w = World::new().await;
    let sale = w.sale(100, 60).await.sale_id();
    for _ in 0..40 {
        place(&w, sale, 1).await;
    }
    w.sales.sync(sale).await.unwrap();
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, 40);
    reconcile_until_settled(&w, sale).await;
    for _ in 0..3 {
        place(&w, sale, 1).await;
    }
    w.sales.sync(sale).await.unwrap();
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, 43);
    // What the next reconcile looks at: the three orders of the last period, not all 43.
    assert_eq!(recent_codes(&w, sale).await, 3);
    reconcile_until_settled(&w, sale).await;
    place(&w, sale, 2).await;
    w.sales.sync(sale).await.unwrap();
    assert_eq!(recent_codes(&w, sale).await, 1);
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, 45);
    // Losing the keys makes the next sync read every order again.
    let _: i64 = w.redis.del(sale_keys(sale)).await.unwrap();
    w.sales.sync(sale).await.unwrap();
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, 45);
}

#[tokio::test]
async fn an_order_whose_transaction_outlives_several_reconciles_is_counted() {
    let w = World::new().await;
    let record = w.sale(10, 60).await;
    let sale = record.sale_id();
    let other = w.sale(10, 60).await.sale_id();
    w.sales.sync(sale).await.unwrap();
    // An order of `sale` is written in a transaction that stays open...
    let mut slow = w.db.begin().await.unwrap();
    sqlx::query("update events set sold = sold + 1 where id = $1")
        .bind(record.event_id)
        .execute(&mut *slow)
        .await
        .unwrap();
    sqlx::query("update ticket_sales set sold = sold + 1 where id = $1")
        .bind(sale.0)
        .execute(&mut *slow)
        .await
        .unwrap();
    sqlx::query(
        "insert into orders (number, sale_id, reservation_code, quantity, unit_price_minor, currency,
                             buyer_name, buyer_email, buyer_age, buyer_gender)
         values ('SLOW-1', $1, $2, 1, 2500, 'EUR', 'Ada', 'ada@example.com', 36, 'female')",
    )
    .bind(sale.0)
    .bind(ReservationCode::new(sale).token)
    .execute(&mut *slow)
    .await
    .unwrap();
    // ...while later transactions commit and reconciles run.
    for _ in 0..3 {
        place(&w, other, 1).await;
        w.sales.sync(sale).await.unwrap();
        assert_eq!(w.sales.figures(sale).await.unwrap().sold, 0);
    }
    slow.commit().await.unwrap();
    w.sales.sync(sale).await.unwrap();
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, 1);
    assert_eq!(w.pg_sold(sale).await, 1);
}

#[tokio::test]
async fn a_confirming_hold_whose_deadline_passed_after_the_sync_read_keeps_its_tickets() {
    let settings = boxoffice::config::Settings {
        confirm_grace_secs: 1,
        ..test_settings()
    };
    let w = World::with_settings(settings).await;
    // Holds of a second: the confirm deadline is the later of the hold's expiry and the grace.
    let sale = w.sale(2, 1).await.sale_id();
    let o = Owner::random();
    let r = join(&w, sale, &o, 2).await;
    assert_eq!(r.state, ReservationState::Admitted);
    begin_checkout(&w, &r.code, &o).await;
    // A sync reads Redis's clock and Postgres (no order yet)...
    let keys = sale_keys(sale);
    let mark: Option<String> = w.redis.hget(&keys[0], "xact_mark").await.unwrap();
    let mark = mark.unwrap_or_else(|| "0".into());
    let read_ms = w.sales.figures(sale).await.unwrap().server_now.timestamp_millis();
    // ...then the order commits, its confirm_finish is slow, and the deadline passes...
    db::orders::place(&w.db, sale, r.code.token, 2, &ada(), None, Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // ...before the sync's script runs with what it read: 0 sold, no order.
    let far = chrono::Utc::now().timestamp() + 86_400;
    let args: Vec<String> = ["2", "0", "1000", "1000", "0", "open", "0", "90000", "90000", "0"]
        .iter()
        .map(|s| s.to_string())
        .chain([far.to_string(), read_ms.to_string(), mark.clone(), mark])
        .collect();
    run_script(&w, sale, include_str!("../../lua/sync.lua"), args).await;
    // The tickets are not given to anybody else: the hold may have committed after the read.
    assert_eq!(
        w.sales.status(&r.code, &o).await.unwrap().state,
        ReservationState::Confirming
    );
    let late = join(&w, sale, &Owner::random(), 1).await;
    assert_ne!(late.state, ReservationState::Admitted, "a buyer admitted in vain");
    // The next sync sees the order.
    w.sales.sync(sale).await.unwrap();
    assert_eq!(
        w.sales.status(&r.code, &o).await.unwrap().state,
        ReservationState::Confirmed
    );
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, 2);
}

#[tokio::test]
async fn many_stuck_confirming_holds_do_not_delay_the_lapse_of_other_holds() {
    const STUCK: usize = 300;
    let settings = boxoffice::config::Settings {
        confirm_grace_secs: 1,
        ..test_settings()
    };
    let w = World::with_settings(settings).await;
    let sale = w.sale(STUCK as i32 + 1, 1).await.sale_id();
    // An instance crashed mid-checkout for each of these: confirming, never finished.
    for _ in 0..STUCK {
        let o = Owner::random();
        let r = join(&w, sale, &o, 1).await;
        assert_eq!(r.state, ReservationState::Admitted);
        begin_checkout(&w, &r.code, &o).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Their deadlines have passed; an ordinary hold comes after them, and a buyer waits for it.
    let a = Owner::random();
    assert_eq!(join(&w, sale, &a, 1).await.state, ReservationState::Admitted);
    let b = Owner::random();
    let waiting = join(&w, sale, &b, 1).await;
    assert_eq!(waiting.state, ReservationState::Waiting);
    let mut admitted = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if w.sales.status(&waiting.code, &b).await.unwrap().state == ReservationState::Admitted {
            admitted = true;
            break;
        }
    }
    assert!(
        admitted,
        "the ordinary hold lapsed and its ticket went to the next buyer"
    );
    assert_eq!(w.sales.figures(sale).await.unwrap().held, STUCK as i64 + 1);
}

#[tokio::test]
async fn a_sale_whose_event_ended_long_ago_stays_readable() {
    let app = AdminApp::spawn().await;
    let org = app.organizer().await;
    let (_, event) = org.api.post("/events", event_json(serde_json::json!({}))).await;
    let event = event["id"].as_str().unwrap().to_string();
    let (s, sale) = org
        .api
        .post(&format!("/events/{event}/sales"), serde_json::json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sale}");
    let sale = SaleId(sale["id"].as_str().unwrap().parse().unwrap());
    let code = ReservationCode::new(sale);
    db::orders::place(&app.state.db, sale, code.token, 3, &ada(), None, Duration::from_secs(5))
        .await
        .unwrap();
    // The event took place a week ago, and Redis has let go of the sale.
    sqlx::query(
        "update events set starts_at = now() - interval '8 days', ends_at = now() - interval '7 days'
         where id = $1::uuid",
    )
    .bind(&event)
    .execute(&app.state.db)
    .await
    .unwrap();
    let _: i64 = app.state.redis.del(sale_keys(sale)).await.unwrap();
    for _ in 0..2 {
        let (s, figures) = org.api.get(&format!("/sales/{}", sale.0)).await;
        assert_eq!(s, StatusCode::OK, "{figures}");
        assert_eq!(figures["sold"], 3, "{figures}");
        let (s, page) = org.browser.page(&format!("/admin/sales/{}", sale.0)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
    }
    let (s, body) = org
        .api
        .patch(&format!("/sales/{}", sale.0), serde_json::json!({ "state": "closed" }))
        .await;
    assert!(s.is_success(), "{body}");
}
