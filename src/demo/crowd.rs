//! The simulated crowd: buyers arriving at a sale over time, each with a cookie jar of its own,
//! walking the public JSON API over real HTTP as a person in the waiting room would.
//!
//! A burst arrives first (the sale's announcement), then a steady stream with random gaps. Each
//! buyer joins, polls no sooner than the server's `poll_after_ms`, and when admitted takes a
//! while to type its details and orders; some never finish checkout (their hold lapses), some
//! give up at checkout, and some lose patience in the queue and leave it, or just close the
//! tab. New buyers stop coming once the sale is sold out or closed.
//!
//! Randomness comes from a small generator seeded per buyer, so a crowd with the same seed
//! behaves the same way (the server's timing aside).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How a crowd arrives and behaves.
#[derive(Clone, Debug)]
pub struct CrowdPlan {
    /// Buyers in all; fewer come when the sale sells out or closes first.
    pub buyers: usize,
    /// Buyers arriving together at the start, spread over `burst_secs`.
    pub burst: usize,
    pub burst_secs: f64,
    /// Then this many a second on average (random gaps, as independent people arrive).
    pub per_sec: f64,
    /// How long an admitted buyer takes to fill in the checkout form.
    pub think: Range<Duration>,
    /// How long a waiting buyer stays in the queue before giving up.
    pub patience: Range<Duration>,
    /// Share of buyers who reach checkout and never confirm: their hold lapses.
    pub abandon_share: f64,
    /// Share of buyers who reach checkout and give the tickets back.
    pub release_share: f64,
    /// Of those who lose patience in the queue, the share who close the tab instead of
    /// leaving the line (the server notices when they stop polling).
    pub close_tab_share: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl CrowdPlan {
    /// The demo's crowd: three thousand buyers, two hundred of them in the first ten seconds,
    /// then three a second: a quarter of an hour of arrivals, at a pace a person can watch.
    pub fn demo() -> CrowdPlan {
        CrowdPlan {
            buyers: 3000,
            burst: 200,
            burst_secs: 10.0,
            per_sec: 3.0,
            think: Duration::from_secs(8)..Duration::from_secs(45),
            patience: Duration::from_secs(30)..Duration::from_secs(600),
            abandon_share: 0.08,
            release_share: 0.04,
            close_tab_share: 0.3,
            seed: 17,
        }
    }
}

/// What the crowd has done so far; read while it runs.
#[derive(Default, Debug)]
pub struct CrowdCounts {
    /// Buyers who came to the sale.
    pub arrived: AtomicU64,
    /// Joins the server accepted (a reservation, waiting or admitted).
    pub joined: AtomicU64,
    /// Of them, those who had to wait in the queue.
    pub queued: AtomicU64,
    pub polls: AtomicU64,
    /// Buyers the server let through to checkout.
    pub admitted: AtomicU64,
    pub ordered: AtomicU64,
    pub tickets: AtomicU64,
    /// Admitted, never confirmed: the hold lapses.
    pub abandoned: AtomicU64,
    /// Gave the tickets back at checkout.
    pub released: AtomicU64,
    /// Left the queue.
    pub left: AtomicU64,
    /// Stopped polling while waiting.
    pub closed_tab: AtomicU64,
    /// Told sold out (at the join or in the queue).
    pub sold_out: AtomicU64,
    /// Answers the buyer could not use (an unexpected status, no answer).
    pub failed: AtomicU64,
    /// The sale answered sold out or closed: no more buyers come.
    pub over: AtomicBool,
}

/// A plain copy of the counts at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub arrived: u64,
    pub joined: u64,
    pub queued: u64,
    pub polls: u64,
    pub admitted: u64,
    pub ordered: u64,
    pub tickets: u64,
    pub abandoned: u64,
    pub released: u64,
    pub left: u64,
    pub closed_tab: u64,
    pub sold_out: u64,
    pub failed: u64,
}

