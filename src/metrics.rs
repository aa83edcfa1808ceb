//! Prometheus metrics of one process: HTTP requests and latency per route, the sale service's
//! script calls, joins, orders and mail attempts, and on each scrape the live sales' figures
//! from Redis.
//!
//! Recording is an atomic add on a labelled series, no I/O, so the hot poll pays almost
//! nothing. Routes are labelled by their template (`/api/v1/reservations/:code`), never by
//! the raw path, so the number of series stays bounded whatever codes clients send. The
//! registry is process-wide: one app per process is the norm, and tests that start two simply
//! share it.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::sale::{SaleFigures, SaleId};

/// Every series this process exports.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    script_duration: HistogramVec,
    script_errors: IntCounterVec,
    joins: IntCounter,
    orders: IntCounter,
    mails: IntCounterVec,
    sale: SaleGauges,
}

/// Figures of the live sales, refilled on each scrape from Redis. They describe the sale, not
/// this instance: every instance reports the same values (take `max` across instances).
struct SaleGauges {
    waiting: IntGaugeVec,
    held: IntGaugeVec,
    sold: IntGaugeVec,
    admitted: IntGaugeVec,
    lapsed: IntGaugeVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// A sale script runs in tens of microseconds inside Redis; the round trip adds the network.
const SCRIPT_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "boxoffice_http_requests_total",
                "HTTP requests answered, by route template, method and status",
            ),
            &["route", "method", "status"],
        )
        .unwrap();
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "boxoffice_http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .unwrap();
        let script_duration = HistogramVec::new(
            HistogramOpts::new(
                "boxoffice_script_duration_seconds",
                "Round trip of one sale script call to Redis, by script",
            )
            .buckets(SCRIPT_BUCKETS.to_vec()),
            &["script"],
        )
        .unwrap();
        let script_errors = IntCounterVec::new(
            Opts::new(
                "boxoffice_script_errors_total",
                "Sale script calls that failed (Redis away, timeouts)",
            ),
            &["script"],
        )
        .unwrap();
        let joins = IntCounter::new("boxoffice_joins_total", "New reservations made by this instance").unwrap();
        let orders = IntCounter::new("boxoffice_orders_total", "Orders committed by this instance").unwrap();
        let mails = IntCounterVec::new(
            Opts::new(
                "boxoffice_mails_total",
                "Attempts of this instance to send a mail from the outbox, by outcome (sent, failed)",
            ),
            &["outcome"],
        )
        .unwrap();
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["sale"]).unwrap();
        let sale = SaleGauges {
            waiting: gauge("boxoffice_sale_waiting", "Buyers in a live sale's queue"),
            held: gauge("boxoffice_sale_held", "Tickets held at checkout in a live sale"),
            sold: gauge(
                "boxoffice_sale_sold",
                "Tickets sold in a live sale, as Redis counts them",
            ),
            admitted: gauge(
                "boxoffice_sale_admitted",
                "Buyers admitted to checkout since the sale's Redis state was built",
            ),
            lapsed: gauge(
                "boxoffice_sale_lapsed",
                "Holds that lapsed since the sale's Redis state was built",
            ),
        };
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(script_duration.clone()),
            Box::new(script_errors.clone()),
            Box::new(joins.clone()),
            Box::new(orders.clone()),
            Box::new(mails.clone()),
            Box::new(sale.waiting.clone()),
            Box::new(sale.held.clone()),
            Box::new(sale.sold.clone()),
            Box::new(sale.admitted.clone()),
            Box::new(sale.lapsed.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            script_duration,
            script_errors,
            joins,
            orders,
            mails,
            sale,
        }
    }

    /// One answered HTTP request. `route` is the matched template, or `unmatched`.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, method, status_label(status)])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// One sale script call, successful or not.
    pub fn script_call(&self, script: &str, elapsed: Duration, ok: bool) {
        self.script_duration
            .with_label_values(&[script])
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.script_errors.with_label_values(&[script]).inc();
        }
    }

    pub fn joined(&self) {
        self.joins.inc();
    }

    pub fn ordered(&self) {
        self.orders.inc();
    }

    /// One attempt to send a mail: `sent` or not.
    pub fn mail_attempt(&self, sent: bool) {
        self.mails
            .with_label_values(&[if sent { "sent" } else { "failed" }])
            .inc();
    }

    /// Replaces the per-sale figures with these, so that sales no longer live disappear.
    pub fn set_sales(&self, sales: &[(SaleId, SaleFigures)]) {
        let g = &self.sale;
        for v in [&g.waiting, &g.held, &g.sold, &g.admitted, &g.lapsed] {
            v.reset();
        }
        for (sale, f) in sales {
            let id = sale.0.simple().to_string();
            let l = [id.as_str()];
            g.waiting.with_label_values(&l).set(f.waiting);
            g.held.with_label_values(&l).set(f.held);
            g.sold.with_label_values(&l).set(f.sold);
            g.admitted.with_label_values(&l).set(f.admitted);
            g.lapsed.with_label_values(&l).set(f.lapsed);
        }
    }

    /// Everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// The status as a label: exact for the few codes the app uses, so the series stay few.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_series_appear_in_the_text_format() {
        let m = get();
        m.http_request("/wait/:code/poll", "GET", 200, Duration::from_millis(3));
        m.script_call("status", Duration::from_micros(120), true);
        let text = m.render();
        assert!(text.contains(r#"boxoffice_http_requests_total{method="GET",route="/wait/:code/poll",status="200"}"#));
        assert!(text.contains(r#"boxoffice_script_duration_seconds_bucket{script="status",le="0.00025"}"#));
        assert!(text.contains("# TYPE boxoffice_joins_total counter"));
    }

    #[test]
    fn unusual_statuses_share_a_class() {
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(502), "5xx");
        assert_eq!(status_label(404), "404");
    }
}
