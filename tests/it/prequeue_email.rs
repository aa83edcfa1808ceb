//! One pre-queue place per verified email: the join asks for an email, the shop mails a
//! one-time link (a real SMTP server), and the place is made when the link is confirmed, once
//! per link and once per email, however many confirmations race; an expired link makes
//! nothing; with the setting off nothing changes.

use std::time::Duration;

use boxoffice::config::{BeaconSource, Secret};
use boxoffice::draw::receipt::Receipt;
use boxoffice::sale::SaleId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mail::part;
use crate::prequeue::{prequeue_sale, trusted_key};
use crate::smtp_sink::SmtpSink;
use crate::support::{TestApp, World, get_json};

const PUBLIC: &str = "https://tickets.example";

/// The app with mail through `smtp` and the local beacon.
async fn app_with_mail(smtp: &SmtpSink) -> TestApp {
    let url = smtp.url();
    TestApp::spawn_with(move |s| {
        s.smtp_url = Some(Secret::new(url));
        s.public_url = PUBLIC.into();
        s.beacon = BeaconSource::Local;
    })
    .await
}

/// A pre-queue sale (window open) that gives one place per verified email, opening in
/// `opens_in`.
async fn verified_sale(world: &World, opens_in: chrono::Duration) -> SaleId {
    let sale = prequeue_sale(world, 10, opens_in).await;
    sqlx::query("update ticket_sales set one_place_per_email = true where id = $1")
        .bind(sale.0)
        .execute(&world.db)
        .await
        .unwrap();
    sale
}

/// A shop with mail and a verified sale whose pre-queue is open and that opens in
/// `opens_in`.
struct Shop {
    smtp: SmtpSink,
    app: TestApp,
    sale: SaleId,
}

impl Shop {
    async fn open(opens_in: chrono::Duration) -> Shop {
        let smtp = SmtpSink::start();
        let app = app_with_mail(&smtp).await;
        let sale = verified_sale(&app.world, opens_in).await;
        Shop { smtp, app, sale }
    }

    /// A new client asks for a place of one ticket for `email`.
    async fn ask(&self, email: &str) -> (StatusCode, Value) {
        let body = json!({ "quantity": 1, "email": email });
        api_join(&self.app, &self.app.client(), self.sale, body).await
    }

    /// The token of the `n`-th mail (from 0), once it has come.
    async fn token(&self, n: usize) -> String {
        let mails = self.smtp.wait_for(n + 1, Duration::from_secs(20)).await;
        token_of(&mails[n])
    }

    /// A new browser presses the confirmation page's button for `token`.
    async fn confirm_by_page(&self, token: &str) -> reqwest::Response {
        let form = [("token", token)];
        let url = self.app.url("/prequeue/confirm");
        self.app.client().post(url).form(&form).send().await.unwrap()
    }
}

