//! The sale's admission rate: one estimator for every page that shows it (the dashboard's
//! "admitted per minute", the waiting room's estimated wait), on every instance.
//!
//! The admitting scripts count admissions in ten-second buckets of Redis's clock, in a small
//! ring inside the sale's hash (see `lua/common.lua`); `peek` sums the last minute of whole
//! buckets. The figure is a function of the sale's shared state and the bucket Redis's clock is
//! in, so two instances reading it in the same bucket read the same number.
//!
//! The waiting room's poll must stay one Redis call, so it never reads the rate itself: each
//! instance keeps the rate last read per sale and reads it again, in the background, once
//! Redis's clock (the poll's `server_now`) has passed the bucket it was read in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{SaleId, TicketSales};

/// Buyers admitted per minute, as the sale's live state counts them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AdmissionRate {
    /// Over the last minute of whole ten-second buckets, or as many of them as the sale's live
    /// state has seen; `None` before the first whole bucket.
    pub per_minute: Option<f64>,
    /// When the figure next changes (Redis's clock): the window moves in whole buckets.
    pub until: DateTime<Utc>,
}

impl AdmissionRate {
    /// From `admitted` buyers over `window_ms` (0: no whole bucket yet).
    pub(crate) fn from_window(admitted: i64, window_ms: i64, until: DateTime<Utc>) -> Self {
        AdmissionRate {
            per_minute: (window_ms > 0).then(|| admitted as f64 * 60_000.0 / window_ms as f64),
            until,
        }
    }

    /// A sale with no live state: nobody is being admitted.
    pub(crate) fn none(now: DateTime<Utc>) -> Self {
        AdmissionRate {
            per_minute: None,
            until: now,
        }
    }
}

/// How long a buyer at `position` in the queue waits when `per_minute` buyers are admitted,
/// in seconds: the one estimate of a wait (the waiting room's, the dashboard's for the last
/// buyer in line). Nobody in line waits no time; otherwise `None` while nobody is being
/// admitted.
pub fn wait_secs(per_minute: Option<f64>, position: u64) -> Option<f64> {
    if position == 0 {
        return Some(0.0);
    }
    per_minute.filter(|r| *r > 0.0).map(|r| position as f64 * 60.0 / r)
}

/// The rate last read per sale by this instance, for the waiting room.
#[derive(Default)]
pub(super) struct RecentRates(Mutex<HashMap<SaleId, Entry>>);

#[derive(Default)]
struct Entry {
    rate: Option<AdmissionRate>,
    reading: bool,
    /// The last attempt, so that a failing read is not repeated on every poll.
    tried: Option<Instant>,
}

/// Most reads of one sale's rate per instance when reads fail or Redis's clock jumps.
const MIN_RETRY: Duration = Duration::from_secs(2);
/// Sales whose rate nobody asked for this long are forgotten.
const FORGET: Duration = Duration::from_secs(600);

impl RecentRates {
    /// The rate to show now, and whether the caller should read it again.
    fn get(&self, sale: SaleId, now: DateTime<Utc>) -> (Option<f64>, bool) {
        let mut all = self.0.lock().expect("admission rates lock");
        if !all.contains_key(&sale) {
            all.retain(|_, e| e.tried.is_some_and(|t| t.elapsed() < FORGET));
        }
        let entry = all.entry(sale).or_default();
        let stale = entry.rate.is_none_or(|r| now >= r.until);
        let due = stale && !entry.reading && entry.tried.is_none_or(|t| t.elapsed() >= MIN_RETRY);
        if due {
            entry.reading = true;
            entry.tried = Some(Instant::now());
        }
        (entry.rate.and_then(|r| r.per_minute), due)
    }

    fn store(&self, sale: SaleId, rate: Option<AdmissionRate>) {
        let mut all = self.0.lock().expect("admission rates lock");
        let entry = all.entry(sale).or_default();
        entry.reading = false;
        if rate.is_some() {
            entry.rate = rate;
        }
    }
}

impl TicketSales {
    /// The sale's admission rate for a page that must not wait for Redis (the waiting room's
    /// poll), as of `now` on Redis's clock: the figure this instance read last, read again in
    /// the background once `now` has passed its bucket. `None` until a first read is in.
    pub fn admission_rate_now(&self, sale: SaleId, now: DateTime<Utc>) -> Option<f64> {
        let (rate, due) = self.inner.rates.get(sale, now);
        if due {
            let sales = self.clone();
            tokio::spawn(async move {
                let rate = sales.figures(sale).await.ok().map(|f| f.admission_rate);
                sales.inner.rates.store(sale, rate);
            });
        }
        rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn a_rate_needs_a_whole_bucket_and_counts_per_minute() {
        let until = Utc::now();
        assert_eq!(AdmissionRate::from_window(5, 0, until).per_minute, None);
        assert_eq!(AdmissionRate::from_window(5, 10_000, until).per_minute, Some(30.0));
        assert_eq!(AdmissionRate::from_window(12, 60_000, until).per_minute, Some(12.0));
    }

    #[test]
    fn a_wait_is_the_position_over_the_rate() {
        assert_eq!(wait_secs(None, 10), None);
        assert_eq!(wait_secs(Some(0.0), 10), None);
        assert_eq!(wait_secs(Some(30.0), 15), Some(30.0));
        assert_eq!(wait_secs(None, 0), Some(0.0), "no line, no wait");
    }

    #[test]
    fn a_rate_is_read_again_once_its_bucket_has_passed() {
        let rates = RecentRates::default();
        let sale = SaleId::new();
        let now = Utc::now();
        assert_eq!(rates.get(sale, now), (None, true));
        assert_eq!(rates.get(sale, now), (None, false), "one read at a time");
        let rate = AdmissionRate::from_window(6, 60_000, now + TimeDelta::seconds(10));
        rates.store(sale, Some(rate));
        assert_eq!(rates.get(sale, now + TimeDelta::seconds(9)), (Some(6.0), false));
        // Past its bucket: the old figure meanwhile, one read (not before MIN_RETRY here).
        assert_eq!(rates.get(sale, now + TimeDelta::seconds(10)), (Some(6.0), false));
        // A failed read keeps the figure there was.
        rates.store(sale, None);
        assert_eq!(rates.get(sale, now).0, Some(6.0));
    }
}
