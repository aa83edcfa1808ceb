//! The page a pre-queue link mails open: `/prequeue/confirm?token=…` shows a button, and its
//! POST makes the place in this browser's session and sends the buyer to the waiting room.
//! Opening the link only shows the page: mail scanners and link previews that fetch it take
//! no place, and the place goes to the browser whose buyer presses the button.

use maud::{Markup, html};
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;
use tower_sessions::Session;

use super::{count_request, place_of, query_value, remember};
use crate::mail::TOKEN_PARAM;
use crate::sale::LinkToken;
use crate::startup::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::layout;
use crate::web::redirect::see_other;
use crate::web::session;

#[handler]
pub async fn page(state: Data<&AppState>, req: &Request) -> Result<Markup, PageError> {
    count_request(&state.limits, req)?;
    let token = query_value(req, TOKEN_PARAM).unwrap_or_default();
    // A token that is not the shop's is refused here, before anything is read.
    LinkToken::verify(&state.settings.secret, token)?;
    let body = html! {
        section.card.confirm-link {
            h1 { "Take your place in the pre-queue" }
            p { "Your place is made in this browser, and the waiting room then counts down to the opening, when places are drawn." }
            form method="post" action="/prequeue/confirm" {
                input type="hidden" name=(TOKEN_PARAM) value=(token);
                button.button type="submit" { "Take my place" }
            }
        }
    };
    Ok(layout::page("Take your place", body))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    token: String,
}

#[handler]
pub async fn confirm(
    state: Data<&AppState>,
    session: Data<&Session>,
    req: &Request,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    // A confirmation makes a place, as a join does: it counts as one.
    state
        .limits
        .check_join(req)
        .map_err(|retry_after| WebError::RateLimited { retry_after })?;
    LinkToken::verify(&state.settings.secret, &form.token)?;
    let owner = session::owner_of(&session).await?;
    let r = state.sales.confirm_prequeue_link(&form.token, &owner).await?;
    remember(&session, r.code).await?;
    Ok(see_other(&place_of(&r)))
}
