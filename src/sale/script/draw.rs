//! The pre-queue's scripts: `prequeue.lua` marks a sale whose joins after the opening must
//! wait for its draw, and `draw.lua` puts the drawn entries into the queue, once.

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

/// `draw.lua`: the drawn entries, in drawn order.
pub(crate) struct DrawEnqueue<'a> {
    pub entries: &'a [DrawnReservation],
}

impl ScriptCall for DrawEnqueue<'_> {
    const SCRIPT: ScriptName = ScriptName::Draw;
    /// How many entries were queued by this call (0 when the draw was queued before).
    type Reply = u64;

    fn argv(&self) -> Vec<Value> {
        let mut argv = Vec::with_capacity(self.entries.len() * 3);
        for e in self.entries {
            argv.push(e.code.member().into());
            argv.push(e.owner.as_str().into());
            argv.push(i64::from(e.qty.get()).into());
        }
        argv
    }

    fn decode(mut reply: Reply) -> Result<u64, ReplyError> {
        match reply.string("tag")?.as_str() {
            "enqueued" => {}
            other => return Err(reply.unknown_tag("tag", other)),
        }
        let n = reply.int_as("queued")?;
        reply.finish()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::tests::reply;
    use super::*;

    #[test]
    fn draw_reads_how_many_it_queued_and_refuses_other_tags() {
        let n = DrawEnqueue::decode(reply(ScriptName::Draw, &["enqueued".into(), 3.into()])).unwrap();
        assert_eq!(n, 3);
        let e = DrawEnqueue::decode(reply(ScriptName::Draw, &["queued".into(), 3.into()]))
            .err()
            .unwrap();
        assert_eq!(e.field, "tag");
        assert!(PrequeueMark::decode(reply(ScriptName::Prequeue, &["ok".into()])).is_ok());
        assert!(PrequeueMark::decode(reply(ScriptName::Prequeue, &["ok".into(), 1.into()])).is_err());
    }
}
