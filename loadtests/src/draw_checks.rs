//! The pre-queue scenario's checks: the draw as published checks, every buyer's place is the
//! one it gives, the draw happened once, and admission followed the drawn order.
//!
//! Places are recomputed with the shop's own arithmetic (`src/draw/order.rs`, included by
//! path as `draw_order`): the commitment is `SHA-256(server_seed)`, the list hash that of the
//! published entries, the seed `SHA-256(server_seed ‖ list_hash ‖ SHA-256(beacon
//! signature))`, and the order the one the seed gives. The beacon round's signature and the
//! receipts' signatures are `boxoffice verify-draw`'s to check (tests/it/draw_verify.rs):
//! they need the shop's keys and crates, which the load test does not build.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::checks::{Check, admitted_in_order};
use crate::draw_order::{Digest, draw_seed, drawn_order, list_hash};
use crate::record::BuyerRecord;

/// `GET /api/v1/sales/{sale}/draw`, the fields checked.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PublishedDraw {
    #[serde(deserialize_with = "digest")]
    pub commitment: Digest,
    /// Null until the draw is done.
    pub result: Option<DrawResult>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DrawResult {
    pub frozen_at: String,
    #[serde(deserialize_with = "digest")]
    pub list_hash: Digest,
    pub beacon: BeaconRound,
    #[serde(deserialize_with = "digest")]
    pub server_seed: Digest,
    #[serde(deserialize_with = "digest")]
    pub seed: Digest,
    pub entries: Vec<DrawnEntry>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BeaconRound {
    pub round: u64,
    /// Hex.
    pub signature: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
pub struct DrawnEntry {
    pub place: u64,
    #[serde(deserialize_with = "digest")]
    pub entry_hash: Digest,
}

fn digest<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// The entry hash a receipt stands for: `SHA-256(entry id)`, the id being the receipt's third
/// part (`v1.<sale>.<entry id>.<signature>`).
fn entry_hash(receipt: &str) -> Option<Digest> {
    let id = receipt.split('.').nth(2)?;
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(id, &mut bytes).ok()?;
    Some(Digest::of(&[&bytes]))
}

/// The first thing of the published draw that does not recompute, if any.
fn recompute(draw: &PublishedDraw, result: &DrawResult) -> Option<String> {
    if Digest::of(&[&result.server_seed.0]) != draw.commitment {
        return Some("the revealed server seed does not hash to the commitment".into());
    }
    let hashes: Vec<Digest> = result.entries.iter().map(|e| e.entry_hash).collect();
    if list_hash(&hashes) != result.list_hash {
        return Some("the list hash is not that of the published entries".into());
    }
    let Ok(signature) = hex::decode(&result.beacon.signature) else {
        return Some("the beacon signature is not hex".into());
    };
    let seed = draw_seed(&result.server_seed, &result.list_hash, &Digest::of(&[&signature]));
    if seed != result.seed {
        return Some("the seed is not SHA-256(server seed ‖ list hash ‖ beacon randomness)".into());
    }
    let order = drawn_order(&seed, &hashes);
    for (place, (entry, expected)) in (1..).zip(result.entries.iter().zip(&order)) {
        if entry.place != place || entry.entry_hash != *expected {
            return Some(format!("the published order differs from the seed's at place {place}"));
        }
    }
    None
}

/// Every buyer's place in the published draw, recomputed from its seed and list; the check,
/// and the places by buyer index. A buyer that got a receipt must be in the list, once.
pub fn places(draw: &PublishedDraw, buyers: &[BuyerRecord]) -> (Check, HashMap<usize, u64>) {
    let name = "every place checks against the published draw";
    let Some(result) = &draw.result else {
        let check = Check {
            name,
            passed: false,
            detail: "the draw has no result".into(),
        };
        return (check, HashMap::new());
    };
    let mut wrong: Vec<String> = recompute(draw, result).into_iter().collect();
    let by_hash: HashMap<Digest, u64> = result.entries.iter().map(|e| (e.entry_hash, e.place)).collect();
    let mut places = HashMap::new();
    for b in buyers {
        let Some(receipt) = &b.receipt else { continue };
        match entry_hash(receipt).and_then(|h| by_hash.get(&h)) {
            Some(&place) => {
                places.insert(b.index, place);
            }
            None => wrong.push(format!("buyer {}'s receipt is not in the list", b.index)),
        }
    }
    let check = Check {
        name,
        passed: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!(
                "commitment, list hash, seed and order of {} entries recompute; {} buyers' receipts found at their places",
                result.entries.len(),
                places.len()
            )
        } else {
            format!("{} problems, first: {}", wrong.len(), wrong[0])
        },
    };
    (check, places)
}

/// The draw happened once: the draw read as soon as it was out is the one read at the end,
/// its list is the buyers' receipts (none missing, none added, none twice), and the sale's
/// queue counted each entry once (`joined`: the drawn entries and the buyers who joined after
/// the opening).
pub fn drawn_once(
    first: &PublishedDraw,
    last: &PublishedDraw,
    drawn_after: Duration,
    joined: i64,
    buyers: &[BuyerRecord],
) -> Check {
    let mut wrong = Vec::new();
    if first != last {
        wrong.push("the draw changed after it was published".to_string());
    }
    let entries = last.result.as_ref().map(|r| r.entries.as_slice()).unwrap_or_default();
    let listed: HashSet<Digest> = entries.iter().map(|e| e.entry_hash).collect();
    if listed.len() != entries.len() {
        wrong.push(format!("{} entries, {} different", entries.len(), listed.len()));
    }
    let held: HashSet<Digest> = buyers
        .iter()
        .filter_map(|b| b.receipt.as_deref().and_then(entry_hash))
        .collect();
    if held != listed {
        wrong.push(format!(
            "{} receipts, {} entries listed, {} in both",
            held.len(),
            listed.len(),
            held.intersection(&listed).count()
        ));
    }
    let late = buyers
        .iter()
        .filter(|b| b.code.is_some() && b.receipt.is_none())
        .count();
    if joined != (entries.len() + late) as i64 {
        wrong.push(format!(
            "the queue counted {joined} joins for {} drawn entries and {late} later joins",
            entries.len()
        ));
    }
    Check {
        name: "the draw happened once",
        passed: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!(
                "published {:.1} s after the opening and unchanged since; {} entries, each a buyer's receipt, \
                 each queued once ({late} joined after the opening)",
                drawn_after.as_secs_f64(),
                entries.len()
            )
        } else {
            wrong.join("; ")
        },
    }
}

