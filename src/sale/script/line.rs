//! `line.lua`: the waiting line as an app instance keeps it (see `sale::line`).

use chrono::{DateTime, Utc};
use fred::prelude::*;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::SaleState;

/// `line.lua`: ARGV `seen`, the leavers this instance has read already.
pub(crate) struct Line {
    pub seen: u64,
}

/// What `line.lua` answers.
#[derive(Debug, PartialEq)]
pub(crate) enum LineReply {
    Read(LineFigures),
    /// Redis has lost the sale.
    Missing,
}

/// The line's figures at one moment of Redis's clock.
#[derive(Debug, PartialEq)]
pub(crate) struct LineFigures {
    pub state: SaleState,
    pub capacity: i64,
    pub sold: i64,
    pub held: i64,
    pub waiting: u64,
    /// The last arrival number given.
    pub seq: u64,
    pub opens_at: DateTime<Utc>,
    pub epoch: i64,
    pub now: DateTime<Utc>,
    /// The first places of the queue, where presence is noted (`NEAR` in common.lua).
    pub near: u64,
    /// Arrival numbers per block of departures (`BLOCK` in common.lua).
    pub block: u64,
    /// Leavers in all (the sale hash's `left`).
    pub left: u64,
    /// The departures per block, an unsigned big-endian 16-bit counter each.
    pub departed: Vec<u8>,
    /// The arrival numbers of the leavers not seen yet (as many as Redis keeps).
    pub leavers: Vec<u64>,
}

impl ScriptCall for Line {
    const SCRIPT: ScriptName = ScriptName::Line;
    type Reply = LineReply;

    fn argv(&self) -> Vec<Value> {
        vec![(self.seen as i64).into()]
    }

    fn decode(mut reply: Reply) -> Result<LineReply, ReplyError> {
        if reply.is_missing() {
            reply.string("state")?;
            reply.finish()?;
            return Ok(LineReply::Missing);
        }
        let state = reply.string("state")?;
        let state = state.parse().map_err(|_| reply.unknown_tag("state", &state))?;
        let figures = LineFigures {
            state,
            capacity: reply.int("capacity")?,
            sold: reply.int("sold")?,
            held: reply.int("held")?,
            waiting: reply.int_as("waiting")?,
            seq: reply.int_as("seq")?,
            opens_at: reply.time("opens_ms")?,
            epoch: reply.int("epoch")?,
            now: reply.time("now_ms")?,
            near: reply.int_as("near")?,
            block: reply.int_as::<u64>("block")?.max(1),
            left: reply.int_as("left")?,
            departed: reply.bytes("departed")?,
            leavers: {
                let text = reply.string("leavers")?;
                text.split_ascii_whitespace()
                    .map(|n| n.parse::<u64>().map_err(|_| reply.unknown_tag("leavers", n)))
                    .collect::<Result<_, _>>()?
            },
        };
        reply.finish()?;
        Ok(LineReply::Read(figures))
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::Problem;
    use super::super::reply::tests::reply;
    use super::*;

    fn fields() -> Vec<Value> {
        vec![
            "open".into(),
            100.into(),
            10.into(),
            4.into(),
            7.into(),
            12.into(),
            1_700_000_000_000i64.into(),
            1_690_000_000_000i64.into(),
            1_700_000_000_500i64.into(),
            1000.into(),
            1024.into(),
            2.into(),
            Value::Bytes(vec![0u8, 3].into()),
            "9 4".into(),
        ]
    }

    #[test]
    fn every_field_is_read_by_name() {
        let LineReply::Read(f) = Line::decode(reply(ScriptName::Line, &fields())).unwrap() else {
            panic!("read")
        };
        assert_eq!(
            (f.state, f.waiting, f.seq, f.near, f.block, f.left),
            (SaleState::Open, 7, 12, 1000, 1024, 2)
        );
        assert_eq!(f.departed, vec![0, 3]);
        assert_eq!(f.leavers, vec![9, 4]);
        let missing = Line::decode(reply(ScriptName::Line, &["!missing".into()])).unwrap();
        assert_eq!(missing, LineReply::Missing);
    }

    #[test]
    fn a_bad_leaver_or_a_short_reply_is_an_error() {
        let mut bad = fields();
        bad[13] = "9 x".into();
        let e = Line::decode(reply(ScriptName::Line, &bad)).unwrap_err();
        assert_eq!((e.field, e.problem), ("leavers", Problem::UnknownTag("x".into())));
        let mut short = fields();
        short.pop();
        assert_eq!(
            Line::decode(reply(ScriptName::Line, &short)).unwrap_err().field,
            "leavers"
        );
    }
}
