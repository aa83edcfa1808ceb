//! Accounts: sign-up, sign-in, sign-out, wrong passwords, CSRF, the sign-in rate limits, and
//! the command line that makes the first account.

use std::io::Write;
use std::process::{Command, Stdio};

use boxoffice::admin::{FORMS_PER_MINUTE, PER_ACCOUNT_BURST, PER_CLIENT_BURST};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use boxoffice::config::{Settings, SignUp};

use crate::admin_support::{AdminApp, Browser, PASSWORD, csrf_in, field_error, location};

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
    assert_eq!(location(&resp), "/admin/sign-in?signed-up");
    assert_eq!(
        location(&b.get("/admin").await),
        "/admin/sign-in",
        "sign-up does not sign in"
    );
    let (status, body) = b.page("/admin/sign-in?signed-up").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("If this email had no account, it has one now"), "{body}");

    let resp = b.sign_in(&email, password).await;
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
    let email = email();
    b.sign_up(&email, PASSWORD).await;
    let resp = b.sign_in(&email, PASSWORD).await;
    let cookie = cookie_id(&session_cookie(&resp).unwrap());
    // a client that copied the cookie
    let copy = crate::support::http().build().unwrap();
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
    let b = app.browser();
    for (email, password, field, message) in [
        ("not-an-email", PASSWORD, "email", "Enter an email address"),
        ("ada@example.com", "short", "password", "at least 10"),
    ] {
        let resp = b.sign_up(email, password).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = resp.text().await.unwrap();
        let error = field_error(&body, field).unwrap_or_default();
        assert!(error.contains(message), "{field}: {error:?}");
    }
    assert_eq!(organizer_count(&app).await, 0);
}

