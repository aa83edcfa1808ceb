//! The waiting buyer's poll over HTTP against a bare poem endpoint, measured in the same run,
//! plus what one waiting buyer costs in Redis memory and how many waiting buyers one instance
//! can serve at the adaptive poll interval.
//!
//! `cargo bench --bench poll_http` (Redis and Postgres on their local ports, or `REDIS_URL` /
//! `BENCH_POSTGRES_URL`; give it a Redis server of its own for a clean memory figure). The app
//! and the load run in this one process on the same cores, as a load generator on the same
//! machine would. Endpoints take turns, round after round, so the machine's noise shifts them
//! alike; the ratio printed is the median of the per-round ratios.
//!
//! `BENCH_WAITING` (default 20,000) buyers wait behind holds that do not lapse;
//! `BENCH_CONCURRENCY` (default 32) connections poll random ones of them as fast as they can:
//! without their place in line (every poll runs the `status` script: the baseline of before)
//! and with it (`?place=`: a buyer far from the head, beyond the first 3,048 places, is
//! answered from the instance's view of the line, without a Redis call). The Redis CPU per
//! request is read from `INFO commandstats` around each endpoint's rounds.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use boxoffice::sale::ReservationCode;
use boxoffice::startup::Application;
use boxoffice::web::session::{SESSION_COOKIE, owner_from_session_id};
use fred::prelude::*;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server, get, handler};
use support::{env_or, median};
use uuid::Uuid;

#[handler]
fn bare() -> &'static str {
    "ok"
}

/// One round: `tasks` connections request URLs from `target` for `secs`; returns requests per
/// second and the latencies in microseconds.
async fn round(
    tasks: usize,
    secs: f64,
    target: Arc<dyn Fn(usize) -> (String, String) + Send + Sync>,
) -> (f64, Vec<u32>) {
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(tasks)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (stop, target, client) = (stop.clone(), target.clone(), client.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let (url, cookie) = target(i);
                    let start = Instant::now();
                    let resp = client.get(&url).header("cookie", cookie).send().await.unwrap();
                    assert!(resp.status().is_success(), "{url}: {}", resp.status());
                    resp.bytes().await.unwrap();
                    latencies.push(start.elapsed().as_micros() as u32);
                    i = i.wrapping_add(tasks);
                }
                latencies
            })
        })
        .collect();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    (all.len() as f64 / start.elapsed().as_secs_f64(), all)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// Polls per second that `waiting` buyers make at the interval the server asks for.
fn polls_per_second(waiting: u64) -> f64 {
    (1..=waiting)
        .map(|p| 1000.0 / boxoffice::web::buyer::poll_after_ms(boxoffice::sale::ReservationState::Waiting, p) as f64)
        .sum()
}

/// Redis CPU spent in script calls so far (µs), from `INFO commandstats`: the other
/// instances' and the app's background calls included, as in production.
async fn script_cpu_us(redis: &Pool) -> f64 {
    support::command_stats(redis)
        .await
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("usec=").nth(1)?.split(',').next()?.parse::<f64>().ok())
        .sum()
}

