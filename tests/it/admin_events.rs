//! Events through the pages and the API alike: every rule of a new event, edits of title,
//! description and venue only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_support::{
    AdminApp, Organizer, api_time, event_form, event_json, field_error, form_time, location, pairs,
};

/// Sends the new-event form with `page` changes and the API body with `api` changes; both must
/// be refused with `message` beside their field, keep the typed values, and create nothing.
async fn refused(
    app: &AdminApp,
    o: &Organizer,
    page: &[(&'static str, Option<&str>)],
    page_field: &str,
    api: Value,
    api_field: &str,
    message: &str,
) {
    let form = event_form(page);
    let resp = o
        .browser
        .submit("/admin/events/new", "/admin/events/new", &pairs(&form))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "page, {page_field}");
    let body = resp.text().await.unwrap();
    let error = field_error(&body, page_field).unwrap_or_default();
    assert!(error.contains(message), "page, {page_field}: {error:?}");
    for (name, value) in &form {
        if *name != "description" && !value.is_empty() {
            assert!(
                body.contains(&format!("value=\"{value}\"")),
                "page keeps {name}={value}"
            );
        }
    }

    let (status, answer) = o.api.post("/events", event_json(api)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "api, {api_field}: {answer}");
    assert_eq!(answer["error"], "invalid");
    let error = answer["fields"][api_field].as_str().unwrap_or_default();
    assert!(error.contains(message), "api, {api_field}: {answer}");
    assert_eq!(app.event_count().await, 0, "nothing created");
}

#[tokio::test]
async fn a_good_event_is_created_through_the_page_and_the_api() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let id = o
        .browser
        .create_event(&pairs(&event_form(&[("price", Some("0"))])))
        .await;
    let (status, body) = o.browser.page(&format!("/admin/events/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("The Few Tickets Tour") && body.contains("0.00 EUR"));
    assert!(o.browser.page("/admin").await.1.contains(&id.to_string()), "listed");

    let (status, e) = o.api.post("/events", event_json(json!({"currency": null}))).await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    assert_eq!(
        (e["capacity"].as_i64(), e["price_minor"].as_i64()),
        (Some(100), Some(2500))
    );
    assert_eq!(e["currency"], "EUR", "EUR by default");
    let (status, again) = o.api.get(&format!("/events/{}", e["id"].as_str().unwrap())).await;
    assert_eq!((status, &again["title"]), (StatusCode::OK, &e["title"]));
}

#[tokio::test]
async fn the_title_is_required() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    refused(
        &app,
        &o,
        &[("title", Some("  "))],
        "title",
        json!({"title": null}),
        "title",
        "Required",
    )
    .await;
}

#[tokio::test]
async fn the_description_is_required() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let (page, api) = (&[("description", None)], json!({"description": ""}));
    refused(&app, &o, page, "description", api, "description", "Required").await;
}

#[tokio::test]
async fn the_start_is_required() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let api = json!({"starts_at": null});
    refused(
        &app,
        &o,
        &[("starts_at", Some(""))],
        "starts_at",
        api,
        "starts_at",
        "Required",
    )
    .await;
}

#[tokio::test]
async fn the_end_is_required() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    refused(
        &app,
        &o,
        &[("ends_at", None)],
        "ends_at",
        json!({"ends_at": null}),
        "ends_at",
        "Required",
    )
    .await;
}

#[tokio::test]
async fn the_capacity_is_required() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let api = json!({"capacity": null});
    refused(
        &app,
        &o,
        &[("capacity", Some(""))],
        "capacity",
        api,
        "capacity",
        "Required",
    )
    .await;
}

#[tokio::test]
async fn the_price_is_required() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let api = json!({"price_minor": null});
    refused(
        &app,
        &o,
        &[("price", Some(""))],
        "price",
        api,
        "price_minor",
        "Required",
    )
    .await;
}

