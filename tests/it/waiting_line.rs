//! The waiting line without Redis (`src/sale/line.rs`): a buyer far from the head is answered
//! from the instance's view of the line, never below its true place and never moving back; a
//! place that is not the session's is refused in-process; FIFO holds with a crowd polling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use boxoffice::config::{Secret, Settings};
use boxoffice::sale::{
    Joining, Owner, Reservation, ReservationCode, ReservationState, SaleError, SaleId, SessionMade, TicketSales,
};
use boxoffice::web::session::owner_from_session_id;
use fred::prelude::*;
use rand::RngExt;

use crate::redis_servers::{Server, redis_cli};
use crate::support::{TestApp, World, http, test_settings};

/// Buyers far enough back that the view answers them: beyond the near places (1000 noted as
/// present, plus two blocks of 1024 arrival numbers).
const CROWD: usize = 3300;

fn signed(settings: &mut Settings) {
    settings.secret = Secret::new("a-secret-shared-by-every-instance-of-the-test".into());
}

async fn join(sales: &TicketSales, sale: SaleId, owner: &Owner) -> Reservation {
    sales.join(sale, owner, sales.quantity(1).unwrap()).await.unwrap()
}

/// Joins `n` buyers one after the other (their arrival order is their join order).
async fn crowd(sales: &TicketSales, sale: SaleId, n: usize) -> Vec<(Owner, Reservation)> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let owner = Owner::random();
        let r = join(sales, sale, &owner).await;
        out.push((owner, r));
    }
    out
}

/// The true 1-based place of a waiting code, from the queue itself.
async fn true_place(redis: &Pool, sale: SaleId, r: &Reservation) -> Option<u64> {
    let seq = r.place.expect("a waiting reservation has a place").seq;
    crate::support::queue::place(redis, sale, seq).await
}

