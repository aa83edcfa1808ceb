//! The Stripe calls the shop makes, typed: create a PaymentIntent, retrieve one, confirm one
//! with the buyer's card, refund one. Form-encoded requests with the secret key as a bearer
//! token, as Stripe's API takes them; every call that creates something carries an idempotency
//! key, so a retry after a lost answer gets the same object back instead of a second one.

use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

/// A PaymentIntent as far as the shop reads it.
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    /// What Stripe.js confirms the payment with on the buyer's page.
    #[serde(default)]
    pub client_secret: String,
    /// `succeeded` once the money is taken.
    pub status: String,
    pub amount: i64,
}

impl PaymentIntent {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

/// Whether `text` can name a card for a PaymentIntent: a PaymentMethod (`pm_…`, what Stripe.js
/// makes) or a card (`card_…`, what a token holds), in the characters Stripe's ids have. Text
/// from a browser that is anything else never reaches Stripe.
pub fn is_card_id(text: &str) -> bool {
    let rest = text.strip_prefix("pm_").or_else(|| text.strip_prefix("card_"));
    rest.is_some_and(|r| (1..=250).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe did not answer: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("Stripe refused the call ({status}): {message}")]
    Refused { status: u16, message: String },
}

#[derive(Clone)]
pub struct Stripe {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl Stripe {
    pub fn new(base: &str, key: Secret) -> Stripe {
        Stripe {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("an HTTP client with rustls"),
            base: base.trim_end_matches('/').to_string(),
            key,
        }
    }

    /// Where the API answers.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A card payment of `amount` minor units, tagged with the order number.
    pub async fn create_intent(&self, amount: i64, currency: &str, order: &str) -> Result<PaymentIntent, StripeError> {
        let form = [
            ("amount", amount.to_string()),
            ("currency", currency.to_ascii_lowercase()),
            ("payment_method_types[]", "card".to_string()),
            ("metadata[order]", order.to_string()),
        ];
        let request = self
            .http
            .post(format!("{}/v1/payment_intents", self.base))
            .header("Idempotency-Key", format!("order-{order}"))
            .form(&form);
        self.send(request).await
    }

    pub async fn retrieve_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        let request = self.http.get(format!("{}/v1/payment_intents/{id}", self.base));
        self.send(request).await
    }

    /// Sets the card the buyer entered on an intent and confirms it: the intent then succeeds,
    /// or asks for the buyer's authentication (`requires_action`, which Stripe.js completes on
    /// the page). Two calls, as every Stripe API takes them (confirm's own `payment_method` is
    /// not taken by every stand-in). A declined card is a refusal with Stripe's message.
    pub async fn confirm_with(&self, intent: &str, payment_method: &str) -> Result<PaymentIntent, StripeError> {
        let set = self
            .http
            .post(format!("{}/v1/payment_intents/{intent}", self.base))
            .form(&[("payment_method", payment_method)]);
        self.send::<PaymentIntent>(set).await?;
        let confirm = self
            .http
            .post(format!("{}/v1/payment_intents/{intent}/confirm", self.base));
        self.send(confirm).await
    }

    /// Gives back the whole payment of an intent; once per intent, whatever the retries.
    pub async fn refund(&self, intent: &str) -> Result<Refund, StripeError> {
        let request = self
            .http
            .post(format!("{}/v1/refunds", self.base))
            .header("Idempotency-Key", format!("refund-{intent}"))
            .form(&[("payment_intent", intent)]);
        self.send(request).await
    }

    /// Gives back `amount` (minor units) of an intent's payment, once per `key` whatever the
    /// retries.
    pub async fn refund_part(&self, intent: &str, amount: i64, key: &str) -> Result<Refund, StripeError> {
        let request = self
            .http
            .post(format!("{}/v1/refunds", self.base))
            .header("Idempotency-Key", key)
            .form(&[("payment_intent", intent), ("amount", &amount.to_string())]);
        self.send(request).await
    }

    async fn send<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, StripeError> {
        let response = request.bearer_auth(self.key.expose()).send().await?;
        let status = response.status();
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Body {
                error: Inner,
            }
            #[derive(Deserialize)]
            struct Inner {
                message: Option<String>,
            }
            let message = response
                .json::<Body>()
                .await
                .ok()
                .and_then(|b| b.error.message)
                .unwrap_or_default();
            return Err(StripeError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        Ok(response.json().await?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_stripe_card_ids_are_card_ids() {
        assert!(super::is_card_id("pm_1NbXyZ2eZvKYlo2C"));
        assert!(super::is_card_id("card_abc_123"));
        for bad in [
            "",
            "pm_",
            "tok_abc",
            "pm_a/b",
            "pm_a&amount=1",
            "card_ü",
            &format!("pm_{}", "a".repeat(251)),
        ] {
            assert!(!super::is_card_id(bad), "{bad}");
        }
    }
}
