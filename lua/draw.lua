-- draw.lua: one batch of the pre-queue's drawn entries joins the queue, in drawn order, and
-- admission goes on as after any join. The caller sends the draw in batches (one script call
-- for a whole draw of 100,000 entries held Redis for 1.3 s: BENCHMARKS.md), each from the
-- first place not queued yet, which the sale hash's `draw_next` keeps.
--
-- Once per sale, and safe when several instances race: a batch that does not start at
-- `draw_next` (another instance queued it first) changes nothing, and the reply says where
-- to carry on, so each entry is queued once, in drawn order, by whichever call comes first.
-- The sale hash's `draw` stays 'pending' (joins after the opening are refused, to land behind
-- every drawn entry) until the last batch is in; then it becomes 'enqueued', and a later call
-- changes nothing.
--
-- Rust: `DrawEnqueue` in src/sale/script/draw.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] from    the place in drawn order (0 for the first) of this batch's first entry
-- ARGV[2] total   how many entries the draw has
-- ARGV[3..]       the batch's entries in drawn order: code, owner, qty, code, owner, qty, ...
-- Reply: { 'next', n }   the first place not queued yet (n = total: the draw is in the queue)
--    or  { '!missing' }  Redis lost the sale: sync it from Postgres and call again (its
--                        `draw_next` went with it: the caller starts over from 0)
--
-- An entry whose code Redis knows already (queued before Redis lost and rebuilt the sale,
-- and sync settled its order) is left as it is.

local S = load_sale()
if not S then return { '!missing' } end
local from, total = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('HGET', K.sale, 'draw') == 'enqueued' then return { 'next', total } end

local next = tonumber(redis.call('HGET', K.sale, 'draw_next')) or 0
local now = now_ms()
if from == next then
  -- Per entry only what must be (a batch's time is its entries'); the owners and the count
  -- of joins are written once for the batch.
  local owners, queued = {}, 0
  for i = 3, #ARGV, 3 do
    local code, owner, qty = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    if not get_res(code) then
      local r = { qty = qty, owner = owner_tag(owner), seq = enqueue(S, { res_key(code) }) }
      -- The first NEAR are present from now, as a buyer joining near the head is.
      if S.waiting <= NEAR then
        r.extra = math.floor(now / 1000)
        joined_near(r.seq)
      end
      set_waiting(code, r)
      owners[#owners + 1] = owner
      owners[#owners + 1] = code
      queued = queued + 1
    end
  end
  -- In slices: Lua unpacks at most a few thousand values at once.
  for i = 1, #owners, 2000 do
    redis.call('HSET', K.owners, unpack(owners, i, math.min(i + 1999, #owners)))
  end
  if queued > 0 then redis.call('HINCRBY', K.sale, 'joined', queued) end
  next = from + (#ARGV - 2) / 3
  redis.call('HSET', K.sale, 'draw_next', next)
end
if next >= total then
  redis.call('HSET', K.sale, 'draw', 'enqueued')
  redis.call('HDEL', K.sale, 'draw_next')
  next = total
end
-- The head starts buying with the first batch: later batches go behind it.
lapse(S, now)
admit(S, now)
return { 'next', next }
