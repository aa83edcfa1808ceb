-- prequeue.lua: a buyer is joining the sale's pre-queue (src/sale/prequeue.rs): until its
-- draw is in the queue, joins after the opening must wait, so that they land behind the
-- drawn entries. Called before the entry is written to Postgres, so the mark is there before
-- any entry can be drawn.
--
-- Rust: `PrequeueMark` in src/sale/script/draw.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV: none
-- Reply: { 'ok' }
--    or  { '!missing' }   Redis lost the sale: sync it from Postgres and call again

if not redis.call('HGET', K.sale, 'capacity') then return { '!missing' } end
if redis.call('HGET', K.sale, 'draw') ~= 'enqueued' then
  redis.call('HSET', K.sale, 'draw', 'pending')
end
return { 'ok' }
