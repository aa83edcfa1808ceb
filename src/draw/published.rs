//! The draw as the shop publishes it, and the check a buyer runs against it.
//!
//! Before the opening only the commitment half is there (the algorithm, the commitment, the
//! receipt key, the beacon chain); after it, [`DrawResult`] reveals the rest. The shop computes
//! a result with [`DrawResult::compute`] and a buyer checks it with [`check`], which recomputes
//! everything from the published values with the same functions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::beacon::{BeaconChain, BeaconError, BeaconRound};
use super::receipt::{PublicKey, Receipt, ReceiptError};
use super::{ALGORITHM, Digest, ServerSeed, draw_seed, drawn_order, list_hash};

/// A sale's draw: its commitment from the start, its result after the opening.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishedDraw {
    /// Always [`ALGORITHM`]; a verifier refuses any other.
    pub algorithm: String,
    pub sale: Uuid,
    /// `SHA-256(server_seed)`.
    pub commitment: Digest,
    /// The Ed25519 key that signs this shop's receipts.
    pub receipt_key: PublicKey,
    pub beacon_chain: BeaconChain,
    /// Absent until the draw is done.
    pub result: Option<DrawResult>,
}

/// What the shop reveals once the pre-queue is frozen and drawn.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DrawResult {
    /// When the entry list was frozen; the beacon round is the first one after it.
    pub frozen_at: DateTime<Utc>,
    /// SHA-256 over the sorted entry hashes.
    pub list_hash: Digest,
    pub beacon: BeaconRound,
    /// The revealed secret whose hash is the commitment.
    pub server_seed: Digest,
    /// `SHA-256(server_seed ‖ list_hash ‖ SHA-256(beacon signature))`.
    pub seed: Digest,
    /// Every entry, in drawn order.
    pub entries: Vec<DrawnEntry>,
}

/// One entry of the frozen list and the place the draw gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DrawnEntry {
    /// 1 is the first place.
    pub place: u64,
    /// `SHA-256(entry id)`.
    pub entry_hash: Digest,
}

impl DrawResult {
    /// The draw of `entries` (entry hashes, any order) frozen at `frozen_at` with `beacon`.
    pub fn compute(
        server_seed: &ServerSeed,
        frozen_at: DateTime<Utc>,
        entries: &[Digest],
        beacon: BeaconRound,
    ) -> DrawResult {
        let list_hash = list_hash(entries);
        let seed = draw_seed(&server_seed.0, &list_hash, &beacon.randomness());
        let entries = drawn_order(&seed, entries)
            .into_iter()
            .zip(1..)
            .map(|(entry_hash, place)| DrawnEntry { place, entry_hash })
            .collect();
        DrawResult {
            frozen_at,
            list_hash,
            beacon,
            server_seed: server_seed.0,
            seed,
            entries,
        }
    }
}

