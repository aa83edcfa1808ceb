-- wl_pending.lua: entries whose state Postgres has not recorded yet (offers made by any
-- script, offers taken or lapsed), for the task that records them and mails the offers.
-- Settles ended offers first, so a lapse nobody polled is seen too.
--
-- Rust: `WaitlistPending` in src/sale/script/waitlist.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] limit   most entries in one reply
-- Reply: { code, state, offer_expires_ms, ... } (offer_expires_ms 0 unless offered)
--    or  { '!missing' }

local S = load_sale()
if not S then return { '!missing' } end
local now = now_ms()
lapse(S, now)
admit(S, now)
offer_waitlist(S, now)
local out = {}
for _, code in ipairs(redis.call('SRANDMEMBER', K.wlpend, tonumber(ARGV[1]))) do
  local e = get_entry(code)
  if e then
    out[#out + 1] = code
    out[#out + 1] = ENTRY_NAMES[e.state]
    out[#out + 1] = e.state == 'o' and e.expiry or 0
  else
    redis.call('SREM', K.wlpend, code)
  end
end
return out
