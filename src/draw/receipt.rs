//! Receipts: a pre-queue entry id signed by the shop.
//!
//! The shop's Ed25519 key is derived from `BOXOFFICE_SECRET`
//! (`HMAC-SHA256(secret, "boxoffice draw receipt key v1")` as the key's seed), so every instance
//! of one shop signs with the same key and no second secret needs managing; its public half is
//! published with each draw. A receipt travels as one line of text,
//! `v1.<sale id>.<entry id hex>.<signature hex>`, which is what `verify-draw --receipt` takes.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::EntryId;
use crate::config::Secret;

/// What a receipt signature covers: a fixed label, the sale and the entry id.
fn signed_message(sale: Uuid, entry: &EntryId) -> Vec<u8> {
    let mut message = b"boxoffice draw receipt v1".to_vec();
    message.extend_from_slice(sale.as_bytes());
    message.extend_from_slice(&entry.0);
    message
}

/// The shop's signing key for receipts.
#[derive(Clone)]
pub struct ReceiptSigner {
    key: SigningKey,
}

impl ReceiptSigner {
    pub fn from_secret(secret: &Secret) -> ReceiptSigner {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
        mac.update(b"boxoffice draw receipt key v1");
        ReceiptSigner {
            key: SigningKey::from_bytes(&mac.finalize().into_bytes().into()),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::of(&self.key)
    }

    /// A receipt for a new entry of this sale.
    pub fn issue(&self, sale: Uuid, entry: EntryId) -> Receipt {
        Receipt {
            sale,
            entry,
            signature: self.key.sign(&signed_message(sale, &entry)),
        }
    }
}

/// An Ed25519 public key, 64 hex digits: the shop's receipt key, or a local beacon's. Kept as
/// its 32 bytes, checked to be a key when made, and expanded only to verify.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The public half of `key`.
    pub fn of(key: &SigningKey) -> PublicKey {
        PublicKey(key.verifying_key().to_bytes())
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        VerifyingKey::from_bytes(&self.0).is_ok_and(|key| key.verify(message, signature).is_ok())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = String;

    fn from_str(s: &str) -> Result<PublicKey, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| "expected 64 hex digits".to_string())?;
        VerifyingKey::from_bytes(&bytes)
            .map(|_| PublicKey(bytes))
            .map_err(|_| "not an Ed25519 public key".to_string())
    }
}

super::serde_as_text!(PublicKey);

/// A buyer's proof that the shop accepted their entry into a sale's pre-queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub sale: Uuid,
    pub entry: EntryId,
    pub signature: Signature,
}

/// Why a receipt is not a valid one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt is not of the form v1.<sale>.<entry>.<signature>")]
    Malformed,
    #[error("the receipt's signature is not the shop's")]
    BadSignature,
}

impl Receipt {
    /// Whether the shop holding `key` signed this receipt.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ReceiptError> {
        match key.verifies(&signed_message(self.sale, &self.entry), &self.signature) {
            true => Ok(()),
            false => Err(ReceiptError::BadSignature),
        }
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v1.{}.{}.{}",
            self.sale,
            self.entry,
            hex::encode(self.signature.to_bytes())
        )
    }
}

impl FromStr for Receipt {
    type Err = ReceiptError;

    fn from_str(s: &str) -> Result<Receipt, ReceiptError> {
        let mut parts = s.trim().split('.');
        let (Some("v1"), Some(sale), Some(entry), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ReceiptError::Malformed);
        };
        let mut signature_bytes = [0u8; 64];
        hex::decode_to_slice(signature, &mut signature_bytes).map_err(|_| ReceiptError::Malformed)?;
        Ok(Receipt {
            sale: sale.parse().map_err(|_| ReceiptError::Malformed)?,
            entry: entry.parse().map_err(|_| ReceiptError::Malformed)?,
            signature: Signature::from_bytes(&signature_bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> ReceiptSigner {
        ReceiptSigner::from_secret(&Secret::new(secret.to_string()))
    }

    #[test]
    fn a_receipt_verifies_under_its_shop_key_only() {
        let shop = signer("a-long-enough-secret-of-32-characters");
        let receipt = shop.issue(Uuid::new_v4(), EntryId::random());
        assert_eq!(receipt.verify(&shop.public_key()), Ok(()));
        let other = signer("another-secret-of-at-least-32-characters");
        assert_eq!(receipt.verify(&other.public_key()), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn the_key_follows_the_secret_so_every_instance_signs_alike() {
        let a = signer("a-long-enough-secret-of-32-characters");
        let b = signer("a-long-enough-secret-of-32-characters");
        assert_eq!(a.public_key(), b.public_key());
    }

    #[test]
    fn a_changed_sale_or_entry_breaks_the_signature() {
        let shop = signer("a-long-enough-secret-of-32-characters");
        let receipt = shop.issue(Uuid::new_v4(), EntryId([1; 16]));
        let moved = Receipt {
            sale: Uuid::new_v4(),
            ..receipt.clone()
        };
        assert_eq!(moved.verify(&shop.public_key()), Err(ReceiptError::BadSignature));
        let forged = Receipt {
            entry: EntryId([2; 16]),
            ..receipt
        };
        assert_eq!(forged.verify(&shop.public_key()), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn a_receipt_round_trips_through_its_text_and_refuses_garbage() {
        let shop = signer("a-long-enough-secret-of-32-characters");
        let receipt = shop.issue(Uuid::new_v4(), EntryId::random());
        let text = receipt.to_string();
        assert_eq!(text.parse::<Receipt>(), Ok(receipt));
        for bad in [
            "",
            "v1",
            "v2.a.b.c",
            &format!("{text}.extra"),
            &text.replace("v1.", "v1.x"),
        ] {
            assert_eq!(bad.parse::<Receipt>(), Err(ReceiptError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn a_shop_key_round_trips_through_hex() {
        let key = signer("a-long-enough-secret-of-32-characters").public_key();
        assert_eq!(key.to_string().parse::<PublicKey>(), Ok(key));
        assert!("00".parse::<PublicKey>().is_err());
    }
}
