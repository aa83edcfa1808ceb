//! A sale over time, as the dashboard's charts and the API's series show it: the samples of
//! [`super::sampler`] from the sale's opening to now, the funnel of its buyers, and the
//! estimates of when it sells out and how long the last buyer in line waits.

use chrono::{DateTime, TimeDelta, Utc};

use super::service::{self, Figures, ServiceError};
use crate::db;
use crate::db::sales::SaleRecord;
use crate::db::samples::Sample;
use crate::sale::{SaleFigures, wait_secs};
use crate::startup::AppState;

/// Everything the dashboard's charts, funnel and estimates show of a sale.
pub struct SaleSeries {
    pub samples: Vec<Sample>,
    pub funnel: Funnel,
    pub estimates: Estimates,
    /// Redis's clock when the live figures were read.
    pub as_of: DateTime<Utc>,
}

/// Where the buyers of a sale went, from the sale's live state. Every buyer who joined is
/// admitted, waiting, or left the queue one of three ways; every buyer admitted ordered, is
/// at checkout, or gave up one of two ways. (A buyer whose sale closed under it is in none.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Funnel {
    pub joined: i64,
    pub admitted: i64,
    pub ordered: i64,
    /// Still in the queue.
    pub waiting: i64,
    /// Left the queue themselves.
    pub left_queue: i64,
    /// Lost their place by not polling (a closed tab).
    pub abandoned: i64,
    /// Told the sale was sold out.
    pub sold_out: i64,
    /// At checkout now.
    pub at_checkout: i64,
    /// Gave their hold back at checkout.
    pub released: i64,
    /// Let their hold lapse.
    pub lapsed: i64,
}

impl Funnel {
    /// The funnel of the live figures and the sale's orders in Postgres.
    pub fn of(live: &SaleFigures, orders: i64) -> Funnel {
        Funnel {
            joined: live.joined,
            admitted: live.admitted,
            ordered: orders,
            waiting: live.waiting,
            left_queue: live.left,
            abandoned: live.abandoned,
            sold_out: live.sold_out,
            at_checkout: live.active,
            released: live.released,
            lapsed: live.lapsed,
        }
    }
}

/// `part` of `whole` as a fraction, `None` of nobody.
pub fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// When the sale sells out and how long the queue takes, at the current rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimates {
    /// Tickets sold per minute over the last minute of samples.
    pub sold_per_minute: Option<f64>,
    /// Seconds from now until every ticket is sold; 0 when sold out, `None` while nothing sells.
    pub sell_out_secs: Option<f64>,
    /// Buyers admitted per minute (the sale's one admission rate).
    pub admitted_per_minute: Option<f64>,
    /// Seconds the last buyer in line waits; `None` with nobody admitted of late.
    pub last_in_line_wait_secs: Option<f64>,
}

/// Seconds until `tickets_left` are sold at `sold_per_minute`: the one rule of the sell-out
/// estimate. Sold out is now; with nothing selling, nobody can tell.
pub fn sell_out_secs(tickets_left: i64, sold_per_minute: Option<f64>) -> Option<f64> {
    if tickets_left <= 0 {
        return Some(0.0);
    }
    sold_per_minute
        .filter(|r| *r > 0.0)
        .map(|r| tickets_left as f64 * 60.0 / r)
}

/// Tickets sold per minute over the last minute of `samples` (or as much of it as there is),
/// up to `now`'s `sold`; `None` before a sample a whole interval old.
pub fn sold_per_minute(samples: &[Sample], now: DateTime<Utc>, sold: i64) -> Option<f64> {
    let since = now - TimeDelta::minutes(1);
    let first = samples.iter().find(|s| s.taken_at >= since)?;
    let ms = (now - first.taken_at).num_milliseconds();
    (ms > 0).then(|| (sold - first.sold).max(0) as f64 * 60_000.0 / ms as f64)
}

/// Per minute between consecutive samples of a cumulative count: one point per sample after
/// the first, at the later sample's time (Unix seconds).
pub fn per_minute(samples: &[Sample], count: impl Fn(&Sample) -> i64) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let ms = (w[1].taken_at - w[0].taken_at).num_milliseconds();
            (ms > 0).then(|| {
                let change = (count(&w[1]) - count(&w[0])).max(0) as f64;
                (unix_secs(w[1].taken_at), change * 60_000.0 / ms as f64)
            })
        })
        .collect()
}

