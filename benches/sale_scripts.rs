//! Round trips of the sale scripts against a trivial EVALSHA, measured in the same run.
//!
//! `cargo bench --bench sale_scripts` (Redis and Postgres on their local ports, or
//! `REDIS_URL` / `BENCH_POSTGRES_URL`). It makes its own database and sales, and drops the
//! database at the end. Each workload runs in several alternating rounds (baseline, script,
//! baseline, script, …) so that a noisy machine shifts both alike; the ratio printed is the
//! median of the per-round ratios.
//!
//! Workloads, each with `BENCH_CONCURRENCY` (default 64) tasks on one pool of 4 connections:
//! - `evalsha return 1`: the baseline, one trivial script call;
//! - `status (queue of N)`: the poll of a random waiting buyer in a queue of `BENCH_QUEUE`
//!   (default 200,000) buyers behind holds that do not lapse: every poll of before;
//! - `status near the head`: the same for a random one of the first 1,000, the only polls
//!   that still reach Redis (the goal: at most 10 µs of Redis CPU with a queue of 1,000,000);
//! - `status near the head, the script before`: the same polls by another status script given
//!   as the whole text of a Lua file in `BENCH_STATUS_BEFORE` (its helpers included), for
//!   comparing a change with the script before it in the same run, e.g.
//!   `git show <rev>:lua/common.lua <rev>:lua/status.lua > before.lua` for a revision that
//!   loaded all of `common.lua`, or `cargo run --example script_text -- status > before.lua`
//!   in a checkout of a later one; without it, no row. It reads the queue this tree's scripts
//!   wrote, so `<rev>` must keep the same keys and records (`lua/common.lua`); across a change
//!   of layout, `benches/status_near_head.sh` compares the two, each on a queue of its own;
//! - `poll with its place far from the head`: answered from the instance's view of the line,
//!   no Redis call of its own (its Redis CPU per call is its share of the view's reads, four
//!   a second);
//! - `join (new buyer)`: a new buyer joining the back of that queue;
//! - `checkout`: a new buyer joining a sale with room and confirming (Postgres in the loop),
//!   against a trivial Postgres round trip (`select 1`).

mod support;

use std::sync::Arc;

use boxoffice::db;
use boxoffice::sale::{Buyer, BuyerInput, Owner, TicketSales};
use fred::prelude::*;
use fred::types::scripts::Script;
use support::{env_or, median, throughput};

async fn reset_stats(redis: &Pool) {
    let _: () = redis
        .next()
        .custom(fred::cmd!("CONFIG"), vec!["RESETSTAT"])
        .await
        .unwrap();
}

