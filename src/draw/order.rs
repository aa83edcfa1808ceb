//! The draw's arithmetic: SHA-256 values, the frozen list's hash, the seed and the drawn
//! order (steps 3, 5 of the algorithm in the parent module).
//!
//! Self-contained on purpose (the standard library, `sha2` and `hex`, nothing of the crate):
//! the load test includes this file by path to recompute every buyer's place from a published
//! draw with the shop's own code, without building the shop.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 value, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of the parts, one after the other.
    pub fn of(parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Digest, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| "expected 64 hex digits".to_string())?;
        Ok(Digest(bytes))
    }
}

/// The frozen list's hash: SHA-256 over the entry hashes in ascending order, so it does not
/// depend on the order in which buyers joined.
pub fn list_hash(entries: &[Digest]) -> Digest {
    let mut sorted = entries.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha256::new();
    for entry in &sorted {
        hasher.update(entry.0);
    }
    Digest(hasher.finalize().into())
}

/// `seed = SHA-256(server_seed ‖ list_hash ‖ beacon randomness)`; the server seed as revealed.
pub fn draw_seed(server_seed: &Digest, list_hash: &Digest, beacon_randomness: &Digest) -> Digest {
    Digest::of(&[&server_seed.0, &list_hash.0, &beacon_randomness.0])
}

/// The entries in drawn order: the first holds place 1.
pub fn drawn_order(seed: &Digest, entries: &[Digest]) -> Vec<Digest> {
    let mut keyed: Vec<(Digest, Digest)> = entries.iter().map(|h| (Digest::of(&[&seed.0, &h.0]), *h)).collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, h)| h).collect()
}