/// Script calls a Redis server has answered.
fn script_calls(port: u16) -> u64 {
    redis_cli(port, &["info", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_far_poll_over_http_makes_no_redis_call_and_a_forged_place_is_refused_in_process() {
    let redis = Server::start();
    let app = TestApp::spawn_with(|s| {
        s.redis_url = redis.url();
        s.rate_poll_per_min = 0;
        signed(s);
    })
    .await;
    let sales = &app.world.sales;
    let sale = app.world.sale(1, 600).await.sale_id();
    crowd(sales, sale, CROWD).await;
    // The buyer polled over HTTP: its session cookie is the owner the code is bound to.
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let owner = owner_from_session_id(&session_id);
    let far = join(sales, sale, &owner).await;
    let place = far.place_text().expect("a waiting reservation has a place in line");
    assert_eq!(place.len(), 50, "{place}");
    let link = format!("{}?place={place}", far.code);
    let cookie = format!("bo_session={session_id}");
    let client = http().build().unwrap();
    let poll = |path: String| {
        let req = client
            .get(app.url(&path))
            .header("cookie", &cookie)
            .header("hx-request", "true");
        async move { req.send().await.unwrap() }
    };
    let api = |code: &str| format!("/api/v1/reservations/{code}");
    let page_poll = |code: &str| {
        let (code, place) = code.split_once('?').unwrap();
        format!("/wait/{code}/poll?start=9999&{place}")
    };
    // The first poll finds no view yet: it waits for the first read of the line.
    assert_eq!(poll(api(&link)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Another session's place and a forged one: the same code, a changed arrival number.
    let mut forged = link.clone().into_bytes();
    let at = 64 + "?place=".len() + 8;
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let stranger = format!("bo_session={}", uuid::Uuid::new_v4().simple());

    let before = script_calls(redis.port);
    let started = Instant::now();
    let polls = 300;
    for i in 0..polls {
        let resp = poll(api(&link)).await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["state"], "waiting");
        assert_eq!(body["position_approximate"], true, "{body}");
        assert_eq!(body["code"], far.code.to_string());
        assert_eq!(body["place"], place.as_str());
        // One buyer at checkout, the crowd before it waiting.
        assert!(body["position"].as_u64().unwrap() >= CROWD as u64);
        if i % 3 == 0 {
            let page = poll(page_poll(&link)).await;
            assert_eq!(page.status(), 200);
            assert!(page.text().await.unwrap().contains("about"));
        }
        assert_eq!(poll(api(&forged)).await.status(), 404);
        assert_eq!(poll(page_poll(&forged)).await.status(), 404);
        let other = client
            .get(app.url(&api(&link)))
            .header("cookie", &stranger)
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
    }
    let calls = script_calls(redis.port) - before;
    let elapsed = started.elapsed();
    // The view's reads (4 a second) and the app's own periodic work, nothing per poll: over
    // a thousand polls (three hundred far ones of each kind, six hundred refused).
    let allowed = elapsed.as_millis() as u64 / 250 + 12;
    assert!(
        calls <= allowed,
        "{calls} script calls for {} polls in {elapsed:?} (at most {allowed})",
        polls * 5
    );
    let truth = true_place(&app.world.redis, sale, &far).await.unwrap();
    let body: serde_json::Value = poll(api(&link)).await.json().await.unwrap();
    assert!(body["position"].as_u64().unwrap() >= truth);
}

/// The JSON poll's short way (`src/web/buyer/api_poll.rs`) answers every poll as the
/// documented operation does: the same poll sent once plainly (the short way) and once with a
/// character of its code escaped (poem-openapi's operation, which decodes it), for a buyer near
/// the head (answered by Redis), one far from it (by the view), a forged place, no place, no
/// session and a malformed code.
#[tokio::test]
async fn the_json_polls_short_way_answers_as_the_operation_does() {
    let app = TestApp::spawn_with(|s| {
        s.rate_poll_per_min = 0;
        signed(s);
    })
    .await;
    let sales = &app.world.sales;
    let sale = app.world.sale(1, 600).await.sale_id();
    let session = || uuid::Uuid::new_v4().simple().to_string();
    let (near_session, far_session) = (session(), session());
    // The first buyer takes the one ticket; the next waits at the head.
    crowd(sales, sale, 1).await;
    let near = join(sales, sale, &owner_from_session_id(&near_session)).await;
    crowd(sales, sale, CROWD).await;
    let far = join(sales, sale, &owner_from_session_id(&far_session)).await;
    let client = http().build().unwrap();
    // Status and body, less the clock, which moves between the two.
    let poll = async |code: &str, query: &str, session: Option<&str>| {
        let mut req = client.get(app.url(&format!("/api/v1/reservations/{code}{query}")));
        if let Some(s) = session {
            req = req.header("cookie", format!("bo_session={s}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let mut body: serde_json::Value = resp.json().await.unwrap();
        if let Some(fields) = body.as_object_mut() {
            fields.remove("server_now");
        }
        (status, body)
    };
    // The code with its first character escaped: the same code once decoded.
    let escaped = |code: &str| format!("%{:02x}{}", code.as_bytes()[0], &code[1..]);
    let place = |r: &Reservation| format!("?place={}", r.place_text().unwrap());
    let far_code = far.code.to_string();
    let mut forged = place(&far).into_bytes();
    forged[7 + 8] = if forged[7 + 8] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let cases = [
        (near.code.to_string(), place(&near), Some(near_session.as_str()), 200),
        (far_code.clone(), place(&far), Some(far_session.as_str()), 200),
        (far_code.clone(), forged, Some(far_session.as_str()), 404),
        (far_code.clone(), String::new(), Some(far_session.as_str()), 200),
        (far_code.clone(), place(&far), None, 404),
        ("c0ffee".to_string(), String::new(), Some(far_session.as_str()), 404),
    ];
    // The first far poll waits for the line's first read: both ways see the view after it.
    poll(&far_code, &place(&far), Some(&far_session)).await;
    for (code, query, session, status) in cases {
        let short = poll(&code, &query, session).await;
        let operation = poll(&escaped(&code), &query, session).await;
        assert_eq!(short.0, status, "{code}{query}: {}", short.1);
        assert_eq!(short, operation, "{code}{query}");
    }
}

/// Two instances of the shop on one Redis, each with its own view of the line.
async fn two_instances() -> (World, TicketSales) {
    let mut settings = test_settings();
    signed(&mut settings);
    let w = World::with_settings(settings.clone()).await;
    let other = TicketSales::new(w.redis.clone(), w.db.clone(), &settings)
        .await
        .unwrap();
    (w, other)
}

#[tokio::test]
async fn the_approximate_place_is_never_below_the_truth_and_never_moves_back() {
    let (w, other) = two_instances().await;
    // One buyer at checkout at a time: each one giving up admits the next, moving the head.
    let sale = w
        .sale_with(10_000, 600, 1, chrono::Utc::now() - chrono::Duration::minutes(1))
        .await
        .sale_id();
    let buyers = crowd(&w.sales, sale, CROWD + 1200).await;
    // Each watched buyer polls as a client does: with the place the last answer gave, starting
    // from the join's, its polls going to one instance and the other in turn.
    let mut watched: Vec<(Owner, Reservation)> = buyers[CROWD..].iter().step_by(60).cloned().collect();
    let stop = Arc::new(AtomicBool::new(false));

    // The head moves: whoever is at checkout gives up, again and again.
    let head = {
        let (w_sales, buyers, stop) = (w.sales.clone(), buyers.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 1500 {
                let (owner, r) = &buyers[i];
                w_sales.release(&r.code, owner).await.unwrap();
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // Buyers in the middle leave, new ones join at the back.
    let churn = {
        let (w_sales, buyers, stop) = (w.sales.clone(), buyers.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (owner, r) = &buyers[rand::rng().random_range(200..CROWD)];
                w_sales.release(&r.code, owner).await.unwrap();
                join(&w_sales, sale, &Owner::random()).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let mut last: Vec<u64> = watched.iter().map(|(_, r)| r.position).collect();
    let mut approximate = 0;
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(6) {
        let sales = if round % 2 == 0 { &w.sales } else { &other };
        round += 1;
        for (i, (owner, r)) in watched.iter_mut().enumerate() {
            let seen = sales.poll(&r.code, r.place_text().as_deref(), owner).await.unwrap();
            // Read after the poll: the truth only shrinks meanwhile, so this is a fair floor.
            let truth = true_place(&w.redis, sale, r).await.unwrap();
            assert_eq!(seen.state, ReservationState::Waiting);
            assert!(
                seen.position >= truth,
                "buyer {i}: told {} while {truth}th",
                seen.position
            );
            assert!(
                seen.position <= last[i],
                "buyer {i} moved back from {} to {}",
                last[i],
                seen.position
            );
            last[i] = seen.position;
            approximate += usize::from(seen.approximate);
            *r = seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    head.await.unwrap();
    churn.await.unwrap();
    assert!(
        approximate > watched.len() * 5,
        "the views answered only {approximate} polls"
    );

    // At rest: never below the truth, and above it by no more than one block's departures.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (owner, r) in &watched {
        let seen = w.sales.poll(&r.code, r.place_text().as_deref(), owner).await.unwrap();
        let truth = true_place(&w.redis, sale, r).await.unwrap();
        assert!(
            seen.position >= truth && seen.position <= truth + 1024,
            "{} vs {truth}",
            seen.position
        );
    }
}

/// The join answers the exact place; the view's bound also counts the buyers of the joiner's
/// own block of arrival numbers who left before it came. The next answers, from either
/// instance's view, show no more than the join did.
#[tokio::test]
async fn the_answers_after_the_join_show_no_more_than_the_join_did() {
    let (w, other) = two_instances().await;
    let sale = w.sale(1, 600).await.sale_id();
    let mut buyers = crowd(&w.sales, sale, CROWD).await;
    // The last arrivals well inside one block (of 1024 numbers), then ten of them leave.
    let in_block = |b: &[(Owner, Reservation)]| {
        let seq = b.last().unwrap().1.place.unwrap().seq % 1024;
        (20..1000).contains(&seq)
    };
    while !in_block(&buyers) {
        buyers.extend(crowd(&w.sales, sale, 1).await);
    }
    for (owner, r) in &buyers[buyers.len() - 10..] {
        w.sales.release(&r.code, owner).await.unwrap();
    }
    let owner = Owner::random();
    let joined = join(&w.sales, sale, &owner).await;
    assert_eq!(Some(joined.position), true_place(&w.redis, sale, &joined).await);
    for sales in [&w.sales, &other] {
        let seen = fresh_poll(sales, &joined, &owner).await;
        assert!(seen.approximate, "answered from the view");
        assert_eq!(
            seen.position, joined.position,
            "shown {} after the join's {}",
            seen.position, joined.position
        );
    }
}

#[tokio::test]
async fn a_place_of_another_session_or_forged_is_refused_and_a_left_buyer_is_told_so() {
    let mut settings = test_settings();
    signed(&mut settings);
    let w = World::with_settings(settings).await;
    let sale = w.sale(1, 600).await.sale_id();
    let buyers = crowd(&w.sales, sale, CROWD + 1).await;
    let (owner, far) = buyers.last().unwrap();
    let place = far.place_text().unwrap();
    let sales = &w.sales;
    let poll = async |code: &ReservationCode, place: &str, owner: &Owner| sales.poll(code, Some(place), owner).await;
    poll(&far.code, &place, owner).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(poll(&far.code, &place, owner).await.unwrap().approximate);
    let mut forged = place.clone().into_bytes();
    forged[5] = if forged[5] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    for bad in [
        poll(&far.code, &place, &Owner::random()).await,
        poll(&ReservationCode::new(sale), &place, owner).await,
        poll(&far.code, &forged, owner).await,
    ] {
        assert!(matches!(bad, Err(SaleError::UnknownReservation)), "{bad:?}");
    }
    // A place that is no place at all is ignored: Redis answers, exactly.
    let plain = poll(&far.code, "not-a-place", owner).await.unwrap();
    assert!(!plain.approximate && plain.place_text() == Some(place.clone()));

    // It leaves: its next poll says so at once, though the view has not been read since.
    let left = w.sales.release(&far.code, owner).await.unwrap();
    assert_eq!(left.state, ReservationState::Released);
    assert_eq!(
        poll(&far.code, &place, owner).await.unwrap().state,
        ReservationState::Released
    );
    // Left through another instance (its own view): told so once that view is read again.
    let other_instance = World::with_settings(w.settings.clone()).await;
    let (owner1, leaver) = &buyers[CROWD - 1];
    assert!(fresh_poll(&w.sales, leaver, owner1).await.approximate);
    other_instance.sales.release(&leaver.code, owner1).await.unwrap();
    assert_eq!(
        fresh_poll(&w.sales, leaver, owner1).await.state,
        ReservationState::Released
    );

    // Far back and the tickets gone for good: told sold out.
    let (owner2, other) = &buyers[CROWD - 2];
    assert!(fresh_poll(&w.sales, other, owner2).await.approximate);
    let (first_owner, first) = &buyers[0];
    w.sales
        .confirm(&first.code, first_owner, &crate::support::ada())
        .await
        .unwrap();
    assert_eq!(
        fresh_poll(&w.sales, other, owner2).await.state,
        ReservationState::SoldOut
    );
    // The sale closes: a buyer far back is told so.
    let (owner3, third) = &buyers[CROWD - 3];
    w.sales
        .set_state(sale, boxoffice::sale::SaleState::Closed)
        .await
        .unwrap();
    assert_eq!(
        fresh_poll(&w.sales, third, owner3).await.state,
        ReservationState::Closed
    );
}

/// A poll once the view has had the time to be read again after whatever just happened (the
/// first poll starts the read, as the crowd's polls do all the time).
async fn fresh_poll(sales: &TicketSales, r: &Reservation, owner: &Owner) -> Reservation {
    let place = r.place_text();
    sales.poll(&r.code, place.as_deref(), owner).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    sales.poll(&r.code, place.as_deref(), owner).await.unwrap()
}

#[tokio::test]
async fn strict_fifo_holds_with_a_crowd_polling() {
    let mut settings = test_settings();
    signed(&mut settings);
    let w = World::with_settings(settings).await;
    let sale = w.sale(40, 600).await.sale_id();
    let buyers = crowd(&w.sales, sale, CROWD + 500).await;
    let stop = Arc::new(AtomicBool::new(false));
    // A crowd polling, near and far, all the while.
    let pollers: Vec<_> = (0..6)
        .map(|_| {
            let (sales, buyers, stop) = (w.sales.clone(), buyers.clone(), stop.clone());
            tokio::spawn(async move {
                let mut polls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (owner, r) = &buyers[rand::rng().random_range(0..buyers.len())];
                    sales.poll(&r.code, r.place_text().as_deref(), owner).await.unwrap();
                    polls += 1;
                }
                polls
            })
        })
        .collect();
    // The first 40 were admitted at once; 200 of them give up one after the other.
    let given_up = 200;
    let mut holders: Vec<usize> = (0..40).collect();
    for next in 0..given_up {
        let i = holders.remove(0);
        let (owner, r) = &buyers[i];
        assert_eq!(
            w.sales.release(&r.code, owner).await.unwrap().state,
            ReservationState::Released
        );
        holders.push(40 + next);
    }
    stop.store(true, Ordering::Relaxed);
    let mut polls = 0;
    for p in pollers {
        polls += p.await.unwrap();
    }
    assert!(polls > 100, "the crowd polled only {polls} times");
    for (i, (owner, r)) in buyers.iter().enumerate() {
        let state = w.sales.status(&r.code, owner).await.unwrap().state;
        let expected = if i < given_up {
            ReservationState::Released
        } else if i < given_up + 40 {
            ReservationState::Admitted
        } else {
            ReservationState::Waiting
        };
        assert_eq!(state, expected, "buyer {i}");
        if i > given_up + 60 {
            break;
        }
    }
}

/// Skips `n` arrival numbers, as if that many buyers had come and gone: joining them for real
/// would take minutes, and a place far from the head is what this is about.
async fn skip_arrivals(redis: &Pool, sale: SaleId, n: i64) {
    let key = boxoffice::sale::sale_key(sale, boxoffice::sale::SaleKey::Sale);
    let _: i64 = redis.next().hincrby(key, "seq", n).await.unwrap();
}

/// The places `status` tells the given buyers (no place sent: every poll counts in Redis).
async fn places(sales: &TicketSales, buyers: &[(Owner, Reservation)]) -> Vec<u64> {
    let mut out = Vec::new();
    for (owner, r) in buyers {
        let now = sales.status(&r.code, owner).await.unwrap();
        assert_eq!(now.state, ReservationState::Waiting);
        out.push(now.position);
    }
    out
}

/// A place is counted from whichever end of the line is nearer the buyer (the bits of the
/// line before it, or the bits from it to the back, taken from the number waiting): exact
/// either way, before and after buyers ahead leave, with arrival numbers a hundred thousand
/// apart.
#[tokio::test]
async fn a_place_is_exact_whichever_end_of_the_line_it_is_counted_from() {
    let w = World::new().await;
    let sale = w.sale(1, 600).await.sale_id();
    join(&w.sales, sale, &Owner::random()).await; // holds the one ticket
    let early = crowd(&w.sales, sale, 3).await;
    skip_arrivals(&w.redis, sale, 100_000).await;
    let middle = crowd(&w.sales, sale, 10).await;
    // The middle is near the back: counted from there.
    assert_eq!(places(&w.sales, &early).await, [1, 2, 3]);
    assert_eq!(places(&w.sales, &middle).await, (4..=13).collect::<Vec<u64>>());

    skip_arrivals(&w.redis, sale, 200_000).await;
    let last = crowd(&w.sales, sale, 2).await;
    // The middle is nearer the head now, the last two are at the back.
    assert_eq!(places(&w.sales, &middle).await, (4..=13).collect::<Vec<u64>>());
    assert_eq!(places(&w.sales, &last).await, [14, 15]);

    // One ahead of everybody leaves, then one of the middle.
    let (owner, r) = &early[1];
    w.sales.release(&r.code, owner).await.unwrap();
    let (owner, r) = &middle[4];
    w.sales.release(&r.code, owner).await.unwrap();
    assert_eq!(places(&w.sales, &early[2..]).await, [2]);
    assert_eq!(places(&w.sales, &middle[..4]).await, [3, 4, 5, 6]);
    assert_eq!(places(&w.sales, &middle[5..]).await, [7, 8, 9, 10, 11]);
    assert_eq!(places(&w.sales, &last).await, [12, 13]);
    // The count in the join's reply is the same: a new buyer is the last.
    let newest = join(&w.sales, sale, &Owner::random()).await;
    assert_eq!((newest.position, newest.waiting), (14, 14));
}

/// The first polls of a sale on an instance that has no view of its line yet (just started or
/// deployed) wait for one read of the line instead of each asking Redis: a crowd's burst of
/// far polls at once costs Redis a few calls, not one a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_far_polls_on_a_fresh_instance_reads_the_line_once() {
    let redis = Server::start();
    let mut settings = test_settings();
    settings.redis_url = redis.url();
    signed(&mut settings);
    let w = World::with_settings(settings.clone()).await;
    let sale = w.sale(1, 600).await.sale_id();
    let buyers = crowd(&w.sales, sale, CROWD + 200).await;
    // Another instance of the shop, new: it has never read this sale's line.
    let fresh = TicketSales::new(w.redis.clone(), w.db.clone(), &settings)
        .await
        .unwrap();

    let before = script_calls(redis.port);
    let polls: Vec<_> = buyers[CROWD..]
        .iter()
        .cloned()
        .map(|(owner, r)| {
            let fresh = fresh.clone();
            tokio::spawn(async move { fresh.poll(&r.code, r.place_text().as_deref(), &owner).await.unwrap() })
        })
        .collect();
    for poll in polls {
        let answer = poll.await.unwrap();
        assert_eq!(answer.state, ReservationState::Waiting);
        assert!(answer.approximate, "answered from the view, not by Redis");
    }
    let calls = script_calls(redis.port) - before;
    // The one read, and the view's reader started by the first poll (four reads a second).
    assert!(calls <= 6, "{calls} script calls for 200 polls at once");
}

/// Joins racing on one sale are each told their true place: a new buyer's place is the number
/// waiting when its join runs (no count of the line), so the places the racing joins answer
/// are 1 to N, each once, each where the queue has that buyer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_joins_are_each_told_their_true_place() {
    let w = World::new().await;
    let sale = w.sale(1, 600).await.sale_id();
    join(&w.sales, sale, &Owner::random()).await; // holds the one ticket
    let joins: Vec<_> = (0..200)
        .map(|_| {
            let sales = w.sales.clone();
            tokio::spawn(async move { join(&sales, sale, &Owner::random()).await })
        })
        .collect();
    let mut told = Vec::new();
    for joined in joins {
        let r = joined.await.unwrap();
        assert_eq!(r.state, ReservationState::Waiting);
        assert_eq!(Some(r.position), true_place(&w.redis, sale, &r).await);
        assert!(r.waiting >= r.position, "{} waiting, told {}", r.waiting, r.position);
        told.push(r.position);
    }
    told.sort_unstable();
    assert_eq!(told, (1..=200).collect::<Vec<u64>>());
}

/// A join of a session made by this very request (a new owner).
async fn new_join(sales: TicketSales, sale: SaleId, owner: Owner) -> (Owner, Reservation) {
    let one = sales.quantity(1).unwrap();
    match sales
        .join_with_email(sale, &owner, SessionMade::Now, one, None)
        .await
        .unwrap()
    {
        Joining::Placed(r) => (owner, r),
        Joining::LinkMailed => panic!("no link is mailed outside a pre-queue"),
    }
}

/// `n` new sessions joining at once: spawned on the runtime's threads, released together.
async fn race_new_joins(sales: &TicketSales, sale: SaleId, n: usize) -> Vec<(Owner, Reservation)> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let joins: Vec<_> = (0..n)
        .map(|_| {
            let (sales, start) = (sales.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                new_join(sales, sale, Owner::random()).await
            })
        })
        .collect();
    let mut joined = Vec::with_capacity(n);
    for join in joins {
        joined.push(join.await.unwrap());
    }
    joined
}

/// The crowd's common case, sessions made in their very requests joining at the back, goes
/// several joins to a script call (`src/sale/join_batch.rs`): joins racing on one sale share
/// calls, and each is still told what it would have been told alone: waiting under its first
/// code, at its true place, places 1 to N each once. A join the batch cannot take (the ticket
/// is free) is made by `join.lua`, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_sessions_racing_to_join_share_script_calls_and_each_is_told_its_true_place() {
    const NEW: usize = 200;
    let redis = Server::start();
    let mut settings = test_settings();
    settings.redis_url = redis.url();
    let w = World::with_settings(settings).await;
    let sale = w.sale(1, 600).await.sale_id();
    // The ticket is free: not the batch's case; join.lua admits the first at once.
    let (_, first) = new_join(w.sales.clone(), sale, Owner::random()).await;
    assert_eq!(first.state, ReservationState::Admitted);

    let before = script_calls(redis.port);
    let joined = race_new_joins(&w.sales, sale, NEW).await;
    let calls = script_calls(redis.port) - before;
    assert!(calls < NEW as u64 / 2, "{calls} script calls for {NEW} joins");
    let mut told = Vec::new();
    for (owner, r) in joined {
        assert_eq!((r.state, r.created), (ReservationState::Waiting, true));
        assert_eq!(
            r.code,
            ReservationCode::first_of(sale, &owner),
            "a new owner's first code"
        );
        assert_eq!(Some(r.position), true_place(&w.redis, sale, &r).await);
        assert!(r.waiting >= r.position, "{} waiting, told {}", r.waiting, r.position);
        told.push(r.position);
    }
    told.sort_unstable();
    assert_eq!(told, (1..=NEW as u64).collect::<Vec<u64>>());
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.waiting, f.joined), (NEW as i64, NEW as i64 + 1));
}

/// New sessions racing for the first tickets of a sale: no batch of theirs can be taken whole
/// while a ticket is free, so their joins are made by `join.lua`, each on its own, racing with
/// the batches that queue the rest once the tickets are held: exactly the capacity is held,
/// never more, and everyone else waits, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_sessions_racing_for_free_tickets_hold_no_more_than_the_capacity() {
    const NEW: usize = 120;
    const CAPACITY: i64 = 5;
    let w = World::new().await;
    let sale = w.sale(CAPACITY as i32, 600).await.sale_id();
    let mut codes = std::collections::HashSet::new();
    for (owner, r) in race_new_joins(&w.sales, sale, NEW).await {
        assert!(
            matches!(r.state, ReservationState::Admitted | ReservationState::Waiting),
            "{:?}",
            r.state
        );
        assert_eq!(r.code, ReservationCode::first_of(sale, &owner));
        codes.insert(r.code);
    }
    assert_eq!(codes.len(), NEW, "a reservation each");
    let f = w.sales.figures(sale).await.unwrap();
    assert_eq!((f.held, f.sold), (CAPACITY, 0), "the capacity held, never more");
    assert_eq!((f.waiting, f.joined), (NEW as i64 - CAPACITY, NEW as i64));
    let queued = crate::support::queue::codes(&w.redis, sale).await;
    assert_eq!(queued.len(), NEW - CAPACITY as usize, "each waiting buyer queued once");
}