#[tokio::test]
async fn the_start_cannot_be_in_the_past() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let page_start = form_time(0, -1);
    let page = [("starts_at", Some(page_start.as_str()))];
    let api = json!({"starts_at": api_time(0, -1)});
    refused(&app, &o, &page, "starts_at", api, "starts_at", "past").await;
}

#[tokio::test]
async fn the_end_must_come_after_the_start() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let start = form_time(30, 0);
    let api_start = api_time(30, 0);
    let page = [("ends_at", Some(start.as_str()))];
    let api = json!({"starts_at": api_start, "ends_at": api_start});
    refused(&app, &o, &page, "ends_at", api, "ends_at", "after the start").await;
    let before = form_time(29, 0);
    let page = [("ends_at", Some(before.as_str()))];
    let api = json!({"ends_at": api_time(29, 0)});
    refused(&app, &o, &page, "ends_at", api, "ends_at", "after the start").await;
}

#[tokio::test]
async fn the_capacity_is_at_least_one() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    refused(
        &app,
        &o,
        &[("capacity", Some("0"))],
        "capacity",
        json!({"capacity": 0}),
        "capacity",
        "Between 1",
    )
    .await;
    let page = [("capacity", Some("-5"))];
    refused(
        &app,
        &o,
        &page,
        "capacity",
        json!({"capacity": -5}),
        "capacity",
        "Between 1",
    )
    .await;
}

#[tokio::test]
async fn the_price_is_not_negative() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let (page, api) = ([("price", Some("-0.01"))], json!({"price_minor": -1}));
    refused(&app, &o, &page, "price", api, "price_minor", "negative").await;
}

#[tokio::test]
async fn the_currency_is_three_capital_letters() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let (page, api) = ([("currency", Some("euro"))], json!({"currency": "eu"}));
    refused(&app, &o, &page, "currency", api, "currency", "Three capital letters").await;
}

