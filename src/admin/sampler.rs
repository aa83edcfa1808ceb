//! Samples of every live sale's figures at a fixed interval (`BOXOFFICE_SAMPLE_SECS`), kept
//! in Postgres (`sale_samples`) for the dashboard's charts and the API's series.
//!
//! Every instance runs the sampler. A sample's time is Redis's clock rounded down to the
//! interval, so all instances name the same turn alike, and the table's key lets the first
//! sample of a turn in and the others do nothing: one sample per sale and interval, the same
//! history for every instance and reload, and it outlives a restart. A sale is sampled from
//! its opening until it closes (or its event is over).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tracing::warn;

use crate::admin::service::ServiceError;
use crate::db;
use crate::db::samples::Sample;
use crate::sale::{SaleId, SaleState};
use crate::startup::AppState;

/// Samples every live sale each interval until the task is aborted.
pub async fn sample_forever(state: AppState) {
    let every = state.settings.sample_every;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sample_live_sales(&state, every).await {
            warn!(error = %e, "sampling sales failed; will retry");
        }
    }
}

/// Takes this interval's sample of every live sale that no instance took yet; how many this
/// call recorded.
pub async fn sample_live_sales(state: &AppState, every: Duration) -> Result<usize, ServiceError> {
    let mut recorded = 0;
    for sale in db::sales::live_ids(&state.db).await? {
        match sample(state, sale, every).await {
            Ok(true) => recorded += 1,
            Ok(false) => {}
            Err(e) => warn!(%sale, error = %e, "sampling a sale failed; will retry"),
        }
    }
    Ok(recorded)
}

async fn sample(state: &AppState, sale: SaleId, every: Duration) -> Result<bool, ServiceError> {
    let live = state.sales.figures(sale).await?;
    if live.state == SaleState::Closed || live.server_now < live.opens_at {
        return Ok(false);
    }
    let taken_at = turn_of(live.server_now, every);
    // Another instance took this turn: skip the count of the sale's orders, which reads them
    // all. Two instances that both find the turn free still record it once (`insert_once`).
    if db::samples::taken(&state.db, sale, taken_at).await? {
        return Ok(false);
    }
    let totals = db::orders::totals_for_sale(&state.db, sale).await?;
    let sample = Sample {
        taken_at,
        waiting: live.waiting,
        held: live.held,
        at_checkout: live.active,
        sold: live.sold,
        admitted: live.admitted,
        orders: totals.orders,
        joined: live.joined,
        left_queue: live.left,
        released: live.released,
        abandoned: live.abandoned,
        lapsed: live.lapsed,
        sold_out: live.sold_out,
    };
    Ok(db::samples::insert_once(&state.db, sale, &sample).await?)
}

/// The turn `now` falls in: `now` rounded down to a whole `every` since the Unix epoch.
pub fn turn_of(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let every_ms = (every.as_millis() as i64).max(1);
    let ms = now.timestamp_millis();
    Utc.timestamp_millis_opt(ms - ms.rem_euclid(every_ms))
        .single()
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_is_the_time_rounded_down_to_the_interval() {
        let every = Duration::from_secs(10);
        let at = |ms| Utc.timestamp_millis_opt(ms).unwrap();
        assert_eq!(turn_of(at(1_700_000_009_999), every), at(1_700_000_000_000));
        assert_eq!(turn_of(at(1_700_000_010_000), every), at(1_700_000_010_000));
        assert_eq!(
            turn_of(at(1_700_000_010_001), Duration::from_secs(1)),
            at(1_700_000_010_000)
        );
    }
}
