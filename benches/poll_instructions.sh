#!/usr/bin/env bash
# What the shop's own code costs a waiting buyer's poll far from the head, counted in
# instructions rather than timed: the polls go through the whole app in one process, without
# a socket (`examples/poll_in_process.rs`: every layer, the route, the session cookie, the
# signed place, the view of the line and the answer, but no kernel and no client), under
# valgrind's callgrind, whose count is the same from one run to the next whatever else the
# machine does. Each binary runs twice, polling POLLS (2,000) and 2 x POLLS times; the figure
# is the difference divided by POLLS, so that start-up and the first polls (the line's view
# read, the caches filled) fall out. Kinds: the waiting-room fragment, the JSON poll, and /healthz (every
# layer, no handler work) as the baseline of the same run.
#
#   benches/poll_instructions.sh [EXAMPLE_BIN ...]   # default: this tree's, built in release
#   N=20000 POLLS=2000 KINDS="fragment json healthz" benches/poll_instructions.sh A B
#
# To compare a change, build `--example poll_in_process` before it, copy the binary away, and
# give both. KEEP=DIR keeps the callgrind files there, for `callgrind_annotate --inclusive=yes`
# to say where the instructions go. The counts include the example's making of each request
# (the same for every kind and binary). Needs what side_by_side.sh needs, and valgrind.
set -u
POLLS=${POLLS:-2000}; KINDS=${KINDS:-fragment json healthz}
. "$(dirname "$0")/blackbox/lib.sh"
BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then
  (cd "$ROOT" && nice cargo build -q --release --example poll_in_process) || exit 1
  BINS=("$ROOT/target/release/examples/poll_in_process")
fi
join "${N:-20000}"

# Instructions of one callgrind run of BIN polling COUNT times as KIND.
count() {
  local bin=$1 n=$2 kind=$3 out
  out=$D/cg.$RANDOM
  valgrind --tool=callgrind --toggle-collect='<poll_in_process::Counted<*' \
    --callgrind-out-file="$out" "$bin" "$FIXTURE" "$n" "$kind" >"$out.log" 2>&1 \
    || { echo "$bin $kind failed:"; tail -5 "$out.log"; exit 1; }
  [ -n "${KEEP:-}" ] && cp "$out" "$KEEP/callgrind.$kind.$n.$(basename "$bin")"
  awk '/^summary:/{print $2}' "$out"
}
printf '%-10s %12s  %s\n' kind instr/poll binary
for kind in $KINDS; do
  for bin in "${BINS[@]}"; do
    one=$(count "$bin" "$POLLS" "$kind"); two=$(count "$bin" $((2 * POLLS)) "$kind")
    printf '%-10s %12d  %s\n' "$kind" $(((two - one) / POLLS)) "$bin"
  done
done
