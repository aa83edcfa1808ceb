//! Configuration, read once at start: each setting is an environment variable and, for a
//! one-off run, a flag of the same meaning (`--hold-secs 300` wins over `BOXOFFICE_HOLD_SECS`).
//! Every one has a default that works on a developer machine with Redis and Postgres on their
//! standard local ports; `boxoffice --help` lists them all.
//!
//! To add a setting, add one field with its `#[arg]` block: the variable, the default (parsed
//! by the same parser as a given value, so it is checked too) and a parser from the bottom of
//! this file when the value has bounds. A setting that may carry a password (a URL, a key)
//! also gets `hide_env_values = true`, so that `--help` does not print its value.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::web::client::TrustedProxies;

/// The most tickets one order may hold; the database enforces the same bound.
pub const MAX_PER_ORDER_LIMIT: u8 = 6;

/// Settings that are each valid alone but not together.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message} (got {value:?})")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    message: String,
}

#[derive(Clone, Debug, Parser)]
#[command(name = "boxoffice", next_help_heading = "Settings")]
pub struct Settings {
    /// Where the web server listens.
    #[arg(long, env = "BOXOFFICE_ADDR", default_value = "127.0.0.1:8080", value_parser = Checked(number::<SocketAddr>))]
    pub addr: SocketAddr,

