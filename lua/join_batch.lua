-- join_batch.lua: new buyers join the back of the line together. The service gathers the joins
-- of sessions made in their very requests (the crowd) that arrive while a call of this script
-- for the sale is under way, and sends them as the next call (src/sale/join_batch.rs): the
-- sale's figures, Redis's clock and the waitlist are read once for them all, and the queue,
-- the records and the sale's counts are written in one call each, however many they are.
--
-- Only the common case: when every one of them only joins the back of the line (joins_at_back
-- in common.lua), they are queued in the order given, each under its first code, as join.lua
-- would queue them one after the other. Otherwise nothing changes, and the service joins each
-- by join.lua (which also tells a closed sale, one not open yet, or one Redis lost).
--
-- Rust: `JoinBatch` and `JoinBatchReply` in src/sale/script/buying.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV: per buyer, three values: the bytes of its first code (CODE_BYTES: the code of a new
--       owner's reservation, see join.lua's ARGV[4] and ARGV[7]), its owner tag (owner_tag),
--       the tickets wanted (already checked to be 1..max by the caller)
-- Reply: { 'joined', now_ms, epoch, seq, waiting }  the buyers were queued as arrival numbers
--          seq, seq + 1, ... in the order given; `waiting` were in line before the first, so
--          that the buyer given i-th (from 0) has waiting + i ahead of it; epoch as join.lua's
--    or  { '!slow' }  not the common case, nothing changed: join each by join.lua

if #ARGV == 0 or #ARGV % 3 ~= 0 then return error('ARGV is three values a buyer') end
local S = load_sale()
if not S or S.state == 'closed' or S.draw == 'pending' then return { '!slow' } end
local now = now_ms()
local list, most = {}, 0
for i = 1, #ARGV, 3 do
  list[#list + 1] = ARGV[i]
  most = math.max(most, tonumber(ARGV[i + 2]))
end
if now < S.opens_ms or not joins_at_back(S, now, most) then return { '!slow' } end

local ahead = S.waiting
local first = enqueue(S, list, 'joined', digits(S.joined + #list))

-- Their records, in one HSET; those that joined among the first NEAR places are present from
-- now (as join.lua's join_line), and the frontier of mark_near moves past the last of them.
local records, now_s, near = { 'HSET', K.res }, math.floor(now / 1000), nil
for i, bytes in ipairs(list) do
  local r = { qty = ARGV[3 * i], owner = ARGV[3 * i - 1], seq = first + i - 1 }
  if ahead + i <= NEAR then
    r.extra = now_s
    near = r.seq
  end
  records[#records + 1], records[#records + 2] = bytes, waiting_record(r)
end
redis.call(unpack(records))
if near then joined_near(near) end
return { 'joined', now, S.epoch, first, ahead }
