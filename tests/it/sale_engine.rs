//! The sale engine's promises: quiet and busy sales, FIFO, hold expiry, sold out, recovery
//! from a lost Redis state, Postgres's own guard, and typed errors for bad input.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use boxoffice::db;
use boxoffice::sale::{Buyer, Owner, ReservationCode, ReservationState, SaleError, SaleId, SaleState};
use fred::prelude::*;
use rand::RngExt;

use crate::support::World;

fn buyer() -> Buyer {
    crate::support::ada()
}

async fn join(w: &World, sale: SaleId, owner: &Owner, qty: i64) -> boxoffice::sale::Reservation {
    w.sales.join(sale, owner, w.sales.quantity(qty).unwrap()).await.unwrap()
}

#[tokio::test]
async fn quiet_sale_admits_at_once() {
    let w = World::new().await;
    let sale = w.sale(10, 60).await.sale_id();
    let owner = Owner::random();
    let r = join(&w, sale, &owner, 2).await;
    assert_eq!(r.state, ReservationState::Admitted);
    assert!(r.created);
    let expires = r.expires_at.expect("an admitted hold has an expiry");
    let hold = (expires - r.server_now).num_milliseconds();
    assert!((59_000..=60_000).contains(&hold), "hold of {hold} ms");

    let order = w.sales.confirm(&r.code, &owner, &buyer()).await.unwrap();
    assert_eq!(order.quantity, 2);
    assert_eq!(order.unit_price_minor, 2500);
    assert_eq!(order.total_minor(), 5000);
    assert_eq!(w.pg_sold(sale).await, 2);
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held, f.waiting), (2, 0, 0));
    assert_eq!(
        w.sales.status(&r.code, &owner).await.unwrap().state,
        ReservationState::Confirmed
    );
}

/// The sale hash is kept a hash table, not Redis's compact encoding of small hashes, which it
/// would have at its size (see `HASH_TABLE_MARK` in lua/common.lua): every script reads a dozen
/// of its fields.
#[tokio::test]
async fn the_sale_hash_is_kept_a_hash_table() {
    let w = World::new().await;
    let sale = w.sale(10, 60).await.sale_id();
    join(&w, sale, &Owner::random(), 1).await;
    let key = boxoffice::sale::sale_key(sale, boxoffice::sale::SaleKey::Sale);
    let (fields, encoding): (i64, String) = (
        w.redis.next().hlen(&key).await.unwrap(),
        w.redis
            .next()
            .custom(
                fred::types::CustomCommand::new_static("OBJECT", fred::types::ClusterHash::FirstKey, false),
                vec!["ENCODING", key.as_str()],
            )
            .await
            .unwrap(),
    );
    assert!(fields < 128, "{fields} fields: small enough for the compact encoding");
    assert_eq!(encoding, "hashtable");
}

#[tokio::test]
async fn joining_again_from_the_same_session_returns_the_same_reservation() {
    let w = World::new().await;
    let sale = w.sale(1, 60).await.sale_id();
    let (a, b) = (Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 1).await;
    let again = join(&w, sale, &a, 4).await;
    assert_eq!(again.code, held.code);
    assert!(!again.created);
    assert_eq!(again.quantity, 1, "the first reservation stands, not a second one");

    let waiting = join(&w, sale, &b, 1).await;
    let waiting_again = join(&w, sale, &b, 1).await;
    assert_eq!(waiting.state, ReservationState::Waiting);
    assert_eq!(waiting_again.code, waiting.code);
    assert_eq!(w.sales.figures(sale).await.unwrap().waiting, 1);
}

/// An owner's first code is derived from the owner, so the owners index holds only those who
/// joined again: what a racing rejoin, a rejoin after the reservation ended and a rejoin after
/// Redis lost the sale must still get right.
#[tokio::test]
async fn an_owners_first_code_is_its_own_and_a_later_reservation_never_reuses_it() {
    let w = World::new().await;
    let sale = w.sale(10, 60).await.sale_id();
    let owners_key = boxoffice::sale::sale_key(sale, boxoffice::sale::SaleKey::Owners);
    let owner = Owner::random();

    // Eight joins of one session at once: one reservation, under the owner's first code, and
    // nothing in the owners index.
    let racing =
        futures::future::join_all((0..8).map(|_| w.sales.join(sale, &owner, w.sales.quantity(1).unwrap()))).await;
    let codes: std::collections::HashSet<ReservationCode> = racing.iter().map(|r| r.as_ref().unwrap().code).collect();
    assert_eq!(codes.len(), 1, "one reservation for one session");
    let first = *codes.iter().next().unwrap();
    assert_eq!(first, ReservationCode::first_of(sale, &owner));
    assert_eq!(racing.iter().filter(|r| r.as_ref().unwrap().created).count(), 1);
    let indexed: i64 = w.redis.hlen(&owners_key).await.unwrap();
    assert_eq!(indexed, 0, "a buyer who joined once costs the owners index nothing");

    // Bought, then a second reservation: a new code, indexed, and joining again returns it.
    w.sales.confirm(&first, &owner, &buyer()).await.unwrap();
    let second = join(&w, sale, &owner, 1).await;
    assert!(second.created);
    assert_ne!(second.code, first);
    assert_eq!(join(&w, sale, &owner, 1).await.code, second.code);
    w.sales.release(&second.code, &owner).await.unwrap();
    let third = join(&w, sale, &owner, 1).await;
    assert!(third.created);
    assert!(third.code != first && third.code != second.code);
    w.sales.release(&third.code, &owner).await.unwrap();

    // Redis forgets the sale: the first code has an order in Postgres and is not given out again.
    let _: i64 = w.redis.del(boxoffice::sale::sale_keys(sale)).await.unwrap();
    let after = join(&w, sale, &owner, 2).await;
    assert!(after.created);
    assert_ne!(after.code, first, "the code of an order is never a new reservation's");
    w.sales.confirm(&after.code, &owner, &buyer()).await.unwrap();
    assert_eq!(w.pg_sold(sale).await, 3);
}

