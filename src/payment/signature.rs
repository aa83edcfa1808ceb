//! The `Stripe-Signature` of a webhook: `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, each `v1`
//! an HMAC-SHA256 of `<t>.<payload>` under the endpoint's signing secret. A delivery is
//! genuine when one `v1` matches (compared in constant time) and `t` is within the tolerance of
//! now, so a delivery recorded by someone else cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far the signed time may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// Whether `header` signs `payload` under `secret` at a time near `now` (unix seconds).
pub fn verify(secret: &str, header: &str, payload: &[u8], now: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => signatures.extend(decode_hex(hex)),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now - t).abs() > TOLERANCE_SECS {
        return false;
    }
    signatures.iter().any(|signature| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // verify_slice compares in constant time
        mac.verify_slice(signature).is_ok()
    })
}

/// The header Stripe would send for `payload` at `t`: for tests and tools that sign.
pub fn sign(secret: &str, payload: &[u8], t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn a_signature_verifies_near_its_time_only() {
        let header = sign(SECRET, b"{}", 1_000_000);
        assert!(verify(SECRET, &header, b"{}", 1_000_000));
        assert!(verify(SECRET, &header, b"{}", 1_000_000 + TOLERANCE_SECS));
        assert!(!verify(SECRET, &header, b"{}", 1_000_000 + TOLERANCE_SECS + 1));
        assert!(!verify(SECRET, &header, b"{ }", 1_000_000));
        assert!(!verify("whsec_other", &header, b"{}", 1_000_000));
    }

    #[test]
    fn any_v1_entry_may_match_and_garbage_never_does() {
        let good = sign(SECRET, b"x", 5);
        let v1 = good.split_once(",v1=").unwrap().1;
        let rolled = format!("t=5,v1={},v1={v1}", "0".repeat(64));
        assert!(verify(SECRET, &rolled, b"x", 5));
        for bad in ["", "t=5", "v1=00", "t=x,v1=zz", "t=5,v0=abc", "t=5,v1=é"] {
            assert!(!verify(SECRET, bad, b"x", 5), "{bad}");
        }
    }
}
