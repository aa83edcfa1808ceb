-- confirm_begin.lua: first half of a checkout. Checks the hold is still live and marks it
-- confirming, so that it does not lapse while its order is written to Postgres. From then on
-- confirm_finish (the order committed), confirm_abort (it did not) or sync settles it.
--
-- Rust: `ConfirmBegin` and `ConfirmBeginReply` in src/sale/script/checkout.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the reservation code
-- ARGV[2] owner   the session binding
-- Reply: { 'confirming', code, qty }
--    or  { '!missing' } | { '!not_found' } | { '!closed' }
--    or  { '!bad_state', state }   not admitted (expired, waiting, already confirmed, ...)
-- A begin on a hold already confirming (a double submit) answers 'confirming' again; the
-- unique reservation code in Postgres keeps it to one order.

local code, owner = ARGV[1], ARGV[2]
local S = load_sale()
if not S then return { '!missing' } end
local r = get_res(code)
if not r or not owns(r, owner) then return { '!not_found' } end
if S.state == 'closed' then return { '!closed' } end

local now = now_ms()
lapse(S, now)
r = get_res(code)
if r.state == 'c' then
  -- A retry (the first attempt's instance may be gone): the deadline starts again.
  local deadline = (tonumber(redis.call('ZSCORE', K.holds, code)) or CONFIRMING) - CONFIRMING
  redis.call('ZADD', K.holds, CONFIRMING + math.max(deadline, now + S.grace_ms), code)
  return { 'confirming', code, r.qty }
end
if r.state ~= 'a' then return { '!bad_state', state_name(r.state) } end

-- The deadline gives Postgres grace_ms to commit even when the hold is about to lapse. Its
-- score sorts after every ordinary expiry (see CONFIRMING): lapses never wait behind it.
local expiry = tonumber(redis.call('ZSCORE', K.holds, code))
set_res(code, 'c', r.qty, r.owner, expiry)
redis.call('ZADD', K.holds, CONFIRMING + math.max(expiry, now + S.grace_ms), code)
return { 'confirming', code, r.qty }
