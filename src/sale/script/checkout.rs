//! The checkout's scripts around the Postgres transaction: `confirm_begin.lua`,
//! `confirm_finish.lua` and `confirm_abort.lua`; and `give_back.lua`, which undoes a checkout
//! whose order was cancelled unpaid.

use fred::prelude::*;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::{Owner, ReservationCode, ReservationState};

/// `confirm_begin.lua`: marks a live hold confirming.
pub(crate) struct ConfirmBegin<'a> {
    pub code: &'a ReservationCode,
    pub owner: &'a Owner,
}

pub(crate) enum ConfirmBeginReply {
    Confirming {
        qty: u8,
    },
    NotFound,
    Closed,
    /// Not admitted: the state it is in instead.
    NotAdmitted(ReservationState),
}

impl ScriptCall for ConfirmBegin<'_> {
    const SCRIPT: ScriptName = ScriptName::ConfirmBegin;
    type Reply = ConfirmBeginReply;

    fn argv(&self) -> Vec<Value> {
        super::code_and_owner(self.code, self.owner)
    }

    fn decode(mut reply: Reply) -> Result<ConfirmBeginReply, ReplyError> {
        let tag = reply.string("tag")?;
        let decoded = match tag.as_str() {
            "confirming" => {
                reply.string("code")?;
                ConfirmBeginReply::Confirming {
                    qty: reply.int_as("qty")?,
                }
            }
            "!not_found" => ConfirmBeginReply::NotFound,
            "!closed" => ConfirmBeginReply::Closed,
            "!bad_state" => ConfirmBeginReply::NotAdmitted(reply.state("state")?),
            other => return Err(reply.unknown_tag("tag", other)),
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// `confirm_finish.lua`: a committed order's tickets count as sold, once.
pub(crate) struct ConfirmFinish<'a> {
    pub code: &'a ReservationCode,
    /// The order's quantity as Postgres recorded it.
    pub qty: i64,
}

impl ScriptCall for ConfirmFinish<'_> {
    const SCRIPT: ScriptName = ScriptName::ConfirmFinish;
    /// True when counted now, false when counted already (or the sale was missing).
    type Reply = bool;

    fn argv(&self) -> Vec<Value> {
        vec![self.code.member().into(), self.qty.into()]
    }

    fn decode(mut reply: Reply) -> Result<bool, ReplyError> {
        let counted = reply.flag("counted")?;
        reply.finish()?;
        Ok(counted)
    }
}

/// Why an order of a confirming hold was not written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AbortOutcome {
    /// Postgres failed: the hold goes back to the buyer to retry.
    Retry,
    /// Postgres refused the order as beyond capacity.
    SoldOut,
    /// The sale closed.
    Closed,
}

impl AbortOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AbortOutcome::Retry => "retry",
            AbortOutcome::SoldOut => "sold_out",
            AbortOutcome::Closed => "closed",
        }
    }
}

/// `confirm_abort.lua`: the order of a confirming hold was not written.
pub(crate) struct ConfirmAbort<'a> {
    pub code: &'a ReservationCode,
    pub outcome: AbortOutcome,
}

impl ScriptCall for ConfirmAbort<'_> {
    const SCRIPT: ScriptName = ScriptName::ConfirmAbort;
    /// True when the hold changed, false when it was not confirming.
    type Reply = bool;

    fn argv(&self) -> Vec<Value> {
        vec![self.code.member().into(), self.outcome.as_str().into()]
    }

    fn decode(mut reply: Reply) -> Result<bool, ReplyError> {
        let changed = reply.flag("changed")?;
        reply.finish()?;
        Ok(changed)
    }
}

/// `give_back.lua`: the tickets of a cancelled order go back to the sale.
pub(crate) struct GiveBack<'a> {
    pub code: &'a ReservationCode,
}

impl ScriptCall for GiveBack<'_> {
    const SCRIPT: ScriptName = ScriptName::GiveBack;
    /// True when the tickets went back now, false when they had already.
    type Reply = bool;

    fn argv(&self) -> Vec<Value> {
        vec![self.code.member().into()]
    }

    fn decode(mut reply: Reply) -> Result<bool, ReplyError> {
        let given = reply.flag("given")?;
        reply.finish()?;
        Ok(given)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::Problem;
    use super::super::reply::tests::reply;
    use super::*;

    #[test]
    fn confirm_begin_reads_the_quantity_and_the_refusals() {
        let r = ConfirmBegin::decode(reply(
            ScriptName::ConfirmBegin,
            &["confirming".into(), "c".into(), 3.into()],
        ))
        .unwrap();
        assert!(matches!(r, ConfirmBeginReply::Confirming { qty: 3 }));
        let r = ConfirmBegin::decode(reply(
            ScriptName::ConfirmBegin,
            &["!bad_state".into(), "expired".into()],
        ))
        .unwrap();
        assert!(matches!(r, ConfirmBeginReply::NotAdmitted(ReservationState::Expired)));
    }

    #[test]
    fn confirm_begin_refuses_a_short_reply_and_an_unknown_tag() {
        let e = ConfirmBegin::decode(reply(ScriptName::ConfirmBegin, &["confirming".into(), "c".into()]))
            .err()
            .unwrap();
        assert_eq!((e.field, e.problem), ("qty", Problem::Missing));
        let e = ConfirmBegin::decode(reply(ScriptName::ConfirmBegin, &["!bad_state".into(), "lost".into()]))
            .err()
            .unwrap();
        assert_eq!(e.problem, Problem::UnknownTag("lost".into()));
        let e = ConfirmBegin::decode(reply(ScriptName::ConfirmBegin, &["!later".into()]))
            .err()
            .unwrap();
        assert_eq!(e.problem, Problem::UnknownTag("!later".into()));
    }

    #[test]
    fn a_flag_reply_is_one_or_zero() {
        assert!(ConfirmFinish::decode(Reply::new(ScriptName::ConfirmFinish, 1.into())).unwrap());
        assert!(!ConfirmAbort::decode(Reply::new(ScriptName::ConfirmAbort, 0.into())).unwrap());
        assert!(ConfirmFinish::decode(Reply::new(ScriptName::ConfirmFinish, "1".into())).is_err());
        assert!(ConfirmAbort::decode(Reply::new(ScriptName::ConfirmAbort, Value::Null)).is_err());
    }
}
