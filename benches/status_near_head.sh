#!/usr/bin/env bash
# The `status` script near the head of a queue of N waiting buyers (default 1,000,000), this
# tree's script against the one of another revision, in the same run: alternating rounds of
# redis-benchmark (8 clients, pipelines of 8) on a random one of the first 1,000 buyers (or of
# the first AMONG: AMONG=N polls random buyers of the whole queue), on a redis-server of its
# own. Prints, per round, Redis's usec_per_call (INFO commandstats) and its CPU per call
# (used_cpu_user + used_cpu_sys over the calls) of a trivial script and of both status scripts,
# and the ratios: to the trivial script in the same round, and of this tree's script to the one
# before.
#
#   benches/status_near_head.sh <revision before> [N] [rounds]
#
# This tree's script is the text the service loads (`cargo run --example script_text -- status`:
# the helpers of lua/common.lua it uses, then lua/status.lua); the revision before must be one
# that loaded all of common.lua before each script (its text is common.lua and status.lua one
# after the other).
#
# Each revision fills a queue of its own (keys of its own hash tag) by its own `join` script,
# run in a loop inside script calls (bench_sale.sh's fill): a stalled sale (every ticket held
# for an hour) whose first 1,000 buyers joined near the head, so are noted present, as in
# `cargo bench --bench sale_scripts`. Buyer i has code `%032d` of i and session binding
# `o%023d` of i; the status call derives both from the random i it is given (the same few
# string operations for both revisions). Needs redis-server, redis-cli, redis-benchmark, git
# and cargo.
set -eu
BEFORE=${1:?a revision to compare with}; N=${2:-1000000}; ROUNDS=${3:-3}; CALLS=${CALLS:-50000}
AMONG=${AMONG:-1000}
ROOT=$(git rev-parse --show-toplevel)
if git -C "$ROOT" cat-file -e "$BEFORE:src/sale/script/prelude.rs" 2>/dev/null; then
  echo "$BEFORE loads only the helpers each script uses: give a revision before that" >&2; exit 2
fi
AFTER_TEXT=$(cd "$ROOT" && cargo run -q --release --example script_text -- status)
. "$ROOT/benches/private_redis.sh"
. "$ROOT/benches/bench_sale.sh"
git -C "$ROOT" show "$BEFORE:lua/common.lua" > "$D/c_before.lua"
git -C "$ROOT" show "$BEFORE:lua/join.lua" > "$D/j_before.lua"
cp "$ROOT/lua/common.lua" "$D/c_after.lua"; cp "$ROOT/lua/join.lua" "$D/j_after.lua"
BUYER="{ string.format('%032d', i), string.format('o%023d', i), '1', string.format('%032d', i) }"
# The poll of buyer ARGV[1]: its code and binding first, then the script as loaded.
ARGS="ARGV[2] = string.format('o%023d', tonumber(ARGV[1])); ARGV[1] = string.format('%032d', tonumber(ARGV[1]))"
{ echo "$ARGS"; git -C "$ROOT" show "$BEFORE:lua/common.lua" "$BEFORE:lua/status.lua"; } > "$D/before.lua"
{ echo "$ARGS"; printf '%s\n' "$AFTER_TEXT"; } > "$D/after.lua"
for which in before after; do
  keys=$(sale_keys "$D/c_$which.lua" "$which")
  echo "$keys" > "$D/keys_$which"
  stalled_fill "$D/c_$which.lua" "$D/j_$which.lua" "$BUYER" > "$D/fill_$which.lua"
  echo "$which: filling a queue of $(fill "$D/fill_$which.lua" "$keys" "$N") buyers" >&2
done
echo 'return 1' > "$D/trivial.lua"
cpu() { cli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/{s+=$2} END{printf "%.6f", s}'; }
round() { # file keys; prints usec_per_call and CPU µs per call
  local sha a b keys
  sha=$(cli -x script load < "$1")
  keys=$(cat "$2")
  cli config resetstat >/dev/null
  a=$(cpu)
  # buyers 0 to AMONG - 1 (0 is no buyer: its poll is an unknown code)
  redis-benchmark -p "$PORT" -c 8 -P 8 -n "$CALLS" -r "$AMONG" -q \
    evalsha "$sha" $(echo $keys | wc -w) $keys __rand_int__ >/dev/null
  b=$(cpu)
  echo "$(cli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')" \
    "$(echo "($b - $a) * 1000000 / $CALLS" | bc -l)"
}
echo "status of a queue of $N (a random one of the first $AMONG), $CALLS calls a round;"
echo "µs per call: usec_per_call of EVALSHA (Redis CPU per call from used_cpu_user + used_cpu_sys)"
echo
echo "| round | trivial (\`return 1\`) | status of $BEFORE | status of this tree | this tree / trivial | before / trivial | this tree / before |"
echo "|--:|--:|--:|--:|--:|--:|--:|"
for i in $(seq "$ROUNDS"); do
  read -r t tc < <(round "$D/trivial.lua" "$D/keys_after")
  read -r s0 s0c < <(round "$D/before.lua" "$D/keys_before")
  read -r s1 s1c < <(round "$D/after.lua" "$D/keys_after")
  printf '| %d | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.1f | %.1f | %.2f |\n' "$i" "$t" "$tc" \
    "$s0" "$s0c" "$s1" "$s1c" "$(echo "$s1 / $t" | bc -l)" "$(echo "$s0 / $t" | bc -l)" "$(echo "$s1 / $s0" | bc -l)"
done
