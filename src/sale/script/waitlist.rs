//! The waitlist's scripts: `wl_join.lua`, `wl_status.lua` and `wl_leave.lua` (one shared entry
//! reply), `wl_pending.lua` and `wl_recorded.lua` (what Postgres has yet to record), and
//! `wl_restore.lua` (the line put back from Postgres).

use chrono::{DateTime, Utc};
use fred::prelude::*;
use uuid::Uuid;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::waitlist::{WaitlistEntry, WaitlistState};
use crate::sale::{Owner, Quantity, ReservationCode, SaleId};

/// Where an entry stands, as join, status and leave tell it:
/// `{ state, code, qty, position, on_list, offer_expires_ms, now_ms, fits }`.
#[derive(Debug, PartialEq)]
pub(crate) struct EntryReply {
    pub state: WaitlistState,
    pub token: Uuid,
    pub quantity: u8,
    pub position: u64,
    pub on_list: u64,
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub server_now: DateTime<Utc>,
    pub fits: bool,
}

fn waitlist_state(reply: &Reply, field: &'static str, name: &str) -> Result<WaitlistState, ReplyError> {
    WaitlistState::from_script(name).ok_or_else(|| reply.unknown_tag(field, name))
}

fn token(reply: &mut Reply, field: &'static str) -> Result<Uuid, ReplyError> {
    let code = reply.string(field)?;
    Uuid::try_parse(&code).map_err(|_| reply.unknown_tag(field, &code))
}

impl EntryReply {
    /// Reads the fields after the state, which the caller has read as the tag.
    fn read(state: WaitlistState, reply: &mut Reply) -> Result<Self, ReplyError> {
        Ok(EntryReply {
            state,
            token: token(reply, "code")?,
            quantity: reply.int_as("qty")?,
            position: reply.int_as("position")?,
            on_list: reply.int_as("on_list")?,
            offer_expires_at: reply.optional_time("offer_expires_ms")?,
            server_now: reply.time("now_ms")?,
            fits: reply.flag("fits")?,
        })
    }

    pub fn into_entry(self, sale: SaleId, created: bool) -> WaitlistEntry {
        WaitlistEntry {
            code: ReservationCode {
                sale,
                token: self.token,
            },
            state: self.state,
            quantity: self.quantity,
            position: self.position,
            on_list: self.on_list,
            offer_expires_at: self.offer_expires_at,
            server_now: self.server_now,
            fits: self.fits,
            created,
        }
    }
}

/// `wl_join.lua`: a buyer joins the waitlist.
pub(crate) struct WaitlistJoin<'a> {
    /// A fresh code, used only when a new entry is made.
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
    pub qty: Quantity,
    /// The digest of the buyer's email (see `waitlist::email_digest`).
    pub email_digest: &'a str,
    pub offer_ms: i64,
    /// The code of the owner's first reservation ([`ReservationCode::first_of`]): where a
    /// buyer told "sold out" in the queue finds its arrival number.
    pub first: &'a ReservationCode,
}

pub(crate) enum WaitlistJoinReply {
    Joined {
        entry: EntryReply,
        created: bool,
        /// The entry's place in line, for Postgres.
        rank: i64,
    },
    Closed,
    NotSoldOut,
    EmailTaken,
}

impl ScriptCall for WaitlistJoin<'_> {
    const SCRIPT: ScriptName = ScriptName::WaitlistJoin;
    type Reply = WaitlistJoinReply;

    fn argv(&self) -> Vec<Value> {
        vec![
            self.code.member().into(),
            self.owner.as_str().into(),
            i64::from(self.qty.get()).into(),
            self.email_digest.into(),
            self.offer_ms.into(),
            self.first.member().into(),
        ]
    }

    fn decode(mut reply: Reply) -> Result<WaitlistJoinReply, ReplyError> {
        let tag = reply.string("state")?;
        let decoded = match tag.as_str() {
            "!closed" => WaitlistJoinReply::Closed,
            "!not_sold_out" => WaitlistJoinReply::NotSoldOut,
            "!email_taken" => WaitlistJoinReply::EmailTaken,
            name => {
                let state = waitlist_state(&reply, "state", name)?;
                WaitlistJoinReply::Joined {
                    entry: EntryReply::read(state, &mut reply)?,
                    created: reply.flag("created")?,
                    rank: reply.int("rank")?,
                }
            }
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// Reads an entry reply, or `None` for `{ '!not_found' }`.
fn entry_or_not_found(reply: &mut Reply) -> Result<Option<EntryReply>, ReplyError> {
    let tag = reply.string("state")?;
    if tag == "!not_found" {
        return Ok(None);
    }
    let state = waitlist_state(reply, "state", &tag)?;
    EntryReply::read(state, reply).map(Some)
}

/// `wl_status.lua`: the poll of an entry.
pub(crate) struct WaitlistStatus<'a> {
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
}

impl ScriptCall for WaitlistStatus<'_> {
    const SCRIPT: ScriptName = ScriptName::WaitlistStatus;
    /// `None`: no such entry for this owner.
    type Reply = Option<EntryReply>;

    fn argv(&self) -> Vec<Value> {
        super::code_and_owner(self.code, self.owner)
    }

    fn decode(mut reply: Reply) -> Result<Option<EntryReply>, ReplyError> {
        let decoded = entry_or_not_found(&mut reply)?;
        reply.finish()?;
        Ok(decoded)
    }
}

