//! The waiting line as each app instance keeps it, so that the poll of a buyer far from the
//! head costs Redis nothing.
//!
//! Beside its code, a waiting reservation carries its **place** (`?place=` of its polls): its
//! arrival number (its bit in the queue), its quantity, the sale's epoch in Redis and the
//! position the buyer was last shown, signed with an HMAC over those, the code and the owner
//! (the session), so the app knows in-process whose code it is, where it arrived and what it
//! was told. Every answer gives the place back, with the position it shows.
//! Per live sale the instance keeps a [`LineView`], read a few times a second with one call
//! of `line.lua`: the sale's state and tickets, the number waiting, the last arrival number,
//! and the departures from the queue counted per block of arrival numbers. From those a place
//! is bounded from above: a buyer that arrived as number `s` has at most
//! `waiting - (last - s) + departures in the blocks from s's on` buyers up to and including
//! itself (the buyers that arrived after it and are still there are at least `last - s` less
//! those departures). The bound is above the truth by at most the departures of one block
//! before the buyer. A poll answers the lesser of the bound and the position its place was
//! last shown: both are at least the truth (which only shrinks), so the answer is too, and a
//! buyer polling with each answer's place is never shown a larger number than before: not after
//! the join's exact answer (the bound also counts the buyers of its own block who left before
//! it came), nor when its polls go to instances whose views were read at different times.
//!
//! A buyer whose bound is within [`LineView::near_places`] of the head is answered by the
//! `status` script, exactly, as before (which admits, and notes presence near the head). So
//! is every case the view cannot answer for sure: a sale closed or without enough tickets for
//! the buyer's quantity, a view too old or from another epoch (Redis lost and rebuilt the
//! sale), a buyer that left (the view keeps the arrival numbers of leavers; if it missed some
//! it asks Redis for every number up to where it lost track). A buyer that left through this
//! instance is known here at once, one that left through another once the view is read again.
//!
//! The view is read every [`REFRESH`] by a task per sale, from the first poll that carries a
//! place until nobody has polled the sale for a while. Polls that find no view (the first of
//! a sale on this instance, or the view older than [`MAX_AGE`]) wait for one read of it, made
//! by one of them, at most one try a [`REFRESH`]; if that fails too they ask `status`. So each
//! instance costs Redis four calls a second per sale being polled, whatever the number of
//! buyers polling, also when a whole crowd polls a freshly started instance at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::warn;

use super::script::{Line, LineReply};
use super::{Owner, Reservation, ReservationCode, ReservationState, SaleId, SaleState, TicketSales};
use crate::config::Secret;

/// How often a view is read while its sale is polled.
pub const REFRESH: Duration = Duration::from_millis(250);
/// A view older than this (Redis away, say) answers nobody: the poll asks Redis.
const MAX_AGE: Duration = Duration::from_secs(2);
/// A sale not polled for this long is forgotten and its view no longer read.
const FORGET: Duration = Duration::from_secs(120);
/// Bytes of the HMAC a place carries (80 bits).
const MAC_BYTES: usize = 10;
/// Bytes of a place's figures: arrival number (6), epoch (4), quantity (1), position shown (4).
const FIGURE_BYTES: usize = 15;
/// Hex digits of a place: its figures (30), then its HMAC (20).
pub const PLACE_HEX: usize = 2 * (FIGURE_BYTES + MAC_BYTES);

/// Where a waiting reservation arrived and what it was last told, signed for its code and
/// owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The arrival number (its bit in the queue); at most 48 bits.
    pub seq: u64,
    /// The low 32 bits of the sale's epoch in Redis (see `epoch` in `lua/common.lua`).
    pub epoch: u32,
    pub quantity: u8,
    /// The position the answer that gave this place showed: no later answer shows more.
    pub shown: u32,
    mac: [u8; MAC_BYTES],
}

