#!/usr/bin/env bash
# Load test of `pointpipe serve` on the GeoNames layer with wrk, on loopback only:
# kNN k = 10 at 10,000 query points near populated places (seeded jitter of
# up to ±0.05° around every 14th place), at 1, 8 and 32 connections; prints
# req/s, p50, p99 and errors for each.
#
#   benches/serve/run.sh [DURATION_S]        (needs `wrk`: apt-get install wrk)
#
# Env: LAYER (default ../shared/data/geo/geonames-cities1000.csv), PORT (18181),
# BIN (default target/release/pointpipe, built if missing), K (10).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
LAYER="${LAYER:-../shared/data/geo/geonames-cities1000.csv}"
PORT="${PORT:-18181}"
K="${K:-10}"
BIN="${BIN:-target/release/pointpipe}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --locked >&2
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

# 10,000 query paths near populated places (CRLF-tolerant, seeded).
awk -F, -v k="$K" 'BEGIN { srand(42) } NR > 1 && NR % 14 == 0 && n < 10000 {
    lat = $1 + (rand() - 0.5) * 0.1; lon = $2 + (rand() - 0.5) * 0.1;
    if (lat > 90) lat = 90; if (lat < -90) lat = -90;
    if (lon > 180) lon = 180; if (lon < -180) lon = -180;
    printf "/v1/layers/cities/knn?lon=%.5f&lat=%.5f&k=%d\n", lon, lat, k; n++ }' "$LAYER" > "$work/paths.txt"
echo "queries: $(wc -l < "$work/paths.txt") paths, k = $K"

cat > "$work/paths.lua" <<LUA
local paths = {}
for line in io.lines("$work/paths.txt") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA

"$BIN" serve --layer "cities=$LAYER" --addr "127.0.0.1:$PORT" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$work/serve.err"; exit 1; }
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
echo "server pid $server, RSS after load: $((rss_kb / 1024)) MiB"

printf '%-12s %10s %10s %10s %8s\n' connections req/s p50 p99 errors
for c in 1 8 32; do
  t=$(( c < 2 ? 1 : 2 ))
  wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$work/paths.lua" "http://127.0.0.1:$PORT" > "$work/wrk.$c" 2>&1
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.$c")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.$c")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.$c")
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$work/wrk.$c")
  printf '%-12s %10s %10s %10s %8s\n' "$c" "$rps" "$p50" "$p99" "$errors"
done
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
echo "server RSS after load test: $((rss_kb / 1024)) MiB"
