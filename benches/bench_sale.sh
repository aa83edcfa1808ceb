# Sourced by the bench scripts: a sale as a given revision's scripts take it, so that the
# scripts of two revisions can be measured side by side in one run.
#
#   sale_keys <common.lua> <hash tag>
#       the keys the revision's scripts take, in KEYS order, as its common.lua names them
#       (its table `K`): bo:{tag}:sale bo:{tag}:… on one line
#   stalled_fill <common.lua> <join.lua> <Lua expression: the join's ARGV for buyer i>
#       (code, owner, qty, first; the tag and bytes of later revisions are derived from them)
#       a script (on stdout) that makes a stalled sale (every ticket held for an hour, its
#       hash encoded as the revision's sync leaves it) unless it exists, and joins buyers
#       ARGV[1] to ARGV[2] to it by the revision's own `join` script, run in a loop inside the
#       one script call (no client in the way); it returns the number waiting
#   fill <script file> <keys> <N>
#       buyers 1 to N joined by such a script, FILL_CHUNK (100,000) a call: one call of
#       millions would keep every buyer's per-call memo (a script's locals live for its call)
#       and hold Redis for minutes; prints the number waiting
sale_keys() {
  grep -o '[a-z]* = KEYS\[[0-9]*\]' "$1" | sed 's/ = KEYS\[\([0-9]*\)\]/ \1/' | sort -k2 -n \
    | awk -v tag="$2" '{ printf "%sbo:{%s}:%s", (NR > 1 ? " " : ""), tag, $1 } END { print "" }'
}

stalled_fill() {
  cat "$1"
  # A revision whose sync keeps the sale hash a hash table (HASH_TABLE_MARK) gets it here too.
  if grep -q '^local HASH_TABLE_MARK' "$1"; then
    echo "local SALE_ENCODING = { 'encoding', HASH_TABLE_MARK }"
  else
    echo "local SALE_ENCODING = {}"
  fi
  cat <<'LUA'
do
  local now = now_ms()
  if redis.call('EXISTS', K.sale) == 0 then
    redis.call('HSET', K.sale, 'capacity', 6, 'sold', 0, 'held', 6, 'hold_ms', 3600000,
      'grace_ms', 30000, 'max_active', 0, 'state', 'open', 'opens_ms', 0,
      'next_lapse', now + 3600000, 'abandon_ms', 90000, 'claim_ms', 90000, 'waiting', 0,
      'rate_since', now, 'seq', 0, unpack(SALE_ENCODING))
    redis.call('ZADD', K.holds, now + 3600000, 'holder')
    redis.call('HSET', K.res, 'holder', 'a 6 holderholderholderhold')
  end
end
local function join_once(ARGV)
LUA
  # A revision whose join takes the owner tag and the codes' bytes (computed by the service)
  # gets them from the buyer's code, owner and first code, as an owner seen before.
  if grep -q '^-- ARGV\[5\] tag' "$2"; then
    echo "ARGV[5], ARGV[6], ARGV[7], ARGV[8] = owner_tag(ARGV[2]), code_bytes(ARGV[1]), code_bytes(ARGV[4]), '0'"
  fi
  cat "$2"
  cat <<LUA
end
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  join_once($3)
end
return redis.call('HGET', K.sale, 'waiting')
LUA
}

fill() {
  local from=1 to chunk=${FILL_CHUNK:-100000} w=0
  while [ "$from" -le "$3" ]; do
    to=$(( from + chunk - 1 < $3 ? from + chunk - 1 : $3 ))
    w=$(cli --no-raw eval "$(cat "$1")" $(echo $2 | wc -w) $2 "$from" "$to")
    from=$(( to + 1 ))
  done
  echo "$w" | tr -dc '0-9'; echo
}
