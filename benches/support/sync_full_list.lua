-- The part of the reconcile script that grew with the sale's orders before reconciles became
-- incremental, kept as the baseline of benches/reconcile.rs: it took the code and quantity of
-- every order of the sale, settled each one, and summed every code of `done`. (The rest of
-- the script, settings and holds, cost the same before and after.)
--
-- KEYS: the sale keys (see lua/common.lua)
-- ARGV[1] sold in Postgres     ARGV[2..] code, quantity, ... of every order of the sale
-- Reply: the sold figure it found

local in_pg = {}
for i = 2, #ARGV, 2 do
  local code = ARGV[i]
  in_pg[code] = true
  redis.call('HSETNX', K.done, code, ARGV[i + 1])
  settle_done(code)
end
local sold = tonumber(ARGV[1])
local done = redis.call('HGETALL', K.done)
for i = 1, #done, 2 do
  if not in_pg[done[i]] then sold = sold + tonumber(done[i + 1]) end
end
return sold
