//! The buyer's scripts: `join.lua` (and `join_batch.lua`, a crowd's joins together),
//! `status.lua` (the poll) and `release.lua`, which answer with one shared reservation reply.

use chrono::{DateTime, Utc};
use fred::prelude::*;
use uuid::Uuid;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::{Owner, Quantity, Reservation, ReservationCode, ReservationState, SaleId, SessionMade};

/// Where a reservation stands, as join, status and release tell it:
/// `{ state, code, qty, position, waiting, expires_ms, now_ms }`.
#[derive(Debug, PartialEq)]
pub(crate) struct ReservationReply {
    pub state: ReservationState,
    pub token: Uuid,
    pub quantity: u8,
    pub position: u64,
    pub waiting: u64,
    /// 0 in the reply when there is no hold.
    pub expires_at: Option<DateTime<Utc>>,
    pub server_now: DateTime<Utc>,
}

impl ReservationReply {
    /// Reads the fields after the state, which the caller has read as the tag.
    fn read(state: ReservationState, reply: &mut Reply) -> Result<Self, ReplyError> {
        let code = reply.string("code")?;
        let token = Uuid::try_parse(&code).map_err(|_| reply.unknown_tag("code", &code))?;
        let quantity = reply.int_as("qty")?;
        let position = reply.int_as("position")?;
        let waiting = reply.int_as("waiting")?;
        let expires_at = reply.optional_time("expires_ms")?;
        Ok(ReservationReply {
            state,
            token,
            quantity,
            position,
            waiting,
            expires_at,
            server_now: reply.time("now_ms")?,
        })
    }

    pub fn into_reservation(self, sale: SaleId, created: bool) -> Reservation {
        Reservation {
            code: ReservationCode {
                sale,
                token: self.token,
            },
            state: self.state,
            quantity: self.quantity,
            position: self.position,
            waiting: self.waiting,
            expires_at: self.expires_at,
            server_now: self.server_now,
            created,
            place: None,
            approximate: false,
            prequeue: None,
        }
    }
}

/// A code's key in the sale's reservation hash, its token's 16 bytes (`res_key` in
/// lua/common.lua): sent with the code, so that Redis converts nothing.
fn res_key(code: &ReservationCode) -> Value {
    Value::Bytes(code.token.as_bytes().to_vec().into())
}

/// `join.lua`: a buyer asks for tickets.
pub(crate) struct Join<'a> {
    /// A fresh code, used only when the owner makes a new reservation after its first.
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
    pub qty: Quantity,
    /// The code of the owner's first reservation ([`ReservationCode::first_of`]).
    pub first: &'a ReservationCode,
    pub session: SessionMade,
}

pub(crate) enum JoinReply {
    Joined {
        reservation: ReservationReply,
        /// False when the owner's live reservation came back.
        created: bool,
        /// The arrival number of a waiting reservation (0 otherwise) and the sale's epoch in
        /// this Redis: what its place in line is made of (see `sale::line`).
        seq: u64,
        epoch: i64,
    },
    Closed,
    NotOpen {
        opens_at: DateTime<Utc>,
    },
    /// The sale opened, but its pre-queue's drawn entries are not in the queue yet.
    Drawing,
}

