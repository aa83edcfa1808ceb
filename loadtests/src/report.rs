//! The short summary a capacity planner reads (goose writes its own detailed HTML report):
//! what this run says (with its charts), requests per second and latency per endpoint, join → admission times, tickets sold per
//! second, how the buyers fared, and the checks. Markdown, for the terminal and a file alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::checks::Check;
use crate::record::{BuyerRecord, Endpoint, EndpointLog, Outcome};

/// What the summary is about.
pub struct RunInfo<'a> {
    pub host: &'a str,
    pub sale: &'a str,
    pub buyers: usize,
    pub capacity: u32,
    pub hold_secs: u32,
    pub quantity: String,
    pub poll_scale: f64,
    pub abandon_share: f64,
    pub leave_share: f64,
    /// The sold-out scenario's settings, when it ran.
    pub sold_out: Option<SoldOutInfo>,
    /// The pre-queue scenario's window in seconds, when it ran.
    pub prequeue_secs: Option<u32>,
}

/// What the sold-out scenario did after the sell-out.
pub struct SoldOutInfo {
    pub raise_by: u32,
    pub offer_secs: u32,
    pub lapse_share: f64,
    /// Share of the buyers who bought in the line who returned tickets.
    pub return_share: f64,
    /// Entries the waitlist had at the end.
    pub entries: usize,
}

/// The value at quantile `q` (0–1) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// The section "what this run says": the findings' text and the charts, linked by their file
/// names (they lie beside the summary).
pub fn said(findings: &str, charts: &[(String, String)]) -> String {
    let mut out = String::from("## What this run says\n\n");
    out.push_str(findings);
    out.push('\n');
    for (title, file) in charts {
        let _ = writeln!(out, "![{title}]({file})");
    }
    out
}

