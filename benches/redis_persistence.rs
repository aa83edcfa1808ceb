//! What persistence costs the join: new buyers joining a sale on three Redis servers of the
//! bench's own, started side by side with the same binary and differing only in their files:
//!
//! - nothing on disk (`--appendonly no`), the baseline;
//! - an append-only file flushed to disk once a second (`--appendfsync everysec`);
//! - an append-only file flushed to disk before every reply (`--appendfsync always`).
//!
//! `cargo bench --bench redis_persistence` (redis-server on the PATH, Postgres on its local
//! port or `BENCH_POSTGRES_URL`). Each round runs the three in turn, `BENCH_CONCURRENCY`
//! (default 64) tasks on a pool of 4 connections for 2 s each; the ratios printed are the
//! medians of the per-round ratios to the baseline, so the machine's noise shifts all three
//! alike. The servers' files go to a temporary directory on the machine's disk, where the
//! fsync cost is what that disk makes it.

mod support;

use std::time::Duration;

use boxoffice::db;
use boxoffice::sale::{Owner, SaleId, TicketSales};
use fred::prelude::*;
use support::{RedisServer, env_or, median, throughput};

/// The sale service on `server`, with a sale whose queue stands still.
async fn sale_on(
    settings: &boxoffice::config::Settings,
    pg: &sqlx::PgPool,
    server: &RedisServer,
) -> (TicketSales, Pool, SaleId) {
    let settings = boxoffice::config::Settings {
        redis_url: format!("redis://127.0.0.1:{}", server.port),
        ..settings.clone()
    };
    let mut redis = None;
    for _ in 0..50 {
        if let Ok(pool) = boxoffice::redis::connect(&settings).await {
            redis = Some(pool);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let redis = redis.expect("the bench's redis-server answers");
    let sales = TicketSales::new(redis.clone(), pg.clone(), &settings)
        .await
        .expect("sale service");
    let sale = support::stalled_sale(pg, &sales, &Owner::random()).await;
    (sales, redis, sale)
}

#[tokio::main]
async fn main() {
    let tasks = env_or("BENCH_CONCURRENCY", 64);
    let rounds = env_or("BENCH_ROUNDS", 5);
    let secs = 2.0;

    let bench_db = support::BenchDb::new();
    let settings = bench_db.settings.clone();
    let pg = db::connect_and_migrate(&settings.database_url).await.expect("Postgres");
    let setups: [(&str, &[&str]); 3] = [
        ("nothing on disk (`appendonly no`)", &["--appendonly", "no"]),
        (
            "AOF, `appendfsync everysec`",
            &["--appendonly", "yes", "--appendfsync", "everysec"],
        ),
        (
            "AOF, `appendfsync always`",
            &["--appendonly", "yes", "--appendfsync", "always"],
        ),
    ];
    let servers: Vec<RedisServer> = setups.iter().map(|(_, args)| RedisServer::start(args)).collect();
    let mut targets = Vec::new();
    for server in &servers {
        targets.push(sale_on(&settings, &pg, server).await);
    }

    // per setup: joins/s and the ratio to the baseline of the same round
    let mut values = vec![Vec::new(); setups.len()];
    let mut ratios = vec![Vec::new(); setups.len()];
    for _ in 0..rounds {
        let mut round = Vec::new();
        for (sales, _, sale) in &targets {
            let (sales, sale) = (sales.clone(), *sale);
            let join = move |_i: u64| {
                let sales = sales.clone();
                async move {
                    sales
                        .join(sale, &Owner::random(), sales.quantity(2).unwrap())
                        .await
                        .unwrap();
                }
            };
            round.push(throughput(tasks, secs, join).await);
        }
        for (i, v) in round.iter().enumerate() {
            values[i].push(*v);
            ratios[i].push(v / round[0]);
        }
    }

    println!("| Redis persistence | joins/s (median of {rounds} rounds) | ratio to nothing on disk |");
    println!("|---|--:|--:|");
    for (i, (name, _)) in setups.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {:.2} |",
            median(values[i].clone()),
            median(ratios[i].clone())
        );
    }
    println!(
        "\n{tasks} concurrent tasks, one pool of {} connections per server, {secs} s per setup and round.",
        settings.redis_pool_size
    );

    // The servers and their keys go with the process; the database is dropped.
    let (_, first_redis, _) = &targets[0];
    bench_db.clean_up(first_redis, pg, &[]).await;
    drop(servers);
}