/// One point per sample of a level (Unix seconds, value).
pub fn levels(samples: &[Sample], level: impl Fn(&Sample) -> i64) -> Vec<(f64, f64)> {
    samples
        .iter()
        .map(|s| (unix_secs(s.taken_at), level(s) as f64))
        .collect()
}

/// At most about `most` of `samples`, evenly spread, the first and the last kept: a chart of a
/// long sale stays light to draw every few seconds. Rates between the kept samples stay true,
/// since the counts are cumulative.
pub fn thinned(samples: &[Sample], most: usize) -> Vec<Sample> {
    let step = samples.len().div_ceil(most.max(1)).max(1);
    let mut kept: Vec<Sample> = samples.iter().step_by(step).cloned().collect();
    if let Some(last) = samples.last()
        && kept.last() != Some(last)
    {
        kept.push(last.clone());
    }
    kept
}

fn unix_secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// The series of the organizer's sale (ownership checked by the caller's `service::sale`).
pub async fn series(state: &AppState, sale: &SaleRecord) -> Result<SaleSeries, ServiceError> {
    let Figures {
        live,
        admitted_per_minute,
        totals,
    } = service::figures(state, sale).await?;
    let samples = db::samples::list_for_sale(&state.db, sale.sale_id()).await?;
    let sold_per_minute = sold_per_minute(&samples, live.server_now, live.sold);
    let estimates = Estimates {
        sold_per_minute,
        sell_out_secs: sell_out_secs(live.capacity - live.sold, sold_per_minute),
        admitted_per_minute,
        last_in_line_wait_secs: wait_secs(admitted_per_minute, live.waiting.max(0) as u64),
    };
    Ok(SaleSeries {
        funnel: Funnel::of(&live, totals.orders),
        estimates,
        as_of: live.server_now,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(secs: i64, sold: i64, admitted: i64) -> Sample {
        Sample {
            taken_at: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            waiting: 0,
            held: 0,
            at_checkout: 0,
            sold,
            admitted,
            orders: 0,
            joined: 0,
            left_queue: 0,
            released: 0,
            abandoned: 0,
            lapsed: 0,
            sold_out: 0,
        }
    }

    #[test]
    fn the_sell_out_time_is_the_tickets_left_over_the_rate() {
        assert_eq!(sell_out_secs(100, Some(20.0)), Some(300.0));
        assert_eq!(sell_out_secs(1, Some(60.0)), Some(1.0));
        assert_eq!(sell_out_secs(0, None), Some(0.0), "sold out is now");
        assert_eq!(sell_out_secs(10, None), None);
        assert_eq!(sell_out_secs(10, Some(0.0)), None, "nothing sells: no estimate");
    }

    #[test]
    fn the_sold_rate_covers_the_last_minute_of_samples() {
        let samples = [sample(0, 0, 0), sample(30, 10, 0), sample(60, 20, 0), sample(90, 50, 0)];
        let now = Utc.timestamp_opt(1_700_000_000 + 90, 0).unwrap();
        // From the sample at 30 s (the first of the last minute) to now: 40 tickets in 60 s.
        assert_eq!(sold_per_minute(&samples, now, 50), Some(40.0));
        assert_eq!(sold_per_minute(&[], now, 50), None);
        assert_eq!(sold_per_minute(&samples[3..], now, 50), None, "no time has passed");
    }

    #[test]
    fn rates_between_samples_are_per_minute() {
        let samples = [sample(0, 0, 0), sample(10, 0, 5), sample(20, 0, 5)];
        assert_eq!(
            per_minute(&samples, |s| s.admitted),
            vec![(1_700_000_010.0, 30.0), (1_700_000_020.0, 0.0)]
        );
        assert_eq!(levels(&samples, |s| s.admitted).len(), 3);
    }

    #[test]
    fn a_long_sale_is_thinned_to_about_the_most_keeping_both_ends() {
        let samples: Vec<Sample> = (0..1000).map(|i| sample(i * 10, i, i)).collect();
        let kept = thinned(&samples, 300);
        assert!(kept.len() <= 301, "{}", kept.len());
        assert_eq!(kept.first(), samples.first());
        assert_eq!(kept.last(), samples.last());
        assert_eq!(
            thinned(&samples[..5], 300),
            samples[..5].to_vec(),
            "few samples stay as they are"
        );
        assert!(thinned(&[], 300).is_empty());
    }

    #[test]
    fn shares_of_nobody_are_unknown() {
        assert_eq!(share(1, 4), Some(0.25));
        assert_eq!(share(0, 0), None);
    }
}