#[tokio::test]
async fn unreadable_values_are_field_errors_not_failures() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let page = [("starts_at", Some("next friday"))];
    let api = json!({"starts_at": "2099-01-01 20:00"});
    refused(&app, &o, &page, "starts_at", api, "starts_at", "such as").await;
    let page = [("price", Some("12,50"))];
    let resp = o
        .browser
        .submit("/admin/events/new", "/admin/events/new", &pairs(&event_form(&page)))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = [("capacity", Some("many"))];
    let resp = o
        .browser
        .submit("/admin/events/new", "/admin/events/new", &pairs(&event_form(&page)))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A number of the wrong JSON type is the field's error, as in the form, never a 500; a
    // text of the wrong type is the parser's 400 with a JSON body.
    let (status, answer) = o.api.post("/events", event_json(json!({"capacity": "many"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["fields"]["capacity"], "A whole number.", "{answer}");
    let (status, answer) = o.api.post("/events", event_json(json!({"title": 12}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "bad_request");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn only_title_description_and_venue_can_change_after_creation() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let id = o.browser.create_event(&pairs(&event_form(&[]))).await;
    let page = format!("/admin/events/{id}");

    let resp = o
        .browser
        .submit(&page, &page, &[("title", "New Title"), ("description", "New words.")])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), page);
    let body = o.browser.page(&page).await.1;
    assert!(body.contains("New Title") && body.contains("New words."));

    let resp = o
        .browser
        .submit(&page, &page, &[("title", ""), ("description", "Kept")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = resp.text().await.unwrap();
    assert_eq!(field_error(&body, "title").as_deref(), Some("Required."));
    assert!(body.contains("Kept"), "the typed description is kept");

    let (status, e) = o.api.patch(&format!("/events/{id}"), json!({"title": "By API"})).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(
        (e["title"].as_str(), e["description"].as_str()),
        (Some("By API"), Some("New words."))
    );
    for (field, value) in [
        ("capacity", json!(5)),
        ("price_minor", json!(1)),
        ("starts_at", json!(api_time(40, 0))),
        ("ends_at", json!(api_time(40, 0))),
        ("currency", json!("USD")),
    ] {
        let (status, answer) = o.api.patch(&format!("/events/{id}"), json!({ field: value })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(
            answer["fields"][field]
                .as_str()
                .unwrap()
                .contains("Only the title, description and venue")
        );
    }
    let (status, answer) = o.api.patch(&format!("/events/{id}"), json!({"description": ""})).await;
    assert_eq!(
        (status, answer["fields"]["description"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("Required."))
    );
    let (_, e) = o.api.get(&format!("/events/{id}")).await;
    assert_eq!(
        (e["title"].as_str(), e["capacity"].as_i64()),
        (Some("By API"), Some(100))
    );
}

#[tokio::test]
async fn the_venue_is_set_by_form_and_api_shown_to_buyers_and_checked_like_the_title() {
    let app = AdminApp::spawn().await;
    let o = app.organizer().await;
    let long = "v".repeat(201);
    let bad_venues = [
        (long.as_str(), "At most 200 characters."),
        ("Hall\u{7}", "no control characters"),
    ];

    // Too long or with a control character: a 422 naming the venue, and nothing made.
    for (bad, message) in bad_venues {
        refused(
            &app,
            &o,
            &[("venue", Some(bad))],
            "venue",
            json!({"venue": bad}),
            "venue",
            message,
        )
        .await;
    }

    // Made with a venue through the form: the event page, the API and the buyer's sale page
    // show it.
    let id = o
        .browser
        .create_event(&pairs(&event_form(&[("venue", Some("Small Hall"))])))
        .await;
    let page = format!("/admin/events/{id}");
    assert!(o.browser.page(&page).await.1.contains("Small Hall"), "event page");
    let (_, e) = o.api.get(&format!("/events/{id}")).await;
    assert_eq!(e["venue"], "Small Hall");
    let sale = o.browser.create_sale(id, &[]).await;
    let (_, sale_page) = o.browser.page(&format!("/sales/{sale}")).await;
    assert!(sale_page.contains("Small Hall"), "the buyer's sale page");

    // Through the API: set at creation, or left out; changed by a patch that leaves the rest.
    let (status, e) = o.api.post("/events", event_json(json!({"venue": "Big Hall"}))).await;
    assert_eq!(
        (status, e["venue"].as_str()),
        (StatusCode::CREATED, Some("Big Hall")),
        "{e}"
    );
    let other = e["id"].as_str().unwrap().to_string();
    let (status, e) = o
        .api
        .patch(&format!("/events/{other}"), json!({"venue": "Open Air"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(
        (e["venue"].as_str(), e["title"].as_str()),
        (Some("Open Air"), Some("The Few Tickets Tour"))
    );
    let (status, e) = o.api.post("/events", event_json(json!({}))).await;
    assert_eq!(
        (status, e["venue"].as_str()),
        (StatusCode::CREATED, Some("")),
        "optional"
    );

    // Through the edit form.
    let edit = |venue| {
        [
            ("title", "The Few Tickets Tour"),
            ("description", "One night only."),
            ("venue", venue),
        ]
    };
    let resp = o.browser.submit(&page, &page, &edit("Cellar")).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, e) = o.api.get(&format!("/events/{id}")).await;
    assert_eq!(e["venue"], "Cellar");

    // A bad venue in an edit changes nothing, through the form and the API.
    for (bad, message) in bad_venues {
        let resp = o.browser.submit(&page, &page, &edit(bad)).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "edit form {bad:?}");
        let body = resp.text().await.unwrap();
        let error = field_error(&body, "venue").unwrap_or_default();
        assert!(error.contains(message), "edit form {bad:?}: {error}");
        let (status, answer) = o.api.patch(&format!("/events/{id}"), json!({"venue": bad})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "API patch {bad:?}");
        let error = answer["fields"]["venue"].as_str().unwrap_or_default();
        assert!(error.contains(message), "API patch {bad:?}: {answer}");
    }
    let (_, e) = o.api.get(&format!("/events/{id}")).await;
    assert_eq!(e["venue"], "Cellar", "nothing changed");
}
