-- The reconcile script as it was before reconciles became incremental, kept as the baseline
-- of benches/reconcile.rs: it takes the code and quantity of every order of the sale.
--
-- sync.lua: make the sale's Redis state agree with Postgres, the durable record. Runs at
-- start-up, when a script answered '!missing' (Redis restarted or was flushed), after
-- Postgres refused an order, when an organizer changes the sale, and periodically.
--
-- KEYS: the six sale keys (see common.lua)
-- ARGV[1] capacity: the most Redis may count as sold or held (the sale's own capacity, less
--         what the event's other sales took of the event's seats)
-- ARGV[2] sold in Postgres     ARGV[3] hold_ms      ARGV[4] grace_ms     ARGV[5] max_active
-- ARGV[6] state (open|paused|closed)                ARGV[7] opens_ms
-- ARGV[8] abandon_ms: a waiting buyer silent this long loses its place at the head
-- ARGV[9] claim_ms: how long a buyer admitted in its absence holds before it shows up
-- ARGV[10] revision of the Postgres row read      ARGV[11] when the keys may go (unix s)
-- ARGV[12..] code, quantity, code, quantity, ... of every order of the sale in Postgres
-- Reply: { sold, held } as now kept in Redis.
--
-- Why sold is not simply Postgres's figure: an order may commit after the caller read
-- Postgres; confirm_finish then records it in `done`, and it must stay counted. Every order
-- Postgres has is settled as sold, whatever Redis thought of its code. A confirming hold past
-- its deadline without an order never committed (the checkout's Postgres work is bounded well
-- inside the grace), so its tickets go back. Settings and state come from the newest read:
-- a sync that read an older revision of the row leaves them alone.

local pg_sold, revision = tonumber(ARGV[2]), tonumber(ARGV[10])
local in_pg = {}
for i = 12, #ARGV, 2 do
  local code = ARGV[i]
  in_pg[code] = true
  redis.call('HSETNX', K.done, code, ARGV[i + 1])
  local r = get_res(code)
  if r and r.state ~= 'd' then
    set_res(code, 'd', r.qty, r.owner)
    redis.call('ZREM', K.holds, code)
    redis.call('ZREM', K.queue, code)
  end
end
local now = now_ms()

local sold = pg_sold
local done = redis.call('HGETALL', K.done)
for i = 1, #done, 2 do
  if not in_pg[done[i]] then sold = sold + tonumber(done[i + 1]) end
end

local stored_revision = tonumber(redis.call('HGET', K.sale, 'revision')) or -1
local fresh = revision >= stored_revision
local state = fresh and ARGV[6] or redis.call('HGET', K.sale, 'state')

-- Holds: recount what they hold; a confirm past its deadline gave up; a closed sale's
-- buyers at checkout are told it closed.
local held = 0
local holds = redis.call('ZRANGE', K.holds, 0, -1, 'WITHSCORES')
for i = 1, #holds, 2 do
  local code, deadline = holds[i], tonumber(holds[i + 1])
  local r = get_res(code)
  if not r or (r.state ~= 'a' and r.state ~= 'c') then
    redis.call('ZREM', K.holds, code)
  elseif r.state == 'c' and deadline < now then
    set_res(code, 'x', r.qty, r.owner)
    redis.call('ZREM', K.holds, code)
    redis.call('HINCRBY', K.sale, 'lapsed', 1)
  elseif r.state == 'a' and state == 'closed' then
    set_res(code, 'z', r.qty, r.owner)
    redis.call('ZREM', K.holds, code)
  else
    held = held + r.qty
  end
end

-- New arrivals go behind everyone still queued, even if the counter itself was lost.
local seq = tonumber(redis.call('HGET', K.sale, 'seq')) or 0
local last = redis.call('ZRANGE', K.queue, -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) > seq then seq = tonumber(last[2]) end

redis.call('HSET', K.sale, 'sold', sold, 'held', held, 'next_lapse', 0, 'seq', seq,
  'waiting', redis.call('ZCARD', K.queue))
if fresh then
  redis.call('HSET', K.sale, 'capacity', ARGV[1], 'hold_ms', ARGV[3], 'grace_ms', ARGV[4],
    'max_active', ARGV[5], 'state', ARGV[6], 'opens_ms', ARGV[7], 'abandon_ms', ARGV[8],
    'claim_ms', ARGV[9], 'revision', revision)
end
-- Nothing of a sale outlives its event by long: the keys go a day after it ends.
for _, key in ipairs(KEYS) do redis.call('EXPIREAT', key, ARGV[11]) end

local S = load_sale()
lapse(S, now)
admit(S, now)
return { S.sold, S.held }
