# Shared by side_by_side.sh, ab.sh and million.sh: the release binaries, the Python client's
# venv, a Redis server and a database of the run's own, the app on a free port, and a sale with N
# waiting buyers joined through the JSON API (join). Sourced; sets ROOT, HERE, D, PY, RP, AP, APP,
# BOX_BIN, SALE and FIXTURE, offers start_box (another instance), start_bare (bare poem) and run
# (one wrk run, with Redis's and the server's CPU per request), and cleans up on exit.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
D=$(mktemp -d); DB=blackbox_$$; APP=""; BARE=""
PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port); AP=$(free_port)

# The shop in release; nice, as they share the machine with the run.
BOX_BIN=${BOX_BIN:-$ROOT/target/release/boxoffice}
[ -x "$BOX_BIN" ] || (cd "$ROOT" && nice cargo build --release --bin boxoffice) || exit 1

# The fixture's client (aiohttp) in a venv of its own under target/.
VENV=$ROOT/target/blackbox-venv; PY=$VENV/bin/python3
if ! "$PY" -c 'import aiohttp' 2>/dev/null; then
  echo "installing aiohttp into $VENV"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet aiohttp || exit 1
fi

OTHERS=()  # further servers a bench starts (start_box), ended with the rest
cleanup() {
  for p in "$APP" "$BARE" "${OTHERS[@]}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  redis-cli -p "$RP" shutdown nosave >/dev/null 2>&1
  psql "$PG/postgres" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1
  rm -rf "$D"
}
trap cleanup EXIT

# Redis on a loopback port and on a Unix socket (RSOCK), for an instance on the same machine.
RSOCK=$D/redis.sock
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --unixsocket "$RSOCK" --unixsocketperm 700 --pidfile "$D/r.pid" --logfile "$D/r.log" --dir "$D"
for _ in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
# One client makes every request: the per-address limits are off. One secret, as a deployment
# sets it; the local beacon, so nothing reaches the internet.
export DATABASE_URL=$PG/$DB REDIS_URL=redis://127.0.0.1:$RP BOXOFFICE_ADDR=127.0.0.1:$AP \
  BOXOFFICE_RATE_JOIN_PER_MIN=0 BOXOFFICE_RATE_POLL_PER_MIN=0 BOXOFFICE_RATE_BUYER_PER_MIN=0 \
  BOXOFFICE_SECRET=blackbox-secret-blackbox-secret-0123456789 BOXOFFICE_BEACON=local RUST_LOG=warn
# start_box BIN PORT [NAME=VALUE ...]: an instance of the shop (BIN, on PORT, with the settings
# given) on the run's Redis and database; sets STARTED to its pid. The first is the app of this
# run (APP, on AP, with A_ENV's settings if any). Settings may name the run's paths, quoted:
# A_ENV='REDIS_URL=redis+unix://$RSOCK' reaches Redis by its Unix socket.
start_box() {
  local bin=$1 port=$2 log=$D/app-$2.log; shift 2
  env BOXOFFICE_ADDR=127.0.0.1:$port "$@" "$bin" serve >"$log" 2>&1 & STARTED=$!
  for _ in $(seq 120); do curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && return 0; sleep 0.5; done
  echo "the app $bin did not get ready"; cat "$log"; exit 1
}
eval "start_box \"\$BOX_BIN\" \"\$AP\" ${A_ENV:-}"; APP=$STARTED

# start_bare: bare poem answering a fixed string, in release (the baseline); sets BP and BARE.
start_bare() {
  BARE_BIN=${BARE_BIN:-$ROOT/target/blackbox/release/bare-poem}
  [ -x "$BARE_BIN" ] || nice cargo build --release --manifest-path "$HERE/bare-poem/Cargo.toml" \
    --target-dir "$ROOT/target/blackbox" || exit 1
  BP=$(free_port)
  "$BARE_BIN" "127.0.0.1:$BP" >"$D/bare.log" 2>&1 & BARE=$!
  for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$BP/bare" && break; sleep 0.1; done
}

