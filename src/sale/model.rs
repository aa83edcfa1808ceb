//! The values of the sale aggregate. Each is parsed once at the edge and cannot hold a bad
//! value afterwards.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::SaleError;

/// A ticket sale's id. Random (v4), so it can appear in URLs without being guessable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SaleId(pub Uuid);

impl SaleId {
    pub fn new() -> Self {
        SaleId(Uuid::new_v4())
    }
}

impl Default for SaleId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SaleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SaleId {
    type Err = SaleError;
    fn from_str(s: &str) -> Result<Self, SaleError> {
        Uuid::try_parse(s).map(SaleId).map_err(|_| SaleError::UnknownSale)
    }
}

/// Tickets in one reservation: 1 up to the configured maximum (at most 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Quantity(u8);

impl Quantity {
    pub fn new(n: i64, max: u8) -> Result<Self, SaleError> {
        if n >= 1 && n <= i64::from(max) {
            Ok(Quantity(n as u8))
        } else {
            Err(SaleError::BadQuantity { max })
        }
    }

    /// Parses form or path input such as `"3"`.
    pub fn parse(s: &str, max: u8) -> Result<Self, SaleError> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| SaleError::BadQuantity { max })
            .and_then(|n| Self::new(n, max))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// What a buyer holds on to: the sale it belongs to and 122 random (or, for an owner's first
/// reservation in a sale, hashed) bits. Written as 64 hex
/// digits, so a poll carries everything needed to find the sale's keys in one round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReservationCode {
    pub sale: SaleId,
    pub token: Uuid,
}

impl ReservationCode {
    pub fn new(sale: SaleId) -> Self {
        ReservationCode {
            sale,
            token: Uuid::new_v4(),
        }
    }

    /// The code of `owner`'s first reservation in `sale`: derived from the two, so that Redis
    /// needs no index from owner to code for a buyer who joins a sale once (the common case;
    /// `join.lua` indexes only the owners who join again). A hash, so the code does not give
    /// away its owner; 122 bits of it, laid out as a version-8 (custom) UUID.
    pub fn first_of(sale: SaleId, owner: &Owner) -> Self {
        let digest = Sha256::new()
            .chain_update(b"boxoffice first reservation\0")
            .chain_update(sale.0.as_bytes())
            .chain_update(owner.as_str().as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        ReservationCode {
            sale,
            token: Uuid::from_bytes(bytes),
        }
    }

    /// The member name of this reservation inside its sale's Redis keys.
    pub(crate) fn member(&self) -> String {
        self.token.simple().to_string()
    }
}

impl ReservationCode {
    /// The code's text (its Display) written into `buf`, without an allocation: the sale's
    /// 32 hex digits, then the token's.
    pub(crate) fn encode<'b>(&self, buf: &'b mut [u8; 64]) -> &'b str {
        self.sale.0.simple().encode_lower(&mut buf[..32]);
        self.token.simple().encode_lower(&mut buf[32..]);
        std::str::from_utf8(buf).expect("hex digits")
    }
}

impl fmt::Display for ReservationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode(&mut [0u8; 64]))
    }
}

impl FromStr for ReservationCode {
    type Err = SaleError;
    fn from_str(s: &str) -> Result<Self, SaleError> {
        let malformed = || SaleError::MalformedCode;
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        let sale = Uuid::try_parse(&s[..32]).map_err(|_| malformed())?;
        let token = Uuid::try_parse(&s[32..]).map_err(|_| malformed())?;
        Ok(ReservationCode {
            sale: SaleId(sale),
            token,
        })
    }
}