async fn used_memory(redis: &Pool) -> i64 {
    let info: String = redis.next().info(Some(fred::types::InfoKind::Memory)).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let waiting = env_or("BENCH_WAITING", 20_000);
    let tasks = env_or("BENCH_CONCURRENCY", 32);
    let rounds = env_or("BENCH_ROUNDS", 5);
    let secs = 2.0;

    let bench_db = support::BenchDb::new();
    let settings = bench_db.settings.clone();
    let state = boxoffice::startup::connect(&settings)
        .await
        .expect("Redis and Postgres");
    let (sales, pg, redis) = (state.sales.clone(), state.db.clone(), state.redis.clone());
    let app = Application::with_state(state).await.unwrap();
    let app_base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let bare_acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let bare_port = bare_acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    tokio::spawn(Server::new_with_acceptor(bare_acceptor).run(Route::new().at("/bare", get(bare))));

    let holder = owner_from_session_id(&Uuid::new_v4().simple().to_string());
    let sale = support::stalled_sale(&pg, &sales, &holder).await;

    eprintln!("{waiting} buyers join…");
    let before = used_memory(&redis).await;
    let mut buyers: Vec<(ReservationCode, String, String)> = Vec::with_capacity(waiting);
    for chunk in 0..waiting.div_ceil(500) {
        let n = 500.min(waiting - chunk * 500);
        let joined = futures::future::join_all((0..n).map(|_| {
            let sales = sales.clone();
            async move {
                let session_id = Uuid::new_v4().simple().to_string();
                let owner = owner_from_session_id(&session_id);
                let r = sales.join(sale, &owner, sales.quantity(1).unwrap()).await.unwrap();
                let place = r.place_text().expect("a waiting buyer has a place");
                (r.code, session_id, place)
            }
        }))
        .await;
        buyers.extend(joined);
    }
    let per_buyer = (used_memory(&redis).await - before) as f64 / waiting as f64;
    let buyers = Arc::new(buyers);

    let bare_target: Arc<dyn Fn(usize) -> (String, String) + Send + Sync> = {
        let url = format!("http://127.0.0.1:{bare_port}/bare");
        Arc::new(move |_| (url.clone(), String::new()))
    };
    let target = |path: &'static str| -> Arc<dyn Fn(usize) -> (String, String) + Send + Sync> {
        let (buyers, base) = (buyers.clone(), app_base.clone());
        Arc::new(move |i| {
            let (code, session, place) = &buyers[i.wrapping_mul(2_654_435_761) % buyers.len()];
            (
                path.replace("{base}", &base)
                    .replace("{code}", &code.to_string())
                    .replace("{place}", place),
                format!("{SESSION_COOKIE}={session}"),
            )
        })
    };
    let endpoints = [
        (
            "poll, waiting room fragment `GET /wait/{code}/poll`",
            target("{base}/wait/{code}/poll"),
        ),
        (
            "poll, JSON API `GET /api/v1/reservations/{code}`",
            target("{base}/api/v1/reservations/{code}"),
        ),
        (
            "poll with its place, waiting room fragment `GET /wait/{code}/poll?place=…`",
            target("{base}/wait/{code}/poll?start=1&place={place}"),
        ),
        (
            "poll with its place, JSON API `GET /api/v1/reservations/{code}?place=…`",
            target("{base}/api/v1/reservations/{code}?place={place}"),
        ),
    ];

    let mut bare_rps = Vec::new();
    let mut bare_lat = Vec::new();
    let mut results: Vec<(Vec<f64>, Vec<f64>, Vec<u32>)> = vec![Default::default(); endpoints.len()];
    // Redis CPU (µs) and requests per endpoint, summed over its rounds.
    let mut redis_cpu = vec![(0.0f64, 0.0f64); endpoints.len()];
    for _ in 0..rounds {
        let (b, lat) = round(tasks, secs, bare_target.clone()).await;
        bare_rps.push(b);
        bare_lat.extend(lat);
        for (i, (_, t)) in endpoints.iter().enumerate() {
            let before = script_cpu_us(&redis).await;
            let started = Instant::now();
            let (v, lat) = round(tasks, secs, t.clone()).await;
            redis_cpu[i].0 += script_cpu_us(&redis).await - before;
            redis_cpu[i].1 += v * started.elapsed().as_secs_f64().min(secs);
            results[i].0.push(v);
            results[i].1.push(v / b);
            results[i].2.extend(lat);
        }
    }

    println!(
        "| endpoint | requests/s (median of {rounds} rounds) | ratio to bare poem | p50 ms | p99 ms | Redis CPU µs per request |"
    );
    println!("|---|---|---|---|---|---|");
    bare_lat.sort_unstable();
    println!(
        "| bare poem endpoint (`\"ok\"`) | {:.0} | 1.00 | {:.2} | {:.2} | 0 |",
        median(bare_rps.clone()),
        percentile(&bare_lat, 0.5),
        percentile(&bare_lat, 0.99)
    );
    let mut fragment_rps = 0.0;
    for (i, (name, _)) in endpoints.iter().enumerate() {
        let (rps, ratios, mut lat) = std::mem::take(&mut results[i]);
        lat.sort_unstable();
        let rps = median(rps);
        if i == 0 {
            fragment_rps = rps;
        }
        println!(
            "| {name}, queue of {waiting} | {rps:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            median(ratios),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            redis_cpu[i].0 / redis_cpu[i].1.max(1.0)
        );
    }
    println!(
        "\nWith their place, the buyers among the first 3,048 in line (about {:.0}% of those polled) still run `status`.",
        3048.0_f64.min(waiting as f64) / waiting as f64 * 100.0
    );
    println!("\n{tasks} concurrent connections, {secs} s per round, app and load on the same cores.");

    println!(
        "\n| waiting buyers | polls/s they make at the interval the server asks | share of one instance's poll capacity |"
    );
    println!("|---|---|---|");
    for n in [10_000u64, 100_000, 1_000_000] {
        let rate = polls_per_second(n);
        println!("| {n} | {rate:.0} | {:.0}% |", rate / fragment_rps * 100.0);
    }
    let mut lo = 1u64;
    let mut hi = 100_000_000u64;
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if polls_per_second(mid) <= fragment_rps {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    println!("\nOne instance serves the polls of up to {lo} waiting buyers at the measured rate.");
    println!(
        "Redis memory per waiting buyer: {per_buyer:.0} bytes (used_memory before and after {waiting} joins); the app keeps nothing per waiting buyer."
    );

    // The sessions were never stored: nothing else to clean.
    bench_db.clean_up(&redis, pg, &[sale]).await;
}