/// `wl_leave.lua`: the buyer leaves the line or turns its offer down.
pub(crate) struct WaitlistLeave<'a> {
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
}

pub(crate) enum WaitlistLeaveReply {
    Done(EntryReply),
    NotFound,
    /// The offer's order is being written.
    Confirming,
}

impl ScriptCall for WaitlistLeave<'_> {
    const SCRIPT: ScriptName = ScriptName::WaitlistLeave;
    type Reply = WaitlistLeaveReply;

    fn argv(&self) -> Vec<Value> {
        super::code_and_owner(self.code, self.owner)
    }

    fn decode(mut reply: Reply) -> Result<WaitlistLeaveReply, ReplyError> {
        let decoded = if reply.tag() == Some("!confirming") {
            reply.string("state")?;
            WaitlistLeaveReply::Confirming
        } else {
            match entry_or_not_found(&mut reply)? {
                Some(entry) => WaitlistLeaveReply::Done(entry),
                None => WaitlistLeaveReply::NotFound,
            }
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// `wl_claim.lua`: the entry moves to the session that opened its signed link.
pub(crate) struct WaitlistClaim<'a> {
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
}

pub(crate) enum WaitlistClaimReply {
    Claimed(EntryReply),
    NotFound,
    /// The session has a live place of its own.
    HasOwn,
}

impl ScriptCall for WaitlistClaim<'_> {
    const SCRIPT: ScriptName = ScriptName::WaitlistClaim;
    type Reply = WaitlistClaimReply;

    fn argv(&self) -> Vec<Value> {
        super::code_and_owner(self.code, self.owner)
    }

    fn decode(mut reply: Reply) -> Result<WaitlistClaimReply, ReplyError> {
        let decoded = if reply.tag() == Some("!has_own") {
            reply.string("state")?;
            WaitlistClaimReply::HasOwn
        } else {
            match entry_or_not_found(&mut reply)? {
                Some(entry) => WaitlistClaimReply::Claimed(entry),
                None => WaitlistClaimReply::NotFound,
            }
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// An entry whose state Postgres has yet to record.
#[derive(Debug, PartialEq)]
pub(crate) struct PendingEntry {
    pub token: Uuid,
    pub state: WaitlistState,
    pub offer_expires_at: Option<DateTime<Utc>>,
}

/// `wl_pending.lua`: up to `limit` entries to record.
pub(crate) struct WaitlistPending {
    pub limit: usize,
}

impl ScriptCall for WaitlistPending {
    const SCRIPT: ScriptName = ScriptName::WaitlistPending;
    type Reply = Vec<PendingEntry>;

    fn argv(&self) -> Vec<Value> {
        vec![(self.limit as i64).into()]
    }

    fn decode(mut reply: Reply) -> Result<Vec<PendingEntry>, ReplyError> {
        let mut pending = Vec::new();
        while reply.tag().is_some() {
            let token = token(&mut reply, "code")?;
            let name = reply.string("state")?;
            pending.push(PendingEntry {
                token,
                state: waitlist_state(&reply, "state", &name)?,
                offer_expires_at: reply.optional_time("offer_expires_ms")?,
            });
        }
        reply.finish()?;
        Ok(pending)
    }
}

/// `wl_recorded.lua`: Postgres has these entries in these states.
pub(crate) struct WaitlistRecorded<'a> {
    pub entries: &'a [(Uuid, WaitlistState)],
}

impl ScriptCall for WaitlistRecorded<'_> {
    const SCRIPT: ScriptName = ScriptName::WaitlistRecorded;
    /// How many entries are no longer pending.
    type Reply = usize;

    fn argv(&self) -> Vec<Value> {
        let mut argv = Vec::with_capacity(self.entries.len() * 2);
        for (token, state) in self.entries {
            argv.push(token.simple().to_string().into());
            argv.push(state.as_str().into());
        }
        argv
    }

    fn decode(mut reply: Reply) -> Result<usize, ReplyError> {
        let cleared = reply.int_as("cleared")?;
        reply.finish()?;
        Ok(cleared)
    }
}

/// One entry Postgres has, as `wl_restore.lua` takes it.
pub(crate) struct RestoredEntry {
    pub token: Uuid,
    pub owner: String,
    pub quantity: i64,
    pub email_digest: String,
    pub rank: i64,
    /// `waiting` or `offered`.
    pub state: WaitlistState,
    pub offer_expires_ms: i64,
}

/// `wl_restore.lua`: the entries Redis lost, and the offer window.
pub(crate) struct WaitlistRestore {
    pub offer_ms: i64,
    pub entries: Vec<RestoredEntry>,
}

impl ScriptCall for WaitlistRestore {
    const SCRIPT: ScriptName = ScriptName::WaitlistRestore;
    /// How many entries were put back; 0 when Redis has lost the sale (its rebuild restores
    /// the line).
    type Reply = usize;

    fn argv(&self) -> Vec<Value> {
        let mut argv = Vec::with_capacity(1 + self.entries.len() * 7);
        argv.push(self.offer_ms.into());
        for e in &self.entries {
            argv.push(e.token.simple().to_string().into());
            argv.push(e.owner.as_str().into());
            argv.push(e.quantity.into());
            argv.push(e.email_digest.as_str().into());
            argv.push(e.rank.into());
            argv.push(e.state.as_str().into());
            argv.push(e.offer_expires_ms.into());
        }
        argv
    }

    fn decode(mut reply: Reply) -> Result<usize, ReplyError> {
        let restored = if reply.is_missing() {
            reply.string("tag")?;
            0
        } else {
            reply.int_as("restored")?
        };
        reply.finish()?;
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::Problem;
    use super::super::reply::tests::reply;
    use super::*;

    fn entry_fields(state: &str) -> Vec<Value> {
        vec![
            state.into(),
            Uuid::new_v4().simple().to_string().into(),
            2.into(),
            3.into(),
            7.into(),
            0.into(),
            1_700_000_000_000i64.into(),
            1.into(),
        ]
    }

    #[test]
    fn an_entry_reply_reads_every_field() {
        let r = WaitlistStatus::decode(reply(ScriptName::WaitlistStatus, &entry_fields("waiting")))
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.state, r.quantity, r.position, r.on_list),
            (WaitlistState::Waiting, 2, 3, 7)
        );
        assert!(r.fits && r.offer_expires_at.is_none());
        let mut joined = entry_fields("offered");
        joined.push(1.into());
        joined.push(12.into());
        let r = WaitlistJoin::decode(reply(ScriptName::WaitlistJoin, &joined)).unwrap();
        assert!(matches!(r, WaitlistJoinReply::Joined { created: true, .. }));
    }

    #[test]
    fn a_short_reply_or_an_unknown_state_is_an_error() {
        let mut short = entry_fields("waiting");
        short.pop();
        let e = WaitlistStatus::decode(reply(ScriptName::WaitlistStatus, &short)).unwrap_err();
        assert_eq!((e.field, e.problem), ("fits", Problem::Missing));
        let e = WaitlistStatus::decode(reply(ScriptName::WaitlistStatus, &entry_fields("dancing"))).unwrap_err();
        assert_eq!(e.problem, Problem::UnknownTag("dancing".into()));
        let mut joined = entry_fields("waiting");
        joined.push(2.into());
        joined.push(12.into());
        assert!(WaitlistJoin::decode(reply(ScriptName::WaitlistJoin, &joined)).is_err());
    }

    #[test]
    fn pending_entries_come_in_threes() {
        let token = Uuid::new_v4();
        let fields: Vec<Value> = vec![
            token.simple().to_string().into(),
            "offered".into(),
            1_700_000_000_000i64.into(),
        ];
        let p = WaitlistPending::decode(reply(ScriptName::WaitlistPending, &fields)).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].token, p[0].state), (token, WaitlistState::Offered));
        let e = WaitlistPending::decode(reply(ScriptName::WaitlistPending, &fields[..2])).unwrap_err();
        assert_eq!((e.field, e.problem), ("offer_expires_ms", Problem::Missing));
    }
}
