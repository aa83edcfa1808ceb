//! `loadtest`: a flash crowd of simulated buyers against one new sale of a running boxoffice
//! instance, for capacity planners and CI.
//!
//! ## Layout
//!
//! - `options`: the command line (goose's own options flattened in);
//! - `organizer`: the organizer API: make the event and sale, read the sale back;
//! - `scenario`: the buyers (goose users): join, poll, check out, abandon or leave; in the
//!   sold-out scenario, the waitlist: join it, poll, buy the offer or let it lapse;
//! - `record`: what the buyers saw, per buyer and per endpoint;
//! - `sampler`: the sale's dashboard figures, read every half second during the run;
//! - `checks`: not oversold, Postgres and the dashboard agree, FIFO admission;
//! - `waitlist_checks`: the sold-out scenario's offers: in order, once, bought or lapsed;
//! - `draw_checks`: the pre-queue scenario's draw: every place recomputed, drawn once,
//!   admission in drawn order (with the shop's `src/draw/order.rs`, `draw_order`, included by
//!   path);
//! - `timeline`: the run second by second; `findings`: "what this run says";
//! - `plots`: the charts, drawn by the shop's `src/charts.rs` (`charts`, included by path);
//! - `report`: the markdown summary.
//!
//! Exit status: 0 when every check passes, 1 when a check fails, 2 when the run itself could
//! not be made (no server, a bad token, bad options).

// The shop's chart module, the one definition of its charts; the load test does not depend on
// the shop (a heavy build beside goose), so it takes the file. Parts of it serve only the shop.
#[allow(dead_code)]
#[path = "../../src/charts.rs"]
mod charts;
mod checks;
mod draw_checks;
// The shop's draw arithmetic, the one definition of the drawn order (see `draw_checks`).
#[path = "../../src/draw/order.rs"]
mod draw_order;
mod findings;
mod options;
mod organizer;
mod plots;
mod record;
mod report;
mod sampler;
mod scenario;
mod timeline;
mod waitlist_checks;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use goose::GooseAttack;
use tokio::sync::{Barrier, Notify, watch};

