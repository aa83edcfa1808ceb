//! Tickets: one per seat, made with the order; the PDF a page per ticket whose QR code reads
//! back as the ticket's code; the order page by session or by the signed link of the mail.

use std::path::{Path, PathBuf};
use std::process::Command;

use boxoffice::sale::{ReservationCode, SaleId};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

/// Joins `sale` for `quantity` tickets and orders them through the buyer API; the reservation
/// code.
pub async fn buy(base: &str, client: &reqwest::Client, sale: SaleId, quantity: u8) -> String {
    let joined = crate::support::api_join(base, client, sale, quantity).await;
    assert_eq!(joined["state"], "admitted", "{joined}");
    let code = joined["code"].as_str().unwrap().to_string();
    let resp = client
        .post(format!("{base}/api/v1/reservations/{code}/order"))
        .json(&json!({"name": "Grace Hopper", "email": "grace@example.com", "age": 45, "gender": "female"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    code
}

/// The codes of an order's tickets, by their number.
pub async fn ticket_codes(db: &sqlx::PgPool, reservation: &str) -> Vec<String> {
    let code: ReservationCode = reservation.parse().unwrap();
    sqlx::query_scalar(
        "select t.code from tickets t join orders o on o.id = t.order_id
         where o.reservation_code = $1 order by t.number",
    )
    .bind(code.token)
    .fetch_all(db)
    .await
    .unwrap()
}

/// A directory of this test's own under `target/`.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/ticket-pdfs")
        .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The pages of `pdf` rendered by poppler's `pdftoppm` as greyscale images, in page order,
/// each decoded with `rqrr`: the text of the QR code found on each page. `dir` is removed
/// afterwards.
pub fn qr_codes_of_pages(pdf: &[u8], dir: &Path) -> Vec<String> {
    let file = dir.join("tickets.pdf");
    std::fs::write(&file, pdf).unwrap();
    let status = Command::new("pdftoppm")
        .args(["-r", "100", "-gray"])
        .arg(&file)
        .arg(dir.join("page"))
        .status()
        .expect("pdftoppm (Debian's poppler-utils; scripts/test installs it)");
    assert!(status.success(), "pdftoppm could not read the PDF");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pgm"))
        .collect();
    pages.sort();
    let codes = pages
        .iter()
        .map(|page| {
            let (width, height, pixels) = read_pgm(&std::fs::read(page).unwrap());
            let mut img = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
            let grids = img.detect_grids();
            assert_eq!(grids.len(), 1, "one QR code on {}", page.display());
            grids[0].decode().expect("the QR code decodes").1
        })
        .collect();
    let _ = std::fs::remove_dir_all(dir);
    codes
}

/// A binary greyscale PGM (`P5`, 8 bits), as `pdftoppm -gray` writes it.
fn read_pgm(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8(bytes[start..at].to_vec()).unwrap());
    }
    assert_eq!((fields[0].as_str(), fields[3].as_str()), ("P5", "255"));
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = bytes[at + 1..].to_vec();
    assert_eq!(pixels.len(), w * h);
    (w, h, pixels)
}

#[tokio::test]
async fn an_order_has_one_ticket_per_seat_in_a_pdf_whose_qr_codes_read_back() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let buyer = app.client();
    let code = buy(&app.base, &buyer, sale, 3).await;
    // A repeated checkout request returns the order it made, and makes no more tickets.
    let again = buyer
        .post(app.url(&format!("/api/v1/reservations/{code}/order")))
        .json(&json!({"name": "Grace Hopper", "email": "grace@example.com", "age": 45, "gender": "female"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);

    let codes = ticket_codes(&app.world.db, &code).await;
    assert_eq!(codes.len(), 3, "one ticket per seat");
    let mails: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&app.world.db)
        .await
        .unwrap();
    assert_eq!(mails, 1, "one tickets mail per order");
    assert!(codes.iter().all(|c| c.len() == 22), "{codes:?}");
    assert!(codes[0] != codes[1] && codes[1] != codes[2] && codes[0] != codes[2]);

    // The JSON API and the order page serve the same PDF.
    let resp = buyer
        .get(app.url(&format!("/api/v1/reservations/{code}/tickets.pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("tickets-BO-")
    );
    let pdf = resp.bytes().await.unwrap();

    let page = buyer.get(app.url(&format!("/orders/{code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("/orders/{code}/tickets.pdf"))
    );
    let from_page = buyer
        .get(app.url(&format!("/orders/{code}/tickets.pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(from_page.status(), StatusCode::OK);
    assert_eq!(from_page.bytes().await.unwrap().len(), pdf.len());

    // A page per ticket, in order, each QR code the ticket's own code.
    let read = qr_codes_of_pages(&pdf, &scratch_dir("order"));
    assert_eq!(read, codes);

    // Nobody else gets them.
    let stranger = app.client();
    for path in [
        format!("/orders/{code}/tickets.pdf"),
        format!("/api/v1/reservations/{code}/tickets.pdf"),
    ] {
        let resp = stranger.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_signed_link_opens_the_order_without_the_session_and_a_forged_one_does_not() {
    let app = TestApp::spawn().await;
    let sale = app.world.sale(10, 60).await.sale_id();
    let owner = app.client();
    let code = buy(&app.base, &owner, sale, 1).await;
    let other = buy(&app.base, &app.client(), sale, 1).await;
    let parsed: ReservationCode = code.parse().unwrap();
    let signed = boxoffice::tickets::link::signed_path(&app.world.settings.secret, &parsed);
    let key = signed.split("key=").nth(1).unwrap().to_string();

    let stranger = app.client();
    let page = stranger.get(app.url(&signed)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    let pdf_link = format!("/orders/{code}/tickets.pdf?key={key}");
    assert!(body.contains(&pdf_link), "the PDF link keeps the key");
    let pdf = stranger.get(app.url(&pdf_link)).send().await.unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(
        qr_codes_of_pages(&pdf.bytes().await.unwrap(), &scratch_dir("signed")),
        ticket_codes(&app.world.db, &code).await
    );

    let mut tampered = key.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        format!("/orders/{code}?key={tampered}"),
        format!("/orders/{other}?key={key}"),
        format!("/orders/{code}?key="),
        format!("/orders/{code}?key=%00%FF"),
        format!("/orders/{other}/tickets.pdf?key={key}"),
    ] {
        let resp = stranger.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A key that does not verify (an old link after the secret changed) takes nothing from the
    // session that ordered.
    let resp = owner
        .get(app.url(&format!("/orders/{code}?key={tampered}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn orders_made_before_tickets_existed_get_theirs_from_the_migration() {
    // A database with the schema as it was before tickets ...
    let url = crate::support::test_settings().database_url;
    let (server, name) = url.rsplit_once('/').unwrap();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap();
    let older = scratch_dir("migrations");
    for entry in std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap() < "20261130100000" {
            std::fs::copy(&path, older.join(path.file_name().unwrap())).unwrap();
        }
    }
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(older.as_path())
        .await
        .unwrap()
        .run(&db)
        .await
        .unwrap();

    // ... and an order of three in it.
    let organizer = boxoffice::db::organizers::insert(&db, "before@example.com", "x")
        .await
        .unwrap()
        .id;
    let event = boxoffice::db::events::insert(
        &db,
        &boxoffice::db::events::NewEvent {
            organizer_id: organizer,
            title: "Before Tickets".into(),
            description: String::new(),
            venue: String::new(),
            starts_at: chrono::Utc::now() + chrono::Duration::days(3),
            ends_at: chrono::Utc::now() + chrono::Duration::days(4),
            capacity: 10,
            price_minor: 100,
            currency: "EUR".into(),
        },
    )
    .await
    .unwrap();
    // Written as that schema takes it: the shop's own insert names columns added later.
    let sale_id = uuid::Uuid::new_v4();
    sqlx::query(
        "insert into ticket_sales (id, event_id, capacity, price_minor, currency, opens_at, hold_secs)
         values ($1, $2, 10, 100, 'EUR', now(), 60)",
    )
    .bind(sale_id)
    .bind(event.id)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "insert into orders (number, sale_id, reservation_code, quantity, unit_price_minor, currency,
                             buyer_name, buyer_email, buyer_age, buyer_gender)
         values ('BO-BEFORE0001', $1, $2, 3, 100, 'EUR', 'Ada', 'ada@example.com', 36, 'female')",
    )
    .bind(sale_id)
    .bind(uuid::Uuid::new_v4())
    .execute(&db)
    .await
    .unwrap();
    db.close().await;

    // The app's own migration gives it its three tickets, and they print.
    let db = boxoffice::db::connect_and_migrate(&url).await.unwrap();
    let order = boxoffice::db::orders::list_for_sale(&db, SaleId(sale_id), 10, 0)
        .await
        .unwrap()
        .remove(0);
    let tickets = boxoffice::db::tickets::of_order(&db, order.id).await.unwrap();
    assert_eq!(
        tickets.iter().map(|t| (t.number, t.of)).collect::<Vec<_>>(),
        [(1, 3), (2, 3), (3, 3)]
    );
    let codes: Vec<String> = tickets.iter().map(|t| t.code.clone()).collect();
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 43 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')),
        "{codes:?}"
    );
    assert!(codes[0] != codes[1] && codes[1] != codes[2]);
    let pdf = boxoffice::tickets::order_pdf(&db, &order).await.unwrap().unwrap();
    assert_eq!(qr_codes_of_pages(&pdf, &scratch_dir("before")), codes);
    let mails: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(mails, 0, "no mail for old orders");
}
