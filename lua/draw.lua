-- draw.lua: the pre-queue's drawn entries join the queue, in drawn order, then admission
-- starts as after any join. Once per sale: the sale hash's `draw` becomes 'enqueued', and a
-- second call (a retry, or another instance racing to do the same) changes nothing.
--
-- Rust: `DrawEnqueue` in src/sale/script/draw.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1..] entries in drawn order: code, owner, qty, code, owner, qty, ...
-- Reply: { 'enqueued', n }  n entries queued now (0 when it had been done)
--    or  { '!missing' }     Redis lost the sale: sync it from Postgres and call again
--
-- An entry whose code Redis knows already (the draw queued it before Redis lost and rebuilt
-- the sale, and sync settled its order) is left as it is.

local S = load_sale()
if not S then return { '!missing' } end
if redis.call('HGET', K.sale, 'draw') == 'enqueued' then return { 'enqueued', 0 } end

local now = now_ms()
local n = 0
for i = 1, #ARGV, 3 do
  local code, owner, qty = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if not get_res(code) then
    local r = { qty = qty, owner = owner_tag(owner), seq = enqueue(S, code) }
    -- The first NEAR are present from now, as a buyer joining near the head is.
    if S.waiting <= NEAR then
      r.extra = math.floor(now / 1000)
      joined_near(r.seq)
    end
    set_waiting(code, r)
    redis.call('HSET', K.owners, owner, code)
    redis.call('HINCRBY', K.sale, 'joined', 1)
    n = n + 1
  end
end
redis.call('HSET', K.sale, 'draw', 'enqueued')
lapse(S, now)
admit(S, now)
return { 'enqueued', n }
