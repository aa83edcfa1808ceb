//! Pieces shared by the portal's pages: the admin frame, form fields with their errors, and
//! the page that shows an error.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

use super::csrf;
use super::forms::FieldErrors;
use crate::web::layout;

/// A portal page. Signed in, it carries the portal's navigation and the sign-out form.
pub fn admin_page(title: &str, signed_in_csrf: Option<&str>, body: Markup) -> Markup {
    layout::page(
        title,
        html! {
            nav.admin {
                a href="/admin" { "Your events" }
                @if let Some(token) = signed_in_csrf {
                    " · " a href="/admin/events/new" { "New event" }
                    " · " a href="/admin/tokens" { "API tokens" }
                    " · " a href="/admin/invites" { "Invites" }
                    form.inline method="post" action="/admin/sign-out" {
                        (csrf_field(token))
                        button type="submit" { "Sign out" }
                    }
                }
            }
            (body)
        },
    )
}

/// A page with one message, for errors.
pub fn message_page(title: &str, message: &str) -> Markup {
    admin_page(
        title,
        None,
        html! {
            h1 { (title) }
            p { (message) }
            p { a href="/admin" { "Back to the portal" } }
        },
    )
}

pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(token); }
}

/// One labelled input with its error beside it and the typed value kept.
pub fn field(label: &str, name: &str, kind: &str, value: &str, errors: &FieldErrors, hint: Option<&str>) -> Markup {
    let error = errors.get(name);
    let id = format!("f-{name}");
    html! {
        p.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            @if kind == "textarea" {
                textarea id=(id) name=(name) rows="5" aria-invalid=[error.is_some().then_some("true")]
                    aria-describedby=[error.is_some().then(|| format!("{id}-error"))] { (value) }
            } @else {
                input id=(id) type=(kind) name=(name) value=(value) step=[(kind == "number").then_some("1")]
                    aria-invalid=[error.is_some().then_some("true")]
                    aria-describedby=[error.is_some().then(|| format!("{id}-error"))];
            }
            @if let Some(hint) = hint { small.hint { (hint) } }
            @if let Some(e) = error { strong.error id={ (id) "-error" } role="alert" { (e) } }
        }
    }
}

/// The form error not tied to one field (wrong password, ...).
pub fn form_error(message: Option<&str>) -> Markup {
    html! { @if let Some(m) = message { p.error role="alert" { (m) } } }
}

/// A time as tables show it (UTC).
pub fn show_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time as a `datetime-local` value (UTC).
pub fn input_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

/// A time as the CSV export writes it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