/// The summary in markdown; `said` is the section "what this run says", which comes first.
pub fn summary(
    info: &RunInfo<'_>,
    said: &str,
    buyers: &[BuyerRecord],
    endpoints: &BTreeMap<Endpoint, EndpointLog>,
    checks: &[Check],
) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Load test summary\n");
    let _ = writeln!(
        w,
        "{} buyers against {} (sale `{}`): capacity {}, hold {} s, quantity {}, poll scale {}, \
         abandon share {}, leave share {}.\n",
        info.buyers,
        info.host,
        info.sale,
        info.capacity,
        info.hold_secs,
        info.quantity,
        info.poll_scale,
        info.abandon_share,
        info.leave_share
    );
    if let Some(s) = &info.sold_out {
        let _ = writeln!(
            w,
            "Sold-out scenario: the sold-out joined the waitlist ({} entries); once the line was \
             empty the organizer added {} seats; offer window {} s, lapse share {}, return share {}.\n",
            s.entries, s.raise_by, s.offer_secs, s.lapse_share, s.return_share
        );
    }
    if let Some(secs) = info.prequeue_secs {
        let _ = writeln!(
            w,
            "Pre-queue scenario: the sale opened {secs} s after it was made; the buyers joined its \
             pre-queue spread over that window, and the opening's draw placed them in the queue.\n"
        );
    }
    let _ = writeln!(w, "{said}");

    // The run lasts from the first request sent to the last answer read.
    let first = endpoints.values().filter_map(|l| l.first).min();
    let last = endpoints.values().filter_map(|l| l.last).max();
    let span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f),
        _ => Duration::ZERO,
    };
    let per_sec = |n: usize| {
        if span.is_zero() {
            0.0
        } else {
            n as f64 / span.as_secs_f64()
        }
    };

    let _ = writeln!(
        w,
        "## Requests ({} s from the first request to the last answer)\n",
        secs(span)
    );
    // Two rates: over the whole run (what the crowd asked on average), and over the endpoint's
    // own busy window from its first request to its last answer (the flash crowd's joins all
    // fall in the first second or so; spread over the run their rate would hide the burst).
    let _ = writeln!(
        w,
        "| endpoint | requests | errors | req/s (run) | window s | req/s (window) | p50 ms | p90 ms | p95 ms | p99 ms | max ms |"
    );
    let _ = writeln!(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut all = Vec::new();
    let mut errors = 0;
    for (endpoint, log) in endpoints {
        let mut sorted: Vec<Duration> = log.requests.iter().map(|r| r.latency).collect();
        sorted.sort();
        let window = match (log.first, log.last) {
            (Some(f), Some(l)) => l.duration_since(f),
            _ => Duration::ZERO,
        };
        row(w, endpoint.route(), &sorted, log.errors, per_sec(sorted.len()), window);
        all.extend_from_slice(&sorted);
        errors += log.errors;
    }
    all.sort();
    row(w, "all", &all, errors, per_sec(all.len()), span);

    let mut waits: Vec<Duration> = buyers.iter().filter_map(BuyerRecord::join_to_admission).collect();
    waits.sort();
    let queued_then_admitted = buyers
        .iter()
        .filter(|b| b.admitted_at.is_some() && b.first_position.is_some_and(|p| p > 0))
        .count();
    let _ = writeln!(w, "\n## Join → admission\n");
    let _ = writeln!(
        w,
        "{} buyers admitted ({} of them after waiting in the queue): p50 {} s, p95 {} s, max {} s.",
        waits.len(),
        queued_then_admitted,
        secs(quantile(&waits, 0.50)),
        secs(quantile(&waits, 0.95)),
        secs(waits.last().copied().unwrap_or_default())
    );

    let sold: i64 = buyers.iter().filter_map(BuyerRecord::bought).sum();
    let start = buyers.iter().filter_map(|b| b.join_sent).min();
    let last_order = buyers.iter().filter_map(|b| b.ordered_at).max();
    let _ = writeln!(w, "\n## Tickets sold\n");
    match (start, last_order) {
        (Some(s), Some(l)) if l > s => {
            let d = l.duration_since(s);
            let _ = writeln!(
                w,
                "{sold} tickets in {} s from the first join to the last order: {:.1} tickets/s.",
                secs(d),
                sold as f64 / d.as_secs_f64()
            );
        }
        _ => {
            let _ = writeln!(w, "{sold} tickets; no order to time.");
        }
    }

    let _ = writeln!(w, "\n## Buyers\n");
    let _ = writeln!(w, "| outcome | buyers |\n|---|--:|");
    for (outcome, n) in outcomes(buyers) {
        let _ = writeln!(w, "| {outcome} | {n} |");
    }
    let polls: u32 = buyers.iter().map(|b| b.polls).sum();
    let _ = writeln!(w, "\n{polls} polls in all.");

    let _ = writeln!(w, "\n## Checks\n");
    for c in checks {
        let mark = if c.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(w, "- **{mark}** {}: {}", c.name, c.detail);
    }
    out
}

fn row(w: &mut String, name: &str, sorted: &[Duration], errors: u64, rate: f64, window: Duration) {
    let window_rate = if window.is_zero() {
        0.0
    } else {
        sorted.len() as f64 / window.as_secs_f64()
    };
    let _ = writeln!(
        w,
        "| {name} | {} | {errors} | {rate:.0} | {} | {window_rate:.0} | {} | {} | {} | {} | {} |",
        sorted.len(),
        secs(window),
        ms(quantile(sorted, 0.50)),
        ms(quantile(sorted, 0.90)),
        ms(quantile(sorted, 0.95)),
        ms(quantile(sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or_default()),
    );
}

/// Buyers per outcome, failures spelled out by their status.
fn outcomes(buyers: &[BuyerRecord]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for b in buyers {
        let name = match &b.outcome {
            Outcome::Bought { .. } if b.waitlist.is_some() => "waitlist: bought the offer".to_string(),
            Outcome::Bought { .. } => "bought".to_string(),
            Outcome::Abandoned => "abandoned at checkout".to_string(),
            Outcome::Left => "left".to_string(),
            Outcome::SoldOut => "sold out".to_string(),
            Outcome::Ended(state) => format!("ended: {state}"),
            Outcome::TimedOut => "timed out waiting".to_string(),
            Outcome::OfferLapsed => "waitlist: let the offer lapse".to_string(),
            Outcome::NeverOffered => "waitlist: passed over for good".to_string(),
            Outcome::Failed(why) => format!("failed: {why}"),
        };
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&d, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&d, 0.95), Duration::from_millis(95));
        assert_eq!(quantile(&d, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
