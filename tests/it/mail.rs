//! The tickets mail, through a real SMTP server (aiosmtpd) on loopback: what arrives, and that
//! an SMTP server that is down delays the mail, never the checkout, and loses nothing.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;

use crate::smtp_sink::{SmtpSink, attachment, free_port};
use crate::support::{TestApp, World, ada, test_settings};
use crate::tickets::{buy, qr_codes_of_pages, ticket_codes};

/// The part of a received mail with this content type.
pub fn part<'a>(mail: &'a Value, content_type: &str) -> &'a Value {
    mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .unwrap_or_else(|| panic!("a {content_type} part in {mail}"))
}

async fn outbox(db: &sqlx::PgPool) -> Vec<(i32, bool, Option<String>)> {
    sqlx::query_as("select attempts, sent_at is not null, last_error from outbox order by id")
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_tickets_mail_arrives_with_the_pdf_and_a_link_that_opens_the_order() {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(boxoffice::config::Secret::new(smtp.url()));
        s.mail_from = "Door Night <tickets@boxoffice.example>".into();
        s.public_url = "https://tickets.example".into();
    })
    .await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let code = buy(&app.base, &app.client(), sale, 2).await;

    let mails = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "one mail for one order");
    let mail = &mails[0];
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["grace@example.com"]));
    assert_eq!(mail["mail_from"], "tickets@boxoffice.example");
    assert!(
        mail["subject"]
            .as_str()
            .unwrap()
            .starts_with("Your tickets for The Few Tickets Tour (order BO-"),
        "{mail}"
    );
    let text = part(mail, "text/plain")["text"].as_str().unwrap().to_string();
    let html = part(mail, "text/html")["text"].as_str().unwrap();
    assert!(text.contains("Grace Hopper") && html.contains("Grace Hopper"));

    // The PDF: a page per ticket, each QR code the ticket's code.
    let pdf = part(mail, "application/pdf");
    assert!(pdf["filename"].as_str().unwrap().starts_with("tickets-BO-"));
    let dir = std::env::temp_dir().join(format!("bo-mail-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        qr_codes_of_pages(&attachment(pdf), &dir),
        ticket_codes(&app.world.db, &code).await
    );

    // The link, under BOXOFFICE_PUBLIC_URL, opens the order in a browser without the session.
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("https://tickets.example/orders/"))
        .expect("a link to the order page")
        .to_string();
    assert!(html.contains(&link.replace('&', "&amp;")));
    let here = link.replace("https://tickets.example", &app.base);
    let page = app.client().get(&here).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(page.text().await.unwrap().contains(&code[..8]));

    assert_eq!(outbox(&app.world.db).await, vec![(1, true, None)]);
}

/// Accepts connections and never answers, as a hung mail server does.
async fn black_hole(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    })
}