#[tokio::test]
async fn sign_up_answers_the_same_whether_or_not_the_email_has_an_account() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let answer = |resp: reqwest::Response| async move {
        let status = resp.status();
        let to = resp.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let cookie = session_cookie(&resp).is_some();
        (status, to, cookie, resp.text().await.unwrap())
    };
    let taken = answer(app.browser().sign_up(&o.email, "another long password").await).await;
    let free = answer(app.browser().sign_up(&email(), "another long password").await).await;
    assert_eq!(taken, free, "the same status, page and cookies");
    assert_eq!(taken.0, StatusCode::SEE_OTHER);
    // the existing account is untouched: its password still works, the new one does not
    assert_eq!(
        app.browser().sign_in(&o.email, "another long password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.browser().sign_in(&o.email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

/// A 422 whose form says, beside the email field, what an address looks like.
async fn assert_email_refused(resp: reqwest::Response, bad: &str) {
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
    let body = resp.text().await.unwrap();
    let error = field_error(&body, "email").unwrap_or_default();
    assert!(error.contains("Enter an email address"), "{bad:?}: {error:?}");
}

#[tokio::test]
async fn emails_with_control_characters_are_refused_with_a_422() {
    let app = AdminApp::spawn().await;
    for bad in ["ada\0@example.com", "ada@exam\u{7}ple.com", "ada@example.com\u{1b}[0m"] {
        let b = app.browser();
        for resp in [b.sign_up(bad, PASSWORD).await, b.sign_in(bad, PASSWORD).await] {
            assert_email_refused(resp, bad).await;
        }
    }
    assert_eq!(organizer_count(&app).await, 0);
    // (a NUL cannot even be a command-line argument; a bell or an escape can)
    for command in ["create", "token", "invite"] {
        for bad in ["ada\u{7}@example.com", "ada@example.com\u{1b}[0m"] {
            let out = run_cli(&app, &["organizer", command, "--email", bad], &format!("{PASSWORD}\n"));
            assert!(!out.status.success(), "{command}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("Enter an email address"), "{command}: {err}");
        }
    }
}

/// Buyers and organizers share one rule for an address: a buyer's "ada@example" was refused
/// while an organizer could sign up with it.
#[tokio::test]
async fn an_organizer_email_needs_a_dot_in_its_domain_as_a_buyers_does() {
    let app = AdminApp::spawn().await;
    for bad in ["ada@example", "ada@.example.com", "ada@example."] {
        assert_email_refused(app.browser().sign_up(bad, PASSWORD).await, bad).await;
        let out = run_cli(&app, &["organizer", "create", "--email", bad], &format!("{PASSWORD}\n"));
        assert!(!out.status.success(), "{bad:?}");
    }
    assert_eq!(organizer_count(&app).await, 0);
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
    // (the organizer signed in from 127.0.0.1; this client starts afresh)
    let b = app.browser_from("127.0.0.2".parse().unwrap());
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
async fn an_attackers_failures_do_not_lock_the_owner_out_from_elsewhere() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let attacker = app.browser_from("127.0.0.2".parse().unwrap());
    for _ in 0..PER_ACCOUNT_BURST {
        assert_eq!(
            attacker.sign_in(&o.email, "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attacker.sign_in(&o.email, "another guess").await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker is slowed"
    );
    let owner = app.browser_from("127.0.0.3".parse().unwrap());
    assert_eq!(
        owner.sign_in(&o.email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER,
        "the owner, at another address, signs in"
    );
    assert_eq!(owner.page("/admin").await.0, StatusCode::OK);
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
    let run = |args: &[&str], stdin: &str| run_cli(&app, args, stdin);
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

/// Runs the `boxoffice` command against the app's database with `stdin` as its input.
fn run_cli(app: &AdminApp, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(args)
        .env("DATABASE_URL", &app.state.settings.database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse its arguments before reading its input: a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn closed_sign_up_makes_no_account_and_the_command_line_still_does() {
    let app = AdminApp::spawn_with(|s| s.signup = SignUp::Closed).await;
    let (status, body) = app.browser().page("/admin/sign-up").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("made by the operator"), "{body}");
    // a form posted anyway, with a session's CSRF token from the sign-in page
    let b = app.browser();
    let token = b.csrf("/admin/sign-in").await;
    let resp = post_sign_up(&b, &token, &email(), "").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // an invite does not open it either
    let resp = post_sign_up(&b, &token, &email(), "inv_x").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(organizer_count(&app).await, 0);

    let email = first_organizer(&app);
    assert_eq!(b.sign_in(&email, PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

/// The app as it runs by default: sign-up by invite.
async fn invite_only_app() -> AdminApp {
    assert_eq!(Settings::default().signup, SignUp::Invite, "the default");
    AdminApp::spawn_with(|s| s.signup = Settings::default().signup).await
}

async fn organizer_count(app: &AdminApp) -> i64 {
    sqlx::query_scalar("select count(*) from organizers")
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

/// Signs up through the invite link's form.
async fn sign_up_with(b: &Browser, link: &str, email: &str) -> reqwest::Response {
    let token = b.csrf(link).await;
    post_sign_up(b, &token, email, invite_in(link)).await
}

/// Posts the sign-up form with a CSRF token the browser has, and `invite` unless it is empty.
async fn post_sign_up(b: &Browser, token: &str, email: &str, invite: &str) -> reqwest::Response {
    let mut form = vec![("csrf", token), ("email", email), ("password", PASSWORD)];
    if !invite.is_empty() {
        form.push(("invite", invite));
    }
    b.post("/admin/sign-up", &form).await
}

/// The secret of an invite link.
fn invite_in(link: &str) -> &str {
    link.split_once("invite=").unwrap().1
}

/// The first organizer, made on the command line as on a fresh install; its email.
fn first_organizer(app: &AdminApp) -> String {
    let email = email();
    let out = run_cli(
        app,
        &["organizer", "create", "--email", &email],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    email
}

#[tokio::test]
async fn by_default_sign_up_needs_an_invite_link_that_works_once() {
    let app = invite_only_app().await;
    let (status, body) = app.browser().page("/admin/sign-up").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no invite");
    assert!(body.contains("needs an invite link"), "{body}");
    let (status, _) = app.browser().page("/admin/sign-up?invite=inv_forged").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a forged invite");

    // the first organizer from the command line; it makes an invite in the portal
    let first = first_organizer(&app);
    let o = app.browser();
    assert_eq!(o.sign_in(&first, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let token = o.csrf("/admin/invites").await;
    let resp = o.post("/admin/invites", &[("csrf", &token)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    let start = body.find("/admin/sign-up?invite=").expect("the link is shown");
    let link = body[start..].split(['<', '"']).next().unwrap().to_string();
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select token_sha256 from organizer_invites")
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    let secret = invite_in(&link);
    assert_eq!(
        stored,
        vec![Sha256::digest(secret.as_bytes()).to_vec()],
        "only its hash is kept"
    );

    let newcomer = email();
    let b = app.browser();
    let resp = sign_up_with(&b, &link, &newcomer).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(b.sign_in(&newcomer, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    // used: the link works no more, neither its form nor a form posted with it
    let (status, body) = app.browser().page(&link).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("has been used or has expired"), "{body}");
    let b = app.browser();
    let token = b.csrf("/admin/sign-in").await;
    let resp = post_sign_up(&b, &token, &email(), invite_in(&link)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(organizer_count(&app).await, 2);

    // an expired invite, made on the command line
    let out = run_cli(&app, &["organizer", "invite", "--email", &first], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(link.starts_with("/admin/sign-up?invite="), "{link}");
    assert_eq!(
        app.browser().page(&link).await.0,
        StatusCode::OK,
        "a fresh invite works"
    );
    sqlx::query("update organizer_invites set expires_at = now() - interval '1 second' where used_at is null")
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_eq!(app.browser().page(&link).await.0, StatusCode::FORBIDDEN, "expired");
    assert_eq!(organizer_count(&app).await, 2);
}

#[tokio::test]
async fn two_sign_ups_at_once_with_one_invite_make_one_account() {
    let app = invite_only_app().await;
    let first = first_organizer(&app);
    for round in 0..3 {
        let out = run_cli(&app, &["organizer", "invite", "--email", &first], "");
        let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
        // each browser has its form and token first, then all post at the same moment
        let mut ready = Vec::new();
        for _ in 0..4 {
            let b = app.browser();
            let token = b.csrf(&link).await;
            ready.push((b, token, email()));
        }
        let answers = futures::future::join_all(
            ready
                .iter()
                .map(|(b, token, email)| post_sign_up(b, token, email, invite_in(&link))),
        )
        .await;
        let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::FORBIDDEN),
            "{statuses:?}"
        );
        assert_eq!(organizer_count(&app).await, 2 + round);
    }
}
