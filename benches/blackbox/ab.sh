#!/usr/bin/env bash
# Two builds of the shop in one run, for a change's before and after: both serve the same Redis
# and database (one sale, N waiting buyers joined through A), and ROUNDS (5) rounds of SECS (10) s
# of `wrk -t1 -c64` on bare poem, A and B (A before B in odd rounds, B before A in even ones, so
# that a drift of the machine's speed falls on both alike), on the endpoint KIND: `join` (a new
# buyer a request), `poll_fragment` or `poll_json` (random buyers with their place). Prints each
# run, then the medians: rate, its ratio to bare poem's in the same round, Redis's CPU and the
# server's own CPU per request, and B over A of each. On a machine whose speed moves from one
# run to the next, the CPU a request costs (server and Redis) is the steadier measure.
#
#   benches/blackbox/ab.sh A_BIN B_BIN          # KIND (join), N (10,000; polls 100,000),
#                                               # ROUNDS (5), SECS (10)
#   A_ENV=BOXOFFICE_REDIS_POOL=4 B_ENV=BOXOFFICE_REDIS_POOL=1 benches/blackbox/ab.sh BIN BIN
#                                               # one build under two settings
#   B_ENV='REDIS_URL=redis+unix://$RSOCK' benches/blackbox/ab.sh BIN BIN
#                                               # Redis by TCP (A) and by its Unix socket (B)
#
# Needs what side_by_side.sh needs.
set -u
A_BIN=${1:?the binary before}; B_BIN=${2:?the binary after}
# The polls' buyers far from the head (answered without Redis) need a line well beyond its
# first 3,048 places, as side_by_side.sh's; the joins need only someone ahead.
KIND=${KIND:-join}; ROUNDS=${ROUNDS:-5}; SECS=${SECS:-10}
if [ "$KIND" = join ]; then N=${N:-10000}; else N=${N:-100000}; fi
BOX_BIN=$A_BIN
. "$(dirname "$0")/lib.sh"
start_bare
BPORT=$(free_port); eval "start_box \"\$B_BIN\" \"\$BPORT\" ${B_ENV:-}"; B=$STARTED; OTHERS+=("$B")

join "$N"
export FIXTURE SALE
case $KIND in
  join) WRK=(-s "$HERE/join_fresh.lua") ;;
  poll_fragment) export PATH_KIND=fragment WITH_PLACE=1; WRK=(-s "$HERE/poll_rotate.lua") ;;
  poll_json) export PATH_KIND=json WITH_PLACE=1; WRK=(-s "$HERE/poll_rotate.lua") ;;
  *) echo "KIND is join, poll_fragment or poll_json"; exit 1 ;;
esac
bare() { PATH_KIND=bare WITH_PLACE=1 run "bare$1" "$BARE" "http://127.0.0.1:$BP" -s "$HERE/poll_rotate.lua"; }

echo "name rps p50 p99 non-2xx redis_us/req redis_ms/s server_us/req"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  bare "$r"
  if ((r % 2)); then
    run "A$r" "$APP" "http://127.0.0.1:$AP" "${WRK[@]}"; run "B$r" "$B" "http://127.0.0.1:$BPORT" "${WRK[@]}"
  else
    run "B$r" "$B" "http://127.0.0.1:$BPORT" "${WRK[@]}"; run "A$r" "$APP" "http://127.0.0.1:$AP" "${WRK[@]}"
  fi
done

echo "--- $KIND: medians over the rounds (ratio: to bare poem in the same round)"
python3 - "$D/results" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    name, rps, p50, p99, non2, us, ms, server_us = line.split()
    rows[name] = (float(rps), float(us), float(server_us), int(non2))
rounds = sorted({int(n[1:]) if n[0] in "AB" else int(n[4:]) for n in rows})
def col(side, i): return [rows[f"{side}{r}"][i] for r in rounds]
bare = col("bare", 0)
print(f"{'':4s} {'req/s':>9s} {'/bare':>6s} {'Redis us/req':>12s} {'server us/req':>13s} {'non-2xx':>8s}  runs")
med = {}
for side in "AB":
    rps, redis, server = col(side, 0), col(side, 1), col(side, 2)
    ratio = [a / b for a, b in zip(rps, bare)]
    med[side] = (st.median(rps), st.median(ratio), st.median(redis), st.median(server))
    print(f"{side:4s} {med[side][0]:9.0f} {med[side][1]:6.2f} {med[side][2]:12.1f} {med[side][3]:13.1f} "
          f"{sum(col(side, 3)):8.0f}  {[round(x) for x in rps]}")
print(f"{'bare':4s} {st.median(bare):9.0f}")
print(f"B/A  rate {med['B'][0] / med['A'][0]:.2f}, ratio to bare {med['B'][1] / med['A'][1]:.2f}, "
      f"Redis CPU {med['B'][2] / med['A'][2]:.2f}, server CPU {med['B'][3] / med['A'][3]:.2f}")
PY
