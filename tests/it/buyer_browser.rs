//! End to end in a real headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs): buyer A takes the last tickets, buyer B waits and sees the position,
//! A's hold lapses, B's page moves to checkout by itself, B buys and sees the confirmation.
//! Screenshots of the waiting room and of checkout go to `target/screenshots/`. The browser's
//! console must show no Content-Security-Policy refusal on the way. Also the Swagger UI, the
//! door page taking scans one after another, the dashboard under a crowd, a buyer paying on
//! the order page through localstripe's Stripe.js, a fan who finds the sale sold out
//! joining its waitlist, getting the offer by its mail's link and buying, a buyer counting
//! down in the pre-queue whose page moves on to checkout after the draw at the opening, and a
//! buyer returning a ticket from the order page.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::TestApp;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port; stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: this test needs Debian's Chromium. Install it with \
             `apt-get install -y chromium chromium-driver` (.ci/run does this)."
        );
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Driver { child, port }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=900,1000",
        &format!("--user-data-dir={}", profile.display()),
    ];
    // The console log, read at the end to find what the Content-Security-Policy refused.
    let caps = json!({
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let caps = caps.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start a Chromium session: {e}"),
        }
    }
}

/// chromedriver's console log of the page(s) so far (its own command, outside W3C WebDriver).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// Console messages in which Chromium reports a Content-Security-Policy refusal.
async fn csp_violations(c: &Client) -> Vec<String> {
    let log = c
        .issue_cmd(BrowserLog)
        .await
        .expect("chromedriver returns the console log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["message"].as_str())
        .filter(|m| m.contains("Content Security Policy") || m.contains("Refused to"))
        .map(str::to_string)
        .collect()
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, c.screenshot().await.unwrap()).unwrap();
    println!("screenshot: {}", path.display());
    path
}