#[tokio::test]
async fn busy_sale_admits_in_the_order_buyers_joined() {
    let w = World::new().await;
    let sale = w.sale(3, 60).await.sale_id();
    let mut holders = Vec::new();
    for _ in 0..3 {
        let o = Owner::random();
        let r = join(&w, sale, &o, 1).await;
        assert_eq!(r.state, ReservationState::Admitted);
        holders.push((o, r.code));
    }
    let mut waiters = Vec::new();
    for i in 0..8u64 {
        let o = Owner::random();
        let r = join(&w, sale, &o, 1).await;
        assert_eq!(r.state, ReservationState::Waiting);
        assert_eq!(r.position, i + 1);
        assert_eq!(r.waiting, i + 1);
        waiters.push((o, r.code));
    }
    // Each released hold admits exactly the next buyer in line, whoever polls.
    for (round, (owner, code)) in holders.iter().enumerate() {
        w.sales.release(code, owner).await.unwrap();
        for (i, (o, c)) in waiters.iter().enumerate().rev() {
            let s = w.sales.status(c, o).await.unwrap();
            if i <= round {
                assert_eq!(s.state, ReservationState::Admitted, "waiter {i} after release {round}");
            } else {
                assert_eq!(s.state, ReservationState::Waiting, "waiter {i} after release {round}");
                assert_eq!(s.position as usize, i - round);
            }
        }
        assert_waiting_count_is_true(&w, sale).await;
    }
    // Leaving the queue counts too.
    let (o, c) = &waiters[7];
    w.sales.release(c, o).await.unwrap();
    assert_eq!(w.sales.figures(sale).await.unwrap().waiting, 4);
    assert_waiting_count_is_true(&w, sale).await;
}

#[tokio::test]
async fn free_tickets_go_to_the_head_in_one_batch() {
    let w = World::new().await;
    let sale = w.sale(5, 60).await.sale_id();
    let big = Owner::random();
    let big_hold = join(&w, sale, &big, 5).await;
    let waiters: Vec<_> = futures::future::join_all((0..5).map(|_| async {
        let o = Owner::random();
        let r = join(&w, sale, &o, 1).await;
        (o, r)
    }))
    .await;
    assert!(waiters.iter().all(|(_, r)| r.state == ReservationState::Waiting));
    w.sales.release(&big_hold.code, &big).await.unwrap();
    // The release itself admitted all five; none had to poll first.
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting, f.active), (5, 0, 5));
}

#[tokio::test]
async fn a_lapsed_hold_gives_its_tickets_to_the_next_buyer() {
    let w = World::new().await;
    let sale = w.sale(2, 1).await.sale_id();
    let (a, b) = (Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 2).await;
    assert_eq!(held.state, ReservationState::Admitted);
    let waiting = join(&w, sale, &b, 2).await;
    assert_eq!(waiting.state, ReservationState::Waiting);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = w.sales.status(&waiting.code, &b).await.unwrap();
    assert_eq!(next.state, ReservationState::Admitted);
    assert_eq!(
        w.sales.status(&held.code, &a).await.unwrap().state,
        ReservationState::Expired
    );

    let err = w.sales.confirm(&held.code, &a, &buyer()).await.unwrap_err();
    assert!(
        matches!(err, SaleError::NotAdmitted(ReservationState::Expired)),
        "{err:?}"
    );
    assert_eq!(err.code(), "hold_expired");
    assert_eq!(w.pg_sold(sale).await, 0);
    w.sales.confirm(&next.code, &b, &buyer()).await.unwrap();
    assert_eq!(w.pg_sold(sale).await, 2);
}

#[tokio::test]
async fn head_that_can_never_fit_is_sold_out_but_a_head_waiting_for_holds_keeps_waiting() {
    let w = World::new().await;
    let sale = w.sale(4, 60).await.sale_id();
    let (a, b, c) = (Owner::random(), Owner::random(), Owner::random());
    let a_hold = join(&w, sale, &a, 3).await;
    let b_wait = join(&w, sale, &b, 2).await;
    let c_wait = join(&w, sale, &c, 1).await;
    assert_eq!(b_wait.state, ReservationState::Waiting);
    // Only one ticket is free, but A's hold may still lapse: B keeps waiting, C stays behind B.
    assert_eq!(
        w.sales.status(&b_wait.code, &b).await.unwrap().state,
        ReservationState::Waiting
    );
    assert_eq!(
        w.sales.status(&c_wait.code, &c).await.unwrap().state,
        ReservationState::Waiting
    );

    w.sales.confirm(&a_hold.code, &a, &buyer()).await.unwrap();
    // One ticket is left unsold: B (2) can never be served, C (1) can.
    assert_eq!(
        w.sales.status(&b_wait.code, &b).await.unwrap().state,
        ReservationState::SoldOut
    );
    assert_eq!(
        w.sales.status(&c_wait.code, &c).await.unwrap().state,
        ReservationState::Admitted
    );
    // A newcomer who wants more than is unsold is told at once.
    let late = join(&w, sale, &Owner::random(), 2).await;
    assert_eq!(late.state, ReservationState::SoldOut);
}

