//! The Lua scripts of a sale, each prefixed with the shared helpers of `lua/common.lua`.
//! They are loaded once at start-up; a server that lost them (a restart, `SCRIPT FLUSH`) gets
//! them again on the NOSCRIPT reply.

use fred::prelude::*;
use fred::types::scripts::Script;

const COMMON: &str = include_str!("../../lua/common.lua");

pub(crate) struct Scripts {
    pub join: Script,
    pub status: Script,
    pub confirm_begin: Script,
    pub confirm_finish: Script,
    pub confirm_abort: Script,
    pub release: Script,
    pub sync_read: Script,
    pub sync: Script,
    pub peek: Script,
    pub touch: Script,
}

fn with_common(body: &str) -> Script {
    Script::from_lua(format!("{COMMON}\n{body}"))
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            join: with_common(include_str!("../../lua/join.lua")),
            status: with_common(include_str!("../../lua/status.lua")),
            confirm_begin: with_common(include_str!("../../lua/confirm_begin.lua")),
            confirm_finish: with_common(include_str!("../../lua/confirm_finish.lua")),
            confirm_abort: with_common(include_str!("../../lua/confirm_abort.lua")),
            release: with_common(include_str!("../../lua/release.lua")),
            sync_read: with_common(include_str!("../../lua/sync_read.lua")),
            sync: with_common(include_str!("../../lua/sync.lua")),
            peek: with_common(include_str!("../../lua/peek.lua")),
            touch: with_common(include_str!("../../lua/touch.lua")),
        }
    }

    fn all(&self) -> [&Script; 10] {
        [
            &self.join,
            &self.status,
            &self.confirm_begin,
            &self.confirm_finish,
            &self.confirm_abort,
            &self.release,
            &self.sync_read,
            &self.sync,
            &self.peek,
            &self.touch,
        ]
    }

    /// The script's name, for metrics: compared by address, as every call passes one of
    /// these nine.
    pub fn name_of(&self, script: &Script) -> &'static str {
        const NAMES: [&str; 10] = [
            "join",
            "status",
            "confirm_begin",
            "confirm_finish",
            "confirm_abort",
            "release",
            "sync_read",
            "sync",
            "peek",
            "touch",
        ];
        self.all()
            .iter()
            .position(|s| std::ptr::eq(*s, script))
            .map_or("other", |i| NAMES[i])
    }

    /// Loads every script on every primary, so the hot path never sees NOSCRIPT.
    pub async fn load(&self, client: &Client) -> Result<(), Error> {
        for script in self.all() {
            script.load(client).await?;
        }
        Ok(())
    }
}