async fn wait_for_path(c: &Client, part: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let url = c.current_url().await.unwrap();
        if url.path().contains(part) {
            return url.path().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "still at {url} after {within:?}, expected {part}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `test` in a fresh headless Chromium and always closes it afterwards, a failing test
/// included: a browser left open would outlive the test run.
async fn with_browser<F, Fut>(test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let driver = start_driver();
    let profile = std::env::temp_dir().join(format!("bo-chromium-{}", uuid::Uuid::new_v4().simple()));
    let b = browser(&driver, &profile).await;
    let outcome = tokio::spawn(test(b.clone())).await;
    let _ = b.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_buyer_moves_to_checkout_by_itself_and_buys() {
    with_browser(|b| async move { scenario(&b).await }).await;
}

async fn scenario(b: &Client) {
    let app = TestApp::spawn().await;
    // A's hold lasts 3 s; the sale's holds are made longer right after A joins, so that B has
    // time to fill the form once admitted.
    let record = app.world.sale(2, 3).await;
    let sale = record.sale_id();
    // B finds the event and asks for one ticket: all are held by then, so B waits.
    b.goto(&app.url("/")).await.unwrap();
    screenshot(b, "events.png").await;
    b.find(Locator::Css("a.title")).await.unwrap().click().await.unwrap();
    b.find(Locator::Css("select#quantity"))
        .await
        .unwrap()
        .select_by_value("1")
        .await
        .unwrap();
    // A takes both tickets only now, so that a slow browser start cannot eat A's short hold.
    let a = app.client();
    let joined = a
        .post(app.url(&format!("/api/v1/sales/{sale}/reservations")))
        .json(&json!({"quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), reqwest::StatusCode::CREATED);
    sqlx::query("update ticket_sales set hold_secs = 120 where id = $1")
        .bind(sale.0)
        .execute(&app.world.db)
        .await
        .unwrap();
    app.world.sales.sync(sale).await.unwrap();

    click(b, "form.buy button").await;
    wait_for_path(b, "/wait/", Duration::from_secs(5)).await;
    let pos = b
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(".pos"))
        .await
        .unwrap();
    assert_eq!(pos.text().await.unwrap(), "1");
    let text = b.find(Locator::Css(".position")).await.unwrap().text().await.unwrap();
    assert!(text.contains("You are number 1 in line"), "{text}");
    screenshot(b, "waiting-room.png").await;

    // A's hold lapses; B's poll admits B and HTMX moves the page to checkout.
    wait_for_path(b, "/checkout/", Duration::from_secs(20)).await;
    b.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("#countdown"))
        .await
        .unwrap();
    let summary = b
        .find(Locator::Css("table.summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(summary.contains("€25.00"), "{summary}");
    screenshot(b, "checkout.png").await;

    fill_in_the_details(b, "Barbara Liskov", "barbara@example.com").await;
    wait_for_path(b, "/orders/", Duration::from_secs(10)).await;
    let number = b
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(".order-number"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(number.starts_with("BO-"), "{number}");
    let page = b.source().await.unwrap();
    assert!(page.contains("Barbara Liskov") && page.contains("The Few Tickets Tour"));
    screenshot(b, "confirmation.png").await;
    assert_eq!(app.world.pg_sold(sale).await, 1);

    // The whole way ran under the app's Content-Security-Policy without a refusal: no inline
    // script or style, HTMX's own indicator styles switched off.
    let refused = csp_violations(b).await;
    assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_counts_down_in_the_prequeue_and_moves_to_checkout_after_the_draw() {
    with_browser(|b| async move { prequeue_walk(&b).await }).await;
}

/// A buyer joins before the opening: the countdown shows the receipt and the commitment; at
/// the opening the shop draws by itself, and the page moves on to checkout without a click.
async fn prequeue_walk(b: &Client) {
    let app = TestApp::spawn_with(|s| s.beacon = boxoffice::config::BeaconSource::Local).await;
    let sale = crate::prequeue::prequeue_sale(&app.world, 5, chrono::Duration::seconds(10)).await;
    b.goto(&app.url(&format!("/sales/{sale}"))).await.unwrap();
    click(b, "form.buy button").await;
    wait_for_path(b, "/wait/", Duration::from_secs(5)).await;
    let receipt = b
        .find(Locator::Css("code.receipt"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(receipt.starts_with(&format!("v1.{sale}.")), "{receipt}");
    let commitment = b
        .find(Locator::Css("code.commitment"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(commitment.len(), 64, "{commitment}");
    screenshot(b, "prequeue.png").await;

    wait_for_path(b, "/checkout/", Duration::from_secs(30)).await;
    fill_in_the_details(b, "Grace Hopper", "grace@example.com").await;
    wait_for_path(b, "/orders/", Duration::from_secs(10)).await;
    assert_eq!(app.world.pg_sold(sale).await, 1);
    let refused = csp_violations(b).await;
    assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
}

/// Clicks the element `css` finds.
async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

/// Types a buyer's details into the checkout form.
async fn fill_checkout(b: &Client, name: &str, email: &str, age: &str) {
    for (field, value) in [("#name", name), ("#email", email), ("#age", age)] {
        b.find(Locator::Css(field))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    b.find(Locator::Css("#gender"))
        .await
        .unwrap()
        .select_by_value("female")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_joins_the_waitlist_gets_the_offer_by_its_mail_link_and_buys() {
    with_browser(|b| async move { waitlist_walk(&b).await }).await;
}

async fn waitlist_walk(b: &Client) {
    use boxoffice::sale::Owner;
    let app = TestApp::spawn().await;
    let w = &app.world;
    // 3 tickets: 2 sold, 1 held; the fan wants 2, more than is unsold.
    let sale = w.sale(3, 120).await.sale_id();
    let (buyer, holder) = (Owner::random(), Owner::random());
    let bought = w.sales.join(sale, &buyer, w.sales.quantity(2).unwrap()).await.unwrap();
    w.sales
        .confirm(&bought.code, &buyer, &crate::support::ada())
        .await
        .unwrap();
    let held = w.sales.join(sale, &holder, w.sales.quantity(1).unwrap()).await.unwrap();

    b.goto(&app.url(&format!("/sales/{sale}"))).await.unwrap();
    b.find(Locator::Css("select#quantity"))
        .await
        .unwrap()
        .select_by_value("2")
        .await
        .unwrap();
    click(b, "form.buy button").await;
    // Sold out for two: the waitlist's form, where the fan settles for one.
    wait_for_path(b, "/waitlist", Duration::from_secs(5)).await;
    screenshot(b, "waitlist-form.png").await;
    b.find(Locator::Css("select#quantity"))
        .await
        .unwrap()
        .select_by_value("1")
        .await
        .unwrap();
    b.find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("fan@example.com")
        .await
        .unwrap();
    click(b, "form.details button").await;
    let place = wait_for_path(b, "/waitlist/", Duration::from_secs(5)).await;
    let text = b.find(Locator::Css(".position")).await.unwrap().text().await.unwrap();
    assert!(text.contains("You are number 1 on the waitlist"), "{text}");
    screenshot(b, "waitlist-place.png").await;

    // The holder gives up: the ticket is offered to the fan, whose mail carries the link.
    w.sales.release(&held.code, &holder).await.unwrap();
    let token: uuid::Uuid = place.rsplit('/').next().unwrap()[32..].parse().unwrap();
    w.sales.record_waitlist(sale).await.unwrap();
    let entry = boxoffice::db::waitlist::find(&w.db, token).await.unwrap().unwrap();
    assert_eq!(entry.state, "offered");
    let link = boxoffice::mail::offer_link(&w.settings, &entry);
    b.goto(&app.url(link.strip_prefix(&w.settings.public_url).unwrap()))
        .await
        .unwrap();
    wait_for_path(b, "/checkout/", Duration::from_secs(5)).await;
    fill_checkout(b, "Frances Allen", "fan@example.com", "40").await;
    screenshot(b, "waitlist-checkout.png").await;
    click(b, "form.details button").await;
    wait_for_path(b, "/orders/", Duration::from_secs(10)).await;
    assert!(b.source().await.unwrap().contains("Frances Allen"));
    assert_eq!(w.pg_sold(sale).await, 3);
    let refused = csp_violations(b).await;
    assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
}

/// Fills the checkout form's details and sends it.
async fn fill_in_the_details(b: &Client, name: &str, email: &str) {
    fill_checkout(b, name, email, "50").await;
    click(b, "form.details button").await;
}

/// A buyer checks out and pays on the order page, through Stripe.js as localstripe serves it
/// (its card element; the shop confirms the payment with the card, `assets/pay.js`), then
/// lands on the paid order with its PDF. A card that asks for 3-D Secure is paid the same
/// way, through localstripe's authentication dialog. All under the CSP that lets Stripe in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_pays_on_the_order_page_and_gets_the_tickets() {
    with_browser(|b| async move {
        let stripe = crate::stripe_fake::FakeStripe::start().await;
        let app = TestApp::spawn_with(|s| stripe.configure(s, 600)).await;
        let sale = app.world.sale(10, 120).await.sale_id();
        for (buyer, card, authenticate) in [
            ("Barbara Liskov", "4242424242424242", false),
            ("Frances Allen", "4000002500003155", true),
        ] {
            b.delete_all_cookies().await.unwrap();
            b.goto(&app.url(&format!("/sales/{sale}"))).await.unwrap();
            click(&b, "form.buy button").await;
            wait_for_path(&b, "/checkout/", Duration::from_secs(10)).await;
            fill_in_the_details(&b, buyer, "buyer@example.com").await;
            let path = wait_for_path(&b, "/orders/", Duration::from_secs(10)).await;
            let code = path.trim_start_matches("/orders/").to_string();
            let order_state = || async {
                let token = code.parse::<boxoffice::sale::ReservationCode>().unwrap().token;
                sqlx::query_scalar::<_, String>("select state from orders where reservation_code = $1")
                    .bind(token)
                    .fetch_one(&app.world.db)
                    .await
                    .unwrap()
            };
            assert_eq!(order_state().await, "awaiting_payment");

            // localstripe's card element: a field per part of the card.
            let number = b
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css("#payment-element input[placeholder=number]"))
                .await
                .unwrap();
            number.send_keys(card).await.unwrap();
            for (part, text) in [
                ("exp_month", "12"),
                ("exp_year", "40"),
                ("cvc", "123"),
                ("postal_code", "75001"),
            ] {
                b.find(Locator::Css(&format!("#payment-element input[placeholder={part}]")))
                    .await
                    .unwrap()
                    .send_keys(text)
                    .await
                    .unwrap();
            }
            screenshot(&b, "payment.png").await;
            click(&b, "#payment-form button").await;
            if authenticate {
                let confirm = b
                    .wait()
                    .at_most(Duration::from_secs(10))
                    .for_element(Locator::XPath("//button[text()='Complete authentication']"))
                    .await
                    .unwrap();
                confirm.click().await.unwrap();
            }

            let download = match b
                .wait()
                .at_most(Duration::from_secs(15))
                .for_element(Locator::Css("a.download"))
                .await
            {
                Ok(link) => link,
                Err(e) => {
                    let message = b.source().await.unwrap_or_default();
                    panic!("no paid order page for {buyer}: {e}\n{message}");
                }
            };
            let heading = b.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
            assert!(heading.contains("paid"), "{heading}");
            assert_eq!(order_state().await, "paid");
            let pdf = download.attr("href").await.unwrap().unwrap();
            assert_eq!(pdf, format!("/orders/{code}/tickets.pdf"));
            // The link serves the tickets to this browser.
            let served = b
                .execute_async(
                    "var done = arguments[arguments.length - 1];
                     fetch(arguments[0]).then(function (r) { done([r.status, r.headers.get('content-type')]); });",
                    vec![json!(pdf)],
                )
                .await
                .unwrap();
            assert_eq!(served, json!([200, "application/pdf"]));
        }
        screenshot(&b, "paid.png").await;
        assert_eq!(app.world.pg_sold(sale).await, 2);
        let refused = csp_violations(&b).await;
        assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
    })
    .await;
}

/// The Swagger UI at `/api/docs` runs under its own, relaxed policy: it renders the API's
/// operations with no refusal in the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_docs_render_under_their_policy() {
    with_browser(|b| async move {
        let app = TestApp::spawn().await;
        b.goto(&app.url("/api/docs")).await.unwrap();
        let found = b
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(".opblock"))
            .await
            .map(|_| ());
        assert!(found.is_ok(), "the Swagger UI shows no operations");
        let refused = csp_violations(&b).await;
        assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
    })
    .await;
}

/// The door page as staff use it: the code field has the focus, a scanner types a code and
/// presses Enter, the answer appears without a page load, and the field is empty and focused
/// again for the next ticket; all under the CSP (the page's script is `assets/checkin.js`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_page_takes_scans_one_after_another() {
    with_browser(|b| async move {
        let app = crate::admin_support::AdminApp::spawn().await;
        let org = app.organizer().await;
        let sale = open_sale(&org, "Door Night", 10, 0).await;
        let buyer = crate::support::browser();
        let order = crate::tickets::buy(&app.base, &buyer, sale.parse().unwrap(), 2).await;
        let tickets = crate::tickets::ticket_codes(&app.state.db, &order).await;

        sign_in(&b, &app.base, &org.email).await;
        b.goto(&format!("{}/admin/sales/{sale}/check-in", app.base))
            .await
            .unwrap();
        if let Err(e) = b
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("code"))
            .await
        {
            let at = b.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let page = b.source().await.unwrap_or_default();
            panic!("no door page at {at}: {e}\n{page}");
        }

        let focused = || async {
            b.execute(
                "var f = document.getElementById('code'); return [document.activeElement === f, f.value];",
                vec![],
            )
            .await
            .unwrap()
        };
        assert_eq!(focused().await, json!([true, ""]), "the field has the focus");
        let enter = char::from(fantoccini::key::Key::Enter);
        let count = || async {
            b.find(Locator::Css("#admitted-count"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        assert_eq!(count().await, "0 of 2 tickets admitted");
        for (code, result, says, admitted) in [
            (&tickets[0], "admitted", "Valid — admit", "1 of 2"),
            (&tickets[1], "admitted", "Valid — admit", "2 of 2"),
            (&tickets[0], "already_used", "Already used at", "2 of 2"),
        ] {
            // Typed into the field that has the focus, as a USB scanner does.
            b.active_element()
                .await
                .unwrap()
                .send_keys(&format!("{code}{enter}"))
                .await
                .unwrap();
            let answer = b
                .wait()
                .at_most(Duration::from_secs(5))
                .for_element(Locator::Css(&format!("#answer[data-result={result}]")))
                .await
                .unwrap();
            assert!(answer.text().await.unwrap().contains(says));
            assert_eq!(count().await, format!("{admitted} tickets admitted"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while focused().await != json!([true, ""]) {
                assert!(Instant::now() < deadline, "the field is not ready for the next scan");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The next answer must be a new one, not this one still standing.
            b.execute(
                "document.getElementById('answer').removeAttribute('data-result')",
                vec![],
            )
            .await
            .unwrap();
        }
        screenshot(&b, "door.png").await;
        let refused = csp_violations(&b).await;
        assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
    })
    .await;
}

/// The organizer's dashboard of a sale under a small crowd: the charts draw one point per
/// sample (the rates one fewer) and grow as the page refreshes itself, and the funnel adds up
/// to the buyers; all under the CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_charts_a_sale_under_a_crowd() {
    with_browser(|b| async move {
        let app = crate::admin_support::AdminApp::spawn_with(|s| s.sample_every = Duration::from_secs(1)).await;
        let org = app.organizer().await;
        let sale = open_sale(&org, "Crowd Night", 5, 1000).await;
        // Eight buyers: five are admitted, three wait, one of whom leaves.
        const BUYERS: i64 = 8;
        let mut last = None;
        for _ in 0..BUYERS {
            let buyer = crate::support::browser();
            let r = crate::support::api_join(&app.base, &buyer, &sale, 1).await;
            last = Some((buyer, r["code"].as_str().unwrap().to_string()));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (buyer, code) = last.unwrap();
        let left = buyer
            .delete(format!("{}/api/v1/reservations/{code}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(left.status(), reqwest::StatusCode::NO_CONTENT);

        sign_in(&b, &app.base, &org.email).await;
        b.goto(&format!("{}/admin/sales/{sale}", app.base)).await.unwrap();
        b.wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css("#series"))
            .await
            .unwrap();

        // What the page shows, read in one go: the samples it drew from, the points of each
        // chart's lines, and the funnel.
        let read = || async {
            b.execute(
                "var s = document.getElementById('series');
                 var points = {};
                 s.querySelectorAll('figure.chart').forEach(function (f) {
                   points[f.dataset.chart] = Array.from(f.querySelectorAll('polyline.series')).map(function (l) {
                     var p = l.getAttribute('points').trim(); return p ? p.split(/\\s+/).length : 0; });
                 });
                 var funnel = {};
                 s.querySelectorAll('tr[data-funnel]').forEach(function (r) {
                   funnel[r.dataset.funnel] = parseInt(r.querySelector('td.count').textContent, 10); });
                 return [parseInt(s.dataset.samples, 10), points, funnel];",
                vec![],
            )
            .await
            .unwrap()
        };
        let first = read().await;
        let samples = first[0].as_i64().unwrap();
        // The page refreshes itself: within a few seconds it draws more samples.
        let deadline = Instant::now() + Duration::from_secs(10);
        let now = loop {
            let now = read().await;
            if now[0].as_i64().unwrap() > samples && now[0].as_i64().unwrap() >= 3 {
                break now;
            }
            assert!(Instant::now() < deadline, "the charts did not grow: {now}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let n = now[0].as_i64().unwrap();
        let stored =
            boxoffice::db::samples::list_for_sale(&app.state.db, boxoffice::sale::SaleId(sale.parse().unwrap()))
                .await
                .unwrap();
        assert!(n <= stored.len() as i64, "{n} drawn of {} stored", stored.len());
        let points = &now[1];
        for chart in ["chart-queue", "chart-checkout", "chart-sold"] {
            assert_eq!(points[chart], json!([n]), "{chart}: {points}");
        }
        assert_eq!(points["chart-rates"], json!([n - 1, n - 1]), "{points}");

        let f = &now[2];
        let c = |k: &str| f[k].as_i64().unwrap_or_else(|| panic!("{k} in {f}"));
        assert_eq!(c("joined"), BUYERS, "{f}");
        assert_eq!(
            c("admitted") + c("waiting") + c("left_queue") + c("abandoned") + c("sold_out"),
            BUYERS,
            "{f}"
        );
        assert_eq!(
            c("admitted"),
            c("ordered") + c("at_checkout") + c("released") + c("lapsed"),
            "{f}"
        );
        assert_eq!([c("admitted"), c("waiting"), c("left_queue")], [5, 2, 1], "{f}");
        screenshot(&b, "dashboard.png").await;
        let refused = csp_violations(&b).await;
        assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
    })
    .await;
}

/// A sale of a new event of `org`'s, made through the API; its id.
async fn open_sale(org: &crate::admin_support::Organizer, title: &str, capacity: i32, price_minor: i64) -> String {
    let (_, event) = org
        .api
        .post(
            "/events",
            json!({"title": title, "description": "One night.", "starts_at": crate::admin_support::api_time(5, 0),
                   "ends_at": crate::admin_support::api_time(5, 3), "capacity": capacity, "price_minor": price_minor}),
        )
        .await;
    let (_, sale) = org
        .api
        .post(&format!("/events/{}/sales", event["id"].as_str().unwrap()), json!({}))
        .await;
    sale["id"].as_str().unwrap().to_string()
}

/// Signs the organizer in through the page, and waits until the sign-in page has gone.
async fn sign_in(b: &Client, base: &str, email: &str) {
    b.goto(&format!("{base}/admin/sign-in")).await.unwrap();
    b.find(Locator::Css("#f-email"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    b.find(Locator::Css("#f-password"))
        .await
        .unwrap()
        .send_keys(crate::admin_support::PASSWORD)
        .await
        .unwrap();
    click(b, "main form button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.current_url().await.unwrap().path().ends_with("/sign-in") {
        assert!(Instant::now() < deadline, "the sign-in did not go through");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_returns_a_ticket_from_the_order_page_and_another_buyer_takes_it() {
    with_browser(|b| async move { return_walk(&b).await }).await;
}

async fn return_walk(b: &Client) {
    use boxoffice::sale::Owner;
    use boxoffice::sale::waitlist::{WaitlistEmail, WaitlistState};
    let app = TestApp::spawn().await;
    let w = &app.world;
    let sale = w.sale(2, 120).await.sale_id();
    boxoffice::db::returns::set_allowed(&w.db, sale, true).await.unwrap();
    // The buyer takes both tickets through the pages.
    b.goto(&app.url(&format!("/sales/{sale}"))).await.unwrap();
    b.find(Locator::Css("select#quantity"))
        .await
        .unwrap()
        .select_by_value("2")
        .await
        .unwrap();
    click(b, "form.buy button").await;
    wait_for_path(b, "/checkout/", Duration::from_secs(5)).await;
    fill_in_the_details(b, "Hedy Lamarr", "hedy@example.com").await;
    wait_for_path(b, "/orders/", Duration::from_secs(10)).await;
    // A fan waits on the waitlist for one.
    let fan = Owner::random();
    let one = w.sales.quantity(1).unwrap();
    w.sales.join(sale, &fan, one).await.unwrap();
    let email = WaitlistEmail::parse("fan@example.com").unwrap();
    let entry = w.sales.join_waitlist(sale, &fan, one, &email).await.unwrap();

    // The buyer offers one ticket back: the fan gets the offer; the page says the ticket is
    // still the buyer's until someone takes it, and offers to withdraw.
    b.find(Locator::Css("select#return-tickets"))
        .await
        .unwrap()
        .select_by_value("1")
        .await
        .unwrap();
    click(b, "#return-form button").await;
    let returning = b.wait().for_element(Locator::Css("#returning")).await.unwrap();
    let text = returning.text().await.unwrap();
    assert!(text.starts_with("1 of your tickets are offered for return"), "{text}");
    screenshot(b, "return-offered.png").await;
    let offer = w.sales.waitlist_status(&entry.code, &fan).await.unwrap();
    assert_eq!(offer.state, WaitlistState::Offered);

    // The fan buys it: on the next look the buyer's page says it went to another buyer.
    w.sales
        .confirm(&entry.code, &fan, &crate::support::ada())
        .await
        .unwrap();
    b.refresh().await.unwrap();
    let returned = b.wait().for_element(Locator::Css("#returned")).await.unwrap();
    let text = returned.text().await.unwrap();
    assert!(text.starts_with("1 of your tickets went to another buyer"), "{text}");
    assert!(
        b.find(Locator::Css("#withdraw-return")).await.is_err(),
        "nothing left to withdraw"
    );
    screenshot(b, "return-taken.png").await;
    assert_eq!(w.pg_sold(sale).await, 2);
    let refused = csp_violations(b).await;
    assert!(refused.is_empty(), "the CSP refused: {refused:#?}");
}
