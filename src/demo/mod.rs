//! `boxoffice demo`: the shop and a crowd in one command, for a first look.
//!
//! It starts the real application on the configured address, makes (or finds again) a demo
//! organizer and a demo event whose sale is open, prints where to look, and sends a simulated
//! crowd at the sale over HTTP, so that the event list, the waiting room and the dashboard
//! move from the first minute. Ctrl-C (or SIGTERM) stops the crowd, then the shop; everything
//! made stays in Redis and Postgres, and the next run continues the same sale while it has
//! tickets left.
//!
//! # Layout
//!
//! - `setup` — the demo organizer, its token, and the event and sale through the organizer API.
//! - `crowd` — the simulated buyers, each with its own cookie jar, over the public JSON API.

pub mod crowd;
pub mod setup;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use tokio::sync::watch;

use crate::config::Settings;
use crate::startup::{Application, shutdown_signal};
use crowd::{Crowd, CrowdPlan, Tally};

/// What the demo changes in the settings of the shop it runs.
///
/// - The per-client rate limits are off: the whole crowd comes from this machine's one
///   address, and within one client's allowance (600 polls a minute) a few thousand buyers
///   could not poll as often as the server asks them to, so the waiting room would not behave
///   as it does for a real crowd of separate people. The server is the demo's own, on its own
///   address, so nothing else loses the limits.
/// - No mail is sent: the buyers' addresses are made up (`@example.com`), so the tickets mails
///   are noted in the log even where `SMTP_URL` is set.
pub fn settings_for_the_crowd(settings: &mut Settings) {
    settings.rate_join_per_min = 0;
    settings.rate_poll_per_min = 0;
    settings.rate_buyer_per_min = 0;
    settings.smtp_url = None;
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init_with_default("warn");
    settings_for_the_crowd(&mut settings);
    let addr = settings.addr;
    let app = Application::build(settings)
        .await
        .with_context(|| format!("Failed to start the shop on {addr} (BOXOFFICE_ADDR chooses another address)"))?;
    let base = format!("http://{}", reachable(addr.ip(), app.port()));
    let db = app.state().db.clone();

    let (stop, stopped) = watch::channel(false);
    let mut server_stopped = stopped.clone();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = server_stopped.wait_for(|s| *s).await;
    }));

    let prepared = async {
        let organizer = setup::organizer(&db).await?;
        let token = setup::token(&db, organizer).await?;
        setup::OrganizerApi::new(&base, token)?.demo_sale().await
    };
    let sale = match prepared.await {
        Ok(sale) => sale,
        Err(e) => {
            let _ = stop.send(true);
            let _ = server.await;
            return Err(e);
        }
    };
    print_welcome(&base, &sale);

    let crowd = Crowd::new(&base, sale.sale, CrowdPlan::demo())?;
    let counts = crowd.counts();
    let mut crowd_task = tokio::spawn(crowd.run(stopped.clone()));
    let started = Instant::now();
    let mut progress = tokio::time::interval(Duration::from_secs(10));
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut crowd_done = false;
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = progress.tick(), if !crowd_done => {
                println!("{}", progress_line(started.elapsed(), &counts.tally(), sale_figures(&base, sale.sale).await));
            }
            done = &mut crowd_task, if !crowd_done => {
                crowd_done = true;
                let tally = done.unwrap_or_default();
                println!("{}", progress_line(started.elapsed(), &tally, sale_figures(&base, sale.sale).await));
                println!(
                    "The crowd has gone home. The shop serves on at {base}/ until Ctrl-C; \
                     run `boxoffice demo` again for a new crowd (and a new sale once this one is sold out)."
                );
            }
        }
    }
    println!("Stopping the crowd and the shop; the data stays.");
    let _ = stop.send(true);
    if !crowd_done {
        let _ = crowd_task.await;
    }
    server.await?.context("The shop stopped with an error")?;
    Ok(())
}

/// The address the crowd (and the reader) can reach a server bound to `ip`: the loopback
/// address when it listens on all of them.
fn reachable(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => format!("{}:{port}", Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => format!("[{}]:{port}", Ipv6Addr::LOCALHOST),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

fn print_welcome(base: &str, sale: &setup::DemoSale) {
    let which = if sale.reused {
        format!(
            "the demo sale of an earlier run ({} of {} tickets sold)",
            sale.sold, sale.capacity
        )
    } else {
        format!("a new demo sale of {} tickets", sale.capacity)
    };
    println!(
        "\nboxoffice demo: the shop is running, with {which}.\n\n\
         \x20 home             {base}/\n\
         \x20 the event        {base}/sales/{sale}\n\
         \x20 organizer        {base}/admin/sign-in\n\
         \x20 sale dashboard   {base}/admin/sales/{sale}\n\n\
         Sign in as {email} with the password {password}\n\
         (a demo account with a published password: keep this shop to your own machine).\n\n\
         A simulated crowd is arriving now: a burst, then about three buyers a second, up to \
         {buyers}. Join the queue yourself from the event's page. Ctrl-C stops the crowd and \
         the shop and keeps the data.\n",
        sale = sale.sale,
        email = setup::DEMO_EMAIL,
        password = setup::DEMO_PASSWORD,
        buyers = CrowdPlan::demo().buyers,
    );
}

/// The sale's public figures (`GET /api/v1/sales/{sale}`), when the shop answers.
async fn sale_figures(base: &str, sale: uuid::Uuid) -> Option<Value> {
    let answer = reqwest::get(format!("{base}/api/v1/sales/{sale}")).await.ok()?;
    answer.json().await.ok()
}

/// One line of how things stand, every few seconds.
fn progress_line(elapsed: Duration, t: &Tally, sale: Option<Value>) -> String {
    let secs = elapsed.as_secs();
    let figures = match sale {
        Some(s) => format!(
            "{} sold of {}, {} held at checkout, {} waiting",
            s["sold"], s["capacity"], s["held"], s["waiting"]
        ),
        None => "the sale's figures did not answer".to_string(),
    };
    format!(
        "[{}:{:02}] {figures} · crowd: {} arrived, {} ordered ({} tickets), {} left the queue, \
         {} closed the tab, {} abandoned at checkout, {} gave up at checkout, {} told sold out{}",
        secs / 60,
        secs % 60,
        t.arrived,
        t.ordered,
        t.tickets,
        t.left,
        t.closed_tab,
        t.abandoned,
        t.released,
        t.sold_out,
        if t.failed > 0 {
            format!(", {} failed", t.failed)
        } else {
            String::new()
        },
    )
}
