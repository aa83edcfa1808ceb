-- wl_leave.lua: the buyer leaves the waitlist, or turns down its offer: the tickets of an
-- offer go on down the line at once.
--
-- Rust: `WaitlistLeave` in src/sale/script/waitlist.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the entry code
-- ARGV[2] owner   the session binding
-- Reply: { state, code, qty, position, on_list, offer_expires_ms, now_ms, fits } (state 'left',
--        or the final state the entry already had)
--    or  { '!missing' } | { '!not_found' }
--    or  { '!confirming' }  the offer's order is being written

local code, owner = ARGV[1], ARGV[2]
local S = load_sale()
if not S then return { '!missing' } end
local e = get_entry(code)
if not e or e.owner ~= owner then return { '!not_found' } end
local now = now_ms()
if e.state == 'o' then
  local r = get_res(code)
  if r and r.state == 'c' then return { '!confirming' } end
  if r and r.state == 'a' then
    redis.call('ZREM', K.holds, code)
    S.held = S.held - r.qty
    redis.call('HSET', K.sale, 'held', S.held)
    set_res(code, 'l', r.qty, r.owner)
    redis.call('HINCRBY', K.sale, 'released', 1)
  end
  redis.call('ZREM', K.wlout, code)
end
if e.state == 'w' or e.state == 'o' then
  redis.call('ZREM', K.wl, code)
  set_entry(code, e, 'l')
end
lapse(S, now)
admit(S, now)
offer_waitlist(S, now)
return describe_entry(S, code, get_entry(code), now)
