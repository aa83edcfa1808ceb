//! What both benchmarks need: a database of their own, sales whose queue stands still, and
//! cleaning up after themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use boxoffice::config::Settings;
use boxoffice::db;
use boxoffice::db::events::NewEvent;
use boxoffice::db::sales::NewSale;
use boxoffice::sale::{Owner, ReservationCode, SaleId, TicketSales};
use chrono::Utc;
use fred::prelude::*;
use sqlx::PgPool;
use uuid::Uuid;

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[allow(dead_code)] // poll_http measures over HTTP, its own way
/// Runs `op` from `tasks` concurrent tasks for `secs` seconds; returns operations per second.
pub async fn throughput<F, Fut>(tasks: usize, secs: f64, op: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (op, stop, count) = (op.clone(), stop.clone(), count.clone());
            tokio::spawn(async move {
                let mut i = t as u64;
                while !stop.load(Ordering::Relaxed) {
                    op(i).await;
                    i += tasks as u64;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let done = count.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for h in handles {
        h.await.unwrap();
    }
    done as f64 / elapsed
}

#[allow(dead_code)] // the crowd bench reports one run per way
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Settings for a bench run: a fresh database (`BENCH_POSTGRES_URL` names the server) and
/// `REDIS_URL`.
pub struct BenchDb {
    pub settings: Settings,
    server: String,
    name: String,
}

impl BenchDb {
    pub fn new() -> BenchDb {
        let server =
            std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("bo_bench_{}", Uuid::new_v4().simple());
        // The environment's settings (REDIS_URL, BOXOFFICE_REDIS_POOL, ...), on a database of
        // the bench's own.
        let settings = Settings {
            database_url: format!("{server}/{name}"),
            addr: "127.0.0.1:0".parse().unwrap(),
            // One client makes all the load: the limits stay in the path but never bite.
            rate_join_per_min: 1_000_000_000,
            rate_poll_per_min: 1_000_000_000,
            rate_buyer_per_min: 1_000_000_000,
            ..Settings::from_env().expect("settings from the environment")
        };
        BenchDb { settings, server, name }
    }

    /// Deletes the sales' Redis keys and drops the database.
    pub async fn clean_up(self, redis: &Pool, pg: PgPool, sales: &[SaleId]) {
        for &sale in sales {
            let _: i64 = redis.del(boxoffice::sale::sale_keys(sale)).await.unwrap_or(0);
        }
        pg.close().await;
        let admin = format!("{}/postgres", self.server);
        if let Ok(mut admin) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
            let drop = format!("drop database if exists {} with (force)", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
        }
    }
}

/// Postgres on the bench's database, Redis, and the sale service over them.
#[allow(dead_code)] // poll_http runs the whole app instead
pub async fn connect(bench_db: &BenchDb) -> (PgPool, Pool, TicketSales) {
    let settings = &bench_db.settings;
    let pg = db::connect_and_migrate(&settings.database_url).await.expect("Postgres");
    let redis = boxoffice::redis::connect(settings).await.expect("Redis");
    let sales = TicketSales::new(redis.clone(), pg.clone(), settings)
        .await
        .expect("sale service");
    (pg, redis, sales)
}

/// The workload "a new buyer joins `sale` for one ticket", for [`throughput`].
#[allow(dead_code)] // for the benches that measure joins
pub fn new_buyers_join(
    sales: TicketSales,
    sale: SaleId,
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Clone + Send + Sync + 'static {
    move |_i: u64| {
        let sales = sales.clone();
        Box::pin(async move {
            sales
                .join(sale, &Owner::random(), sales.quantity(1).unwrap())
                .await
                .unwrap();
        })
    }
}

/// A sale of six tickets all held for an hour by `holder`, so that every later buyer waits
/// in a queue that stands still.
pub async fn stalled_sale(pg: &PgPool, sales: &TicketSales, holder: &Owner) -> SaleId {
    let sale = open_sale(pg, sales, 6).await;
    sales.join(sale, holder, sales.quantity(6).unwrap()).await.unwrap();
    sale
}

/// An open sale of `capacity` tickets, holds of an hour, known to Redis.
pub async fn open_sale(pg: &PgPool, sales: &TicketSales, capacity: i32) -> SaleId {
    let organizer = db::organizers::insert(pg, &format!("bench-{}@example.com", Uuid::new_v4().simple()), "x")
        .await
        .unwrap()
        .id;
    let event = db::events::insert(
        pg,
        &NewEvent {
            organizer_id: organizer,
            title: "Bench".into(),
            description: String::new(),
            venue: String::new(),
            starts_at: Utc::now() + chrono::Duration::days(1),
            ends_at: Utc::now() + chrono::Duration::days(2),
            capacity,
            price_minor: 1000,
            currency: "EUR".into(),
        },
    )
    .await
    .unwrap();
    let sale = db::sales::insert(
        pg,
        &NewSale {
            event_id: event.id,
            capacity,
            price_minor: 1000,
            currency: "EUR".into(),
            opens_at: Utc::now() - chrono::Duration::minutes(1),
            hold_secs: 3600,
            max_active: 0,
            prequeue_secs: 0,
            one_place_per_email: false,
        },
    )
    .await
    .unwrap()
    .sale_id();
    sales.sync(sale).await.unwrap();
    sale
}

/// `n` buyers with owners of their own join `sale` one thousand at a time, for one ticket
/// each; their codes, owners and places in line (`None` for a buyer not left waiting).
#[allow(dead_code)] // poll_http's buyers have sessions of their own
pub async fn fill_queue(sales: &TicketSales, sale: SaleId, n: usize) -> Vec<(ReservationCode, Owner, Option<String>)> {
    let mut all = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(1000) {
        let k = 1000.min(n - chunk * 1000);
        let joined = futures::future::join_all((0..k).map(|_| {
            let sales = sales.clone();
            async move {
                let owner = Owner::random();
                let r = sales.join(sale, &owner, sales.quantity(1).unwrap()).await.unwrap();
                (r.code, owner, r.place_text())
            }
        }))
        .await;
        all.extend(joined);
    }
    all
}

/// Redis's `INFO commandstats`.
#[allow(dead_code)] // not every bench reads it
pub async fn command_stats(redis: &Pool) -> String {
    redis
        .next()
        .info(Some(fred::types::InfoKind::CommandStats))
        .await
        .unwrap()
}

/// A redis-server child of this process on a free port, its files in a directory of its own,
/// killed when dropped.
#[allow(dead_code)] // the benches that use the shared Redis
pub struct RedisServer {
    child: std::process::Child,
    dir: std::path::PathBuf,
    pub port: u16,
}

#[allow(dead_code)] // the benches that use the shared Redis
impl RedisServer {
    pub fn start(persistence: &[&str]) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("bo-bench-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--dir", dir.to_str().unwrap()])
            .args(persistence)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on the PATH");
        RedisServer { child, dir, port }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
