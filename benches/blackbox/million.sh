#!/usr/bin/env bash
# One box holding N waiting buyers (default 1,000,000) joined through the JSON API, polled with
# their places at about the aggregate rate such a crowd makes at the server's intervals: wrk
# connections (CONNS, 256) that think DELAY_MS (14) between polls, for SECS (30) s; 256 / 15 ms
# is about 17k polls/s, a million buyers' rate per the README's model. Prints the rate achieved,
# p50/p90/p99, Redis memory per waiting buyer and Redis CPU during the crowd.
#
#   N=200000 benches/blackbox/million.sh        # CONNS, DELAY_MS, SECS, JOINERS (2); BOX_BIN optional
#
# Needs what side_by_side.sh needs.
set -u
N=${N:-1000000}; CONNS=${CONNS:-256}; DELAY_MS=${DELAY_MS:-14}; SECS=${SECS:-30}
JOINERS=${JOINERS:-2}
. "$(dirname "$0")/lib.sh"

join "$N"
c0=$(redis_cpu)
FIXTURE=$FIXTURE DELAY_MS=$DELAY_MS PATH_KIND=fragment WITH_PLACE=1 wrk -t2 -c"$CONNS" \
  -d"${SECS}s" --latency -s "$HERE/poll_rotate.lua" "http://127.0.0.1:$AP" > "$D/wrk.txt" 2>&1
c1=$(redis_cpu)
grep -E 'requests in|Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors' "$D/wrk.txt"
echo "Redis CPU during the crowd: $(echo "scale=1; ($c1 - $c0) * 1000 / $SECS" | bc) ms/s" \
  "($(echo "scale=1; ($c1 - $c0) * 1000000 / $(awk '/requests in/{print $1}' "$D/wrk.txt")" | bc) us a poll)"
