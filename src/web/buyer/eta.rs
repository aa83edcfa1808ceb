//! The estimated wait of the waiting room, from each sale's recent admission rate.
//!
//! The poll must cost one Redis call, so it never reads the sale's figures itself. Instead each
//! instance keeps, per sale, a few samples of the sale's admission counter (`admitted` of
//! `TicketSales::figures`) and refreshes them in the background at most once every
//! [`REFRESH`]: one extra script call per sale and instance every few seconds, however many
//! buyers poll.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::sale::{SaleId, TicketSales};

const REFRESH: Duration = Duration::from_secs(5);
/// Admissions older than this no longer say much about the pace now.
const WINDOW: Duration = Duration::from_secs(120);
/// Less than this much history is too little to give a number.
const MIN_SPAN: Duration = Duration::from_secs(8);

#[derive(Default)]
struct Track {
    samples: VecDeque<(Instant, i64)>,
    refreshing: bool,
    last_refresh: Option<Instant>,
}

#[derive(Default)]
pub struct AdmissionRates {
    sales: Mutex<HashMap<SaleId, Track>>,
}

static RATES: LazyLock<AdmissionRates> = LazyLock::new(AdmissionRates::default);

impl AdmissionRates {
    /// Admissions per second over the recent window, if there is enough history.
    fn rate(&self, sale: SaleId) -> Option<f64> {
        let sales = self.sales.lock().expect("rates lock");
        let track = sales.get(&sale)?;
        let (t0, a0) = *track.samples.front()?;
        let (t1, a1) = *track.samples.back()?;
        let span = t1.duration_since(t0);
        (span >= MIN_SPAN).then(|| (a1 - a0).max(0) as f64 / span.as_secs_f64())
    }

    /// True when the caller should refresh this sale's sample now (and then must call
    /// [`Self::record`] or [`Self::give_up`]).
    fn claim_refresh(&self, sale: SaleId, now: Instant) -> bool {
        let mut sales = self.sales.lock().expect("rates lock");
        let track = sales.entry(sale).or_default();
        let due = track.last_refresh.is_none_or(|t| now.duration_since(t) >= REFRESH);
        if due && !track.refreshing {
            track.refreshing = true;
            true
        } else {
            false
        }
    }

    fn record(&self, sale: SaleId, now: Instant, admitted: i64) {
        let mut sales = self.sales.lock().expect("rates lock");
        let track = sales.entry(sale).or_default();
        track.refreshing = false;
        track.last_refresh = Some(now);
        // A counter that went down means Redis rebuilt the sale: start over.
        if track.samples.back().is_some_and(|&(_, a)| a > admitted) {
            track.samples.clear();
        }
        track.samples.push_back((now, admitted));
        while track
            .samples
            .front()
            .is_some_and(|&(t, _)| now.duration_since(t) > WINDOW)
        {
            track.samples.pop_front();
        }
    }

    fn give_up(&self, sale: SaleId) {
        if let Some(track) = self.sales.lock().expect("rates lock").get_mut(&sale) {
            track.refreshing = false;
            track.last_refresh = Some(Instant::now());
        }
    }
}

/// The estimated wait of the buyer at `position`, as text; refreshes the sale's rate in the
/// background when it is due.
pub fn estimate(sales: &TicketSales, sale: SaleId, position: u64) -> String {
    let now = Instant::now();
    if RATES.claim_refresh(sale, now) {
        let sales = sales.clone();
        tokio::spawn(async move {
            match sales.figures(sale).await {
                Ok(f) => RATES.record(sale, Instant::now(), f.admitted),
                Err(_) => RATES.give_up(sale),
            }
        });
    }
    describe(RATES.rate(sale), position)
}

/// Words for a wait: honest about not knowing.
fn describe(rate: Option<f64>, position: u64) -> String {
    match rate {
        Some(r) if r > 0.0 => {
            let secs = position as f64 / r;
            if secs < 60.0 {
                "less than a minute".into()
            } else {
                let minutes = (secs / 60.0).ceil() as u64;
                if minutes == 1 {
                    "about 1 minute".into()
                } else {
                    format!("about {minutes} minutes")
                }
            }
        }
        _ => "calculating…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_needs_history_and_follows_the_counter() {
        let rates = AdmissionRates::default();
        let sale = SaleId::new();
        let t0 = Instant::now();
        assert!(rates.claim_refresh(sale, t0));
        assert!(!rates.claim_refresh(sale, t0), "one refresh at a time");
        rates.record(sale, t0, 100);
        assert_eq!(rates.rate(sale), None);
        assert!(!rates.claim_refresh(sale, t0 + Duration::from_secs(1)));
        assert!(rates.claim_refresh(sale, t0 + Duration::from_secs(10)));
        rates.record(sale, t0 + Duration::from_secs(10), 120);
        let r = rates.rate(sale).unwrap();
        assert!((r - 2.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn wait_in_words() {
        assert_eq!(describe(None, 10), "calculating…");
        assert_eq!(describe(Some(0.0), 10), "calculating…");
        assert_eq!(describe(Some(1.0), 30), "less than a minute");
        assert_eq!(describe(Some(1.0), 300), "about 5 minutes");
        assert_eq!(describe(Some(0.5), 31), "about 2 minutes");
    }
}
