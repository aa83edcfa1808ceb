-- wrk: polls random buyers of the fixture file (env FIXTURE). PATH_KIND=fragment|json;
-- WITH_PLACE=1 sends the buyer's signed place (`?place=`) as the pages and API clients do,
-- WITH_PLACE=0 leaves it out (a client that does not send it: every poll runs `status`).
-- PATH_KIND=bare sends the same requests under `/any/` of bare poem: the baseline that costs the
-- client what the polls cost it (a call of this script a request, which plain `wrk` does not make).
-- The requests are made once, in init(), as wrk's scripting guide advises: building each anew
-- cost the client more than bare poem's answer, on the cores the server shares with it.
-- DELAY_MS, when set, is a think time between one connection's polls, so the aggregate rate is
-- about connections * 1000 / (DELAY_MS + latency): a crowd polling at its intervals.
local requests = {}
local kind = os.getenv("PATH_KIND") or "fragment"
local with_place = os.getenv("WITH_PLACE") ~= "0"
init = function(args)
  for line in io.lines(os.getenv("FIXTURE")) do
    local ck, code, place = line:match("^(%S+) (%S+) (%S+)$")
    if ck then
      local path = kind == "json" and ("/api/v1/reservations/" .. code) or ("/wait/" .. code .. "/poll")
      if kind == "bare" then path = "/any" .. path end
      if with_place then path = path .. "?place=" .. place end
      requests[#requests + 1] = wrk.format("GET", path, { ["Cookie"] = "bo_session=" .. ck })
    end
  end
end
local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms then delay = function() return delay_ms end end
local random = math.random
request = function()
  return requests[random(#requests)]
end
