//! The command line: this load test's own options, with goose's options (`--host`,
//! `--report-file`, `--run-time`, logging …) flattened in beside them.

use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;
use goose::config::GooseConfiguration;

/// A flash crowd against one new sale of a running boxoffice instance, then a check that
/// nothing was oversold, that Postgres and the dashboard agree, and that admission was FIFO;
/// with `--scenario sold-out`, also that the waitlist offered what came back in order, once;
/// with `--scenario prequeue`, that the opening's draw happened once, gave every buyer the
/// place the published draw says, and that admission followed it.
#[derive(Parser)]
pub struct Options {
    /// `crowd`: the flash crowd alone. `sold-out`: buyers told "sold out" join the waitlist,
    /// the organizer adds `--raise-by` seats once the line is empty, and the offers go down
    /// the waitlist (see `--lapse-share`, `--offer-secs`). `prequeue`: the sale opens
    /// `--prequeue-secs` after the run makes it; the buyers join its pre-queue spread evenly
    /// over that window, and the opening's draw places them in the queue.
    #[arg(long, value_enum, default_value_t = ScenarioKind::Crowd)]
    pub scenario: ScenarioKind,
    /// Pre-queue scenario: seconds from making the sale to its opening (5–3600), its pre-queue
    /// open all along. The buyers join spread evenly over all of it but the last second. The
    /// shop must draw with a beacon it can reach (`BOXOFFICE_BEACON=local` off the internet).
    #[arg(long, default_value_t = 20)]
    pub prequeue_secs: u32,
    /// Sold-out scenario: seats the organizer adds once the line is empty (the event is made
    /// with this many seats beyond `--capacity`).
    #[arg(long, default_value_t = 10)]
    pub raise_by: u32,
    /// Sold-out scenario: share (0–1) of the buyers offered tickets who let the offer lapse.
    #[arg(long, default_value_t = 0.25)]
    pub lapse_share: f64,
    /// Sold-out scenario: share (0–1) of the buyers who bought in the line who return half
    /// their tickets (rounded up) once the line is empty, before the raise; the organizer
    /// allows returns when above 0.
    #[arg(long, default_value_t = 0.0)]
    pub return_share: f64,
    /// Sold-out scenario: the sale's offer window in seconds (60–86400, through the organizer
    /// API); when not given, the instance's own (15 minutes unless its database says
    /// otherwise).
    #[arg(long)]
    pub offer_secs: Option<u32>,
    /// An organizer's API token (`boxoffice organizer token --email …`).
    #[arg(long, env = "BOXOFFICE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Simulated buyers; they all join at the same moment (in the pre-queue scenario, spread
    /// over the pre-queue's window).
    #[arg(long, default_value_t = 2000)]
    pub buyers: usize,
    /// Tickets in the sale.
    #[arg(long, default_value_t = 100)]
    pub capacity: u32,
    /// How long an admitted buyer holds tickets at checkout, in seconds (1–3600).
    #[arg(long, default_value_t = 30)]
    pub hold_secs: u32,
    /// Buyers at checkout at once; 0 for no limit.
    #[arg(long, default_value_t = 0)]
    pub max_active: u32,
    /// Tickets each buyer wants: one number (everyone the same) or a range such as `1-4`
    /// (spread evenly over the buyers).
    #[arg(long, default_value = "1")]
    pub quantity: QuantitySpec,
    /// Factor on the poll interval the server asks for; below 1 compresses time (CI).
    #[arg(long, default_value_t = 1.0)]
    pub poll_scale: f64,
    /// Share of buyers (0–1) who are admitted but never confirm: their holds lapse.
    #[arg(long, default_value_t = 0.1)]
    pub abandon_share: f64,
    /// Share of buyers (0–1) who give up after their first wait: they leave the queue, or
    /// release their tickets when they were admitted already.
    #[arg(long, default_value_t = 0.1)]
    pub leave_share: f64,
    /// A buyer still waiting after this many seconds stops polling (counted as timed out).
    #[arg(long, default_value_t = 600)]
    pub max_wait_secs: u64,
    /// Sizes of waiting crowds to project this run's figures to, in "what this run says".
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000, 1_000_000])]
    pub plan_crowd: Vec<u64>,
    /// Where to write the markdown summary (also printed to standard output); the charts go
    /// beside it, as `<its name>-requests.svg`, `-latency.svg` and `-sale.svg`.
    #[arg(long, default_value = "loadtest-summary.md")]
    pub summary_file: PathBuf,
    #[command(flatten)]
    pub goose: GooseConfiguration,
}