/// The shop's secret keyed for places once, the purpose prefix fed in: an HMAC's key schedule
/// costs two blocks of SHA-256 that every far poll would otherwise pay again, beside the one
/// block the place itself takes.
#[derive(Clone)]
pub struct PlaceKey(Hmac<Sha256>);

impl PlaceKey {
    pub fn new(secret: &Secret) -> PlaceKey {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
        // A purpose prefix: a place signs nothing else.
        mac.update(b"line-place\0");
        PlaceKey(mac)
    }
}

impl Place {
    /// The figures as the text shows them and the HMAC signs them, big-endian.
    fn figures(&self) -> [u8; FIGURE_BYTES] {
        let all = (u128::from(self.seq) << 72)
            | (u128::from(self.epoch) << 40)
            | (u128::from(self.quantity) << 32)
            | u128::from(self.shown);
        let mut out = [0u8; FIGURE_BYTES];
        out.copy_from_slice(&all.to_be_bytes()[16 - FIGURE_BYTES..]);
        out
    }

    fn mac(&self, key: &PlaceKey, code: &ReservationCode, owner: &Owner) -> [u8; MAC_BYTES] {
        let mut mac = key.0.clone();
        mac.update(code.encode(&mut [0u8; 64]).as_bytes());
        mac.update(owner.as_str().as_bytes());
        mac.update(&self.figures());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    /// The place of `code`, owned by `owner`, that arrived as `seq` in the sale's `epoch` and
    /// is shown at `position`.
    pub fn sign(
        key: &PlaceKey,
        code: &ReservationCode,
        owner: &Owner,
        (seq, epoch, quantity): (u64, i64, u8),
        position: u64,
    ) -> Place {
        let mut place = Place {
            seq: seq & 0xffff_ffff_ffff,
            epoch: epoch as u32,
            quantity,
            shown: u32::try_from(position).unwrap_or(u32::MAX),
            mac: [0; MAC_BYTES],
        };
        place.mac = place.mac(key, code, owner);
        place
    }

    /// The same place, shown at `position` now.
    fn shown_at(&self, key: &PlaceKey, code: &ReservationCode, owner: &Owner, position: u64) -> Place {
        Place::sign(
            key,
            code,
            owner,
            (self.seq, i64::from(self.epoch), self.quantity),
            position,
        )
    }

    /// Whether this place was signed for `code` and `owner` (compared in constant time).
    pub fn verify(&self, key: &PlaceKey, code: &ReservationCode, owner: &Owner) -> bool {
        let expected = self.mac(key, code, owner);
        expected.iter().zip(self.mac).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Reads a place from its text ([`PLACE_HEX`] hex digits); `None` for anything else (a
    /// place of an earlier layout too: its poll asks Redis, whose answer gives a new one).
    pub fn parse(text: &str) -> Option<Place> {
        let mut bytes = [0u8; FIGURE_BYTES + MAC_BYTES];
        if text.len() != PLACE_HEX {
            return None;
        }
        hex::decode_to_slice(text, &mut bytes).ok()?;
        let mut all = [0u8; 16];
        all[16 - FIGURE_BYTES..].copy_from_slice(&bytes[..FIGURE_BYTES]);
        let all = u128::from_be_bytes(all);
        let mut mac = [0u8; MAC_BYTES];
        mac.copy_from_slice(&bytes[FIGURE_BYTES..]);
        // The casts keep the bits of each figure's field, as `figures` laid them out.
        Some(Place {
            seq: (all >> 72) as u64,
            epoch: (all >> 40) as u32,
            quantity: (all >> 32) as u8,
            shown: all as u32,
            mac,
        })
    }

    /// The place's text (its Display) written into `buf`, without an allocation: every far
    /// poll's answer carries it.
    pub fn encode<'b>(&self, buf: &'b mut [u8; PLACE_HEX]) -> &'b str {
        hex::encode_to_slice(self.figures(), &mut buf[..2 * FIGURE_BYTES]).expect("15 bytes are 30 digits");
        hex::encode_to_slice(self.mac, &mut buf[2 * FIGURE_BYTES..]).expect("the HMAC fills the rest");
        std::str::from_utf8(buf).expect("hex digits")
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.encode(&mut [0u8; PLACE_HEX]))
    }
}

