//! The organizer's side of the run, through the organizer API with a bearer token: make the
//! event and its sale before the crowd comes, read the sale back afterwards; and the sale's
//! published draw, which anyone may read.

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;

/// A client of `/api/v1/admin/`.
#[derive(Clone)]
pub struct Organizer {
    http: reqwest::Client,
    /// The shop's address.
    site: String,
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

/// One page of a list of the organizer API: its rows and how many there are in all.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(alias = "orders", alias = "entries")]
    rows: Vec<T>,
    total: i64,
}

/// One entry of the sale's waitlist (`GET /api/v1/admin/sales/{sale}/waitlist/entries`), as
/// Postgres records it.
#[derive(Debug, Deserialize)]
pub struct EntryRow {
    pub email: String,
    pub quantity: i64,
    /// The place in line; lower comes first.
    pub rank: i64,
    /// waiting, offered, taken, lapsed or left.
    pub state: String,
}

#[derive(Deserialize)]
struct WaitlistSetting {
    offer_secs: u32,
}

/// The sale's returned tickets (`GET /api/v1/admin/sales/{sale}/waitlist`), from Postgres.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct ReturnFigures {
    /// Offered for return, not bought by anyone yet: still valid for their buyers.
    #[serde(rename = "returns_pending")]
    pub pending: i64,
    /// Bought by other buyers: no longer their first buyers'.
    #[serde(rename = "tickets_returned")]
    pub returned: i64,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// What the run asks of the sale it makes.
pub struct SalePlan {
    pub capacity: u32,
    /// Seats of the event beyond the sale's capacity, for the organizer to add later.
    pub spare_seats: u32,
    pub hold_secs: u32,
    pub max_active: u32,
    /// When the sale opens (now when `None`).
    pub opens_at: Option<DateTime<Utc>>,
    /// Its pre-queue's window before the opening, in seconds (the shop's default when `None`).
    pub prequeue_secs: Option<u32>,
}

/// Price of one ticket in the test event, in cents.
pub const PRICE_MINOR: i64 = 2500;

impl Organizer {
    pub fn new(host: &str, token: &str) -> anyhow::Result<Organizer> {
        Ok(Organizer {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            site: host.trim_end_matches('/').to_string(),
            base: format!("{}/api/v1/admin", host.trim_end_matches('/')),
            token: token.to_string(),
        })
    }

    /// Makes an event a month ahead with the planned capacity (and spare seats), and its sale
    /// opening as planned.
    /// Returns the sale id.
    pub async fn create_sale(&self, plan: &SalePlan) -> anyhow::Result<String> {
        let starts = Utc::now() + Duration::days(30);
        let event: Created = self
            .send(self.http.post(format!("{}/events", self.base)).json(&json!({
                "title": format!("Load test {}", Utc::now().format("%Y-%m-%d %H:%M:%S")),
                "description": "A sale made by the load test.",
                "starts_at": starts.to_rfc3339(),
                "ends_at": (starts + Duration::hours(3)).to_rfc3339(),
                "capacity": plan.capacity + plan.spare_seats,
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
                        "opens_at": plan.opens_at.map(|t| t.to_rfc3339()),
                        "prequeue_secs": plan.prequeue_secs,
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
        self.all_pages(&format!("sales/{sale}/orders"))
            .await
            .context("Failed to read the sale's orders")
    }

    /// The sale's offer window in seconds, set to `secs` first when given.
    pub async fn offer_window(&self, sale: &str, secs: Option<u32>) -> anyhow::Result<u32> {
        let url = format!("{}/sales/{sale}/waitlist", self.base);
        let req = match secs {
            Some(secs) => self.http.patch(url).json(&json!({ "offer_secs": secs })),
            None => self.http.get(url),
        };
        let w: WaitlistSetting = self.send(req).await.context("Failed to read the offer window")?;
        Ok(w.offer_secs)
    }

    /// Lets buyers return tickets of the sale.
    pub async fn allow_returns(&self, sale: &str) -> anyhow::Result<()> {
        let url = format!("{}/sales/{sale}/waitlist", self.base);
        let req = self.http.patch(url).json(&json!({ "returns_allowed": true }));
        let _: serde_json::Value = self.send(req).await.context("Failed to allow returns")?;
        Ok(())
    }

    /// The sale's returned tickets, pending and bought by others.
    pub async fn returns(&self, sale: &str) -> anyhow::Result<ReturnFigures> {
        self.send(self.http.get(format!("{}/sales/{sale}/waitlist", self.base)))
            .await
            .context("Failed to read the sale's returns")
    }

    /// Raises the sale's capacity to `capacity`: the new tickets go to the queue, then down
    /// the waitlist.
    pub async fn raise_capacity(&self, sale: &str, capacity: u32) -> anyhow::Result<()> {
        let _: serde_json::Value = self
            .send(
                self.http
                    .post(format!("{}/sales/{sale}/capacity", self.base))
                    .json(&json!({ "capacity": capacity })),
            )
            .await
            .context("Failed to raise the capacity")?;
        Ok(())
    }

    /// Every entry of the sale's waitlist, in line order, page by page.
    pub async fn waitlist_entries(&self, sale: &str) -> anyhow::Result<Vec<EntryRow>> {
        self.all_pages(&format!("sales/{sale}/waitlist/entries"))
            .await
            .context("Failed to read the waitlist")
    }

    /// Every row of a paged list (`path` under the organizer API), in its order.
    async fn all_pages<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<Vec<T>> {
        let mut all = Vec::new();
        for page in 1.. {
            let p: Page<T> = self
                .send(self.http.get(format!("{}/{path}?page={page}&per_page=500", self.base)))
                .await?;
            let last = p.rows.is_empty() || all.len() + p.rows.len() >= p.total as usize;
            all.extend(p.rows);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// How many buyers joined the sale's queue (its funnel; a drawn pre-queue entry counts
    /// once it is queued).
    pub async fn joined(&self, sale: &str) -> anyhow::Result<i64> {
        #[derive(Deserialize)]
        struct Series {
            funnel: Funnel,
        }
        #[derive(Deserialize)]
        struct Funnel {
            joined: i64,
        }
        let series: Series = self
            .send(self.http.get(format!("{}/sales/{sale}/series", self.base)))
            .await
            .context("Failed to read the sale's funnel")?;
        Ok(series.funnel.joined)
    }

    /// The sale's published draw (`GET /api/v1/sales/{sale}/draw`, public).
    pub async fn published_draw<T: serde::de::DeserializeOwned>(&self, sale: &str) -> anyhow::Result<T> {
        self.send(self.http.get(format!("{}/api/v1/sales/{sale}/draw", self.site)))
            .await
            .context("Failed to read the sale's draw")
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
