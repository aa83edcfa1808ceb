//! Postgres access: the durable record. One module per table family; each function is one
//! query or one transaction, named for what it does.

pub mod api_tokens;
pub mod events;
pub mod invites;
pub mod orders;
pub mod organizers;
pub mod outbox;
pub mod prequeue;
pub mod prequeue_links;
pub mod returns;
pub mod sales;
pub mod samples;
pub mod tickets;
pub mod waitlist;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to the database at `url`, creating it first if the server does not have it, and
/// brings its schema up to date.
pub async fn connect_and_migrate(url: &str) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    create_database_if_missing(&options).await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

async fn create_database_if_missing(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let create = format!("create database \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut admin).await {
            Ok(_) => {}
            // another instance created it in the meantime
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await
}