#[tokio::test]
async fn flash_crowd_of_2000_never_oversells() {
    const CAPACITY: i64 = 50;
    let w = Arc::new(World::new().await);
    let sale = w.sale(CAPACITY as i32, 60).await.sale_id();

    // Watches Redis and Postgres the whole time: sold never beyond capacity at any moment.
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (w, running) = (w.clone(), running.clone());
        tokio::spawn(async move {
            let mut looks = 0;
            while running.load(Ordering::Relaxed) {
                let f = w.sales.figures(sale).await.unwrap();
                assert!(f.sold + f.held <= CAPACITY, "Redis: sold {} + held {}", f.sold, f.held);
                assert!(i64::from(w.pg_sold(sale).await) <= CAPACITY);
                looks += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            looks
        })
    };

    let buyers = (0..2000).map(|_| {
        let w = w.clone();
        tokio::spawn(async move {
            let owner = Owner::random();
            let qty = rand::rng().random_range(1..=6);
            let mut r = w
                .sales
                .join(sale, &owner, w.sales.quantity(qty).unwrap())
                .await
                .unwrap();
            loop {
                match r.state {
                    ReservationState::Waiting => {
                        let pause = rand::rng().random_range(20..60);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        r = w.sales.status(&r.code, &owner).await.unwrap();
                    }
                    ReservationState::Admitted => {
                        let order = w.sales.confirm(&r.code, &owner, &buyer()).await.unwrap();
                        assert_eq!(i64::from(order.quantity), qty);
                        return (ReservationState::Confirmed, qty);
                    }
                    other => return (other, qty),
                }
            }
        })
    });
    // Bounded: an engine that never tells a waiting buyer its end (admitted, sold out) would
    // keep the buyers polling for ever; it fails here instead of hanging the run.
    let outcomes: Vec<(ReservationState, i64)> =
        tokio::time::timeout(Duration::from_secs(120), futures::future::try_join_all(buyers))
            .await
            .expect("every buyer of the crowd learns its end within two minutes")
            .unwrap();
    running.store(false, Ordering::Relaxed);
    assert!(watcher.await.unwrap() > 0);

    let confirmed: i64 = outcomes
        .iter()
        .filter(|(s, _)| *s == ReservationState::Confirmed)
        .map(|(_, q)| q)
        .sum();
    let mut by_state: HashMap<ReservationState, usize> = HashMap::new();
    for (s, _) in &outcomes {
        *by_state.entry(*s).or_default() += 1;
    }
    assert_eq!(
        by_state.len(),
        2,
        "every buyer ends confirmed or sold out: {by_state:?}"
    );
    assert!(by_state[&ReservationState::SoldOut] > 1900);
    // With ~1950 buyers left over, some always want the last tickets: the sale sells out.
    assert_eq!(confirmed, CAPACITY);
    assert_eq!(i64::from(w.pg_sold(sale).await), CAPACITY);
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held, f.waiting), (CAPACITY, 0, 0));
    assert_waiting_count_is_true(&w, sale).await;
}

#[tokio::test]
async fn redis_losing_the_sale_loses_no_order_and_does_not_oversell() {
    let w = World::new().await;
    let sale = w.sale(10, 60).await.sale_id();
    for qty in [3, 1] {
        let o = Owner::random();
        let r = join(&w, sale, &o, qty).await;
        w.sales.confirm(&r.code, &o, &buyer()).await.unwrap();
    }
    let holder = Owner::random();
    let held = join(&w, sale, &holder, 2).await;
    assert_eq!(held.state, ReservationState::Admitted);

    // Redis forgets everything about the sale, as after a restart.
    let keys = boxoffice::sale::sale_keys(sale);
    let deleted: i64 = w.redis.del(keys.clone()).await.unwrap();
    assert!(deleted >= 4, "sale, holds, res, owners and done existed");
    let left: i64 = w.redis.exists(keys).await.unwrap();
    assert_eq!(left, 0);

    // The next call rebuilds the sale from Postgres: the 4 sold stay sold.
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.capacity, f.sold, f.held), (10, 4, 0));
    // The lost hold is gone with the rest of the live state.
    assert!(matches!(
        w.sales.status(&held.code, &holder).await,
        Err(SaleError::UnknownReservation)
    ));

    let mut sold_after = 0;
    for _ in 0..10 {
        let o = Owner::random();
        let r = join(&w, sale, &o, 1).await;
        if r.state == ReservationState::Admitted {
            w.sales.confirm(&r.code, &o, &buyer()).await.unwrap();
            sold_after += 1;
        } else {
            assert_eq!(r.state, ReservationState::SoldOut);
        }
    }
    assert_eq!(sold_after, 6);
    assert_eq!(w.pg_sold(sale).await, 10);
}

