//! `touch.lua`: waiting buyers whose polls were refused are still here.

use fred::prelude::*;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::{Owner, ReservationCode};

/// `touch.lua`: pairs of a code and the owner it must belong to.
pub(crate) struct Touch<'a> {
    pub present: Vec<(&'a ReservationCode, &'a Owner)>,
}

pub(crate) enum TouchReply {
    /// How many waiting buyers were noted.
    Noted(usize),
    /// Redis has lost the sale; nobody waits in it.
    Missing,
}

impl ScriptCall for Touch<'_> {
    const SCRIPT: ScriptName = ScriptName::Touch;
    type Reply = TouchReply;

    fn argv(&self) -> Vec<Value> {
        let mut argv = Vec::with_capacity(self.present.len() * 2);
        for (code, owner) in &self.present {
            argv.push(Value::from(code.member()));
            argv.push(Value::from(owner.as_str()));
        }
        argv
    }

    fn decode(mut reply: Reply) -> Result<TouchReply, ReplyError> {
        let decoded = if reply.is_missing() {
            reply.string("tag")?;
            TouchReply::Missing
        } else {
            TouchReply::Noted(reply.int_as("noted")?)
        };
        reply.finish()?;
        Ok(decoded)
    }
}