impl ScriptCall for Join<'_> {
    const SCRIPT: ScriptName = ScriptName::Join;
    type Reply = JoinReply;

    fn argv(&self) -> Vec<Value> {
        vec![
            self.code.member().into(),
            self.owner.as_str().into(),
            i64::from(self.qty.get()).into(),
            self.first.member().into(),
            self.owner.tag().into(),
            res_key(self.code),
            res_key(self.first),
            match self.session {
                SessionMade::Now => "1",
                SessionMade::Before => "0",
            }
            .into(),
        ]
    }

    fn decode(mut reply: Reply) -> Result<JoinReply, ReplyError> {
        let tag = reply.string("state")?;
        let decoded = match tag.as_str() {
            "!closed" => JoinReply::Closed,
            "!not_open" => JoinReply::NotOpen {
                opens_at: reply.time("opens_ms")?,
            },
            "!drawing" => {
                reply.time("opens_ms")?;
                JoinReply::Drawing
            }
            state => {
                let state = ReservationState::from_script(state).ok_or_else(|| reply.unknown_tag("state", state))?;
                JoinReply::Joined {
                    reservation: ReservationReply::read(state, &mut reply)?,
                    created: reply.flag("created")?,
                    seq: reply.int_as("seq")?,
                    epoch: reply.int("epoch")?,
                }
            }
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// `join_batch.lua`: new owners joining the back of the line together, in the order given
/// (see `sale::join_batch`).
pub(crate) struct JoinBatch<'a> {
    pub joins: &'a [NewJoin],
}

/// One new owner's join in a [`JoinBatch`]: its first code ([`ReservationCode::first_of`]),
/// its owner tag and the tickets it wants.
pub(crate) struct NewJoin {
    pub first: ReservationCode,
    pub owner_tag: String,
    pub qty: Quantity,
}

pub(crate) enum JoinBatchReply {
    /// Queued as arrival numbers `seq`, `seq + 1`, ... in the order given, with `ahead` in line
    /// before the first.
    Joined {
        now: DateTime<Utc>,
        epoch: i64,
        seq: u64,
        ahead: u64,
    },
    /// Not the common case; nothing changed: each joins by [`Join`].
    Slow,
}

impl JoinBatchReply {
    /// What [`Join`] would have answered the `i`-th join (from 0) of the batch, `join`.
    pub fn reply_for(&self, i: usize, join: &NewJoin) -> Option<JoinReply> {
        let JoinBatchReply::Joined { now, epoch, seq, ahead } = *self else {
            return None;
        };
        let i = i as u64;
        Some(JoinReply::Joined {
            reservation: ReservationReply {
                state: ReservationState::Waiting,
                token: join.first.token,
                quantity: join.qty.get(),
                position: ahead + i + 1,
                waiting: ahead + i + 1,
                expires_at: None,
                server_now: now,
            },
            created: true,
            seq: seq + i,
            epoch,
        })
    }
}

impl ScriptCall for JoinBatch<'_> {
    const SCRIPT: ScriptName = ScriptName::JoinBatch;
    type Reply = JoinBatchReply;

    fn argv(&self) -> Vec<Value> {
        let mut argv = Vec::with_capacity(3 * self.joins.len());
        for join in self.joins {
            argv.push(res_key(&join.first));
            argv.push(join.owner_tag.as_str().into());
            argv.push(i64::from(join.qty.get()).into());
        }
        argv
    }

    fn decode(mut reply: Reply) -> Result<JoinBatchReply, ReplyError> {
        let decoded = match reply.string("state")?.as_str() {
            "!slow" => JoinBatchReply::Slow,
            "joined" => JoinBatchReply::Joined {
                now: reply.time("now_ms")?,
                epoch: reply.int("epoch")?,
                seq: reply.int_as("seq")?,
                ahead: reply.int_as("waiting")?,
            },
            tag => return Err(reply.unknown_tag("state", tag)),
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// `status.lua`: the poll.
pub(crate) struct Status<'a> {
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
}

pub(crate) enum StatusReply {
    Found {
        reservation: ReservationReply,
        /// As in [`JoinReply::Joined`].
        seq: u64,
        epoch: i64,
    },
    /// No such code for this owner.
    NotFound,
}

impl ScriptCall for Status<'_> {
    const SCRIPT: ScriptName = ScriptName::Status;
    type Reply = StatusReply;

    fn argv(&self) -> Vec<Value> {
        vec![self.code.member().into(), self.owner.tag().into(), res_key(self.code)]
    }

    fn decode(mut reply: Reply) -> Result<StatusReply, ReplyError> {
        let decoded = if reply.tag() == Some("!not_found") {
            reply.string("state")?;
            StatusReply::NotFound
        } else {
            let state = reply.state("state")?;
            StatusReply::Found {
                reservation: ReservationReply::read(state, &mut reply)?,
                seq: reply.int_as("seq")?,
                epoch: reply.int("epoch")?,
            }
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// `release.lua`: the buyer gives up.
pub(crate) struct Release<'a> {
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
}

pub(crate) enum ReleaseReply {
    /// Released now, or the final state the code already had.
    Done(ReservationReply),
    NotFound,
    /// An order is being written for it.
    Confirming,
}

impl ScriptCall for Release<'_> {
    const SCRIPT: ScriptName = ScriptName::Release;
    type Reply = ReleaseReply;

    fn argv(&self) -> Vec<Value> {
        super::code_and_owner(self.code, self.owner)
    }

    fn decode(mut reply: Reply) -> Result<ReleaseReply, ReplyError> {
        let decoded = match reply.tag() {
            Some("!not_found") => {
                reply.string("state")?;
                ReleaseReply::NotFound
            }
            Some("!bad_state") => {
                reply.string("state")?;
                match reply.state("current_state")? {
                    ReservationState::Confirming => ReleaseReply::Confirming,
                    other => return Err(reply.unknown_tag("current_state", other.as_str())),
                }
            }
            _ => {
                let state = reply.state("state")?;
                ReleaseReply::Done(ReservationReply::read(state, &mut reply)?)
            }
        };
        reply.finish()?;
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::Problem;
    use super::super::reply::tests::reply;
    use super::*;

    const CODE: &str = "0123456789abcdef0123456789abcdef";

    fn fields(state: &str) -> Vec<Value> {
        vec![
            state.into(),
            CODE.into(),
            2.into(),
            5.into(),
            9.into(),
            0.into(),
            1_700_000_000_000i64.into(),
        ]
    }

    fn status_fields(state: &str) -> Vec<Value> {
        let mut f = fields(state);
        f.extend([7.into(), 1_690_000_000_000i64.into()]);
        f
    }

    #[test]
    fn a_poll_reads_every_field_by_name() {
        let StatusReply::Found {
            reservation: r,
            seq,
            epoch,
        } = Status::decode(reply(ScriptName::Status, &status_fields("waiting"))).unwrap()
        else {
            panic!("found")
        };
        assert_eq!((seq, epoch), (7, 1_690_000_000_000));
        assert_eq!(r.state, ReservationState::Waiting);
        assert_eq!((r.quantity, r.position, r.waiting, r.expires_at), (2, 5, 9, None));
        assert_eq!(r.server_now.timestamp_millis(), 1_700_000_000_000);
    }

    #[test]
    fn a_short_poll_reply_is_an_error_naming_the_field() {
        let mut short = status_fields("waiting");
        short.pop();
        let Err(e) = Status::decode(reply(ScriptName::Status, &short)) else {
            panic!("a short reply decoded")
        };
        assert_eq!(
            (e.script, e.field, e.problem),
            (ScriptName::Status, "epoch", Problem::Missing)
        );
    }

    #[test]
    fn a_position_of_the_wrong_type_is_an_error() {
        let mut wrong = status_fields("waiting");
        wrong[3] = "5".into();
        let Err(e) = Status::decode(reply(ScriptName::Status, &wrong)) else {
            panic!("a wrong type decoded")
        };
        assert_eq!(e.field, "position");
        assert!(matches!(e.problem, Problem::WrongType { .. }));
    }

    #[test]
    fn an_unknown_tag_is_an_error() {
        for script in [ScriptName::Status, ScriptName::Join, ScriptName::Release] {
            let r = reply(script, &fields("!teapot"));
            let e = match script {
                ScriptName::Join => Join::decode(r).err(),
                ScriptName::Status => Status::decode(r).err(),
                _ => Release::decode(r).err(),
            }
            .expect("an unknown tag decoded");
            assert_eq!(e.problem, Problem::UnknownTag("!teapot".into()), "{script:?}");
        }
    }

    #[test]
    fn a_batch_of_joins_tells_each_join_what_join_would_have() {
        let owner = Owner::random();
        let sale = SaleId::new();
        let join = NewJoin {
            first: ReservationCode::first_of(sale, &owner),
            owner_tag: owner.tag(),
            qty: Quantity::new(2, 4).unwrap(),
        };
        let joined = JoinBatch::decode(reply(
            ScriptName::JoinBatch,
            &[
                "joined".into(),
                1_700_000_000_000i64.into(),
                7.into(),
                40.into(),
                9.into(),
            ],
        ))
        .unwrap();
        // The third of the batch: two of the batch and the nine before it are ahead.
        let Some(JoinReply::Joined {
            reservation: r,
            created,
            seq,
            epoch,
        }) = joined.reply_for(2, &join)
        else {
            panic!("joined")
        };
        assert_eq!((created, seq, epoch), (true, 42, 7));
        assert_eq!((r.state, r.token), (ReservationState::Waiting, join.first.token));
        assert_eq!((r.quantity, r.position, r.waiting, r.expires_at), (2, 12, 12, None));
        assert_eq!(r.server_now.timestamp_millis(), 1_700_000_000_000);

        let slow = JoinBatch::decode(reply(ScriptName::JoinBatch, &["!slow".into()])).unwrap();
        assert!(slow.reply_for(0, &join).is_none(), "each joins by join.lua");
        let short = JoinBatch::decode(reply(
            ScriptName::JoinBatch,
            &["joined".into(), 1_700_000_000_000i64.into(), 7.into(), 40.into()],
        ));
        assert_eq!(short.err().map(|e| e.field), Some("waiting"));
        let unknown = JoinBatch::decode(reply(ScriptName::JoinBatch, &["!teapot".into()]));
        assert_eq!(
            unknown.err().map(|e| e.problem),
            Some(Problem::UnknownTag("!teapot".into()))
        );
    }

    #[test]
    fn join_reads_created_and_its_own_refusals() {
        let mut joined = fields("waiting");
        joined.extend([1.into(), 42.into(), 1_700_000_000_000i64.into()]);
        let JoinReply::Joined {
            created, seq, epoch, ..
        } = Join::decode(reply(ScriptName::Join, &joined)).unwrap()
        else {
            panic!("joined")
        };
        assert!(created);
        assert_eq!((seq, epoch), (42, 1_700_000_000_000));
        joined.pop();
        assert_eq!(
            Join::decode(reply(ScriptName::Join, &joined)).err().map(|e| e.field),
            Some("epoch")
        );
        let without_created = fields("admitted");
        assert_eq!(
            Join::decode(reply(ScriptName::Join, &without_created))
                .err()
                .map(|e| e.field),
            Some("created")
        );
        let not_open = Join::decode(reply(ScriptName::Join, &["!not_open".into(), 1_000.into()])).unwrap();
        assert!(matches!(not_open, JoinReply::NotOpen { opens_at } if opens_at.timestamp_millis() == 1_000));
        assert!(Join::decode(reply(ScriptName::Join, &["!not_open".into()])).is_err());
    }

    #[test]
    fn release_knows_only_confirming_as_a_bad_state() {
        let r = Release::decode(reply(ScriptName::Release, &["!bad_state".into(), "confirming".into()])).unwrap();
        assert!(matches!(r, ReleaseReply::Confirming));
        assert!(Release::decode(reply(ScriptName::Release, &["!bad_state".into(), "waiting".into()])).is_err());
    }
}