#[tokio::test]
async fn an_order_committed_without_its_redis_step_is_counted_by_sync() {
    let w = World::new().await;
    let sale = w.sale(3, 60).await.sale_id();
    let o = Owner::random();
    let r = join(&w, sale, &o, 2).await;
    // As if the app died right after Postgres committed: the order exists, Redis never heard.
    let placed = db::orders::place(&w.db, sale, r.code.token, 2, &buyer(), None, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(placed, db::orders::Placement::Placed(_)));
    w.sales.sync(sale).await.unwrap();
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (2, 0));
    assert_eq!(
        w.sales.status(&r.code, &o).await.unwrap().state,
        ReservationState::Confirmed
    );
    // Confirming again returns the same order rather than a second one.
    let err = w.sales.confirm(&r.code, &o, &buyer()).await.unwrap_err();
    assert!(
        matches!(err, SaleError::NotAdmitted(ReservationState::Confirmed)),
        "{err:?}"
    );
    assert_eq!(w.pg_sold(sale).await, 2);
}

#[tokio::test]
async fn postgres_alone_refuses_to_sell_beyond_capacity() {
    let w = World::new().await;
    let sale = w.sale(5, 60).await.sale_id();
    let place = |qty: u8| {
        let w = &w;
        async move {
            let code = ReservationCode::new(sale);
            db::orders::place(&w.db, sale, code.token, qty, &buyer(), None, Duration::from_secs(5))
                .await
                .unwrap()
        }
    };
    assert!(matches!(place(4).await, db::orders::Placement::Placed(_)));
    assert!(matches!(place(2).await, db::orders::Placement::SoldOut));
    assert!(matches!(place(1).await, db::orders::Placement::Placed(_)));
    assert!(matches!(place(1).await, db::orders::Placement::SoldOut));
    assert_eq!(w.pg_sold(sale).await, 5);
    // Even a statement that skips the guard hits the table's own check.
    let err = sqlx::query("update ticket_sales set sold = capacity + 1 where id = $1")
        .bind(sale.0)
        .execute(&w.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never_oversold"), "{err}");
}

#[tokio::test]
async fn a_wrong_redis_state_cannot_oversell_and_is_corrected() {
    let w = World::new().await;
    let sale = w.sale(2, 60).await.sale_id();
    let first = Owner::random();
    let r = join(&w, sale, &first, 2).await;
    w.sales.confirm(&r.code, &first, &buyer()).await.unwrap();
    // Redis is made to forget the sold tickets (a bug, a bad restore): it admits again.
    let sale_key = format!("bo:{{{}}}:sale", sale.0.simple());
    let _: () = w.redis.hset(&sale_key, ("sold", 0)).await.unwrap();
    let second = Owner::random();
    let r = join(&w, sale, &second, 1).await;
    assert_eq!(r.state, ReservationState::Admitted);
    // Postgres refuses the order, and Redis is put right on the spot.
    let err = w.sales.confirm(&r.code, &second, &buyer()).await.unwrap_err();
    assert!(matches!(err, SaleError::SoldOut), "{err:?}");
    assert_eq!(w.pg_sold(sale).await, 2);
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.sold, f.held), (2, 0));
    assert_eq!(
        w.sales.status(&r.code, &second).await.unwrap().state,
        ReservationState::SoldOut
    );
    let late = join(&w, sale, &Owner::random(), 1).await;
    assert_eq!(late.state, ReservationState::SoldOut);
}

#[tokio::test]
async fn unit_price_is_the_sales_price_when_the_order_is_made() {
    let w = World::new().await;
    let record = w.sale(5, 60).await;
    let sale = record.sale_id();
    let o = Owner::random();
    let r = join(&w, sale, &o, 2).await;
    sqlx::query("update ticket_sales set price_minor = 3100 where id = $1")
        .bind(sale.0)
        .execute(&w.db)
        .await
        .unwrap();
    sqlx::query("update events set price_minor = 9900 where id = $1")
        .bind(record.event_id)
        .execute(&w.db)
        .await
        .unwrap();
    let order = w.sales.confirm(&r.code, &o, &buyer()).await.unwrap();
    assert_eq!(order.unit_price_minor, 3100);
    assert_eq!(order.total_minor(), 6200);
    sqlx::query("update ticket_sales set price_minor = 100 where id = $1")
        .bind(sale.0)
        .execute(&w.db)
        .await
        .unwrap();
    let kept = db::orders::find_by_reservation(&w.db, r.code.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.unit_price_minor, 3100);
}

#[tokio::test]
async fn another_session_cannot_read_confirm_or_release_a_reservation() {
    let w = World::new().await;
    let sale = w.sale(5, 60).await.sale_id();
    let (me, thief) = (Owner::random(), Owner::random());
    let r = join(&w, sale, &me, 2).await;
    assert!(matches!(
        w.sales.status(&r.code, &thief).await,
        Err(SaleError::UnknownReservation)
    ));
    assert!(matches!(
        w.sales.release(&r.code, &thief).await,
        Err(SaleError::UnknownReservation)
    ));
    assert!(matches!(
        w.sales.confirm(&r.code, &thief, &buyer()).await,
        Err(SaleError::UnknownReservation)
    ));
    assert_eq!(
        w.sales.status(&r.code, &me).await.unwrap().state,
        ReservationState::Admitted
    );
    assert_eq!(w.pg_sold(sale).await, 0);
}

