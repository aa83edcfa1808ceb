//! The charts a capacity planner reads first, as SVG files next to the summary: requests per
//! second and their p99 over time, the queue's length and the tickets sold over time. Drawn by
//! the shop's own chart module (`src/charts.rs`, included by path).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::charts::{Axis, Chart, Series, TickFormat};
use crate::record::Endpoint;
use crate::timeline::{Timeline, p99_points, rate_points};

/// The three charts of a run, each with the suffix of its file name.
pub fn charts(t: &Timeline) -> Vec<(&'static str, Chart)> {
    let time = || Axis::new("time since the first request", TickFormat::Seconds);
    let mut requests = Chart::new(
        "requests",
        "Requests answered per second",
        time(),
        Axis::new("requests/s", TickFormat::Number),
    )
    .with(Series::area("all", rate_points(&t.all)));
    for (endpoint, seconds) in &t.by_endpoint {
        requests = requests.with(Series::line(endpoint.name(), rate_points(seconds)));
    }
    let mut latency = Chart::new(
        "latency",
        "p99 latency per second",
        time(),
        Axis::new("ms", TickFormat::Number),
    )
    .with(Series::line("all", p99_points(&t.all)));
    if let Some(polls) = t.by_endpoint.get(&Endpoint::Poll) {
        latency = latency.with(Series::line("poll", p99_points(polls)));
    }
    let sample = |f: fn(&crate::sampler::Sample) -> i64| -> Vec<(f64, f64)> {
        t.samples
            .iter()
            .map(|s| (t.secs(s.at), f(s) as f64))
            .filter(|(x, _)| *x >= 0.0)
            .collect()
    };
    let sale = Chart::new(
        "sale",
        "Queue length and tickets sold",
        time(),
        Axis::new("buyers / tickets", TickFormat::Number),
    )
    .with(Series::area("waiting in the queue", sample(|s| s.waiting)))
    .with(Series::line("held at checkout", sample(|s| s.held)))
    .with(Series::line("sold", sample(|s| s.sold)));
    vec![("requests", requests), ("latency", latency), ("sale", sale)]
}

/// `{summary's stem}-{suffix}.svg`, beside the summary.
fn path_beside(summary: &Path, suffix: &str) -> PathBuf {
    let stem = summary
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "loadtest".into());
    summary.with_file_name(format!("{stem}-{suffix}.svg"))
}

/// Writes the charts beside `summary`; their titles and file names, for the summary to link.
pub fn write(summary: &Path, t: &Timeline) -> anyhow::Result<Vec<(String, String)>> {
    let mut written = Vec::new();
    for (suffix, chart) in charts(t) {
        let path = path_beside(summary, suffix);
        std::fs::write(&path, chart.document()).with_context(|| format!("Failed to write {}", path.display()))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        written.push((chart.title.clone(), name));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_go_beside_the_summary_under_its_name() {
        assert_eq!(
            path_beside(Path::new("target/loadtest-summary.md"), "sale"),
            Path::new("target/loadtest-summary-sale.svg")
        );
        assert_eq!(path_beside(Path::new("run"), "latency"), Path::new("run-latency.svg"));
    }
}