    /// The Postgres database; created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/boxoffice",
        hide_env_values = true
    )]
    pub database_url: String,

    /// One Redis server; a comma-separated list of nodes is a Redis Cluster.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// `1`: the single `REDIS_URL` is a seed node of a Redis Cluster.
    #[arg(long, env = "REDIS_CLUSTER", default_value = "0", action = ArgAction::Set, value_parser = Checked(flag))]
    pub redis_cluster: bool,

    /// A Redis of their own for the buyers' and organizers' sessions (one URL, or a list of a
    /// cluster's nodes); empty: the sessions live beside the sales in `REDIS_URL`'s Redis.
    ///
    /// A page session is a key in the store, a record of about 200 bytes; a big crowd of
    /// browsers puts as many there as it has buyers. Keeping them apart leaves the sales'
    /// Redis (one core, the shop's bottleneck) its memory and CPU for the queue alone.
    #[arg(
        long,
        env = "BOXOFFICE_SESSION_REDIS_URL",
        default_value = "",
        hide_env_values = true
    )]
    pub session_redis_url: String,

    /// Redis connections per app instance.
    #[arg(long, env = "BOXOFFICE_REDIS_POOL", default_value = "4", value_parser = Checked(at_least::<usize, 1>))]
    pub redis_pool_size: usize,

    /// Sentinel nodes (`host:port,...`; port 26379 when left out).
    ///
    /// When set, the app asks them for the primary of `REDIS_SENTINEL_SERVICE` and follows it
    /// through a failover; `REDIS_URL` then gives only the credentials and the database index.
    /// Not with a cluster.
    #[arg(long, env = "REDIS_SENTINELS", default_value = "")]
    pub redis_sentinels: String,

    /// The name the Sentinels monitor the primary under.
    #[arg(long, env = "REDIS_SENTINEL_SERVICE", default_value = "boxoffice", value_parser = Checked(not_blank))]
    pub redis_sentinel_service: String,

    /// How long an admitted buyer holds tickets, for new sales (1..=3600 seconds).
    #[arg(long, env = "BOXOFFICE_HOLD_SECS", default_value = "480", value_parser = Checked(hold_secs))]
    pub hold_secs: u32,

    /// The most tickets in one order (1..=6).
    #[arg(long, env = "BOXOFFICE_MAX_PER_ORDER", default_value = "6", value_parser = Checked(max_per_order))]
    pub max_per_order: u8,

    /// How long a checkout may take to write its order to Postgres before Redis may give its
    /// tickets back (at least 15 seconds).
    ///
    /// Each Postgres statement of a checkout times out at a seventh of it, so a confirming hold
    /// past its deadline has certainly not committed.
    #[arg(long, env = "BOXOFFICE_CONFIRM_GRACE_SECS", default_value = "30", value_parser = Checked(at_least::<u32, 15>))]
    pub confirm_grace_secs: u32,

    /// How often every open sale is reconciled with Postgres, in seconds (at least 1).
    #[arg(long = "reconcile-secs", value_name = "SECS", env = "BOXOFFICE_RECONCILE_SECS", default_value = "10", value_parser = Checked(seconds))]
    pub reconcile_every: Duration,

    /// How often every live sale's figures are sampled for the dashboard's charts, in seconds
    /// (at least 1). One instance takes each turn; all of them must use the same interval.
    #[arg(long = "sample-secs", value_name = "SECS", env = "BOXOFFICE_SAMPLE_SECS", default_value = "10", value_parser = Checked(seconds))]
    pub sample_every: Duration,

    /// A waiting buyer who has not polled for this long (a closed tab) loses its place when it
    /// reaches the head (at least 60 seconds).
    ///
    /// A live buyer far back polls once a minute: shorter would drop buyers still there.
    #[arg(long, env = "BOXOFFICE_ABANDON_SECS", default_value = "90", value_parser = Checked(at_least::<u32, 60>))]
    pub abandon_secs: u32,

    /// A buyer admitted while away holds its tickets this long; the full hold starts when it
    /// shows up (at least 60 seconds).
    ///
    /// Shorter than the longest poll interval, a buyer far back who has just polled could lose
    /// a hold it never saw.
    #[arg(long, env = "BOXOFFICE_CLAIM_SECS", default_value = "90", value_parser = Checked(at_least::<u32, 60>))]
    pub claim_secs: u32,

    /// `1` when served over TLS: the session cookie becomes `__Host-bo_session` and `Secure`.
    #[arg(long, env = "BOXOFFICE_COOKIE_SECURE", default_value = "0", action = ArgAction::Set, value_parser = Checked(flag))]
    pub cookie_secure: bool,

    /// Joins per client address and minute (as a burst, then refilled evenly); 0 turns the
    /// limit off.
    ///
    /// A buyer joins a handful of times; the default leaves room for a few dozen buyers behind
    /// one shared address (an office, a carrier NAT).
    #[arg(long, env = "BOXOFFICE_RATE_JOIN_PER_MIN", default_value = "60", value_parser = Checked(number::<u32>))]
    pub rate_join_per_min: u32,

    /// Waiting-room and API polls per client address and minute (as a burst, then refilled
    /// evenly); 0 turns the limit off.
    ///
    /// A buyer polls every 2 s or slower; the default leaves room for a shared address.
    #[arg(long, env = "BOXOFFICE_RATE_POLL_PER_MIN", default_value = "600", value_parser = Checked(number::<u32>))]
    pub rate_poll_per_min: u32,

    /// Every other buyer request (the event list and pages, checkout, orders, giving up, the
    /// API's sale reads) per client address and minute (as a burst, then refilled evenly); 0
    /// turns the limit off.
    ///
    /// A buyer's whole path (list, event page, checkout, a few invalid submits, the order page)
    /// is a dozen requests; the default leaves room for reloads and a shared address.
    #[arg(long, env = "BOXOFFICE_RATE_BUYER_PER_MIN", default_value = "300", value_parser = Checked(number::<u32>))]
    pub rate_buyer_per_min: u32,

    /// Join requests per minute to one sale from which each join must carry a solved proof of
    /// work (see "A price for bots" in the README); 0: never, for quiet shops.
    #[arg(long, env = "BOXOFFICE_POW_JOINS_PER_MIN", default_value = "0", value_parser = Checked(number::<u32>))]
    pub pow_joins_per_min: u32,

    /// The proof of work's largest answer at that rate, in SHA-256 computations (a client needs
    /// about three quarters of it on average); it doubles with each doubling of the rate.
    #[arg(long, env = "BOXOFFICE_POW_MIN_COUNTER", default_value = "20000", value_parser = Checked(at_least::<u32, 1>))]
    pub pow_min_counter: u32,

    /// The proof of work's largest answer at any rate.
    #[arg(long, env = "BOXOFFICE_POW_MAX_COUNTER", default_value = "500000", value_parser = Checked(at_least::<u32, 1>))]
    pub pow_max_counter: u32,

    /// Comma-separated networks (`10.0.0.0/8,2001:db8::/32`; a bare address is one host) of the
    /// reverse proxies whose `X-Forwarded-For` or `Forwarded` names the client; empty: none.
    #[arg(long, env = "BOXOFFICE_TRUSTED_PROXIES", default_value = "", value_parser = Checked(proxies))]
    pub trusted_proxies: TrustedProxies,

    /// Where the pre-queue's draws take their public randomness: `drand` (drand's quicknet
    /// from `BOXOFFICE_DRAND_URL`, each round's BLS signature checked) or `local` (rounds signed
    /// with a key derived from `BOXOFFICE_SECRET`, one a second: for tests and machines without
    /// the internet; it proves nothing to a buyer, who must be told to trust its key).
    #[arg(long, env = "BOXOFFICE_BEACON", default_value = "drand", value_enum)]
    pub beacon: BeaconSource,

    /// The drand relay the `drand` beacon asks; any relay serves the same signed rounds.
    #[arg(long, env = "BOXOFFICE_DRAND_URL", default_value = "https://api.drand.sh", value_parser = Checked(public_url))]
    pub drand_url: String,

    /// Who may make an organizer account at `/admin/sign-up`.
    #[arg(long, env = "BOXOFFICE_SIGNUP", default_value = "invite", value_enum)]
    pub signup: SignUp,

    /// Events one organizer may have that have not ended yet (at least 1).
    ///
    /// Generous for a promoter, small enough that one account cannot crowd the home page or
    /// fill Redis.
    #[arg(long, env = "BOXOFFICE_MAX_LIVE_EVENTS", default_value = "50", value_parser = Checked(at_least::<u32, 1>))]
    pub max_live_events: u32,

    /// Ticket sales one event may have, closed ones included (each keeps its Redis keys until a
    /// day after the event; at least 1).
    #[arg(long, env = "BOXOFFICE_MAX_SALES_PER_EVENT", default_value = "10", value_parser = Checked(at_least::<u32, 1>))]
    pub max_sales_per_event: u32,

    /// The key that signs the order links sent by mail and the waiting buyers' places in line
    /// (at least 32 characters).
    ///
    /// Unset or empty, each process makes a random one and says so at start: links then stop
    /// working after a restart and on other instances, and a place made by another instance
    /// is checked by Redis instead of in-process.
    #[arg(long, env = "BOXOFFICE_SECRET", default_value = "", hide_default_value = true, hide_env_values = true, value_parser = Checked(signing_key))]
    pub secret: Secret,

    /// Where buyers reach the shop, for the links in mails.
    #[arg(long, env = "BOXOFFICE_PUBLIC_URL", default_value = DEFAULT_PUBLIC_URL, value_parser = Checked(public_url))]
    pub public_url: String,

    /// The mail server (`smtp://host:port`, `smtps://` for TLS, STARTTLS with `?tls=required`);
    /// unset or empty, mail is written to the log instead.
    #[arg(long, env = "SMTP_URL", default_value = "", hide_default_value = true, hide_env_values = true, value_parser = Checked(optional_secret))]
    pub smtp_url: OptionalSecret,

    /// The sender of the shop's mail.
    #[arg(long, env = "MAIL_FROM", default_value = "boxoffice <tickets@localhost>", value_parser = Checked(mailbox))]
    pub mail_from: String,

    /// The wait before a failed mail is tried again, doubled per attempt up to an hour
    /// (seconds, at least 1).
    #[arg(long, env = "BOXOFFICE_MAIL_RETRY_SECS", default_value = "30", value_parser = Checked(at_least::<u32, 1>))]
    pub mail_retry_secs: u32,

    /// Stripe's secret API key. Set, a checkout's order waits for its payment through Stripe
    /// (then `STRIPE_PUBLISHABLE_KEY` and `STRIPE_WEBHOOK_SECRET` are needed too); unset or
    /// empty, orders are confirmed at once without payment.
    #[arg(long, env = "STRIPE_SECRET_KEY", default_value = "", hide_default_value = true, hide_env_values = true, value_parser = Checked(optional_secret))]
    pub stripe_secret_key: OptionalSecret,

    /// Stripe's publishable key, which the order page gives Stripe.js.
    #[arg(long, env = "STRIPE_PUBLISHABLE_KEY", default_value = "")]
    pub stripe_publishable_key: String,

    /// The signing secret of the Stripe webhook endpoint (`/webhooks/stripe`).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", default_value = "", hide_default_value = true, hide_env_values = true, value_parser = Checked(optional_secret))]
    pub stripe_webhook_secret: OptionalSecret,

    /// Where Stripe's API answers (a stand-in for tests).
    #[arg(long, env = "STRIPE_API_BASE", default_value = "https://api.stripe.com", value_parser = Checked(http_url))]
    pub stripe_api_base: String,

    /// Where the order page loads Stripe.js from (a stand-in for tests); its origin is the one
    /// the page's CSP allows.
    #[arg(long, env = "STRIPE_JS_URL", default_value = "https://js.stripe.com/v3/", value_parser = Checked(http_url))]
    pub stripe_js_url: String,

    /// How long a buyer has to pay an order before it is cancelled and its tickets go back to
    /// the sale (seconds, at least 1; with Stripe only).
    #[arg(long, env = "BOXOFFICE_PAYMENT_SECS", default_value = "600", value_parser = Checked(at_least::<u32, 1>))]
    pub payment_secs: u32,
}