#[tokio::test]
async fn bad_input_gets_a_typed_error_and_changes_nothing() {
    let w = World::new().await;
    let sale = w.sale(5, 60).await.sale_id();
    let owner = Owner::random();
    for n in [0, 7, -1, 1000] {
        assert!(
            matches!(w.sales.quantity(n), Err(SaleError::BadQuantity { max: 6 })),
            "{n}"
        );
    }
    let before = w.sales.figures(sale).await.unwrap();

    let unknown = SaleId::new();
    let err = w
        .sales
        .join(unknown, &owner, w.sales.quantity(1).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, SaleError::UnknownSale), "{err:?}");
    assert!(matches!(
        "not-a-code".parse::<ReservationCode>(),
        Err(SaleError::MalformedCode)
    ));
    let forged = ReservationCode::new(sale);
    assert!(matches!(
        w.sales.status(&forged, &owner).await,
        Err(SaleError::UnknownReservation)
    ));
    assert!(matches!(
        w.sales.release(&forged, &owner).await,
        Err(SaleError::UnknownReservation)
    ));

    let after = w.sales.figures(sale).await.unwrap();
    assert_eq!(
        (before.sold, before.held, before.waiting, before.admitted),
        (after.sold, after.held, after.waiting, after.admitted)
    );

    let closed = w.sale(5, 60).await.sale_id();
    w.sales.set_state(closed, SaleState::Closed).await.unwrap();
    let err = w
        .sales
        .join(closed, &owner, w.sales.quantity(1).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, SaleError::Closed), "{err:?}");

    let later = w
        .sale_with(5, 60, 0, chrono::Utc::now() + chrono::Duration::hours(1))
        .await
        .sale_id();
    let err = w
        .sales
        .join(later, &owner, w.sales.quantity(1).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, SaleError::NotOpenYet(_)), "{err:?}");
    assert_eq!(w.sales.figures(later).await.unwrap().waiting, 0);
}

#[tokio::test]
async fn a_paused_sale_queues_buyers_and_admits_them_on_resume() {
    let w = World::new().await;
    let sale = w.sale(5, 60).await.sale_id();
    w.sales.set_state(sale, SaleState::Paused).await.unwrap();
    let o = Owner::random();
    let r = join(&w, sale, &o, 2).await;
    assert_eq!(r.state, ReservationState::Waiting);
    w.sales.set_state(sale, SaleState::Open).await.unwrap();
    assert_eq!(
        w.sales.status(&r.code, &o).await.unwrap().state,
        ReservationState::Admitted
    );
}

#[tokio::test]
async fn the_active_shopper_limit_keeps_the_rest_waiting() {
    let w = World::new().await;
    let sale = w.sale_with(10, 60, 2, chrono::Utc::now()).await.sale_id();
    let mut states = Vec::new();
    for _ in 0..3 {
        states.push(join(&w, sale, &Owner::random(), 1).await.state);
    }
    assert_eq!(
        states,
        [
            ReservationState::Admitted,
            ReservationState::Admitted,
            ReservationState::Waiting
        ]
    );
}

/// No script that frees an active shopper's place admits by itself (a checkout ends its hold in
/// Postgres's time): the waiting buyers' own polls do, though no hold is due to lapse, racing
/// the checkout; the one freed place goes to the head, once.
#[tokio::test]
async fn a_checkout_lets_the_next_buyer_in_on_its_own_poll() {
    let w = World::new().await;
    let sale = w.sale_with(10, 60, 1, chrono::Utc::now()).await.sale_id();
    let shopper = Owner::random();
    let shopping = join(&w, sale, &shopper, 1).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let owner = Owner::random();
        let r = join(&w, sale, &owner, 1).await;
        waiting.push((owner, r));
    }
    assert_eq!(shopping.state, ReservationState::Admitted);
    assert!(waiting.iter().all(|(_, r)| r.state == ReservationState::Waiting));
    let polls = waiting.iter().map(|(owner, r)| {
        let (sales, owner, code) = (w.sales.clone(), owner.clone(), r.code);
        tokio::spawn(async move {
            for _ in 0..20 {
                sales.status(&code, &owner).await.unwrap();
            }
        })
    });
    let polls: Vec<_> = polls.collect();
    w.sales.confirm(&shopping.code, &shopper, &buyer()).await.unwrap();
    for poll in polls {
        poll.await.unwrap();
    }
    let mut states = Vec::new();
    for (owner, r) in &waiting {
        states.push(w.sales.status(&r.code, owner).await.unwrap().state);
    }
    assert_eq!(
        states,
        [
            ReservationState::Admitted,
            ReservationState::Waiting,
            ReservationState::Waiting
        ]
    );
}

#[tokio::test]
async fn a_released_hold_goes_back_at_once() {
    let w = World::new().await;
    let sale = w.sale(2, 60).await.sale_id();
    let (a, b) = (Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 2).await;
    let waiting = join(&w, sale, &b, 1).await;
    let released = w.sales.release(&held.code, &a).await.unwrap();
    assert_eq!(released.state, ReservationState::Released);
    assert_eq!(
        w.sales.status(&waiting.code, &b).await.unwrap().state,
        ReservationState::Admitted
    );
    let err = w.sales.confirm(&held.code, &a, &buyer()).await.unwrap_err();
    assert!(
        matches!(err, SaleError::NotAdmitted(ReservationState::Released)),
        "{err:?}"
    );
    // Giving up again is harmless; joining again makes a new reservation.
    assert_eq!(
        w.sales.release(&held.code, &a).await.unwrap().state,
        ReservationState::Released
    );
    let again = join(&w, sale, &a, 1).await;
    assert_ne!(again.code, held.code);
    assert!(again.created);
}

