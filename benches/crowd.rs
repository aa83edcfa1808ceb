//! Redis CPU per second under a waiting crowd polling at the server's intervals, for crowds of
//! 10,000, 100,000 and 1,000,000 buyers (`BENCH_CROWD_SIZES`, comma-separated), each crowd
//! polled two ways in the same run: without the place in line (every poll runs `status`: the
//! baseline of before) and with it (a buyer far from the head is answered from the instance's
//! view of the line). The goal is a flat line: the same Redis CPU whatever the crowd.
//!
//! `cargo bench --bench crowd` (Postgres on its local port or `BENCH_POSTGRES_URL`;
//! `redis-server` on the PATH: the bench starts a Redis of its own on a free port, so that its
//! CPU figures are the crowd's alone, and stops it at the end). The polls go through the sale
//! service in-process (no HTTP: `poll_http` measures that), open loop: each of the first 3,100
//! buyers polls at the interval the server asks of its place, the others (which the server
//! asks to come back every 60 s) at their aggregate rate, on random buyers.
//! `BENCH_CROWD_SECS` (default 10) seconds per way and crowd.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice::sale::{Owner, ReservationCode, ReservationState, TicketSales};
use boxoffice::web::buyer::poll_after_ms;
use fred::prelude::*;
use support::env_or;
use tokio::sync::Semaphore;

/// Buyers polled each at its own interval; the rest poll every 60 s.
const NEAR_SET: usize = 3_100;

/// The server's CPU seconds so far (user + system), and its memory in use.
async fn redis_cpu_and_memory(redis: &Pool) -> (f64, f64) {
    let info: String = redis.next().info(None).await.unwrap();
    let field = |name: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (field("used_cpu_user") + field("used_cpu_sys"), field("used_memory"))
}

struct Crowd {
    buyers: Vec<(ReservationCode, Owner, String)>,
}

/// Polls `crowd` for `secs` at the server's intervals; `with_place` says whether the polls
/// carry the place. Returns the polls made.
async fn poll_crowd(sales: &TicketSales, crowd: &Arc<Crowd>, secs: f64, with_place: bool) -> u64 {
    let n = crowd.buyers.len();
    let near = n.min(NEAR_SET);
    let interval = |i: usize| Duration::from_millis(poll_after_ms(ReservationState::Waiting, i as u64 + 1));
    let started = Instant::now();
    let mut next_due: Vec<Instant> = (0..near)
        .map(|i| started + interval(i).mul_f64((i * 7919 % 1000) as f64 / 1000.0))
        .collect();
    let far_rate = (n - near) as f64 / 60.0;
    let mut far_owed = 0.0;
    let gate = Arc::new(Semaphore::new(256));
    let mut polls = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut last = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while started.elapsed().as_secs_f64() < secs {
        tick.tick().await;
        let now = Instant::now();
        let mut due: Vec<usize> = Vec::new();
        for (i, at) in next_due.iter_mut().enumerate() {
            if *at <= now {
                due.push(i);
                *at = now + interval(i);
            }
        }
        far_owed += far_rate * (now - last).as_secs_f64();
        last = now;
        while far_owed >= 1.0 {
            far_owed -= 1.0;
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            due.push(near + (seed % (n - near).max(1) as u64) as usize);
        }
        for i in due.into_iter().filter(|&i| i < n) {
            polls += 1;
            let (sales, crowd, permit) = (
                sales.clone(),
                crowd.clone(),
                gate.clone().acquire_owned().await.unwrap(),
            );
            tokio::spawn(async move {
                let (code, owner, place) = &crowd.buyers[i];
                let place = with_place.then_some(place.as_str());
                sales.poll(code, place, owner).await.unwrap();
                drop(permit);
            });
        }
    }
    let _ = gate.acquire_many(256).await.unwrap();
    polls
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_CROWD_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let secs = env_or("BENCH_CROWD_SECS", 10) as f64;
    let private = support::RedisServer::start(&["--appendonly", "no"]);

    let mut bench_db = support::BenchDb::new();
    bench_db.settings.redis_url = format!("redis://127.0.0.1:{}", private.port);
    bench_db.settings.secret = boxoffice::config::Secret::new("the-bench-secret-of-at-least-32-characters".into());
    // The server takes a moment to answer.
    let mut state = None;
    for _ in 0..50 {
        if let Ok(s) = boxoffice::startup::connect(&bench_db.settings).await {
            state = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = state.expect("the bench's redis-server answers");
    let (sales, pg, redis) = (state.sales.clone(), state.db.clone(), state.redis.clone());

    println!(
        "| waiting buyers | polls/s at the server's intervals | Redis CPU ms/s, every poll by `status` (before) | Redis CPU ms/s, with the place (after) | ratio after/before | Redis memory per waiting buyer |"
    );
    println!("|---|---|---|---|---|---|");
    let mut made = Vec::new();
    for &n in &sizes {
        let holder = Owner::random();
        let sale = support::stalled_sale(&pg, &sales, &holder).await;
        made.push(sale);
        eprintln!("{n} buyers join…");
        let (_, memory_before) = redis_cpu_and_memory(&redis).await;
        let buyers = support::fill_queue(&sales, sale, n)
            .await
            .into_iter()
            .map(|(code, owner, place)| (code, owner, place.expect("a waiting buyer has a place")))
            .collect();
        let (_, memory_after) = redis_cpu_and_memory(&redis).await;
        let crowd = Arc::new(Crowd { buyers });

        let mut per_second = Vec::new();
        let mut rate = 0.0;
        for with_place in [false, true] {
            let (cpu_before, _) = redis_cpu_and_memory(&redis).await;
            let started = Instant::now();
            let polls = poll_crowd(&sales, &crowd, secs, with_place).await;
            let elapsed = started.elapsed().as_secs_f64();
            let (cpu_after, _) = redis_cpu_and_memory(&redis).await;
            per_second.push((cpu_after - cpu_before) / elapsed * 1000.0);
            rate = polls as f64 / elapsed;
        }
        println!(
            "| {n} | {rate:.0} | {:.1} | {:.1} | {:.3} | {:.0} B |",
            per_second[0],
            per_second[1],
            per_second[1] / per_second[0],
            (memory_after - memory_before) / n as f64
        );
        let _: i64 = redis.del(boxoffice::sale::sale_keys(sale)).await.unwrap_or(0);
    }
    println!(
        "\n{secs} s per way and crowd; Redis CPU is the server's own (user + system) over the run, the view reads and the app's background work included."
    );
    bench_db.clean_up(&redis, pg, &made).await;
}
