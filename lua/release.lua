-- release.lua: the buyer gives up, from the queue (leave) or from checkout (release). The
-- tickets of a hold go back at once and the head of the queue is admitted if it now fits.
--
-- Rust: `Release` and `ReleaseReply` in src/sale/script/buying.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the reservation code
-- ARGV[2] owner   the session binding
-- Reply: { state, code, qty, position, waiting, expires_ms, now_ms } (state 'released', or
--        the final state the code already had)
--    or  { '!missing' } | { '!not_found' }
--    or  { '!bad_state', 'confirming' }  an order is being written for it

local code, owner = ARGV[1], ARGV[2]
local S = load_sale()
if not S then return { '!missing' } end
local r = get_res(code)
if not r or not owns(r, owner) then return { '!not_found' } end
if r.state == 'c' then return { '!bad_state', 'confirming' } end

local now = now_ms()
if r.state == 'w' then
  if dequeue(S, r.seq) then note_leaver(r.seq) end
  r.state = 'l'
  redis.call('HINCRBY', K.sale, 'left', 1)
elseif r.state == 'a' then
  redis.call('ZREM', K.holds, code)
  S.held = S.held - r.qty
  redis.call('HINCRBY', K.sale, 'released', 1)
  redis.call('HSET', K.sale, 'held', S.held)
  r.state = 'l'
end
set_res(code, r.state, r.qty, r.owner)
lapse(S, now)
admit(S, now)
offer_waitlist(S, now)
return describe(S, code, r, now)