async fn world_with_short_presence(abandon_secs: u32, claim_secs: u32) -> World {
    let settings = boxoffice::config::Settings {
        abandon_secs,
        claim_secs,
        ..crate::support::test_settings()
    };
    World::with_settings(settings).await
}

#[tokio::test]
async fn a_buyer_who_stopped_polling_loses_the_place_at_the_head() {
    let w = world_with_short_presence(2, 60).await;
    let sale = w.sale(1, 60).await.sale_id();
    let (a, ghost, live) = (Owner::random(), Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 1).await;
    let ghost_r = join(&w, sale, &ghost, 1).await;
    let live_r = join(&w, sale, &live, 1).await;
    assert_eq!(
        (ghost_r.state, live_r.state),
        (ReservationState::Waiting, ReservationState::Waiting)
    );

    // The ghost closed its tab; the live buyer keeps polling.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(w.sales.status(&live_r.code, &live).await.unwrap().position, 2);
    w.sales.release(&held.code, &a).await.unwrap();

    // The ticket skipped the silent head and went to the buyer still here.
    assert_eq!(
        w.sales.status(&live_r.code, &live).await.unwrap().state,
        ReservationState::Admitted
    );
    let back = w.sales.status(&ghost_r.code, &ghost).await.unwrap();
    assert_eq!(back.state, ReservationState::Abandoned);
    // Coming back later means joining again, at the back.
    let rejoined = join(&w, sale, &ghost, 1).await;
    assert!(rejoined.created);
    assert_eq!(rejoined.state, ReservationState::Waiting);
    assert_waiting_count_is_true(&w, sale).await;
}

/// The queue length kept in the sale's hash (what polls report) equals the queue itself.
async fn assert_waiting_count_is_true(w: &World, sale: SaleId) {
    let actual = crate::support::queue::len(&w.redis, sale).await;
    assert_eq!(w.sales.figures(sale).await.unwrap().waiting, actual);
}

#[tokio::test]
async fn a_buyer_admitted_while_away_holds_only_for_the_claim_window() {
    let w = world_with_short_presence(90, 1).await;
    let sale = w.sale(1, 60).await.sale_id();
    let (a, away, next) = (Owner::random(), Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 1).await;
    let away_r = join(&w, sale, &away, 1).await;
    let next_r = join(&w, sale, &next, 1).await;

    // A gives up: the next in line is admitted in its absence, for the claim window only.
    w.sales.release(&held.code, &a).await.unwrap();
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting), (1, 1));
    tokio::time::sleep(Duration::from_millis(1300)).await;

    // It never showed up: its hold lapsed and the ticket moved on.
    assert_eq!(
        w.sales.status(&next_r.code, &next).await.unwrap().state,
        ReservationState::Admitted
    );
    assert_eq!(
        w.sales.status(&away_r.code, &away).await.unwrap().state,
        ReservationState::Expired
    );
}

#[tokio::test]
async fn showing_up_within_the_claim_window_starts_the_full_hold() {
    let w = world_with_short_presence(90, 1).await;
    let sale = w.sale(1, 60).await.sale_id();
    let (a, b) = (Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 1).await;
    let waiting = join(&w, sale, &b, 1).await;
    w.sales.release(&held.code, &a).await.unwrap();

    let claimed = w.sales.status(&waiting.code, &b).await.unwrap();
    assert_eq!(claimed.state, ReservationState::Admitted);
    let hold = (claimed.expires_at.unwrap() - claimed.server_now).num_milliseconds();
    assert!(hold > 59_000, "full hold once claimed, got {hold} ms");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        w.sales.status(&waiting.code, &b).await.unwrap().state,
        ReservationState::Admitted
    );
    w.sales.confirm(&waiting.code, &b, &buyer()).await.unwrap();
}

#[tokio::test]
async fn the_sales_of_one_event_share_its_seats() {
    let w = World::new().await;
    let presale = w.sale(3, 60).await;
    let general = w.another_sale_of(&presale, 3).await;
    let (presale, general_id) = (presale.sale_id(), general.sale_id());
    // Redis learns of the general sale before the presale sells: it thinks 3 are left there.
    w.sales.figures(general_id).await.unwrap();
    let fan = Owner::random();
    let r = join(&w, presale, &fan, 2).await;
    w.sales.confirm(&r.code, &fan, &buyer()).await.unwrap();

    // Postgres knows only one seat is left: two more are refused and Redis is put right.
    let late = Owner::random();
    let r = join(&w, general_id, &late, 2).await;
    assert_eq!(
        r.state,
        ReservationState::Admitted,
        "Redis had not heard of the presale"
    );
    let err = w.sales.confirm(&r.code, &late, &buyer()).await.unwrap_err();
    assert!(matches!(err, SaleError::SoldOut), "{err:?}");
    assert_eq!(w.sales.figures(general_id).await.unwrap().capacity, 1);
    let last = Owner::random();
    let r = join(&w, general_id, &last, 1).await;
    w.sales.confirm(&r.code, &last, &buyer()).await.unwrap();
    assert_eq!(w.pg_sold(presale).await + w.pg_sold(general_id).await, 3);
    assert_eq!(
        join(&w, general_id, &Owner::random(), 1).await.state,
        ReservationState::SoldOut
    );
}

