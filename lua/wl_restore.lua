-- wl_restore.lua: puts back the entries Redis lost, from Postgres; sets the offer window.
-- Called after a sync that rebuilt the sale (and when the organizer changes the window, with
-- no entries). Entries Redis still has are left alone.
--
-- Rust: `WaitlistRestore` in src/sale/script/waitlist.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] offer_ms
-- ARGV[2..] code, owner, qty, email digest, rank, state (waiting|offered), offer_expires_ms, ...
-- Reply: restored: how many entries were put back
--    or  { '!missing' }
--
-- An offer is put back as the hold it was, until its own expiry, when its tickets are still
-- free; one whose time is up lapses; one whose tickets went meanwhile waits at its rank again.

local S = load_sale()
if not S then return { '!missing' } end
local now = now_ms()
redis.call('HSET', K.wlinfo, 'offer_ms', ARGV[1])
local restored = 0
for i = 2, #ARGV - 6, 7 do
  local code = ARGV[i]
  if redis.call('HEXISTS', K.wle, code) == 0 then
    local e = { qty = tonumber(ARGV[i + 2]), owner = ARGV[i + 1], rank = tonumber(ARGV[i + 4]),
                state = ARGV[i + 5] == 'offered' and 'o' or 'w', expiry = tonumber(ARGV[i + 6]) }
    if e.state ~= 'o' then e.expiry = nil end
    redis.call('HSET', K.wlidx, 'o:' .. e.owner, code, 'e:' .. ARGV[i + 3], code)
    set_entry(code, e, e.state)
    local held = get_res(code)
    if e.state == 'o' then
      if held and (held.state == 'a' or held.state == 'c') then
        redis.call('ZADD', K.wlout, e.expiry, code)
      elseif e.expiry <= now then
        set_entry(code, e, 'x')
      elseif not held and S.capacity - S.sold - S.held >= e.qty then
        hold_offer(S, code, e, e.expiry)
        save_holds(S)
      else
        e.expiry = nil
        set_entry(code, e, 'w')
      end
    end
    if e.state == 'w' then redis.call('ZADD', K.wl, e.rank, code) end
    restored = restored + 1
  end
end
offer_waitlist(S, now)
return restored
