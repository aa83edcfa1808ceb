#!/usr/bin/env bash
# How long lua/draw.lua blocks Redis while it queues a pre-queue's drawn entries: a draw of N
# entries (default 10,000 and 100,000) queued in one call (as before the draw was split) and
# in batches of B (default 1,000, `DRAW_BATCH` in src/sale/prequeue.rs), on a redis-server of
# its own. Prints, per N and batch size, the calls made, the longest call and the sum of the
# calls: as Redis's own time in EVALSHA (INFO commandstats, reset before each call; a script
# call blocks every other client of that Redis for its whole time), and as the CPU time of
# Redis's main thread over the call (INFO cpu; on a busy machine the first also counts the
# moments another process had the core).
#
#   benches/draw_block.sh [B] [N ...]
#   BEFORE=<revision> benches/draw_block.sh [B] [N ...]
#
# With BEFORE, the one-call rows run that revision's draw.lua instead (before the split, its
# arguments were the entries alone), for the figures before and after in the same run.
#
# The sale is written straight into Redis (an open sale of 100 tickets whose draw is
# pending); the script is the service's: lua/common.lua, then lua/draw.lua. Needs
# redis-server, redis-cli and python3.
set -eu
B=${1:-1000}
shift || true
SIZES=${*:-10000 100000}
ROOT=$(git rev-parse --show-toplevel)
. "$ROOT/benches/private_redis.sh"
cat "$ROOT/lua/common.lua" "$ROOT/lua/draw.lua" > "$D/draw.lua"
if [ -n "${BEFORE:-}" ]; then
  git -C "$ROOT" show "$BEFORE:lua/common.lua" "$BEFORE:lua/draw.lua" > "$D/before.lua"
fi
printf '| entries | batch | calls | longest call ms | all calls ms | longest call CPU ms | all calls CPU ms |\n'
printf '|--:|--:|--:|--:|--:|--:|--:|\n'
for n in $SIZES; do
  for batch in "$n" "$B"; do
    script="$D/draw.lua"; before=0
    if [ "$batch" = "$n" ] && [ -n "${BEFORE:-}" ]; then script="$D/before.lua"; before=1; fi
    python3 - "$PORT" "$script" "$n" "$batch" "$before" <<'PY'
import socket, sys, time, uuid

port, script, n, batch = int(sys.argv[1]), open(sys.argv[2]).read(), int(sys.argv[3]), int(sys.argv[4])
before = sys.argv[5] == "1"  # the script before the split: the entries alone, in one call
sock = socket.create_connection(("127.0.0.1", port))
reader = sock.makefile("rb")

def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    sock.sendall(b"".join(out))
    return reply()

def reply():
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b":"):
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        return [reply() for _ in range(int(rest))]
    raise RuntimeError(line)

def cpu():
    # Redis's main thread's CPU seconds: the call's own time, without the moments this busy
    # machine gave the core to another process.
    info = dict(l.split(":", 1) for l in command("INFO", "cpu").splitlines() if ":" in l)
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])

sha = command("SCRIPT", "LOAD", script)
tag = "draw%d-%d" % (n, batch)
keys = ["bo:{%s}:%s" % (tag, k) for k in
        "sale queue holds res owners done recent departed leavers wl wle wlidx wlout wlpend wlinfo".split()]
now = int(time.time() * 1000)
command("HSET", keys[0], "capacity", 100, "sold", 0, "held", 0, "hold_ms", 600000, "grace_ms", 30000,
        "max_active", 0, "state", "open", "opens_ms", 0, "next_lapse", 0, "abandon_ms", 90000,
        "claim_ms", 90000, "waiting", 0, "rate_since", now, "seq", 0, "draw", "pending")
entries = [(uuid.uuid4().hex, "owner-%d-%s" % (i, uuid.uuid4().hex[:8]), 1) for i in range(n)]
longest, total, calls, next_place = 0, 0, 0, 0
longest_cpu, total_cpu = 0.0, 0.0
while True:
    argv = [] if before else [next_place, n]
    for code, owner, qty in entries[next_place:next_place + batch]:
        argv += [code, owner, qty]
    command("CONFIG", "RESETSTAT")
    cpu_before = cpu()
    tag_, next_place = command("EVALSHA", sha, len(keys), *keys, *argv)
    cpu_used = cpu() - cpu_before
    stats = command("INFO", "commandstats")
    usec = int(next(l for l in stats.splitlines() if l.startswith("cmdstat_evalsha:"))
               .split("usec=")[1].split(",")[0])
    longest, total, calls = max(longest, usec), total + usec, calls + 1
    longest_cpu, total_cpu = max(longest_cpu, cpu_used), total_cpu + cpu_used
    next_place = n if before else int(next_place)
    if next_place >= n:
        break
queued = int(command("ZCARD", keys[1])) + int(command("HGET", keys[0], "held"))
assert command("HGET", keys[0], "draw") == "enqueued" and queued == n, (queued, n)
print("| %d | %s | %d | %.1f | %.1f | %.1f | %.1f |" % (n, "%d (before)" % batch if before else batch, calls, longest / 1000, total / 1000,
                                                    longest_cpu * 1000, total_cpu * 1000))
PY
  done
done
