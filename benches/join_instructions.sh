#!/usr/bin/env bash
# What a new session's join costs Redis, counted in instructions rather than timed: a new buyer
# joining the back of the line of a stalled sale (no ticket free, nothing due, nobody on the
# waitlist) by another revision's `join` script, one a call, against this tree's `join_batch`
# (src/sale/join_batch.rs) with 1, 8 and 32 buyers a call, and a script that only returns,
# called with the same sixteen keys and eight arguments. Redis runs under valgrind's callgrind,
# whose count is the same from one run to the next whatever else the machine does, so one run
# of CALLS (5,000) calls of each is the measure; on this machine a join costs a few
# microseconds of Redis for each 10,000 instructions.
#
#   benches/join_instructions.sh <revision before> [CALLS]
#
# The texts are those the service loads (`cargo run --example script_text`; the revision
# before's common.lua and join.lua assembled by this tree's `script_text --files`). Every call
# joins the same new session(s) (its first code, with its bytes, as the service passes them):
# the scripts queue them again each time, so the queue grows as under a crowd. The sale hash
# holds the figures sync writes. Needs redis-server, redis-cli, redis-benchmark, valgrind
# (callgrind_control), git and cargo.
set -eu
BEFORE=${1:?a revision to compare with}; CALLS=${2:-5000}
ROOT=$(git rev-parse --show-toplevel)
D=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$ROOT" && cargo build -q --release --example script_text)
TEXT=$ROOT/target/release/examples/script_text
"$TEXT" join_batch > "$D/after.lua"
git -C "$ROOT" show "$BEFORE:lua/common.lua" > "$D/common_before.lua"
git -C "$ROOT" show "$BEFORE:lua/join.lua" > "$D/join_before.lua"
"$TEXT" --files "$D/common_before.lua" "$D/join_before.lua" > "$D/before.lua"
echo 'return 1' > "$D/trivial.lua"

valgrind --tool=callgrind --callgrind-out-file="$D/callgrind.%p" \
  redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$D" >"$D/valgrind.log" 2>&1 &
VG=$!
trap 'redis-cli -p $PORT shutdown nosave >/dev/null 2>&1; wait $VG 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.3; done

keys=()
for k in sale qbits qcodes holds res owners done recent departed leavers wl wle wlidx wlout wlpend wlinfo; do
  keys+=("{bench}:$k")
done
# join.lua's: code, owner, qty, first (= code), owner tag, the two codes' bytes, a session made
# just now; join_batch.lua's: per buyer its first code's bytes, owner tag and qty
join_args=(0123456789abcdef0123456789abcdef o0123456789abcdef0123456 1 0123456789abcdef0123456789abcdef
  0123456789abcdef abcdefghijklmnop abcdefghijklmnop 1)
batch_args() { for _ in $(seq "$1"); do echo abcdefghijklmnop 0123456789abcdef 1; done; }

# instructions SCRIPT ARG...: Redis's instructions a call of SCRIPT with ARGs on a fresh stalled
# sale.
instructions() {
  local sha out ir script=$1
  shift
  redis-cli -p "$PORT" flushall >/dev/null
  redis-cli -p "$PORT" hset '{bench}:sale' capacity 1 sold 0 held 1 state open opens_ms 0 \
    next_lapse 99999999999999 abandon_ms 90000 waiting 1 rate_since 1 head 0 hold_ms 600000 \
    grace_ms 0 max_active 0 claim_ms 90000 seq 1 joined 1 near 1 \
    encoding 'longer than 64 bytes, so that Redis keeps this hash as a hash table (lua/common.lua)' >/dev/null
  sha=$(redis-cli -p "$PORT" -x script load < "$script")
  local call=(evalsha "$sha" 16 "${keys[@]}" "$@")
  # a first thousand (past the first NEAR places of the line), then the counted calls
  redis-benchmark -p "$PORT" -n 2000 -c 1 -P 10 -q "${call[@]}" >/dev/null
  callgrind_control -z "$VG" >/dev/null 2>&1
  redis-benchmark -p "$PORT" -n "$CALLS" -c 1 -P 10 -q "${call[@]}" >/dev/null
  callgrind_control -d "$VG" >/dev/null 2>&1
  out=$(ls -t "$D"/callgrind.* | head -1)
  ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
  rm -f "$out"
  echo $((ir / CALLS))
}
trivial=$(instructions "$D/trivial.lua" "${join_args[@]}")
before=$(instructions "$D/before.lua" "${join_args[@]}")
echo "instructions of Redis a join ($CALLS calls each):"
printf '  %-44s %8d\n' "a script that only returns (join.lua's arguments)" "$trivial"
printf '  %-44s %8d\n' "join.lua of $BEFORE, a join a call" "$before"
for k in 1 8 32; do
  # shellcheck disable=SC2046  # the arguments are words
  all=$(instructions "$D/after.lua" $(batch_args "$k"))
  printf '  %-44s %8d  (%d a call; %.3f of the join before)\n' "join_batch.lua of this tree, $k a call" \
    $((all / k)) "$all" "$(echo "scale=3; $all / $k / $before" | bc)"
done
