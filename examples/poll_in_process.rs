//! The waiting buyers' polls through the whole app in this process, without a socket: what
//! the shop's own code costs a poll, apart from the kernel's and the client's share that a
//! load test over HTTP also measures. `benches/poll_instructions.sh` runs it under callgrind,
//! which counts the instructions of a number of polls the same way on every run.
//!
//! ```text
//! cargo run --release --example poll_in_process -- <fixture> <polls> [fragment|json|healthz]
//! ```
//!
//! The settings come from the environment, as the server's do (`DATABASE_URL`, `REDIS_URL`,
//! `BOXOFFICE_SECRET`, ...), and must be those of the server that joined the fixture's buyers
//! (one `<session cookie> <code> <place>` a line, as `fixture_join.py` writes it). The polls
//! go to the buyers far from the head (the fixture's last half), one after the other; every
//! answer must be a 200.

use std::pin::Pin;
use std::task::{Context, Poll};

use boxoffice::config::Settings;
use boxoffice::web::session::SESSION_COOKIE;
use poem::http::StatusCode;
use poem::{Endpoint, Request};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, fixture, polls, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: poll_in_process <fixture> <polls> [fragment|json|healthz]");
    };
    let polls: usize = polls.parse()?;
    let kind = rest.first().map(String::as_str).unwrap_or("fragment");
    let text = std::fs::read_to_string(fixture)?;
    let buyers: Vec<(&str, &str, &str)> = text
        .lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            Some((f.next()?, f.next()?, f.next()?))
        })
        .collect();
    let far = &buyers[buyers.len() / 2..];
    anyhow::ensure!(!far.is_empty(), "the fixture has no buyers");

    let settings = Settings::from_env()?;
    let state = boxoffice::startup::connect(&settings).await?;
    let app = boxoffice::web::app(state, boxoffice::admin::pages(), boxoffice::admin::AdminApi);
    let request = |i: usize| {
        let (cookie, code, place) = far[i % far.len()];
        let uri = match kind {
            "json" => format!("/api/v1/reservations/{code}?place={place}"),
            "healthz" => "/healthz".to_string(),
            _ => format!("/wait/{code}/poll?place={place}"),
        };
        Request::builder()
            .uri(uri.parse().expect("a fixture's code and place make a URI"))
            .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
            .finish()
    };
    for i in 0..polls {
        let req = request(i);
        let (status, body) = Counted(Box::pin(async {
            let resp = app.get_response(req).await;
            (resp.status(), resp.into_body().into_bytes().await)
        }))
        .await;
        anyhow::ensure!(status == StatusCode::OK, "poll {i}: {status}");
        body?;
    }
    Ok(())
}

/// A poll's future, polled by a function of its own name: callgrind counts the instructions
/// run inside it (`--toggle-collect`), those of the poll and its answer alone, not the making
/// of the request nor the app's background tasks, which run as often as the clock says.
struct Counted<F>(F);

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}
