# Sourced by the bench scripts: a sale as a given revision's scripts take it, so that the
# scripts of two revisions can be measured side by side in one run.
#
#   sale_keys <common.lua> <hash tag>
#       the keys the revision's scripts take, in KEYS order, as its common.lua names them
#       (its table `K`): bo:{tag}:sale bo:{tag}:… on one line
#   stalled_fill <common.lua> <join.lua> <Lua expression: the join's ARGV for buyer i>
#       a script (on stdout) that makes a stalled sale (every ticket held for an hour) and
#       joins ARGV[1] buyers to it by the revision's own `join` script, run in a loop inside
#       the one script call (no client in the way); it returns the number waiting
sale_keys() {
  grep -o '[a-z]* = KEYS\[[0-9]*\]' "$1" | sed 's/ = KEYS\[\([0-9]*\)\]/ \1/' | sort -k2 -n \
    | awk -v tag="$2" '{ printf "%sbo:{%s}:%s", (NR > 1 ? " " : ""), tag, $1 } END { print "" }'
}

stalled_fill() {
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
  cat <<LUA
end
for i = 1, tonumber(ARGV[1]) do
  join_once($3)
end
return redis.call('HGET', K.sale, 'waiting')
LUA
}
