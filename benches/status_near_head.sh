#!/usr/bin/env bash
# The `status` script near the head of a queue of N waiting buyers (default 1,000,000), this
# tree's script against the one of another revision, in the same run: alternating rounds of
# redis-benchmark (8 clients, pipelines of 8) on a random one of the first 1,000 buyers, on a
# redis-server of its own. Prints, per round, Redis's usec_per_call (INFO commandstats) and
# its CPU per call (used_cpu_user + used_cpu_sys over the calls), and a trivial script's.
#
#   benches/status_near_head.sh <revision before> [N] [rounds]
#
# The queue is written straight into Redis by the scripts' own helpers (enqueue, set_res of
# lua/common.lua): a stalled sale (every ticket held for an hour) whose first 1,000 buyers have
# polled lately, as in `cargo bench --bench sale_scripts`. Needs redis-server, redis-cli,
# redis-benchmark and git.
set -eu
BEFORE=${1:?a revision to compare with}; N=${2:-1000000}; ROUNDS=${3:-3}; CALLS=${CALLS:-50000}
ROOT=$(git rev-parse --show-toplevel)
. "$ROOT/benches/private_redis.sh"
KEYS=""
for k in sale queue holds res owners done recent departed leavers wl wle wlidx wlout wlpend wlinfo; do
  KEYS="$KEYS bo:{bench}:$k"
done
OWNER=ownerownerownerownerowne
cat "$ROOT/lua/common.lua" - > "$D/fill.lua" <<LUA
local n, now = tonumber(ARGV[1]), now_ms()
redis.call('HSET', K.sale, 'capacity', 6, 'sold', 0, 'held', 6, 'hold_ms', 3600000,
  'grace_ms', 30000, 'max_active', 0, 'state', 'open', 'opens_ms', 0,
  'next_lapse', now + 3600000, 'abandon_ms', 90000, 'claim_ms', 90000, 'waiting', 0,
  'rate_since', now, 'seq', 0)
redis.call('ZADD', K.holds, now + 3600000, 'holder')
redis.call('HSET', K.res, 'holder', 'a 6 $OWNER')
local S = load_sale()
for i = 1, n do
  local code = string.format('%032d', i)
  enqueue(S, code)
  set_res(code, 'w', 1, '$OWNER', i <= 1000 and math.floor(now / 1000) or nil)
end
return S.waiting
LUA
echo "filling a queue of $(cli --no-raw eval "$(cat "$D/fill.lua")" 15 $KEYS "$N") buyers" >&2
echo 'return 1' > "$D/trivial.lua"
git -C "$ROOT" show "$BEFORE:lua/common.lua" "$BEFORE:lua/status.lua" > "$D/before.lua"
cat "$ROOT/lua/common.lua" "$ROOT/lua/status.lua" > "$D/after.lua"
cpu() { cli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/{s+=$2} END{printf "%.6f", s}'; }
round() { # name file
  local sha a b
  sha=$(cli -x script load < "$2")
  cli config resetstat >/dev/null
  a=$(cpu)
  # codes 000…0000 to 000…0999: the first 1,000 buyers (and one unknown code, 0)
  redis-benchmark -p "$PORT" -c 8 -P 8 -n "$CALLS" -r 1000 -q \
    evalsha "$sha" 15 $KEYS 00000000000000000000__rand_int__ "$OWNER" >/dev/null
  b=$(cpu)
  printf '| %s | %s | %.2f |\n' "$1" \
    "$(cli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')" \
    "$(echo "($b - $a) * 1000000 / $CALLS" | bc -l)"
}
echo "| script (queue of $N, a random one of the first 1,000) | usec_per_call | Redis CPU µs per call |"
echo "|---|--:|--:|"
for _ in $(seq "$ROUNDS"); do
  round "trivial (\`return 1\`)" "$D/trivial.lua"
  round "status of $BEFORE" "$D/before.lua"
  round "status of this tree" "$D/after.lua"
done
