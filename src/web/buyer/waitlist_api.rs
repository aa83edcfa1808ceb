//! The waitlist in the buyer JSON API: join a sold-out sale's waitlist, poll the entry (an
//! offered entry is a reservation at checkout under the same code: order it with
//! `POST /reservations/{code}/order`), and leave it or turn the offer down.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::api::{
    ApiResult, EmailRule, Reads, Release, WithBody, fail, new_session_cookie, quantity_of, rate_limited,
    reservation_code,
};
use crate::sale::waitlist::{WaitlistEmail, WaitlistEntry, WaitlistState};
use crate::sale::{SaleError, SaleId};
use crate::startup::AppState;
use crate::web::api_fields::{Required, Text, WholeNumber};
use crate::web::session;

/// The waitlist part of the buyer JSON API.
pub struct WaitlistApi;

/// Join a sold-out sale's waitlist.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct WaitlistJoinRequest {
    /// Tickets wanted, 1 to the shop's most per order (6 unless set lower).
    quantity: WholeNumber<1, { crate::config::MAX_PER_ORDER_LIMIT as i64 }>,
    /// Where the offer is mailed when tickets come back for this entry.
    email: Required<Text<EmailRule>>,
}

/// Where a waitlist entry stands.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
struct WaitlistView {
    /// The entry's code: keep it, with the cookie jar. While offered it is also the code of
    /// the reservation at checkout (`/reservations/{code}/order`).
    code: String,
    /// waiting, offered (tickets held for this entry until `offer_expires_at`), taken (the
    /// offer became an order), lapsed (the offer ended unbought) or left.
    state: String,
    quantity: u8,
    /// 1-based place on the waitlist while waiting, else 0.
    position: u64,
    /// Entries waiting on this sale's waitlist.
    on_list: u64,
    /// When the offer's hold ends, while offered; null otherwise.
    #[oai(nullable)]
    offer_expires_at: Option<DateTime<Utc>>,
    /// False when the entry wants more tickets than are unsold at all: it keeps its place
    /// but is passed over until enough come back.
    fits: bool,
    /// The server's clock when this was read.
    server_now: DateTime<Utc>,
    /// Milliseconds to wait before polling again. 0: nothing will change any more.
    poll_after_ms: u64,
}

/// How often a waitlist page or client looks again: tickets come back rarely, and an offer
/// lasts minutes.
pub fn waitlist_poll_after_ms(state: WaitlistState) -> u64 {
    match state {
        WaitlistState::Waiting => 10_000,
        WaitlistState::Offered => 5_000,
        _ => 0,
    }
}

impl From<&WaitlistEntry> for WaitlistView {
    fn from(e: &WaitlistEntry) -> Self {
        WaitlistView {
            code: e.code.to_string(),
            state: e.state.as_str().to_string(),
            quantity: e.quantity,
            position: e.position,
            on_list: e.on_list,
            offer_expires_at: e.offer_expires_at,
            fits: e.fits,
            server_now: e.server_now,
            poll_after_ms: waitlist_poll_after_ms(e.state),
        }
    }
}

#[derive(ApiResponse)]
enum WaitlistJoinResponse {
    /// A new place on the waitlist.
    #[oai(status = 201)]
    Created(Json<WaitlistView>, #[oai(header = "Set-Cookie")] Option<String>),
    /// This session's place existed already; it is returned unchanged.
    #[oai(status = 200)]
    Existing(Json<WaitlistView>, #[oai(header = "Set-Cookie")] Option<String>),
}

#[derive(ApiResponse)]
enum WaitlistLeaveResponse {
    /// Off the waitlist; an offer's tickets went on down the line.
    #[oai(status = 204)]
    Left,
}

#[OpenApi]
impl WaitlistApi {
    /// Join a sale's waitlist: when the sale is sold out for this many tickets (409
    /// `not_sold_out` otherwise: join the sale). One place per session and per email (409
    /// `waitlist_email_taken`); joining again returns the same place. A buyer who was in
    /// line when the sale sold out keeps its place from the line. Mints the session cookie
    /// when the client has none.
    #[oai(path = "/sales/:sale/waitlist", method = "post")]
    async fn join_waitlist(
        &self,
        state: Data<&AppState>,
        req: &Request,
        sale: Path<String>,
        body: Json<WaitlistJoinRequest>,
    ) -> ApiResult<WaitlistJoinResponse, WithBody> {
        state.limits.check_join(req).map_err(rate_limited)?;
        let sale: SaleId = sale.0.parse().map_err(fail)?;
        let quantity = quantity_of(&state, &body.0.quantity)?;
        let email = body.0.email.0.map(|t| t.0).unwrap_or_default();
        let email = WaitlistEmail::parse(&email).map_err(fail)?;
        let (owner, new_session) = session::owner_or_new(req);
        let e = state
            .sales
            .join_waitlist(sale, &owner, quantity, &email)
            .await
            .map_err(fail)?;
        let cookie = new_session_cookie(&state, new_session);
        let view = Json(WaitlistView::from(&e));
        Ok(if e.created {
            WaitlistJoinResponse::Created(view, cookie)
        } else {
            WaitlistJoinResponse::Existing(view, cookie)
        })
    }

    /// Where this session's waitlist entry stands; offers tickets that came back first.
    #[oai(path = "/waitlist/:code", method = "get")]
    async fn waitlist_entry(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
    ) -> ApiResult<Json<WaitlistView>, Reads> {
        state.limits.check_poll(req).map_err(rate_limited)?;
        let code = reservation_code(&code.0)?;
        let owner = session::owner_from_cookie(req).ok_or_else(|| fail(SaleError::UnknownWaitlistEntry))?;
        let e = state.sales.waitlist_status(&code, &owner).await.map_err(fail)?;
        Ok(Json(WaitlistView::from(&e)))
    }

    /// Leave the waitlist, or turn an offer down: its tickets go to the next in line.
    #[oai(path = "/waitlist/:code", method = "delete")]
    async fn leave_waitlist(
        &self,
        state: Data<&AppState>,
        req: &Request,
        code: Path<String>,
    ) -> ApiResult<WaitlistLeaveResponse, Release> {
        state.limits.check_request(req).map_err(rate_limited)?;
        let code = reservation_code(&code.0)?;
        let owner = session::owner_from_cookie(req).ok_or_else(|| fail(SaleError::UnknownWaitlistEntry))?;
        state.sales.leave_waitlist(&code, &owner).await.map_err(fail)?;
        Ok(WaitlistLeaveResponse::Left)
    }
}
