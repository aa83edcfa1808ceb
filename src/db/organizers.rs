use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Organizer {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(db: &PgPool, email: &str, password_hash: &str) -> Result<Organizer, sqlx::Error> {
    sqlx::query_as(
        "insert into organizers (id, email, password_hash) values ($1, $2, $3)
         returning id, email, password_hash, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .fetch_one(db)
    .await
}

/// Makes an account unless one with this email exists; the id when it was made. A concurrent
/// sign-up with the same email waits for this one and then makes nothing.
pub async fn insert_if_new(
    db: impl sqlx::PgExecutor<'_>,
    email: &str,
    password_hash: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into organizers (id, email, password_hash) values ($1, $2, $3)
         on conflict (email) do nothing returning id",
    )
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .fetch_optional(db)
    .await
}

/// Locks the organizer's row until the transaction ends: what one organizer creates is
/// counted and inserted one request at a time, so concurrent requests cannot pass a limit.
pub async fn lock(db: impl sqlx::PgExecutor<'_>, organizer: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("select 1 from organizers where id = $1 for update")
        .bind(organizer)
        .execute(db)
        .await?;
    Ok(())
}

/// The organizer with this email (stored lowercased), if any.
pub async fn find_by_email(db: &PgPool, email: &str) -> Result<Option<Organizer>, sqlx::Error> {
    sqlx::query_as("select id, email, password_hash, created_at from organizers where email = $1")
        .bind(email)
        .fetch_optional(db)
        .await
}

/// True when `e` is the refusal of a second account with an email already registered.
pub fn is_duplicate_email(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}