echo "blackbox-password-$$" | "$BOX_BIN" organizer create --email bb$$@example.com >/dev/null 2>&1
TOK=$("$BOX_BIN" organizer token --email bb$$@example.com | tail -n1)
api() { curl -fsS -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' "$@"; }
field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
EV=$(api -d '{"title":"Black box","description":"speed","starts_at":"2027-06-01T20:00:00Z","ends_at":"2027-06-01T23:00:00Z","capacity":1,"price_minor":1000,"currency":"EUR"}' \
  "http://127.0.0.1:$AP/api/v1/admin/events" | field id) || exit 1
SALE=$(api -d '{"hold_secs":3600}' "http://127.0.0.1:$AP/api/v1/admin/events/$EV/sales" | field id) || exit 1
# The one ticket goes to a first buyer for an hour: everyone after waits.
curl -fsS -o /dev/null -H 'Content-Type: application/json' -d '{"quantity":1}' \
  "http://127.0.0.1:$AP/api/v1/sales/$SALE/reservations" || exit 1

redis_mem() { redis-cli -p "$RP" info memory | awk -F: '/^used_memory:/{print $2+0}'; }
# Redis's own CPU seconds so far (user + system).
redis_cpu() { redis-cli -p "$RP" info cpu | awk -F: '/^used_cpu_(sys|user):/{s+=$2} END {printf "%.6f", s}'; }

# join N: N waiting buyers through the API, in JOINERS clients at once (default 1); sets
# FIXTURE and BYTES_PER_BUYER (Redis used_memory per buyer, everything included).
join() {
  local n=$1 k=${JOINERS:-1} m0 m1 t0 t1 i pids=()
  m0=$(redis_mem); t0=$(date +%s.%N)
  for i in $(seq "$k"); do
    "$PY" "$HERE/fixture_join.py" "http://127.0.0.1:$AP" "$SALE" $(( n / k + (i <= n % k ? 1 : 0) )) "$D/fix$i.txt" >/dev/null & pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || exit 1; done
  t1=$(date +%s.%N); m1=$(redis_mem)
  cat "$D"/fix*.txt > "$D/fixture"; FIXTURE=$D/fixture
  BYTES_PER_BUYER=$(( (m1 - m0) / n ))
  echo "fixture: $(wc -l < "$FIXTURE") waiting buyers joined in $(echo "$t1 - $t0" | bc) s by the Python client;" \
    "Redis used_memory +$BYTES_PER_BUYER B a waiting buyer (everything included), $((m1 / 1048576)) MiB in all, $(redis-cli -p "$RP" dbsize) keys"
}

# CPU seconds (user + system) of process $1 so far.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
run() { # name pid url [wrk arguments]: one wrk run against the server of process pid; appends
        # "name rps p50 p99 non2xx redis_us_per_req redis_ms_per_s server_us_per_req"
  local name=$1 pid=$2 url=$3; shift 3
  local out c0 c1 s0 s1 rps p50 p99 non2 reqs
  c0=$(redis_cpu); s0=$(proc_cpu "$pid")
  out=$(wrk -t1 -c64 -d"${SECS}s" --latency "$@" "$url" 2>&1)
  c1=$(redis_cpu); s1=$(proc_cpu "$pid")
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  p50=$(echo "$out" | awk '$1=="50%"{print $2}'); p99=$(echo "$out" | awk '$1=="99%"{print $2}')
  non2=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  echo "$name $rps $p50 $p99 ${non2:-0} $(echo "scale=1; ($c1 - $c0) * 1000000 / $reqs" | bc) $(echo "scale=1; ($c1 - $c0) * 1000 / $SECS" | bc) $(echo "scale=1; ($s1 - $s0) * 1000000 / $reqs" | bc)" | tee -a "$D/results"
}