impl Serialize for ReservationCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The session a reservation is bound to, as the scripts compare it: an opaque token the web
/// layer derives from the buyer's session. Another owner cannot see or touch the reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    pub fn new(s: impl Into<String>) -> Result<Self, SaleError> {
        let s = s.into();
        let ok = (16..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(Owner(s)) } else { Err(SaleError::BadOwner) }
    }

    /// A fresh random owner, for clients and tests that have no session of their own.
    pub fn random() -> Self {
        Owner(Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a reservation's record in Redis keeps of its owner: the first 16 hex digits of
    /// the SHA-1 of the binding, as `owner_tag` in lua/common.lua computes it. The poll sends
    /// it ready-made, so that Redis hashes nothing on the service's most frequent call.
    pub fn tag(&self) -> String {
        use sha1::{Digest, Sha1};
        let digest = Sha1::digest(self.0.as_bytes());
        hex::encode(&digest[..8])
    }
}

/// When the joining owner's session was made. A session made by the join's own request holds
/// no reservation yet and its first code was never given out, so the join skips looking for
/// them (three Redis calls of a new buyer's join). Only the service can say `Now`: it minted
/// the session id itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionMade {
    /// By this request.
    Now,
    /// Before it: the owner may hold a reservation already.
    Before,
}

/// Where a reservation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// In the sale's pre-queue, before the opening: its place comes from the draw.
    Prequeue,
    /// In the queue.
    Waiting,
    /// Holding tickets at checkout until `expires_at`.
    Admitted,
    /// Its order is being written.
    Confirming,
    /// Its order is written; the tickets are sold.
    Confirmed,
    /// It can never be served: fewer tickets are left unsold than it asked for.
    SoldOut,
    /// Its hold lapsed before checkout.
    Expired,
    /// The buyer gave up.
    Released,
    /// The sale closed while it waited.
    Closed,
    /// It stopped polling while waiting (a closed tab) and lost its place.
    Abandoned,
}

impl ReservationState {
    pub(crate) fn from_script(s: &str) -> Option<Self> {
        use ReservationState::*;
        Some(match s {
            "prequeue" => Prequeue,
            "waiting" => Waiting,
            "admitted" => Admitted,
            "confirming" => Confirming,
            "confirmed" => Confirmed,
            "sold_out" => SoldOut,
            "expired" => Expired,
            "released" => Released,
            "closed" => Closed,
            "abandoned" => Abandoned,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use ReservationState::*;
        match self {
            Prequeue => "prequeue",
            Waiting => "waiting",
            Admitted => "admitted",
            Confirming => "confirming",
            Confirmed => "confirmed",
            SoldOut => "sold_out",
            Expired => "expired",
            Released => "released",
            Closed => "closed",
            Abandoned => "abandoned",
        }
    }

    /// Still in the running: in the pre-queue, waiting, holding or being confirmed.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Prequeue | Self::Waiting | Self::Admitted | Self::Confirming)
    }
}

/// A reservation as the buyer may see it.
#[derive(Clone, Debug, Serialize)]
pub struct Reservation {
    pub code: ReservationCode,
    pub state: ReservationState,
    pub quantity: u8,
    /// 1-based place in the queue while waiting, else 0.
    pub position: u64,
    /// How many wait in the queue of this sale.
    pub waiting: u64,
    /// When the hold lapses, while admitted or confirming.
    pub expires_at: Option<DateTime<Utc>>,
    /// Redis's clock when this was read: the truth the countdown runs from.
    pub server_now: DateTime<Utc>,
    /// True when this join made the reservation, false when it existed already.
    pub created: bool,
    /// Where a waiting reservation arrived in line, signed: its polls carry it beside the code.
    #[serde(skip)]
    pub place: Option<super::line::Place>,
    /// True when `position` is a bound from above, answered without asking Redis (the buyer
    /// is far from the head); false when it is exact.
    pub approximate: bool,
    /// In the pre-queue: the entry's receipt and the draw's commitment.
    pub prequeue: Option<super::prequeue::PrequeueTicket>,
}

impl Reservation {
    /// The signed place in line a waiting buyer polls with (see `sale::line`); none once it
    /// no longer waits.
    pub fn waiting_place(&self) -> Option<super::line::Place> {
        self.place.filter(|_| self.state == ReservationState::Waiting)
    }

