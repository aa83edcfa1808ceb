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

/// What a signature opens: a signature for one is good for nothing else.
const ORDER_PAGE: &[u8] = b"order-page\0";
const WAITLIST_ENTRY: &[u8] = b"waitlist-entry\0";

fn mac(secret: &Secret, purpose: &[u8], code: &ReservationCode) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(purpose);
    mac.update(code.to_string().as_bytes());
    mac
}

/// The signature of the order page of `code`.
pub fn sign(secret: &Secret, code: &ReservationCode) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, ORDER_PAGE, code).finalize().into_bytes())
}

/// The signature of the waitlist entry `code` in its offer mail: it moves the entry to the
/// browser that opens the link.
pub fn sign_waitlist_entry(secret: &Secret, code: &ReservationCode) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, WAITLIST_ENTRY, code).finalize().into_bytes())
}

/// Whether `key` is the signature of the waitlist entry `code` (compared in constant time).
pub fn verify_waitlist_entry(secret: &Secret, code: &ReservationCode, key: &str) -> bool {
    verify_for(secret, WAITLIST_ENTRY, code, key)
}

fn verify_for(secret: &Secret, purpose: &[u8], code: &ReservationCode, key: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(key)
        .is_ok_and(|bytes| mac(secret, purpose, code).verify_slice(&bytes).is_ok())
}

/// Whether `key` is the signature of `code`'s order page (compared in constant time).
pub fn verify(secret: &Secret, code: &ReservationCode, key: &str) -> bool {
    verify_for(secret, ORDER_PAGE, code, key)
}

/// The path of the order page of `code` with its signature.
pub fn signed_path(secret: &Secret, code: &ReservationCode) -> String {
    format!("/orders/{code}?{KEY_PARAM}={}", sign(secret, code))
}