/// The first thing that does not hold in a published draw.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DrawCheckError {
    #[error("the draw uses the algorithm {0:?}, which this verifier does not know")]
    UnknownAlgorithm(String),
    #[error("the draw has not happened yet")]
    NotDrawnYet,
    #[error("the receipt is for sale {receipt}, the draw for sale {draw}")]
    AnotherSale { receipt: Uuid, draw: Uuid },
    #[error("receipt: {0}")]
    Receipt(#[from] ReceiptError),
    #[error("the revealed server seed does not hash to the commitment")]
    CommitmentMismatch,
    #[error("the published list hash is not the hash of the published entries")]
    ListHashMismatch,
    #[error("the draw uses a local beacon whose key was not given as trusted")]
    UntrustedBeacon,
    #[error("the draw used beacon round {used}, but the first round after the freeze is {expected}")]
    WrongBeaconRound { used: u64, expected: u64 },
    #[error("beacon: {0}")]
    Beacon(#[from] BeaconError),
    #[error("the published seed is not SHA-256(server seed ‖ list hash ‖ beacon randomness)")]
    SeedMismatch,
    #[error("the published order differs from the one the seed gives, first at place {place}")]
    OrderMismatch { place: u64 },
    #[error("the receipt's entry is not in the published list")]
    EntryMissing,
}

/// Checks every published value of the draw and returns the receipt's place.
///
/// `trusted_local_beacon`: the key of a local beacon the caller chooses to trust (tests, demos);
/// without it only drand's quicknet is accepted.
pub fn check(
    draw: &PublishedDraw,
    receipt: &Receipt,
    trusted_local_beacon: Option<&PublicKey>,
) -> Result<u64, DrawCheckError> {
    if draw.algorithm != ALGORITHM {
        return Err(DrawCheckError::UnknownAlgorithm(draw.algorithm.clone()));
    }
    if receipt.sale != draw.sale {
        return Err(DrawCheckError::AnotherSale {
            receipt: receipt.sale,
            draw: draw.sale,
        });
    }
    receipt.verify(&draw.receipt_key)?;
    let result = draw.result.as_ref().ok_or(DrawCheckError::NotDrawnYet)?;
    let server_seed = ServerSeed(result.server_seed);
    if server_seed.commitment() != draw.commitment {
        return Err(DrawCheckError::CommitmentMismatch);
    }
    let hashes: Vec<Digest> = result.entries.iter().map(|e| e.entry_hash).collect();
    if list_hash(&hashes) != result.list_hash {
        return Err(DrawCheckError::ListHashMismatch);
    }
    if let BeaconChain::Local { public_key, .. } = &draw.beacon_chain
        && trusted_local_beacon != Some(public_key)
    {
        return Err(DrawCheckError::UntrustedBeacon);
    }
    let expected = draw.beacon_chain.first_round_after(result.frozen_at);
    if result.beacon.round != expected {
        return Err(DrawCheckError::WrongBeaconRound {
            used: result.beacon.round,
            expected,
        });
    }
    draw.beacon_chain.verify(&result.beacon)?;
    let seed = draw_seed(&server_seed.0, &result.list_hash, &result.beacon.randomness());
    if seed != result.seed {
        return Err(DrawCheckError::SeedMismatch);
    }
    for (entry, (expected_hash, place)) in result
        .entries
        .iter()
        .zip(drawn_order(&seed, &hashes).into_iter().zip(1..))
    {
        if entry.place != place || entry.entry_hash != expected_hash {
            return Err(DrawCheckError::OrderMismatch { place });
        }
    }
    let mine = receipt.entry.hash();
    result
        .entries
        .iter()
        .find(|e| e.entry_hash == mine)
        .map(|e| e.place)
        .ok_or(DrawCheckError::EntryMissing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::draw::EntryId;
    use crate::draw::beacon::{Beacon, LocalBeacon};
    use crate::draw::receipt::ReceiptSigner;

    struct Fixture {
        draw: PublishedDraw,
        receipts: Vec<Receipt>,
        beacon: LocalBeacon,
        shop: ReceiptSigner,
    }

    impl Fixture {
        fn trusted(&self) -> PublicKey {
            match self.beacon.chain() {
                BeaconChain::Local { public_key, .. } => public_key,
                BeaconChain::DrandQuicknet => unreachable!("the fixture's beacon is local"),
            }
        }

        fn check(&self, receipt: &Receipt) -> Result<u64, DrawCheckError> {
            check(&self.draw, receipt, Some(&self.trusted()))
        }

        fn result(&mut self) -> &mut DrawResult {
            self.draw.result.as_mut().unwrap()
        }
    }

    /// A sale with `n` entries drawn with a local beacon, as the shop would publish it.
    fn drawn(n: usize) -> Fixture {
        let sale = Uuid::new_v4();
        let shop = ReceiptSigner::from_secret(&Secret::new("a-long-enough-secret-of-32-characters".into()));
        let genesis = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let beacon = LocalBeacon::new([9; 32], genesis, 3);
        let server_seed = ServerSeed::random();
        let receipts: Vec<Receipt> = (0..n).map(|_| shop.issue(sale, EntryId::random())).collect();
        let hashes: Vec<Digest> = receipts.iter().map(|r| r.entry.hash()).collect();
        let frozen_at = genesis + chrono::Duration::seconds(3600);
        let round = beacon.sign(beacon.chain().first_round_after(frozen_at));
        let draw = PublishedDraw {
            algorithm: ALGORITHM.to_string(),
            sale,
            commitment: server_seed.commitment(),
            receipt_key: shop.public_key(),
            beacon_chain: beacon.chain(),
            result: Some(DrawResult::compute(&server_seed, frozen_at, &hashes, round)),
        };
        Fixture {
            draw,
            receipts,
            beacon,
            shop,
        }
    }

    #[test]
    fn an_honest_draw_checks_and_gives_every_receipt_its_published_place() {
        let f = drawn(20);
        let mut places: Vec<u64> = f.receipts.iter().map(|r| f.check(r).unwrap()).collect();
        places.sort();
        assert_eq!(places, (1..=20).collect::<Vec<_>>());
        let json = serde_json::to_string(&f.draw).unwrap();
        let parsed: PublishedDraw = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, f.draw, "the draw survives its JSON form");
    }

    #[test]
    fn a_changed_commitment_fails() {
        let mut f = drawn(5);
        f.draw.commitment = Digest([0; 32]);
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::CommitmentMismatch));
    }

    #[test]
    fn a_revealed_seed_other_than_the_committed_one_fails() {
        let mut f = drawn(5);
        f.result().server_seed = ServerSeed::random().0;
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::CommitmentMismatch));
    }

    #[test]
    fn an_entry_added_or_dropped_after_the_freeze_fails() {
        let mut f = drawn(5);
        let extra = DrawnEntry {
            place: 6,
            entry_hash: EntryId::random().hash(),
        };
        f.result().entries.push(extra);
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::ListHashMismatch));
        let mut f = drawn(5);
        f.result().entries.pop();
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::ListHashMismatch));
    }

    #[test]
    fn a_changed_list_hash_fails() {
        let mut f = drawn(5);
        f.result().list_hash = Digest([1; 32]);
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::ListHashMismatch));
    }

    #[test]
    fn a_receipt_left_out_of_the_list_fails() {
        // The shop drops an entry and publishes a consistent draw without it: the receipt proves it.
        let f = drawn(5);
        let dropped = &f.receipts[2];
        let mut g = drawn(0);
        g.draw.sale = f.draw.sale;
        let server_seed = ServerSeed::random();
        g.draw.commitment = server_seed.commitment();
        let kept: Vec<Digest> = f
            .receipts
            .iter()
            .filter(|r| *r != dropped)
            .map(|r| r.entry.hash())
            .collect();
        let old = f.draw.result.clone().unwrap();
        g.draw.result = Some(DrawResult::compute(&server_seed, old.frozen_at, &kept, old.beacon));
        g.draw.receipt_key = f.shop.public_key();
        assert_eq!(
            check(&g.draw, dropped, Some(&g.trusted())),
            Err(DrawCheckError::EntryMissing)
        );
        assert!(check(&g.draw, &f.receipts[0], Some(&g.trusted())).is_ok());
    }

    #[test]
    fn a_changed_beacon_signature_fails() {
        let mut f = drawn(5);
        f.result().beacon.signature[3] ^= 1;
        let round = f.result().beacon.round;
        assert_eq!(
            f.check(&f.receipts[0]),
            Err(DrawCheckError::Beacon(BeaconError::BadSignature { round }))
        );
    }

    #[test]
    fn a_beacon_round_from_before_the_freeze_or_picked_later_fails() {
        for shift in [-1i64, 1] {
            let mut f = drawn(5);
            let expected = f.result().beacon.round;
            let used = expected.checked_add_signed(shift).unwrap();
            // A genuine round of the chain, but not the one the freeze fixes.
            f.result().beacon = f.beacon.sign(used);
            assert_eq!(
                f.check(&f.receipts[0]),
                Err(DrawCheckError::WrongBeaconRound { used, expected })
            );
        }
    }

    #[test]
    fn a_moved_freeze_time_fails() {
        let mut f = drawn(5);
        f.result().frozen_at -= chrono::Duration::seconds(30);
        assert!(matches!(
            f.check(&f.receipts[0]),
            Err(DrawCheckError::WrongBeaconRound { .. })
        ));
    }

    #[test]
    fn an_untrusted_local_beacon_fails() {
        let f = drawn(5);
        assert_eq!(
            check(&f.draw, &f.receipts[0], None),
            Err(DrawCheckError::UntrustedBeacon)
        );
        let stranger = ReceiptSigner::from_secret(&Secret::new("x".repeat(32))).public_key();
        assert_eq!(
            check(&f.draw, &f.receipts[0], Some(&stranger)),
            Err(DrawCheckError::UntrustedBeacon)
        );
    }

    #[test]
    fn a_changed_seed_fails() {
        let mut f = drawn(5);
        f.result().seed = Digest([2; 32]);
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::SeedMismatch));
    }

    #[test]
    fn swapped_places_fail() {
        let mut f = drawn(5);
        let entries = &mut f.result().entries;
        let (first, second) = (entries[0].entry_hash, entries[1].entry_hash);
        entries[0].entry_hash = second;
        entries[1].entry_hash = first;
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::OrderMismatch { place: 1 }));
        let mut f = drawn(5);
        f.result().entries[3].place = 9;
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::OrderMismatch { place: 4 }));
    }

    #[test]
    fn a_forged_or_foreign_receipt_fails() {
        let f = drawn(5);
        let forged = Receipt {
            entry: EntryId::random(),
            ..f.receipts[0].clone()
        };
        assert_eq!(
            f.check(&forged),
            Err(DrawCheckError::Receipt(ReceiptError::BadSignature))
        );
        let foreign = f.shop.issue(Uuid::new_v4(), EntryId::random());
        assert!(matches!(f.check(&foreign), Err(DrawCheckError::AnotherSale { .. })));
    }

    #[test]
    fn a_swapped_receipt_key_fails() {
        let mut f = drawn(5);
        f.draw.receipt_key = ReceiptSigner::from_secret(&Secret::new("y".repeat(32))).public_key();
        assert_eq!(
            f.check(&f.receipts[0]),
            Err(DrawCheckError::Receipt(ReceiptError::BadSignature))
        );
    }

    #[test]
    fn an_undrawn_or_unknown_draw_fails() {
        let mut f = drawn(5);
        f.draw.algorithm = "other".into();
        assert!(matches!(
            f.check(&f.receipts[0]),
            Err(DrawCheckError::UnknownAlgorithm(_))
        ));
        let mut f = drawn(5);
        f.draw.result = None;
        assert_eq!(f.check(&f.receipts[0]), Err(DrawCheckError::NotDrawnYet));
    }
}