impl Options {
    /// Refuses combinations that would make the run meaningless.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.buyers >= 1, "--buyers must be at least 1");
        anyhow::ensure!(self.capacity >= 1, "--capacity must be at least 1");
        anyhow::ensure!((1..=3600).contains(&self.hold_secs), "--hold-secs must be 1–3600");
        anyhow::ensure!(
            self.poll_scale > 0.0 && self.poll_scale <= 10.0,
            "--poll-scale must be above 0 and at most 10"
        );
        for (name, share) in [
            ("--abandon-share", self.abandon_share),
            ("--leave-share", self.leave_share),
            ("--lapse-share", self.lapse_share),
            ("--return-share", self.return_share),
        ] {
            anyhow::ensure!((0.0..=1.0).contains(&share), "{name} must be between 0 and 1");
        }
        anyhow::ensure!(
            self.abandon_share + self.leave_share <= 1.0,
            "--abandon-share and --leave-share together must not exceed 1"
        );
        anyhow::ensure!(
            (5..=3600).contains(&self.prequeue_secs),
            "--prequeue-secs must be 5–3600"
        );
        if let Some(secs) = self.offer_secs {
            anyhow::ensure!((60..=86_400).contains(&secs), "--offer-secs must be 60–86400");
        }
        anyhow::ensure!(
            self.goose.host.is_some(),
            "--host is required (the boxoffice instance, such as http://127.0.0.1:8080)"
        );
        Ok(())
    }
}

/// What the run sets out to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioKind {
    /// The flash crowd: join, wait, buy, abandon or leave.
    Crowd,
    /// The crowd, then the waitlist: the sold-out join it and get what comes back.
    SoldOut,
    /// The crowd joins the pre-queue before the opening; the draw orders it.
    Prequeue,
}

/// Tickets per buyer: a fixed number, or a range spread over the buyers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantitySpec {
    pub min: u8,
    pub max: u8,
}

impl QuantitySpec {
    /// The quantity of buyer `index`: cycles through the range, so every quantity has about
    /// as many buyers and the FIFO check has pairs of equal quantity to compare.
    pub fn for_buyer(self, index: usize) -> u8 {
        let span = usize::from(self.max - self.min) + 1;
        self.min + (index % span) as u8
    }
}

impl FromStr for QuantitySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |t: &str| -> Result<u8, String> {
            match t.trim().parse::<u8>() {
                Ok(n @ 1..=6) => Ok(n),
                _ => Err(format!("'{t}' is not a quantity from 1 to 6")),
            }
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(s)?, parse(s)?),
        };
        if min > max {
            return Err(format!("the range '{s}' runs backwards"));
        }
        Ok(QuantitySpec { min, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_spec_reads_a_number_or_a_range() {
        assert_eq!("2".parse(), Ok(QuantitySpec { min: 2, max: 2 }));
        assert_eq!("1-4".parse(), Ok(QuantitySpec { min: 1, max: 4 }));
        assert!("0".parse::<QuantitySpec>().is_err());
        assert!("7".parse::<QuantitySpec>().is_err());
        assert!("4-1".parse::<QuantitySpec>().is_err());
        let spec: QuantitySpec = "1-3".parse().unwrap();
        assert_eq!(
            (0..6).map(|i| spec.for_buyer(i)).collect::<Vec<_>>(),
            [1, 2, 3, 1, 2, 3]
        );
    }
}
