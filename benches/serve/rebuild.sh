#!/usr/bin/env bash
# Query latency of `pointpipe serve` while a layer rebuilds in a loop, against
# the steady state, with wrk on loopback only: kNN k = 10 at 10,000 query
# points near populated places (the queries of run.sh), 8 connections.
# Alternates steady and rebuilding runs ROUNDS times and prints req/s, p50,
# p99 and errors of each, the rebuilds done and their duration.
#
#   benches/serve/rebuild.sh [DURATION_S]     (needs `wrk` and `curl`)
#
# Env: MODE=reload (default: POST /v1/layers/cities/reload every 0.5 s, each
# reload reads the file and rebuilds the index; INTERVAL=0.05 for back-to-back
# rebuilds) or MODE=points (POST one
# point every 0.1 s with --rebuild-interval 0.5: incremental rebuilds);
# LAYER (default ../shared/data/geo/geonames-cities1000.csv), PORT (18182),
# BIN (default target/release/pointpipe), ROUNDS (2), CONNECTIONS (8),
# THINK_MS (unset: each connection sends its next request at once, which
# saturates the cores; THINK_MS=1 CONNECTIONS=32 waits 1 ms between a
# connection's requests, about 20k req/s here: a service with headroom);
# SERVE_ARGS (more `pointpipe serve` flags, e.g. "--rebuild-cpu-share 1").
# The reload / point requests come from a second wrk with one connection.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
MODE="${MODE:-reload}"
LAYER="${LAYER:-../shared/data/geo/geonames-cities1000.csv}"
PORT="${PORT:-18182}"
BIN="${BIN:-target/release/pointpipe}"
ROUNDS="${ROUNDS:-2}"
C="${CONNECTIONS:-8}"
INTERVAL="${INTERVAL:-0.5}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --locked >&2
work="$(mktemp -d)"
loop=""
cleanup() {
  [ -n "$loop" ] && kill "$loop" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
base="http://127.0.0.1:$PORT"

awk -F, 'BEGIN { srand(42) } NR > 1 && NR % 14 == 0 && n < 10000 {
    lat = $1 + (rand() - 0.5) * 0.1; lon = $2 + (rand() - 0.5) * 0.1;
    if (lat > 90) lat = 90; if (lat < -90) lat = -90;
    if (lon > 180) lon = 180; if (lon < -180) lon = -180;
    printf "/v1/layers/cities/knn?lon=%.5f&lat=%.5f&k=10\n", lon, lat; n++ }' "$LAYER" > "$work/paths.txt"
cat > "$work/paths.lua" <<LUA
local paths = {}
for line in io.lines("$work/paths.txt") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA
if [ -n "${THINK_MS:-}" ]; then echo "delay = function() return $THINK_MS end" >> "$work/paths.lua"; fi
token="bench-$RANDOM$RANDOM"
printf '%s\n' "$token" > "$work/token"

"$BIN" serve --layer "cities=$LAYER" --addr "127.0.0.1:$PORT" \
  --admin-token-file "$work/token" --rebuild-interval 0.5 ${SERVE_ARGS:-} > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 600); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$base/readyz" >/dev/null || { cat "$work/serve.err"; exit 1; }

metric() { curl -fs "$base/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" && !found {print $NF; found = 1}'; }
to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.3f", v }'; }

# The rebuild requests come from one more wrk connection (no process per
# request: spawning curl ten times a second disturbed the p99 measured).
if [ "$MODE" = points ]; then every_ms=100; else every_ms=$(awk -v s="$INTERVAL" 'BEGIN {print int(s * 1000)}'); fi
cat > "$work/rebuild.lua" <<LUA
local i = 0
request = function()
  i = i + 1
  if "$MODE" == "points" then
    return wrk.format("POST", "/v1/layers/cities/points",
      { ["Authorization"] = "Bearer $token", ["Content-Type"] = "text/csv" },
      "lat,lon,name\n45.0,10.0,bench" .. i .. "\n")
  end
  return wrk.format("POST", "/v1/layers/cities/reload", { ["Authorization"] = "Bearer $token" })
end
delay = function() return $every_ms end
LUA
rebuild_loop() {
  exec wrk -t1 -c1 -d"$((DURATION + 5))s" -s "$work/rebuild.lua" "$base" > "$work/rebuild.out" 2>&1
}

echo "layer $LAYER, mode $MODE, $C connections, ${DURATION} s per run, $(nproc) cores"
printf '%-11s %10s %10s %10s %8s %9s %12s\n' run req/s p50_ms p99_ms errors rebuilds last_rebuild_s
for round in $(seq 1 "$ROUNDS"); do
  for kind in steady rebuilding; do
    before=$(metric pointpipe_rebuilds_total)
    if [ "$kind" = rebuilding ]; then rebuild_loop & loop=$!; fi
    wrk -t2 -c"$C" -d"${DURATION}s" --latency -s "$work/paths.lua" "$base" > "$work/wrk" 2>&1
    if [ -n "$loop" ]; then kill "$loop"; wait "$loop" 2>/dev/null || true; loop=""; fi
    sleep 1
    after=$(metric pointpipe_rebuilds_total)
    last=$(metric pointpipe_last_rebuild_duration_seconds)
    rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk")
    p50=$(awk '$1 == "50%" {print $2}' "$work/wrk" | to_ms)
    p99=$(awk '$1 == "99%" {print $2}' "$work/wrk" | to_ms)
    errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$work/wrk")
    printf '%-11s %10s %10s %10s %8s %9s %12s\n' "$kind" "$rps" "$p50" "$p99" "$errors" \
      "$(awk -v a="$after" -v b="$before" 'BEGIN {print a - b}')" "$last"
  done
done
