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
