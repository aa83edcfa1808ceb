//! A price for bots: proof-of-work on join, in the ALTCHA v2 format (`altcha` crate).
//!
//! When a sale's joins per minute reach [`PowSettings::joins_per_min`], a join must carry the
//! solution of a challenge from `GET /api/v1/sales/{sale}/challenge`. A challenge is stateless:
//! its parameters (a random nonce and salt, an expiry, and `data` naming the sale and the
//! session's owner) are HMAC-signed with a key derived from `BOXOFFICE_SECRET`, so any
//! instance can check it without storing it. The shop picks the answer (the counter) in
//! advance at random in `[max/2, max]`, and signs the key it derives from it
//! ("deterministic mode"): checking a solution costs two HMACs, not the client's search.
//!
//! Solving: for `counter = 0, 1, 2, …` compute
//! `key = SHA-256(salt ‖ nonce ‖ counter as 4 big-endian bytes)` (salt and nonce hex-decoded)
//! until `key` starts with `keyPrefix`; send `base64(JSON {challenge, solution: {counter,
//! derivedKey: hex(key)}})` as the join's `proof`. `assets/pow.js` does this in the browser.
//!
//! `max` (the difficulty) starts at [`PowSettings::min_counter`] at the threshold rate and
//! doubles with each doubling of the rate, up to [`PowSettings::max_counter`]. Each solution
//! is good for one join: its nonce is recorded in Redis (`SET NX` with the challenge's expiry,
//! under the sale's hash tag) and a second use is refused.

use std::collections::BTreeMap;

use altcha::{Challenge, CreateChallengeOptions, Payload, VerifySolutionOptions};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;
use crate::sale::{Owner, SaleId};

/// How long a challenge may be solved and used.
pub const CHALLENGE_SECS: i64 = 300;

/// The longest proof a join may carry: a solved challenge is under a kilobyte of base64.
pub const MAX_PROOF_LEN: usize = 4096;

/// Whether `proof` has a proof's form at all (standard base64, at most [`MAX_PROOF_LEN`]), as
/// the API's document declares it: checked on every join that carries one, even when the sale
/// asks for none, so that what the document refuses is refused.
pub fn is_well_formed(proof: &str) -> bool {
    proof.len() <= MAX_PROOF_LEN && proof.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
}

/// The key-derivation function of our challenges: one SHA-256 per counter, which a browser
/// computes natively (`crypto.subtle.digest`).
const ALGORITHM: &str = "SHA-256";

/// When a join must pay, and how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowSettings {
    /// Joins per minute of one sale from which a proof is required; 0: never.
    pub joins_per_min: u32,
    /// The largest counter at the threshold rate.
    pub min_counter: u32,
    /// The largest counter at any rate.
    pub max_counter: u32,
}

impl PowSettings {
    /// The largest counter of a challenge when the sale had `joins_last_minute`; `None`: no
    /// proof needed.
    pub fn difficulty(&self, joins_last_minute: u64) -> Option<u32> {
        let threshold = u64::from(self.joins_per_min);
        if threshold == 0 || joins_last_minute < threshold {
            return None;
        }
        let doublings = (joins_last_minute / threshold).ilog2();
        let counter = u64::from(self.min_counter.max(1)) << doublings.min(32);
        Some(counter.min(u64::from(self.max_counter.max(self.min_counter))) as u32)
    }
}

/// Why a join's proof is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    /// 428: this sale asks for a proof of work now and the join carried none.
    #[error(
        "This sale is busy: solve the challenge from /api/v1/sales/{{sale}}/challenge and join again with its proof."
    )]
    Required,
    /// 400: the proof is not a base64 JSON challenge and solution.
    #[error("The proof of work could not be read.")]
    Malformed,
    /// 422: the challenge's time is over; ask for a new one.
    #[error("The challenge has expired; please ask for a new one.")]
    Expired,
    /// 422: not our signature, another sale or session, or a wrong solution.
    #[error("The proof of work is not valid for this sale and session.")]
    Invalid,
    /// 409: this solution was used already.
    #[error("This proof of work has been used already; please ask for a new challenge.")]
    Reused,
}

/// Issues and checks join challenges.
#[derive(Clone)]
pub struct JoinPuzzles {
    settings: PowSettings,
    challenge_secret: String,
    key_secret: String,
}

