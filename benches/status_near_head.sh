#!/usr/bin/env bash
# The `status` script near the head of a queue of N waiting buyers (default 1,000,000), this
# tree's script against the one of another revision, in the same run: alternating rounds of
# redis-benchmark (8 clients, pipelines of 8) on a random one of the first 1,000 buyers, on a
# redis-server of its own. Prints, per round, Redis's usec_per_call (INFO commandstats) and
# its CPU per call (used_cpu_user + used_cpu_sys over the calls) of a trivial script (the same
# keys and arguments) and of both status scripts, and the ratios: to the trivial script in the
# same round, and of this tree's script to the one before.
#
#   benches/status_near_head.sh <revision before> [N] [rounds]
#
# This tree's script is the text the service loads (`cargo run --example script_text -- status`:
# the helpers of lua/common.lua it uses, then lua/status.lua); the revision before must be one
# that loaded all of common.lua before each script (before the loader picked the helpers, so
# its text is common.lua and status.lua one after the other).
#
# The queue is written straight into Redis by the scripts' own helpers (enqueue, set_res of
# lua/common.lua): a stalled sale (every ticket held for an hour) whose first 1,000 buyers have
# polled lately, as in `cargo bench --bench sale_scripts`. Needs redis-server, redis-cli,
# redis-benchmark, git and cargo.
set -eu
BEFORE=${1:?a revision to compare with}; N=${2:-1000000}; ROUNDS=${3:-3}; CALLS=${CALLS:-50000}
ROOT=$(git rev-parse --show-toplevel)
if git -C "$ROOT" cat-file -e "$BEFORE:src/sale/script/prelude.rs" 2>/dev/null; then
  echo "$BEFORE loads only the helpers each script uses: give a revision before that" >&2; exit 2
fi
AFTER_TEXT=$(cd "$ROOT" && cargo run -q --example script_text -- status)
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
printf '%s\n' "$AFTER_TEXT" > "$D/after.lua"
cpu() { cli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/{s+=$2} END{printf "%.6f", s}'; }
round() { # file; prints usec_per_call and CPU µs per call
  local sha a b
  sha=$(cli -x script load < "$1")
  cli config resetstat >/dev/null
  a=$(cpu)
  # codes 000…0000 to 000…0999: the first 1,000 buyers (and one unknown code, 0)
  redis-benchmark -p "$PORT" -c 8 -P 8 -n "$CALLS" -r 1000 -q \
    evalsha "$sha" 15 $KEYS 00000000000000000000__rand_int__ "$OWNER" >/dev/null
  b=$(cpu)
  echo "$(cli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')" \
    "$(echo "($b - $a) * 1000000 / $CALLS" | bc -l)"
}
echo "status near the head of a queue of $N (a random one of the first 1,000), $CALLS calls a round;"
echo "µs per call: usec_per_call of EVALSHA (Redis CPU per call from used_cpu_user + used_cpu_sys)"
echo
echo "| round | trivial (\`return 1\`) | status of $BEFORE | status of this tree | this tree / trivial | before / trivial | this tree / before |"
echo "|--:|--:|--:|--:|--:|--:|--:|"
for i in $(seq "$ROUNDS"); do
  read -r t tc < <(round "$D/trivial.lua")
  read -r s0 s0c < <(round "$D/before.lua")
  read -r s1 s1c < <(round "$D/after.lua")
  printf '| %d | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.1f | %.1f | %.2f |\n' "$i" "$t" "$tc" \
    "$s0" "$s0c" "$s1" "$s1c" "$(echo "$s1 / $t" | bc -l)" "$(echo "$s0 / $t" | bc -l)" "$(echo "$s1 / $s0" | bc -l)"
done
