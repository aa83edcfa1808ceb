#!/usr/bin/env bash
# The shop's hot path from outside, beside a bare poem binary, in one run on this machine:
# a release binary of each, N waiting buyers (default 100,000) joined through the JSON API, then
# ROUNDS (3) alternating rounds of SECS (10) s of `wrk -t1 -c64` on: bare poem's `GET /bare`, bare
# poem under the polls' own wrk script (the baseline that costs the client what the polls cost it),
# `/healthz` (every middleware, no I/O), the waiting-room poll and the JSON poll of random
# buyers with their place (as the pages and API clients send it) and without it (every poll by
# the `status` script), and joins of new buyers (last in each round: they queue behind the
# polled buyers, whose places they do not change). Prints the median rates, their ratios
# to bare poem, Redis memory per waiting buyer, Redis CPU per request and per second, and the
# server's own CPU per request (bare poem's or the shop's process, user + system, from /proc):
# on a machine whose speed varies from one run to the next, the CPU a request costs moves less
# than the rate, which the client's share of the cores also sets.
#
#   benches/blackbox/side_by_side.sh            # N, ROUNDS, SECS; BOX_BIN, BARE_BIN optional
#   SKIP=5000 benches/blackbox/side_by_side.sh  # polls of buyers far from the head only
#
# Needs wrk, redis-server, redis-cli, psql, curl, bc, python3 (aiohttp goes into a venv under
# target/) and the local Postgres; builds the release binaries when missing.
set -u
N=${N:-100000}; ROUNDS=${ROUNDS:-3}; SECS=${SECS:-10}
. "$(dirname "$0")/lib.sh"
start_bare

join "$N"
# SKIP=K polls only the buyers after the first K joined (one joiner, the default, writes them
# in their order of arrival): those far from the head alone.
if [ -n "${SKIP:-}" ]; then tail -n +"$((SKIP + 1))" "$FIXTURE" > "$D/far"; FIXTURE=$D/far; fi
export FIXTURE SALE

echo "name rps p50 p99 non-2xx redis_us/req redis_ms/s server_us/req"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  run bare "$BARE" "http://127.0.0.1:$BP/bare"
  PATH_KIND=bare WITH_PLACE=1 run bare_scripted "$BARE" "http://127.0.0.1:$BP" -s "$HERE/poll_rotate.lua"
  run healthz "$APP" "http://127.0.0.1:$AP/healthz"
  PATH_KIND=fragment WITH_PLACE=1 run poll_fragment "$APP" "http://127.0.0.1:$AP" -s "$HERE/poll_rotate.lua"
  PATH_KIND=json WITH_PLACE=1 run poll_json "$APP" "http://127.0.0.1:$AP" -s "$HERE/poll_rotate.lua"
  PATH_KIND=fragment WITH_PLACE=0 run poll_fragment_noplace "$APP" "http://127.0.0.1:$AP" -s "$HERE/poll_rotate.lua"
  PATH_KIND=json WITH_PLACE=0 run poll_json_noplace "$APP" "http://127.0.0.1:$AP" -s "$HERE/poll_rotate.lua"
  run join "$APP" "http://127.0.0.1:$AP" -s "$HERE/join_fresh.lua"
done

echo "--- medians over the rounds"
python3 - "$D/results" "$BYTES_PER_BUYER" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    name, rps, p50, p99, non2, us, ms, server_us = line.split()
    rows.setdefault(name, []).append((float(rps), p50, p99, int(non2), float(us), float(ms), float(server_us)))
bare = st.median(r[0] for r in rows["bare"])
# /scripted: the ratio to bare poem under the same wrk script, the one the polls and joins use
scripted = st.median(r[0] for r in rows["bare_scripted"])
# bare/cpu: bare poem's CPU per request (same script) over this endpoint's, the server's and
# Redis's together: how many of this request the cores give for one of bare poem's
bare_cpu = st.median(r[6] for r in rows["bare_scripted"])
print(f"{'endpoint':22s} {'req/s':>9s} {'/bare':>6s} {'/scripted':>9s} {'p50':>8s} {'p99':>8s} {'non-2xx':>8s} {'Redis us/req':>12s} {'Redis ms/s':>10s} {'server us/req':>13s} {'bare/cpu':>8s}  runs")
for name, rs in rows.items():
    rps = st.median(r[0] for r in rs)
    mid = sorted(rs)[len(rs) // 2]
    server, redis = st.median(r[6] for r in rs), st.median(r[4] for r in rs)
    print(f"{name:22s} {rps:9.0f} {rps / bare:6.2f} {rps / scripted:9.2f} {mid[1]:>8s} {mid[2]:>8s} {sum(r[3] for r in rs):8d} "
          f"{redis:12.1f} {st.median(r[5] for r in rs):10.1f} {server:13.1f} {bare_cpu / (server + redis):8.2f}  {[round(r[0]) for r in rs]}")
print(f"Redis memory per waiting buyer (everything included): {sys.argv[2]} B")
PY
