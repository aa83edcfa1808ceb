#!/usr/bin/env bash
# Redis memory per waiting buyer, this tree's `join` script against the one of another
# revision, in the same run: N buyers (default 200,000) join a stalled sale through the join
# script itself (run in a loop inside script calls of 100,000 joins, so no client is in the
# way), each with a 32-character code and a 24-character session binding as the app makes
# them; `used_memory` before and after, on a redis-server of its own, and the time the joins
# took (wall clock of the script calls: Redis's own time, the join's body without the call's
# fixed cost). Sessions are not counted: a session record is a key of its own in the session
# store (see BENCHMARKS.md).
#
#   benches/join_memory.sh <revision before> [N] [rounds]
#
# Each round fills both layouts once (default 2 rounds; at ten million one round is enough: the
# figure hardly moves and a round takes minutes).
# Needs redis-server, redis-cli and git.
set -eu
BEFORE=${1:?a revision to compare with}; N=${2:-200000}; ROUNDS=${3:-2}
ROOT=$(git rev-parse --show-toplevel)
. "$ROOT/benches/private_redis.sh"
. "$ROOT/benches/bench_sale.sh"
# Buyer i: a code, a session binding and the first code the app would derive (a join of
# before may ignore the fourth argument).
BUYER="{ string.format('%032x', i * 7919 + 1), string.format('o%023d', i), '1', string.format('f%031x', i * 104729 + 3) }"
git -C "$ROOT" show "$BEFORE:lua/common.lua" > "$D/c0.lua"; git -C "$ROOT" show "$BEFORE:lua/join.lua" > "$D/j0.lua"
stalled_fill "$D/c0.lua" "$D/j0.lua" "$BUYER" > "$D/before.lua"
stalled_fill "$ROOT/lua/common.lua" "$ROOT/lua/join.lua" "$BUYER" > "$D/after.lua"
# Each revision's scripts take the keys its own common.lua names, in its order.
KEYS_before=$(sale_keys "$D/c0.lua" bench); KEYS_after=$(sale_keys "$ROOT/lua/common.lua" bench)
used() { cli info memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}'; }
echo "| join script | waiting buyers | Redis memory per waiting buyer | Redis time per join |"
echo "|---|--:|--:|--:|"
for what in $(for _ in $(seq "$ROUNDS"); do echo before after; done); do
  cli del $KEYS_before $KEYS_after >/dev/null
  a=$(used); t0=$(date +%s%N)
  keys=KEYS_$what
  w=$(fill "$D/$what.lua" "${!keys}" "$N")
  t1=$(date +%s%N); b=$(used)
  label=$([ "$what" = before ] && echo "$BEFORE" || echo "this tree")
  echo "| $label | $w | $(( (b - a) / N )) B | $(echo "scale=1; ($t1 - $t0) / 1000 / $N" | bc) µs |"
done
