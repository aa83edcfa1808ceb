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

local code, owner, qty, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local S = load_sale()
if not S then return { '!missing' } end
if S.state == 'closed' then return { '!closed' } end
local now = now_ms()
if now < S.opens_ms then return { '!not_open', S.opens_ms } end
if S.draw == 'pending' then return { '!drawing', S.opens_ms } end

lapse(S, now)
admit(S, now)

local existing = newest_code(owner, first)
if existing then
  local r = get_res(existing)
  if r and (r.state == 'w' or r.state == 'a' or r.state == 'c') then
    r = settle_waiting(S, existing, r)
    touch(S, existing, r, now)
    local reply = describe(S, existing, r, now)
    reply[8] = 0
    reply[9] = r.state == 'w' and r.seq or 0
    reply[10] = S.epoch
    return reply
  end
end

-- The first code once only: a code of an order (kept in `done` even when Redis lost the
-- reservation) or of an ended reservation is never given out again.
if not existing and redis.call('HEXISTS', K.done, first) == 0 then
  code = first
else
  redis.call('HSET', K.owners, owner, code)
end

local r = { qty = qty, owner = owner_tag(owner) }
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
  r.state = 'w'
  r.seq = enqueue(S, code)
  -- The newest arrival: everybody else waiting is ahead of it (no count of the line).
  r.rank = S.waiting - 1
end
if r.state == 'w' then
  -- A buyer who joins near the head is present from now; one far back writes nothing more
  -- until it comes near (see mark_near in common.lua).
  if S.waiting <= NEAR then
    r.extra = math.floor(now / 1000)
    joined_near(r.seq)
  end
  set_waiting(code, r)
else
  set_res(code, r.state, qty, r.owner)
end
redis.call('HINCRBY', K.sale, 'joined', 1)

local reply = describe(S, code, r, now)
reply[8] = 1
reply[9] = r.seq or 0
reply[10] = S.epoch
return reply