/// Where the shop answers on a developer machine.
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// A secret that may be absent. A plain `Option` would make the setting optional to clap,
/// which could then not read an empty variable (as compose files pass them) as absent.
pub type OptionalSecret = Option<Secret>;

/// A value that must not reach a log: `Debug` prints stars.
#[derive(Clone)]
pub struct Secret {
    value: String,
    /// Made up by the process because none was given.
    generated: bool,
}

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret {
            value,
            generated: false,
        }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether this process made the secret up because none was given.
    pub fn was_generated(&self) -> bool {
        self.generated
    }

    /// 256 random bits from the operating system, base64url.
    fn random() -> Secret {
        use base64::Engine;
        let mut bits = [0u8; 32];
        getrandom::fill(&mut bits).expect("the operating system's random source is available");
        Secret {
            value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bits),
            generated: true,
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Who may make an organizer account at `/admin/sign-up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignUp {
    /// Nobody: accounts come from `boxoffice organizer create` alone.
    Closed,
    /// Whoever holds a one-time invite link that an organizer made.
    Invite,
    /// Anyone.
    Open,
}

/// Where the draws' public randomness comes from (see `crate::draw::beacon`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BeaconSource {
    /// drand's quicknet over HTTP.
    Drand,
    /// A local beacon keyed from `BOXOFFICE_SECRET`.
    Local,
}

impl Default for Settings {
    /// The defaults written on the fields above, whatever the environment holds.
    fn default() -> Self {
        let matches = without_env(Settings::command())
            .try_get_matches_from(["boxoffice"])
            .expect("the defaults are valid settings");
        Settings::from_arg_matches(&matches).expect("the defaults are valid settings")
    }
}

impl Settings {
    /// The settings from the environment alone, checked: for programs that run the app without
    /// `boxoffice`'s command line, such as the benchmarks.
    pub fn from_env() -> Result<Self, clap::Error> {
        let settings = Settings::try_parse_from(["boxoffice"])?;
        settings
            .validate()
            .map_err(|e| Settings::command().error(clap::error::ErrorKind::ArgumentConflict, e))?;
        Ok(settings)
    }

    /// Checks what no setting can check alone; `boxoffice` refuses to start on an error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Sentinel names one primary; a cluster has many. The client can follow only one kind.
        if !self.redis_sentinels.trim().is_empty() && (self.redis_cluster || self.redis_url.contains(',')) {
            return Err(ConfigError {
                name: "REDIS_SENTINELS",
                value: self.redis_sentinels.clone(),
                message: "cannot be used with a Redis Cluster (REDIS_CLUSTER=1 or a list in REDIS_URL)".into(),
            });
        }
        if self.pow_max_counter < self.pow_min_counter {
            return Err(ConfigError {
                name: "BOXOFFICE_POW_MAX_COUNTER",
                value: self.pow_max_counter.to_string(),
                message: format!("must be at least BOXOFFICE_POW_MIN_COUNTER ({})", self.pow_min_counter),
            });
        }
        Ok(())
    }

    /// The draws' beacon, as configured.
    pub fn beacon(&self) -> std::sync::Arc<dyn crate::draw::beacon::Beacon> {
        use crate::draw::beacon::{DrandHttp, LocalBeacon};
        match self.beacon {
            BeaconSource::Drand => std::sync::Arc::new(DrandHttp::new(reqwest::Client::new(), &self.drand_url)),
            BeaconSource::Local => std::sync::Arc::new(LocalBeacon::from_secret(&self.secret)),
        }
    }

    /// The join proof of work's settings.
    pub fn pow(&self) -> crate::pow::PowSettings {
        crate::pow::PowSettings {
            joins_per_min: self.pow_joins_per_min,
            min_counter: self.pow_min_counter,
            max_counter: self.pow_max_counter,
        }
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

/// `command` reading no environment variable: only its flags and defaults.
fn without_env(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| arg.env(None::<&str>))
}

/// A setting's parser whose error names the variable and the flag and shows the value, as
/// `BOXOFFICE_HOLD_SECS (--hold-secs): must be 1..=3600 (got "0")`.
#[derive(Clone, Copy)]
struct Checked<T>(fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.0)(&text).map_err(|message| {
            let name = match arg {
                Some(arg) => match (arg.get_env(), arg.get_long()) {
                    (Some(env), Some(long)) => format!("{} (--{long})", env.to_string_lossy()),
                    _ => arg.to_string(),
                },
                None => "a setting".into(),
            };
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{name}: {message} (got {text:?})\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// A value of `T`, surrounding whitespace ignored.
fn number<T: FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse().map_err(|_| "cannot be parsed".to_string())
}

fn at_least<T: FromStr + PartialOrd + From<u8>, const MIN: u8>(s: &str) -> Result<T, String> {
    let n: T = number(s)?;
    if n >= T::from(MIN) {
        Ok(n)
    } else {
        Err(format!("must be at least {MIN}"))
    }
}

fn hold_secs(s: &str) -> Result<u32, String> {
    Some(number(s)?)
        .filter(|n| (1..=3600).contains(n))
        .ok_or_else(|| "must be 1..=3600".into())
}

fn max_per_order(s: &str) -> Result<u8, String> {
    Some(number(s)?)
        .filter(|n| (1..=MAX_PER_ORDER_LIMIT).contains(n))
        .ok_or_else(|| format!("must be 1..={MAX_PER_ORDER_LIMIT}"))
}

/// Whole seconds, at least one.
fn seconds(s: &str) -> Result<Duration, String> {
    at_least::<u64, 1>(s).map(Duration::from_secs)
}

/// `1` or `true` for on; `0`, `false` or nothing for off.
fn flag(s: &str) -> Result<bool, String> {
    match s.trim() {
        "" | "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        _ => Err("must be 0 or 1".into()),
    }
}

fn not_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_string())
    }
}

/// A key long enough that the signed links cannot be guessed; empty: a random one.
fn signing_key(s: &str) -> Result<Secret, String> {
    match s.trim() {
        "" => Ok(Secret::random()),
        key if key.len() >= 32 => Ok(Secret::new(key.to_string())),
        _ => Err("must be at least 32 characters".into()),
    }
}

fn optional_secret(s: &str) -> Result<OptionalSecret, String> {
    Ok(Some(s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| Secret::new(s.to_string())))
}

/// An http(s) URL, as given; printable ASCII without the characters that would end it in a
/// Content-Security-Policy (where its origin goes).
fn http_url(s: &str) -> Result<String, String> {
    let url = s.trim();
    let plain = url
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '"' | '\''));
    if plain && (url.starts_with("http://") || url.starts_with("https://")) {
        Ok(url.to_string())
    } else {
        Err("must start with http:// or https://".into())
    }
}

/// The links in mails are this URL followed by a path: no trailing slash.
fn public_url(s: &str) -> Result<String, String> {
    match s.trim().trim_end_matches('/') {
        "" => Ok(DEFAULT_PUBLIC_URL.into()),
        url if url.starts_with("http://") || url.starts_with("https://") => Ok(url.to_string()),
        _ => Err("must start with http:// or https://".into()),
    }
}

fn mailbox(s: &str) -> Result<String, String> {
    s.trim()
        .parse::<lettre::message::Mailbox>()
        .map(|_| s.trim().to_string())
        .map_err(|_| "must be an address such as `boxoffice <tickets@example.com>`".into())
}

fn proxies(s: &str) -> Result<TrustedProxies, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings with these variables set and no other. Each is given as the flag that
    /// reads it, which wins over the process environment; the other settings read none.
    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let given = |arg: &clap::Arg| vars.iter().find(|(name, _)| arg.get_env() == Some(OsStr::new(name)));
        let mut args = vec!["boxoffice".to_string()];
        for (name, value) in vars {
            let command = Settings::command();
            let arg = command
                .get_arguments()
                .find(|arg| given(arg).is_some_and(|(n, _)| n == name))
                .unwrap_or_else(|| panic!("no setting reads {name}"));
            args.push(format!("--{}={value}", arg.get_long().unwrap()));
        }
        let command = Settings::command().mut_args(|arg| {
            if given(&arg).is_some() {
                arg
            } else {
                arg.env(None::<&str>)
            }
        });
        let matches = command.try_get_matches_from(args).map_err(|e| e.to_string())?;
        let s = Settings::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        s.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn defaults_fit_a_local_machine() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.hold_secs, 480);
        assert_eq!(s.max_per_order, 6);
        assert_eq!(s.database_url, "postgres://postgres@127.0.0.1:5432/boxoffice");
        assert_eq!(s.reconcile_every, Duration::from_secs(10));
        assert_eq!(s.sample_every, Duration::from_secs(10));
        assert_eq!(s.trusted_proxies, TrustedProxies::default());
        assert_eq!(Settings::default().redis_sentinel_service, "boxoffice");
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        let err = settings(&[("BOXOFFICE_HOLD_SECS", "abc")]).unwrap_err();
        assert!(
            err.contains("BOXOFFICE_HOLD_SECS (--hold-secs): cannot be parsed"),
            "{err}"
        );
        let err = settings(&[("BOXOFFICE_HOLD_SECS", "0")]).unwrap_err();
        assert!(
            err.contains("BOXOFFICE_HOLD_SECS (--hold-secs): must be 1..=3600 (got \"0\")"),
            "{err}"
        );
        assert_eq!(settings(&[("BOXOFFICE_HOLD_SECS", " 300 ")]).unwrap().hold_secs, 300);
        assert!(settings(&[("BOXOFFICE_MAX_PER_ORDER", "7")]).is_err());
        assert!(settings(&[("REDIS_CLUSTER", "yes")]).is_err());
        assert!(settings(&[("REDIS_CLUSTER", "1")]).unwrap().redis_cluster);
        assert!(!settings(&[("REDIS_CLUSTER", "")]).unwrap().redis_cluster);
        assert!(settings(&[("BOXOFFICE_RATE_POLL_PER_MIN", "-1")]).is_err());
        assert!(settings(&[("BOXOFFICE_TRUSTED_PROXIES", "10.0.0.0/40")]).is_err());
        assert!(settings(&[("BOXOFFICE_TRUSTED_PROXIES", "10.0.0.0/8,::1")]).is_ok());
        let err = settings(&[("REDIS_SENTINELS", "10.0.0.1:26379"), ("REDIS_CLUSTER", "1")]).unwrap_err();
        assert!(
            err.starts_with("REDIS_SENTINELS: cannot be used with a Redis Cluster"),
            "{err}"
        );
        assert!(settings(&[("REDIS_SENTINEL_SERVICE", " ")]).is_err());
        // Stripe's URLs end up in the Content-Security-Policy: nothing that could end a directive.
        assert!(settings(&[("STRIPE_JS_URL", "https://js.example/v3/; script-src *")]).is_err());
        assert!(settings(&[("STRIPE_API_BASE", "ftp://api.example")]).is_err());
        assert!(settings(&[("BOXOFFICE_PAYMENT_SECS", "0")]).is_err());
        assert_eq!(settings(&[("BOXOFFICE_PAYMENT_SECS", "60")]).unwrap().payment_secs, 60);
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
        assert!(settings(&[("BOXOFFICE_CONFIRM_GRACE_SECS", "14")]).is_err());
        assert!(settings(&[("BOXOFFICE_RECONCILE_SECS", "0")]).is_err());
        assert!(settings(&[("BOXOFFICE_REDIS_POOL", "0")]).is_err());
        assert!(settings(&[("BOXOFFICE_SECRET", "short")]).is_err());
        assert!(settings(&[("MAIL_FROM", "not an address")]).is_err());
    }

    #[test]
    fn the_proof_of_work_is_off_by_default_and_its_bounds_must_agree() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.pow().difficulty(u64::MAX), None);
        let on = settings(&[("BOXOFFICE_POW_JOINS_PER_MIN", "100")]).unwrap();
        assert_eq!(on.pow().difficulty(100), Some(20_000));
        assert!(settings(&[("BOXOFFICE_POW_MIN_COUNTER", "0")]).is_err());
        assert!(settings(&[("BOXOFFICE_POW_MIN_COUNTER", "10"), ("BOXOFFICE_POW_MAX_COUNTER", "9")]).is_err());
    }

    #[test]
    fn the_secret_never_prints() {
        let s = settings(&[("BOXOFFICE_SECRET", "a-long-enough-secret-of-32-characters")]).unwrap();
        assert!(!s.secret.was_generated());
        assert!(!format!("{s:?}").contains("a-long-enough"));
        assert!(settings(&[]).unwrap().secret.was_generated());
        let blank = settings(&[("BOXOFFICE_SECRET", ""), ("SMTP_URL", "")]).unwrap();
        assert!(blank.secret.was_generated());
        assert!(blank.smtp_url.is_none());
        assert_eq!(
            settings(&[("BOXOFFICE_PUBLIC_URL", "https://tickets.example/")])
                .unwrap()
                .public_url,
            "https://tickets.example"
        );
    }
}
