-- sync_read.lua: the first step of a sync, taken just before Postgres is read: where the last
-- sync left off, and Redis's clock now. A confirming hold whose deadline passed before this
-- moment cannot commit after the read that follows, so sync may give its tickets back.
--
-- Rust: `SyncRead` and `SyncReadReply` in src/sale/script/sync.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV: none
-- Reply: { xact_mark, now_ms }   xact_mark is 0 when every order must be read (a rebuild)

return { tonumber(redis.call('HGET', K.sale, 'xact_mark')) or 0, now_ms() }