/// One reading of a sale's line.
#[derive(Debug)]
pub struct LineView {
    state: SaleState,
    /// Tickets not sold (held ones included: they may come back).
    unsold: i64,
    waiting: u64,
    last_seq: u64,
    epoch: i64,
    now: DateTime<Utc>,
    read_at: Instant,
    near: u64,
    block: u64,
    /// `from_block[b]`: departures in blocks b and after.
    from_block: Vec<u64>,
}

impl LineView {
    /// A bound from above on the 1-based place of the buyer that arrived as `seq`; `None` for
    /// an arrival number this view has not given.
    pub fn place_bound(&self, seq: u64) -> Option<u64> {
        if seq == 0 || seq > self.last_seq {
            return None;
        }
        let block = usize::try_from(seq / self.block).ok()?;
        let departed = self.from_block.get(block).copied().unwrap_or(0);
        let after = self.last_seq - seq;
        Some((self.waiting + departed).saturating_sub(after).max(1))
    }

    /// Places from the head within which a buyer is answered by `status`: the places where
    /// Redis notes presence, plus what the bound may overstate (a block's departures) and what
    /// the line may move while a view is read, so that a buyer coming near polls Redis well
    /// before it reaches the head.
    pub fn near_places(&self) -> u64 {
        self.near + 2 * self.block
    }

    fn from_reply(f: &super::script::LineFigures) -> LineView {
        let counts: Vec<u64> = f
            .departed
            .chunks(2)
            .map(|c| u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0)))
            .collect();
        let mut from_block = vec![0u64; counts.len()];
        let mut sum = 0;
        for (i, n) in counts.iter().enumerate().rev() {
            sum += n;
            from_block[i] = sum;
        }
        LineView {
            state: f.state,
            unsold: f.capacity - f.sold,
            waiting: f.waiting,
            last_seq: f.seq,
            epoch: f.epoch,
            now: f.now,
            read_at: Instant::now(),
            near: f.near,
            block: f.block,
            from_block,
        }
    }
}

/// The views of this instance, per sale.
#[derive(Default)]
pub(crate) struct Lines(std::sync::Mutex<HashMap<SaleId, LineEntry>>);

#[derive(Default)]
struct LineEntry {
    view: Option<Arc<LineView>>,
    /// When a poll last asked for this sale's view; its reader stops after [`FORGET`] without.
    used: Option<Instant>,
    /// Leavers read so far (the sale hash's `left` at the last read) and their numbers.
    seen_left: u64,
    leavers: HashSet<u64>,
    /// Arrival numbers up to this one are asked of Redis: leavers were missed among them.
    unsure_to: u64,
    /// Codes that left through this instance, known here before the next read.
    left_here: HashSet<uuid::Uuid>,
    /// Held by the one poll that reads the line for the polls waiting for a view (see
    /// `read_line_now`), with when it last tried.
    first_read: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl LineEntry {
    /// The view, unless it is older than [`MAX_AGE`] (Redis away): such a view answers nobody.
    fn fresh_view(&self) -> Option<Arc<LineView>> {
        self.fresh_view_at(Instant::now())
    }

    fn fresh_view_at(&self, now: Instant) -> Option<Arc<LineView>> {
        self.view.clone().filter(|v| now.duration_since(v.read_at) < MAX_AGE)
    }

    /// Whether the buyer who arrived `seq`th with `code` may have left since the view was read.
    fn may_have_left(&self, code: &ReservationCode, seq: u64) -> bool {
        seq <= self.unsure_to || self.leavers.contains(&seq) || self.left_here.contains(&code.token)
    }
}

/// What a poll is answered from (see `Lines::for_poll`).
struct ForPoll {
    view: Option<Arc<LineView>>,
    may_have_left: bool,
    start: bool,
}

/// What the view says of one poll.
pub(crate) enum Answer {
    /// Far from the head: answered here.
    Far(Reservation),
    /// The place is not this code's and owner's.
    Forged,
    /// Only Redis can tell.
    AskRedis,
    /// This instance has no recent view of the sale's line: read it first (`read_line_now`).
    NotRead,
}

impl Lines {
    /// What a poll of `code` (the buyer who arrived `seq`th) is answered from, under one lock
    /// and one reading of the clock (`now`): the sale's view, whether the buyer may have left
    /// since it was read, and whether its reader must be started (the first poll of a sale,
    /// or the first after its reader stopped).
    fn for_poll(&self, code: &ReservationCode, seq: u64, now: Instant) -> ForPoll {
        let mut all = self.0.lock().expect("lines lock");
        let start = !all.contains_key(&code.sale);
        let entry = all.entry(code.sale).or_default();
        entry.used = Some(now);
        ForPoll {
            view: entry.fresh_view_at(now),
            may_have_left: entry.may_have_left(code, seq),
            start,
        }
    }

