//! The organizer's side of the run, through the organizer API with a bearer token: make the
//! event and its sale before the crowd comes, read the sale back afterwards.

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;

/// A client of `/api/v1/admin/`.
#[derive(Clone)]
pub struct Organizer {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The sale's dashboard figures (`GET /api/v1/admin/sales/{sale}`), the fields checked.
#[derive(Debug, Deserialize)]
pub struct Figures {
    pub capacity: i64,
    /// Sold, as the live sale state (Redis) counts it.
    pub sold: i64,
    pub held: i64,
    pub waiting: i64,
    /// Orders and revenue, as Postgres counts them.
    pub orders: i64,
    pub revenue_minor: i64,
    pub sale: SaleRecord,
}

/// The sale's own row in Postgres.
#[derive(Debug, Deserialize)]
pub struct SaleRecord {
    pub capacity: i64,
    pub sold: i64,
}

/// One order of the sale (`GET /api/v1/admin/sales/{sale}/orders`).
#[derive(Debug, Deserialize)]
pub struct OrderRow {
    pub quantity: i64,
    pub total_minor: i64,
}

#[derive(Deserialize)]
struct OrderPage {
    orders: Vec<OrderRow>,
    total: i64,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// What the run asks of the sale it makes.
pub struct SalePlan {
    pub capacity: u32,
    pub hold_secs: u32,
    pub max_active: u32,
}

/// Price of one ticket in the test event, in cents.
pub const PRICE_MINOR: i64 = 2500;

impl Organizer {
    pub fn new(host: &str, token: &str) -> anyhow::Result<Organizer> {
        Ok(Organizer {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            base: format!("{}/api/v1/admin", host.trim_end_matches('/')),
            token: token.to_string(),
        })
    }

    /// Makes an event a month ahead with exactly the planned capacity, and opens its sale now.
    /// Returns the sale id.
    pub async fn create_sale(&self, plan: &SalePlan) -> anyhow::Result<String> {
        let starts = Utc::now() + Duration::days(30);
        let event: Created = self
            .send(self.http.post(format!("{}/events", self.base)).json(&json!({
                "title": format!("Load test {}", Utc::now().format("%Y-%m-%d %H:%M:%S")),
                "description": "A sale made by the load test.",
                "starts_at": starts.to_rfc3339(),
                "ends_at": (starts + Duration::hours(3)).to_rfc3339(),
                "capacity": plan.capacity,
                "price_minor": PRICE_MINOR,
                "currency": "EUR",
            })))
            .await
            .context("Failed to create the event")?;
        let sale: Created = self
            .send(
                self.http
                    .post(format!("{}/events/{}/sales", self.base, event.id))
                    .json(&json!({
                        "capacity": plan.capacity,
                        "hold_secs": plan.hold_secs,
                        "max_active": plan.max_active,
                    })),
            )
            .await
            .context("Failed to open the sale")?;
        Ok(sale.id)
    }

    pub async fn figures(&self, sale: &str) -> anyhow::Result<Figures> {
        self.send(self.http.get(format!("{}/sales/{sale}", self.base)))
            .await
            .context("Failed to read the sale's dashboard figures")
    }

    /// Every order of the sale, page by page.
    pub async fn orders(&self, sale: &str) -> anyhow::Result<Vec<OrderRow>> {
        let mut all = Vec::new();
        for page in 1.. {
            let p: OrderPage = self
                .send(
                    self.http
                        .get(format!("{}/sales/{sale}/orders?page={page}&per_page=500", self.base)),
                )
                .await
                .context("Failed to read the sale's orders")?;
            let last = p.orders.is_empty() || all.len() + p.orders.len() >= p.total as usize;
            all.extend(p.orders);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Closes the sale, so the instance stops reconciling it once the run is over.
    pub async fn close(&self, sale: &str) -> anyhow::Result<()> {
        let _: serde_json::Value = self
            .send(
                self.http
                    .patch(format!("{}/sales/{sale}", self.base))
                    .json(&json!({"state": "closed"})),
            )
            .await
            .context("Failed to close the sale")?;
        Ok(())
    }

    async fn send<T: serde::de::DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let resp = req.bearer_auth(&self.token).send().await?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("the server answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("unexpected answer: {body}"))
    }
}
