//! Bearer tokens of the organizer API. Only a token's SHA-256 is stored.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiToken {
    pub id: Uuid,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub async fn insert(db: &PgPool, organizer: Uuid, sha256: &[u8], label: &str) -> Result<ApiToken, sqlx::Error> {
    sqlx::query_as(
        "insert into api_tokens (id, organizer_id, token_sha256, label) values ($1, $2, $3, $4)
         returning id, label, created_at, last_used_at",
    )
    .bind(Uuid::new_v4())
    .bind(organizer)
    .bind(sha256)
    .bind(label)
    .fetch_one(db)
    .await
}

/// The organizer a token hash belongs to, noting when it was last used.
pub async fn organizer_for(db: &PgPool, sha256: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("update api_tokens set last_used_at = now() where token_sha256 = $1 returning organizer_id")
        .bind(sha256)
        .fetch_optional(db)
        .await
}

pub async fn list_for_organizer(db: &PgPool, organizer: Uuid) -> Result<Vec<ApiToken>, sqlx::Error> {
    sqlx::query_as(
        "select id, label, created_at, last_used_at from api_tokens
         where organizer_id = $1 order by created_at desc, id",
    )
    .bind(organizer)
    .fetch_all(db)
    .await
}

/// Revokes one of the organizer's tokens; false when there is no such token of theirs.
pub async fn delete(db: &PgPool, id: Uuid, organizer: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from api_tokens where id = $1 and organizer_id = $2")
        .bind(id)
        .bind(organizer)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
