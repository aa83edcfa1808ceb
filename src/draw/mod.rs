//! The pre-queue's draw: a commit–reveal shuffle that every buyer can check, and whose order
//! nobody (not the organizer, not the operator) chooses alone.
//!
//! # The algorithm (`boxoffice-draw-v1`)
//!
//! 1. When the pre-queue opens the shop draws a random 32-byte `server_seed` and publishes the
//!    commitment `C = SHA-256(server_seed)`, its receipt key and the beacon chain it will use.
//! 2. Each pre-queue join gets a [`receipt::Receipt`]: a random 16-byte entry id, signed with the
//!    shop's Ed25519 key. Ed25519, not HMAC: anyone holding the published public key can check a
//!    receipt, so a buyer can prove the shop issued an entry it then left out of the list.
//! 3. At the opening the entry list is frozen: `list_hash = SHA-256(h_1 ‖ … ‖ h_n)` over the
//!    entry hashes `h_i = SHA-256(entry id)` in ascending byte order. It is published with the
//!    time of the freeze.
//! 4. The public randomness `R` is the first beacon round emitted strictly after the freeze (see
//!    [`beacon`]): a value that did not exist when the list was fixed and that the shop cannot
//!    choose.
//! 5. `seed = SHA-256(server_seed ‖ list_hash ‖ R)`; the entries are ordered by
//!    `SHA-256(seed ‖ h_i)` ascending (ties, which need a SHA-256 collision, by `h_i`), and an
//!    entry's place is its 1-based rank in that order.
//! 6. The shop reveals `server_seed` and publishes every `h_i` with its place
//!    ([`published::PublishedDraw`]); `boxoffice verify-draw` checks it all against a receipt.
//!
//! The rank uses the entry's hash, not its id, so anyone can recompute the whole order from the
//! published list while the entry ids, the receipts' secrets, stay with their buyers.

pub mod beacon;
pub mod fetch;
mod order;
pub mod published;
pub mod receipt;

use std::fmt;
use std::str::FromStr;

pub use order::{Digest, draw_seed, drawn_order, list_hash};

/// Serde through a type's text form (`Display` and `FromStr`): the draw's values travel as hex.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_text;

/// The name of the algorithm above, published with every draw.
pub const ALGORITHM: &str = "boxoffice-draw-v1";

serde_as_text!(Digest);

/// 32 random bytes from the operating system.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
}

/// The shop's secret half of the draw, kept until the draw is done and revealed then.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSeed(pub Digest);

impl ServerSeed {
    pub fn random() -> ServerSeed {
        ServerSeed(Digest(random_bytes()))
    }

    /// `C = SHA-256(server_seed)`, published before the first entry.
    pub fn commitment(&self) -> Digest {
        Digest::of(&[&self.0.0])
    }
}

impl fmt::Debug for ServerSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Revealing it before the draw would let a buyer predict the order.
        f.write_str("ServerSeed(***)")
    }
}

/// A pre-queue entry's id: 128 random bits that only its buyer's receipt carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryId(pub [u8; 16]);

impl EntryId {
    pub fn random() -> EntryId {
        EntryId(random_bytes())
    }

    /// `h = SHA-256(entry id)`, the form in which the entry is published.
    pub fn hash(&self) -> Digest {
        Digest::of(&[&self.0])
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryId({self})")
    }
}

impl FromStr for EntryId {
    type Err = String;

    fn from_str(s: &str) -> Result<EntryId, String> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| "expected 32 hex digits".to_string())?;
        Ok(EntryId(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u8) -> Vec<Digest> {
        (0..n).map(|i| EntryId([i; 16]).hash()).collect()
    }

    #[test]
    fn the_commitment_is_the_hash_of_the_seed() {
        let seed = ServerSeed(Digest([7; 32]));
        assert_eq!(seed.commitment(), Digest::of(&[&[7; 32]]));
        assert_ne!(seed.commitment(), ServerSeed(Digest([8; 32])).commitment());
        assert_eq!(format!("{seed:?}"), "ServerSeed(***)");
    }

    #[test]
    fn the_list_hash_ignores_join_order_but_not_membership() {
        let list = entries(5);
        let mut reversed = list.clone();
        reversed.reverse();
        assert_eq!(list_hash(&list), list_hash(&reversed));
        assert_ne!(list_hash(&list), list_hash(&list[..4]));
        assert_ne!(list_hash(&list), list_hash(&entries(6)));
    }

    #[test]
    fn the_order_is_a_permutation_that_follows_the_seed() {
        let list = entries(50);
        let a = drawn_order(&Digest([1; 32]), &list);
        let b = drawn_order(&Digest([2; 32]), &list);
        let mut sorted = a.clone();
        sorted.sort();
        let mut expected = list.clone();
        expected.sort();
        assert_eq!(sorted, expected, "every entry exactly once");
        assert_ne!(a, b, "another seed, another order");
        assert_eq!(a, drawn_order(&Digest([1; 32]), &list), "the same seed, the same order");
        let mut shuffled_input = list.clone();
        shuffled_input.rotate_left(17);
        assert_eq!(
            a,
            drawn_order(&Digest([1; 32]), &shuffled_input),
            "join order does not matter"
        );
    }

    #[test]
    fn the_seed_depends_on_each_of_its_three_inputs() {
        let s = ServerSeed(Digest([1; 32]));
        let seed = draw_seed(&s.0, &Digest([2; 32]), &Digest([3; 32]));
        assert_ne!(seed, draw_seed(&Digest([9; 32]), &Digest([2; 32]), &Digest([3; 32])));
        assert_ne!(seed, draw_seed(&s.0, &Digest([9; 32]), &Digest([3; 32])));
        assert_ne!(seed, draw_seed(&s.0, &Digest([2; 32]), &Digest([9; 32])));
    }

    #[test]
    fn digests_and_entry_ids_round_trip_through_hex() {
        let d = Digest([0xab; 32]);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("abc".parse::<Digest>().is_err());
        assert!("zz".repeat(32).parse::<Digest>().is_err());
        let e = EntryId::random();
        assert_eq!(e.to_string().parse::<EntryId>().unwrap(), e);
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&format!("\"{d}\"")).unwrap(), d);
    }
}
