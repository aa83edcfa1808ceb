-- sync.lua: make the sale's Redis state agree with Postgres, the durable record. Runs at
-- start-up, when a script answered '!missing' (Redis restarted or was flushed), after
-- Postgres refused an order, when an organizer changes the sale, and periodically.
--
-- KEYS: the six sale keys (see common.lua)
-- ARGV[1] capacity     ARGV[2] sold in Postgres     ARGV[3] hold_ms    ARGV[4] grace_ms
-- ARGV[5] max_active   ARGV[6] state (open|paused|closed)              ARGV[7] opens_ms
-- ARGV[8] abandon_ms: a waiting buyer silent this long loses its place at the head
-- ARGV[9] claim_ms: how long a buyer admitted in its absence holds before it shows up
-- ARGV[10..] the reservation codes of every order of the sale in Postgres
-- Reply: { sold, held } as now kept in Redis.
--
-- Why sold is not simply Postgres's figure: an order may commit after the caller read
-- Postgres; its confirm_finish then counts it in Redis (the `done` set) and it must stay
-- counted. Every code Postgres has an order for is settled as sold, whatever Redis thought
-- of it. A confirming hold past its deadline without an order never committed (Postgres's
-- statement timeout is shorter than the grace), so its tickets go back.

local pg_sold = tonumber(ARGV[2])
local in_pg = {}
for i = 10, #ARGV do
  local code = ARGV[i]
  in_pg[code] = true
  local r = get_res(code)
  if r and r.state ~= 'd' then
    set_res(code, 'd', r.qty, r.owner)
    redis.call('ZREM', K.holds, code)
    redis.call('ZREM', K.queue, code)
  end
end
local now = now_ms()

local sold = pg_sold
for _, code in ipairs(redis.call('SMEMBERS', K.done)) do
  if in_pg[code] then
    redis.call('SREM', K.done, code)
  else
    local r = get_res(code)
    if r then sold = sold + r.qty end
  end
end

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
  else
    held = held + r.qty
  end
end

redis.call('HSET', K.sale, 'capacity', ARGV[1], 'sold', sold, 'held', held,
  'hold_ms', ARGV[3], 'grace_ms', ARGV[4], 'max_active', ARGV[5], 'state', ARGV[6],
  'opens_ms', ARGV[7], 'next_lapse', 0, 'abandon_ms', ARGV[8], 'claim_ms', ARGV[9],
  'waiting', redis.call('ZCARD', K.queue))
redis.call('HSETNX', K.sale, 'seq', 0)

local S = load_sale()
lapse(S, now)
admit(S, now)
return { S.sold, S.held }
