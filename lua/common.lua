-- common.lua: helpers shared by every sale script. The service prepends to each script the
-- definitions of this file the script uses, directly or through another (the rest become empty
-- lines: src/sale/script/prelude.rs), so each script is still one EVALSHA that defines no more
-- than it needs on every call; a script with a slow path (after its line `-- slow path: ...`)
-- gets the definitions only that path uses at the start of it, made only when it runs. A
-- definition starts with `local` at the start of a line and runs to the next line that starts
-- with `local` or `--`.
--
-- Every script of a sale is called with the same ten keys, all inside the sale's hash tag
-- `{sale id}` so that one script touches one slot (Redis Cluster):
--   KEYS[1] sale    hash   capacity, sold, held, hold_ms, grace_ms, max_active, state,
--                          opens_ms, seq (arrival counter), admitted, lapsed, next_lapse
--                          (no hold expires before it: most polls skip looking at holds),
--                          abandon_ms, claim_ms, abandoned, joined, left, released,
--                          sold_out (the funnel's counts: reservations made, left the
--                          queue, given back at checkout, told sold out while queued or on
--                          joining), waiting (the bits set in qbits, kept here so that a
--                          poll need not count), encoding (HASH_TABLE_MARK), revision (of
--                          the Postgres row the settings came from: an older sync does not
--                          undo a newer one),
--                          rate_since and rate:0 .. rate:6 (the admission rate, see below),
--                          draw (absent: no pre-queue; 'pending': the pre-queue's drawn
--                          entries are not queued yet, so joins after the opening wait;
--                          'enqueued': they are, see draw.lua), draw_next (while 'pending':
--                          the first drawn place draw.lua has not queued yet), head (no arrival number
--                          below it is queued: admission looks for the head from there) and
--                          near (the buyers queued before this arrival number have come into
--                          the first NEAR places, see mark_near)
--   KEYS[2] qbits   string the queue, by arrival number: bit `seq` is 1 while the buyer that
--                          arrived as `seq` waits in it (position = BITCOUNT of the bits from
--                          head to seq - 1, plus one)
--   KEYS[3] qcodes  string the code of every arrival, CODE_BYTES raw bytes at offset
--                          seq * CODE_BYTES, so that admission finds the head's code; written
--                          once per arrival, never cleared (at most 33 million arrivals a
--                          sale: Redis's 512 MB strings)
--   KEYS[4] holds   zset   admitted and confirming codes, score = expiry in ms (Redis clock);
--                          for a confirming code CONFIRMING + the deadline of its Postgres write
--   KEYS[5] res     hash   code (its 16 bytes, see res_key) ->
--                          "<state> <qty> <owner tag> [<extra>]", or for a waiting code
--                          "w <qty> <owner tag> <seq> [<last poll>]"
--                          state: w waiting, a admitted, c confirming, d done (sold),
--                                 s sold out, x expired, l left/released, z closed,
--                                 g gone (stopped polling while waiting)
--                          owner tag: see owner_tag
--                          extra: w the last poll in seconds; a present while unclaimed
--                                 (admitted in the buyer's absence); c the hold's expiry;
--                                 s the arrival number it had in the queue
--   KEYS[6] owners  hash   owner -> the owner's newest code (join is idempotent per owner),
--                          only for owners who joined more than once: an owner's first code
--                          is derived from the owner (see newest_code), so a buyer who joins
--                          once costs this hash nothing
--   KEYS[7] done    hash   code -> quantity of every order known to be committed, whether
--                          confirm_finish or sync learnt it first; never shrinks while the
--                          sale lives, so a sync working from an older read of Postgres still
--                          counts the orders that committed after that read; 0 for an order
--                          cancelled unpaid (give_back), whose tickets count no more
--   KEYS[8] recent  zset   the codes of `done` a sync may not have seen in Postgres, score = the
--                          id of the Postgres transaction that wrote the order (PENDING while
--                          no sync has seen it yet); sync drops those below `xact_floor` (in
--                          the sale hash), so its size follows the orders of the last reconcile
--                          periods, not all orders of the sale. The sale hash also keeps
--                          `xact_mark`: every order of a transaction below it has been seen
--   KEYS[9] departed string the departures from the queue (admitted, left, sold out, gone,
--                          settled) per block of BLOCK arrival numbers: an unsigned 16-bit
--                          counter per block (BITFIELD u16 #block, block = seq // BLOCK), so
--                          that an app instance can bound a buyer's place from its arrival
--                          number alone (src/sale/line.rs)
--   KEYS[10] leavers list  the arrival numbers of the last LEAVERS_KEPT buyers who left the
--                          queue themselves, newest first; the sale hash's `left` counts them
--                          all, so an instance reading it knows which ones it has not seen
--
-- A waiting buyer thus costs Redis one entry of `res` (its key and its record each fit the
-- 32-byte allocation of Redis's shortest strings), CODE_BYTES of qcodes and one bit: about
-- 133 B (benches/join_memory.sh).
--
-- and the six keys of the sale's waitlist (see offer_waitlist below; src/sale/waitlist.rs):
--   KEYS[11] wl      zset   entries waiting, score = rank (the arrival sequence, `seq`)
--   KEYS[12] wle     hash   entry code -> "<state> <qty> <owner> <rank> [<offer expiry ms>]"
--                          state: w waiting, o offered, t taken, x lapsed, l left
--   KEYS[13] wlidx   hash   'o:<owner>' and 'e:<email digest>' -> the entry code
--   KEYS[14] wlout   zset   offered entries, score = the offer's expiry
--   KEYS[15] wlpend  set    entries whose state Postgres has not recorded yet
--   KEYS[16] wlinfo  hash   offer_ms (the sale's offer window, from Postgres)
--
-- Invariant kept by every script: 0 <= sold + held <= capacity, where held is the sum of the
-- quantities of the codes in `holds`. The clock is Redis's TIME, never the caller's.

local K = { sale = KEYS[1], qbits = KEYS[2], qcodes = KEYS[3], holds = KEYS[4], res = KEYS[5],
            owners = KEYS[6], done = KEYS[7], recent = KEYS[8], departed = KEYS[9],
            leavers = KEYS[10], wl = KEYS[11], wle = KEYS[12], wlidx = KEYS[13],
            wlout = KEYS[14], wlpend = KEYS[15], wlinfo = KEYS[16] }

-- Most admissions or lapses one call performs; the next call carries on.
local BATCH = 256

-- Added to a confirming hold's deadline for its score in `holds`: a confirming hold never
-- lapses by time (sync settles it), so it must sort after every ordinary expiry, or many
-- stuck ones (an instance that crashed at checkout) would fill every batch of due holds and
-- keep ordinary holds from lapsing. About 3,000 years of milliseconds; scores stay exact.
local CONFIRMING = 1e14

-- The waiting line as app instances see it without asking Redis per buyer (src/sale/line.rs):
-- arrival numbers (`seq`, a queued code's bit in qbits) are grouped in blocks of BLOCK for the
-- departure counts; the first NEAR places of the queue are "near the head": only there is a
-- buyer's presence noted and its poll answered by `status`. A buyer far back writes nothing.
local BLOCK = 1024
local NEAR = 1000
local LEAVERS_KEPT = 4096

-- Bytes of a code in qcodes and in the keys of res: the 32 hex digits of its token, as bytes.
local CODE_BYTES = 16

-- The score in `recent` of an order Redis learnt of before any sync saw it in Postgres.
local PENDING = 2^52

-- The sale hash's field `encoding` (written by sync): a value longer than Redis's limit for
-- its compact encoding of small hashes (hash-max-listpack-value, 64 bytes by default), so
-- that Redis keeps the sale hash as a hash table, also after a restart. Every script reads
-- a dozen of its forty-odd fields at once (load_sale), and in the compact encoding each read
-- walks the fields: about 1 µs more a status call (BENCHMARKS.md).
local HASH_TABLE_MARK = 'longer than 64 bytes, so that Redis keeps this hash as a hash table (lua/common.lua)'

-- The admission rate (src/sale/admission.rs). Admissions are counted in buckets of
-- RATE_BUCKET_MS of Redis's clock, in a ring of RATE_WINDOW + 1 fields of the sale hash:
-- `rate:<bucket mod 7>` = "<bucket> <count>". peek reads the RATE_WINDOW whole buckets before
-- the current one (a minute), leaving out those before `rate_since` (when sync built the
-- sale: the ring knows nothing older). Only the admitting branches write it.
local RATE_BUCKET_MS = 10000
local RATE_WINDOW = 6
local RATE_FIELDS = { 'rate:0', 'rate:1', 'rate:2', 'rate:3', 'rate:4', 'rate:5', 'rate:6' }

-- A whole number as the text Redis is given: Redis turns a number argument into text with
-- %.17g and Lua's `..` with %.14g, each twice the cost of %d (BENCHMARKS.md); the hot calls
-- format their numbers here.
local function digits(n)
  return string.format('%d', n)
end

local function now_ms()
  local t = redis.call('TIME') -- two strings of digits, which arithmetic converts
  return t[1] * 1000 + math.floor(t[2] / 1000)
end

-- The sale's figures, or nil when Redis has lost the sale (the caller syncs from Postgres).
-- epoch: when this Redis built the sale (sync's `rate_since`, Redis's clock in ms): a code's
-- place carries it, so that a place given out before Redis lost the sale is not taken for
-- one of the rebuilt queue.
-- `part` 'poll': only the first ten, those the poll of a waiting buyer decides on while
-- nothing is due (status's common case); the last seven are then nil. Reading and converting
-- all seventeen was a tenth of that poll's time (BENCHMARKS.md); its slow path loads them all.
local function load_sale(part)
  local v
  if part == 'poll' then
    v = redis.call('HMGET', K.sale, 'capacity', 'sold', 'held', 'state', 'opens_ms',
      'next_lapse', 'abandon_ms', 'waiting', 'rate_since', 'head')
  else -- the same ten first, then the seven more
    v = redis.call('HMGET', K.sale, 'capacity', 'sold', 'held', 'state', 'opens_ms',
      'next_lapse', 'abandon_ms', 'waiting', 'rate_since', 'head',
      'hold_ms', 'grace_ms', 'max_active', 'claim_ms', 'draw', 'seq', 'joined')
  end
  if not v[1] then return nil end
  local S = { capacity = tonumber(v[1]), sold = tonumber(v[2]), held = tonumber(v[3]),
              state = v[4], opens_ms = tonumber(v[5]), next_lapse = tonumber(v[6]) or 0,
              abandon_ms = tonumber(v[7]) or 90000,
              waiting = tonumber(v[8]) or redis.call('BITCOUNT', K.qbits),
              epoch = tonumber(v[9]) or 0, head = tonumber(v[10]) or 0 }
  if part == 'poll' then return S end
  S.hold_ms, S.grace_ms, S.max_active = tonumber(v[11]), tonumber(v[12]), tonumber(v[13])
  S.claim_ms, S.draw = tonumber(v[14]) or 90000, v[15]
  S.seq, S.joined = tonumber(v[16]) or 0, tonumber(v[17]) or 0
  return S
end

-- A code (the 32 hex digits of its token) as its CODE_BYTES bytes, and back: four 32-bit
-- words each way, the cheapest conversion Redis's Lua has. Any other string (no code the
-- service makes) is kept as it is.
local function code_bytes(code)
  if #code ~= 2 * CODE_BYTES or not string.match(code, '^%x+$') then return code end
  return struct.pack('>I4I4I4I4', tonumber(string.sub(code, 1, 8), 16),
    tonumber(string.sub(code, 9, 16), 16), tonumber(string.sub(code, 17, 24), 16),
    tonumber(string.sub(code, 25, 32), 16))
end

local function code_hex(bytes)
  return string.format('%08x%08x%08x%08x', struct.unpack('>I4I4I4I4', bytes))
end

-- The key of a code in res: its bytes, which Redis keeps in its shortest strings (a 32-byte
-- allocation; the 32 hex digits take 48). Exact: every digit counts, so a code altered in
-- any digit finds no record. Kept for the call: a script reads and writes one code's record
-- several times.
local res_keys = {}
local function res_key(code)
  local key = res_keys[code]
  if not key then
    key = code_bytes(code)
    res_keys[code] = key
  end
  return key
end

-- The poll passes a code's bytes along with it: Redis then converts nothing.
local function known_res_key(code, bytes)
  if #bytes == CODE_BYTES then res_keys[code] = bytes end
end

-- Every change to the queue goes through these, so that the count in the sale hash and the
-- departures per block stay true. enqueue queues the codes whose bytes (res_key) are `list`,
-- in order, as the next arrival numbers, and returns the first; it writes their bits in one
-- BITFIELD, their bytes in one SETRANGE (their arrival numbers follow each other) and the
-- sale's last arrival number and count of waiting buyers from S (load_sale read them, and
-- dequeue keeps `waiting` current) in one HSET, with the caller's further field-value pairs if
-- any (the count of joins): three calls however many buyers join (join_batch.lua).
local function enqueue(S, list, ...)
  local first = S.seq + 1
  local bits = { 'BITFIELD', K.qbits }
  for i, bytes in ipairs(list) do
    if #bytes ~= CODE_BYTES then return error('a queued code is ' .. 2 * CODE_BYTES .. ' hex digits') end
    local n = #bits
    bits[n + 1], bits[n + 2], bits[n + 3], bits[n + 4] = 'SET', 'u1', digits(first + i - 1), '1'
  end
  S.seq, S.waiting = S.seq + #list, S.waiting + #list
  redis.call(unpack(bits))
  redis.call('SETRANGE', K.qcodes, digits(first * CODE_BYTES), table.concat(list))
  redis.call('HSET', K.sale, 'seq', digits(S.seq), 'waiting', digits(S.waiting), ...)
  return first
end

-- The code of the buyer that arrived as `seq`.
local function code_at(seq)
  return code_hex(redis.call('GETRANGE', K.qcodes, seq * CODE_BYTES, (seq + 1) * CODE_BYTES - 1))
end

-- Takes arrival number `seq` out of the queue and counts its departure in its block; false
-- when it was not queued. The caller keeps `waiting` (dequeue, or sync's recount).
local function unqueue(seq)
  if not seq or redis.call('GETBIT', K.qbits, seq) == 0 then return false end
  redis.call('SETBIT', K.qbits, seq, 0)
  redis.call('BITFIELD', K.departed, 'OVERFLOW', 'SAT', 'INCRBY', 'u16',
    '#' .. math.floor(seq / BLOCK), 1)
  return true
end

local function dequeue(S, seq)
  local was = unqueue(seq)
  if was then S.waiting = redis.call('HINCRBY', K.sale, 'waiting', -1) end
  return was
end

-- The first queued arrival number, or nil when nobody waits; the sale's `head` moves up to it
-- (the caller writes it back: save_head).
local function queue_head(S)
  local seq = redis.call('BITPOS', K.qbits, 1, S.head, -1, 'BIT')
  if seq < 0 then return nil end
  S.head = seq
  return seq
end

local function save_head(S, was)
  if S.head ~= was then redis.call('HSET', K.sale, 'head', S.head) end
end

-- How many buyers wait ahead of arrival number `seq`. With `upto`, counting stops once that
-- many are found within the first FAR_BITS arrival numbers (it returns at least `upto` then):
-- telling a buyer far back that it is not near costs no count of the whole line. A buyer
-- nearer the back than the head is counted from the back: every one of the S.waiting queued
-- buyers is at or after the head, so those ahead are the others less those from `seq` on.
local FAR_BITS = 65536
local function rank_of(S, seq, upto)
  local ahead_bits = seq - S.head
  if ahead_bits <= 0 then return 0 end
  if upto and ahead_bits > FAR_BITS then
    local n = redis.call('BITCOUNT', K.qbits, S.head, S.head + FAR_BITS - 1, 'BIT')
    if n >= upto then return n end
  end
  if ahead_bits > FAR_BITS and redis.call('STRLEN', K.qbits) * 8 - seq < ahead_bits then
    return S.waiting - redis.call('BITCOUNT', K.qbits, seq, -1, 'BIT')
  end
  return redis.call('BITCOUNT', K.qbits, S.head, seq - 1, 'BIT')
end

-- The owner's newest reservation code, given `first`, the code the caller derived from the
-- owner for its first reservation (ReservationCode::first_of): the owners hash when the owner
-- joined again, else `first` if it was ever used; nil for an owner new to the sale.
local function newest_code(owner, first)
  local code = redis.call('HGET', K.owners, owner)
  if code then return code end
  if redis.call('HEXISTS', K.res, res_key(first)) == 1 then return first end
  return nil
end

-- Puts a code into holds until `expiry`, keeping S.next_lapse no later than it. The caller
-- writes S.held and S.next_lapse back (save_holds).
local function add_hold(S, code, expiry)
  redis.call('ZADD', K.holds, expiry, code)
  if expiry < S.next_lapse then S.next_lapse = expiry end
end

local function save_holds(S)
  redis.call('HSET', K.sale, 'held', S.held, 'next_lapse', S.next_lapse)
end

-- What res keeps of an owner (the session binding): the first 16 hex digits of its SHA-1.
-- A record then has one size whatever the binding's length, and the tag is only compared:
-- a script told an owner asks `owns`.
local function owner_tag(owner)
  return string.sub(redis.sha1hex(owner), 1, 16)
end

-- A reservation record: state, qty, owner (its tag), extra (see KEYS[5]) and, while waiting,
-- seq (its arrival number).
local function get_res(code)
  local v = redis.call('HGET', K.res, res_key(code))
  if not v then return nil end
  local st, q, owner, x, y = string.match(v, '^(%a) (%d+) (%S+) ?(%d*) ?(%d*)$')
  if st == 'w' then
    return { state = st, qty = tonumber(q), owner = owner, seq = tonumber(x), extra = tonumber(y) }
  end
  return { state = st, qty = tonumber(q), owner = owner, extra = tonumber(x) }
end

local function owns(r, owner)
  return r.owner == owner_tag(owner)
end

local function set_res(code, st, qty, owner, extra)
  local v = st .. ' ' .. qty .. ' ' .. owner
  if extra then v = v .. ' ' .. extra end
  redis.call('HSET', K.res, res_key(code), v)
end

-- The record of a waiting code (see KEYS[5]), from r: its qty, owner (tag), seq, and its last
-- poll in r.extra.
local function waiting_record(r)
  local v = string.format('w %d %s %d', r.qty, r.owner, r.seq)
  if r.extra then v = v .. ' ' .. digits(r.extra) end
  return v
end

local function set_waiting(code, r)
  redis.call('HSET', K.res, res_key(code), waiting_record(r))
end

-- A waiting code that can never be served is sold out. It keeps its arrival sequence (the
-- extra of an 's'), so that joining the waitlist puts it where it stood in line.
local function sell_out(S, code, r)
  local arrival = r.seq
  dequeue(S, arrival)
  set_res(code, 's', r.qty, r.owner, arrival)
  redis.call('HINCRBY', K.sale, 'sold_out', 1)
  r.state = 's'
end

-- A code whose order Postgres has: done, out of the holds and the queue (sync, which calls
-- this, recounts held and waiting afterwards).
local function settle_done(code)
  local r = get_res(code)
  if r and r.state ~= 'd' then
    set_res(code, 'd', r.qty, r.owner)
    redis.call('ZREM', K.holds, code)
    if r.state == 'w' then unqueue(r.seq) end
  end
end

-- Give back the tickets of holds whose time is up. A confirming hold is never due here (its
-- score is past CONFIRMING): its order may be committing in Postgres right now, and sync
-- settles it once its deadline passed. Returns true when a hold lapsed.
local function lapse(S, now)
  if now < S.next_lapse then return false end
  local due = redis.call('ZRANGEBYSCORE', K.holds, '-inf', now, 'LIMIT', 0, BATCH)
  local changed = false
  for _, code in ipairs(due) do
    local r = get_res(code)
    if r and r.state == 'a' then
      set_res(code, 'x', r.qty, r.owner)
      redis.call('ZREM', K.holds, code)
      S.held = S.held - r.qty
      redis.call('HINCRBY', K.sale, 'lapsed', 1)
      changed = true
    elseif not r or r.state ~= 'c' then
      redis.call('ZREM', K.holds, code)
    end
  end
  -- The next look is due when the earliest remaining ordinary hold expires.
  local first = tonumber(redis.call('ZRANGE', K.holds, 0, 0, 'WITHSCORES')[2])
  if not first or first >= CONFIRMING then first = now + 3600000 end
  S.next_lapse = first
  save_holds(S)
  return changed
end

-- `n` buyers were admitted at `now`: counted in the ring of the admission rate.
local function count_admissions(now, n)
  local bucket = math.floor(now / RATE_BUCKET_MS)
  local field = RATE_FIELDS[bucket % (RATE_WINDOW + 1) + 1]
  local b, c = string.match(redis.call('HGET', K.sale, field) or '', '^(%d+) (%d+)$')
  if tonumber(b) ~= bucket then c = 0 end
  redis.call('HSET', K.sale, field, bucket .. ' ' .. (tonumber(c) + n))
end

-- The admission rate's window at `now`: admitted, window_ms (0 before the first whole bucket)
-- and until_ms, when the current bucket ends and the figures change next.
local function admission_window(now)
  local bucket = math.floor(now / RATE_BUCKET_MS)
  local v = redis.call('HMGET', K.sale, 'rate_since', unpack(RATE_FIELDS))
  local since = tonumber(v[1]) or now
  local first = math.max(bucket - RATE_WINDOW, math.floor(since / RATE_BUCKET_MS))
  local admitted = 0
  for i = 2, #v do
    local b, c = string.match(v[i] or '', '^(%d+) (%d+)$')
    b = tonumber(b)
    if b and b >= first and b < bucket then admitted = admitted + tonumber(c) end
  end
  return admitted, (bucket - first) * RATE_BUCKET_MS, (bucket + 1) * RATE_BUCKET_MS
end

-- The buyer at arrival number `seq` left the queue of its own accord (see KEYS[10]).
local function note_leaver(seq)
  redis.call('LPUSH', K.leavers, seq)
  redis.call('LTRIM', K.leavers, 0, LEAVERS_KEPT - 1)
end

local function active_shoppers_full(S)
  return S.max_active > 0 and redis.call('ZCARD', K.holds) >= S.max_active
end

-- `moved` buyers left the head: buyers came into the first NEAR places. They are the ones the
-- sale's `near` frontier passes as it walks on until the first NEAR places lie behind it
-- again (at most BATCH a call; the next admission carries on). A buyer far back never polled
-- Redis, so its last poll (if any) is old; it is noted as present from now, so that it is not
-- taken for a closed tab before it had the time to poll as a near buyer (its page polls at
-- most every 60 s, within the abandon time). A buyer that joined among the first NEAR places
-- was noted on joining, and the frontier moved past it (join.lua, draw.lua). A buyer that came
-- near otherwise (buyers ahead of it left) and reaches the head before the frontier passed it
-- is admitted in its absence, for the claim window, as any buyer not looking at that moment.
local function mark_near(S, moved, now)
  if moved < 1 then return end
  local was = tonumber(redis.call('HGET', K.sale, 'near')) or 0
  local near = math.max(was, S.head)
  local now_s = math.floor(now / 1000)
  for _ = 1, math.min(NEAR - rank_of(S, near), BATCH) do
    local seq = redis.call('BITPOS', K.qbits, 1, near, -1, 'BIT')
    if seq < 0 then break end
    local code = code_at(seq)
    local r = get_res(code)
    if r and r.state == 'w' and not r.extra then
      r.extra = now_s
      set_waiting(code, r)
    end
    near = seq + 1
  end
  if near ~= was then redis.call('HSET', K.sale, 'near', near) end
end

-- A buyer that joined as number `seq` among the first NEAR places (noted present on joining):
-- the frontier of mark_near moves past it.
local function joined_near(seq)
  redis.call('HSET', K.sale, 'near', seq + 1)
end

-- Whether admit may let anybody in: the sale is open and a ticket is free. With no ticket free
-- nobody can be admitted, so the poll of a waiting buyer skips the head. (A head that can
-- never fit is settled on its own poll, or by admit once a ticket is free.)
local function may_admit(S, now)
  return S.state == 'open' and now >= S.opens_ms and S.capacity - S.sold - S.held >= 1
end

-- Admit from the head of the queue, in order, as long as the head's quantity fits the free
-- tickets. A head that can never fit (it wants more than capacity - sold) is sold out and the
-- next one is tried; a head that only waits for other holds to lapse stops the loop (FIFO).
-- A head that stopped polling long ago (a closed tab) loses its place. A head admitted here,
-- in its own absence, holds its tickets only for the short claim window until it shows up.
-- Returns true when it admitted anybody.
local function admit(S, now)
  if not may_admit(S, now) then return false end
  local admitted, moved, was = 0, 0, S.head
  for _ = 1, BATCH do
    local seq = queue_head(S)
    if not seq then break end
    local head = code_at(seq)
    moved = moved + 1
    local r = get_res(head)
    if not r or r.state ~= 'w' or r.seq ~= seq then
      dequeue(S, seq)
    elseif S.capacity - S.sold < r.qty then
      sell_out(S, head, r)
    elseif r.extra and now - r.extra * 1000 > S.abandon_ms then
      set_res(head, 'g', r.qty, r.owner)
      dequeue(S, seq)
      redis.call('HINCRBY', K.sale, 'abandoned', 1)
    elseif S.capacity - S.sold - S.held >= r.qty and not active_shoppers_full(S) then
      set_res(head, 'a', r.qty, r.owner, 1)
      dequeue(S, seq)
      add_hold(S, head, now + math.min(S.claim_ms, S.hold_ms))
      S.held = S.held + r.qty
      redis.call('HINCRBY', K.sale, 'admitted', 1)
      admitted = admitted + 1
    else
      moved = moved - 1
      break
    end
  end
  save_head(S, was)
  if admitted > 0 then
    save_holds(S)
    count_admissions(now, admitted)
  end
  mark_near(S, moved, now)
  return admitted > 0
end

-- The name of a record's state (ReservationState::from_script in src/sale/model.rs). A waiting
-- code, the poll's common case, makes no table.
local function state_name(st)
  if st == 'w' then return 'waiting' end
  return ({ a = 'admitted', c = 'confirming', d = 'confirmed', s = 'sold_out', x = 'expired',
            l = 'released', z = 'closed', g = 'abandoned' })[st]
end

-- Reply shared by join, status and release (Rust: `ReservationReply` in
-- src/sale/script/buying.rs):
--   { state, code, qty, position, waiting, expires_ms, now_ms, ... }
-- state is one of waiting, admitted, confirming, confirmed, sold_out, expired, released,
-- closed, abandoned; expires_ms is 0 without a hold. The caller's further values (`...`) end
-- the reply: made in one table, not grown afterwards.
local function describe(S, code, r, now, ...)
  local position, waiting, expires = 0, S.waiting, 0
  if r.state == 'w' then
    position = (r.rank or rank_of(S, r.seq)) + 1
  elseif r.state == 'a' then
    expires = tonumber(redis.call('ZSCORE', K.holds, code)) or 0
  elseif r.state == 'c' then
    expires = r.extra -- the hold's own expiry, not the confirm deadline
  end
  return { state_name(r.state), code, r.qty, position, waiting, expires, now, ... }
end

-- The state a waiting code `r` ends in now, wherever it stands, or nil while it may still be
-- served: z (closed) or s (sold out: it wants more than the unsold tickets).
local function final_state(S, r)
  if S.state == 'closed' then return 'z' end
  if S.capacity - S.sold < r.qty then return 's' end
  return nil
end

-- A waiting code that can no longer be served learns it at once, wherever it stands.
local function settle_waiting(S, code, r)
  if r.state ~= 'w' then return r end
  local final = final_state(S, r)
  if final == 's' then
    sell_out(S, code, r)
  elseif final then
    dequeue(S, r.seq)
    set_res(code, final, r.qty, r.owner)
    r.state = final
  end
  return r
end

-- The buyer of `code` is here (it polls or joins again): a waiting buyer's last poll is noted
-- (at most every 5 s, or a quarter of the abandon time if shorter, to spare writes; and only
-- in the first NEAR places: a buyer far back writes nothing, see mark_near), and a hold
-- admitted in its absence is claimed: the full hold time starts now.
local function touch(S, code, r, now)
  if r.state == 'w' then
    local now_s = math.floor(now / 1000)
    local every_s = math.min(5, S.abandon_ms / 4000)
    if not r.extra or now_s - r.extra >= every_s then
      local rank = rank_of(S, r.seq, NEAR)
      if rank < NEAR then
        -- kept for describe: nothing before it moves the queue unless r is read again
        r.rank = rank
        r.extra = now_s
        set_waiting(code, r)
      end
    end
  elseif r.state == 'a' and r.extra then
    set_res(code, 'a', r.qty, r.owner)
    r.extra = nil
    redis.call('ZADD', K.holds, now + S.hold_ms, code)
  end
end

-- The waitlist. Tickets freed while the queue is empty are offered down the waitlist in rank
-- order: an offer is an ordinary hold (a reservation admitted to checkout under the entry's
-- own code and owner) for the sale's offer window, so checkout, lapse, give-up and sync treat
-- it as any hold, and sold + held <= capacity holds as everywhere. Strict order: a head that
-- fits once holds and offers come back stops the line; a head that wants more than all the
-- unsold tickets (capacity - sold) is passed over, keeping its place, and told so on its page.
-- Every script that frees tickets calls offer_waitlist after `admit`.

local DEFAULT_OFFER_MS = 900000

local function get_entry(code)
  local v = redis.call('HGET', K.wle, code)
  if not v then return nil end
  local st, q, owner, rank, expiry = string.match(v, '^(%a) (%d+) (%S+) (%d+) ?(%d*)$')
  return { state = st, qty = tonumber(q), owner = owner, rank = tonumber(rank),
           expiry = tonumber(expiry) }
end

-- Writes an entry; a change of state is noted for Postgres (wlpend), whose record the
-- organizer's counts are read from.
local function set_entry(code, e, state)
  local v = state .. ' ' .. e.qty .. ' ' .. e.owner .. ' ' .. e.rank
  if e.expiry then v = v .. ' ' .. e.expiry end
  redis.call('HSET', K.wle, code, v)
  if e.state ~= state then
    redis.call('SADD', K.wlpend, code)
  end
  e.state = state
end

-- True while anybody waits on the waitlist: a new buyer then joins behind them (sold out).
local function waitlist_ahead()
  return redis.call('ZCARD', K.wl) > 0
end

-- Whether a new buyer wanting `qty` tickets only joins the back of the line now: no hold is
-- due to lapse, nobody can be admitted (no ticket free), the buyer can be served, and nobody
-- is on the waitlist. join_batch.lua queues such buyers together; join.lua's lapse and admit
-- would change nothing for them either.
local function joins_at_back(S, now, qty)
  return now < S.next_lapse and not may_admit(S, now) and S.capacity - S.sold >= qty
    and not waitlist_ahead()
end

-- Offers that ended (bought, lapsed, given up, ended by sync) are settled: taken or lapsed.
local function settle_offers()
  for _, code in ipairs(redis.call('ZRANGE', K.wlout, 0, -1)) do
    local r = get_res(code)
    if not r or (r.state ~= 'a' and r.state ~= 'c') then
      local e = get_entry(code)
      redis.call('ZREM', K.wlout, code)
      if e and e.state == 'o' then set_entry(code, e, (r and r.state == 'd') and 't' or 'x') end
    end
  end
end

-- The entry `code` holds its offer's tickets until `expiry`: a reservation admitted to
-- checkout under the entry's code and owner. For the funnel it is a reservation made and
-- admitted (joined, admitted), which then ends as any hold does: ordered, given back, lapsed.
-- The caller writes S.held back (save_holds).
local function hold_offer(S, code, e, expiry)
  set_res(code, 'a', e.qty, owner_tag(e.owner))
  add_hold(S, code, expiry)
  S.held = S.held + e.qty
  redis.call('ZADD', K.wlout, expiry, code)
  redis.call('HINCRBY', K.sale, 'joined', 1)
  redis.call('HINCRBY', K.sale, 'admitted', 1)
end

-- Tickets freed -> offered to the waitlist, in order (see above). The queue comes first: it is
-- offered nothing while anybody waits in the queue.
local function offer_waitlist(S, now)
  settle_offers()
  if S.state ~= 'open' or now < S.opens_ms or S.waiting > 0 then return false end
  local free = S.capacity - S.sold - S.held
  if free < 1 then return false end
  local offer_ms = tonumber(redis.call('HGET', K.wlinfo, 'offer_ms')) or DEFAULT_OFFER_MS
  local offered = false
  for _, code in ipairs(redis.call('ZRANGE', K.wl, 0, BATCH - 1)) do
    if free < 1 then break end
    local e = get_entry(code)
    if not e or e.state ~= 'w' then
      redis.call('ZREM', K.wl, code)
    elseif S.capacity - S.sold >= e.qty then
      if free < e.qty then break end
      e.expiry = now + offer_ms
      hold_offer(S, code, e, e.expiry)
      free = free - e.qty
      redis.call('ZREM', K.wl, code)
      set_entry(code, e, 'o')
      offered = true
    end
  end
  if offered then save_holds(S) end
  return offered
end

-- Reply shared by wl_join, wl_status and wl_leave (Rust: `EntryReply` in
-- src/sale/script/waitlist.rs):
--   { state, code, qty, position, on_list, offer_expires_ms, now_ms, fits }
-- state: waiting, offered, taken, lapsed, left; position: 1-based place while waiting, else 0;
-- on_list: entries waiting; offer_expires_ms: 0 unless offered; fits: 0 when the entry wants
-- more than all the unsold tickets, so that it is passed over until some come back.
local ENTRY_NAMES = { w = 'waiting', o = 'offered', t = 'taken', x = 'lapsed', l = 'left' }

local function describe_entry(S, code, e, now)
  local position = 0
  if e.state == 'w' then position = (redis.call('ZRANK', K.wl, code) or -1) + 1 end
  return { ENTRY_NAMES[e.state], code, e.qty, position, redis.call('ZCARD', K.wl),
           e.state == 'o' and e.expiry or 0, now, S.capacity - S.sold >= e.qty and 1 or 0 }
end
