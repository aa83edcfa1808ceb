//! A fake Stripe for the payment tests: localstripe (PyPI), installed into
//! `target/stripe-venv` on first use, on a free loopback port, stopped by its PID when the test
//! drops it. It keeps PaymentIntents, charges and refunds, serves a stand-in Stripe.js, and
//! delivers signed webhooks to the URLs registered with `POST /_config/webhooks/<name>`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::smtp_sink::{free_port, venv_python};

/// The secret key the tests give the app; localstripe takes any `sk_test_` key.
pub const SECRET_KEY: &str = "sk_test_boxoffice";
pub const PUBLISHABLE_KEY: &str = "pk_test_boxoffice";
pub const WEBHOOK_SECRET: &str = "whsec_boxoffice_tests";

pub struct FakeStripe {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    http: reqwest::Client,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let port = free_port();
        let child = Command::new(venv_python("stripe-venv", "localstripe"))
            .args(["-m", "localstripe", "--port", &port.to_string(), "--from-scratch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("localstripe starts");
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "localstripe did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        FakeStripe {
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Stripe.js as localstripe serves it.
    pub fn js_url(&self) -> String {
        format!("{}/js.stripe.com/v3/", self.base)
    }

    /// Settings that make the app take payment through this fake.
    pub fn configure(&self, s: &mut boxoffice::config::Settings, payment_secs: u32) {
        s.stripe_secret_key = Some(boxoffice::config::Secret::new(SECRET_KEY.into()));
        s.stripe_publishable_key = PUBLISHABLE_KEY.into();
        s.stripe_webhook_secret = Some(boxoffice::config::Secret::new(WEBHOOK_SECRET.into()));
        s.stripe_api_base = self.base.clone();
        s.stripe_js_url = self.js_url();
        s.payment_secs = payment_secs;
    }

    /// Delivers every event to the app at `app_base`, signed with [`WEBHOOK_SECRET`].
    pub async fn send_webhooks_to(&self, app_base: &str) {
        let resp = self
            .http
            .post(format!("{}/_config/webhooks/boxoffice", self.base))
            .form(&[
                ("url", format!("{app_base}/webhooks/stripe")),
                ("secret", WEBHOOK_SECRET.into()),
            ])
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }

    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(SECRET_KEY);
        if !form.is_empty() {
            request = request.form(form);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{path}: {body}");
        body
    }

    /// A PaymentMethod of the test card `number`, as Stripe.js makes one on the buyer's page;
    /// its id.
    pub async fn card(&self, number: &str) -> String {
        let method = self
            .call(
                reqwest::Method::POST,
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", number),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2040"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        method["id"].as_str().unwrap().to_string()
    }

    /// Pays an intent with a test card, as Stripe.js does on the buyer's page.
    pub async fn pay(&self, intent: &str) -> Value {
        let pm = &self.card("4242424242424242").await;
        self.call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{intent}"),
            &[("payment_method", pm)],
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{intent}/confirm"),
            &[],
        )
        .await
    }

    pub async fn intent(&self, intent: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/v1/payment_intents/{intent}"), &[])
            .await
    }

    /// The refunds made so far.
    pub async fn refunds(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, "/v1/refunds", &[]).await["data"]
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
