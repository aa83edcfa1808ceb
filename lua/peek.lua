-- peek.lua: a sale's live figures, for its public page and the organizer's dashboard. Lapses
-- and admits first, so the figures are true at the moment they are read.
--
-- Rust: `Peek`, whose reply is a `SaleFigures`, in src/sale/script/peek.rs.
-- KEYS: the seven sale keys (see common.lua)
-- ARGV: none
-- Reply: { capacity, sold, held, waiting, state, opens_ms, admitted, lapsed, active, now_ms,
--          window_admitted, window_ms, rate_until_ms }
--        the last three are the admission rate's window (see admission_window in common.lua)
--    or  { '!missing' }

local S = load_sale()
if not S then return { '!missing' } end
local now = now_ms()
lapse(S, now)
admit(S, now)
local extra = redis.call('HMGET', K.sale, 'admitted', 'lapsed')
local window_admitted, window_ms, rate_until_ms = admission_window(now)
return { S.capacity, S.sold, S.held, S.waiting, S.state, S.opens_ms,
         tonumber(extra[1]) or 0, tonumber(extra[2]) or 0, redis.call('ZCARD', K.holds), now,
         window_admitted, window_ms, rate_until_ms }
