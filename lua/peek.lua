-- peek.lua: a sale's live figures, for its public page and the organizer's dashboard. Lapses
-- and admits first, so the figures are true at the moment they are read.
--
-- Rust: `Peek`, whose reply is a `SaleFigures`, in src/sale/script/peek.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV: none
-- Reply: { capacity, sold, held, waiting, state, opens_ms, admitted, lapsed, active, now_ms,
--          window_admitted, window_ms, rate_until_ms, joined, left, released, abandoned,
--          sold_out }
--        window_* and rate_until_ms are the admission rate's window (see admission_window in
--        common.lua); the last five are the funnel's counts (see the sale hash in common.lua)
--    or  { '!missing' }

local S = load_sale()
if not S then return { '!missing' } end
local now = now_ms()
lapse(S, now)
admit(S, now)
local extra = redis.call('HMGET', K.sale, 'admitted', 'lapsed', 'joined', 'left', 'released',
  'abandoned', 'sold_out')
local window_admitted, window_ms, rate_until_ms = admission_window(now)
return { S.capacity, S.sold, S.held, S.waiting, S.state, S.opens_ms,
         tonumber(extra[1]) or 0, tonumber(extra[2]) or 0, redis.call('ZCARD', K.holds), now,
         window_admitted, window_ms, rate_until_ms, tonumber(extra[3]) or 0,
         tonumber(extra[4]) or 0, tonumber(extra[5]) or 0, tonumber(extra[6]) or 0,
         tonumber(extra[7]) or 0 }
