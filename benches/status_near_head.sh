#!/usr/bin/env bash
# The `status` script near the head of a queue of N waiting buyers (default 1,000,000), this
# tree's script against the one of another revision, in the same run: alternating rounds of
# redis-benchmark (8 clients, pipelines of 8) on a random one of the first 1,000 buyers (or of
# the first AMONG: AMONG=N polls random buyers of the whole queue), on a redis-server of its
# own. Prints, per round, Redis's usec_per_call (INFO commandstats) and
# its CPU per call (used_cpu_user + used_cpu_sys over the calls), and a trivial script's.
#
#   benches/status_near_head.sh <revision before> [N] [rounds]
#
# Each revision fills a queue of its own (keys of its own hash tag) by its own `join` script,
# run in a loop inside one script call: a stalled sale (every ticket held for an hour) whose
# first 1,000 buyers joined near the head, so are noted present, as in
# `cargo bench --bench sale_scripts`. Buyer i has code `%032d` of i and session binding
# `o%023d` of i; the status call derives both from the random i it is given (the same few
# string operations for both revisions). Needs redis-server, redis-cli, redis-benchmark and git.
set -eu
BEFORE=${1:?a revision to compare with}; N=${2:-1000000}; ROUNDS=${3:-3}; CALLS=${CALLS:-50000}
AMONG=${AMONG:-1000}
ROOT=$(git rev-parse --show-toplevel)
. "$ROOT/benches/private_redis.sh"
. "$ROOT/benches/bench_sale.sh"
git -C "$ROOT" show "$BEFORE:lua/common.lua" > "$D/c_before.lua"
git -C "$ROOT" show "$BEFORE:lua/join.lua" > "$D/j_before.lua"
git -C "$ROOT" show "$BEFORE:lua/status.lua" > "$D/s_before.lua"
cp "$ROOT/lua/common.lua" "$D/c_after.lua"; cp "$ROOT/lua/join.lua" "$D/j_after.lua"
cp "$ROOT/lua/status.lua" "$D/s_after.lua"
BUYER="{ string.format('%032d', i), string.format('o%023d', i), '1', string.format('%032d', i) }"
poll() { # which: status of buyer ARGV[1] of that revision
  cat "$D/c_$1.lua"
  echo "ARGV[2] = string.format('o%023d', tonumber(ARGV[1])); ARGV[1] = string.format('%032d', tonumber(ARGV[1]))"
  cat "$D/s_$1.lua"
}
for which in before after; do
  keys=$(sale_keys "$D/c_$which.lua" "$which")
  echo "$keys" > "$D/keys_$which"
  stalled_fill "$D/c_$which.lua" "$D/j_$which.lua" "$BUYER" > "$D/fill_$which.lua"
  echo "$which: filling a queue of $(cli --no-raw eval "$(cat "$D/fill_$which.lua")" $(echo $keys | wc -w) $keys "$N") buyers" >&2
  poll "$which" > "$D/$which.lua"
done
echo 'return 1' > "$D/trivial.lua"
cpu() { cli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/{s+=$2} END{printf "%.6f", s}'; }
round() { # name file keys
  local sha a b keys
  sha=$(cli -x script load < "$2")
  keys=$(cat "$3")
  cli config resetstat >/dev/null
  a=$(cpu)
  # buyers 0 to AMONG - 1 (0 is no buyer: its poll is an unknown code)
  redis-benchmark -p "$PORT" -c 8 -P 8 -n "$CALLS" -r "$AMONG" -q \
    evalsha "$sha" $(echo $keys | wc -w) $keys __rand_int__ >/dev/null
  b=$(cpu)
  printf '| %s | %s | %.2f |\n' "$1" \
    "$(cli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')" \
    "$(echo "($b - $a) * 1000000 / $CALLS" | bc -l)"
}
echo "| script (queue of $N, a random one of the first $AMONG) | usec_per_call | Redis CPU µs per call |"
echo "|---|--:|--:|"
for _ in $(seq "$ROUNDS"); do
  round "trivial (\`return 1\`)" "$D/trivial.lua" "$D/keys_after"
  round "status of $BEFORE" "$D/before.lua" "$D/keys_before"
  round "status of this tree" "$D/after.lua" "$D/keys_after"
done