/// Redis's own CPU time in EVALSHA since the last reset (µs), from `INFO commandstats`.
async fn evalsha_usec(redis: &Pool) -> f64 {
    support::command_stats(redis)
        .await
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix("usec=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The places where presence is noted (`NEAR` in `lua/common.lua`).
const NEAR_HEAD: usize = 1_000;

#[derive(Clone, Copy)]
enum Workload {
    /// `status` of a random one of the first n buyers.
    Status(usize),
    /// The same by the script of `BENCH_STATUS_BEFORE`.
    StatusBefore(usize),
    FarPoll,
    Join,
}

#[tokio::main]
async fn main() {
    let tasks = env_or("BENCH_CONCURRENCY", 64);
    let queue = env_or("BENCH_QUEUE", 200_000);
    let rounds = env_or("BENCH_ROUNDS", 5);
    let secs = 2.0;

    let bench_db = support::BenchDb::new();
    let settings = bench_db.settings.clone();
    let pg = db::connect_and_migrate(&settings.database_url).await.expect("Postgres");
    let redis = boxoffice::redis::connect(&settings).await.expect("Redis");
    let sales = TicketSales::new(redis.clone(), pg.clone(), &settings)
        .await
        .expect("sale service");
    let sale = support::stalled_sale(&pg, &sales, &Owner::random()).await;
    let join_sale = support::stalled_sale(&pg, &sales, &Owner::random()).await;

    eprintln!("filling a queue of {queue} buyers…");
    let waiting = Arc::new(support::fill_queue(&sales, sale, queue).await);
    let trivial = Arc::new(Script::from_lua("return 1"));
    trivial.load(redis.next()).await.unwrap();
    let baseline = || {
        let (redis, trivial) = (redis.clone(), trivial.clone());
        move |_i: u64| {
            let (redis, trivial) = (redis.clone(), trivial.clone());
            async move {
                let _: i64 = trivial
                    .evalsha(redis.next(), Vec::<String>::new(), Vec::<String>::new())
                    .await
                    .unwrap();
            }
        }
    };
    // Buyers polled by `status` at the place they stand: anywhere in the queue (every poll of
    // before), or among the first NEAR_HEAD (the only polls that still reach Redis).
    let status = |among: usize| {
        let (sales, waiting) = (sales.clone(), waiting.clone());
        move |i: u64| {
            let (sales, waiting) = (sales.clone(), waiting.clone());
            async move {
                let (code, owner, _) = &waiting[(i.wrapping_mul(2_654_435_761) % among as u64) as usize];
                sales.status(code, owner).await.unwrap();
            }
        }
    };
    let before = match std::env::var("BENCH_STATUS_BEFORE") {
        Ok(path) => {
            let script = Script::from_lua(std::fs::read_to_string(&path).expect("BENCH_STATUS_BEFORE is readable"));
            script.load(redis.next()).await.unwrap();
            Some(Arc::new(script))
        }
        Err(_) => None,
    };
    let status_before = |among: usize| {
        let (redis, waiting, before) = (redis.clone(), waiting.clone(), before.clone());
        move |i: u64| {
            let (redis, waiting, before) = (redis.clone(), waiting.clone(), before.clone());
            async move {
                let (code, owner, _) = &waiting[(i.wrapping_mul(2_654_435_761) % among as u64) as usize];
                let args = vec![code.token.simple().to_string(), owner.as_str().to_string()];
                let script = before.expect("a script before");
                let reply: Vec<fred::types::Value> = script
                    .evalsha(redis.next(), boxoffice::sale::sale_keys(sale), args)
                    .await
                    .unwrap();
                assert!(reply.len() > 1, "the script before found the buyer");
            }
        }
    };
    // A buyer far from the head polling with its place: answered from the view, in-process.
    let far_poll = {
        let (sales, waiting) = (sales.clone(), waiting.clone());
        move |i: u64| {
            let (sales, waiting) = (sales.clone(), waiting.clone());
            async move {
                let far = waiting.len() - NEAR_HEAD.min(waiting.len());
                let (code, owner, place) = &waiting
                    [NEAR_HEAD.min(waiting.len()) + (i.wrapping_mul(2_654_435_761) % far.max(1) as u64) as usize];
                sales.poll(code, place.as_deref(), owner).await.unwrap();
            }
        }
    };
    // The view is read from the first placed poll on: let it be there before measuring.
    far_poll(0).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let join = {
        let sales = sales.clone();
        move |_i: u64| {
            let sales = sales.clone();
            async move {
                sales
                    .join(join_sale, &Owner::random(), sales.quantity(2).unwrap())
                    .await
                    .unwrap();
            }
        }
    };

    let mut base_all = Vec::new();
    let mut base_cpu = Vec::new();
    // per workload: name, calls/s, ratios to the baseline, Redis µs per call (one per round)
    type Rounds = (Vec<f64>, Vec<f64>, Vec<f64>);
    let mut rows: Vec<(&str, Rounds)> = Vec::new();
    let mut workloads = vec![
        ("status (poll of before), a random buyer", Workload::Status(queue)),
        (
            "status near the head, a random one of the first 1,000",
            Workload::Status(NEAR_HEAD.min(queue)),
        ),
    ];
    if before.is_some() {
        workloads.push((
            "status near the head by the script before (`BENCH_STATUS_BEFORE`)",
            Workload::StatusBefore(NEAR_HEAD.min(queue)),
        ));
    }
    workloads.extend([
        (
            "poll with its place far from the head (no Redis call)",
            Workload::FarPoll,
        ),
        ("join (new buyer)", Workload::Join),
    ]);
    for (name, workload) in workloads {
        let (mut values, mut ratios, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            reset_stats(&redis).await;
            let b = throughput(tasks, secs, baseline()).await;
            base_cpu.push(evalsha_usec(&redis).await / (b * secs));
            reset_stats(&redis).await;
            let v = match workload {
                Workload::Join => throughput(tasks, secs, join.clone()).await,
                Workload::Status(among) => throughput(tasks, secs, status(among)).await,
                Workload::StatusBefore(among) => throughput(tasks, secs, status_before(among)).await,
                Workload::FarPoll => throughput(tasks, secs, far_poll.clone()).await,
            };
            // Per call of the workload: a far poll's share of the view's reads, for one.
            cpu.push(evalsha_usec(&redis).await / (v * secs));
            base_all.push(b);
            values.push(v);
            ratios.push(v / b);
        }
        rows.push((name, (values, ratios, cpu)));
    }
    println!("| workload | calls/s (median of {rounds} rounds) | ratio to trivial EVALSHA | Redis CPU µs per call |");
    println!("|---|---|---|---|");
    println!(
        "| trivial EVALSHA (`return 1`) | {:.0} | 1.00 | {:.2} |",
        median(base_all),
        median(base_cpu)
    );
    for (name, (values, ratios, cpu)) in rows {
        let label = if name.starts_with("status") || name.starts_with("poll") {
            format!("{name}, queue of {queue}")
        } else {
            name.to_string()
        };
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} |",
            median(values),
            median(ratios),
            median(cpu)
        );
    }

    // Checkout with Postgres in the loop: a new buyer joins a sale with room (admitted at once)
    // and confirms; against a trivial Postgres round trip in the same rounds.
    let checkout_sale = support::open_sale(&pg, &sales, 100_000_000).await;
    let buyer = Buyer::parse(&BuyerInput {
        name: "Bench Buyer".into(),
        email: "bench@example.com".into(),
        age: "30".into(),
        gender: "unspecified".into(),
    })
    .unwrap();
    let checkout = {
        let (sales, buyer) = (sales.clone(), buyer.clone());
        move |_i: u64| {
            let (sales, buyer) = (sales.clone(), buyer.clone());
            async move {
                let owner = Owner::random();
                let r = sales
                    .join(checkout_sale, &owner, sales.quantity(1).unwrap())
                    .await
                    .unwrap();
                sales.confirm(&r.code, &owner, &buyer).await.unwrap();
            }
        }
    };
    let select_one = {
        let pg = pg.clone();
        move |_i: u64| {
            let pg = pg.clone();
            async move {
                sqlx::query("select 1").execute(&pg).await.unwrap();
            }
        }
    };
    let (mut pg_base, mut checkouts, mut checkout_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let b = throughput(tasks, secs, select_one.clone()).await;
        let v = throughput(tasks, secs, checkout.clone()).await;
        pg_base.push(b);
        checkouts.push(v);
        checkout_ratios.push(v / b);
    }
    println!("\n| workload | per second (median of {rounds} rounds) | ratio to `select 1` |");
    println!("|---|---|---|");
    println!(
        "| trivial Postgres round trip (`select 1`) | {:.0} | 1.00 |",
        median(pg_base)
    );
    println!(
        "| checkout: join + confirm (3 script calls, 1 Postgres transaction) | {:.0} | {:.2} |",
        median(checkouts),
        median(checkout_ratios)
    );

    println!(
        "\n{tasks} concurrent tasks, one pool of {} connections, {secs} s per round. Redis CPU per call \
         comes from INFO commandstats; it is exact only on a Redis server of its own.",
        settings.redis_pool_size
    );

    bench_db.clean_up(&redis, pg, &[sale, join_sale, checkout_sale]).await;
}
