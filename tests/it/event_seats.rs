//! An event's sales share its seats, and Postgres alone keeps that promise, whatever Redis
//! believes: orders are written straight through `db::orders::place`, as a checkout writes them
//! after Redis admitted its buyer, so nothing in front of Postgres can hide an oversell.

use std::sync::Arc;
use std::time::Duration;

use boxoffice::db;
use boxoffice::db::orders::Placement;
use boxoffice::db::sales::SaleRecord;
use boxoffice::sale::SaleId;
use sqlx::{Connection, PgConnection};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::support::{World, ada};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn place(w: &World, sale: SaleId, quantity: u8) -> Placement {
    db::orders::place(&w.db, sale, Uuid::new_v4(), quantity, &ada(), None, TIMEOUT)
        .await
        .expect("the order is written or refused")
}

/// Tickets counted as sold in Postgres over every sale of the event of `sale`, three ways: the
/// event's own counter, the sales' counters and the orders themselves.
async fn event_sold(w: &World, sale: &SaleRecord) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select sold from events where id = $1)::bigint,
                (select coalesce(sum(sold), 0) from ticket_sales where event_id = $1)::bigint,
                (select coalesce(sum(o.quantity), 0) from orders o
                   join ticket_sales s on s.id = o.sale_id where s.event_id = $1)::bigint",
    )
    .bind(sale.event_id)
    .fetch_one(&w.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn concurrent_orders_in_two_sales_never_oversell_the_event() {
    let w = Arc::new(World::new().await);
    // 30 seats, and two sales that each believe they may sell all 30.
    let presale = w.sale(30, 60).await;
    let general = w.another_sale_of(&presale, 30).await;
    let ids = [presale.sale_id(), general.sale_id()];

    // 60 orders of one ticket released at once, half in each sale: real parallel transactions
    // (the pool has 16 connections, so up to 16 are in flight together).
    let start = Arc::new(Barrier::new(60));
    let orders: Vec<_> = (0..60)
        .map(|i| {
            let (w, start, sale) = (w.clone(), start.clone(), ids[i % 2]);
            tokio::spawn(async move {
                start.wait().await;
                place(&w, sale, 1).await
            })
        })
        .collect();
    let mut placed = 0;
    for order in orders {
        match order.await.unwrap() {
            Placement::Placed(_) => placed += 1,
            Placement::SoldOut => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    assert_eq!(placed, 30, "every seat sold, none twice");
    assert_eq!(event_sold(&w, &presale).await, (30, 30, 30));
}

#[tokio::test]
async fn two_orders_queued_on_the_event_row_cannot_both_take_its_last_seats() {
    let w = World::new().await;
    // 100 seats: a presale with 98 sold and a general sale with none.
    let presale = w.sale(100, 60).await;
    let general = w.another_sale_of(&presale, 100).await;
    for _ in 0..16 {
        assert!(matches!(place(&w, presale.sale_id(), 6).await, Placement::Placed(_)));
    }
    assert!(matches!(place(&w, presale.sale_id(), 2).await, Placement::Placed(_)));
    assert_eq!(event_sold(&w, &presale).await.0, 98);

    // A third transaction holds the event row, as an order in flight does...
    let mut holder = PgConnection::connect(&w.settings.database_url).await.unwrap();
    sqlx::query("begin").execute(&mut holder).await.unwrap();
    sqlx::query("select 1 from events where id = $1 for update")
        .bind(presale.event_id)
        .execute(&mut holder)
        .await
        .unwrap();

    // ...while an order of 2 in each sale starts and queues behind it: both statements begin
    // (and take their snapshots) before either order commits.
    let in_presale = tokio::spawn({
        let (db, sale) = (w.db.clone(), presale.sale_id());
        async move { db::orders::place(&db, sale, Uuid::new_v4(), 2, &ada(), None, TIMEOUT).await }
    });
    wait_for_lock_waiters(&w, 1).await;
    let in_general = tokio::spawn({
        let (db, sale) = (w.db.clone(), general.sale_id());
        async move { db::orders::place(&db, sale, Uuid::new_v4(), 2, &ada(), None, TIMEOUT).await }
    });
    wait_for_lock_waiters(&w, 2).await;
    sqlx::query("commit").execute(&mut holder).await.unwrap();

    let outcomes = [in_presale.await.unwrap().unwrap(), in_general.await.unwrap().unwrap()];
    let placed = outcomes.iter().filter(|o| matches!(o, Placement::Placed(_))).count();
    let sold_out = outcomes.iter().filter(|o| matches!(o, Placement::SoldOut)).count();
    assert_eq!((placed, sold_out), (1, 1), "{outcomes:?}");
    assert_eq!(event_sold(&w, &presale).await, (100, 100, 100));
}

/// Waits until `n` sessions of this test's database wait for a row lock.
async fn wait_for_lock_waiters(w: &World, n: i64) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&w.db)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} orders never queued on the event row");
}

#[tokio::test]
async fn cancellations_and_new_orders_racing_on_one_event_all_go_through_and_agree() {
    let w = Arc::new(World::new().await);
    let sale = w.sale(200, 60).await;
    let id = sale.sale_id();
    let pay_within = Some(Duration::from_secs(600));
    // Orders awaiting payment, to be cancelled while new orders are written.
    let mut awaiting = Vec::new();
    for _ in 0..30 {
        match db::orders::place(&w.db, id, Uuid::new_v4(), 2, &ada(), pay_within, TIMEOUT)
            .await
            .unwrap()
        {
            Placement::Placed(order) => awaiting.push(order.id),
            other => panic!("unexpected {other:?}"),
        }
    }

    // Every cancellation and every new order released at once: each takes the event's and the
    // sale's rows, so they must take them in the same order or deadlock.
    let start = Arc::new(Barrier::new(60));
    let mut racing = Vec::new();
    for order in awaiting {
        let (w, start) = (w.clone(), start.clone());
        racing.push(tokio::spawn(async move {
            start.wait().await;
            db::orders::cancel(&w.db, order)
                .await
                .map(|c| assert!(c.is_some()))
                .err()
        }));
    }
    for _ in 0..30 {
        let (w, start) = (w.clone(), start.clone());
        racing.push(tokio::spawn(async move {
            start.wait().await;
            db::orders::place(&w.db, id, Uuid::new_v4(), 2, &ada(), None, TIMEOUT)
                .await
                .map(|p| assert!(matches!(p, Placement::Placed(_)), "{p:?}"))
                .err()
        }));
    }
    for outcome in racing {
        if let Some(e) = outcome.await.unwrap() {
            panic!("a cancellation or an order failed: {e}");
        }
    }

    let (event, sales, held_by_orders): (i64, i64, i64) = sqlx::query_as(
        "select (select sold from events where id = $1)::bigint,
                (select coalesce(sum(sold), 0) from ticket_sales where event_id = $1)::bigint,
                (select coalesce(sum(o.quantity), 0) from orders o join ticket_sales s on s.id = o.sale_id
                  where s.event_id = $1 and o.state <> 'cancelled')::bigint",
    )
    .bind(sale.event_id)
    .fetch_one(&w.db)
    .await
    .unwrap();
    assert_eq!((event, sales, held_by_orders), (60, 60, 60));
}
