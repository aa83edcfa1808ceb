-- wl_claim.lua: the signed link of an offer mail was opened in another browser: the entry, and
-- its offer's hold, move to that browser's session.
--
-- Rust: `WaitlistClaim` in src/sale/script/waitlist.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the entry code (the caller checked the link's signature)
-- ARGV[2] owner   the session binding of the browser that opened the link
-- Reply: { state, code, qty, position, on_list, offer_expires_ms, now_ms, fits }
--    or  { '!missing' } | { '!not_found' }
--    or  { '!has_own' }  this session has a live place of its own on the waitlist
-- An entry that has ended (taken, lapsed, left) is not moved; its page then says where it is.

local code, owner = ARGV[1], ARGV[2]
local S = load_sale()
if not S then return { '!missing' } end
local e = get_entry(code)
if not e then return { '!not_found' } end
local now = now_ms()
if e.owner ~= owner and (e.state == 'w' or e.state == 'o') then
  local own = redis.call('HGET', K.wlidx, 'o:' .. owner)
  local other = own and own ~= code and get_entry(own)
  if other and (other.state == 'w' or other.state == 'o') then return { '!has_own' } end
  if redis.call('HGET', K.wlidx, 'o:' .. e.owner) == code then
    redis.call('HDEL', K.wlidx, 'o:' .. e.owner)
  end
  redis.call('HSET', K.wlidx, 'o:' .. owner, code)
  local r = get_res(code)
  if r then
    r.owner = owner_tag(owner)
    if r.state == 'w' then set_waiting(code, r) else set_res(code, r.state, r.qty, r.owner, r.extra) end
  end
  e.owner = owner
  set_entry(code, e, e.state)
end
return describe_entry(S, code, e, now)
