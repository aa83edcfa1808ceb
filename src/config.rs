//! Configuration, read once from the environment. Every variable has a default that works on
//! a developer machine with Redis and Postgres on their standard local ports.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::web::client::TrustedProxies;

/// The most tickets one order may hold; the database enforces the same bound.
pub const MAX_PER_ORDER_LIMIT: u8 = 6;

#[derive(Debug, thiserror::Error)]
#[error("{name}: {message} (got {value:?})")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    message: String,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// `BOXOFFICE_ADDR`: where the web server listens.
    pub addr: SocketAddr,
    /// `DATABASE_URL`: the Postgres database; created if it does not exist.
    pub database_url: String,
    /// `REDIS_URL`: one Redis server, or a seed node of a cluster.
    pub redis_url: String,
    /// `REDIS_CLUSTER`: `1` to treat `REDIS_URL` as a Redis Cluster.
    pub redis_cluster: bool,
    /// `BOXOFFICE_REDIS_POOL`: Redis connections per app instance.
    pub redis_pool_size: usize,
    /// `REDIS_SENTINELS`: Sentinel nodes (`host:port,...`). When set, the app asks them for the
    /// primary of `REDIS_SENTINEL_SERVICE` and follows it through a failover; `REDIS_URL` then
    /// gives only the credentials and the database index.
    pub redis_sentinels: String,
    /// `REDIS_SENTINEL_SERVICE`: the name Sentinel monitors the primary under.
    pub redis_sentinel_service: String,
    /// `BOXOFFICE_HOLD_SECS`: how long an admitted buyer holds tickets, for new sales.
    pub hold_secs: u32,
    /// `BOXOFFICE_MAX_PER_ORDER`: the most tickets in one order (1..=6).
    pub max_per_order: u8,
    /// `BOXOFFICE_CONFIRM_GRACE_SECS`: how long a checkout may take to write its order to
    /// Postgres before Redis may give its tickets back. Must exceed the Postgres statement
    /// timeout of a checkout.
    pub confirm_grace_secs: u32,
    /// `BOXOFFICE_RECONCILE_SECS`: how often every open sale is synced from Postgres.
    pub reconcile_every: Duration,
    /// `BOXOFFICE_ABANDON_SECS`: a waiting buyer who has not polled for this long (a closed
    /// tab) loses its place when it reaches the head. Must exceed the longest poll interval.
    pub abandon_secs: u32,
    /// `BOXOFFICE_CLAIM_SECS`: a buyer admitted while away holds its tickets this long; the
    /// full hold starts when it shows up. Must exceed the longest poll interval, or a buyer far
    /// back who has just polled could lose a hold it never saw.
    pub claim_secs: u32,
    /// `BOXOFFICE_COOKIE_SECURE`: mark cookies `Secure` (set it when served over TLS).
    pub cookie_secure: bool,
    /// `BOXOFFICE_RATE_JOIN_PER_MIN`: joins per client address and minute (as a burst, then
    /// refilled evenly); 0 turns the limit off.
    pub rate_join_per_min: u32,
    /// `BOXOFFICE_RATE_POLL_PER_MIN`: waiting-room and API polls per client address and minute
    /// (as a burst, then refilled evenly); 0 turns the limit off.
    pub rate_poll_per_min: u32,
    /// `BOXOFFICE_RATE_BUYER_PER_MIN`: every other buyer request (the event list and pages,
    /// checkout, orders, giving up, the API's sale reads) per client address and minute (as a
    /// burst, then refilled evenly); 0 turns the limit off.
    pub rate_buyer_per_min: u32,
    /// `BOXOFFICE_TRUSTED_PROXIES`: comma-separated networks of the reverse proxies whose
    /// `X-Forwarded-For` or `Forwarded` names the client; empty: none.
    pub trusted_proxies: TrustedProxies,
    /// `BOXOFFICE_SIGNUP`: who may make an organizer account in the portal.
    pub signup: SignUp,
    /// `BOXOFFICE_MAX_LIVE_EVENTS`: events one organizer may have that have not ended yet.
    pub max_live_events: u32,
    /// `BOXOFFICE_MAX_SALES_PER_EVENT`: ticket sales one event may have, closed ones included
    /// (each keeps its Redis keys until a day after the event).
    pub max_sales_per_event: u32,
    /// `BOXOFFICE_SECRET`: the key that signs the order links sent by mail. Unset, each
    /// process makes a random one (and says so at start): links then stop working after a
    /// restart and on other instances.
    pub secret: Secret,
    /// Whether `secret` was made up because `BOXOFFICE_SECRET` was unset.
    pub secret_generated: bool,
    /// `BOXOFFICE_PUBLIC_URL`: where buyers reach the shop, for the links in mails.
    pub public_url: String,
    /// `SMTP_URL`: the mail server (`smtp://host:port`, `smtps://` for TLS, STARTTLS with
    /// `?tls=required`); unset, mail is written to the log instead.
    pub smtp_url: Option<Secret>,
    /// `MAIL_FROM`: the sender of the shop's mail.
    pub mail_from: String,
    /// `BOXOFFICE_MAIL_RETRY_SECS`: the wait before a failed mail is tried again, doubled per
    /// attempt up to an hour.
    pub mail_retry_secs: u32,
}

