//! "What this run says": the few figures a capacity planner reads first (the sustained poll
//! rate, the join burst, the time to sell out), and what they imply for a crowd of the
//! planner's own size through the scaling model of the README ("Scaling out").
//!
//! ## The model
//!
//! A waiting buyer at position `p` is asked to poll again after `p × 20 ms`, at least 2 s and
//! at most 60 s, so a waiting crowd of `N` polls `Σ 1 / interval(p)` times a second: 0.5/s for
//! each of the first hundred, `50 / p` up to position 3000, then 1/60 s. One sale's scripts run
//! on one Redis core, about 50k calls a second; a waiting buyer takes about 133 bytes of Redis
//! memory (joined through the API: no session record). The run checks the interval against every answer it gets (`poll_after_ms` for the
//! position given), and says so when the server spaces polls otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::record::{BuyerRecord, Endpoint, EndpointLog, Outcome};
use crate::timeline::{Second, Timeline};

/// Poll spacing of a waiting buyer, per position, in milliseconds, and its bounds.
const POLL_MS_PER_POSITION: u64 = 20;
const POLL_MIN_MS: u64 = 2_000;
const POLL_MAX_MS: u64 = 60_000;
/// Script calls a second one Redis core runs for one sale (README, "Scaling out").
const REDIS_CALLS_PER_SEC: f64 = 50_000.0;
/// Redis memory of one waiting buyer, in bytes (README, "Scaling out").
const BYTES_PER_WAITING_BUYER: f64 = 133.0;

/// The `poll_after_ms` the model expects at `position` (1-based) in the queue.
pub fn poll_interval_ms(position: u64) -> u64 {
    position
        .saturating_mul(POLL_MS_PER_POSITION)
        .clamp(POLL_MIN_MS, POLL_MAX_MS)
}

/// Polls a second from a waiting crowd of `waiting` buyers, every one polling when asked.
pub fn polls_per_sec(waiting: u64) -> f64 {
    // Past the position where the interval reaches its maximum every buyer adds the same.
    let capped_from = POLL_MAX_MS / POLL_MS_PER_POSITION;
    let varying: f64 = (1..=waiting.min(capped_from - 1))
        .map(|p| 1000.0 / poll_interval_ms(p) as f64)
        .sum();
    let capped = waiting.saturating_sub(capped_from - 1) as f64 * 1000.0 / POLL_MAX_MS as f64;
    varying + capped
}

/// The figures of one run that the paragraph is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct Findings {
    /// Polls answered per second: the median over the seconds from the first poll answered to
    /// the last, and the busiest second.
    pub sustained_polls: f64,
    pub peak_polls: usize,
    pub joins: usize,
    /// From the first join sent to the last join answered.
    pub join_window: Duration,
    /// All requests answered in the busiest second, and the 99th percentile in that second.
    pub peak_served: usize,
    pub p99_at_peak: Duration,
    /// From the first join to the order that sold the last ticket; `None` if it never sold out.
    pub sell_out: Option<Duration>,
    pub sold: i64,
    pub capacity: u32,
    pub poll_scale: f64,
    /// Answers whose `poll_after_ms` differed from the model's.
    pub model_mismatches: u64,
}

fn median(mut v: Vec<usize>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid] as f64
    } else {
        (v[mid - 1] + v[mid]) as f64 / 2.0
    }
}

/// The seconds from the first with answers to the last with answers.
fn active(seconds: &[Second]) -> &[Second] {
    let first = seconds.iter().position(|s| s.answers > 0);
    let last = seconds.iter().rposition(|s| s.answers > 0);
    match (first, last) {
        (Some(f), Some(l)) => &seconds[f..=l],
        _ => &[],
    }
}

/// When the order that made the sold tickets reach `capacity` was answered, from the first
/// join; `None` when the buyers never bought them all.
pub fn sell_out_time(buyers: &[BuyerRecord], capacity: u32) -> Option<Duration> {
    let start: Instant = buyers.iter().filter_map(|b| b.join_sent).min()?;
    let mut orders: Vec<(Instant, i64)> = buyers
        .iter()
        .filter_map(|b| match b.outcome {
            Outcome::Bought { quantity } => Some((b.ordered_at?, quantity)),
            _ => None,
        })
        .collect();
    orders.sort();
    let mut sold = 0;
    for (at, quantity) in orders {
        sold += quantity;
        if sold >= i64::from(capacity) {
            return Some(at.duration_since(start));
        }
    }
    None
}

