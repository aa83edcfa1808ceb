-- wl_join.lua: a buyer joins the sale's waitlist. Idempotent per owner: while the owner's
-- entry is waiting or offered it comes back unchanged.
--
-- Rust: `WaitlistJoin` and `WaitlistJoinReply` in src/sale/script/waitlist.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code      a fresh entry code (used only when a new entry is made; the code of its offer)
-- ARGV[2] owner     the session binding
-- ARGV[3] qty       tickets wanted, already checked to be 1..max by the caller
-- ARGV[4] email     the digest of the buyer's email (one place per email)
-- ARGV[5] offer_ms  the sale's offer window, as Postgres has it now
-- ARGV[6] first     the owner's first reservation code (see newest_code in common.lua)
-- Reply: { state, code, qty, position, on_list, offer_expires_ms, now_ms, fits, created (1|0),
--          rank }
--    or  { '!missing' } | { '!closed' }
--    or  { '!not_sold_out' }  tickets can still be had through the queue: join the sale
--    or  { '!email_taken' }   another session holds a place for this email
--
-- Who may join: a buyer whose reservation was sold out (it keeps its arrival sequence, so
-- those in line at the sell-out keep their order), or anybody for whom the sale is sold out
-- (fewer unsold tickets than wanted, or people already on the waitlist); those get a fresh
-- sequence, behind everybody who queued before them.

local code, owner, qty, email, offer_ms, first =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local S = load_sale()
if not S then return { '!missing' } end
if S.state == 'closed' then return { '!closed' } end
local now = now_ms()
redis.call('HSET', K.wlinfo, 'offer_ms', offer_ms)

local function live(entry_code)
  local e = entry_code and get_entry(entry_code)
  if e and (e.state == 'w' or e.state == 'o') then return e end
end

local mine = redis.call('HGET', K.wlidx, 'o:' .. owner)
local e = live(mine)
if e then
  local reply = describe_entry(S, mine, e, now)
  reply[9], reply[10] = 0, e.rank
  return reply
end
if live(redis.call('HGET', K.wlidx, 'e:' .. email)) then return { '!email_taken' } end

local res = newest_code(owner, first)
local r = res and get_res(res)
local told_sold_out = r and r.state == 's'
if not told_sold_out and not waitlist_ahead() and S.capacity - S.sold >= qty then
  return { '!not_sold_out' }
end
local rank = told_sold_out and r.extra or redis.call('HINCRBY', K.sale, 'seq', 1)

e = { qty = qty, owner = owner, rank = rank }
set_entry(code, e, 'w')
redis.call('ZADD', K.wl, rank, code)
redis.call('HSET', K.wlidx, 'o:' .. owner, code, 'e:' .. email, code)
lapse(S, now)
admit(S, now)
offer_waitlist(S, now)
e = get_entry(code)
local reply = describe_entry(S, code, e, now)
reply[9], reply[10] = 1, e.rank
return reply
