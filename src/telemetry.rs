//! Logs: structured, filtered by `RUST_LOG` (default `info`), as JSON when `LOG_FORMAT=json`.
//! Names and emails of buyers are never logged.

use tracing_subscriber::EnvFilter;

pub fn init() {
    init_with_default("info");
}

/// Logs filtered by `RUST_LOG`, or by `default` when it is unset (the demo keeps its terminal
/// for its own lines with `warn`).
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
