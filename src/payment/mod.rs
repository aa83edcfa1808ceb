//! Payment through Stripe, when `STRIPE_SECRET_KEY` is set. An order is written
//! `awaiting_payment` with a deadline (its tickets counted against the sale, as any order's);
//! it becomes `paid` when Stripe says its PaymentIntent succeeded, through the signed webhook or
//! on the buyer's return to the order page, whichever comes first (one guarded statement, so
//! the other changes nothing); it becomes `cancelled` when the deadline passes or the buyer
//! gives up, and its tickets go back to the sale at once. Money that arrives for a cancelled
//! order is refunded, never turned into tickets the sale no longer has.
//!
//! # Layout
//!
//! - `mod.rs` — [`Payments`]: the operations over orders, Stripe and the sale.
//! - `stripe` — the typed Stripe calls.
//! - `signature` — the webhook's `Stripe-Signature`.
//! - `overdue` — the background task that cancels orders past their deadline and refunds
//!   returned tickets.

mod overdue;
pub mod signature;
pub mod stripe;

use std::time::Duration;

use sqlx::PgPool;
use tracing::{info, warn};

use crate::config::{Secret, Settings};
use crate::db::orders::{self, Cancelled, Order, Payment};
use crate::db::returns;
use crate::sale::TicketSales;

pub use overdue::cancel_overdue_forever;
pub use stripe::{PaymentIntent, Stripe, StripeError};

/// Stripe and what the order page and the webhook need of it. Present only when Stripe is
/// configured.
#[derive(Clone)]
pub struct Payments {
    pub stripe: Stripe,
    pub publishable_key: String,
    webhook_secret: Secret,
    /// Stripe.js, for the order page; its origin is what the CSP allows.
    pub js_url: String,
    /// How long a buyer has to pay.
    pub window: Duration,
}

/// What [`Payments::look_up`] found of an order awaiting payment.
#[derive(Debug)]
pub enum Outlook {
    /// Still to pay, with this intent.
    Unpaid(PaymentIntent),
    /// Stripe has the money, and Postgres knows: the order is paid (now, or by a webhook a
    /// moment before), or, cancelled meanwhile, its money refunded. Read the order again.
    Charged,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
}

/// What a webhook delivery or a look at the PaymentIntent did to its order.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// Paid now.
    Paid,
    /// Nothing to do: paid before, not succeeded yet, or no order of ours.
    Unchanged,
    /// The order had been cancelled: the payment was refunded.
    Refunded,
}

impl Payments {
    /// Stripe's settings, or none without a secret key. A key without the publishable key or
    /// the webhook secret is a configuration error: orders would wait for payments that can
    /// never be made or confirmed.
    pub fn from_settings(settings: &Settings) -> Result<Option<Payments>, String> {
        let Some(key) = settings.stripe_secret_key.clone() else {
            return Ok(None);
        };
        let publishable_key = settings.stripe_publishable_key.trim().to_string();
        if publishable_key.is_empty() {
            return Err("STRIPE_SECRET_KEY is set but STRIPE_PUBLISHABLE_KEY is not".into());
        }
        let Some(webhook_secret) = settings.stripe_webhook_secret.clone() else {
            return Err("STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not".into());
        };
        Ok(Some(Payments {
            stripe: Stripe::new(&settings.stripe_api_base, key),
            publishable_key,
            webhook_secret,
            js_url: settings.stripe_js_url.clone(),
            window: Duration::from_secs(u64::from(settings.payment_secs)),
        }))
    }

    /// The origin of Stripe.js (`https://js.stripe.com`), for the CSP.
    pub fn js_origin(&self) -> &str {
        origin(&self.js_url)
    }

    /// The origin of Stripe's API, which Stripe.js calls from the page.
    pub fn api_origin(&self) -> &str {
        origin(self.stripe.base())
    }

    /// Whether a webhook delivery is Stripe's.
    pub fn verify(&self, header: &str, payload: &[u8]) -> bool {
        signature::verify(
            self.webhook_secret.expose(),
            header,
            payload,
            chrono::Utc::now().timestamp(),
        )
    }

    /// The PaymentIntent of an order awaiting payment, made on first use: at checkout, or on
    /// the order page if Stripe did not answer then. Its idempotency key is the order, so two
    /// makers get one intent.
    pub async fn intent_for(&self, db: &PgPool, order: &Order) -> Result<PaymentIntent, PaymentError> {
        if let Some(id) = &order.payment_intent {
            return Ok(self.stripe.retrieve_intent(id).await?);
        }
        let intent = self
            .stripe
            .create_intent(order.total_minor(), &order.currency, &order.number)
            .await?;
        orders::set_payment_intent(db, order.id, &intent.id).await?;
        Ok(intent)
    }

    /// An order awaiting payment as its buyer sees it now, for the order page and the API: its
    /// PaymentIntent (made on first use), with a success found there applied at once, so a
    /// lost webhook loses no payment. An error is Stripe not answering: the order still awaits
    /// its payment, and the buyer may ask again.
    pub async fn look_up(&self, db: &PgPool, order: &Order) -> Result<Outlook, PaymentError> {
        let intent = self.intent_for(db, order).await?;
        if !intent.succeeded() {
            return Ok(Outlook::Unpaid(intent));
        }
        match self.settle(db, &intent).await {
            Ok(_) => Ok(Outlook::Charged),
            Err(e) => {
                warn!(order = %order.number, error = %e, "applying the payment failed; the webhook will");
                Ok(Outlook::Unpaid(intent))
            }
        }
    }

