-- confirm_finish.lua: second half of a checkout, called after the order committed in
-- Postgres: the order's tickets count as sold. Authoritative and idempotent: whatever became
-- of the hold meanwhile (it lapsed during a slow commit, a twin request put it back to
-- admitted, Redis lost the sale), the committed order is counted exactly once.
--
-- Rust: `ConfirmFinish` in src/sale/script/checkout.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the reservation code
-- ARGV[2] qty     the order's quantity as Postgres recorded it
-- Reply: counted: 1 when the tickets were counted now, 0 when they had been already (or Redis lost the
-- sale: the rebuild then counts the order from `done` or from Postgres).

local code, qty = ARGV[1], tonumber(ARGV[2])
if redis.call('HSETNX', K.done, code, qty) == 0 then return 0 end
-- No sync has seen this order in Postgres yet: the next one that does records its transaction.
redis.call('ZADD', K.recent, PENDING, code)
local S = load_sale()
if not S then return 0 end
local r = get_res(code)
if r and (r.state == 'a' or r.state == 'c') and redis.call('ZREM', K.holds, code) == 1 then
  S.held = S.held - r.qty
end
if r then set_res(code, 'd', r.qty, r.owner) end
redis.call('HSET', K.sale, 'held', S.held, 'sold', S.sold + qty)
return 1
