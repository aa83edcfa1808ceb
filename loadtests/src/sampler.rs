//! The sale seen from the organizer's side while the crowd runs: `GET /api/v1/admin/sales/{sale}`
//! (the dashboard figures) every half second, for the charts of the queue's length and the tickets
//! sold over time. Two light requests a second do not change what the crowd measures.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::organizer::Organizer;

/// The sale at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub at: Instant,
    /// Buyers in the queue.
    pub waiting: i64,
    /// Tickets held at checkout.
    pub held: i64,
    /// Tickets sold (the live state).
    pub sold: i64,
}

/// Reads the figures every `every` until `stop` turns true; a reading that fails is skipped
/// (the charts show a gap, the run goes on).
pub async fn sample(
    organizer: Organizer,
    sale: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let asked = Instant::now();
        if let Ok(f) = organizer.figures(&sale).await {
            samples.push(Sample {
                // The middle of the request: the figures were read somewhere in it.
                at: asked + asked.elapsed() / 2,
                waiting: f.waiting,
                held: f.held,
                sold: f.sold,
            });
        }
    }
    samples
}
