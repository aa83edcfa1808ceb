use chrono::{DateTime, Utc};

use super::buyer::FieldErrors;
use super::model::ReservationState;

/// Everything that can go wrong with a sale. The web layer renders each variant once, with the
/// status its doc names; the message is written for the buyer.
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    /// 422: quantity outside 1..=max.
    #[error("Please choose between 1 and {max} tickets.")]
    BadQuantity { max: u8 },
    /// 404: no sale with that id.
    #[error("There is no such ticket sale.")]
    UnknownSale,
    /// 409: the organizer closed the sale.
    #[error("This ticket sale is closed.")]
    Closed,
    /// 409: the sale's event ended more than a day ago; its live state is gone for good and
    /// its figures come from Postgres alone.
    #[error("This event is over.")]
    Over,
    /// 409: the sale has not opened yet.
    #[error("This ticket sale opens at {0}.")]
    NotOpenYet(DateTime<Utc>),
    /// 409: the sale has just opened and its pre-queue is being drawn into the queue; a join
    /// now would go ahead of the drawn entries. Try again in a few seconds.
    #[error("The sale is opening: its pre-queue is being drawn. Please try again in a few seconds.")]
    DrawUnderWay,
    /// 503: the draw's public randomness could not be had yet; the draw is tried again.
    #[error("The draw's randomness is not available yet: {0}")]
    Beacon(String),
    /// 404: not a reservation code at all.
    #[error("That is not a reservation code.")]
    MalformedCode,
    /// 404: no such reservation for this session (or none at all: the two look the same).
    #[error("There is no such reservation.")]
    UnknownReservation,
    /// 409: the reservation is not at checkout (waiting, lapsed, already confirmed, ...).
    #[error("{}", not_admitted_message(*.0))]
    NotAdmitted(ReservationState),
    /// 409: Postgres refused the order because it would sell more than the capacity.
    #[error("Sorry, this event is sold out.")]
    SoldOut,
    /// 409: an order for this reservation is being written right now.
    #[error("Your order is being saved; please wait a moment.")]
    ConfirmInProgress,
    /// 409: tickets can still be had through the sale's line: join it, not the waitlist.
    #[error("Tickets can still be had: join the line for them instead of the waitlist.")]
    NotSoldOut,
    /// 409: another session holds a place on this sale's waitlist for this email.
    #[error("This email already has a place on the waitlist.")]
    WaitlistEmailTaken,
    /// 409: the session that opened an offer's link has a place of its own on the waitlist.
    #[error(
        "This browser has a place of its own on this waitlist: leave it first, or open the link in the browser you joined from."
    )]
    OwnWaitlistPlace,
    /// 422: not an email address a mail can go to.
    #[error("Please give an email address we can write to.")]
    BadEmail,
    /// 422: the sale gives one pre-queue place per verified email, and the join gave none.
    #[error(
        "This sale gives one pre-queue place per email: please give your email, and we will mail you a link to your place."
    )]
    EmailRequired,
    /// 404: not a link this shop mailed (a forged or mangled token).
    #[error("This link is not valid: please copy the whole link from the mail.")]
    UnknownLink,
    /// 410: the mailed link was used already or has expired.
    #[error("This link was used already or has expired. Ask for a new one on the event's page.")]
    LinkSpent,
    /// 409: the link's email holds a place in this sale's pre-queue already (one per email).
    #[error("This email already holds a place in this sale's pre-queue.")]
    EmailHasPlace,
    /// 409: the link came after the pre-queue ended: the sale has opened (or closed).
    #[error("The pre-queue of this sale is over: join the sale itself.")]
    PrequeueOver,
    /// 404: no such waitlist entry for this session.
    #[error("There is no such place on the waitlist.")]
    UnknownWaitlistEntry,
    /// 409: the organizer does not take returns for this sale.
    #[error("Tickets of this sale cannot be returned.")]
    ReturnsNotAllowed,
    /// 409: tickets of this order are offered for return already.
    #[error("Tickets of this order are offered for return already; withdraw that return to change it.")]
    ReturnPending,
    /// 409: nothing of this order can be returned (not confirmed or paid, every ticket used or
    /// returned, or the event has started).
    #[error("This order has no tickets that can be returned.")]
    NothingToReturn,
    /// 422: more tickets asked to return than the order has left.
    #[error("This order has {left} tickets that can be returned.")]
    TooManyToReturn { left: i64 },
    /// 409: no tickets of this order are offered for return (none were, or another buyer has
    /// bought them).
    #[error("No tickets of this order are offered for return: another buyer may have bought them.")]
    NoReturnPending,
    /// 422: buyer details that do not pass, field by field.
    #[error("Please check your details: {0}")]
    InvalidBuyer(FieldErrors),
    /// 400: a session binding that is not a plain token (a bug in the caller, not the buyer).
    #[error("The session is not valid.")]
    BadOwner,
    /// 422: not one of open, paused, closed.
    #[error("A sale is open, paused or closed.")]
    BadSaleState,
    /// 503: Redis did not answer; nothing changed, try again.
    #[error("The ticket queue is unavailable right now; please try again in a moment.")]
    Redis(#[from] fred::error::Error),
    /// 503: Postgres did not answer; nothing changed, try again.
    #[error("Orders cannot be saved right now; please try again in a moment.")]
    Postgres(#[from] sqlx::Error),
    /// 500: a time stored for the sale is too far out to compute with (a row written before
    /// the edge bounded times); that sale alone fails, nothing panics.
    #[error("internal error: a time of the sale is out of range")]
    TimeOutOfRange,
    /// 500: a script answered something this code does not understand.
    #[error("internal error: unexpected reply from the {script} script: {reply}")]
    Protocol { script: &'static str, reply: String },
}

/// What a buyer is told about a reservation in `state` that cannot go to checkout: the one
/// wording for the API's errors and the pages' notices (through `NotAdmitted`'s text).
fn not_admitted_message(state: ReservationState) -> &'static str {
    match state {
        ReservationState::Prequeue => "You are in the pre-queue; your place in line is drawn at the opening.",
        ReservationState::Waiting => "You are still in the queue; checkout opens when it is your turn.",
        ReservationState::Expired => "Your reservation expired.",
        ReservationState::Confirmed => "This reservation is already confirmed.",
        ReservationState::SoldOut => "Sorry, this event is sold out.",
        ReservationState::Released => "You gave up your reservation.",
        ReservationState::Closed => "This ticket sale is closed.",
        ReservationState::Abandoned => {
            "You lost your place in line because your page stopped checking in. You may join again."
        }
        ReservationState::Admitted | ReservationState::Confirming => "This reservation is at checkout.",
    }
}

impl SaleError {
    /// A stable machine-readable name, for the JSON API.
    pub fn code(&self) -> &'static str {
        match self {
            SaleError::BadQuantity { .. } => "bad_quantity",
            SaleError::UnknownSale => "unknown_sale",
            SaleError::Closed => "sale_closed",
            SaleError::Over => "sale_over",
            SaleError::NotOpenYet(_) => "sale_not_open",
            SaleError::DrawUnderWay => "draw_under_way",
            SaleError::Beacon(_) => "unavailable",
            SaleError::MalformedCode | SaleError::UnknownReservation => "unknown_reservation",
            SaleError::NotAdmitted(ReservationState::Expired) => "hold_expired",
            SaleError::NotAdmitted(_) => "not_admitted",
            SaleError::SoldOut => "sold_out",
            SaleError::ConfirmInProgress => "confirm_in_progress",
            SaleError::InvalidBuyer(_) => "invalid_buyer",
            SaleError::NotSoldOut => "not_sold_out",
            SaleError::WaitlistEmailTaken => "waitlist_email_taken",
            SaleError::BadEmail => "bad_email",
            SaleError::OwnWaitlistPlace => "own_waitlist_place",
            SaleError::UnknownWaitlistEntry => "unknown_waitlist_entry",
            SaleError::EmailRequired => "email_required",
            SaleError::UnknownLink => "unknown_link",
            SaleError::LinkSpent => "link_spent",
            SaleError::EmailHasPlace => "email_has_place",
            SaleError::PrequeueOver => "prequeue_over",
            SaleError::BadOwner => "bad_session",
            SaleError::ReturnsNotAllowed => "returns_not_allowed",
            SaleError::ReturnPending => "return_pending",
            SaleError::NothingToReturn => "nothing_to_return",
            SaleError::TooManyToReturn { .. } => "too_many_to_return",
            SaleError::NoReturnPending => "no_return_pending",
            SaleError::BadSaleState => "bad_sale_state",
            SaleError::Redis(_) | SaleError::Postgres(_) => "unavailable",
            SaleError::Protocol { .. } | SaleError::TimeOutOfRange => "internal",
        }
    }

    /// True when the fault is on our side and passes by itself: the client should retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            SaleError::Redis(_) | SaleError::Postgres(_) | SaleError::Beacon(_)
        )
    }
}
