-- sync.lua: make the sale's Redis state agree with Postgres, the durable record. Runs at
-- start-up, when a script answered '!missing' (Redis restarted or was flushed), after
-- Postgres refused an order, when an organizer changes the sale, and periodically.
--
-- Rust: `Sync` and `SyncReply` in src/sale/script/sync.rs (the fields below by name).
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] capacity: the most Redis may count as sold or held (the sale's own capacity, less
--         what the event's other sales took of the event's seats)
-- ARGV[2] pg_sold: sold in Postgres   ARGV[3] hold_ms   ARGV[4] grace_ms   ARGV[5] max_active
-- ARGV[6] state (open|paused|closed)                ARGV[7] opens_ms
-- ARGV[8] abandon_ms: a waiting buyer silent this long loses its place at the head
-- ARGV[9] claim_ms: how long a buyer admitted in its absence holds before it shows up
-- ARGV[10] revision of the Postgres row read
-- ARGV[11] expire_at_s: when the keys may go (unix seconds)
-- ARGV[12] read_ms: Redis's clock taken before Postgres was read
-- ARGV[13] since: the `xact_mark` the read was planned from (0: every order was read)
-- ARGV[14] read_xmin: the xmin of the read's snapshot
-- ARGV[15] draw_pending: 1 when Postgres has a pre-queue draw not yet in the queue (joins
--          after the opening wait for it; see prequeue.lua), else 0
-- ARGV[16..] orders: code, quantity, xact (transaction id), ... of the orders of
--            transactions from `since` on
-- Reply: { sold, held } as now kept in Redis
--    or  { '!reread' }  the read cannot be applied (the keys went or were rebuilt from
--                       another read, or a newer sync dropped codes of `recent` it would
--                       need): read `xact_mark` and Postgres again
--
-- Why sold is not simply Postgres's figure: an order may commit after the caller read
-- Postgres; confirm_finish then records it in `done`, and it must stay counted. So sold is
-- Postgres's figure plus the orders of `done` the read did not see. Those are among the codes
-- of `recent` scored `since` or more (an order of a transaction below `since` had ended before
-- an earlier read, whose sync saw it), less the codes the read listed: a look at the orders of
-- the last periods, never at all orders of the sale. Only a rebuild (no `xact_mark`) reads
-- them all. Every order read is settled as sold, whatever Redis thought of its code.
-- A confirming hold without an order whose deadline passed before the read began never
-- committed (the checkout's Postgres work is bounded well inside the grace), so its tickets
-- go back; one whose deadline passed only after the read may have committed unseen, and waits
-- for the next sync. Settings and state come from the newest read: a sync that read an older
-- revision of the row leaves them alone.

local pg_sold, revision = tonumber(ARGV[2]), tonumber(ARGV[10])
local read_ms, since, read_xmin = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])

local mark = tonumber(redis.call('HGET', K.sale, 'xact_mark'))
local floor = tonumber(redis.call('HGET', K.sale, 'xact_floor')) or 0
-- The read must start where this Redis state stands: from its mark or an older one still
-- covered by `recent` (a rebuild reads from 0 while the keys are gone).
if (since > 0 and (not mark or since > mark)) or since < floor then return { '!reread' } end

-- A rebuild starts `recent` at its own xmin: what it read below that no later sync needs.
local rebuild = not mark
local in_pg = {}
for i = 16, #ARGV, 3 do
  local code = ARGV[i]
  in_pg[code] = true
  redis.call('HSETNX', K.done, code, ARGV[i + 1])
  if not rebuild or tonumber(ARGV[i + 2]) >= read_xmin then
    redis.call('ZADD', K.recent, ARGV[i + 2], code)
  end
  settle_done(code)
end

local sold = pg_sold
local unseen = redis.call('ZRANGEBYSCORE', K.recent, since, '+inf')
for _, code in ipairs(unseen) do
  if not in_pg[code] then sold = sold + (tonumber(redis.call('HGET', K.done, code)) or 0) end
end

-- Every order of a transaction below the read's xmin has now been seen; codes scored below
-- the previous mark are dropped, so that a sync planned from that mark still finds its own.
-- After a rebuild, a read planned from before it reads again.
if rebuild or read_xmin > mark then
  local floor_now = rebuild and read_xmin or mark
  redis.call('HSET', K.sale, 'xact_mark', read_xmin, 'xact_floor', floor_now)
  redis.call('ZREMRANGEBYSCORE', K.recent, '-inf', '(' .. floor_now)
end

local stored_revision = tonumber(redis.call('HGET', K.sale, 'revision')) or -1
local fresh = revision >= stored_revision
local state = fresh and ARGV[6] or redis.call('HGET', K.sale, 'state')

-- Holds: recount what they hold; a confirm whose deadline passed before the read gave up (a
-- confirming score below CONFIRMING, written by an older version of confirm_begin, is the
-- deadline itself); a closed sale's buyers at checkout are told it closed.
local held = 0
local holds = redis.call('ZRANGE', K.holds, 0, -1, 'WITHSCORES')
for i = 1, #holds, 2 do
  local code, score = holds[i], tonumber(holds[i + 1])
  local r = get_res(code)
  if not r or (r.state ~= 'a' and r.state ~= 'c') then
    redis.call('ZREM', K.holds, code)
  elseif r.state == 'c' and (score >= CONFIRMING and score - CONFIRMING or score) < read_ms then
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

-- New arrivals go behind everyone still queued, even if the counter itself was lost: the last
-- arrival number is that of the last code in qcodes.
local seq = tonumber(redis.call('HGET', K.sale, 'seq')) or 0
local last = math.floor(redis.call('STRLEN', K.qcodes) / CODE_BYTES) - 1
if last > seq then seq = last end

redis.call('HSET', K.sale, 'sold', sold, 'held', held, 'next_lapse', 0, 'seq', seq,
  'waiting', redis.call('BITCOUNT', K.qbits), 'encoding', HASH_TABLE_MARK)
if fresh then
  redis.call('HSET', K.sale, 'capacity', ARGV[1], 'hold_ms', ARGV[3], 'grace_ms', ARGV[4],
    'max_active', ARGV[5], 'state', ARGV[6], 'opens_ms', ARGV[7], 'abandon_ms', ARGV[8],
    'claim_ms', ARGV[9], 'revision', revision)
end
-- Only ever set here, never cleared: a read older than a pre-queue's first join must not
-- undo its mark, and once draw.lua has put the drawn entries in the queue the mark is 'enqueued'.
if ARGV[15] == '1' and redis.call('HGET', K.sale, 'draw') ~= 'enqueued' then
  redis.call('HSET', K.sale, 'draw', 'pending')
end
-- Nothing of a sale outlives its event by long: the keys go a day after it ends.
for _, key in ipairs(KEYS) do redis.call('EXPIREAT', key, ARGV[11]) end

local S, now = load_sale(), now_ms()
-- The admission rate counts from here when the sale is new to this Redis.
redis.call('HSETNX', K.sale, 'rate_since', now)
lapse(S, now)
admit(S, now)
offer_waitlist(S, now)
return { S.sold, S.held }