#[tokio::test]
async fn closing_a_sale_ends_the_holds_at_checkout() {
    let w = World::new().await;
    let sale = w.sale(2, 60).await.sale_id();
    let (a, b) = (Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 2).await;
    let waiting = join(&w, sale, &b, 1).await;
    w.sales.set_state(sale, SaleState::Closed).await.unwrap();
    assert_eq!(
        w.sales.status(&held.code, &a).await.unwrap().state,
        ReservationState::Closed
    );
    assert_eq!(
        w.sales.status(&waiting.code, &b).await.unwrap().state,
        ReservationState::Closed
    );
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting), (0, 0));
    // Closing is final.
    assert!(matches!(
        w.sales.set_state(sale, SaleState::Open).await,
        Err(SaleError::UnknownSale)
    ));
}

#[tokio::test]
async fn a_silent_head_that_polls_again_is_still_there() {
    let w = world_with_short_presence(2, 60).await;
    let sale = w.sale(1, 2).await.sale_id();
    let (a, b) = (Owner::random(), Owner::random());
    join(&w, sale, &a, 1).await;
    let waiting = join(&w, sale, &b, 1).await;
    // B says nothing for longer than the abandon time while A's hold lapses; nobody else calls.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    // B's own poll shows B is here: B is admitted, not passed over.
    assert_eq!(
        w.sales.status(&waiting.code, &b).await.unwrap().state,
        ReservationState::Admitted
    );
}

#[tokio::test]
async fn a_sync_that_read_postgres_before_an_order_still_counts_it() {
    let w = World::new().await;
    let sale = w.sale(5, 60).await.sale_id();
    let first = Owner::random();
    let r = join(&w, sale, &first, 2).await;
    // An order commits and is counted by confirm_finish...
    w.sales.confirm(&r.code, &first, &buyer()).await.unwrap();
    // ...while a sync built from an older reading of Postgres (sold 0, no orders) lands late:
    // it must not forget the order.
    let keys = boxoffice::sale::sale_keys(sale);
    let mark: Option<String> = w.redis.hget(&keys[0], "xact_mark").await.unwrap();
    let mark = mark.unwrap_or_else(|| "0".into());
    let sync = format!(
        "{}\n{}",
        include_str!("../../lua/common.lua"),
        include_str!("../../lua/sync.lua")
    );
    let far = chrono::Utc::now().timestamp() + 86_400;
    let args: Vec<String> = ["5", "0", "60000", "15000", "0", "open", "0", "90000", "90000", "0"]
        .iter()
        .map(|s| s.to_string())
        .chain([far.to_string(), "0".into(), mark.clone(), mark])
        .collect();
    let _: fred::types::Value = w.redis.next().eval(sync, keys, args).await.unwrap();
    assert_eq!(w.sales.figures(sale).await.unwrap().sold, 2);
}

/// The arrival number of a waiting reservation (its place in line).
fn seq_of(r: &boxoffice::sale::Reservation) -> u64 {
    r.place.expect("a waiting reservation has a place").seq
}

/// `n` new buyers join at the same moment, a ticket each.
async fn join_at_once(w: &World, sale: SaleId, n: usize) -> Vec<(Owner, boxoffice::sale::Reservation)> {
    futures::future::join_all((0..n).map(|_| async {
        let o = Owner::random();
        let r = join(w, sale, &o, 1).await;
        (o, r)
    }))
    .await
}

