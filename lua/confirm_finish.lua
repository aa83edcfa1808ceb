-- confirm_finish.lua: second half of a checkout, called after the order committed in
-- Postgres. Moves the hold's tickets from held to sold. Idempotent.
--
-- KEYS: the six sale keys (see common.lua)
-- ARGV[1] code    the reservation code
-- Reply: 1 when the tickets moved, 0 when there was nothing to move (already done, or Redis
-- lost the sale: sync then takes sold from Postgres).

local code = ARGV[1]
local S = load_sale()
if not S then return 0 end
local r = get_res(code)
if not r or r.state ~= 'c' then return 0 end

set_res(code, 'd', r.qty, r.owner)
redis.call('ZREM', K.holds, code)
redis.call('SADD', K.done, code)
redis.call('HINCRBY', K.sale, 'held', -r.qty)
redis.call('HINCRBY', K.sale, 'sold', r.qty)
return 1
