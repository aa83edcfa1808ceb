//! Accounts: sign-up, sign-in, sign-out, wrong passwords, CSRF, the sign-in rate limits, and
//! the command line that makes the first account.

use std::io::Write;
use std::process::{Command, Stdio};

use boxoffice::admin::{FORMS_PER_MINUTE, PER_ACCOUNT_BURST, PER_CLIENT_BURST};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::admin_support::{AdminApp, PASSWORD, csrf_in, field_error, location};

fn email() -> String {
    format!("{}@example.com", Uuid::new_v4().simple())
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("bo_session="))
        .map(str::to_string)
}

fn cookie_id(cookie: &str) -> String {
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn sign_up_sign_out_and_sign_in_again() {
    let app = AdminApp::spawn().await;
    let b = app.browser();
    let (email, password) = (email(), "a long enough password");

    assert_eq!(
        location(&b.get("/admin").await),
        "/admin/sign-in",
        "signed out: to sign-in"
    );
    let form = b.get("/admin/sign-up").await;
    let before = session_cookie(&form).expect("the form starts a session for its CSRF token");
    assert!(
        before.contains("HttpOnly") && before.contains("SameSite=Lax"),
        "{before}"
    );
    assert!(!before.contains("Secure"), "plain http in tests: {before}");
    let token = csrf_in(&form.text().await.unwrap()).unwrap();

    let resp = b
        .post(
            "/admin/sign-up",
            &[("csrf", &token), ("email", &email), ("password", password)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin");
    let after = session_cookie(&resp).expect("a renewed session at sign-in");
    assert_ne!(
        cookie_id(&after),
        cookie_id(&before),
        "the session id changes at sign-in"
    );
    let (status, body) = b.page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Your events") && body.contains("Sign out"));

    let token = b.csrf("/admin").await;
    let resp = b.post("/admin/sign-out", &[("csrf", &token)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&b.get("/admin").await), "/admin/sign-in", "signed out");

    let resp = b.sign_in(&email.to_uppercase(), password).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "emails are case-insensitive");
    assert_eq!(b.page("/admin").await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_old_session_is_worthless_after_sign_out() {
    let app = AdminApp::spawn().await;
    let b = app.browser();
    let resp = b.sign_up(&email(), PASSWORD).await;
    let cookie = cookie_id(&session_cookie(&resp).unwrap());
    // a client that copied the cookie
    let copy = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let visit = || copy.get(format!("{}/admin", app.base)).header("cookie", &cookie).send();
    assert_eq!(visit().await.unwrap().status(), StatusCode::OK);
    let token = b.csrf("/admin").await;
    assert_eq!(
        b.post("/admin/sign-out", &[("csrf", &token)]).await.status(),
        StatusCode::SEE_OTHER
    );
    let resp = visit().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin/sign-in");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_account_is_refused_alike() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let b = app.browser();
    for (who, password) in [(o.email.as_str(), "not the password"), ("nobody@example.com", PASSWORD)] {
        let resp = b.sign_in(who, password).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body = resp.text().await.unwrap();
        assert!(body.contains("Wrong email or password."), "{body}");
        assert!(body.contains(&format!("value=\"{who}\"")), "the email is kept");
        assert_eq!(location(&b.get("/admin").await), "/admin/sign-in");
    }
}

#[tokio::test]
async fn sign_up_checks_its_fields() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let b = app.browser();
    for (email, password, field, message) in [
        ("not-an-email", PASSWORD, "email", "Enter an email address"),
        ("ada@example.com", "short", "password", "at least 10"),
        (o.email.as_str(), PASSWORD, "email", "exists already"),
    ] {
        let resp = b.sign_up(email, password).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = resp.text().await.unwrap();
        let error = field_error(&body, field).unwrap_or_default();
        assert!(error.contains(message), "{field}: {error:?}");
    }
    let accounts: i64 = sqlx::query_scalar("select count(*) from organizers")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(accounts, 1);
}

#[tokio::test]
async fn a_form_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let b = &o.browser;
    let good = [
        ("title", "Forged"),
        ("description", "x"),
        ("starts_at", "2099-01-01T20:00"),
        ("ends_at", "2099-01-01T23:00"),
        ("capacity", "10"),
        ("price", "1.00"),
    ];
    let mut wrong = vec![("csrf", "0123456789abcdef0123456789abcdef")];
    wrong.extend_from_slice(&good);
    for form in [good.to_vec(), wrong] {
        let resp = b.post("/admin/events/new", &form).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(resp.text().await.unwrap().contains("Nothing was changed"));
    }
    assert_eq!(app.event_count().await, 0);

    // sign-out and sign-in need the token too
    assert_eq!(b.post("/admin/sign-out", &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(b.page("/admin").await.0, StatusCode::OK, "still signed in");
    let other = app.browser();
    let resp = other
        .post("/admin/sign-in", &[("email", &o.email), ("password", PASSWORD)])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_attempts_per_account_are_limited() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let b = app.browser();
    for _ in 0..PER_ACCOUNT_BURST {
        assert_eq!(
            b.sign_in(&o.email, "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // even the right password waits now, so guessing cannot go on
    let resp = b.sign_in(&o.email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(resp.text().await.unwrap().contains("Too many sign-in attempts"));
    // another account from another client is not affected
    let other = app.organizer().await;
    assert_eq!(
        app.browser().sign_in(&other.email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn sign_in_attempts_per_client_are_limited() {
    let app = AdminApp::spawn().await;
    let b = app.browser();
    let token = b.csrf("/admin/sign-in").await;
    for _ in 0..PER_CLIENT_BURST {
        let resp = b
            .post(
                "/admin/sign-in",
                &[("csrf", &token), ("email", &email()), ("password", "guess")],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = b
        .post(
            "/admin/sign-in",
            &[("csrf", &token), ("email", &email()), ("password", "guess")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn views_of_the_sign_in_form_are_limited_per_client() {
    // Each view starts a session for its CSRF token: unlimited views would fill the store.
    let app = AdminApp::spawn().await;
    for _ in 0..FORMS_PER_MINUTE {
        assert_eq!(app.browser().page("/admin/sign-in").await.0, StatusCode::OK);
    }
    assert_eq!(
        app.browser().page("/admin/sign-up").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn the_first_account_comes_from_the_command_line() {
    let app = AdminApp::spawn().await;
    let email = email();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .args(args)
            .env("DATABASE_URL", &app.state.settings.database_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["organizer", "create", "--email", &email], &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run(&["organizer", "create", "--email", &email], &format!("{PASSWORD}\n"));
    assert!(!again.status.success(), "a second account with the same email");
    let short = run(&["organizer", "create", "--email", "b@example.com"], "short\n");
    assert!(!short.status.success());

    let b = app.browser();
    assert_eq!(b.sign_in(&email, PASSWORD).await.status(), StatusCode::SEE_OTHER);

    let out = run(&["organizer", "token", "--email", &email], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/events/{}", app.base, Uuid::new_v4()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the token is accepted");
}
