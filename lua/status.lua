-- status.lua: the poll of a buyer. Lapses holds whose time is up, admits from the head of
-- the queue while the head fits, offers what is left to the waitlist, notes that this buyer
-- is still here, then tells this code's state. Near the head of a big queue this is the one
-- poll that reaches Redis, so its common case is kept short: a buyer waiting while no hold is
-- due to lapse, no ticket is free and the sale goes on makes four calls (ten of the sale's
-- figures, the reservation with its arrival number, TIME and its rank, a count of the
-- queue's bits from the head to it) and defines only the helpers of that case; everything
-- else is the slow path below (src/sale/script/prelude.rs).
--
-- Rust: `Status` and `StatusReply` in src/sale/script/buying.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    the reservation code
-- ARGV[2] tag     the owner tag of the session binding (owner_tag in common.lua, computed by
--                 the service): a code of another owner is not found
-- ARGV[3] bytes   the code's CODE_BYTES bytes (its key in res)
-- Reply: { state, code, qty, position, waiting, expires_ms, now_ms, seq, epoch }
--        seq and epoch as join's: what a waiting code's place in line is made of
--    or  { '!missing' }    Redis lost the sale: sync it from Postgres and call again
--    or  { '!not_found' }  no such code for this owner

local code, tag = ARGV[1], ARGV[2]
local S = load_sale('poll') -- the ten figures the common case decides on
if not S then return { '!missing' } end
known_res_key(code, ARGV[3])
local r = get_res(code)
if not r or r.owner ~= tag then return { '!not_found' } end

local now = now_ms()
-- Here before anything else: a head that polls is present, even after a long silence.
if r.state == 'w' then
  touch(S, code, r, now)
  if now < S.next_lapse and not may_admit(S, now) and not final_state(S, r) then
    -- Nothing to lapse, admit, offer or settle: what the slow path would find too.
    return describe(S, code, r, now, r.seq, S.epoch)
  end
end
-- slow path: the helpers only this part uses are defined when it runs
S = load_sale() -- all the sale's figures
local lapsed = lapse(S, now)
local before = S.waiting
local admitted = admit(S, now)
-- Read again when the head moved (admitted, sold out or gone): this code may have been it,
-- and its rank noted by touch is stale.
if admitted or lapsed or S.waiting ~= before then r = get_res(code) end
-- The poll of a buyer still waiting skips the waitlist unless this call freed or moved
-- something: while anybody waits in the queue nothing is offered, and an offer that ended
-- otherwise was settled by the script that ended it (every one calls offer_waitlist).
if lapsed or admitted or r.state ~= 'w' then offer_waitlist(S, now) end
r = settle_waiting(S, code, r)
touch(S, code, r, now)
return describe(S, code, r, now, r.state == 'w' and r.seq or 0, S.epoch)
