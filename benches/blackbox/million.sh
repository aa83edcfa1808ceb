#!/usr/bin/env bash
# One box holding N waiting buyers (default 1,000,000) joined through the JSON API, polled with
# their places at the aggregate rate such a crowd makes at the server's intervals (RATE,
# default 17,000 polls/s: a million buyers' rate per the README's model) for SECS (30) s, open
# loop: `examples/open_loop.rs` spreads the rate over CONNS (256) kept-alive connections, each
# sending its polls when due (at once when the answer before came late) and timing each from
# when it was due, so a server falling behind shows in the percentiles instead of slowing the
# client down. Prints the rate answered, p50/p90/p99/p99.9, Redis memory per
# waiting buyer and Redis CPU during the crowd.
#
#   N=200000 benches/blackbox/million.sh        # RATE, SECS, CONNS, JOINERS (2); BOX_BIN optional
#
# CLOSED=1 polls closed loop instead, as before: CONNS wrk connections that think DELAY_MS (14)
# between polls, about the same rate while the server keeps up.
#
# Needs what side_by_side.sh needs.
set -u
N=${N:-1000000}; RATE=${RATE:-17000}; SECS=${SECS:-30}; JOINERS=${JOINERS:-2}
CONNS=${CONNS:-256}; DELAY_MS=${DELAY_MS:-14}
. "$(dirname "$0")/lib.sh"
POLLER=$ROOT/target/release/examples/open_loop
if [ "${CLOSED:-0}" != 1 ] && [ ! -x "$POLLER" ]; then
  (cd "$ROOT" && nice cargo build --release --example open_loop) || exit 1
fi

join "$N"
c0=$(redis_cpu)
if [ "${CLOSED:-0}" = 1 ]; then
  FIXTURE=$FIXTURE DELAY_MS=$DELAY_MS PATH_KIND=fragment WITH_PLACE=1 wrk -t2 -c"$CONNS" \
    -d"${SECS}s" --latency -s "$HERE/poll_rotate.lua" "http://127.0.0.1:$AP" > "$D/load.txt" 2>&1
  grep -E 'requests in|Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors' "$D/load.txt"
  polls=$(awk '/requests in/{print $1}' "$D/load.txt")
else
  "$POLLER" "http://127.0.0.1:$AP" "$FIXTURE" "$RATE" "$SECS" "$CONNS" fragment > "$D/load.txt" 2>&1
  cat "$D/load.txt"
  polls=$(sed -n 's/.*; \([0-9]*\) answered.*/\1/p' "$D/load.txt")
fi
c1=$(redis_cpu)
echo "Redis CPU during the crowd: $(echo "scale=1; ($c1 - $c0) * 1000 / $SECS" | bc) ms/s" \
  "($(echo "scale=1; ($c1 - $c0) * 1000000 / ${polls:-1}" | bc) us a poll)"