    /// Applies what Stripe says of an intent to its order: succeeded moves it to paid (once),
    /// and a payment for an order cancelled meanwhile is refunded.
    pub async fn settle(&self, db: &PgPool, intent: &PaymentIntent) -> Result<Settled, PaymentError> {
        if !intent.succeeded() {
            return Ok(Settled::Unchanged);
        }
        let Some(order) = orders::find_by_payment_intent(db, &intent.id).await? else {
            warn!(intent = %intent.id, "a payment for no order of ours; left alone");
            return Ok(Settled::Unchanged);
        };
        if intent.amount != order.total_minor() {
            warn!(order = %order.number, "a payment of another amount than the order's; left alone");
            return Ok(Settled::Unchanged);
        }
        match orders::mark_paid(db, order.id).await? {
            Payment::Paid => {
                info!(order = %order.number, "order paid");
                Ok(Settled::Paid)
            }
            Payment::AlreadyPaid => Ok(Settled::Unchanged),
            Payment::Cancelled => {
                let refund = self.stripe.refund(&intent.id).await?;
                orders::set_refund(db, order.id, &refund.id).await?;
                warn!(order = %order.number, "a payment came after the order was cancelled; refunded");
                Ok(Settled::Refunded)
            }
        }
    }

    /// Pays an order awaiting payment with the card the buyer entered on the page
    /// (`payment_method`, made by Stripe.js in the buyer's browser): the order's intent is
    /// confirmed with it, and a success is applied at once as the webhook would. The intent
    /// comes back as Stripe left it; `requires_action` asks the page to let Stripe.js
    /// authenticate the buyer (3-D Secure), after which the webhook or the buyer's return
    /// applies the payment.
    pub async fn pay_with(
        &self,
        db: &PgPool,
        order: &Order,
        payment_method: &str,
    ) -> Result<PaymentIntent, PaymentError> {
        let intent = self.intent_for(db, order).await?;
        if intent.succeeded() {
            self.settle(db, &intent).await?;
            return Ok(intent);
        }
        let intent = self.stripe.confirm_with(&intent.id, payment_method).await?;
        self.settle(db, &intent).await?;
        Ok(intent)
    }

    /// The buyer gives up paying: the order is cancelled if it still awaits payment, and its
    /// tickets go back to the sale. A payment Stripe has taken already (its webhook not come
    /// yet) wins: it is applied, and the order stays paid rather than being cancelled and its
    /// money refunded. If Stripe does not answer, the order is cancelled all the same; a
    /// payment that comes after is refunded (`settle`).
    pub async fn cancel(&self, db: &PgPool, sales: &TicketSales, order: &Order) -> Result<bool, sqlx::Error> {
        if order.payment_intent.is_some() {
            match self.look_up(db, order).await {
                Ok(Outlook::Charged) => return Ok(false),
                Ok(Outlook::Unpaid(_)) => {}
                Err(e) => warn!(order = %order.number, error = %e, "Stripe did not answer before a cancellation"),
            }
        }
        let Some(cancelled) = orders::cancel(db, order.id).await? else {
            return Ok(false);
        };
        give_back(sales, &cancelled).await;
        Ok(true)
    }
}

impl Payments {
    /// Refunds the returned tickets of paid orders that other buyers' orders took
    /// (`db::returns::take` queued each refund in that order's transaction). Every instance
    /// runs it with the overdue task; each refund's idempotency key makes it one refund at
    /// Stripe however many instances or retries send it. Returns how many were refunded.
    pub async fn refund_returns(&self, db: &PgPool) -> Result<usize, PaymentError> {
        let due = returns::due_refunds(db, 20).await?;
        for refund in &due {
            let done = self
                .stripe
                .refund_part(&refund.payment_intent, refund.amount_minor, &refund.key())
                .await?;
            returns::set_refund(db, refund, &done.id).await?;
            info!(order = %refund.number, "returned tickets refunded");
        }
        Ok(due.len())
    }
}

/// Hands a cancelled order's tickets back to its sale in Redis. If that fails the next
/// reconcile gives them back: Postgres's `sold` no longer counts them.
async fn give_back(sales: &TicketSales, cancelled: &Cancelled) {
    if let Err(e) = sales
        .give_back(crate::sale::SaleId(cancelled.sale_id), cancelled.reservation_code)
        .await
    {
        warn!(sale = %cancelled.sale_id, error = %e, "giving tickets back failed; the reconcile will");
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Secret, Settings};

    #[test]
    fn stripe_is_off_without_a_key_and_a_key_needs_the_other_two_settings() {
        let mut s = Settings::default();
        assert!(super::Payments::from_settings(&s).unwrap().is_none());
        s.stripe_secret_key = Some(Secret::new("sk_test_x".into()));
        let refused = super::Payments::from_settings(&s).err().unwrap();
        assert!(refused.contains("STRIPE_PUBLISHABLE_KEY"), "{refused}");
        s.stripe_publishable_key = "pk_test_x".into();
        let refused = super::Payments::from_settings(&s).err().unwrap();
        assert!(refused.contains("STRIPE_WEBHOOK_SECRET"), "{refused}");
        s.stripe_webhook_secret = Some(Secret::new("whsec_x".into()));
        let payments = super::Payments::from_settings(&s).unwrap().unwrap();
        assert_eq!(payments.js_origin(), "https://js.stripe.com");
        assert_eq!(payments.api_origin(), "https://api.stripe.com");
        assert_eq!(payments.window, std::time::Duration::from_secs(600));
    }

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        assert_eq!(super::origin("https://js.stripe.com/v3/"), "https://js.stripe.com");
        assert_eq!(
            super::origin("http://127.0.0.1:8420/js.stripe.com/v3/"),
            "http://127.0.0.1:8420"
        );
        assert_eq!(super::origin("https://api.stripe.com"), "https://api.stripe.com");
    }
}
