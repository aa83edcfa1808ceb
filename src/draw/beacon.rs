//! The draw's public randomness: a beacon round the shop cannot choose.
//!
//! A beacon chain emits one signed round every `period` seconds from `genesis`; round `r` exists
//! from `genesis + (r - 1) · period`. The draw uses the first round emitted strictly after the
//! freeze, so its value did not exist when the entry list was fixed, and it takes the round's
//! randomness as `SHA-256(signature)`, as drand does.
//!
//! Two chains, behind one [`Beacon`] trait:
//!
//! - [`BeaconChain::DrandQuicknet`], production: the League of Entropy's `quicknet` (unchained,
//!   BLS signatures on G1, RFC 9380 hashing, a round every 3 s). A round's BLS signature is
//!   checked against the chain's public key, pinned below, with the `drand-verify` crate.
//! - [`BeaconChain::Local`], for tests and machines without the internet: the same round rules,
//!   signed with an Ed25519 key whoever runs it holds. It proves nothing to a buyer; the
//!   verifier accepts it only when told to trust that key.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use drand_verify::{G2PubkeyRfc, Pubkey};
use ed25519_dalek::{Signature, Signer, SigningKey};

use super::Digest;
use super::receipt::PublicKey;

/// quicknet's chain hash, which names it in drand's HTTP API.
pub const QUICKNET_CHAIN_HASH: &str = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";
/// quicknet's group public key (from `/<chain hash>/info`).
const QUICKNET_PUBLIC_KEY: [u8; 96] = hex_96(
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
);
const QUICKNET_GENESIS: i64 = 1_692_803_367;
const QUICKNET_PERIOD_SECS: u64 = 3;

/// 96 bytes from 192 hex digits, at compile time.
const fn hex_96(s: &str) -> [u8; 96] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 192);
    let mut out = [0u8; 96];
    let mut i = 0;
    while i < 96 {
        out[i] = digit(s[2 * i]) * 16 + digit(s[2 * i + 1]);
        i += 1;
    }
    out
}

/// Which chain a draw's randomness comes from, published with the commitment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BeaconChain {
    DrandQuicknet,
    Local {
        public_key: PublicKey,
        /// Unix seconds of round 1.
        genesis: i64,
        period_secs: u64,
    },
}

/// Why a beacon round is not the one the draw needs.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    #[error("round {round}'s signature does not verify under the chain's key")]
    BadSignature { round: u64 },
    #[error("round {round} is not emitted yet")]
    NotYet { round: u64 },
    #[error("the beacon could not be reached: {0}")]
    Unreachable(String),
    #[error("the beacon answered something else than round {round}: {reason}")]
    BadAnswer { round: u64, reason: String },
}

impl BeaconChain {
    fn genesis_and_period(&self) -> (i64, u64) {
        match self {
            BeaconChain::DrandQuicknet => (QUICKNET_GENESIS, QUICKNET_PERIOD_SECS),
            BeaconChain::Local {
                genesis, period_secs, ..
            } => (*genesis, (*period_secs).max(1)),
        }
    }

