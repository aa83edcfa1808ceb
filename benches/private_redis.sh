# Sourced by the bench scripts: a Redis server of their own on a free loopback port, keeping
# nothing on disk, shut down (and its scratch folder removed) on exit. Sets D (the scratch
# folder), PORT and cli (redis-cli against it), and waits until it answers.
D=$(mktemp -d); PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --pidfile "$D/r.pid" --logfile "$D/r.log" --dir "$D"
trap 'redis-cli -p $PORT shutdown nosave >/dev/null 2>&1; rm -rf "$D"' EXIT
cli() { redis-cli -p "$PORT" "$@"; }
for _ in $(seq 50); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
