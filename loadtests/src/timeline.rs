//! The run over time, second by second from its first request: requests answered and their
//! 99th percentile per endpoint, and the sale's samples. The charts and "what this run says"
//! both read it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::record::{Endpoint, EndpointLog, Timed};
use crate::report::quantile;
use crate::sampler::Sample;

/// The answers that arrived in one second of the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Second {
    pub answers: usize,
    /// The 99th percentile of their latencies; `None` when there were none.
    pub p99: Option<Duration>,
}

/// Answers per second of the run, from second 0 (the run's first request) to the second of the
/// last answer: seconds without answers are there, with 0.
pub fn per_second<'a>(requests: impl IntoIterator<Item = &'a Timed>, origin: Instant) -> Vec<Second> {
    let mut by_second: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
    for r in requests {
        let second = r.answered().saturating_duration_since(origin).as_secs() as usize;
        by_second.entry(second).or_default().push(r.latency);
    }
    let Some(&last) = by_second.keys().next_back() else {
        return Vec::new();
    };
    (0..=last)
        .map(|s| match by_second.get_mut(&s) {
            Some(latencies) => {
                latencies.sort();
                Second {
                    answers: latencies.len(),
                    p99: Some(quantile(latencies, 0.99)),
                }
            }
            None => Second::default(),
        })
        .collect()
}

/// The whole run over time.
pub struct Timeline {
    /// The run's first request: second 0.
    pub origin: Instant,
    pub all: Vec<Second>,
    pub by_endpoint: BTreeMap<Endpoint, Vec<Second>>,
    pub samples: Vec<Sample>,
}

impl Timeline {
    pub fn new(endpoints: &BTreeMap<Endpoint, EndpointLog>, samples: Vec<Sample>) -> Option<Timeline> {
        let origin = endpoints
            .values()
            .flat_map(|l| l.requests.iter().map(|r| r.sent))
            .min()?;
        Some(Timeline {
            origin,
            all: per_second(endpoints.values().flat_map(|l| &l.requests), origin),
            by_endpoint: endpoints
                .iter()
                .map(|(e, l)| (*e, per_second(&l.requests, origin)))
                .collect(),
            samples,
        })
    }

    /// Seconds since the run's first request.
    pub fn secs(&self, at: Instant) -> f64 {
        if at >= self.origin {
            at.duration_since(self.origin).as_secs_f64()
        } else {
            -self.origin.duration_since(at).as_secs_f64()
        }
    }
}

/// Answers per second as chart points: (second, answers).
pub fn rate_points(seconds: &[Second]) -> Vec<(f64, f64)> {
    seconds
        .iter()
        .enumerate()
        .map(|(s, b)| (s as f64, b.answers as f64))
        .collect()
}

/// The 99th percentile in milliseconds as chart points, for the seconds that had answers.
pub fn p99_points(seconds: &[Second]) -> Vec<(f64, f64)> {
    seconds
        .iter()
        .enumerate()
        .filter_map(|(s, b)| Some((s as f64, b.p99?.as_secs_f64() * 1000.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(origin: Instant, sent_ms: u64, latency_ms: u64) -> Timed {
        Timed {
            sent: origin + Duration::from_millis(sent_ms),
            latency: Duration::from_millis(latency_ms),
        }
    }

    #[test]
    fn answers_are_counted_in_the_second_they_arrive_and_empty_seconds_stay() {
        let o = Instant::now();
        let requests = [
            timed(o, 0, 100),
            timed(o, 900, 200),
            timed(o, 1500, 100),
            timed(o, 3100, 10),
        ];
        let seconds = per_second(&requests, o);
        assert_eq!(
            seconds.iter().map(|s| s.answers).collect::<Vec<_>>(),
            [1, 2, 0, 1],
            "0.1 s; 1.1 s and 1.6 s; nothing; 3.11 s"
        );
        assert_eq!(seconds[1].p99, Some(Duration::from_millis(200)));
        assert_eq!(seconds[2].p99, None);
        assert_eq!(rate_points(&seconds), [(0.0, 1.0), (1.0, 2.0), (2.0, 0.0), (3.0, 1.0)]);
        assert_eq!(p99_points(&seconds), [(0.0, 100.0), (1.0, 200.0), (3.0, 10.0)]);
        assert!(per_second(&[], o).is_empty());
    }

    #[test]
    fn the_p99_of_a_second_is_its_nearest_rank() {
        let o = Instant::now();
        let requests: Vec<Timed> = (1..=200).map(|ms| timed(o, 0, ms)).collect();
        let seconds = per_second(&requests, o);
        assert_eq!(seconds.len(), 1);
        assert_eq!(seconds[0].p99, Some(Duration::from_millis(198)));
    }
}
