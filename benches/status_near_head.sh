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
#   BEFORE_ASSEMBLER=<script_text binary of the revision before> benches/status_near_head.sh …
#       when the change is in the assembler itself (src/sale/script/prelude.rs): the revision
#       before's text is then assembled as that revision did
#
# This tree's script is the text the service loads (`cargo run --example script_text -- status`:
# the helpers of lua/common.lua it uses, then lua/status.lua); the revision before's is its
# common.lua and status.lua assembled the same way (`script_text --files`), or, for a revision
# that loaded all of common.lua before each script (no src/sale/script/prelude.rs), the two
# files one after the other.
#
# Each revision fills a queue of its own (keys of its own hash tag) by its own `join` script,
# run in a loop inside script calls (bench_sale.sh's fill): a stalled sale (every ticket held
# for an hour) whose first 1,000 buyers joined near the head, so are noted present, as in
# `cargo bench --bench sale_scripts`. Buyer i has code `%032d` of i and session binding
# `o%023d` of i; the status call derives its arguments from the random i it is given, as that
# revision's status takes them (code and binding; or code, owner tag and the code's bytes,
# which the service computes itself). That derivation runs in Redis, so each revision's is
# also timed alone (its argument lines, then `return 1`) and the tables give the script's cost
# without it ("net"). Needs redis-server, redis-cli, redis-benchmark, git and cargo.
set -eu
BEFORE=${1:?a revision to compare with}; N=${2:-1000000}; ROUNDS=${3:-3}; CALLS=${CALLS:-50000}
AMONG=${AMONG:-1000}
ROOT=$(git rev-parse --show-toplevel)
AFTER_TEXT=$(cd "$ROOT" && cargo run -q --release --example script_text -- status)
. "$ROOT/benches/private_redis.sh"
. "$ROOT/benches/bench_sale.sh"
git -C "$ROOT" show "$BEFORE:lua/common.lua" > "$D/c_before.lua"
git -C "$ROOT" show "$BEFORE:lua/join.lua" > "$D/j_before.lua"
git -C "$ROOT" show "$BEFORE:lua/status.lua" > "$D/s_before.lua"
cp "$ROOT/lua/common.lua" "$D/c_after.lua"; cp "$ROOT/lua/join.lua" "$D/j_after.lua"
if git -C "$ROOT" cat-file -e "$BEFORE:src/sale/script/prelude.rs" 2>/dev/null; then
  if [ -n "${BEFORE_ASSEMBLER:-}" ]; then
    BEFORE_TEXT=$("$BEFORE_ASSEMBLER" --files "$D/c_before.lua" "$D/s_before.lua")
  else
    BEFORE_TEXT=$(cd "$ROOT" && cargo run -q --release --example script_text -- --files "$D/c_before.lua" "$D/s_before.lua")
  fi
else
  BEFORE_TEXT=$(cat "$D/c_before.lua" "$D/s_before.lua")
fi
BUYER="{ string.format('%032d', i), string.format('o%023d', i), '1', string.format('%032d', i) }"
# The poll of buyer ARGV[1], as each revision's status takes it.
ARGS_OWNER="ARGV[2] = string.format('o%023d', tonumber(ARGV[1])); ARGV[1] = string.format('%032d', tonumber(ARGV[1]))"
ARGS_TAG="ARGV[2] = string.sub(redis.sha1hex(string.format('o%023d', tonumber(ARGV[1]))), 1, 16)
ARGV[1] = string.format('%032d', tonumber(ARGV[1]))
ARGV[3] = struct.pack('>I4I4I4I4', tonumber(string.sub(ARGV[1], 1, 8), 16), tonumber(string.sub(ARGV[1], 9, 16), 16),
  tonumber(string.sub(ARGV[1], 17, 24), 16), tonumber(string.sub(ARGV[1], 25, 32), 16))"
args_of() { if grep -q '^-- ARGV\[2\] tag' "$1"; then echo "$ARGS_TAG"; else echo "$ARGS_OWNER"; fi; }
{ args_of "$D/s_before.lua"; printf '%s\n' "$BEFORE_TEXT"; } > "$D/before.lua"
{ args_of "$ROOT/lua/status.lua"; printf '%s\n' "$AFTER_TEXT"; } > "$D/after.lua"
{ args_of "$D/s_before.lua"; echo 'return 1'; } > "$D/args_before.lua"
{ args_of "$ROOT/lua/status.lua"; echo 'return 1'; } > "$D/args_after.lua"
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
echo "µs per call: usec_per_call of EVALSHA (Redis CPU per call from used_cpu_user + used_cpu_sys);"
echo "net: less the same revision's argument lines alone"
echo
echo "| round | trivial (\`return 1\`) | arguments of $BEFORE | status of $BEFORE | arguments of this tree | status of this tree | net $BEFORE | net this tree | this tree / before, net |"
echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for i in $(seq "$ROUNDS"); do
  read -r t tc < <(round "$D/trivial.lua" "$D/keys_after")
  read -r a0 a0c < <(round "$D/args_before.lua" "$D/keys_before")
  read -r s0 s0c < <(round "$D/before.lua" "$D/keys_before")
  read -r a1 a1c < <(round "$D/args_after.lua" "$D/keys_after")
  read -r s1 s1c < <(round "$D/after.lua" "$D/keys_after")
  n0=$(echo "$s0 - $a0" | bc -l); n1=$(echo "$s1 - $a1" | bc -l)
  printf '| %d | %.2f (%.2f) | %.2f | %.2f (%.2f) | %.2f | %.2f (%.2f) | %.2f | %.2f | %.2f |\n' "$i" "$t" "$tc" \
    "$a0" "$s0" "$s0c" "$a1" "$s1" "$s1c" "$n0" "$n1" "$(echo "$n1 / $n0" | bc -l)"
done
