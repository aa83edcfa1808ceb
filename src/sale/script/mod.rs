//! The Lua scripts of a sale, one Rust type per script, the way each command of a Redis server
//! is its own struct: the arguments as named fields, turned into ARGV in one place
//! ([`ScriptCall::argv`]), and the reply decoded strictly into a type of its own
//! ([`ScriptCall::decode`]): a reply of the wrong shape is a [`ReplyError`] naming the script
//! and the field, never a zero. Every script takes the keys of its sale (the eight of the
//! queue, the two of the line's departures and the six of the waitlist, [`super::sale_keys`])
//! as KEYS.
//!
//! Each `lua/*.lua` starts with its KEYS, ARGV and reply; the type named there must say the
//! same. The scripts are prefixed with the shared helpers of `lua/common.lua` they use
//! ([`prelude`]), loaded once at start-up, and loaded again on the NOSCRIPT reply of a server
//! that lost them (a restart, `SCRIPT FLUSH`).

mod buying;
mod checkout;
mod draw;
mod line;
mod peek;
mod prelude;
mod reply;
mod returns;
mod sync;
mod touch;
mod waitlist;

use fred::prelude::*;
use fred::types::scripts::Script;

pub(crate) use buying::{
    Join, JoinBatch, JoinBatchReply, JoinReply, NewJoin, Release, ReleaseReply, Status, StatusReply,
};
pub(crate) use checkout::{AbortOutcome, ConfirmAbort, ConfirmBegin, ConfirmBeginReply, ConfirmFinish, GiveBack};
pub(crate) use draw::{DrawEnqueue, DrawnReservation, PrequeueMark};
pub(crate) use line::{Line, LineFigures, LineReply};
pub(crate) use peek::Peek;
pub(crate) use reply::{Reply, ReplyError};
pub(crate) use returns::ReturnTickets;
pub(crate) use sync::{Sync, SyncOrder, SyncRead, SyncReply};
pub(crate) use touch::{Touch, TouchReply};
pub(crate) use waitlist::{
    RestoredEntry, WaitlistClaim, WaitlistClaimReply, WaitlistJoin, WaitlistJoinReply, WaitlistLeave,
    WaitlistLeaveReply, WaitlistPending, WaitlistRecorded, WaitlistRestore, WaitlistStatus,
};

const COMMON: &str = include_str!("../../../lua/common.lua");

/// The registry of the sale scripts: one name each, for loading, EVALSHA and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScriptName {
    Join,
    JoinBatch,
    Status,
    ConfirmBegin,
    ConfirmFinish,
    ConfirmAbort,
    Release,
    SyncRead,
    Sync,
    Peek,
    Touch,
    GiveBack,
    WaitlistJoin,
    WaitlistStatus,
    WaitlistLeave,
    WaitlistPending,
    WaitlistRecorded,
    WaitlistRestore,
    WaitlistClaim,
    Line,
    Prequeue,
    Draw,
    ReturnTickets,
}

impl ScriptName {
    pub const ALL: [ScriptName; 23] = [
        ScriptName::Join,
        ScriptName::JoinBatch,
        ScriptName::Status,
        ScriptName::ConfirmBegin,
        ScriptName::ConfirmFinish,
        ScriptName::ConfirmAbort,
        ScriptName::Release,
        ScriptName::SyncRead,
        ScriptName::Sync,
        ScriptName::Peek,
        ScriptName::Touch,
        ScriptName::GiveBack,
        ScriptName::WaitlistJoin,
        ScriptName::WaitlistStatus,
        ScriptName::WaitlistLeave,
        ScriptName::WaitlistPending,
        ScriptName::WaitlistRecorded,
        ScriptName::WaitlistRestore,
        ScriptName::WaitlistClaim,
        ScriptName::Line,
        ScriptName::Prequeue,
        ScriptName::Draw,
        ScriptName::ReturnTickets,
    ];

