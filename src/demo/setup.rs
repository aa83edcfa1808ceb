//! The demo's organizer and sale: the account comes from the same code as
//! `boxoffice organizer create`, the event and its sale from the organizer API over HTTP, as
//! any organizer's script would make them.

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Timelike, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::admin::AdminError;
use crate::admin::forms::{Email, NewPassword};
use crate::db;

/// The demo organizer's sign-in. The password is fixed and printed on every run: this is a
/// demo account for trying the shop on one's own machine, never for a shop open to others.
pub const DEMO_EMAIL: &str = "demo@boxoffice.example";
pub const DEMO_PASSWORD: &str = "demo-organizer";
/// The demo event's title, by which a later run finds it again.
pub const DEMO_TITLE: &str = "The Flash Crowd Quartet (demo)";
/// Its tickets: a few hundred, so that a crowd of thousands queues for them.
pub const DEMO_CAPACITY: i64 = 400;
/// The label of the API token the demo uses; each run replaces the last one's.
const TOKEN_LABEL: &str = "boxoffice demo";

/// Finds the demo organizer, or makes it with the demo password. Its id.
pub async fn organizer(db: &PgPool) -> anyhow::Result<Uuid> {
    let email = Email::parse(DEMO_EMAIL).map_err(anyhow::Error::msg)?;
    if let Some(found) = db::organizers::find_by_email(db, email.as_str()).await? {
        return Ok(found.id);
    }
    let password = NewPassword::parse(DEMO_PASSWORD).map_err(anyhow::Error::msg)?;
    match crate::admin::create_organizer(db, &email, &password).await {
        Ok(id) => Ok(id),
        // Made meanwhile by another run: use that one.
        Err(AdminError::Invalid(_)) => Ok(db::organizers::find_by_email(db, email.as_str())
            .await?
            .context("The demo organizer vanished")?
            .id),
        Err(e) => Err(anyhow::Error::new(e).context("Failed to create the demo organizer")),
    }
}

/// A fresh API token of the demo organizer; the previous runs' demo tokens are revoked, so
/// they do not pile up.
pub async fn token(db: &PgPool, organizer: Uuid) -> anyhow::Result<String> {
    for old in db::api_tokens::list_for_organizer(db, organizer).await? {
        if old.label == TOKEN_LABEL {
            db::api_tokens::delete(db, old.id, organizer).await?;
        }
    }
    Ok(crate::admin::issue_token(db, crate::admin::Organizer(organizer), TOKEN_LABEL).await?)
}

/// The sale the crowd walks into.
#[derive(Clone, Debug)]
pub struct DemoSale {
    pub event: Uuid,
    pub sale: Uuid,
    pub capacity: i64,
    pub sold: i64,
    /// Whether an earlier run made it.
    pub reused: bool,
}

#[derive(Deserialize)]
struct EventRow {
    id: Uuid,
    title: String,
    ends_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct SaleRow {
    id: Uuid,
    capacity: i64,
    sold: i64,
    state: String,
}

/// The organizer API of the running shop, with the demo's token.
pub struct OrganizerApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl OrganizerApi {
    pub fn new(base: &str, token: String) -> anyhow::Result<OrganizerApi> {
        Ok(OrganizerApi {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            base: format!("{}/api/v1/admin", base.trim_end_matches('/')),
            token,
        })
    }

    /// The demo event's sale when one is still open with tickets left (the newest such), or a
    /// new event and sale.
    pub async fn demo_sale(&self) -> anyhow::Result<DemoSale> {
        let mut events: Vec<EventRow> = self.send(self.http.get(format!("{}/events", self.base))).await?;
        events.retain(|e| e.title == DEMO_TITLE && e.ends_at > Utc::now());
        events.sort_by_key(|e| std::cmp::Reverse(e.ends_at));
        for event in &events {
            let sales: Vec<SaleRow> = self
                .send(self.http.get(format!("{}/events/{}/sales", self.base, event.id)))
                .await?;
            if let Some(s) = sales.iter().find(|s| s.state == "open" && s.sold < s.capacity) {
                return Ok(DemoSale {
                    event: event.id,
                    sale: s.id,
                    capacity: s.capacity,
                    sold: s.sold,
                    reused: true,
                });
            }
        }
        self.new_sale().await
    }

    /// An event four weeks ahead, at half past seven in the evening (UTC), and its sale, open
    /// now: holds of two minutes and at most 25 buyers at checkout at once, so that a queue
    /// forms and moves at a pace one can follow.
    async fn new_sale(&self) -> anyhow::Result<DemoSale> {
        let day = Utc::now() + Duration::days(28);
        let starts = day
            .with_hour(19)
            .and_then(|t| t.with_minute(30))
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(day);
        let event: EventRow = self
            .send(self.http.post(format!("{}/events", self.base)).json(&json!({
                "title": DEMO_TITLE,
                "description": "A demo event made by `boxoffice demo`. The crowd in its queue is \
                                simulated; join it yourself to see the waiting room from inside.",
                "starts_at": starts.to_rfc3339(),
                "ends_at": (starts + Duration::hours(3)).to_rfc3339(),
                "capacity": DEMO_CAPACITY,
                "price_minor": 3500,
                "currency": "EUR",
            })))
            .await
            .context("Failed to create the demo event")?;
        let sale: SaleRow = self
            .send(
                self.http
                    .post(format!("{}/events/{}/sales", self.base, event.id))
                    .json(&json!({"hold_secs": 120, "max_active": 25})),
            )
            .await
            .context("Failed to open the demo sale")?;
        Ok(DemoSale {
            event: event.id,
            sale: sale.id,
            capacity: sale.capacity,
            sold: sale.sold,
            reused: false,
        })
    }

    async fn send<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("the organizer API answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("unexpected answer: {body}"))
    }
}
