//! `return_tickets.lua`: tickets offered for return, or a return withdrawn, in the live sale.

use fred::prelude::*;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};

/// `return_tickets.lua`: the change Postgres has just recorded.
pub(crate) struct ReturnTickets {
    /// Tickets offered for return now (> 0), or withdrawn (< 0).
    pub delta: i64,
}

impl ScriptCall for ReturnTickets {
    const SCRIPT: ScriptName = ScriptName::ReturnTickets;
    /// True when applied; false when Redis had lost the sale (its rebuild counts the change).
    type Reply = bool;

    fn argv(&self) -> Vec<Value> {
        vec![self.delta.into()]
    }

    fn decode(mut reply: Reply) -> Result<bool, ReplyError> {
        let applied = reply.flag("applied")?;
        reply.finish()?;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::tests::reply;
    use super::*;

    #[test]
    fn the_reply_is_one_flag() {
        assert!(ReturnTickets::decode(reply(ScriptName::ReturnTickets, &[1.into()])).unwrap());
        assert!(!ReturnTickets::decode(reply(ScriptName::ReturnTickets, &[0.into()])).unwrap());
        assert!(ReturnTickets::decode(reply(ScriptName::ReturnTickets, &[1.into(), 2.into()])).is_err());
    }
}
