//! The signed link to an order page that a mail carries: `/orders/{code}?key=<signature>`,
//! the signature an HMAC-SHA256 of the reservation code under `BOXOFFICE_SECRET`. It opens the
//! order page and its PDF without the buyer's session, for whoever holds the mail; without
//! the secret it cannot be made for another order.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;
use crate::sale::ReservationCode;

/// The query parameter that carries the signature.
pub const KEY_PARAM: &str = "key";

fn mac(secret: &Secret, code: &ReservationCode) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    // A purpose prefix: a signature for an order page is good for nothing else.
    mac.update(b"order-page\0");
    mac.update(code.to_string().as_bytes());
    mac
}

/// The signature of the order page of `code`.
pub fn sign(secret: &Secret, code: &ReservationCode) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, code).finalize().into_bytes())
}

/// Whether `key` is the signature of `code`'s order page (compared in constant time).
pub fn verify(secret: &Secret, code: &ReservationCode, key: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(key)
        .is_ok_and(|bytes| mac(secret, code).verify_slice(&bytes).is_ok())
}

/// The path of the order page of `code` with its signature.
pub fn signed_path(secret: &Secret, code: &ReservationCode) -> String {
    format!("/orders/{code}?{KEY_PARAM}={}", sign(secret, code))
}