    /// Whether a recent view of `sale`'s line is here.
    fn has_view(&self, sale: SaleId) -> bool {
        let all = self.0.lock().expect("lines lock");
        all.get(&sale).is_some_and(|e| e.fresh_view().is_some())
    }

    /// The lock of the one read that polls without a view wait for.
    fn first_read(&self, sale: SaleId) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        let mut all = self.0.lock().expect("lines lock");
        all.entry(sale).or_default().first_read.clone()
    }

    /// The leavers the reader of `sale` has seen, or `None` when nobody polled it for
    /// [`FORGET`]: the entry is dropped and the reader stops.
    fn seen_or_forget(&self, sale: SaleId) -> Option<u64> {
        let mut all = self.0.lock().expect("lines lock");
        let entry = all.get(&sale)?;
        if entry.used.is_some_and(|t| t.elapsed() >= FORGET) {
            all.remove(&sale);
            return None;
        }
        Some(entry.seen_left)
    }

    /// `code` left the queue through this instance.
    pub(crate) fn note_left(&self, code: &ReservationCode) {
        let mut all = self.0.lock().expect("lines lock");
        if let Some(entry) = all.get_mut(&code.sale) {
            entry.left_here.insert(code.token);
        }
    }

    fn store(&self, sale: SaleId, read: LineReply) {
        let mut all = self.0.lock().expect("lines lock");
        let Some(entry) = all.get_mut(&sale) else { return };
        match read {
            LineReply::Missing => {
                *entry = LineEntry {
                    used: entry.used,
                    ..LineEntry::default()
                }
            }
            LineReply::Read(f) => {
                let new_epoch = entry.view.as_ref().is_some_and(|v| v.epoch != f.epoch);
                if new_epoch {
                    entry.leavers.clear();
                    entry.unsure_to = 0;
                }
                let expected = if new_epoch || f.left < entry.seen_left {
                    f.left
                } else {
                    f.left - entry.seen_left
                };
                if (f.leavers.len() as u64) < expected {
                    // More left than Redis keeps, since the last read: which ones is unknown.
                    entry.unsure_to = f.seq;
                }
                entry.leavers.extend(&f.leavers);
                entry.seen_left = f.left;
                // Never an older reading over a newer one: the bound must not move back.
                if new_epoch || entry.view.as_ref().is_none_or(|v| v.now <= f.now) {
                    entry.view = Some(Arc::new(LineView::from_reply(&f)));
                }
            }
        }
    }
}

