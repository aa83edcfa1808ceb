//! The page frame every page shares.

use maud::{DOCTYPE, Markup, html};

use super::assets;

/// A whole page: `title` in the tab, `body` inside the frame.
pub fn page(title: &str, body: Markup) -> Markup {
    page_with_head(title, html! {}, body)
}

/// A whole page with extra elements in its head (such as a refresh for browsers without
/// JavaScript).
pub fn page_with_head(title: &str, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // HTMX would otherwise inject a <style> of its own, which the CSP refuses.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
                title { (title) " · boxoffice" }
                link rel="stylesheet" href=(assets::url("style.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("app.js")) defer {}
                (head)
            }
            body {
                header.site { a href="/" { "boxoffice" } }
                main { (body) }
            }
        }
    }
}
