-- line.lua: the waiting line as one app instance keeps it, read a few times a second per live
-- sale, so that a buyer far from the head is answered without a Redis call of its own (see
-- src/sale/line.rs). Lapses and admits first, as any poll would: the line keeps moving even
-- when only buyers far back poll.
--
-- Rust: `Line` and `LineReply` in src/sale/script/line.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] seen: how many leavers (the sale hash's `left`) the instance has read already
-- Reply: { state, capacity, sold, held, waiting, seq, opens_ms, epoch, now_ms, near, block,
--          left, departed, leavers }
--        seq the last arrival number given; epoch see common.lua; near and block the NEAR and
--        BLOCK of common.lua; departed the bytes of KEYS[9]; leavers the arrival numbers of
--        the newest min(left - seen, LEAVERS_KEPT) leavers (all kept ones when seen > left:
--        the sale was rebuilt), newest first, separated by spaces
--    or  { '!missing' }

local seen = tonumber(ARGV[1])
local S = load_sale()
if not S then return { '!missing' } end
local now = now_ms()
lapse(S, now)
admit(S, now)
local v = redis.call('HMGET', K.sale, 'seq', 'left')
local left = tonumber(v[2]) or 0
local fresh = left - seen
if fresh < 0 then fresh = left end
fresh = math.min(fresh, LEAVERS_KEPT)
local leavers = {}
if fresh > 0 then leavers = redis.call('LRANGE', K.leavers, 0, fresh - 1) end
return { S.state, S.capacity, S.sold, S.held, S.waiting, tonumber(v[1]) or 0, S.opens_ms,
         S.epoch, now, NEAR, BLOCK, left, redis.call('GET', K.departed) or '',
         table.concat(leavers, ' ') }