/// A value that must not reach a log: `Debug` prints stars.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// 256 random bits from the operating system, base64url.
    fn random() -> Secret {
        use base64::Engine;
        let mut bits = [0u8; 32];
        getrandom::fill(&mut bits).expect("the operating system's random source is available");
        Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bits))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Who may make an organizer account at `/admin/sign-up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignUp {
    /// Nobody: accounts come from `boxoffice organizer create` alone.
    Closed,
    /// Whoever holds a one-time invite link that an organizer made.
    Invite,
    /// Anyone.
    Open,
}

impl FromStr for SignUp {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "closed" => Ok(SignUp::Closed),
            "invite" => Ok(SignUp::Invite),
            "open" => Ok(SignUp::Open),
            _ => Err(()),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "postgres://postgres@127.0.0.1:5432/boxoffice".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster: false,
            redis_pool_size: 4,
            redis_sentinels: String::new(),
            redis_sentinel_service: "boxoffice".into(),
            hold_secs: 480,
            max_per_order: MAX_PER_ORDER_LIMIT,
            confirm_grace_secs: 30,
            reconcile_every: Duration::from_secs(10),
            abandon_secs: 90,
            claim_secs: 90,
            cookie_secure: false,
            // A buyer joins a handful of times and polls every 2 s or slower; these leave
            // room for a few dozen buyers behind one shared address (an office, a carrier NAT).
            rate_join_per_min: 60,
            rate_poll_per_min: 600,
            signup: SignUp::Invite,
            // Generous for a promoter, small enough that one account cannot crowd the home
            // page or fill Redis.
            max_live_events: 50,
            max_sales_per_event: 10,
            // A buyer's whole path (list, event page, checkout, a few invalid submits, the
            // order page) is a dozen requests; this leaves room for reloads and a shared address.
            rate_buyer_per_min: 300,
            trusted_proxies: TrustedProxies::default(),
            secret: Secret::random(),
            secret_generated: true,
            public_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            mail_from: "boxoffice <tickets@localhost>".into(),
            mail_retry_secs: 30,
        }
    }
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so that tests need not touch the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Settings::default();
        let s = Settings {
            addr: parse(&lookup, "BOXOFFICE_ADDR", d.addr)?,
            database_url: lookup("DATABASE_URL").unwrap_or(d.database_url),
            redis_url: lookup("REDIS_URL").unwrap_or(d.redis_url),
            redis_cluster: flag(&lookup, "REDIS_CLUSTER")?,
            redis_pool_size: parse(&lookup, "BOXOFFICE_REDIS_POOL", d.redis_pool_size)?,
            redis_sentinels: lookup("REDIS_SENTINELS").unwrap_or(d.redis_sentinels),
            redis_sentinel_service: lookup("REDIS_SENTINEL_SERVICE").unwrap_or(d.redis_sentinel_service),
            hold_secs: parse(&lookup, "BOXOFFICE_HOLD_SECS", d.hold_secs)?,
            max_per_order: parse(&lookup, "BOXOFFICE_MAX_PER_ORDER", d.max_per_order)?,
            confirm_grace_secs: parse(&lookup, "BOXOFFICE_CONFIRM_GRACE_SECS", d.confirm_grace_secs)?,
            reconcile_every: Duration::from_secs(parse(
                &lookup,
                "BOXOFFICE_RECONCILE_SECS",
                d.reconcile_every.as_secs(),
            )?),
            abandon_secs: parse(&lookup, "BOXOFFICE_ABANDON_SECS", d.abandon_secs)?,
            claim_secs: parse(&lookup, "BOXOFFICE_CLAIM_SECS", d.claim_secs)?,
            cookie_secure: flag(&lookup, "BOXOFFICE_COOKIE_SECURE")?,
            rate_join_per_min: parse(&lookup, "BOXOFFICE_RATE_JOIN_PER_MIN", d.rate_join_per_min)?,
            rate_poll_per_min: parse(&lookup, "BOXOFFICE_RATE_POLL_PER_MIN", d.rate_poll_per_min)?,
            signup: parse(&lookup, "BOXOFFICE_SIGNUP", d.signup)?,
            max_live_events: parse(&lookup, "BOXOFFICE_MAX_LIVE_EVENTS", d.max_live_events)?,
            max_sales_per_event: parse(&lookup, "BOXOFFICE_MAX_SALES_PER_EVENT", d.max_sales_per_event)?,
            rate_buyer_per_min: parse(&lookup, "BOXOFFICE_RATE_BUYER_PER_MIN", d.rate_buyer_per_min)?,
            trusted_proxies: match lookup("BOXOFFICE_TRUSTED_PROXIES") {
                None => d.trusted_proxies,
                Some(value) => value.parse().map_err(|message| ConfigError {
                    name: "BOXOFFICE_TRUSTED_PROXIES",
                    value,
                    message,
                })?,
            },
            secret_generated: set(&lookup, "BOXOFFICE_SECRET").is_none(),
            secret: set(&lookup, "BOXOFFICE_SECRET").map(Secret).unwrap_or(d.secret),
            public_url: set(&lookup, "BOXOFFICE_PUBLIC_URL")
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or(d.public_url),
            smtp_url: set(&lookup, "SMTP_URL").map(Secret),
            mail_from: set(&lookup, "MAIL_FROM").unwrap_or(d.mail_from),
            mail_retry_secs: parse(&lookup, "BOXOFFICE_MAIL_RETRY_SECS", d.mail_retry_secs)?,
        };
        check(
            s.hold_secs >= 1 && s.hold_secs <= 3600,
            "BOXOFFICE_HOLD_SECS",
            s.hold_secs,
            "must be 1..=3600",
        )?;
        check(
            (1..=MAX_PER_ORDER_LIMIT).contains(&s.max_per_order),
            "BOXOFFICE_MAX_PER_ORDER",
            s.max_per_order,
            "must be 1..=6",
        )?;
        check(
            s.redis_pool_size >= 1,
            "BOXOFFICE_REDIS_POOL",
            s.redis_pool_size,
            "must be at least 1",
        )?;
        // Sentinel names one primary; a cluster has many. The client can follow only one kind.
        check(
            s.redis_sentinels.trim().is_empty() || !(s.redis_cluster || s.redis_url.contains(',')),
            "REDIS_SENTINELS",
            &s.redis_sentinels,
            "cannot be used with a Redis Cluster (REDIS_CLUSTER=1 or a list in REDIS_URL)",
        )?;
        check(
            !s.redis_sentinel_service.trim().is_empty(),
            "REDIS_SENTINEL_SERVICE",
            "",
            "must not be empty",
        )?;
        check(
            s.confirm_grace_secs >= 15,
            "BOXOFFICE_CONFIRM_GRACE_SECS",
            s.confirm_grace_secs,
            "must be at least 15",
        )?;
        check(
            !s.reconcile_every.is_zero(),
            "BOXOFFICE_RECONCILE_SECS",
            0,
            "must be at least 1",
        )?;
        // A live buyer far back polls once a minute: shorter would drop buyers still there.
        check(
            s.abandon_secs >= 60,
            "BOXOFFICE_ABANDON_SECS",
            s.abandon_secs,
            "must be at least 60",
        )?;
        check(
            s.claim_secs >= 60,
            "BOXOFFICE_CLAIM_SECS",
            s.claim_secs,
            "must be at least 60",
        )?;
        check(
            s.max_live_events >= 1,
            "BOXOFFICE_MAX_LIVE_EVENTS",
            s.max_live_events,
            "must be at least 1",
        )?;
        check(
            s.max_sales_per_event >= 1,
            "BOXOFFICE_MAX_SALES_PER_EVENT",
            s.max_sales_per_event,
            "must be at least 1",
        )?;
        // A short key would make the signed links guessable.
        check(
            s.secret.expose().len() >= 32,
            "BOXOFFICE_SECRET",
            "(hidden)",
            "must be at least 32 characters",
        )?;
        check(
            s.mail_from.parse::<lettre::message::Mailbox>().is_ok(),
            "MAIL_FROM",
            &s.mail_from,
            "must be an address such as `boxoffice <tickets@example.com>`",
        )?;
        check(
            s.mail_retry_secs >= 1,
            "BOXOFFICE_MAIL_RETRY_SECS",
            s.mail_retry_secs,
            "must be at least 1",
        )?;
        Ok(s)
    }

    /// The longest each Postgres statement of a checkout may run. A checkout waits for a
    /// connection (at most 3 s) and runs five statements (the timeouts, the look for an earlier
    /// order, the event's seats, the insert, the commit), so a seventh of the confirm grace
    /// each keeps the whole inside it: a confirming hold past its deadline has certainly not
    /// committed.
    pub fn checkout_statement_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.confirm_grace_secs) * 1000 / 7)
    }
}

fn parse<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError {
            name,
            message: "cannot be parsed".into(),
            value,
        }),
    }
}

/// A variable that is set to something: empty counts as unset (as compose files pass them).
fn set(lookup: &impl Fn(&str) -> Option<String>, name: &'static str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(other) => Err(ConfigError {
            name,
            value: other.into(),
            message: "must be 0 or 1".into(),
        }),
    }
}

fn check(ok: bool, name: &'static str, value: impl ToString, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            name,
            value: value.to_string(),
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_fit_a_local_machine() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.hold_secs, 480);
        assert_eq!(s.max_per_order, 6);
        assert_eq!(s.database_url, "postgres://postgres@127.0.0.1:5432/boxoffice");
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        let err = settings(&[("BOXOFFICE_HOLD_SECS", "abc")]).unwrap_err();
        assert!(err.to_string().starts_with("BOXOFFICE_HOLD_SECS"), "{err}");
        assert!(settings(&[("BOXOFFICE_MAX_PER_ORDER", "7")]).is_err());
        assert!(settings(&[("BOXOFFICE_HOLD_SECS", "0")]).is_err());
        assert!(settings(&[("REDIS_CLUSTER", "yes")]).is_err());
        assert!(settings(&[("REDIS_CLUSTER", "1")]).unwrap().redis_cluster);
        assert!(settings(&[("BOXOFFICE_RATE_POLL_PER_MIN", "-1")]).is_err());
        assert!(settings(&[("BOXOFFICE_TRUSTED_PROXIES", "10.0.0.0/40")]).is_err());
        assert!(settings(&[("BOXOFFICE_TRUSTED_PROXIES", "10.0.0.0/8,::1")]).is_ok());
        assert!(settings(&[("REDIS_SENTINELS", "10.0.0.1:26379"), ("REDIS_CLUSTER", "1")]).is_err());
        assert!(settings(&[("REDIS_SENTINEL_SERVICE", " ")]).is_err());
        assert_eq!(
            settings(&[("BOXOFFICE_RATE_JOIN_PER_MIN", "0")])
                .unwrap()
                .rate_join_per_min,
            0
        );
        assert_eq!(settings(&[]).unwrap().signup, SignUp::Invite);
        assert_eq!(settings(&[("BOXOFFICE_SIGNUP", "open")]).unwrap().signup, SignUp::Open);
        assert!(settings(&[("BOXOFFICE_SIGNUP", "yes")]).is_err());
        assert!(settings(&[("BOXOFFICE_MAX_LIVE_EVENTS", "0")]).is_err());
        assert!(settings(&[("BOXOFFICE_SECRET", "short")]).is_err());
        assert!(settings(&[("MAIL_FROM", "not an address")]).is_err());
    }

    #[test]
    fn the_secret_never_prints() {
        let s = settings(&[("BOXOFFICE_SECRET", "a-long-enough-secret-of-32-characters")]).unwrap();
        assert!(!s.secret_generated);
        assert!(!format!("{s:?}").contains("a-long-enough"));
        assert!(settings(&[]).unwrap().secret_generated);
        assert!(
            settings(&[("BOXOFFICE_SECRET", ""), ("SMTP_URL", "")])
                .unwrap()
                .secret_generated
        );
    }
}