/// A solution checked to be valid, not yet recorded as used.
#[derive(Debug, PartialEq, Eq)]
pub struct ValidProof {
    /// The challenge's nonce, which names it once used.
    pub nonce: String,
    /// Seconds from now until the challenge expires, for how long to remember the use.
    pub remember_secs: i64,
}

fn derive(secret: &Secret, label: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(label);
    hex::encode(mac.finalize().into_bytes())
}

fn binding(sale: SaleId, owner: &Owner) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([
        ("sale".to_string(), sale.to_string().into()),
        ("owner".to_string(), owner.as_str().into()),
    ])
}

impl JoinPuzzles {
    pub fn new(secret: &Secret, settings: PowSettings) -> JoinPuzzles {
        JoinPuzzles {
            settings,
            challenge_secret: derive(secret, b"boxoffice join challenge v1"),
            key_secret: derive(secret, b"boxoffice join challenge key v1"),
        }
    }

    pub fn settings(&self) -> PowSettings {
        self.settings
    }

    /// A challenge for this sale and session whose answer is at most `max_counter`.
    pub fn issue(&self, sale: SaleId, owner: &Owner, max_counter: u32) -> Challenge {
        let mut pick = [0u8; 4];
        getrandom::fill(&mut pick).expect("the operating system's random source is available");
        let low = max_counter / 2;
        let counter = low + u32::from_be_bytes(pick) % (max_counter - low + 1);
        altcha::create_challenge(CreateChallengeOptions {
            algorithm: ALGORITHM.into(),
            counter: Some(counter),
            cost: 1,
            data: Some(binding(sale, owner)),
            expires_at: Some(chrono::Utc::now().timestamp() + CHALLENGE_SECS),
            hmac_signature_secret: Some(self.challenge_secret.clone()),
            hmac_key_signature_secret: Some(self.key_secret.clone()),
            ..CreateChallengeOptions::default()
        })
        .expect("our own challenge parameters are valid")
    }

    /// Whether `proof` (base64 JSON `{challenge, solution}`) solves a challenge we issued for
    /// this sale and session. It does not record the use: see [`ValidProof`].
    pub fn check(&self, sale: SaleId, owner: &Owner, proof: &str) -> Result<ValidProof, PowError> {
        use base64::Engine;
        let json = base64::engine::general_purpose::STANDARD
            .decode(proof.trim())
            .map_err(|_| PowError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| PowError::Malformed)?;
        let params = &payload.challenge.parameters;
        // Checked before the signature so that a challenge of another kind costs no HMAC;
        // the signature covers all of these anyway.
        if params.algorithm != ALGORITHM || params.data.as_ref() != Some(&binding(sale, owner)) {
            return Err(PowError::Invalid);
        }
        let mut options =
            VerifySolutionOptions::new(&payload.challenge, &payload.solution, self.challenge_secret.clone());
        options.hmac_key_signature_secret = Some(self.key_secret.clone());
        let result = altcha::verify_solution(options).map_err(|_| PowError::Invalid)?;
        if result.expired {
            return Err(PowError::Expired);
        }
        if !result.verified || params.key_signature.is_none() {
            return Err(PowError::Invalid);
        }
        let remember_secs = params.expires_at.unwrap_or(0) - chrono::Utc::now().timestamp() + 1;
        Ok(ValidProof {
            nonce: params.nonce.clone(),
            remember_secs: remember_secs.clamp(1, CHALLENGE_SECS + 1),
        })
    }
}

