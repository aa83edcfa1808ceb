#!/usr/bin/env bash
# Redis memory per waiting buyer, this tree's `join` script against the one of another
# revision, in the same run: N buyers (default 200,000) join a stalled sale through the join
# script itself (run in a loop inside one script call, so no client is in the way), each with
# a 32-character code and a 24-character session binding as the app makes them;
# `used_memory` before and after, on a redis-server of its own. Sessions are not counted: a
# session record is a key of its own in the session store (see BENCHMARKS.md).
#
#   benches/join_memory.sh <revision before> [N]
#
# Needs redis-server, redis-cli and git.
set -eu
BEFORE=${1:?a revision to compare with}; N=${2:-200000}
ROOT=$(git rev-parse --show-toplevel)
. "$ROOT/benches/private_redis.sh"
# A stalled sale (every ticket held for an hour), then the join script's body as a function
# of its ARGV, called for each buyer.
fill() { # common.lua join.lua: the fill script on stdout
  cat "$1"
  cat <<'LUA'
do
  local now = now_ms()
  redis.call('HSET', K.sale, 'capacity', 6, 'sold', 0, 'held', 6, 'hold_ms', 3600000,
    'grace_ms', 30000, 'max_active', 0, 'state', 'open', 'opens_ms', 0,
    'next_lapse', now + 3600000, 'abandon_ms', 90000, 'claim_ms', 90000, 'waiting', 0,
    'rate_since', now, 'seq', 0)
  redis.call('ZADD', K.holds, now + 3600000, 'holder')
  redis.call('HSET', K.res, 'holder', 'a 6 holderholderholderhold')
end
local function join_once(ARGV)
LUA
  cat "$2"
  cat <<'LUA'
end
for i = 1, tonumber(ARGV[1]) do
  -- a join of before ignores the fourth argument (the owner's first code)
  join_once({ string.format('%032x', i * 7919 + 1), string.format('o%023d', i), '1',
              string.format('f%031x', i * 104729 + 3) })
end
return redis.call('HGET', K.sale, 'waiting')
LUA
}
git -C "$ROOT" show "$BEFORE:lua/common.lua" > "$D/c0.lua"; git -C "$ROOT" show "$BEFORE:lua/join.lua" > "$D/j0.lua"
fill "$D/c0.lua" "$D/j0.lua" > "$D/before.lua"
fill "$ROOT/lua/common.lua" "$ROOT/lua/join.lua" > "$D/after.lua"
KEYS=$(for k in sale queue holds res owners done recent departed leavers wl wle wlidx wlout wlpend wlinfo; do printf 'bo:{bench}:%s ' $k; done)
used() { cli info memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}'; }
echo "| join script | waiting buyers | Redis memory per waiting buyer |"
echo "|---|--:|--:|"
for what in before after before after; do
  cli del $KEYS >/dev/null
  a=$(used)
  w=$(cli eval "$(cat "$D/$what.lua")" 15 $KEYS "$N")
  b=$(used)
  label=$([ "$what" = before ] && echo "$BEFORE" || echo "this tree")
  echo "| $label | $w | $(( (b - a) / N )) B |"
done