impl Findings {
    pub fn new(
        timeline: &Timeline,
        endpoints: &BTreeMap<Endpoint, EndpointLog>,
        buyers: &[BuyerRecord],
        capacity: u32,
        poll_scale: f64,
        model_mismatches: u64,
    ) -> Findings {
        let empty = Vec::new();
        let polls = timeline.by_endpoint.get(&Endpoint::Poll).unwrap_or(&empty);
        let joins = timeline.by_endpoint.get(&Endpoint::Join).unwrap_or(&empty);
        let join_window = endpoints
            .get(&Endpoint::Join)
            .and_then(|l| Some(l.last?.duration_since(l.first?)))
            .unwrap_or_default();
        let (peak_second, peak) = timeline
            .all
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.answers)
            .map(|(i, s)| (i, s.answers))
            .unwrap_or((0, 0));
        Findings {
            sustained_polls: median(active(polls).iter().map(|s| s.answers).collect()),
            peak_polls: polls.iter().map(|s| s.answers).max().unwrap_or(0),
            joins: joins.iter().map(|s| s.answers).sum(),
            join_window,
            peak_served: peak,
            p99_at_peak: timeline.all.get(peak_second).and_then(|s| s.p99).unwrap_or_default(),
            sell_out: sell_out_time(buyers, capacity),
            sold: buyers
                .iter()
                .map(|b| match b.outcome {
                    Outcome::Bought { quantity } => quantity,
                    _ => 0,
                })
                .sum(),
            capacity,
            poll_scale,
            model_mismatches,
        }
    }

    /// Joins a second over the burst's own window (the whole crowd joins at once, so its
    /// joins are answered as fast as the server takes them).
    pub fn join_rate(&self) -> f64 {
        if self.join_window.is_zero() {
            0.0
        } else {
            self.joins as f64 / self.join_window.as_secs_f64()
        }
    }

    /// The paragraph and the table for the planner's crowd sizes, in markdown.
    pub fn write(&self, crowds: &[u64]) -> String {
        let mut w = String::new();
        let real_polls = self.sustained_polls * self.poll_scale;
        let _ = write!(
            w,
            "The waiting crowd polled a sustained {:.0} times a second (median second; busiest {})",
            self.sustained_polls, self.peak_polls
        );
        if (self.poll_scale - 1.0).abs() > f64::EPSILON {
            let _ = write!(
                w,
                ", with polls {:.3}× as far apart as the server asks: a real crowd of this size polls \
                 about {real_polls:.0} a second",
                self.poll_scale
            );
        }
        let _ = write!(
            w,
            ". The join burst: {} joins in {:.1} s, {:.0} a second. ",
            self.joins,
            self.join_window.as_secs_f64(),
            self.join_rate()
        );
        match self.sell_out {
            Some(d) => {
                let _ = write!(
                    w,
                    "All {} tickets sold {:.1} s after the first join ({:.1} tickets/s).",
                    self.capacity,
                    d.as_secs_f64(),
                    f64::from(self.capacity) / d.as_secs_f64().max(0.001)
                );
            }
            None => {
                let _ = write!(
                    w,
                    "It did not sell out: {} of {} tickets sold.",
                    self.sold, self.capacity
                );
            }
        }
        let _ = writeln!(
            w,
            " At its busiest second the instance answered {} requests with a p99 of {:.0} ms: that \
             is what it served, not its ceiling (below a poll scale of 1 the run pushes harder).\n",
            self.peak_served,
            self.p99_at_peak.as_secs_f64() * 1000.0
        );
        if self.model_mismatches > 0 {
            let _ = writeln!(
                w,
                "**The server spaced {} polls otherwise than the model below** (`poll_after_ms` = \
                 position × {POLL_MS_PER_POSITION} ms, {}–{} s): its figures are off for this server.\n",
                self.model_mismatches,
                POLL_MIN_MS / 1000,
                POLL_MAX_MS / 1000
            );
        }
        let _ = writeln!(
            w,
            "For a crowd of your size (the README's scaling model: polls spaced by position, one \
             sale on one Redis core of about {}k script calls/s, {} bytes of Redis per waiting \
             buyer; instances like this one at the most it served in a second here):\n",
            REDIS_CALLS_PER_SEC / 1000.0,
            BYTES_PER_WAITING_BUYER
        );
        let _ = writeln!(
            w,
            "| waiting buyers | polls/s | instances like this one, at most | joins at this run's join rate | joins at one Redis core's | Redis memory |"
        );
        let _ = writeln!(w, "|--:|--:|--:|--:|--:|--:|");
        for &n in crowds {
            let polls = polls_per_sec(n);
            let instances = if self.peak_served > 0 {
                format!("{}", (polls / self.peak_served as f64).ceil().max(1.0))
            } else {
                "–".to_string()
            };
            let joins_here = if self.join_rate() > 0.0 {
                format!("{:.0} s", n as f64 / self.join_rate())
            } else {
                "–".to_string()
            };
            let _ = writeln!(
                w,
                "| {n} | {polls:.0} | {instances} | {joins_here} | {:.1} s | {:.0} MB |",
                n as f64 / REDIS_CALLS_PER_SEC,
                n as f64 * BYTES_PER_WAITING_BUYER / 1e6
            );
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Role;

    #[test]
    fn the_poll_model_matches_the_readme() {
        assert_eq!(poll_interval_ms(1), 2_000);
        assert_eq!(poll_interval_ms(100), 2_000);
        assert_eq!(poll_interval_ms(150), 3_000);
        assert_eq!(poll_interval_ms(5_000), 60_000);
        assert_eq!(polls_per_sec(0), 0.0);
        assert_eq!(polls_per_sec(100), 50.0);
        // 100 buyers at 0.5/s, then 50/p up to 2999, then 1/60 s each.
        let harmonic: f64 = (101..=2999).map(|p| 50.0 / p as f64).sum();
        assert!((polls_per_sec(10_000) - (50.0 + harmonic + 7001.0 / 60.0)).abs() < 1e-9);
        // "a million waiting buyers poll about 17k/s"
        let million = polls_per_sec(1_000_000);
        assert!((16_500.0..17_000.0).contains(&million), "{million}");
    }

    fn bought(start: Instant, ms: u64, quantity: i64) -> BuyerRecord {
        let mut b = BuyerRecord::new(0, Role::Buyer, quantity as u8);
        b.join_sent = Some(start);
        b.ordered_at = Some(start + Duration::from_millis(ms));
        b.outcome = Outcome::Bought { quantity };
        b
    }

    #[test]
    fn sell_out_is_the_order_that_takes_the_last_ticket() {
        let t = Instant::now();
        let buyers = [bought(t, 3000, 2), bought(t, 1000, 1), bought(t, 2000, 2)];
        assert_eq!(sell_out_time(&buyers, 3), Some(Duration::from_millis(2000)));
        assert_eq!(sell_out_time(&buyers, 5), Some(Duration::from_millis(3000)));
        assert_eq!(sell_out_time(&buyers, 6), None);
        assert_eq!(sell_out_time(&[], 1), None);
    }

    #[test]
    fn the_median_second_and_the_active_window() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![5, 1, 3]), 3.0);
        assert_eq!(median(vec![4, 1, 3, 2]), 2.5);
        let s = |n| Second { answers: n, p99: None };
        let seconds = [s(0), s(4), s(0), s(6), s(0)];
        assert_eq!(active(&seconds).len(), 3);
    }

    #[test]
    fn the_paragraph_scales_the_polls_and_sizes_the_crowds() {
        let f = Findings {
            sustained_polls: 400.0,
            peak_polls: 500,
            joins: 2000,
            join_window: Duration::from_millis(2000),
            peak_served: 2000,
            p99_at_peak: Duration::from_millis(120),
            sell_out: Some(Duration::from_secs(20)),
            sold: 100,
            capacity: 100,
            poll_scale: 0.05,
            model_mismatches: 0,
        };
        let text = f.write(&[1_000_000]);
        assert!(text.contains("sustained 400 times a second"), "{text}");
        assert!(text.contains("about 20 a second"), "{text}");
        assert!(text.contains("2000 joins in 2.0 s, 1000 a second"), "{text}");
        assert!(
            text.contains("All 100 tickets sold 20.0 s after the first join (5.0 tickets/s)"),
            "{text}"
        );
        // A million waiting: about 16.8k polls/s, 9 instances at 2000/s, 1000 s of joins here,
        // 20 s at one Redis core, 133 MB.
        assert!(text.contains("| 1000000 | 16"), "{text}");
        assert!(text.contains("| 9 | 1000 s | 20.0 s | 133 MB |"), "{text}");
        assert!(!text.contains("otherwise than the model"));
        let off = Findings {
            model_mismatches: 3,
            sell_out: None,
            ..f
        };
        let text = off.write(&[]);
        assert!(text.contains("spaced 3 polls otherwise"), "{text}");
        assert!(text.contains("did not sell out: 100 of 100"), "{text}");
    }
}
