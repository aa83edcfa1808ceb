//! Redis time of one reconcile of a sale with many orders: the incremental sync against the
//! full-list sync it replaced, measured in the same run.
//!
//! `REDIS_URL=redis://127.0.0.1:6390 cargo bench --bench reconcile`, on a Redis server of its
//! own: the time is Redis's own, from `INFO commandstats` (reset before each call), which
//! counts every client of the server. It makes its own database with `BENCH_ORDERS` (default
//! 100,000) orders written straight into Postgres, and drops it at the end. Each measurement
//! is the median of `BENCH_ROUNDS` (default 5) calls:
//! - before: the part of the old script that grew with the orders
//!   (`benches/support/sync_full_list.lua`), given every order's code as every reconcile of
//!   the old code did;
//! - after, rebuild: `sync` with the sale's keys gone, which reads every order once;
//! - after, reconcile: `sync` in steady state, with `BENCH_NEW_ORDERS` (default 100) orders
//!   committed since the last one, and with none.

#[allow(dead_code)] // shared by the benches; this one uses a part
mod support;

use boxoffice::db;
use boxoffice::sale::{SaleId, TicketSales, sale_keys};
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand};
use sqlx::PgPool;
use support::{env_or, median};

/// A server command of one word and one argument (`INFO commandstats`, `CONFIG RESETSTAT`).
async fn server_command(redis: &Pool, command: &'static str, arg: &'static str) -> String {
    redis
        .custom(
            CustomCommand::new_static(command, ClusterHash::FirstKey, false),
            vec![arg],
        )
        .await
        .unwrap()
}

/// Redis's own time spent on commands since the last reset, in µs.
async fn redis_usec(redis: &Pool) -> f64 {
    server_command(redis, "INFO", "commandstats")
        .await
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info") && !l.starts_with("cmdstat_config"))
        .filter_map(|l| l.split("usec=").nth(1)?.split(',').next()?.parse::<f64>().ok())
        .sum()
}

async fn reset_stats(redis: &Pool) {
    server_command(redis, "CONFIG", "RESETSTAT").await;
}

/// Orders written straight into Postgres, as checkouts would have, counted on the sale and
/// its event.
async fn insert_orders(pg: &PgPool, sale: SaleId, n: i64) {
    let mut tx = pg.begin().await.unwrap();
    sqlx::query(
        "insert into orders (number, sale_id, reservation_code, quantity, unit_price_minor, currency,
                             buyer_name, buyer_email, buyer_age, buyer_gender)
         select 'B-' || gen_random_uuid(), $1, gen_random_uuid(), 1, 1000, 'EUR', 'Bench', 'b@example.com', 30, 'unspecified'
         from generate_series(1, $2)",
    )
    .bind(sale.0)
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "with sale as (update ticket_sales set sold = sold + $2 where id = $1 returning event_id)
         update events set sold = sold + $2 where id = (select event_id from sale)",
    )
    .bind(sale.0)
    .bind(n as i32)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// One call of the old full-list script, with every order of the sale.
async fn old_sync(redis: &Pool, pg: &PgPool, sale: SaleId, script: &str) {
    let sold: i32 = sqlx::query_scalar("select sold from ticket_sales where id = $1")
        .bind(sale.0)
        .fetch_one(pg)
        .await
        .unwrap();
    let orders: Vec<(uuid::Uuid, i16)> =
        sqlx::query_as("select reservation_code, quantity from orders where sale_id = $1 order by id")
            .bind(sale.0)
            .fetch_all(pg)
            .await
            .unwrap();
    let mut args: Vec<Value> = vec![i64::from(sold).into()];
    for (code, qty) in orders {
        args.push(code.simple().to_string().into());
        args.push(i64::from(qty).into());
    }
    let _: Value = redis.next().eval(script, sale_keys(sale), args).await.unwrap();
}

async fn measure<F, Fut>(redis: &Pool, rounds: usize, mut op: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut usec = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        reset_stats(redis).await;
        op().await;
        usec.push(redis_usec(redis).await);
    }
    median(usec)
}

#[tokio::main]
async fn main() {
    let orders = env_or("BENCH_ORDERS", 100_000) as i64;
    let new_orders = env_or("BENCH_NEW_ORDERS", 100) as i64;
    let rounds = env_or("BENCH_ROUNDS", 5);
    let bench = support::BenchDb::new();
    let pg = db::connect_and_migrate(&bench.settings.database_url).await.unwrap();
    let redis = boxoffice::redis::connect(&bench.settings).await.unwrap();
    let sales = TicketSales::new(redis.clone(), pg.clone(), &bench.settings)
        .await
        .unwrap();
    let sale = support::open_sale(&pg, &sales, 1_000_000).await;
    insert_orders(&pg, sale, orders).await;
    let old_script = format!(
        "{}\n{}",
        include_str!("../lua/common.lua"),
        include_str!("support/sync_full_list.lua")
    );

    let rebuild = measure(&redis, rounds, || async {
        let _: i64 = redis.del(sale_keys(sale)).await.unwrap();
        reset_stats(&redis).await;
        sales.sync(sale).await.unwrap();
    })
    .await;
    let before = measure(&redis, rounds, || old_sync(&redis, &pg, sale, &old_script)).await;
    // The old script leaves every code in `done`, as a sale reconciled by it would have.
    let _: i64 = redis.del(sale_keys(sale)).await.unwrap();
    sales.sync(sale).await.unwrap();
    sales.sync(sale).await.unwrap();
    let with_new = measure(&redis, rounds, || async {
        insert_orders(&pg, sale, new_orders).await;
        reset_stats(&redis).await;
        sales.sync(sale).await.unwrap();
    })
    .await;
    let quiet = measure(&redis, rounds, || async { sales.sync(sale).await.unwrap() }).await;
    let f = sales.figures(sale).await.unwrap();
    let pg_sold: i32 = sqlx::query_scalar("select sold from ticket_sales where id = $1")
        .bind(sale.0)
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(f.sold, i64::from(pg_sold), "Redis and Postgres agree after the run");

    println!("Redis time of one reconcile, sale of {orders} orders (median of {rounds}):");
    println!("| reconcile | Redis µs |");
    println!("|---|--:|");
    println!("| before: full list of every order | {before:.0} |");
    println!("| after: rebuild (keys gone, every order read) | {rebuild:.0} |");
    println!("| after: reconcile, {new_orders} orders since the last | {with_new:.0} |");
    println!("| after: reconcile, no order since the last | {quiet:.0} |");
    bench.clean_up(&redis, pg, &[sale]).await;
}