/// The departures from the queue the sale counted in block 0 of the line (arrival numbers
/// below 1024), as `lua/common.lua` keeps them.
async fn departed_in_first_block(w: &World, sale: SaleId) -> i64 {
    let key = boxoffice::sale::sale_key(sale, boxoffice::sale::SaleKey::Departed);
    let script = "return redis.call('BITFIELD', KEYS[1], 'GET', 'u16', '#0')[1]";
    w.redis
        .next()
        .eval(script, vec![key], Vec::<String>::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn joins_leaves_and_admissions_racing_keep_fifo_exact_places_and_counts() {
    const CAPACITY: i32 = 4;
    let w = World::new().await;
    let sale = w.sale(CAPACITY, 600).await.sale_id();
    // Every buyer that ever queued: its owner, code and arrival number.
    let mut queued: Vec<(Owner, ReservationCode, u64)> = Vec::new();
    // Buyers at checkout now, and the arrival numbers of those admitted from the queue.
    let mut holding: Vec<(Owner, ReservationCode)> = Vec::new();
    let mut served: Vec<u64> = Vec::new();
    let mut left: Vec<u64> = Vec::new();
    let mut waiting: Vec<(Owner, ReservationCode, u64)> = Vec::new();
    for round in 0..6 {
        // At the same moment: forty buyers join, a third of those waiting leave, and every
        // buyer at checkout gives its tickets back (each admits the next in line).
        let joins = join_at_once(&w, sale, 40);
        let leaving: Vec<_> = waiting
            .iter()
            .filter(|(_, _, seq)| (seq + round) % 3 == 0)
            .cloned()
            .collect();
        let leaves = futures::future::join_all(leaving.iter().map(|(o, code, _)| w.sales.release(code, o)));
        let gives = futures::future::join_all(holding.iter().map(|(o, code)| w.sales.release(code, o)));
        let (joined, leaves, gives) = tokio::join!(joins, leaves, gives);
        for r in leaves.into_iter().chain(gives) {
            assert_eq!(r.unwrap().state, ReservationState::Released);
        }
        left.extend(leaving.iter().map(|(_, _, seq)| *seq));
        holding.clear();
        for (o, r) in joined {
            match r.state {
                ReservationState::Waiting => queued.push((o, r.code, seq_of(&r))),
                ReservationState::Admitted => holding.push((o, r.code)),
                other => panic!("a join found {other:?}"),
            }
        }

        // Every ticket is held again, so nothing moves while each buyer is polled.
        waiting.clear();
        let mut places: Vec<(u64, u64)> = Vec::new();
        for (o, code, seq) in &queued {
            if left.contains(seq) || served.contains(seq) {
                continue;
            }
            let r = w.sales.status(code, o).await.unwrap();
            match r.state {
                ReservationState::Waiting => {
                    assert_eq!(seq_of(&r), *seq);
                    places.push((*seq, r.position));
                    waiting.push((o.clone(), *code, *seq));
                }
                ReservationState::Admitted => {
                    served.push(*seq);
                    holding.push((o.clone(), *code));
                }
                other => panic!("round {round}: a queued buyer is {other:?}"),
            }
        }
        // Strict FIFO: everybody admitted from the queue arrived before everybody waiting.
        if let (Some(last_served), Some(first)) = (served.iter().max(), places.iter().map(|p| p.0).min()) {
            assert!(
                last_served < &first,
                "round {round}: {last_served} admitted before {first}"
            );
        }
        // Exact places 1..n in the order of arrival, and one count everywhere.
        places.sort();
        let in_order: Vec<u64> = places.iter().map(|(_, place)| *place).collect();
        assert_eq!(
            in_order,
            (1..=in_order.len() as u64).collect::<Vec<_>>(),
            "round {round}"
        );
        let f = w.sales.figures(sale).await.unwrap();
        assert_eq!(f.waiting, waiting.len() as i64, "round {round}");
        assert_eq!(crate::support::queue::len(&w.redis, sale).await, f.waiting);
        assert_eq!(f.held, i64::from(CAPACITY));
        assert_eq!(
            departed_in_first_block(&w, sale).await,
            (served.len() + left.len()) as i64,
            "round {round}"
        );
    }
    assert!(
        served.len() >= 20 && left.len() >= 20,
        "{} served, {} left",
        served.len(),
        left.len()
    );
}

#[tokio::test]
async fn places_stay_exact_across_blocks_after_departures_in_their_middle() {
    const CAPACITY: usize = 1200;
    let w = World::new().await;
    let sale = w.sale(CAPACITY as i32, 600).await.sale_id();
    w.sales.set_state(sale, SaleState::Paused).await.unwrap();
    // 2,100 buyers: the arrival numbers of three blocks of 1024.
    let mut buyers: Vec<(Owner, ReservationCode, u64)> = Vec::new();
    for _ in 0..21 {
        let joined = join_at_once(&w, sale, 100).await;
        buyers.extend(joined.into_iter().map(|(o, r)| {
            let seq = seq_of(&r);
            (o, r.code, seq)
        }));
    }
    buyers.sort_by_key(|b| b.2);
    // Departures in the middle of blocks and on their edges, before and after the head's
    // future place.
    let gone = [7u64, 1023, 1024, 1025, 1300, 1500, 2047, 2048];
    for (o, code, _) in buyers.iter().filter(|b| gone.contains(&b.2)) {
        assert_eq!(
            w.sales.release(code, o).await.unwrap().state,
            ReservationState::Released
        );
    }
    let staying: Vec<_> = buyers.iter().filter(|b| !gone.contains(&b.2)).collect();
    w.sales.set_state(sale, SaleState::Open).await.unwrap();
    // Each call admits a batch: a few reads of the figures let the first CAPACITY in.
    for _ in 0..20 {
        if w.sales.figures(sale).await.unwrap().held == CAPACITY as i64 {
            break;
        }
    }
    for (i, (o, code, seq)) in staying.iter().enumerate() {
        let r = w.sales.status(code, o).await.unwrap();
        if i < CAPACITY {
            assert_eq!(r.state, ReservationState::Admitted, "arrival {seq}");
        } else {
            assert_eq!(r.state, ReservationState::Waiting, "arrival {seq}");
            assert_eq!(r.position, (i - CAPACITY + 1) as u64, "arrival {seq}");
        }
    }
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!(f.waiting, (staying.len() - CAPACITY) as i64);
    assert_eq!(crate::support::queue::len(&w.redis, sale).await, f.waiting);
}

#[tokio::test]
async fn a_code_altered_in_its_last_digit_finds_nothing_and_changes_nothing() {
    let w = World::new().await;
    let sale = w.sale(1, 60).await.sale_id();
    let (a, b) = (Owner::random(), Owner::random());
    let held = join(&w, sale, &a, 1).await;
    let waiting = join(&w, sale, &b, 1).await;
    for (owner, r) in [(&a, &held), (&b, &waiting)] {
        let mut bytes = *r.code.token.as_bytes();
        bytes[15] ^= 1;
        let altered = ReservationCode {
            sale,
            token: uuid::Uuid::from_bytes(bytes),
        };
        assert!(matches!(
            w.sales.status(&altered, owner).await,
            Err(SaleError::UnknownReservation)
        ));
        assert!(matches!(
            w.sales.release(&altered, owner).await,
            Err(SaleError::UnknownReservation)
        ));
    }
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.waiting), (1, 1));
    assert_eq!(w.sales.status(&waiting.code, &b).await.unwrap().position, 1);
}
