-- status.lua: the poll of a buyer. Lapses holds whose time is up, admits from the head of
-- the queue while the head fits, offers what is left to the waitlist, notes that this buyer is still here, then tells this code's
-- state.
--
-- Rust: `Status` and `StatusReply` in src/sale/script/buying.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the reservation code
-- ARGV[2] owner   the session binding; a code of another owner is not found
-- Reply: { state, code, qty, position, waiting, expires_ms, now_ms, seq, epoch }
--        seq and epoch as join's: what a waiting code's place in line is made of
--    or  { '!missing' }    Redis lost the sale: sync it from Postgres and call again
--    or  { '!not_found' }  no such code for this owner

local code, owner = ARGV[1], ARGV[2]
local S = load_sale()
if not S then return { '!missing' } end
local r = get_res(code)
if not r or r.owner ~= owner then return { '!not_found' } end

local now = now_ms()
-- Here before anything else: a head that polls is present, even after a long silence.
if r.state == 'w' then touch(S, code, r, now) end
local lapsed = lapse(S, now)
if admit(S, now) or lapsed then r = get_res(code) end
offer_waitlist(S, now)
r = settle_waiting(S, code, r)
touch(S, code, r, now)
local reply = describe(S, code, r, now)
reply[8] = r.state == 'w' and tonumber(redis.call('ZSCORE', K.queue, code)) or 0
reply[9] = epoch()
return reply