/// Solves a challenge as a client does; for tests, benchmarks and the demo crowd.
pub fn solve(challenge: &Challenge) -> Option<String> {
    use base64::Engine;
    let mut options = altcha::SolveChallengeOptions::new(challenge);
    options.timeout_ms = 0;
    let solution = altcha::solve_challenge(options).ok()??;
    let payload = Payload {
        challenge: challenge.clone(),
        solution,
    };
    let json = serde_json::to_vec(&payload).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_has_the_form_of_standard_base64_within_its_length() {
        assert!(is_well_formed("eyJjaGFsbGVuZ2UiOnt9fQ=="));
        assert!(is_well_formed(""));
        for bad in ["not base64!", "a b", "ab\n", "ab_-", "é"] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
        assert!(is_well_formed(&"A".repeat(MAX_PROOF_LEN)));
        assert!(!is_well_formed(&"A".repeat(MAX_PROOF_LEN + 1)));
    }

    fn puzzles() -> JoinPuzzles {
        JoinPuzzles::new(
            &Secret::new("a-long-enough-secret-of-32-characters".into()),
            PowSettings {
                joins_per_min: 100,
                min_counter: 1000,
                max_counter: 16000,
            },
        )
    }

    #[test]
    fn difficulty_is_off_below_the_threshold_and_doubles_with_the_rate() {
        let p = puzzles().settings();
        assert_eq!(p.difficulty(0), None);
        assert_eq!(p.difficulty(99), None);
        assert_eq!(p.difficulty(100), Some(1000));
        assert_eq!(p.difficulty(199), Some(1000));
        assert_eq!(p.difficulty(200), Some(2000));
        assert_eq!(p.difficulty(800), Some(8000));
        assert_eq!(p.difficulty(u64::MAX), Some(16000));
        let off = PowSettings { joins_per_min: 0, ..p };
        assert_eq!(off.difficulty(1_000_000), None);
    }

    #[test]
    fn a_solved_challenge_checks_for_its_sale_and_session_only() {
        let p = puzzles();
        let (sale, owner) = (SaleId::new(), Owner::random());
        let proof = solve(&p.issue(sale, &owner, 50)).unwrap();
        let valid = p.check(sale, &owner, &proof).unwrap();
        assert!(valid.remember_secs > CHALLENGE_SECS - 5);
        assert_eq!(p.check(SaleId::new(), &owner, &proof), Err(PowError::Invalid));
        assert_eq!(p.check(sale, &Owner::random(), &proof), Err(PowError::Invalid));
    }

    #[test]
    fn a_wrong_or_foreign_or_garbled_proof_is_refused() {
        use base64::Engine;
        let p = puzzles();
        let (sale, owner) = (SaleId::new(), Owner::random());
        let challenge = p.issue(sale, &owner, 50);
        let proof = solve(&challenge).unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        let mut payload: Payload = serde_json::from_slice(&engine.decode(&proof).unwrap()).unwrap();
        payload.solution.counter += 1;
        payload.solution.derived_key = "00".repeat(32);
        let wrong = engine.encode(serde_json::to_vec(&payload).unwrap());
        assert_eq!(p.check(sale, &owner, &wrong), Err(PowError::Invalid));

        let other_shop = JoinPuzzles::new(&Secret::new("b".repeat(32)), p.settings());
        let foreign = solve(&other_shop.issue(sale, &owner, 50)).unwrap();
        assert_eq!(p.check(sale, &owner, &foreign), Err(PowError::Invalid));

        assert_eq!(p.check(sale, &owner, "not base64!"), Err(PowError::Malformed));
        assert_eq!(p.check(sale, &owner, &engine.encode(b"{}")), Err(PowError::Malformed));
    }

    #[test]
    fn an_expired_challenge_is_refused() {
        use base64::Engine;
        let p = puzzles();
        let (sale, owner) = (SaleId::new(), Owner::random());
        let mut challenge = p.issue(sale, &owner, 10);
        // Re-signed with a past expiry, as the shop would have signed it earlier.
        challenge.parameters.expires_at = Some(chrono::Utc::now().timestamp() - 1);
        let resigned = altcha::sign_challenge(
            &altcha::HmacAlgorithm::Sha256,
            &mut challenge.parameters,
            None,
            &p.challenge_secret,
            None,
        )
        .unwrap();
        let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&resigned))
            .unwrap()
            .unwrap();
        let payload = Payload {
            challenge: resigned,
            solution,
        };
        let proof = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&payload).unwrap());
        assert_eq!(p.check(sale, &owner, &proof), Err(PowError::Expired));
    }

    #[test]
    fn the_answer_lies_in_the_upper_half_of_the_range() {
        let p = puzzles();
        let (sale, owner) = (SaleId::new(), Owner::random());
        for _ in 0..5 {
            let proof = solve(&p.issue(sale, &owner, 40)).unwrap();
            use base64::Engine;
            let payload: Payload =
                serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(proof).unwrap()).unwrap();
            assert!(
                (20..=40).contains(&payload.solution.counter),
                "{}",
                payload.solution.counter
            );
        }
    }
}
