-- wl_status.lua: the poll of a waitlist entry. Lapses holds whose time is up, admits from the
-- queue, offers what is free down the waitlist, then tells where this entry stands.
--
-- Rust: `WaitlistStatus` in src/sale/script/waitlist.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the entry code
-- ARGV[2] owner   the session binding; an entry of another owner is not found
-- Reply: { state, code, qty, position, on_list, offer_expires_ms, now_ms, fits }
--    or  { '!missing' } | { '!not_found' }

local code, owner = ARGV[1], ARGV[2]
local S = load_sale()
if not S then return { '!missing' } end
local e = get_entry(code)
if not e or e.owner ~= owner then return { '!not_found' } end
local now = now_ms()
lapse(S, now)
admit(S, now)
offer_waitlist(S, now)
return describe_entry(S, code, get_entry(code), now)