impl TicketSales {
    /// Answers the poll of `code` from this instance's view of its line when the buyer is far
    /// from the head; never calls Redis itself (a new read of the view runs in the background).
    pub(crate) fn answer_from_line(&self, code: &ReservationCode, owner: &Owner, place: &Place) -> Answer {
        if !place.verify(&self.inner.place_key, code, owner) {
            // A secret made up by each process differs between instances: a code from another
            // instance is then only checked by Redis.
            return if self.inner.secret.was_generated() {
                Answer::AskRedis
            } else {
                Answer::Forged
            };
        }
        let now = Instant::now();
        let ForPoll {
            view,
            may_have_left,
            start,
        } = self.inner.lines.for_poll(code, place.seq, now);
        if start {
            self.read_line_while_polled(code.sale);
        }
        let Some(view) = view else { return Answer::NotRead };
        let usable = view.epoch as u32 == place.epoch
            && view.state != SaleState::Closed
            && view.unsold >= i64::from(place.quantity)
            && !may_have_left;
        let Some(position) = view
            .place_bound(place.seq)
            .map(|bound| bound.min(u64::from(place.shown)))
            .filter(|p| usable && *p > view.near_places())
        else {
            return Answer::AskRedis;
        };
        // A second HMAC only when the position shown moves: most far polls give it back as is.
        let place = if position < u64::from(place.shown) {
            place.shown_at(&self.inner.place_key, code, owner, position)
        } else {
            *place
        };
        let age = chrono::TimeDelta::from_std(now.duration_since(view.read_at)).unwrap_or_default();
        Answer::Far(Reservation {
            code: *code,
            state: ReservationState::Waiting,
            quantity: place.quantity,
            position,
            waiting: view.waiting,
            expires_at: None,
            server_now: view.now + age,
            created: false,
            place: Some(place),
            approximate: true,
            prequeue: None,
        })
    }

    /// Reads the line of `sale` now, for the polls that found no view of it: one read, the
    /// others waiting for it, at most one try a [`REFRESH`]. A fresh instance (started,
    /// deployed) gets a whole crowd's polls at once, and each running `status` instead would
    /// send all of them to Redis, each counting the buyers ahead.
    pub(crate) async fn read_line_now(&self, sale: SaleId) {
        let gate = self.inner.lines.first_read(sale);
        let mut tried = gate.lock().await;
        if self.inner.lines.has_view(sale) || tried.is_some_and(|t| t.elapsed() < REFRESH) {
            return;
        }
        *tried = Some(Instant::now());
        self.read_line(sale).await;
    }

    /// One read of the line of `sale` into its view; false when nobody polled the sale for
    /// [`FORGET`] (its view is dropped, nothing is read).
    async fn read_line(&self, sale: SaleId) -> bool {
        let Some(seen) = self.inner.lines.seen_or_forget(sale) else {
            return false;
        };
        match self.call(sale, &Line { seen }).await {
            Ok(read) => self.inner.lines.store(sale, read),
            Err(e) => warn!(%sale, error = %e, "reading the waiting line failed"),
        }
        true
    }

