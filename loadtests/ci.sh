#!/usr/bin/env bash
# A small load test run for CI: build the server and the load test (debug), start the server on
# a free port with a database of its own, make an organizer and a token with the CLI, run a few
# hundred buyers with short holds and compressed polling, then the sold-out scenario (the
# sold-out join the waitlist, a share of the buyers return tickets, the organizer adds seats,
# offers go down the line), then the pre-queue scenario (the crowd joins the pre-queue of a
# sale opening 15 s later, the draw places it, the checker recomputes every place from the
# published draw); then stop the server by its PID and drop the database. Exits non-zero when
# a load test fails. The server draws with the local beacon (no internet here).
#
# Arguments, when given, replace CI's runs by theirs (the host and token are set here): one
# run's options, or several runs' separated by `--then`, all against the same server one
# after the other; LOADTEST_PROFILE=release builds and runs both in release, e.g. for
# BENCHMARKS.md:
#   LOADTEST_PROFILE=release loadtests/ci.sh --buyers 2000 --capacity 100 --report-file r.html
#
# Offers to the waitlist hold their tickets for LOADTEST_OFFER_SECS (10) in this run's own
# database: the organizer API's shortest window is a minute, too long for CI, so the script sets
# the column's default for the sales the load test makes (a run's --offer-secs still wins).
set -euo pipefail
cd "$(dirname "$0")/.."

common=(--quantity 1-2 --hold-secs 2 --poll-scale 0.05
  --abandon-share 0.15 --leave-share 0.1 --max-wait-secs 120 --quiet --no-print-metrics)
runs=()
if [ $# -eq 0 ]; then
  runs+=("--buyers 300 --capacity 40 --max-active 10 ${common[*]} \
    --report-file target/loadtest-report.html --summary-file target/loadtest-summary.md")
  # Two at checkout at a time, so that the FIFO check has admissions after a wait to compare.
  runs+=("--scenario sold-out --buyers 80 --capacity 16 --max-active 2 --raise-by 10 --lapse-share 0.3 --return-share 0.3 ${common[*]} \
    --report-file target/loadtest-sold-out-report.html --summary-file target/loadtest-sold-out-summary.md")
  # Four at checkout at a time: most of the 40 seats go to buyers admitted after a wait, which
  # the drawn-order check compares (it fails when it compared nobody).
  runs+=("--scenario prequeue --prequeue-secs 15 --buyers 120 --capacity 40 --max-active 4 ${common[*]} \
    --report-file target/loadtest-prequeue-report.html --summary-file target/loadtest-prequeue-summary.md")
else
  run=""
  for arg in "$@"; do
    if [ "$arg" = --then ]; then runs+=("$run"); run=""; else run="$run $arg"; fi
  done
  runs+=("$run")
fi

profile=${LOADTEST_PROFILE:-debug}
if [ "$profile" = release ]; then
  cargo build --release -p boxoffice -p boxoffice-loadtest
else
  cargo build -p boxoffice -p boxoffice-loadtest
fi
bin=target/$profile

suffix="$(date +%s)_$RANDOM$RANDOM"
db="bo_ci_loadtest_$suffix"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
# The Postgres server, as the tests name it (TEST_POSTGRES_URL), without a database.
pg=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
export DATABASE_URL="$pg/$db"
server_pid=""

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  psql "$pg/postgres" -q -c "drop database if exists \"$db\" with (force)" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The server creates its database and runs its migrations on start; the CLI does the same.
echo "load test: organizer account in $db"
echo "loadtest-password-$suffix" | "$bin/boxoffice" organizer create --email "loadtest@example.com" >/dev/null
token=$("$bin/boxoffice" organizer token --email "loadtest@example.com" --label "ci load test")
psql "$pg/$db" -q -c "alter table ticket_sales alter column offer_secs set default ${LOADTEST_OFFER_SECS:-10}" >/dev/null

echo "load test: server on 127.0.0.1:$port"
# The whole crowd comes from this one address: the per-client limits are off for the run.
BOXOFFICE_ADDR="127.0.0.1:$port" BOXOFFICE_BEACON=local BOXOFFICE_RATE_JOIN_PER_MIN=0 BOXOFFICE_RATE_POLL_PER_MIN=0 BOXOFFICE_RATE_BUYER_PER_MIN=0 RUST_LOG=warn \
  "$bin/boxoffice" serve >"$work/server.log" 2>&1 &
server_pid=$!
ready=""
for _ in $(seq 100); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "load test: the server did not become ready" >&2
  cat "$work/server.log" >&2
  exit 1
fi

status=0
for run in "${runs[@]}"; do
  # shellcheck disable=SC2086 # each run's options are words without spaces
  BOXOFFICE_TOKEN="$token" "$bin/loadtest" --host "http://127.0.0.1:$port" $run || status=$?
done
if [ "$status" -ne 0 ]; then
  echo "load test: failed (exit $status); server log:" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
