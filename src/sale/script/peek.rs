//! `peek.lua`: a sale's live figures.

use fred::prelude::*;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::{AdmissionRate, SaleFigures};

/// `peek.lua`: no arguments.
pub(crate) struct Peek;

impl ScriptCall for Peek {
    const SCRIPT: ScriptName = ScriptName::Peek;
    type Reply = SaleFigures;

    fn argv(&self) -> Vec<Value> {
        Vec::new()
    }

    fn decode(mut reply: Reply) -> Result<SaleFigures, ReplyError> {
        let capacity = reply.int("capacity")?;
        let sold = reply.int("sold")?;
        let held = reply.int("held")?;
        let waiting = reply.int("waiting")?;
        let state = reply.string("state")?;
        let state = state.parse().map_err(|_| reply.unknown_tag("state", &state))?;
        let figures = SaleFigures {
            capacity,
            sold,
            held,
            waiting,
            state,
            opens_at: reply.time("opens_ms")?,
            admitted: reply.int("admitted")?,
            lapsed: reply.int("lapsed")?,
            active: reply.int("active")?,
            server_now: reply.time("now_ms")?,
            admission_rate: AdmissionRate::from_window(
                reply.int("window_admitted")?,
                reply.int("window_ms")?,
                reply.time("rate_until_ms")?,
            ),
            joined: reply.int("joined")?,
            left: reply.int("left")?,
            released: reply.int("released")?,
            abandoned: reply.int("abandoned")?,
            sold_out: reply.int("sold_out")?,
        };
        reply.finish()?;
        Ok(figures)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::Problem;
    use super::super::reply::tests::reply;
    use super::*;

    fn fields() -> Vec<Value> {
        let mut f: Vec<Value> = vec![10.into(), 4.into(), 2.into(), 7.into(), "open".into()];
        f.extend([0, 5, 1, 1, 60_000, 12, 30_000, 70_000, 9, 1, 1, 1, 1].map(Value::from));
        f
    }

    #[test]
    fn peek_reads_the_figures_and_the_admission_rate() {
        let f = Peek::decode(reply(ScriptName::Peek, &fields())).unwrap();
        assert_eq!((f.capacity, f.sold, f.held, f.waiting, f.admitted), (10, 4, 2, 7, 5));
        assert_eq!(f.admission_rate.per_minute, Some(24.0));
        assert_eq!(f.admission_rate.until.timestamp_millis(), 70_000);
        assert_eq!((f.joined, f.left, f.released, f.abandoned, f.sold_out), (9, 1, 1, 1, 1));
    }

    #[test]
    fn peek_refuses_a_short_reply_a_wrong_type_and_an_unknown_state() {
        let mut short = fields();
        short.pop();
        let e = Peek::decode(reply(ScriptName::Peek, &short)).err().unwrap();
        assert_eq!((e.field, e.problem), ("sold_out", Problem::Missing));
        let mut wrong = fields();
        wrong[1] = Value::Null;
        assert_eq!(
            Peek::decode(reply(ScriptName::Peek, &wrong)).err().unwrap().field,
            "sold"
        );
        let mut unknown = fields();
        unknown[4] = "ajar".into();
        let e = Peek::decode(reply(ScriptName::Peek, &unknown)).err().unwrap();
        assert_eq!((e.field, e.problem), ("state", Problem::UnknownTag("ajar".into())));
    }
}
