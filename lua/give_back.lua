-- give_back.lua: an order cancelled in Postgres (not paid by its deadline, or given up by its
-- buyer) gives its tickets back to the sale, and the next buyers in line are admitted by the
-- same `admit` as everywhere. Called after the cancellation committed, which lowered the
-- sale's `sold` in Postgres too.
--
-- Rust: `GiveBack` in src/sale/script/checkout.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the reservation code of the cancelled order
-- Reply: given: 1 when the tickets went back now, 0 when they had already (or Redis never
-- counted them, or lost the sale: sync then takes `sold` from Postgres, which no longer
-- counts them).
--
-- The order's entry in `done` is set to 0 rather than removed: a sync that still lists the
-- order (its read began before the cancellation) adds it with HSETNX, which must not bring
-- the quantity back; and 0 makes a second call change nothing.

local code = ARGV[1]
local qty = tonumber(redis.call('HGET', K.done, code))
if not qty or qty == 0 then return 0 end
local S = load_sale()
if not S then return 0 end
redis.call('HSET', K.done, code, 0)
S.sold = math.max(0, S.sold - qty)
redis.call('HSET', K.sale, 'sold', S.sold)
local now = now_ms()
admit(S, now)
offer_waitlist(S, now)
return 1
