//! An open-loop poller for the black-box crowd (`benches/blackbox/million.sh`): polls of random
//! buyers of a fixture at a fixed rate, each timed from the moment it was due, not from when it
//! could be sent. A closed-loop client (wrk's connections, each sending its next poll only
//! after the answer and a think time) slows down with a slow server and so hides its queueing;
//! a crowd of browsers does not wait for each other.
//!
//! ```text
//! cargo run --release --example open_loop -- <base url> <fixture> <rate per s> <secs> [connections] [fragment|json]
//! ```
//!
//! The fixture has one buyer a line: `<session cookie> <code> <place>` (as `fixture_join.py`
//! writes it). The rate is spread over a fixed number of kept-alive connections (default 256),
//! each with its own schedule, as wrk2 does: a connection still waiting for an answer sends its
//! next poll as soon as it can, and the wait counts in that poll's latency. Prints the polls due
//! and answered, the rate answered, the answers that were not 200, and the latency percentiles
//! from when each poll was due. One thread, so that the client takes at most one of the
//! machine's cores.

use std::rc::Rc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

struct Buyer {
    cookie: String,
    path: String,
}

fn read_fixture(path: &str, json: bool) -> Vec<Buyer> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (cookie, code, place) = (fields.next()?, fields.next()?, fields.next()?);
            let path = if json {
                format!("/api/v1/reservations/{code}?place={place}")
            } else {
                format!("/wait/{code}/poll?place={place}")
            };
            Some(Buyer {
                cookie: format!("bo_session={cookie}"),
                path,
            })
        })
        .collect()
}

/// A small xorshift: which buyer polls next needs no more than that.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: open_loop <base url> <fixture> <rate per s> <secs> [connections] [fragment|json]");
        std::process::exit(2);
    }
    let addr = args[1].trim_start_matches("http://").trim_end_matches('/').to_string();
    let rate: f64 = args[3].parse().expect("a rate per second");
    let secs: f64 = args[4].parse().expect("a number of seconds");
    let connections: usize = args.get(5).map_or(256, |c| c.parse().expect("a number of connections"));
    let json = args.get(6).is_some_and(|k| k == "json");
    let buyers = Rc::new(read_fixture(&args[2], json));
    assert!(!buyers.is_empty(), "the fixture names no buyer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(addr, buyers, rate, secs, connections));
}

/// What one connection saw: latencies in µs, and the polls that were not answered 200.
struct Seen {
    latencies: Vec<u32>,
    failed: u64,
}

async fn run(addr: String, buyers: Rc<Vec<Buyer>>, rate: f64, secs: f64, connections: usize) {
    let total = (rate * secs) as u64;
    let start = Instant::now() + Duration::from_millis(200);
    let tasks: Vec<_> = (0..connections)
        .map(|k| {
            // Connection k sends polls k, k + connections, k + 2 connections, ... of the run.
            let due: Vec<Duration> = (k as u64..total)
                .step_by(connections)
                .map(|i| Duration::from_secs_f64(i as f64 / rate))
                .collect();
            let (addr, buyers) = (addr.clone(), buyers.clone());
            tokio::task::spawn_local(connection(addr, buyers, start, due, k as u64))
        })
        .collect();
    let mut latencies = Vec::with_capacity(total as usize);
    let mut failed = 0u64;
    for task in tasks {
        let seen = task.await.expect("a connection's task ends");
        latencies.extend(seen.latencies);
        failed += seen.failed;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "open loop: {total} polls due at {rate:.0}/s over {secs:.0} s on {connections} connections; \
         {} answered in {elapsed:.1} s ({:.0}/s), {failed} not 200",
        latencies.len(),
        latencies.len() as f64 / elapsed,
    );
    println!(
        "latency from when each poll was due: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0),
    );
}

/// One kept-alive connection sending its polls when due (or at once when late), opened again
/// if the server closes it.
async fn connection(addr: String, buyers: Rc<Vec<Buyer>>, start: Instant, due: Vec<Duration>, seed: u64) -> Seen {
    let mut seen = Seen {
        latencies: Vec::with_capacity(due.len()),
        failed: 0,
    };
    let mut random = 0x9e37_79b9_7f4a_7c15u64 ^ (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let mut sender = None;
    for at in due {
        let due_at = start + at;
        tokio::time::sleep_until(due_at.into()).await;
        if sender.is_none() {
            sender = open(&addr).await;
        }
        let buyer = &buyers[(next_random(&mut random) % buyers.len() as u64) as usize];
        let ok = match sender.as_mut() {
            Some(s) => poll(s, &addr, buyer).await,
            None => false,
        };
        if !ok {
            seen.failed += 1;
            sender = None;
        }
        seen.latencies
            .push(due_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    seen
}

async fn open(addr: &str) -> Option<http1::SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::task::spawn_local(conn);
    Some(sender)
}

/// One poll; true when it was answered 200 and its body read whole.
async fn poll(sender: &mut http1::SendRequest<Empty<Bytes>>, addr: &str, buyer: &Buyer) -> bool {
    if sender.ready().await.is_err() {
        return false;
    }
    let request = hyper::Request::get(buyer.path.as_str())
        .header(hyper::header::HOST, addr)
        .header(hyper::header::COOKIE, &buyer.cookie)
        .body(Empty::new())
        .expect("a request");
    match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status();
            response.into_body().collect().await.is_ok() && status == hyper::StatusCode::OK
        }
        Err(_) => false,
    }
}
