-- touch.lua: the buyers whose polls this instance refused as too fast (429) are still here.
-- Their polls never reached `status`, so the instance notes them in memory and reports them
-- here in one batch per sale, a few times per abandon window: a waiting buyer that keeps
-- polling, however fast, keeps its place in line. Nothing else changes: no admission, no
-- lapse (the next real poll does those).
--
-- Rust: `Touch` and `TouchReply` in src/sale/script/touch.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV: code, owner, code, owner, ... ; a pair whose code is not this owner's, or not waiting,
--       is skipped
-- Reply: noted: the number of waiting buyers noted as present
--    or  { '!missing' }  Redis has lost the sale (nobody waits in it then)

local S = load_sale()
if not S then return { '!missing' } end
local now = now_ms()
local noted = 0
for i = 1, #ARGV - 1, 2 do
  local code, owner = ARGV[i], ARGV[i + 1]
  local r = get_res(code)
  if r and r.state == 'w' and owns(r, owner) then
    touch(S, code, r, now)
    noted = noted + 1
  end
end
return noted
