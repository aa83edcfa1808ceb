//! `POST /webhooks/stripe`: Stripe's deliveries. A delivery whose `Stripe-Signature` does not
//! verify (see `payment::signature`) is a 400 and changes nothing. `payment_intent.succeeded`
//! asks Stripe nothing more: the event carries the intent, whose success is applied to its
//! order once (a second delivery finds it paid already), or refunded if the order was
//! cancelled meanwhile. Other events are acknowledged and left alone.

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, handler};
use serde::Deserialize;
use tracing::warn;

use crate::payment::PaymentIntent;
use crate::startup::AppState;

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

#[handler]
pub async fn stripe(state: Data<&AppState>, req: &Request, body: Body) -> StatusCode {
    let Some(payments) = &state.payments else {
        return StatusCode::NOT_FOUND;
    };
    let Ok(payload) = body.into_bytes().await else {
        return StatusCode::BAD_REQUEST;
    };
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !payments.verify(signature, &payload) {
        return StatusCode::BAD_REQUEST;
    }
    let Ok(event) = serde_json::from_slice::<Event>(&payload) else {
        return StatusCode::BAD_REQUEST;
    };
    if event.kind != "payment_intent.succeeded" {
        return StatusCode::OK;
    }
    let Ok(intent) = serde_json::from_value::<PaymentIntent>(event.data.object) else {
        return StatusCode::BAD_REQUEST;
    };
    match payments.settle(&state.db, &intent).await {
        Ok(_) => StatusCode::OK,
        Err(e) => {
            // Stripe delivers again later; the transition is idempotent.
            warn!(intent = %intent.id, error = %e, "applying a payment failed; Stripe will deliver it again");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
