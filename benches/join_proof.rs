//! What the join's proof of work costs: the server checking one, against a join, in the same
//! run; and a client solving one, per difficulty.
//!
//! `cargo bench --bench join_proof` (Redis and Postgres on their local ports, or `REDIS_URL` /
//! `BENCH_POSTGRES_URL`). It makes its own database and sale, and drops the database at the end.
//!
//! - `join (new buyer)`: the baseline, a new buyer joining the back of a queue that stands
//!   still (one EVALSHA), from `BENCH_CONCURRENCY` (default 64) tasks;
//! - `proof check + join`: the same join after checking a solved proof (two HMACs over the
//!   challenge, no search) and spending it (one `SET NX`), as a busy sale's join does;
//! - `proof check alone`: the CPU part, on one core, without Redis.
//!
//! Rounds alternate (baseline, workload, …) and the ratio printed is the median of the
//! per-round ratios. Then, per difficulty (the challenge's largest counter), the median time of
//! `BENCH_SOLVES` (default 9) native solves: the search a client makes, one SHA-256 per counter.

mod support;

use std::sync::Arc;
use std::time::Instant;

use boxoffice::pow::{JoinPuzzles, PowSettings, solve};
use boxoffice::sale::{Owner, SaleId};
use support::{env_or, median, throughput};

/// Proofs solved ahead for one workload: each is good once.
fn proofs(puzzles: &JoinPuzzles, sale: SaleId, n: usize) -> Vec<(Owner, String)> {
    (0..n)
        .map(|_| {
            let owner = Owner::random();
            let proof = solve(&puzzles.issue(sale, &owner, 16)).expect("a small challenge is solved");
            (owner, proof)
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let tasks = env_or("BENCH_CONCURRENCY", 64);
    let rounds = env_or("BENCH_ROUNDS", 5);
    let solves = env_or("BENCH_SOLVES", 9);
    let secs = 2.0;

    let bench_db = support::BenchDb::new();
    let (pg, redis, sales) = support::connect(&bench_db).await;
    let sale = support::stalled_sale(&pg, &sales, &Owner::random()).await;
    let puzzles = JoinPuzzles::new(
        &bench_db.settings.secret,
        PowSettings {
            joins_per_min: 1,
            min_counter: 16,
            max_counter: 16,
        },
    );

    let join = support::new_buyers_join(sales.clone(), sale);
    // Enough proofs for the fastest round seen so far, times two.
    let mut need = 20_000usize;
    let (mut ratios, mut joins, mut checked) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let ready = Arc::new(proofs(&puzzles, sale, need));
        let base = throughput(tasks, secs, join.clone()).await;
        let with_proof = {
            let (sales, puzzles, ready) = (sales.clone(), puzzles.clone(), ready.clone());
            move |i: u64| {
                let (sales, puzzles, ready) = (sales.clone(), puzzles.clone(), ready.clone());
                async move {
                    let (owner, proof) = &ready[i as usize % ready.len()];
                    // A proof used twice (the pool wrapped around) is refused as a busy sale
                    // would refuse it: still the full cost of the check and the SET NX.
                    if let Ok(valid) = puzzles.check(sale, owner, proof)
                        && sales
                            .use_proof_once(sale, &valid.nonce, valid.remember_secs)
                            .await
                            .unwrap()
                    {
                        sales.join(sale, owner, sales.quantity(1).unwrap()).await.unwrap();
                    }
                }
            }
        };
        let v = throughput(tasks, secs, with_proof).await;
        need = need.max((base.max(v) * secs * 2.0) as usize);
        ratios.push(v / base);
        joins.push(base);
        checked.push(v);
    }

    let sample = proofs(&puzzles, sale, 2000);
    let start = Instant::now();
    for (owner, proof) in &sample {
        puzzles.check(sale, owner, proof).unwrap();
    }
    let check_us = start.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;

    let per_round: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!("| workload | calls/s (median) | ratio to join (median of rounds; each round) |");
    println!("|---|---|---|");
    println!("| join (new buyer) | {:.0} | 1 |", median(joins));
    println!(
        "| proof check + join | {:.0} | {:.2} ({}) |",
        median(checked),
        median(ratios.clone()),
        per_round.join(", ")
    );
    println!(
        "| proof check alone (one core, no Redis) | {:.1} µs per check | |",
        check_us
    );
    println!();
    println!("| difficulty (largest counter) | native solve, median | ");
    println!("|---|---|");
    let owner = Owner::random();
    for max_counter in [1_000u32, 10_000, 50_000, 100_000, 500_000] {
        let times: Vec<f64> = (0..solves)
            .map(|_| {
                let challenge = puzzles.issue(sale, &owner, max_counter);
                let start = Instant::now();
                solve(&challenge).expect("solved");
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        println!("| {max_counter} | {:.1} ms |", median(times));
    }

    bench_db.clean_up(&redis, pg, &[sale]).await;
}
