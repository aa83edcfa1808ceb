//! One pre-queue place per verified email: an organizer setting per sale (off by default; it
//! can be turned on only where the shop sends mail). When it is on, a pre-queue join gives an
//! email; the shop mails that address a one-time link (through the outbox, as every mail), and
//! the entry, with its receipt, is made only when the link is confirmed, for the session that
//! confirms it. One address holds one place in the sale.
//!
//! - **The address** is normalized by the shop's one rule ([`crate::email::normalize`]) and
//!   kept as a digest: HMAC-SHA256 under a key derived from `BOXOFFICE_SECRET`. The pre-queue
//!   never writes to the address again, so it keeps only what tells "this address holds a
//!   place"; keyed, so that a copy of the database cannot be checked against a list of known
//!   addresses as a plain hash could. The address itself stays on the link's row only until
//!   its mail is sent.
//! - **The link** is the id of that row signed with the shop's secret (HMAC-SHA256): the id
//!   alone opens nothing, and nobody without the secret can make one. It works once (one
//!   guarded `update … where used_at is null`) and for [`LINK_LIFETIME`].
//! - **One place per address** is Postgres's: a unique index on the entries' digests per sale,
//!   so of two confirmations for one address at the same moment exactly one makes a place.
//! - **No enumeration.** Asking for a link answers the same whatever the address: one that
//!   holds a place already, or that has [`MAX_LIVE_LINKS`] links out, gets no new mail.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::script::PrequeueMark;
use super::{Owner, Quantity, Reservation, SaleError, SaleId, TicketSales};
use crate::config::Secret;
use crate::db;
use crate::db::prequeue::{Confirmed, EntryRow};
use crate::db::prequeue_links::NewLink;
use crate::draw::{EntryId, ServerSeed};

/// How long a mailed link works: 15 minutes. Enough for a mail that needs a few attempts (the
/// outbox retries after 30 s, doubling) and for the buyer to open it on another device; short
/// enough that a link forwarded or leaked is soon worth nothing, and half the default
/// pre-queue window, so that a buyer who asks early can ask again within the window.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Links of one address in one sale that may be out (unused, unexpired) at once; asking again
/// beyond them answers the same and mails nothing, so the shop cannot be used to flood an
/// inbox.
pub const MAX_LIVE_LINKS: i64 = 3;

/// What a signature is for: one made for one purpose is good for nothing else.
const LINK: &[u8] = b"prequeue-link\0";
const ADDRESS: &[u8] = b"prequeue-email\0";

fn mac(secret: &Secret, purpose: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(purpose);
    mac
}

/// The address a pre-queue join gives, normalized by the shop's one rule.
#[derive(Clone, Debug)]
pub struct PrequeueEmail(String);

impl PrequeueEmail {
    pub fn parse(s: &str) -> Result<Self, SaleError> {
        crate::email::normalize(s).map(PrequeueEmail).ok_or(SaleError::BadEmail)
    }

