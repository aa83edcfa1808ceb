//! The door check-in: each ticket admitted once, however many doors scan it at the same
//! moment; other events' tickets, cancelled orders and other organizers' sales refused; the
//! page a scanner types into.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::admin_support::{AdminApp, Organizer, api_time};
use crate::tickets::{buy, ticket_codes};

/// An organizer's event and sale made through the API, and a buyer's order of `quantity` in it.
async fn organizer_with_an_order(app: &AdminApp, quantity: u8) -> (Organizer, String, String) {
    let org = app.organizer().await;
    let (s, event) = org
        .api
        .post(
            "/events",
            json!({"title": "Door Night", "description": "Scanned at the door.", "starts_at": api_time(10, 0),
                   "ends_at": api_time(10, 3), "capacity": 50, "price_minor": 1000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{event}");
    let (s, sale) = org
        .api
        .post(&format!("/events/{}/sales", event["id"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sale}");
    let sale_id = sale["id"].as_str().unwrap().to_string();
    let buyer = crate::support::browser();
    let code = buy(&app.base, &buyer, sale_id.parse().unwrap(), quantity).await;
    (org, sale_id, code)
}

#[tokio::test]
async fn twenty_doors_scanning_one_ticket_at_once_admit_it_exactly_once() {
    let app = AdminApp::spawn().await;
    let (org, sale, code) = organizer_with_an_order(&app, 2).await;
    let tickets = ticket_codes(&app.state.db, &code).await;

    for round in 0..3 {
        let ticket = &tickets[round % 2];
        if round == 2 {
            // The second ticket was scanned in round 1; reset it to race again on a fresh row.
            sqlx::query("update tickets set checked_in_at = null where code = $1")
                .bind(ticket)
                .execute(&app.state.db)
                .await
                .unwrap();
        }
        let path = format!("/sales/{sale}/check-ins");
        let scans = (0..20).map(|_| org.api.post(&path, json!({ "code": ticket })));
        let answers = join_all(scans).await;
        let admitted = answers.iter().filter(|(_, a)| a["result"] == "admitted").count();
        let used = answers.iter().filter(|(_, a)| a["result"] == "already_used").count();
        assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
        assert_eq!((admitted, used), (1, 19), "round {round}: {answers:?}");
        let first = answers.iter().find(|(_, a)| a["result"] == "admitted").unwrap();
        assert!(
            answers
                .iter()
                .all(|(_, a)| a["checked_in_at"] == first.1["checked_in_at"]),
            "every door names the one admission's time: {answers:?}"
        );
        assert_eq!(first.1["holder"], "Grace Hopper");
        assert_eq!(first.1["ticket"], format!("{} of 2", round % 2 + 1));
    }
}

#[tokio::test]
async fn the_door_refuses_other_events_tickets_and_other_organizers_sales() {
    let app = AdminApp::spawn().await;
    let (org, sale, _) = organizer_with_an_order(&app, 1).await;
    let (other_org, other_sale, other_code) = organizer_with_an_order(&app, 1).await;
    let other_ticket = &ticket_codes(&app.state.db, &other_code).await[0];

    let path = format!("/sales/{sale}/check-ins");
    for code in [
        other_ticket.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAA",
        "not a ticket <script>",
        "nul\u{0}byte",
        "'; drop table tickets; --",
        "☃",
    ] {
        let (s, a) = org.api.post(&path, json!({ "code": code })).await;
        assert_eq!(
            (s, a["result"].as_str()),
            (StatusCode::OK, Some("not_valid")),
            "{code}: {a}"
        );
        assert!(a["holder"].is_null() && a["checked_in_at"].is_null());
    }
    // Nothing to scan, or far too much (also when spaces pad it past the bound, and counted in
    // characters, as the document's maxLength): a 422.
    for body in [
        json!({"code": "  "}),
        json!({}),
        json!({"code": "x".repeat(201)}),
        json!({"code": format!(" {}", "*".repeat(200))}),
        json!({"code": "☃".repeat(201)}),
    ] {
        let (s, a) = org.api.post(&path, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{a}");
    }
    // Another organizer's sale is a 404, and scanning there admits nothing.
    let (s, _) = org
        .api
        .post(
            &format!("/sales/{other_sale}/check-ins"),
            json!({ "code": other_ticket }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, a) = other_org
        .api
        .post(
            &format!("/sales/{other_sale}/check-ins"),
            json!({ "code": other_ticket }),
        )
        .await;
    assert_eq!((s, a["result"].as_str()), (StatusCode::OK, Some("admitted")));

    // A ticket of a cancelled order does not admit (the state a payment deadline will set).
    let own_code = sqlx::query_scalar::<_, String>(
        "select t.code from tickets t join orders o on o.id = t.order_id where o.sale_id = $1::uuid",
    )
    .bind(&sale)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    sqlx::query("update orders set state = 'cancelled' where sale_id = $1::uuid")
        .bind(&sale)
        .execute(&app.state.db)
        .await
        .unwrap();
    let (_, a) = org.api.post(&path, json!({ "code": own_code })).await;
    assert_eq!(a["result"], "not_valid");
}

#[tokio::test]
async fn the_door_page_answers_big_and_clear_and_clears_for_the_next_scan() {
    let app = AdminApp::spawn().await;
    let (org, sale, code) = organizer_with_an_order(&app, 1).await;
    let ticket = &ticket_codes(&app.state.db, &code).await[0];
    let door = format!("/admin/sales/{sale}/check-in");

    let (s, dashboard) = org.browser.page(&format!("/admin/sales/{sale}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(dashboard.contains(&door), "the dashboard links to the door");
    let (s, page) = org.browser.page(&door).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("autofocus") && page.contains("checkin.js"), "{page}");

    let csrf = org.browser.csrf(&door).await;
    let scan_with = |code: String, csrf: String| {
        let url = format!("{}{door}", org.browser.base);
        let http = org.browser.http.clone();
        async move {
            let resp = http
                .post(url)
                .header("hx-request", "true")
                .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let scan = |code: String| scan_with(code, csrf.clone());
    let (s, first) = scan(format!(" {ticket}\n")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        first.contains("Valid — admit") && first.contains("Grace Hopper"),
        "{first}"
    );
    assert!(!first.contains("<html"), "HTMX gets the answer alone");
    assert!(first.contains("1 of 1 tickets admitted"), "and the count: {first}");
    let (_, second) = scan(ticket.clone()).await;
    assert!(second.contains("Already used at"), "{second}");
    let (_, wrong) = scan("nonsense".into()).await;
    assert!(wrong.contains("Not a ticket of this event"), "{wrong}");

    // Without HTMX the whole page comes back with the answer; without the CSRF token nothing
    // is checked in.
    let resp = org
        .browser
        .post(&door, &[("csrf", csrf.as_str()), ("code", ticket)])
        .await;
    let page = resp.text().await.unwrap();
    assert!(page.contains("<html") && page.contains("Already used at"));
    let resp = org.browser.post(&door, &[("code", ticket)]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Through HTMX the door sees why nothing was checked, in the answer's place; signed out,
    // it is sent to sign in as a whole page.
    let (_, expired) = scan_with(ticket.clone(), "stale-token".into()).await;
    assert!(
        expired.contains("data-result=\"retry\"") && expired.contains("reload the page"),
        "{expired}"
    );
    let signed_out = app
        .browser()
        .http
        .post(format!("{}{door}", app.base))
        .header("hx-request", "true")
        .form(&[("csrf", csrf.as_str()), ("code", ticket.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.headers()["hx-redirect"], "/admin/sign-in");

    // Another organizer sees a 404.
    let stranger = app.organizer().await;
    let (s, _) = stranger.browser.page(&door).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Door scans sent while a transaction cancelling the ticket's order is open: they wait for
/// it, and read the order as it left it. Committed, the ticket admits nobody; rolled back,
/// it admits its holder once.
#[tokio::test]
async fn a_door_scan_racing_a_cancellation_of_its_order_never_admits_a_cancelled_ticket() {
    let app = AdminApp::spawn().await;
    let (org, sale, code) = organizer_with_an_order(&app, 1).await;
    let ticket = ticket_codes(&app.state.db, &code).await.remove(0);
    let order: i64 =
        sqlx::query_scalar("select o.id from orders o join tickets t on t.order_id = o.id where t.code = $1")
            .bind(&ticket)
            .fetch_one(&app.state.db)
            .await
            .unwrap();

    for commit in [false, true] {
        // A cancellation's statements (`db::orders::cancel_in`), for an order whose tickets
        // are valid: the state first, then the seats back to the event and the sale.
        let mut cancelling = app.state.db.begin().await.unwrap();
        sqlx::query("update orders set state = 'cancelled' where id = $1")
            .bind(order)
            .execute(&mut *cancelling)
            .await
            .unwrap();
        sqlx::query(
            "update events set sold = sold - 1 where id = (select event_id from ticket_sales where id = $1::uuid)",
        )
        .bind(&sale)
        .execute(&mut *cancelling)
        .await
        .unwrap();

        let path = format!("/sales/{sale}/check-ins");
        let scans = tokio::spawn({
            let api = org.api.clone();
            let ticket = ticket.clone();
            async move { join_all((0..8).map(|_| api.post(&path, json!({ "code": ticket })))).await }
        });
        wait_for_scans_blocked_on_the_order(&app, 8).await;
        assert!(!scans.is_finished(), "no scan answers while the cancellation is open");

        if commit {
            cancelling.commit().await.unwrap();
        } else {
            cancelling.rollback().await.unwrap();
        }
        let answers = scans.await.unwrap();
        assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
        let results: Vec<&str> = answers.iter().map(|(_, a)| a["result"].as_str().unwrap()).collect();
        let admitted = results.iter().filter(|r| **r == "admitted").count();
        let checked_in: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("select checked_in_at from tickets where code = $1")
                .bind(&ticket)
                .fetch_one(&app.state.db)
                .await
                .unwrap();
        if commit {
            assert!(results.iter().all(|r| *r == "not_valid"), "{results:?}");
            assert!(checked_in.is_none(), "a cancelled order's ticket was checked in");
        } else {
            assert_eq!(admitted, 1, "{results:?}");
            assert!(checked_in.is_some());
            // Ready for the committed round: the same ticket, not yet used.
            sqlx::query("update tickets set checked_in_at = null where code = $1")
                .bind(&ticket)
                .execute(&app.state.db)
                .await
                .unwrap();
        }
    }
}

/// Waits until `n` door scans of this test's database wait for a row lock.
async fn wait_for_scans_blocked_on_the_order(app: &AdminApp, n: i64) {
    let start = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'
               and query like '%for share of o%'",
        )
        .fetch_one(&app.state.db)
        .await
        .unwrap();
        if waiting == n {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{waiting} of {n} scans wait for the order's row"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