impl CrowdCounts {
    pub fn tally(&self) -> Tally {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Tally {
            arrived: get(&self.arrived),
            joined: get(&self.joined),
            queued: get(&self.queued),
            polls: get(&self.polls),
            admitted: get(&self.admitted),
            ordered: get(&self.ordered),
            tickets: get(&self.tickets),
            abandoned: get(&self.abandoned),
            released: get(&self.released),
            left: get(&self.left),
            closed_tab: get(&self.closed_tab),
            sold_out: get(&self.sold_out),
            failed: get(&self.failed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A crowd ready to walk into one sale of a running shop.
pub struct Crowd {
    /// `http://host:port` of the shop.
    base: String,
    sale: String,
    plan: CrowdPlan,
    /// One connection pool for every buyer; each buyer brings its own cookie jar.
    http: reqwest::Client,
    counts: Arc<CrowdCounts>,
}

impl Crowd {
    pub fn new(base: &str, sale: impl ToString, plan: CrowdPlan) -> anyhow::Result<Crowd> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Crowd {
            base: base.trim_end_matches('/').to_string(),
            sale: sale.to_string(),
            plan,
            http,
            counts: Arc::default(),
        })
    }

    /// The counts, to watch the crowd while it runs.
    pub fn counts(&self) -> Arc<CrowdCounts> {
        self.counts.clone()
    }

    /// Sends the buyers in, until all have come and gone or `stop` turns true. Stopping drops
    /// every buyer where it stands (requests in flight included): their reservations stay in
    /// the sale as they are, as when people close their browsers. Returns the final counts.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Tally {
        let crowd = Arc::new(self);
        let mut buyers = JoinSet::new();
        let mut gaps = Rng::new(crowd.plan.seed ^ 0x5eed);
        {
            let arrivals = async {
                for index in 0..crowd.plan.buyers {
                    if crowd.counts.over.load(Ordering::Relaxed) {
                        break;
                    }
                    let gap = if index < crowd.plan.burst {
                        crowd.plan.burst_secs / crowd.plan.burst as f64
                    } else {
                        // Independent arrivals: exponential gaps with the planned mean.
                        -(1.0 - gaps.unit()).ln() / crowd.plan.per_sec
                    };
                    if index > 0 {
                        tokio::time::sleep(Duration::from_secs_f64(gap.clamp(0.0, 60.0))).await;
                    }
                    CrowdCounts::add(&crowd.counts.arrived, 1);
                    let crowd = crowd.clone();
                    buyers.spawn(async move { Buyer::new(&crowd, index).walk(&crowd).await });
                    // Reap the buyers who are done, so the set holds only those still there.
                    while buyers.try_join_next().is_some() {}
                }
                while buyers.join_next().await.is_some() {}
            };
            tokio::select! {
                _ = arrivals => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        }
        // Stopped: abort the buyers still walking, and wait until none runs any more.
        buyers.shutdown().await;
        crowd.counts.tally()
    }
}

/// What a buyer means to do once admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    Buy,
    Abandon,
    Release,
}

/// One simulated person.
struct Buyer {
    jar: Jar,
    index: usize,
    quantity: u8,
    intent: Intent,
    patience: Duration,
    closes_tab: bool,
    think: Duration,
    details: Value,
}

const FIRST_NAMES: [&str; 20] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Dennis",
    "Radia",
    "Ken",
    "Sophie",
    "Tim",
    "Katherine",
    "Linus",
    "Hedy",
    "Niklaus",
    "Mary",
    "Guido",
];
const LAST_NAMES: [&str; 20] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Backus",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Thompson",
    "Wilson",
    "Berners-Lee",
    "Johnson",
    "Torvalds",
    "Lamarr",
    "Wirth",
    "Keller",
    "van Rossum",
];

/// An answer a buyer could not use (an unexpected status or body, or none): the buyer goes
/// home and is counted as failed.
struct Failed;