#[tokio::test]
async fn an_smtp_server_that_is_down_delays_the_mail_never_the_checkout_and_loses_nothing() {
    let port = free_port();
    let hung = black_hole(port).await;
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(boxoffice::config::Secret::new(format!("smtp://127.0.0.1:{port}")));
        s.mail_retry_secs = 1;
    })
    .await;
    let sale = app.world.sale(10, 60).await.sale_id();

    // The mail server hangs: the checkout answers at once all the same.
    let started = Instant::now();
    let code = buy(&app.base, &app.client(), sale, 1).await;
    assert!(
        // A send in the request would wait for the hung server for 20 s.
        started.elapsed() < Duration::from_secs(5),
        "the checkout took {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = outbox(&app.world.db).await;
    assert_eq!(rows.len(), 1, "the mail is queued with the order");
    assert!(!rows[0].1, "and not sent: the server hangs");

    // Then it refuses connections: attempts fail and are retried, nothing is sent.
    hung.abort();
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox(&app.world.db).await[0].0 < 3 {
        assert!(Instant::now() < deadline, "retries: {:?}", outbox(&app.world.db).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, sent, error) = outbox(&app.world.db).await.remove(0);
    assert!(!sent && error.is_some());

    // The server comes back on its port: the mail arrives, once.
    let smtp = SmtpSink::start_on(port);
    let mails = smtp.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["rcpt_tos"], serde_json::json!(["grace@example.com"]));
    let pdf = attachment(part(&mails[0], "application/pdf"));
    let dir = std::env::temp_dir().join(format!("bo-mail-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(qr_codes_of_pages(&pdf, &dir), ticket_codes(&app.world.db, &code).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.received().len(), 1);
    assert!(outbox(&app.world.db).await[0].1);

    // Operators see the failed attempts and the sent mail in /metrics.
    let metrics = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |outcome: &str| -> u64 {
        let series = format!("boxoffice_mails_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    // The first two attempts failed before the third was taken; the third may have met the
    // server already up.
    assert!(count("failed") >= 2 && count("sent") >= 1, "{metrics}");
}

#[tokio::test]
async fn four_instances_draining_one_outbox_send_each_mail_once() {
    let smtp = SmtpSink::start();
    let mut settings = test_settings();
    settings.smtp_url = Some(boxoffice::config::Secret::new(smtp.url()));
    // A backlog first, written as checkouts write orders, before any sender runs ...
    let world = World::with_settings(settings.clone()).await;
    let sale = world.sale(60, 60).await.sale_id();
    let orders = 30;
    for _ in 0..orders {
        let placed = boxoffice::db::orders::place(
            &world.db,
            sale,
            uuid::Uuid::new_v4(),
            1,
            &ada(),
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(matches!(placed, boxoffice::db::orders::Placement::Placed(_)));
    }
    // ... then four instances start at once and race for it.
    let mut apps = Vec::new();
    for _ in 0..4 {
        apps.push(World::with_settings(settings.clone()));
    }
    let worlds = futures::future::join_all(apps).await;
    let _apps = futures::future::join_all(worlds.into_iter().map(TestApp::on)).await;

    let mails = smtp.wait_for(orders, Duration::from_secs(60)).await;
    assert_eq!(mails.len(), orders, "{:?}", outbox(&world.db).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut subjects: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), orders, "no mail sent twice");
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), orders, "each order's mail once");
}

/// The app's binary, its log written to a file; killed when dropped.
struct LoggedApp {
    child: std::process::Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for LoggedApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn without_smtp_the_mail_is_noted_in_the_log_without_personal_data() {
    let world = World::new().await;
    let sale = world.sale(10, 60).await.sale_id();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("bo-log-{}.txt", uuid::Uuid::new_v4().simple()));
    let out = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .env("BOXOFFICE_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &world.settings.database_url)
        .env("REDIS_URL", &world.settings.redis_url)
        .env("RUST_LOG", "info")
        .env_remove("SMTP_URL")
        .env_remove("BOXOFFICE_SECRET")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("the boxoffice binary");
    let app = LoggedApp {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let client = crate::support::browser();
    for _ in 0..200 {
        if client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = buy(&app.base, &client, sale, 2).await;

    let deadline = Instant::now() + Duration::from_secs(15);
    while !outbox(&world.db).await.first().is_some_and(|row| row.1) {
        assert!(
            Instant::now() < deadline,
            "the mail was not noted: {:?}",
            outbox(&world.db).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&app.log).unwrap();
    let _ = std::fs::remove_file(&app.log);
    assert!(text.contains("BOXOFFICE_SECRET is not set"), "{text}");
    assert!(text.contains("to <redacted> not sent: no SMTP_URL"), "{text}");
    assert!(text.contains("to <redacted> sent"), "{text}");
    let number: String = sqlx::query_scalar("select number from orders")
        .fetch_one(&world.db)
        .await
        .unwrap();
    assert!(text.contains(&number), "the order number names the mail");
    let mut private = vec!["Grace", "grace@example.com", "key=", code.as_str()];
    let tickets = ticket_codes(&world.db, &code).await;
    private.extend(tickets.iter().map(String::as_str));
    for secret in private {
        assert!(!text.contains(secret), "the log shows {secret:?}: {text}");
    }
}