    /// The name of the script's file in `lua/`, and its `script` label in the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptName::Join => "join",
            ScriptName::JoinBatch => "join_batch",
            ScriptName::Status => "status",
            ScriptName::ConfirmBegin => "confirm_begin",
            ScriptName::ConfirmFinish => "confirm_finish",
            ScriptName::ConfirmAbort => "confirm_abort",
            ScriptName::Release => "release",
            ScriptName::SyncRead => "sync_read",
            ScriptName::Sync => "sync",
            ScriptName::Peek => "peek",
            ScriptName::Touch => "touch",
            ScriptName::GiveBack => "give_back",
            ScriptName::WaitlistJoin => "wl_join",
            ScriptName::WaitlistStatus => "wl_status",
            ScriptName::WaitlistLeave => "wl_leave",
            ScriptName::WaitlistPending => "wl_pending",
            ScriptName::WaitlistRecorded => "wl_recorded",
            ScriptName::WaitlistRestore => "wl_restore",
            ScriptName::WaitlistClaim => "wl_claim",
            ScriptName::Line => "line",
            ScriptName::Prequeue => "prequeue",
            ScriptName::Draw => "draw",
            ScriptName::ReturnTickets => "return_tickets",
        }
    }

    /// The script as Redis is given it: the helpers of `common.lua` it uses, then its body.
    pub fn text(self) -> String {
        prelude::assemble(COMMON, self.body())
    }

    fn body(self) -> &'static str {
        match self {
            ScriptName::Join => include_str!("../../../lua/join.lua"),
            ScriptName::JoinBatch => include_str!("../../../lua/join_batch.lua"),
            ScriptName::Status => include_str!("../../../lua/status.lua"),
            ScriptName::ConfirmBegin => include_str!("../../../lua/confirm_begin.lua"),
            ScriptName::ConfirmFinish => include_str!("../../../lua/confirm_finish.lua"),
            ScriptName::ConfirmAbort => include_str!("../../../lua/confirm_abort.lua"),
            ScriptName::Release => include_str!("../../../lua/release.lua"),
            ScriptName::SyncRead => include_str!("../../../lua/sync_read.lua"),
            ScriptName::Sync => include_str!("../../../lua/sync.lua"),
            ScriptName::Peek => include_str!("../../../lua/peek.lua"),
            ScriptName::Touch => include_str!("../../../lua/touch.lua"),
            ScriptName::GiveBack => include_str!("../../../lua/give_back.lua"),
            ScriptName::WaitlistJoin => include_str!("../../../lua/wl_join.lua"),
            ScriptName::WaitlistStatus => include_str!("../../../lua/wl_status.lua"),
            ScriptName::WaitlistLeave => include_str!("../../../lua/wl_leave.lua"),
            ScriptName::WaitlistPending => include_str!("../../../lua/wl_pending.lua"),
            ScriptName::WaitlistRecorded => include_str!("../../../lua/wl_recorded.lua"),
            ScriptName::WaitlistRestore => include_str!("../../../lua/wl_restore.lua"),
            ScriptName::WaitlistClaim => include_str!("../../../lua/wl_claim.lua"),
            ScriptName::Line => include_str!("../../../lua/line.lua"),
            ScriptName::Prequeue => include_str!("../../../lua/prequeue.lua"),
            ScriptName::Draw => include_str!("../../../lua/draw.lua"),
            ScriptName::ReturnTickets => include_str!("../../../lua/return_tickets.lua"),
        }
    }
}

/// One call of one script: its arguments, and how its reply reads.
pub(crate) trait ScriptCall {
    const SCRIPT: ScriptName;
    /// What the script answers, read.
    type Reply;

    /// ARGV, in the order the script's header lists them.
    fn argv(&self) -> Vec<Value>;

    /// Reads the whole reply, or says which field is wrong.
    fn decode(reply: Reply) -> Result<Self::Reply, ReplyError>;
}

/// ARGV of the scripts that act on one reservation for its owner (release, confirm_begin, the
/// waitlist's): `code`, `owner`.
fn code_and_owner(code: &crate::sale::ReservationCode, owner: &crate::sale::Owner) -> Vec<Value> {
    vec![code.member().into(), owner.as_str().into()]
}

/// The text of the script whose file in `lua/` is `<file>.lua`, as the service loads it (for
/// benches that call a script outside the service); `None` for a name that is no script.
pub fn script_text(file: &str) -> Option<String> {
    ScriptName::ALL
        .iter()
        .find(|name| name.as_str() == file)
        .map(|name| name.text())
}

/// A script's text as this service would load it, from a `common.lua` and a script body given
/// (another revision's files, for the benches that compare two revisions' scripts).
pub fn assemble_script(common: &str, body: &str) -> String {
    prelude::assemble(common, body)
}

/// The scripts, ready for EVALSHA: each with its SHA-1 over its text ([`ScriptName::text`]).
pub(crate) struct Scripts {
    loaded: Vec<Script>,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            loaded: ScriptName::ALL
                .iter()
                .map(|name| Script::from_lua(name.text()))
                .collect(),
        }
    }

    pub fn get(&self, name: ScriptName) -> &Script {
        &self.loaded[name as usize]
    }

    /// Loads every script on every primary, so the hot path never sees NOSCRIPT.
    pub async fn load(&self, client: &Client) -> Result<(), Error> {
        for script in &self.loaded {
            script.load(client).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_lists_each_script_once_in_its_own_place() {
        let scripts = Scripts::new();
        for (i, name) in ScriptName::ALL.iter().enumerate() {
            assert_eq!(*name as usize, i, "{name:?}");
            assert!(scripts.get(*name).sha1().len() == 40);
            assert!(
                name.body().starts_with(&format!("-- {}.lua:", name.as_str())),
                "{name:?}"
            );
        }
    }
}