    /// What the entry keeps of the address (see the module's doc).
    fn digest(&self, secret: &Secret) -> Vec<u8> {
        let mut mac = mac(secret, ADDRESS);
        mac.update(self.0.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// A mailed link's token: the link's id (32 hex digits), a dot, and its signature (43
/// base64url characters).
pub struct LinkToken;

impl LinkToken {
    /// Its length, the only one there is.
    pub const LEN: usize = 32 + 1 + 43;

    fn signature(secret: &Secret, id: Uuid) -> Hmac<Sha256> {
        let mut mac = mac(secret, LINK);
        mac.update(id.as_bytes());
        mac
    }

    /// The token of link `id`.
    pub fn sign(secret: &Secret, id: Uuid) -> String {
        let signature = URL_SAFE_NO_PAD.encode(Self::signature(secret, id).finalize().into_bytes());
        format!("{}.{signature}", id.simple())
    }

    /// The link id a token carries, when its signature is the shop's (compared in constant
    /// time); `UnknownLink` for anything else.
    pub fn verify(secret: &Secret, token: &str) -> Result<Uuid, SaleError> {
        let token = token.trim();
        let (id, signature) = token
            .split_once('.')
            .filter(|_| token.len() == Self::LEN)
            .ok_or(SaleError::UnknownLink)?;
        let id = Uuid::try_parse(id).map_err(|_| SaleError::UnknownLink)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| SaleError::UnknownLink)?;
        Self::signature(secret, id)
            .verify_slice(&signature)
            .map_err(|_| SaleError::UnknownLink)?;
        Ok(id)
    }
}

/// What a join came to.
#[derive(Debug)]
pub enum Joining {
    /// A place: in the queue, or in the pre-queue.
    Placed(Reservation),
    /// The sale gives one pre-queue place per verified email: a link to the place was mailed
    /// (or, for an address that holds a place or has links out, nothing was; the answer is
    /// the same).
    LinkMailed,
}

impl TicketSales {
    /// A pre-queue join of a sale that gives one place per verified email: the session's
    /// entry if it has one (one per session, as always), else a link mailed to `email`.
    pub(super) async fn mail_prequeue_link(
        &self,
        sale: SaleId,
        owner: &Owner,
        quantity: Quantity,
        email: Option<&PrequeueEmail>,
    ) -> Result<Joining, SaleError> {
        let pool = &self.inner.db;
        if let Some(entry) = db::prequeue::owner_entry(pool, sale, owner.as_str()).await? {
            return Ok(Joining::Placed(
                self.prequeue_reservation(sale, &entry, Utc::now()).await?,
            ));
        }
        let email = email.ok_or(SaleError::EmailRequired)?;
        let link = NewLink {
            id: Uuid::new_v4(),
            sale,
            email_digest: email.digest(&self.inner.secret),
            address: email.0.clone(),
            quantity: i16::from(quantity.get()),
            lifetime: LINK_LIFETIME,
        };
        db::prequeue_links::offer(pool, &link, MAX_LIVE_LINKS).await?;
        Ok(Joining::LinkMailed)
    }

    /// Confirms a mailed link for `owner`: the entry the link holds, made now, once. The
    /// session's own entry if it has one already (the link stays unused); `LinkSpent` for a
    /// link used or expired, `EmailHasPlace` when the address holds a place already (nothing
    /// changes, the link stays unused), `PrequeueOver` once the sale has opened.
    pub async fn confirm_prequeue_link(&self, token: &str, owner: &Owner) -> Result<Reservation, SaleError> {
        let pool = &self.inner.db;
        let id = LinkToken::verify(&self.inner.secret, token)?;
        let link = db::prequeue_links::find(pool, id)
            .await?
            .ok_or(SaleError::UnknownLink)?;
        if !link.live {
            return Err(SaleError::LinkSpent);
        }
        let sale = SaleId(link.sale_id);
        let window = db::prequeue::window(pool, sale).await?.ok_or(SaleError::UnknownSale)?;
        if window.state == "closed" {
            return Err(SaleError::Closed);
        }
        if !window.is_open() {
            return Err(SaleError::PrequeueOver);
        }
        // As for every pre-queue entry: before it exists, joins after the opening must wait.
        self.call_synced(sale, &PrequeueMark).await?;
        let fresh = EntryRow {
            owner: owner.as_str().to_string(),
            entry_id: EntryId::random().0.to_vec(),
            reservation: Uuid::new_v4(),
            quantity: link.quantity,
        };
        let seed = ServerSeed::random();
        match db::prequeue::confirm(pool, sale, &fresh, &seed.0.0, id).await? {
            Confirmed::Frozen => Err(SaleError::PrequeueOver),
            Confirmed::LinkSpent => Err(SaleError::LinkSpent),
            Confirmed::EmailTaken => Err(SaleError::EmailHasPlace),
            Confirmed::Entry { entry, created } => {
                if created {
                    crate::metrics::get().joined();
                }
                let mut r = self.prequeue_reservation(sale, &entry, Utc::now()).await?;
                r.created = created;
                Ok(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        crate::config::Settings::default().secret
    }

    #[test]
    fn a_token_verifies_under_its_secret_only_and_whole() {
        let s = secret();
        let id = Uuid::new_v4();
        let token = LinkToken::sign(&s, id);
        assert_eq!(token.len(), LinkToken::LEN);
        assert_eq!(LinkToken::verify(&s, &token).unwrap(), id);
        assert!(LinkToken::verify(&secret(), &token).is_err(), "another secret");
        let other = LinkToken::sign(&s, Uuid::new_v4());
        let swapped = format!("{}{}", &token[..33], &other[33..]);
        assert!(LinkToken::verify(&s, &swapped).is_err(), "another link's signature");
        for bad in ["", ".", &token[..40], &format!("{token}x"), &token.replace('.', "-")] {
            assert!(LinkToken::verify(&s, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_address_has_one_digest_however_it_is_written() {
        let s = secret();
        let a = PrequeueEmail::parse(" Ada@Example.com").unwrap().digest(&s);
        let b = PrequeueEmail::parse("ada@example.COM ").unwrap().digest(&s);
        let c = PrequeueEmail::parse("bob@example.com").unwrap().digest(&s);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 32);
        assert!(PrequeueEmail::parse("not an address").is_err());
    }
}