    /// Reads the line of `sale` every [`REFRESH`] in the background, until nobody has polled
    /// it for [`FORGET`].
    fn read_line_while_polled(&self, sale: SaleId) {
        let sales = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if !sales.read_line(sale).await {
                    return;
                }
            }
        });
    }

    /// The place of a reservation that `join` or `status` found waiting at `r.position`.
    pub(crate) fn place_of(&self, r: &Reservation, owner: &Owner, seq: u64, epoch: i64) -> Place {
        Place::sign(
            &self.inner.place_key,
            &r.code,
            owner,
            (seq, epoch, r.quantity),
            r.position,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sale::SaleId;

    fn key() -> PlaceKey {
        PlaceKey::new(&Secret::new("a-long-enough-secret-of-32-characters".into()))
    }

    /// A place signed before a release is still good after it (a rolling deploy): the text
    /// and the HMAC are those of the plain definition, written out here.
    #[test]
    fn a_place_is_the_text_and_hmac_of_its_plain_definition() {
        let code = ReservationCode::new(SaleId::new());
        let owner = Owner::random();
        let (seq, epoch, quantity, shown) = (0x0123_4567_89ab_u64, 0xdead_beef_u32, 6_u8, 0x0076_5432_u32);
        let place = Place::sign(
            &key(),
            &code,
            &owner,
            (seq, i64::from(epoch), quantity),
            u64::from(shown),
        );
        let figures = format!("{seq:012x}{epoch:08x}{quantity:02x}{shown:08x}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"a-long-enough-secret-of-32-characters").unwrap();
        mac.update(b"line-place\0");
        mac.update(code.to_string().as_bytes());
        mac.update(owner.as_str().as_bytes());
        mac.update(&hex::decode(&figures).unwrap());
        let full = mac.finalize().into_bytes();
        let plain = format!("{figures}{}", hex::encode(&full[..MAC_BYTES]));
        assert_eq!(place.to_string(), plain);
    }

    #[test]
    fn a_place_round_trips_and_is_bound_to_its_code_and_owner() {
        let code = ReservationCode::new(SaleId::new());
        let owner = Owner::random();
        let place = Place::sign(&key(), &code, &owner, (123_456, 1_700_000_000_000, 3), 4_321);
        let text = place.to_string();
        assert_eq!(text.len(), PLACE_HEX);
        let read = Place::parse(&text).unwrap();
        assert_eq!(read, place);
        assert_eq!((read.seq, read.quantity, read.shown), (123_456, 3, 4_321));
        assert!(read.verify(&key(), &code, &owner));
        assert!(!read.verify(&key(), &code, &Owner::random()), "another session");
        assert!(
            !read.verify(&key(), &ReservationCode::new(code.sale), &owner),
            "another code"
        );
        let other = PlaceKey::new(&Secret::new("another-secret-of-at-least-32-characters".into()));
        assert!(!read.verify(&other, &code, &owner));
        // Any digit changed breaks the seal: a figure (the position shown among them) or the
        // HMAC.
        for at in [0, 6, 16, 21, 25, 29, 30, 41, 49] {
            let mut bytes = text.clone().into_bytes();
            bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
            let forged = Place::parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
            assert!(!forged.verify(&key(), &code, &owner), "digit {at}");
        }
        // A position beyond 32 bits is shown as the largest it can carry.
        let far = Place::sign(&key(), &code, &owner, (1, 1, 1), u64::MAX);
        assert_eq!(far.shown, u32::MAX);
        for bad in [
            "",
            &text[1..],
            &format!("{text}0"),
            &text[..42],
            &format!("g{}", &text[1..]),
            &format!("+{}", &text[1..]),
        ] {
            assert_eq!(Place::parse(bad), None, "{bad}");
        }
    }

    fn view(waiting: u64, last_seq: u64, block: u64, departed: &[u16]) -> LineView {
        let f = super::super::script::LineFigures {
            state: SaleState::Open,
            capacity: 100,
            sold: 0,
            held: 0,
            waiting,
            seq: last_seq,
            opens_at: Utc::now(),
            epoch: 1,
            now: Utc::now(),
            near: 1,
            block,
            left: 0,
            departed: departed.iter().flat_map(|n| n.to_be_bytes()).collect(),
            leavers: vec![],
        };
        LineView::from_reply(&f)
    }

    #[test]
    fn the_bound_is_exact_without_departures_and_never_below_the_truth() {
        // Ten arrived, nobody left: exact.
        let v = view(10, 10, 4, &[]);
        assert_eq!(v.place_bound(4), Some(4));
        assert_eq!(v.place_bound(11), None);
        assert_eq!(v.place_bound(0), None);
        // Numbers 1..=10 in blocks of 4 ({0..3}, {4..7}, {8..11}); 2 and 9 left.
        let v = view(8, 10, 4, &[1, 0, 1]);
        // Truth for 7: 1, 3, 4, 5, 6, 7 = 6 places.
        assert_eq!(v.place_bound(7), Some(6));
        // Truth for 10: 8 places, all of them; the bound counts 9's departure as maybe after.
        assert_eq!(v.place_bound(10), Some(9));
        // Truth for 3: 2 places (1, 3); the bound also counts 2's departure: 3.
        assert_eq!(v.place_bound(3), Some(3));
    }
}