    /// [`waiting_place`](Self::waiting_place) as text.
    pub fn place_text(&self) -> Option<String> {
        self.waiting_place().map(|p| p.to_string())
    }
}

/// A sale's state as the organizer sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleState {
    Open,
    Paused,
    Closed,
}

impl SaleState {
    pub fn as_str(self) -> &'static str {
        match self {
            SaleState::Open => "open",
            SaleState::Paused => "paused",
            SaleState::Closed => "closed",
        }
    }
}

impl FromStr for SaleState {
    type Err = SaleError;
    fn from_str(s: &str) -> Result<Self, SaleError> {
        match s {
            "open" => Ok(SaleState::Open),
            "paused" => Ok(SaleState::Paused),
            "closed" => Ok(SaleState::Closed),
            _ => Err(SaleError::BadSaleState),
        }
    }
}

/// A sale's live figures, read from Redis.
#[derive(Clone, Debug, Serialize)]
pub struct SaleFigures {
    pub capacity: i64,
    pub sold: i64,
    /// Tickets held at checkout.
    pub held: i64,
    /// Buyers in the queue.
    pub waiting: i64,
    pub state: SaleState,
    pub opens_at: DateTime<Utc>,
    /// Buyers admitted to checkout since the sale's Redis state was built.
    pub admitted: i64,
    /// Holds that lapsed unconfirmed since then.
    pub lapsed: i64,
    /// Buyers at checkout now.
    pub active: i64,
    /// Reservations made (every buyer who joined, the queue or straight to checkout).
    pub joined: i64,
    /// Buyers who left the queue themselves.
    pub left: i64,
    /// Buyers who gave their hold back at checkout.
    pub released: i64,
    /// Buyers who lost their place by not polling (a closed tab).
    pub abandoned: i64,
    /// Buyers told the sale was sold out, on joining or while queued.
    pub sold_out: i64,
    pub server_now: DateTime<Utc>,
    /// Buyers admitted per minute of late, the same for every page and instance.
    pub admission_rate: super::AdmissionRate,
}

impl SaleFigures {
    /// Tickets neither sold nor held.
    pub fn available(&self) -> i64 {
        (self.capacity - self.sold - self.held).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_tag_is_the_start_of_the_sha1_of_the_binding() {
        // FIPS 180's second SHA-1 example: 84983e441c3bd26ebaae4aa1f95129e5e54670f1
        let owner = Owner::new("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").unwrap();
        assert_eq!(owner.tag(), "84983e441c3bd26e");
    }

    #[test]
    fn quantity_accepts_one_to_max_only() {
        assert!(Quantity::new(0, 6).is_err());
        assert!(Quantity::new(-1, 6).is_err());
        assert!(Quantity::new(7, 6).is_err());
        assert_eq!(Quantity::new(6, 6).unwrap().get(), 6);
        assert!(Quantity::new(5, 4).is_err());
        assert!(Quantity::parse("abc", 6).is_err());
        assert_eq!(Quantity::parse(" 3 ", 6).unwrap().get(), 3);
    }

    #[test]
    fn reservation_code_round_trips_and_refuses_garbage() {
        let code = ReservationCode::new(SaleId::new());
        let text = code.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<ReservationCode>().unwrap(), code);
        for bad in [
            "",
            "abc",
            &text[..63],
            &format!("{}g", &text[..63]),
            &format!("{text}0"),
        ] {
            assert!(
                matches!(bad.parse::<ReservationCode>(), Err(SaleError::MalformedCode)),
                "{bad}"
            );
        }
    }

    #[test]
    fn owner_is_a_plain_token() {
        assert!(Owner::new("short").is_err());
        assert!(Owner::new("has space has space").is_err());
        assert!(Owner::new("x".repeat(65)).is_err());
        assert!(Owner::new("abcdefghijklmnop").is_ok());
        assert!(Owner::new(Owner::random().as_str()).is_ok());
    }
}