/// Admission in drawn order: the FIFO rule (`checks`) with the drawn place for the join time.
/// A run that admitted nobody after a wait compared nothing: that fails too, since the check
/// then could not have failed (the run needs holds that come back: fewer seats at checkout
/// at once, more seats than the first admissions take).
pub fn admitted_in_drawn_order(buyers: &[BuyerRecord], places: &HashMap<usize, u64>) -> Check {
    let (violations, compared) = admitted_in_order(buyers, |b| places.get(&b.index).map(|&p| p as i64));
    Check {
        name: "admitted in drawn order",
        passed: violations.is_empty() && compared > 0,
        detail: if !violations.is_empty() {
            format!("{} violations, first: {}", violations.len(), violations[0])
        } else if compared == 0 {
            "nothing compared: no buyer was admitted after a buyer drawn ahead of it had been seen waiting".into()
        } else {
            format!("{compared} admitted buyers compared with everyone of their quantity drawn ahead of them")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Role;

    /// A draw of `ids` with the given seeds, published as the shop would.
    fn published(ids: &[[u8; 16]]) -> PublishedDraw {
        let server_seed = Digest([7; 32]);
        let hashes: Vec<Digest> = ids.iter().map(|id| Digest::of(&[id])).collect();
        let list = list_hash(&hashes);
        let signature = vec![1u8, 2, 3];
        let seed = draw_seed(&server_seed, &list, &Digest::of(&[&signature]));
        let entries = drawn_order(&seed, &hashes)
            .into_iter()
            .zip(1..)
            .map(|(entry_hash, place)| DrawnEntry { place, entry_hash })
            .collect();
        PublishedDraw {
            commitment: Digest::of(&[&server_seed.0]),
            result: Some(DrawResult {
                frozen_at: "2026-01-01T00:00:00Z".into(),
                list_hash: list,
                beacon: BeaconRound {
                    round: 9,
                    signature: hex::encode(&signature),
                },
                server_seed,
                seed,
                entries,
            }),
        }
    }

    fn buyer(index: usize, id: [u8; 16]) -> BuyerRecord {
        let mut b = BuyerRecord::new(index, Role::Buyer, 1);
        b.code = Some(format!("code{index}"));
        b.receipt = Some(format!("v1.sale.{}.sig", hex::encode(id)));
        b
    }

    #[test]
    fn an_honest_draw_gives_each_buyer_its_place_and_a_swap_fails() {
        let ids = [[1u8; 16], [2; 16], [3; 16]];
        let draw = published(&ids);
        let buyers: Vec<BuyerRecord> = ids.iter().enumerate().map(|(i, id)| buyer(i, *id)).collect();
        let (check, places) = places(&draw, &buyers);
        assert!(check.passed, "{}", check.detail);
        let mut got: Vec<u64> = places.values().copied().collect();
        got.sort();
        assert_eq!(got, [1, 2, 3]);
        assert!(drawn_once(&draw, &draw, Duration::ZERO, 3, &buyers).passed);

        let mut swapped = draw.clone();
        let entries = &mut swapped.result.as_mut().unwrap().entries;
        let first = entries[0].entry_hash;
        entries[0].entry_hash = entries[1].entry_hash;
        entries[1].entry_hash = first;
        let (check, _) = super::places(&swapped, &buyers);
        assert!(!check.passed && check.detail.contains("order"), "{}", check.detail);
        assert!(!drawn_once(&draw, &swapped, Duration::ZERO, 3, &buyers).passed);
    }

    #[test]
    fn a_receipt_missing_from_the_list_or_an_entry_queued_twice_fails() {
        let ids = [[1u8; 16], [2; 16]];
        let draw = published(&ids);
        let mut buyers: Vec<BuyerRecord> = ids.iter().enumerate().map(|(i, id)| buyer(i, *id)).collect();
        assert!(
            !drawn_once(&draw, &draw, Duration::ZERO, 3, &buyers).passed,
            "queued three times"
        );
        buyers.push(buyer(2, [9; 16]));
        let (check, _) = places(&draw, &buyers);
        assert!(!check.passed, "{}", check.detail);
        assert!(!drawn_once(&draw, &draw, Duration::ZERO, 2, &buyers).passed);
    }

    #[test]
    fn a_run_that_admitted_nobody_after_a_wait_fails_the_drawn_order_check() {
        let ids = [[1u8; 16], [2; 16]];
        let buyers: Vec<BuyerRecord> = ids.iter().enumerate().map(|(i, id)| buyer(i, *id)).collect();
        let places = HashMap::from([(0, 1), (1, 2)]);
        let check = admitted_in_drawn_order(&buyers, &places);
        assert!(
            !check.passed && check.detail.contains("nothing compared"),
            "{}",
            check.detail
        );
    }
}
