//! One-time invite links to make an organizer account. Only a link's SHA-256 is stored.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Invite {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    db: &PgPool,
    invited_by: Uuid,
    sha256: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<Invite, sqlx::Error> {
    sqlx::query_as(
        "insert into organizer_invites (id, invited_by, token_sha256, expires_at) values ($1, $2, $3, $4)
         returning id, created_at, expires_at, used_at",
    )
    .bind(Uuid::new_v4())
    .bind(invited_by)
    .bind(sha256)
    .bind(expires_at)
    .fetch_one(db)
    .await
}

/// Whether the invite can still be used (for the form; [`consume`] decides).
pub async fn is_usable(db: &PgPool, sha256: &[u8]) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from organizer_invites
                        where token_sha256 = $1 and used_at is null and expires_at > now())",
    )
    .bind(sha256)
    .fetch_one(db)
    .await
}

/// Marks the invite used; false when it is unknown, used or expired. A concurrent use of the
/// same invite waits for this transaction and then finds it used (Postgres re-checks the
/// condition on the newest row), so an invite makes one account at most.
pub async fn consume(db: impl sqlx::PgExecutor<'_>, sha256: &[u8]) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update organizer_invites set used_at = now()
         where token_sha256 = $1 and used_at is null and expires_at > now()",
    )
    .bind(sha256)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The organizer's invites, newest first.
pub async fn list_for_organizer(db: &PgPool, organizer: Uuid) -> Result<Vec<Invite>, sqlx::Error> {
    sqlx::query_as(
        "select id, created_at, expires_at, used_at from organizer_invites
         where invited_by = $1 order by created_at desc, id limit 50",
    )
    .bind(organizer)
    .fetch_all(db)
    .await
}
