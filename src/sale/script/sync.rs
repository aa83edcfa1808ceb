//! The two steps of a sync: `sync_read.lua` before Postgres is read, `sync.lua` after.

use fred::prelude::*;

use super::reply::{Reply, ReplyError};
use super::{ScriptCall, ScriptName};
use crate::sale::SaleState;

/// `sync_read.lua`: no arguments.
pub(crate) struct SyncRead;

pub(crate) struct SyncReadReply {
    /// Orders of transactions from this id on may be unseen; 0: read every order (a rebuild).
    pub xact_mark: i64,
    /// Redis's clock before Postgres is read.
    pub now_ms: i64,
}

impl ScriptCall for SyncRead {
    const SCRIPT: ScriptName = ScriptName::SyncRead;
    type Reply = SyncReadReply;

    fn argv(&self) -> Vec<Value> {
        Vec::new()
    }

    fn decode(mut reply: Reply) -> Result<SyncReadReply, ReplyError> {
        let decoded = SyncReadReply {
            xact_mark: reply.int("xact_mark")?,
            now_ms: reply.int("now_ms")?,
        };
        reply.finish()?;
        Ok(decoded)
    }
}

/// One order Postgres has, as `sync.lua` takes it.
pub(crate) struct SyncOrder {
    /// The reservation code's member name.
    pub code: String,
    pub quantity: i64,
    /// The Postgres transaction that wrote it.
    pub xact: i64,
}

/// `sync.lua`: the sale's settings and orders as Postgres has them.
pub(crate) struct Sync {
    /// The most Redis may count as sold or held (the sale's capacity less what the event's
    /// other sales took of its seats).
    pub capacity: i64,
    /// Sold in Postgres.
    pub pg_sold: i64,
    pub hold_ms: i64,
    pub grace_ms: i64,
    pub max_active: i64,
    pub state: SaleState,
    pub opens_ms: i64,
    pub abandon_ms: i64,
    pub claim_ms: i64,
    /// The revision of the Postgres row read.
    pub revision: i64,
    /// When the keys may go (unix seconds).
    pub expire_at_s: i64,
    /// Redis's clock taken before Postgres was read ([`SyncReadReply::now_ms`]).
    pub read_ms: i64,
    /// The `xact_mark` the read was planned from (0: every order was read).
    pub since: i64,
    /// The xmin of the read's snapshot.
    pub read_xmin: i64,
    /// Postgres has a pre-queue draw whose entries are not queued yet.
    pub draw_pending: bool,
    /// The orders of transactions from `since` on.
    pub orders: Vec<SyncOrder>,
}

pub(crate) enum SyncReply {
    /// What Redis now counts.
    Synced { sold: i64, held: i64 },
    /// The read cannot be applied: read the mark and Postgres again.
    Reread,
}

impl ScriptCall for Sync {
    const SCRIPT: ScriptName = ScriptName::Sync;
    type Reply = SyncReply;

    fn argv(&self) -> Vec<Value> {
        let mut argv: Vec<Value> = vec![
            self.capacity.into(),
            self.pg_sold.into(),
            self.hold_ms.into(),
            self.grace_ms.into(),
            self.max_active.into(),
            self.state.as_str().into(),
            self.opens_ms.into(),
            self.abandon_ms.into(),
            self.claim_ms.into(),
            self.revision.into(),
            self.expire_at_s.into(),
            self.read_ms.into(),
            self.since.into(),
            self.read_xmin.into(),
            i64::from(self.draw_pending).into(),
        ];
        argv.reserve(self.orders.len() * 3);
        for order in &self.orders {
            argv.push(order.code.as_str().into());
            argv.push(order.quantity.into());
            argv.push(order.xact.into());
        }
        argv
    }

    fn decode(mut reply: Reply) -> Result<SyncReply, ReplyError> {
        let decoded = if reply.tag() == Some("!reread") {
            reply.string("tag")?;
            SyncReply::Reread
        } else {
            SyncReply::Synced {
                sold: reply.int("sold")?,
                held: reply.int("held")?,
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

    #[test]
    fn sync_reads_its_counts_or_a_reread() {
        let r = Sync::decode(reply(ScriptName::Sync, &[4.into(), 2.into()])).unwrap();
        assert!(matches!(r, SyncReply::Synced { sold: 4, held: 2 }));
        assert!(matches!(
            Sync::decode(reply(ScriptName::Sync, &["!reread".into()])).unwrap(),
            SyncReply::Reread
        ));
        let e = Sync::decode(reply(ScriptName::Sync, &["!later".into()])).err().unwrap();
        assert_eq!(e.field, "sold");
        let e = Sync::decode(reply(ScriptName::Sync, &[4.into()])).err().unwrap();
        assert_eq!((e.field, e.problem), ("held", Problem::Missing));
    }

    #[test]
    fn sync_read_needs_both_fields() {
        let e = SyncRead::decode(reply(ScriptName::SyncRead, &[7.into()]))
            .err()
            .unwrap();
        assert_eq!((e.script, e.field), (ScriptName::SyncRead, "now_ms"));
    }

    #[test]
    fn the_orders_follow_the_fifteen_settings_in_threes() {
        let sync = Sync {
            capacity: 1,
            pg_sold: 2,
            hold_ms: 3,
            grace_ms: 4,
            max_active: 5,
            state: SaleState::Open,
            opens_ms: 7,
            abandon_ms: 8,
            claim_ms: 9,
            revision: 10,
            expire_at_s: 11,
            read_ms: 12,
            since: 13,
            read_xmin: 14,
            draw_pending: true,
            orders: vec![SyncOrder {
                code: "c".into(),
                quantity: 2,
                xact: 99,
            }],
        };
        let argv = sync.argv();
        assert_eq!(argv.len(), 18);
        assert_eq!(argv[5], Value::from("open"));
        assert_eq!(argv[13], Value::from(14));
        assert_eq!(argv[14], Value::from(1));
        assert_eq!(argv[15..], [Value::from("c"), Value::from(2), Value::from(99)]);
    }
}