impl Buyer {
    fn new(crowd: &Crowd, index: usize) -> Buyer {
        let plan = &crowd.plan;
        let mut rng = Rng::new(plan.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64);
        // Most want two tickets, some one, a few three or four.
        let quantity = match rng.unit() {
            u if u < 0.3 => 1,
            u if u < 0.75 => 2,
            u if u < 0.9 => 3,
            _ => 4,
        };
        let intent = match rng.unit() {
            u if u < plan.abandon_share => Intent::Abandon,
            u if u < plan.abandon_share + plan.release_share => Intent::Release,
            _ => Intent::Buy,
        };
        let first = FIRST_NAMES[rng.below(FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.below(LAST_NAMES.len())];
        let gender = match rng.unit() {
            u if u < 0.45 => "female",
            u if u < 0.9 => "male",
            u if u < 0.95 => "diverse",
            _ => "unspecified",
        };
        let email = format!("{first}.{last}.{index}@example.com")
            .to_lowercase()
            .replace(' ', "");
        Buyer {
            jar: Jar::default(),
            index,
            quantity,
            intent,
            patience: rng.between(&plan.patience),
            closes_tab: rng.unit() < plan.close_tab_share,
            think: rng.between(&plan.think),
            details: json!({
                "name": format!("{first} {last}"),
                "email": email,
                "age": 16 + rng.below(60),
                "gender": gender,
            }),
        }
    }

    async fn walk(self, crowd: &Crowd) {
        if self.walk_or_fail(crowd).await.is_err() {
            CrowdCounts::add(&crowd.counts.failed, 1);
        }
    }

    async fn walk_or_fail(&self, crowd: &Crowd) -> Result<(), Failed> {
        let counts = &crowd.counts;
        let join = format!("{}/api/v1/sales/{}/reservations", crowd.base, crowd.sale);
        let (status, body) = self
            .send(crowd, crowd.http.post(&join).json(&json!({"quantity": self.quantity})))
            .await?;
        if status == 409 && body["error"] == "sale_closed" {
            counts.over.store(true, Ordering::Relaxed);
            return Ok(());
        }
        if !(200..300).contains(&status) {
            return Err(Failed);
        }
        CrowdCounts::add(&counts.joined, 1);
        let code = body["code"].as_str().ok_or(Failed)?.to_string();
        let reservation = format!("{}/api/v1/reservations/{code}", crowd.base);
        let gives_up_at = tokio::time::Instant::now() + self.patience;
        let mut view = body;
        if view["state"] == "waiting" {
            CrowdCounts::add(&counts.queued, 1);
        }
        loop {
            match view["state"].as_str().unwrap_or("") {
                "waiting" => {
                    // Never sooner than the server asks.
                    let after = Duration::from_millis(view["poll_after_ms"].as_u64().ok_or(Failed)?);
                    let next = tokio::time::Instant::now() + after;
                    if next > gives_up_at {
                        tokio::time::sleep_until(gives_up_at).await;
                        if self.closes_tab {
                            CrowdCounts::add(&counts.closed_tab, 1);
                        } else {
                            self.give_up(crowd, &reservation).await?;
                            CrowdCounts::add(&counts.left, 1);
                        }
                        return Ok(());
                    }
                    tokio::time::sleep_until(next).await;
                    // With the place in line the join or the last poll gave: far from the
                    // head the poll is then answered without a Redis call.
                    let poll = match view["place"].as_str() {
                        Some(place) => format!("{reservation}?place={place}"),
                        None => reservation.clone(),
                    };
                    let (status, body) = self.send(crowd, crowd.http.get(&poll)).await?;
                    CrowdCounts::add(&counts.polls, 1);
                    if !(200..300).contains(&status) {
                        return Err(Failed);
                    }
                    view = body;
                }
                "admitted" => {
                    CrowdCounts::add(&counts.admitted, 1);
                    return self.check_out(crowd, &reservation).await;
                }
                "sold_out" => {
                    CrowdCounts::add(&counts.sold_out, 1);
                    counts.over.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                "closed" => {
                    counts.over.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                // Anything else (expired, abandoned) ends the visit.
                _ => return Ok(()),
            }
        }
    }

    async fn check_out(&self, crowd: &Crowd, reservation: &str) -> Result<(), Failed> {
        let counts = &crowd.counts;
        tokio::time::sleep(self.think).await;
        match self.intent {
            Intent::Abandon => {
                CrowdCounts::add(&counts.abandoned, 1);
                Ok(())
            }
            Intent::Release => {
                self.give_up(crowd, reservation).await?;
                CrowdCounts::add(&counts.released, 1);
                Ok(())
            }
            Intent::Buy => {
                let order = format!("{reservation}/order");
                let (status, body) = self.send(crowd, crowd.http.post(order).json(&self.details)).await?;
                match (status, body["order"]["quantity"].as_u64()) {
                    (201, Some(quantity)) => {
                        CrowdCounts::add(&counts.ordered, 1);
                        CrowdCounts::add(&counts.tickets, quantity);
                        Ok(())
                    }
                    (409, _) if body["error"] == "sold_out" => {
                        CrowdCounts::add(&counts.sold_out, 1);
                        Ok(())
                    }
                    _ => Err(Failed),
                }
            }
        }
    }

    /// Leaves the queue, or gives the tickets back at checkout.
    async fn give_up(&self, crowd: &Crowd, reservation: &str) -> Result<(), Failed> {
        match self.send(crowd, crowd.http.delete(reservation)).await? {
            (204, _) => Ok(()),
            _ => Err(Failed),
        }
    }

    /// Sends a request with this buyer's cookies and keeps the cookies of the answer; the
    /// status and the JSON body (`null` when there is none).
    async fn send(&self, crowd: &Crowd, request: reqwest::RequestBuilder) -> Result<(u16, Value), Failed> {
        let mut request = request.build().map_err(|_| Failed)?;
        let url = request.url().clone();
        if let Some(cookies) = self.jar.cookies(&url) {
            request.headers_mut().insert(reqwest::header::COOKIE, cookies);
        }
        let response = crowd.http.execute(request).await.map_err(|e| {
            tracing::debug!(buyer = self.index, error = %e, "a demo buyer's request failed");
            Failed
        })?;
        self.jar.set_cookies(
            &mut response.headers().get_all(reqwest::header::SET_COOKIE).iter(),
            &url,
        );
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}

/// SplitMix64: a few lines of well-mixed pseudo-random numbers, enough for a crowd's whims.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    fn between(&mut self, range: &Range<Duration>) -> Duration {
        let span = range.end.saturating_sub(range.start);
        range.start + span.mul_f64(self.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_stays_in_its_ranges() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.below(7) < 7);
            let d = rng.between(&(Duration::from_secs(2)..Duration::from_secs(5)));
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(5));
        }
    }

    #[test]
    fn buyers_have_plausible_details_and_intents_in_their_shares() {
        let crowd = Crowd::new("http://127.0.0.1:1", "s", CrowdPlan::demo()).unwrap();
        let buyers: Vec<Buyer> = (0..2000).map(|i| Buyer::new(&crowd, i)).collect();
        let share = |f: &dyn Fn(&Buyer) -> bool| buyers.iter().filter(|b| f(b)).count() as f64 / 2000.0;
        assert!((share(&|b| b.intent == Intent::Abandon) - 0.08).abs() < 0.03);
        assert!((share(&|b| b.intent == Intent::Release) - 0.04).abs() < 0.02);
        assert!(buyers.iter().all(|b| (1..=4).contains(&b.quantity)));
        for b in &buyers {
            let email = b.details["email"].as_str().unwrap();
            assert!(
                email.is_ascii() && !email.contains(' ') && email.ends_with("@example.com"),
                "{email}"
            );
            assert!((16..76).contains(&b.details["age"].as_u64().unwrap()));
        }
    }
}
