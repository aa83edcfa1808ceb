//! `/healthz`: the process is up. `/readyz`: Redis (the sales' and the sessions', the same one
//! unless configured apart) and Postgres answer.

use fred::prelude::*;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, handler};

use crate::startup::AppState;

#[handler]
pub fn healthz() -> &'static str {
    "ok"
}

#[handler]
pub async fn readyz(state: Data<&AppState>) -> impl IntoResponse {
    let redis = state.redis.ping::<String>(None).await.is_ok();
    let sessions = state.session_redis.ping::<String>(None).await.is_ok();
    let postgres = sqlx::query("select 1").execute(&state.db).await.is_ok();
    let body = format!(
        "redis: {}\nsessions: {}\npostgres: {}\n",
        up(redis),
        up(sessions),
        up(postgres)
    );
    let status = if redis && sessions && postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    body.with_status(status)
}

fn up(ok: bool) -> &'static str {
    if ok { "up" } else { "down" }
}
