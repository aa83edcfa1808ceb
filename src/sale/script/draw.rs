//! The pre-queue's scripts: `prequeue.lua` marks a sale whose joins after the opening must
//! wait for its draw, and `draw.lua` puts the drawn entries into the queue, batch by batch, once.

use fred::prelude::*;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::{Owner, Quantity, ReservationCode};

/// `prequeue.lua`: no arguments; the reply is `ok`.
pub(crate) struct PrequeueMark;

impl ScriptCall for PrequeueMark {
    const SCRIPT: ScriptName = ScriptName::Prequeue;
    type Reply = ();

    fn argv(&self) -> Vec<Value> {
        Vec::new()
    }

    fn decode(mut reply: Reply) -> Result<(), ReplyError> {
        match reply.string("tag")?.as_str() {
            "ok" => {}
            other => return Err(reply.unknown_tag("tag", other)),
        }
        reply.finish()
    }
}

/// One drawn entry, as `draw.lua` queues it.
pub(crate) struct DrawnReservation {
    pub code: ReservationCode,
    pub owner: Owner,
    pub qty: Quantity,
}

/// `draw.lua`: one batch of the drawn entries, in drawn order, from place `from` (0 for the
/// first) of a draw of `total`.
pub(crate) struct DrawEnqueue<'a> {
    pub from: usize,
    pub total: usize,
    pub batch: &'a [DrawnReservation],
}

impl ScriptCall for DrawEnqueue<'_> {
    const SCRIPT: ScriptName = ScriptName::Draw;
    /// The first place not queued yet, from which the next batch starts (`total`: the whole
    /// draw is in the queue). Another instance may have queued past this batch, or Redis may
    /// have lost the sale and the count with it: the next batch starts where it says.
    type Reply = usize;

    fn argv(&self) -> Vec<Value> {
        let mut argv = Vec::with_capacity(2 + self.batch.len() * 3);
        argv.push((self.from as i64).into());
        argv.push((self.total as i64).into());
        for e in self.batch {
            argv.push(e.code.member().into());
            argv.push(e.owner.as_str().into());
            argv.push(i64::from(e.qty.get()).into());
        }
        argv
    }

    fn decode(mut reply: Reply) -> Result<usize, ReplyError> {
        match reply.string("tag")?.as_str() {
            "next" => {}
            other => return Err(reply.unknown_tag("tag", other)),
        }
        let next = reply.int_as("next")?;
        reply.finish()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::tests::reply;
    use super::*;

    #[test]
    fn draw_reads_where_to_carry_on_and_refuses_other_tags() {
        let n = DrawEnqueue::decode(reply(ScriptName::Draw, &["next".into(), 3.into()])).unwrap();
        assert_eq!(n, 3);
        let e = DrawEnqueue::decode(reply(ScriptName::Draw, &["enqueued".into(), 3.into()]))
            .err()
            .unwrap();
        assert_eq!(e.field, "tag");
        assert!(PrequeueMark::decode(reply(ScriptName::Prequeue, &["ok".into()])).is_ok());
        assert!(PrequeueMark::decode(reply(ScriptName::Prequeue, &["ok".into(), 1.into()])).is_err());
    }
}
