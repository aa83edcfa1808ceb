-- confirm_abort.lua: the order of a confirming hold was not written.
--
-- Rust: `ConfirmAbort` and `AbortOutcome` in src/sale/script/checkout.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the reservation code
-- ARGV[2] outcome 'retry'    Postgres failed (down, a timeout): the hold goes back to admitted
--                            with its own expiry, so the buyer may retry while it lasts
--                 'sold_out' Postgres refused the order as beyond capacity: the hold ends
--                 'closed'   the sale closed: the hold ends
-- Reply: changed: 1 when the hold changed, 0 when it was not confirming.
-- Should Postgres have committed after all, sync finds the order and counts it as sold.

local code, outcome = ARGV[1], ARGV[2]
local S = load_sale()
if not S then return 0 end
local r = get_res(code)
if not r or r.state ~= 'c' then return 0 end
if outcome == 'retry' then
  set_res(code, 'a', r.qty, r.owner)
  add_hold(S, code, r.extra)
  save_holds(S)
else
  set_res(code, outcome == 'closed' and 'z' or 's', r.qty, r.owner)
  redis.call('ZREM', K.holds, code)
  redis.call('HINCRBY', K.sale, 'held', -r.qty)
end
offer_waitlist(load_sale(), now_ms())
return 1