    /// When round `round` (from 1) is emitted.
    pub fn round_time(&self, round: u64) -> DateTime<Utc> {
        let (genesis, period) = self.genesis_and_period();
        let offset = round.saturating_sub(1).saturating_mul(period).min(i64::MAX as u64 / 2) as i64;
        DateTime::from_timestamp(genesis.saturating_add(offset), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The first round emitted strictly after `moment`: the draw's round for a freeze then.
    pub fn first_round_after(&self, moment: DateTime<Utc>) -> u64 {
        let (genesis, period) = self.genesis_and_period();
        let since = moment.timestamp() - genesis;
        if since < 0 {
            return 1;
        }
        // Round `since / period + 1` was emitted at or before `moment`; the next one is after.
        since as u64 / period + 2
    }

    /// Whether this chain signed `round`.
    pub fn verify(&self, round: &BeaconRound) -> Result<(), BeaconError> {
        let bad = || BeaconError::BadSignature { round: round.round };
        match self {
            BeaconChain::DrandQuicknet => {
                let key = G2PubkeyRfc::from_fixed(QUICKNET_PUBLIC_KEY).expect("the pinned quicknet key is a G2 point");
                match key.verify(round.round, b"", &round.signature) {
                    Ok(true) => Ok(()),
                    Ok(false) | Err(_) => Err(bad()),
                }
            }
            BeaconChain::Local { public_key, .. } => {
                let signature = Signature::from_slice(&round.signature).map_err(|_| bad())?;
                match public_key.verifies(&round_message(round.round).0, &signature) {
                    true => Ok(()),
                    false => Err(bad()),
                }
            }
        }
    }
}

/// What a round's signature covers, as in drand's unchained schemes: `SHA-256(round, big-endian)`.
fn round_message(round: u64) -> Digest {
    Digest::of(&[&round.to_be_bytes()])
}

/// One signed round of a beacon chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BeaconRound {
    pub round: u64,
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

impl BeaconRound {
    /// The round's randomness, `SHA-256(signature)`.
    pub fn randomness(&self) -> Digest {
        Digest::of(&[&self.signature])
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(serde::de::Error::custom)
    }
}

/// A future a [`Beacon`] returns; boxed so that beacons can be chosen at run time.
pub type BeaconFuture<'a> = Pin<Box<dyn Future<Output = Result<BeaconRound, BeaconError>> + Send + 'a>>;

/// A source of beacon rounds.
pub trait Beacon: Send + Sync {
    /// The chain this source serves, published with the commitment.
    fn chain(&self) -> BeaconChain;

    /// Round `round`, checked against the chain's key; [`BeaconError::NotYet`] before its time.
    fn fetch(&self, round: u64) -> BeaconFuture<'_>;
}

/// Waits for the first round after `frozen_at` and fetches it, retrying while the source says
/// it is not there yet or cannot be reached, up to `patience` past the round's time.
pub async fn round_after(
    beacon: &dyn Beacon,
    frozen_at: DateTime<Utc>,
    patience: std::time::Duration,
) -> Result<BeaconRound, BeaconError> {
    let chain = beacon.chain();
    let round = chain.first_round_after(frozen_at);
    let due = chain.round_time(round);
    let give_up = due + chrono::Duration::from_std(patience).unwrap_or(chrono::Duration::MAX);
    loop {
        if let Ok(wait) = (chain.round_time(round) - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        match beacon.fetch(round).await {
            Ok(fetched) => return Ok(fetched),
            Err(e @ (BeaconError::NotYet { .. } | BeaconError::Unreachable(_))) if Utc::now() < give_up => {
                tracing::warn!(round, error = %e, "Beacon round not available yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// drand's HTTP API serving quicknet.
pub struct DrandHttp {
    client: reqwest::Client,
    /// For example `https://api.drand.sh`; any drand relay serves the same signed rounds.
    base_url: String,
}

impl DrandHttp {
    pub fn new(client: reqwest::Client, base_url: &str) -> DrandHttp {
        DrandHttp {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    async fn get(&self, round: u64) -> Result<BeaconRound, BeaconError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            round: u64,
            randomness: Digest,
            #[serde(with = "hex_bytes")]
            signature: Vec<u8>,
        }
        let url = format!("{}/{QUICKNET_CHAIN_HASH}/public/{round}", self.base_url);
        let response = self
            .client
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| BeaconError::Unreachable(e.to_string()))?;
        // drand answers 425 Too Early (older relays 404) for a round still in the future.
        if matches!(response.status().as_u16(), 404 | 425) {
            return Err(BeaconError::NotYet { round });
        }
        let answer: Answer = response
            .error_for_status()
            .map_err(|e| BeaconError::Unreachable(e.to_string()))?
            .json()
            .await
            .map_err(|e| BeaconError::BadAnswer {
                round,
                reason: e.to_string(),
            })?;
        let bad = |reason: &str| BeaconError::BadAnswer {
            round,
            reason: reason.to_string(),
        };
        if answer.round != round {
            return Err(bad("another round"));
        }
        let signed = BeaconRound {
            round,
            signature: answer.signature,
        };
        if answer.randomness != signed.randomness() {
            return Err(bad("randomness is not SHA-256 of the signature"));
        }
        BeaconChain::DrandQuicknet.verify(&signed)?;
        Ok(signed)
    }
}

impl Beacon for DrandHttp {
    fn chain(&self) -> BeaconChain {
        BeaconChain::DrandQuicknet
    }

    fn fetch(&self, round: u64) -> BeaconFuture<'_> {
        Box::pin(self.get(round))
    }
}

/// A beacon whose key its holder controls: for tests and offline demos, never a fair draw.
pub struct LocalBeacon {
    key: SigningKey,
    genesis: i64,
    period_secs: u64,
}

impl LocalBeacon {
    /// A chain signed with the key from `seed`, round 1 at `genesis`, one round per `period_secs`.
    pub fn new(seed: [u8; 32], genesis: DateTime<Utc>, period_secs: u64) -> LocalBeacon {
        LocalBeacon {
            key: SigningKey::from_bytes(&seed),
            genesis: genesis.timestamp(),
            period_secs: period_secs.max(1),
        }
    }

    /// The shop's own local beacon (`BOXOFFICE_BEACON=local`): its key from `secret`
    /// (`HMAC-SHA256(secret, "boxoffice local beacon v1")`), round 1 at the Unix epoch, one
    /// round a second. Whoever holds the secret can compute any round, so it is no fair
    /// draw's randomness; it serves tests and machines without the internet.
    pub fn from_secret(secret: &crate::config::Secret) -> LocalBeacon {
        use hmac::{Hmac, Mac};
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
        mac.update(b"boxoffice local beacon v1");
        LocalBeacon::new(mac.finalize().into_bytes().into(), DateTime::UNIX_EPOCH, 1)
    }

    /// Round `round` signed, whether or not its time has come: what a test uses to forge one.
    pub fn sign(&self, round: u64) -> BeaconRound {
        BeaconRound {
            round,
            signature: self.key.sign(&round_message(round).0).to_bytes().to_vec(),
        }
    }
}

impl Beacon for LocalBeacon {
    fn chain(&self) -> BeaconChain {
        BeaconChain::Local {
            public_key: PublicKey::of(&self.key),
            genesis: self.genesis,
            period_secs: self.period_secs,
        }
    }

    fn fetch(&self, round: u64) -> BeaconFuture<'_> {
        let answer = if self.chain().round_time(round) > Utc::now() {
            Err(BeaconError::NotYet { round })
        } else {
            Ok(self.sign(round))
        };
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// quicknet round 123, recorded from
    /// `https://api3.drand.sh/52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971/public/123`
    /// (the same vector `drand-verify` tests with).
    fn quicknet_round_123() -> BeaconRound {
        serde_json::from_str(
            r#"{"round":123,"signature":"b75c69d0b72a5d906e854e808ba7e2accb1542ac355ae486d591aa9d43765482e26cd02df835d3546d23c4b13e0dfc92"}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_recorded_quicknet_round_verifies() {
        assert_eq!(BeaconChain::DrandQuicknet.verify(&quicknet_round_123()), Ok(()));
    }

    #[test]
    fn a_quicknet_round_with_another_number_or_a_changed_signature_does_not() {
        let mut renumbered = quicknet_round_123();
        renumbered.round = 124;
        assert_eq!(
            BeaconChain::DrandQuicknet.verify(&renumbered),
            Err(BeaconError::BadSignature { round: 124 })
        );
        let mut flipped = quicknet_round_123();
        flipped.signature[20] ^= 1;
        assert!(BeaconChain::DrandQuicknet.verify(&flipped).is_err());
        let mut short = quicknet_round_123();
        short.signature.truncate(10);
        assert!(BeaconChain::DrandQuicknet.verify(&short).is_err());
    }

    #[test]
    fn randomness_is_the_hash_of_the_signature_as_drand_publishes_it() {
        // drand mainnet round 1000000, recorded from drand.cloudflare.com/public/1000000: its
        // published randomness is SHA-256 of its signature, the rule every drand chain follows.
        let round = BeaconRound {
            round: 1_000_000,
            signature: hex::decode("87e355169c4410a8ad6d3e7f5094b2122932c1062f603e6628aba2e4cb54f46c3bf1083c3537cd3b99e8296784f46fb40e090961cf9634f02c7dc2a96b69fc3c03735bc419962780a71245b72f81882cf6bb9c961bcf32da5624993bb747c9e5").unwrap(),
        };
        assert_eq!(
            round.randomness().to_string(),
            "a26ba4d229c666f52a06f1a9be1278dcc7a80dbc1dd2004a1ae7b63cb79fd37e"
        );
    }

    #[test]
    fn quicknet_round_times_follow_its_genesis_and_period() {
        let chain = BeaconChain::DrandQuicknet;
        assert_eq!(chain.round_time(1).timestamp(), QUICKNET_GENESIS);
        assert_eq!(chain.round_time(123).timestamp(), QUICKNET_GENESIS + 122 * 3);
        // A freeze exactly on a round's time takes the next one; a freeze between rounds too.
        let at_round_10 = chain.round_time(10);
        assert_eq!(chain.first_round_after(at_round_10), 11);
        assert_eq!(
            chain.first_round_after(at_round_10 + chrono::Duration::milliseconds(2900)),
            11
        );
        assert_eq!(chain.first_round_after(at_round_10 + chrono::Duration::seconds(3)), 12);
        let before_genesis = DateTime::from_timestamp(QUICKNET_GENESIS - 100, 0).unwrap();
        assert_eq!(chain.first_round_after(before_genesis), 1);
        for moment in [at_round_10, Utc::now()] {
            let round = chain.first_round_after(moment);
            assert!(chain.round_time(round) > moment);
            assert!(chain.round_time(round - 1) <= moment);
        }
    }

    #[test]
    fn a_local_round_verifies_under_its_own_key_only() {
        let beacon = LocalBeacon::new([5; 32], Utc::now(), 1);
        let round = beacon.sign(42);
        assert_eq!(beacon.chain().verify(&round), Ok(()));
        let other = LocalBeacon::new([6; 32], Utc::now(), 1);
        assert_eq!(
            other.chain().verify(&round),
            Err(BeaconError::BadSignature { round: 42 })
        );
        let renumbered = BeaconRound { round: 43, ..round };
        assert!(beacon.chain().verify(&renumbered).is_err());
    }

    #[tokio::test]
    async fn round_after_waits_for_the_first_round_after_the_freeze() {
        let beacon = LocalBeacon::new([5; 32], Utc::now() - chrono::Duration::seconds(10), 1);
        let frozen_at = Utc::now();
        let round = round_after(&beacon, frozen_at, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(round.round, beacon.chain().first_round_after(frozen_at));
        assert!(
            Utc::now() >= beacon.chain().round_time(round.round),
            "not fetched before its time"
        );
        assert!(matches!(
            beacon.fetch(round.round + 100).await,
            Err(BeaconError::NotYet { .. })
        ));
    }

    #[test]
    fn a_chain_round_trips_through_json() {
        let local = LocalBeacon::new([5; 32], Utc::now(), 2).chain();
        for chain in [BeaconChain::DrandQuicknet, local] {
            let json = serde_json::to_string(&chain).unwrap();
            assert_eq!(serde_json::from_str::<BeaconChain>(&json).unwrap(), chain);
        }
        assert_eq!(
            serde_json::to_string(&BeaconChain::DrandQuicknet).unwrap(),
            r#"{"kind":"drand-quicknet"}"#
        );
    }
}
