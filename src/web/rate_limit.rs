//! Rate limits per client, kept in this instance's memory: joining a sale, polling a
//! reservation, every other buyer request, and (in the portal) signing in all use
//! [`KeyedLimit`], keyed by the client address of [`super::client::client_addr`].
//!
//! A check is a lookup in an in-memory map, no I/O, so it costs the hot poll next to nothing.
//! The limits are per instance: behind a balancer with N instances a client gets up to N times
//! as many. IPv6 clients are counted by network, since one subscriber owns many addresses: by
//! their /64 (one machine or home LAN) for polls and the other requests, by their /56 (what
//! an ISP commonly gives one subscriber; a /48 holds 256 of them) for joins, the one request
//! that makes state in Redis, so that minting fresh /64s buys no fresh joins.
//!
//! Memory stays bounded: a background task drops, every [`SWEEP_EVERY`], the keys whose limit
//! has fully recovered (they behave exactly like keys never seen), so the map holds only the
//! clients active in the last minutes.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::Request;

use super::client::{client_addr, network};
use crate::config::Settings;

/// How often recovered keys are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A limit per key; `off` lets everything through (for load tests from one address).
#[derive(Clone)]
pub struct KeyedLimit<K: Hash + Eq + Clone + Send + Sync + 'static> {
    limiter: Option<Arc<DefaultKeyedRateLimiter<K>>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedLimit<K> {
    /// A limit of `quota`; starts its sweeper when a Tokio runtime is at hand.
    pub fn new(quota: Quota) -> Self {
        let limiter = Arc::new(RateLimiter::keyed(quota));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweep(Arc::downgrade(&limiter)));
        }
        KeyedLimit { limiter: Some(limiter) }
    }

    /// `n` at once, then refilled evenly over a minute; `0` is no limit.
    pub fn per_minute(n: u32) -> Self {
        match NonZeroU32::new(n) {
            Some(n) => Self::new(Quota::per_minute(n)),
            None => KeyedLimit { limiter: None },
        }
    }

    /// Counts one request of `key`; `Err` carries how long until the next one is allowed.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Keys remembered right now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

/// Drops the keys whose limit has fully recovered: what the sweeper does every [`SWEEP_EVERY`].
fn forget_recovered<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>) {
    limiter.retain_recent();
    limiter.shrink_to_fit();
}

/// Runs until the limiter is dropped with the app.
async fn sweep<K: Hash + Eq + Clone + Send + Sync + 'static>(limiter: Weak<DefaultKeyedRateLimiter<K>>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(l) = limiter.upgrade() else { return };
        forget_recovered(&l);
    }
}

/// The IPv6 network polls and most requests are counted by.
pub const HOST_PREFIX: u8 = 64;
/// The IPv6 network joins are counted by.
const SUBSCRIBER_PREFIX: u8 = 56;

/// The key of a client address for a limit counting IPv6 clients by their `/v6_prefix`.
pub fn key_of(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(_) => network(ip, v6_prefix),
        v4 => v4,
    }
}

/// The buyer's limits, one set per running app.
#[derive(Clone)]
pub struct BuyerLimits {
    join: KeyedLimit<IpAddr>,
    poll: KeyedLimit<IpAddr>,
    request: KeyedLimit<IpAddr>,
}

impl BuyerLimits {
    pub fn from_settings(s: &Settings) -> Self {
        BuyerLimits {
            join: KeyedLimit::per_minute(s.rate_join_per_min),
            poll: KeyedLimit::per_minute(s.rate_poll_per_min),
            request: KeyedLimit::per_minute(s.rate_buyer_per_min),
        }
    }

    /// One join of this request's client.
    pub fn check_join(&self, req: &Request) -> Result<(), Duration> {
        check(&self.join, req, SUBSCRIBER_PREFIX)
    }

    /// One poll of this request's client.
    pub fn check_poll(&self, req: &Request) -> Result<(), Duration> {
        check(&self.poll, req, HOST_PREFIX)
    }

    /// One other buyer request (pages, checkout, giving up, the API's reads and orders) of
    /// this request's client.
    pub fn check_request(&self, req: &Request) -> Result<(), Duration> {
        check(&self.request, req, HOST_PREFIX)
    }
}

fn check(limit: &KeyedLimit<IpAddr>, req: &Request, v6_prefix: u8) -> Result<(), Duration> {
    // Without a peer address (not over TCP) there is nobody to count.
    match client_addr(req) {
        Some(ip) => limit.check(&key_of(ip, v6_prefix)),
        None => Ok(()),
    }
}

/// Whole seconds to wait, rounded up, for `Retry-After`.
pub fn retry_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_refusal_with_the_wait() {
        let limit = KeyedLimit::per_minute(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limit.check(&a).is_ok());
        }
        let wait = limit.check(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limit.check(&b).is_ok(), "another client has its own allowance");
    }

    #[test]
    fn zero_is_no_limit() {
        let limit = KeyedLimit::per_minute(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!((0..10_000).all(|_| limit.check(&a).is_ok()));
    }

    #[test]
    fn recovered_keys_are_forgotten() {
        let limit = KeyedLimit::new(Quota::per_second(NonZeroU32::new(1000).unwrap()));
        for i in 0..1000u32 {
            limit.check(&IpAddr::from(i.to_be_bytes())).unwrap();
        }
        assert_eq!(limit.len(), 1000);
        std::thread::sleep(Duration::from_millis(20));
        forget_recovered(limit.limiter.as_ref().unwrap());
        assert_eq!(limit.len(), 0);
    }

    #[test]
    fn joins_count_ipv6_clients_by_their_56() {
        let key = |s: &str| key_of(s.parse().unwrap(), SUBSCRIBER_PREFIX);
        assert_eq!(key("2001:db8:1:2aa::1"), key("2001:db8:1:2bb:ffff::9"));
        assert_ne!(key("2001:db8:1:200::1"), key("2001:db8:1:300::1"));
        assert_eq!(key("10.0.0.1"), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let key = |s: &str| key_of(s.parse().unwrap(), HOST_PREFIX);
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("10.0.0.1"), "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
    }
}