use options::{Options, ScenarioKind};
use organizer::{Organizer, SalePlan};
use scenario::Crowd;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("LOAD TEST FAILED: a check did not pass (see Checks above).");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("LOAD TEST COULD NOT RUN: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the crowd and the checks; `Ok(false)` when a check failed.
async fn run() -> anyhow::Result<bool> {
    let options = Options::parse();
    options.validate()?;
    let host = options.goose.host.clone().unwrap_or_default();
    let organizer = Organizer::new(&host, &options.token)?;
    let sold_out = options.scenario == ScenarioKind::SoldOut;
    let prequeue = options.scenario == ScenarioKind::Prequeue;
    let raise_by = if sold_out { options.raise_by } else { 0 };
    let opens_in = Duration::from_secs(options.prequeue_secs.into());
    let (opens_at, opens_here) = match prequeue {
        true => (Some(chrono::Utc::now() + opens_in), Some(Instant::now() + opens_in)),
        false => (None, None),
    };
    let sale = organizer
        .create_sale(&SalePlan {
            capacity: options.capacity,
            spare_seats: raise_by,
            hold_secs: options.hold_secs,
            max_active: options.max_active,
            opens_at,
            // Open from a minute before the sale is made: the first join is in its window.
            prequeue_secs: prequeue.then_some(options.prequeue_secs + 60),
        })
        .await?;
    let offer_secs = if sold_out {
        organizer.offer_window(&sale, options.offer_secs).await?
    } else {
        0
    };
    let return_share = if sold_out { options.return_share } else { 0.0 };
    if return_share > 0.0 {
        organizer.allow_returns(&sale).await?;
    }
    match prequeue {
        true => eprintln!(
            "sale {sale} opens in {} s; {} buyers join its pre-queue meanwhile",
            options.prequeue_secs, options.buyers
        ),
        false => eprintln!("sale {sale} opened; {} buyers on their way", options.buyers),
    }

    let crowd = scenario::install(Crowd {
        scenario: options.scenario,
        sale: sale.clone(),
        quantity: options.quantity,
        poll_scale: options.poll_scale,
        abandon_share: options.abandon_share,
        leave_share: options.leave_share,
        lapse_share: options.lapse_share,
        return_share,
        max_wait: Duration::from_secs(options.max_wait_secs),
        start: Barrier::new(options.buyers),
        recorder: Default::default(),
        in_line: AtomicUsize::new(options.buyers),
        line_done: Notify::new(),
        raised: Default::default(),
        returners_waiting: AtomicUsize::new(0),
        opens_at: opens_here,
        released: Default::default(),
        buyers: options.buyers,
    });
    let raise_to = (raise_by > 0).then_some(options.capacity + raise_by);
    let raise = sold_out.then(|| {
        tokio::spawn(raise_when_line_empty(
            organizer.clone(),
            sale.clone(),
            crowd.clone(),
            raise_to,
        ))
    });

    let first_draw = opens_here.map(|opens_here| {
        tokio::spawn(first_draw(
            organizer.clone(),
            sale.clone(),
            opens_here,
            Duration::from_secs(options.max_wait_secs),
        ))
    });

    let (stop_sampling, sampling) = watch::channel(false);
    let sampler = tokio::spawn(sampler::sample(
        organizer.clone(),
        sale.clone(),
        Duration::from_millis(500),
        sampling,
    ));

    let mut goose = options.goose.clone();
    // One goose user per buyer, all launched within about a second, each walking its
    // journey once; they wait for each other at the barrier and join together.
    goose.users = Some(options.buyers);
    goose.increase_rate = Some(options.buyers.to_string());
    goose.iterations = Some(1);
    // No telnet controller: nothing listens on a port the run did not ask for.
    goose.no_telnet = true;
    GooseAttack::initialize_with_config(goose)?
        .register_scenario(scenario::buyers())
        .execute()
        .await
        .context("The goose attack failed")?;

    if let (Some(opens_here), Some(released)) = (opens_here, crowd.released.get())
        && *released + Duration::from_secs(1) >= opens_here
    {
        eprintln!(
            "warning: launching the crowd took past the opening: the buyers joined after it, not in the \
             pre-queue; give --prequeue-secs more room"
        );
    }
    let _ = stop_sampling.send(true);
    let samples = sampler.await.unwrap_or_default();
    if let Some(raise) = raise {
        raise.await.context("The organizer's raise stopped")??;
    }
    let (buyers, endpoints) = crowd.recorder.take();
    // The entries first: reading them records what Redis changed, before the figures are read.
    let entries = if sold_out {
        organizer.waitlist_entries(&sale).await?
    } else {
        Vec::new()
    };
    let first_draw = match first_draw {
        Some(task) => Some(task.await.context("The watch for the draw stopped")??),
        None => None,
    };
    // The draw at the end, and how many joins the sale's queue counted by then.
    let last_draw: Option<(draw_checks::PublishedDraw, i64)> = match prequeue {
        true => Some((organizer.published_draw(&sale).await?, organizer.joined(&sale).await?)),
        false => None,
    };
    let figures = organizer.figures(&sale).await?;
    let orders = organizer.orders(&sale).await?;
    let returns = if sold_out {
        organizer.returns(&sale).await?
    } else {
        Default::default()
    };
    if let Err(e) = organizer.close(&sale).await {
        eprintln!("warning: {e:#}");
    }

    let mut checks = vec![
        checks::capacity(&figures, &orders, returns),
        checks::agreement(&figures, &orders, returns, &buyers),
    ];
    match (first_draw, last_draw) {
        (Some((first, drawn_after)), Some((last, joined))) => {
            let (places_check, places) = draw_checks::places(&last, &buyers);
            checks.extend([
                places_check,
                draw_checks::drawn_once(&first, &last, drawn_after, joined, &buyers),
                draw_checks::admitted_in_drawn_order(&buyers, &places),
            ]);
        }
        _ => checks.push(checks::fifo(&buyers)),
    }
    if sold_out {
        let plan = waitlist_checks::Plan {
            capacity: options.capacity.into(),
            raised_to: (options.capacity + raise_by).into(),
            offer_ms: i64::from(offer_secs) * 1000,
        };
        let tickets: i64 = orders.iter().map(|o| o.quantity).sum();
        checks.extend([
            waitlist_checks::in_order(&buyers, &entries, &figures, tickets, &plan),
            waitlist_checks::offered_once(&buyers, &entries, tickets, &plan),
            waitlist_checks::bought_or_lapsed(&buyers, &entries, &plan),
        ]);
        if return_share > 0.0 {
            checks.push(waitlist_checks::returns_settled(&buyers, &figures, &orders, returns));
        }
    }
    let info = report::RunInfo {
        host: &host,
        sale: &sale,
        buyers: options.buyers,
        capacity: options.capacity,
        hold_secs: options.hold_secs,
        quantity: match options.quantity {
            q if q.min == q.max => q.min.to_string(),
            q => format!("{}–{}", q.min, q.max),
        },
        poll_scale: options.poll_scale,
        abandon_share: options.abandon_share,
        leave_share: options.leave_share,
        prequeue_secs: prequeue.then_some(options.prequeue_secs),
        sold_out: sold_out.then_some(report::SoldOutInfo {
            raise_by,
            offer_secs,
            lapse_share: options.lapse_share,
            return_share,
            entries: entries.len(),
        }),
    };
    let said = match timeline::Timeline::new(&endpoints, samples) {
        Some(timeline) => {
            let findings = findings::Findings::new(
                &timeline,
                &endpoints,
                &buyers,
                options.capacity,
                options.poll_scale,
                crowd.recorder.model_mismatches(),
            );
            let charts = plots::write(&options.summary_file, &timeline)?;
            report::said(&findings.write(&options.plan_crowd), &charts)
        }
        None => "No request was answered: nothing to say.\n".to_string(),
    };
    let summary = report::summary(&info, &said, &buyers, &endpoints, &checks);
    println!("{summary}");
    std::fs::write(&options.summary_file, &summary)
        .with_context(|| format!("Failed to write {}", options.summary_file.display()))?;
    Ok(checks.iter().all(|c| c.passed))
}

/// The pre-queue scenario's draw as first published, read every 200 ms from the opening
/// (`opens_here`, this machine's clock) until it has a result, and how long after the opening
/// that was; gives up after `patience`.
async fn first_draw(
    organizer: Organizer,
    sale: String,
    opens_here: Instant,
    patience: Duration,
) -> anyhow::Result<(draw_checks::PublishedDraw, Duration)> {
    tokio::time::sleep_until(opens_here.into()).await;
    loop {
        // An error (404 until the first pre-queue entry made the draw) or no result yet: ask again.
        let last = match organizer.published_draw::<draw_checks::PublishedDraw>(&sale).await {
            Ok(draw) if draw.result.is_some() => return Ok((draw, opens_here.elapsed())),
            Ok(_) => "no result yet".to_string(),
            Err(e) => format!("{e:#}"),
        };
        anyhow::ensure!(
            opens_here.elapsed() < patience,
            "no draw published within {patience:?} of the opening (last answer: {last})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sold-out scenario's organizer: once every buyer is out of the line (bought, gone, or
/// on to the waitlist), raises the capacity to `raise_to`; the new seats go down the
/// waitlist. Notes when the raise returned (with none, when the line emptied), so that the
/// waitlist's buyers know no more seats come after their next answer.
async fn raise_when_line_empty(
    organizer: Organizer,
    sale: String,
    crowd: Arc<Crowd>,
    raise_to: Option<u32>,
) -> anyhow::Result<()> {
    crowd.line_done.notified().await;
    let raised = match raise_to {
        Some(capacity) => {
            eprintln!("the line is empty; capacity raised to {capacity}");
            organizer.raise_capacity(&sale, capacity).await
        }
        None => Ok(()),
    };
    // Set even when the raise failed, so the waitlist's buyers stop; the run then fails.
    let _ = crowd.raised.set(Instant::now());
    raised
}
