-- join.lua: a buyer asks for tickets. Idempotent per owner: while the owner's newest
-- reservation is live (waiting, admitted, confirming) it is returned unchanged.
--
-- Rust: `Join` and `JoinReply` in src/sale/script/buying.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] code    a fresh reservation code (used only when an owner makes a new reservation
--                 after its first)
-- ARGV[2] owner   the session binding, no spaces
-- ARGV[3] qty     tickets wanted, already checked to be 1..max by the caller
-- ARGV[4] first   the owner's first code, derived from the owner (see newest_code in
--                 common.lua): the code of its first reservation, unless an order or a
--                 reservation already has it (then the owners hash names the newest one)
-- ARGV[5] tag     the owner tag of the session binding (owner_tag in common.lua, computed by
--                 the service)
-- ARGV[6] bytes   code's CODE_BYTES bytes, ARGV[7] first's: their keys in res
-- ARGV[8] new     '1' when the service made the owner's session in this very request: such
--                 an owner has no reservation yet and its first code was never given out, so
--                 the join skips looking (three calls); '0' otherwise
-- Reply: { state, code, qty, position, waiting, expires_ms, now_ms, created (1|0), seq,
--          epoch }   seq: the arrival number of a waiting code (0 otherwise); epoch: when this
--          Redis built the sale (see load_sale in common.lua); both go into the code's place

--    or  { '!missing' }            Redis lost the sale: sync it from Postgres and call again
--    or  { '!closed' }             the sale is closed
--    or  { '!not_open', opens_ms } the sale opens later
--    or  { '!drawing', opens_ms }  the sale opened, but its pre-queue's draw is not in the queue
--                                  yet: try again in a moment, to land behind the drawn
--
-- A new buyer is admitted at once only when nobody waits, the tickets are free and the
-- active-shopper limit allows; a buyer who can never be served is sold out at once;
-- everybody else joins the back of the queue. While anybody is on the sale's waitlist a new
-- buyer is sold out at once (and may join the waitlist behind them).
--
-- A crowd's common case, sessions made in their very requests joining the back of the line,
-- goes through join_batch.lua, several buyers a call; this script is the whole way, for a
-- session that comes back and for the moments that case does not hold (tickets free, a hold
-- due, the waitlist, the opening).

local code, owner, qty, first, tag = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local new_owner = ARGV[8] == '1'
local S = load_sale()
if not S then return { '!missing' } end
if S.state == 'closed' then return { '!closed' } end
local now = now_ms()
if now < S.opens_ms then return { '!not_open', S.opens_ms } end
if S.draw == 'pending' then return { '!drawing', S.opens_ms } end
known_res_key(code, ARGV[6])
known_res_key(first, ARGV[7])

-- The reply for `code`: where it stands, whether this call made it, and what its place in
-- line is made of (a waiting code's arrival number, the sale's epoch).
local function reply_for(code, r, created)
  return describe(S, code, r, now, created and 1 or 0, r.state == 'w' and r.seq or 0, S.epoch)
end

-- The buyer `code` waits at the back of the line; the reply of a reservation made.
local function join_line(r)
  r.state = 'w'
  r.seq = enqueue(S, { res_key(code) }, 'joined', digits(S.joined + 1))
  -- The newest arrival: everybody else waiting is ahead of it (no count of the line).
  r.rank = S.waiting - 1
  -- A buyer who joins near the head is present from now; one far back writes nothing more
  -- until it comes near (see mark_near in common.lua).
  if S.waiting <= NEAR then
    r.extra = math.floor(now / 1000)
    joined_near(r.seq)
  end
  set_waiting(code, r)
  return reply_for(code, r, true)
end

lapse(S, now)
admit(S, now)

local existing = not new_owner and newest_code(owner, first)
if existing then
  local r = get_res(existing)
  if r and (r.state == 'w' or r.state == 'a' or r.state == 'c') then
    r = settle_waiting(S, existing, r)
    touch(S, existing, r, now)
    return reply_for(existing, r, false)
  end
end

-- The first code once only: a code of an order (kept in `done` even when Redis lost the
-- reservation) or of an ended reservation is never given out again.
if not existing and (new_owner or redis.call('HEXISTS', K.done, first) == 0) then
  code = first
else
  redis.call('HSET', K.owners, owner, code)
end

local r = { qty = qty, owner = tag }
if waitlist_ahead() then
  -- Tickets that come back belong to the waitlist first: this buyer may join it.
  r.state = 's'
  redis.call('HINCRBY', K.sale, 'sold_out', 1)
elseif S.state == 'open' and S.waiting == 0
    and S.capacity - S.sold - S.held >= qty and not active_shoppers_full(S) then
  r.state = 'a'
  add_hold(S, code, now + S.hold_ms)
  S.held = S.held + qty
  save_holds(S)
  redis.call('HINCRBY', K.sale, 'admitted', 1)
  count_admissions(now, 1)
elseif S.capacity - S.sold < qty then
  r.state = 's'
  redis.call('HINCRBY', K.sale, 'sold_out', 1)
else
  return join_line(r)
end
set_res(code, r.state, qty, r.owner)
redis.call('HINCRBY', K.sale, 'joined', 1)
return reply_for(code, r, true)
