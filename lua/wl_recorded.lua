-- wl_recorded.lua: Postgres has recorded these entries in these states. An entry whose state
-- changed meanwhile stays pending, to be recorded again.
--
-- Rust: `WaitlistRecorded` in src/sale/script/waitlist.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV: code, state, code, state, ...
-- Reply: cleared: how many entries are no longer pending

local cleared = 0
for i = 1, #ARGV - 1, 2 do
  local e = get_entry(ARGV[i])
  if not e or ENTRY_NAMES[e.state] == ARGV[i + 1] then
    cleared = cleared + redis.call('SREM', K.wlpend, ARGV[i])
  end
end
return cleared
