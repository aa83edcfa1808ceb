//! What every integration test needs: a fresh database, the sale service on it, and events and
//! sales to sell.

use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use boxoffice::config::Settings;
use boxoffice::db;
use boxoffice::db::events::NewEvent;
use boxoffice::db::sales::{NewSale, SaleRecord};
use boxoffice::sale::{SaleId, TicketSales};
use boxoffice::startup::{AppState, Services};
use chrono::{Duration, Utc};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The Postgres server tests make their databases on.
fn server_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Settings for one test: its own database on the test server.
pub fn test_settings() -> Settings {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(drop_stale_test_databases());
        })
        .join()
        .unwrap();
    });
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let name = format!("bo_test_{epoch}_{}", Uuid::new_v4().simple());
    Settings {
        database_url: format!("{}/{name}", server_url()),
        redis_url: redis_url(),
        addr: "127.0.0.1:0".parse().unwrap(),
        confirm_grace_secs: 15,
        ..Settings::default()
    }
}

/// Databases of test runs that ended more than an hour ago; a test never drops its own,
/// because parallel tests share the server.
async fn drop_stale_test_databases() {
    let Ok(mut admin) = PgConnection::connect(&format!("{}/postgres", server_url())).await else {
        return;
    };
    let names: Vec<String> = sqlx::query_scalar("select datname from pg_database where datname like 'bo\\_test\\_%'")
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
    let hour_ago = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 3600;
    for name in names {
        let epoch: Option<u64> = name.split('_').nth(2).and_then(|e| e.parse().ok());
        if epoch.is_some_and(|e| e < hour_ago) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists \"{name}\" with (force)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

/// A database, Redis, and the sale service on them.
pub struct World {
    pub db: PgPool,
    pub redis: fred::prelude::Pool,
    /// The session store's pool: `redis` unless the settings name a Redis for sessions.
    pub session_redis: fred::prelude::Pool,
    pub sales: TicketSales,
    pub settings: Settings,
    /// The owner of the events that [`World::sale`] makes, made with the first of them (an
    /// organizer the test did not ask for would upset its counts).
    organizer: tokio::sync::OnceCell<Uuid>,
}

impl World {
    pub async fn new() -> World {
        Self::with_settings(test_settings()).await
    }

    /// The world the app itself would start on with these settings.
    pub async fn with_settings(settings: Settings) -> World {
        let Services {
            sales,
            db,
            redis,
            session_redis,
            ..
        } = boxoffice::startup::connect_services(&settings)
            .await
            .expect("Postgres, Redis and the sale service");
        World {
            db,
            redis,
            session_redis,
            sales,
            settings,
            organizer: tokio::sync::OnceCell::new(),
        }
    }

    async fn organizer(&self) -> Uuid {
        *self
            .organizer
            .get_or_init(|| async {
                let email = format!("{}@example.com", Uuid::new_v4().simple());
                db::organizers::insert(&self.db, &email, "x").await.unwrap().id
            })
            .await
    }

    /// An open sale of `capacity` tickets at 25.00 EUR whose holds last `hold_secs`.
    pub async fn sale(&self, capacity: i32, hold_secs: i32) -> SaleRecord {
        self.sale_with(capacity, hold_secs, 0, Utc::now() - Duration::minutes(1))
            .await
    }

    pub async fn sale_with(
        &self,
        capacity: i32,
        hold_secs: i32,
        max_active: i32,
        opens_at: chrono::DateTime<Utc>,
    ) -> SaleRecord {
        let event = db::events::insert(
            &self.db,
            &NewEvent {
                organizer_id: self.organizer().await,
                title: "The Few Tickets Tour".into(),
                description: "One night only.".into(),
                venue: "Small Hall".into(),
                starts_at: Utc::now() + Duration::days(30),
                ends_at: Utc::now() + Duration::days(30) + Duration::hours(3),
                capacity,
                price_minor: 2500,
                currency: "EUR".into(),
            },
        )
        .await
        .unwrap();
        db::sales::insert(
            &self.db,
            &NewSale {
                event_id: event.id,
                capacity,
                price_minor: event.price_minor,
                currency: event.currency,
                opens_at,
                hold_secs,
                max_active,
                prequeue_secs: 0,
                one_place_per_email: false,
            },
        )
        .await
        .unwrap()
    }

    /// A second sale of the same event as `sale`, of `capacity` tickets (an event's sales
    /// share its seats).
    pub async fn another_sale_of(&self, sale: &SaleRecord, capacity: i32) -> SaleRecord {
        db::sales::insert(
            &self.db,
            &NewSale {
                event_id: sale.event_id,
                capacity,
                price_minor: sale.price_minor,
                currency: sale.currency.clone(),
                opens_at: sale.opens_at,
                hold_secs: sale.hold_secs,
                max_active: 0,
                prequeue_secs: 0,
                one_place_per_email: false,
            },
        )
        .await
        .unwrap()
    }

    /// The state an app instance over this world runs on.
    pub fn app_state(&self) -> AppState {
        AppState::new(
            Services {
                sales: self.sales.clone(),
                db: self.db.clone(),
                redis: self.redis.clone(),
                session_redis: self.session_redis.clone(),
                payments: boxoffice::payment::Payments::from_settings(&self.settings).unwrap(),
            },
            &self.settings,
        )
    }

    pub async fn pg_sold(&self, sale: SaleId) -> i32 {
        db::sales::find(&self.db, sale).await.unwrap().unwrap().sold
    }
}

/// The real application on port 0 over a fresh [`World`], for tests that speak HTTP.
pub struct TestApp {
    pub world: World,
    /// `http://127.0.0.1:<port>`
    pub base: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// The app with settings of the test's choosing (tiny rate limits, its own Redis, say).
    pub async fn spawn_with(change: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = test_settings();
        change(&mut settings);
        Self::on(World::with_settings(settings).await).await
    }

    /// The app over a given world.
    pub async fn on(world: World) -> TestApp {
        let base = serve(world.app_state()).await;
        TestApp { world, base }
    }

    /// A browser of its own: see [`browser`].
    pub fn client(&self) -> reqwest::Client {
        browser()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The application over `state` on port 0, serving until the test's runtime ends; its base
/// URL, `http://127.0.0.1:<port>`.
pub async fn serve(state: AppState) -> String {
    let app = boxoffice::startup::Application::with_state(state)
        .await
        .expect("the app binds port 0");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    base
}

/// A buyer with valid details, for tests that need one to confirm.
pub fn ada() -> boxoffice::sale::Buyer {
    boxoffice::sale::Buyer::parse(&boxoffice::sale::BuyerInput {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        age: "36".into(),
        gender: "female".into(),
    })
    .unwrap()
}

/// Joins `sale` for `quantity` tickets through the buyer API with `client`'s cookie jar; the
/// answer's JSON.
pub async fn api_join(
    base: &str,
    client: &reqwest::Client,
    sale: impl std::fmt::Display,
    quantity: u8,
) -> serde_json::Value {
    client
        .post(format!("{base}/api/v1/sales/{sale}/reservations"))
        .json(&serde_json::json!({ "quantity": quantity }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `GET url` with `client`'s cookie jar, its body read as JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> T {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// How every test client starts: redirects left to the test to check. Add a cookie jar (or
/// leave it out, to send cookies by hand), headers or a local address before `build()`.
///
/// Test clients speak plain HTTP to loopback, so they load no TLS roots: reading the system's
/// (as the app's Stripe client does, once) would cost each of the many clients a test makes
/// some 25 ms, enough to let a limiter's allowance refill under a test that counts on speed.
pub fn http() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only(std::iter::empty())
}

/// A browser: a cookie jar of its own, and redirects left to the test to check.
pub fn browser() -> reqwest::Client {
    http().cookie_store(true).build().unwrap()
}

/// The queue of a sale as Redis keeps it (`lua/common.lua`): a bit per arrival number in
/// `qbits`, the arrival's code as 16 bytes at `seq * 16` in `qcodes`.
pub mod queue {
    use boxoffice::sale::{SaleId, SaleKey, sale_key};
    use fred::prelude::*;

    fn keys(sale: SaleId) -> Vec<String> {
        vec![sale_key(sale, SaleKey::QueueBits), sale_key(sale, SaleKey::QueueCodes)]
    }

    /// The codes waiting (their tokens, 32 hex digits), in the order they arrived.
    pub async fn codes(redis: &Pool, sale: SaleId) -> Vec<String> {
        let script = "local out, seq = {}, 0
            while true do
              seq = redis.call('BITPOS', KEYS[1], 1, seq, -1, 'BIT')
              if seq < 0 then return out end
              local b = redis.call('GETRANGE', KEYS[2], seq * 16, seq * 16 + 15)
              out[#out + 1] = string.format(string.rep('%02x', 16), string.byte(b, 1, 16))
              seq = seq + 1
            end";
        redis
            .next()
            .eval(script, keys(sale), Vec::<String>::new())
            .await
            .unwrap()
    }

    /// How many wait.
    pub async fn len(redis: &Pool, sale: SaleId) -> i64 {
        let script = "return redis.call('BITCOUNT', KEYS[1])";
        redis
            .next()
            .eval(script, keys(sale), Vec::<String>::new())
            .await
            .unwrap()
    }

    /// The 1-based place of arrival number `seq` while it waits, counted from the bits.
    pub async fn place(redis: &Pool, sale: SaleId, seq: u64) -> Option<u64> {
        let script = "if redis.call('GETBIT', KEYS[1], ARGV[1]) == 0 then return -1 end
            return redis.call('BITCOUNT', KEYS[1], 0, ARGV[1] - 1, 'BIT') + 1";
        let place: i64 = redis
            .next()
            .eval(script, keys(sale), vec![seq.to_string()])
            .await
            .unwrap();
        u64::try_from(place).ok()
    }
}