async fn api_join(app: &TestApp, c: &reqwest::Client, sale: SaleId, body: Value) -> (StatusCode, Value) {
    let resp = c
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn api_confirm(app: &TestApp, c: &reqwest::Client, token: &str) -> (StatusCode, Value) {
    let resp = c
        .post(app.url("/api/v1/prequeue/confirmations"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// The token of the link in a received mail, checked to be in both parts.
fn token_of(mail: &Value) -> String {
    let text = part(mail, "text/plain")["text"].as_str().unwrap();
    let html = part(mail, "text/html")["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{PUBLIC}/prequeue/confirm?token=")))
        .unwrap_or_else(|| panic!("a link in {text}"));
    assert!(html.contains(link), "{html}");
    link.rsplit_once("token=").unwrap().1.to_string()
}

async fn count(world: &World, sql: &str, sale: SaleId) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(sale.0)
        .fetch_one(&world.db)
        .await
        .unwrap()
}

async fn entries(world: &World, sale: SaleId) -> i64 {
    count(world, "select count(*) from prequeue_entries where sale_id = $1", sale).await
}

async fn links(world: &World, sale: SaleId) -> i64 {
    count(world, "select count(*) from prequeue_links where sale_id = $1", sale).await
}

#[tokio::test]
async fn a_verified_email_gets_its_place_by_the_mailed_link_once_and_the_place_is_drawn() {
    let shop = Shop::open(chrono::Duration::seconds(12)).await;
    let (app, sale, smtp) = (&shop.app, shop.sale, &shop.smtp);

    // The event page asks for the email; a join without one is refused and makes nothing.
    let asker = app.client();
    let page = asker.get(app.url(&format!("/sales/{sale}"))).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("name=\"email\""));
    let (status, body) = api_join(app, &asker, sale, json!({ "quantity": 2 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "email_required");
    let (status, body) = api_join(app, &asker, sale, json!({ "quantity": 2, "email": "not-an-address" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!((links(&app.world, sale).await, entries(&app.world, sale).await), (0, 0));

    // With the email: a link is mailed, and no place is made yet.
    let (status, asked) = api_join(
        app,
        &asker,
        sale,
        json!({ "quantity": 2, "email": " Ada@Example.com " }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    assert_eq!(asked["state"], "link_mailed");
    assert_eq!(asked["link_lifetime_secs"], 900);
    let mails = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0]["rcpt_tos"],
        json!(["ada@example.com"]),
        "the normalized address"
    );
    let token = token_of(&mails[0]);
    assert_eq!(
        entries(&app.world, sale).await,
        0,
        "no place before the link is confirmed"
    );

    // Opening the link shows a button and makes nothing; pressing it makes the place in the
    // browser that pressed it.
    let phone = app.client();
    let opened = phone
        .get(app.url(&format!("/prequeue/confirm?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(opened.text().await.unwrap().contains("Take my place"));
    assert_eq!(entries(&app.world, sale).await, 0, "opening the page takes no place");
    let taken = phone
        .post(app.url("/prequeue/confirm"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::SEE_OTHER);
    let to = taken.headers()["location"].to_str().unwrap().to_string();
    let code = to.strip_prefix("/wait/").expect("the waiting room").to_string();
    assert_eq!(entries(&app.world, sale).await, 1);
    let wait = phone.get(app.url(&to)).send().await.unwrap();
    assert_eq!(wait.status(), StatusCode::OK);

    // The place is a pre-queue entry with a receipt the shop signed, for two tickets.
    let polled: Value = get_json(&phone, &app.url(&format!("/api/v1/reservations/{code}"))).await;
    assert_eq!(polled["state"], "prequeue", "{polled}");
    assert_eq!(polled["quantity"], 2);
    let receipt: Receipt = polled["receipt"].as_str().unwrap().parse().unwrap();
    let draw = app.world.sales.published_draw(sale).await.unwrap().unwrap();
    assert_eq!(receipt.verify(&draw.receipt_key), Ok(()));

    // The link works once: by the page, by the API, from anywhere.
    let reused = shop.confirm_by_page(&token).await;
    assert_eq!(reused.status(), StatusCode::GONE);
    let (status, body) = api_confirm(app, &app.client(), &token).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"], "link_spent");
    // A forged token is not a link at all.
    let forged = format!("{}{}", &token[..33], "A".repeat(43));
    let (status, body) = api_confirm(app, &app.client(), &forged).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(entries(&app.world, sale).await, 1);

    // The same email again, written otherwise, from another client: the same answer, and no
    // mail for an address that holds a place; the mailed address is erased.
    let (status, again) = shop.ask("ada@EXAMPLE.com").await;
    assert_eq!((status, &again), (StatusCode::ACCEPTED, &asked));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.received().len(), 1, "no mail for an address that holds a place");
    assert_eq!(links(&app.world, sale).await, 1);
    let kept = count(
        &app.world,
        "select count(*) from prequeue_links where sale_id = $1 and address is not null",
        sale,
    )
    .await;
    assert_eq!(kept, 0, "the address is erased once its mail is sent");

    // At the opening the place is drawn like any other, and its receipt checks out.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let drawn = loop {
        let polled: Value = get_json(&phone, &app.url(&format!("/api/v1/reservations/{code}"))).await;
        if polled["state"] != "prequeue" {
            break polled;
        }
        assert!(std::time::Instant::now() < deadline, "no draw within 30 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(drawn["state"], "admitted", "{drawn}");
    let draw = app.world.sales.published_draw(sale).await.unwrap().unwrap();
    let trusted = trusted_key(&app.world.settings);
    let place = boxoffice::draw::published::check(&draw, &receipt, Some(&trusted.parse().unwrap())).unwrap();
    assert_eq!(place, 1);
}

#[tokio::test]
async fn racing_confirmations_make_one_place_per_link_and_per_email() {
    let shop = Shop::open(chrono::Duration::minutes(20)).await;
    let (app, sale) = (&shop.app, shop.sale);

    // One link confirmed by eight browsers at the same moment: one place.
    assert_eq!(shop.ask("grace@example.com").await.0, StatusCode::ACCEPTED);
    let token = shop.token(0).await;
    let confirms = (0..8).map(|_| {
        let (c, token) = (app.client(), token.clone());
        async move { api_confirm(app, &c, &token).await }
    });
    let answers = futures::future::join_all(confirms).await;
    let made: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(made.len(), 1, "{answers:?}");
    assert_eq!(made[0].1["state"], "prequeue");
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == StatusCode::CREATED || (*s == StatusCode::GONE && b["error"] == "link_spent")),
        "{answers:?}"
    );
    assert_eq!(entries(&app.world, sale).await, 1);

    // Three links of one email, asked from three browsers, confirmed by three others at once:
    // one place; the others are told the email has one, and their links stay unused.
    for _ in 0..3 {
        assert_eq!(shop.ask("linus@example.com").await.0, StatusCode::ACCEPTED);
    }
    let mut tokens = Vec::new();
    for n in 1..4 {
        tokens.push(shop.token(n).await);
    }
    let confirms = tokens.iter().map(|token| {
        let c = app.client();
        async move { api_confirm(app, &c, token).await }
    });
    let answers = futures::future::join_all(confirms).await;
    let made = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(made, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == StatusCode::CREATED || (*s == StatusCode::CONFLICT && b["error"] == "email_has_place")),
        "{answers:?}"
    );
    assert_eq!(entries(&app.world, sale).await, 2);
    let used = count(
        &app.world,
        "select count(*) from prequeue_links where sale_id = $1 and used_at is not null",
        sale,
    )
    .await;
    assert_eq!(used, 2, "one link per place is used");

    // A fourth ask for that email: the same answer, no mail.
    let (status, body) = shop.ask("linus@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(shop.smtp.received().len(), 4);
}

#[tokio::test]
async fn an_expired_link_is_refused_and_makes_no_place() {
    let shop = Shop::open(chrono::Duration::minutes(20)).await;
    let (app, sale) = (&shop.app, shop.sale);
    assert_eq!(shop.ask("ada@example.com").await.0, StatusCode::ACCEPTED);
    let token = shop.token(0).await;
    sqlx::query("update prequeue_links set expires_at = now() - interval '1 second' where sale_id = $1")
        .bind(sale.0)
        .execute(&app.world.db)
        .await
        .unwrap();
    let (status, body) = api_confirm(app, &app.client(), &token).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(shop.confirm_by_page(&token).await.status(), StatusCode::GONE);
    assert_eq!(entries(&app.world, sale).await, 0);

    // A new link for the same address works.
    assert_eq!(shop.ask("ada@example.com").await.0, StatusCode::ACCEPTED);
    let token = shop.token(1).await;
    let (status, body) = api_confirm(app, &app.client(), &token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(entries(&app.world, sale).await, 1);
}

#[tokio::test]
async fn with_the_setting_off_a_pre_queue_join_is_a_place_at_once_and_mails_nothing() {
    let smtp = SmtpSink::start();
    let app = app_with_mail(&smtp).await;
    let sale = prequeue_sale(&app.world, 10, chrono::Duration::minutes(20)).await;
    let page = app
        .client()
        .get(app.url(&format!("/sales/{sale}")))
        .send()
        .await
        .unwrap();
    assert!(!page.text().await.unwrap().contains("name=\"email\""));
    for body in [
        json!({ "quantity": 1 }),
        json!({ "quantity": 1, "email": "ada@example.com" }),
    ] {
        let (status, joined) = api_join(&app, &app.client(), sale, body).await;
        assert_eq!(status, StatusCode::CREATED, "{joined}");
        assert_eq!(joined["state"], "prequeue", "{joined}");
    }
    let joined = app
        .client()
        .post(app.url(&format!("/sales/{sale}")))
        .form(&[("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), StatusCode::SEE_OTHER);
    assert_eq!(entries(&app.world, sale).await, 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.received().len(), 0);
    assert_eq!(links(&app.world, sale).await, 0);
}

#[tokio::test]
async fn the_event_page_asks_for_the_email_and_says_to_check_the_mail() {
    let shop = Shop::open(chrono::Duration::minutes(20)).await;
    let (app, sale) = (&shop.app, shop.sale);
    let c = app.client();
    let join =
        |form: &'static [(&'static str, &'static str)]| c.post(app.url(&format!("/sales/{sale}"))).form(form).send();
    let without = join(&[("quantity", "1")]).await.unwrap();
    assert_eq!(without.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = without.text().await.unwrap();
    assert!(
        body.contains("please give your email") && body.contains("name=\"email\""),
        "{body}"
    );
    let with = join(&[("quantity", "1"), ("email", "Ada@example.com")]).await.unwrap();
    assert_eq!(with.status(), StatusCode::OK);
    assert!(with.text().await.unwrap().contains("Check your mail"));
    let token = shop.token(0).await;
    assert_eq!(entries(&app.world, sale).await, 0);
    let (status, body) = api_confirm(app, &c, &token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_malformed_confirmation_is_refused_and_changes_nothing() {
    let shop = Shop::open(chrono::Duration::minutes(20)).await;
    let (app, sale) = (&shop.app, shop.sale);
    assert_eq!(shop.ask("ada@example.com").await.0, StatusCode::ACCEPTED);
    let token = shop.token(0).await;
    let c = app.client();
    let long = "a".repeat(10_000);
    let forged = format!("{}.{}", uuid::Uuid::new_v4().simple(), "A".repeat(43));
    for body in [
        json!({}),
        json!({ "token": 5 }),
        json!({ "token": null }),
        json!({ "token": long }),
        json!({ "token": forged }),
        json!({ "token": format!("{token} ") + "x" }),
    ] {
        let resp = c
            .post(app.url("/api/v1/prequeue/confirmations"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{body}: {}", resp.status());
    }
    let page = c
        .get(app.url(&format!("/prequeue/confirm?token={forged}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert_eq!(shop.confirm_by_page(&forged).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(entries(&app.world, sale).await, 0);
    // The real link still works: nothing above spent it.
    let (status, body) = api_confirm(app, &c, &token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
