#!/usr/bin/env bash
# Two `pointpipe serve` replicas behind HAProxy (deploy/haproxy.cfg), all on
# loopback: a load runs through HAProxy while both replicas are reloaded
# (SIGHUP) and then restarted one after the other (SIGTERM with a shutdown
# delay, then started again). Fails unless every request succeeded. Also
# prints the throughput of 2 replicas behind HAProxy against 1 replica.
#
#   deploy/replicas.sh [LOAD_SECONDS]      needs haproxy and wrk (Debian packages)
#
# Every process it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD="${1:-12}"
LAYER="${LAYER:-../shared/data/geo/geonames-cities1000.csv}"
BIN="${BIN:-target/release/pointpipe}"
export FRONT_PORT="${FRONT_PORT:-18700}" REPLICA1_PORT="${REPLICA1_PORT:-18701}" REPLICA2_PORT="${REPLICA2_PORT:-18702}"
for tool in haproxy wrk curl; do
  command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install -y haproxy wrk curl)" >&2; exit 1; }
done
[ -x "$BIN" ] || cargo build --release --locked >&2
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}" ${r1:-} ${r2:-} ${hap:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

started=""
start_replica() { # port; sets $started to the new PID
  "$BIN" serve --layer "cities=$LAYER" --addr "127.0.0.1:$1" --shutdown-delay 1 > "$work/r$1.out" 2> "$work/r$1.err" &
  started=$!
}
stop_replica() { # pid: SIGTERM, then wait until it has exited
  kill -TERM "$1"
  for _ in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "replica $1 did not exit" >&2; return 1
}
wait_ready() { # port
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "replica on port $1 not ready" >&2; cat "$work/r$1.err" >&2; return 1
}

start_replica "$REPLICA1_PORT"; r1=$started
start_replica "$REPLICA2_PORT"; r2=$started
wait_ready "$REPLICA1_PORT"; wait_ready "$REPLICA2_PORT"
haproxy -db -f deploy/haproxy.cfg > "$work/haproxy.log" 2>&1 &
hap=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$FRONT_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 1 # both servers up in HAProxy (rise 2 at 200 ms)

awk -F, 'BEGIN { srand(42) } NR > 1 && NR % 14 == 0 && n < 10000 {
    printf "/v1/layers/cities/knn?lon=%.5f&lat=%.5f&k=10\n", $2 + (rand() - 0.5) * 0.1, $1 + (rand() - 0.5) * 0.1; n++ }' "$LAYER" > "$work/paths.txt"
cat > "$work/paths.lua" <<LUA
local paths = {}
for line in io.lines("$work/paths.txt") do paths[#paths + 1] = line end
local i = 0
request = function() i = i % #paths + 1; return wrk.format("GET", paths[i]) end
LUA
errors_of() { awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$1"; }
rps_of() { awk '/^Requests\/sec/ {print $2}' "$1"; }

# 1. Throughput: one replica directly, then two behind HAProxy.
wrk -t2 -c8 -d5s -s "$work/paths.lua" "http://127.0.0.1:$REPLICA1_PORT" > "$work/one.txt"
wrk -t2 -c8 -d5s -s "$work/paths.lua" "http://127.0.0.1:$FRONT_PORT" > "$work/two.txt"
echo "1 replica direct: $(rps_of "$work/one.txt") req/s; 2 replicas behind HAProxy: $(rps_of "$work/two.txt") req/s (8 connections, 2 cores shared by all)"

# 2. Load through HAProxy while the replicas are reloaded and restarted in turn.
wrk -t2 -c8 -d"${SECONDS_LOAD}s" -s "$work/paths.lua" "http://127.0.0.1:$FRONT_PORT" > "$work/rolling.txt" &
load=$!
pids+=("$load")
sleep 1
kill -HUP "$r1"; sleep 1; kill -HUP "$r2"; sleep 1
for i in 1 2; do
  if [ "$i" = 1 ]; then pid=$r1; port=$REPLICA1_PORT; else pid=$r2; port=$REPLICA2_PORT; fi
  stop_replica "$pid"
  start_replica "$port"
  if [ "$i" = 1 ]; then r1=$started; else r2=$started; fi
  wait_ready "$port"
  sleep 1 # HAProxy sees it up again (rise 2 at 200 ms)
done
wait "$load"
requests=$(awk '/requests in/ {print $1}' "$work/rolling.txt")
errors=$(errors_of "$work/rolling.txt")
echo "rolling reload + restart of both replicas under load: $requests requests, $errors failed"
[ "$errors" = 0 ] || { cat "$work/rolling.txt" "$work/haproxy.log" >&2; exit 1; }
echo "replicas: OK"
