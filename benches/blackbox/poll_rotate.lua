-- wrk: polls random buyers of the fixture file (env FIXTURE). PATH_KIND=fragment|json;
-- WITH_PLACE=1 sends the buyer's signed place (`?place=`) as the pages and API clients do,
-- WITH_PLACE=0 leaves it out (a client that does not send it: every poll runs `status`).
-- PATH_KIND=bare sends the same requests under `/any/` of bare poem: the baseline that costs the
-- client what the polls cost it (this script makes each request anew, which plain `wrk` does not).
-- DELAY_MS, when set, is a think time between one connection's polls, so the aggregate rate is
-- about connections * 1000 / (DELAY_MS + latency): a crowd polling at its intervals.
local rows = {}
local kind = os.getenv("PATH_KIND") or "fragment"
local with_place = os.getenv("WITH_PLACE") ~= "0"
init = function(args)
  for line in io.lines(os.getenv("FIXTURE")) do
    local ck, code, place = line:match("^(%S+) (%S+) (%S+)$")
    if ck then rows[#rows + 1] = { ck, code, place } end
  end
end
local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms then delay = function() return delay_ms end end
request = function()
  local r = rows[math.random(#rows)]
  local path = kind == "json" and ("/api/v1/reservations/" .. r[2]) or ("/wait/" .. r[2] .. "/poll")
  if kind == "bare" then path = "/any" .. path end
  if with_place then path = path .. "?place=" .. r[3] end
  return wrk.format("GET", path, { ["Cookie"] = "bo_session=" .. r[1] })
end
