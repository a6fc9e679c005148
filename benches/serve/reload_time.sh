#!/usr/bin/env bash
# Load and reload times of one layer on an idle `pointpipe serve` (loopback
# only): the first load (file read + index build, as `GET /v1/layers`
# reports them), index and attribute bytes per point, RSS, then RELOADS
# reloads one after the other (`POST .../reload`, waiting for each new
# generation), each timed by `pointpipe_last_rebuild_duration_seconds`.
#
#   benches/serve/reload_time.sh [LAYER.csv] [RELOADS]
#
# LAYER defaults to ../shared/data/geo/geonames-cities1000.csv; synthetic
# layers come from benches/serve/synthetic.sh. Env: PORT (18183), BIN,
# SERVE_ARGS (more `pointpipe serve` flags, e.g. "--rebuild-cpu-share 1").
set -euo pipefail
cd "$(dirname "$0")/../.."
LAYER="${1:-../shared/data/geo/geonames-cities1000.csv}"
RELOADS="${2:-5}"
PORT="${PORT:-18183}"
BIN="${BIN:-target/release/pointpipe}"
[ -x "$BIN" ] || cargo build --release --locked >&2
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
base="http://127.0.0.1:$PORT"
token="bench-$RANDOM$RANDOM"
printf '%s\n' "$token" > "$work/token"
"$BIN" serve --layer "s=$LAYER" --addr "127.0.0.1:$PORT" --admin-token-file "$work/token" ${SERVE_ARGS:-} \
  > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 3000); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -fs "$base/readyz" >/dev/null || { cat "$work/serve.err"; exit 1; }
field() { curl -fs "$base/v1/layers" | tr ',{}' '\n\n\n' | awk -F: -v k="\"$1\"" '$1 == k && !found {print $2; found = 1}'; }
n=$(field points)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
echo "layer $LAYER: $n points, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "first load: read $(field load_ms) ms, index $(field build_ms) ms (all cores)"
awk -v i="$(field index_bytes)" -v a="$(field attribute_bytes)" -v n="$n" -v r="$rss_kb" 'BEGIN {
  printf "index %.1f B/point, attributes %.1f B/point, RSS %.0f MiB\n", i / n, a / n, r / 1024 }'
metric() { curl -fs "$base/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" && !found {print $NF; found = 1}'; }
for i in $(seq 1 "$RELOADS"); do
  g=$(field generation)
  curl -fs -o /dev/null -X POST -H "Authorization: Bearer $token" "$base/v1/layers/s/reload"
  for _ in $(seq 1 6000); do
    [ "$(field generation)" != "$g" ] && break
    sleep 0.01
  done
  echo "reload $i: $(metric pointpipe_last_rebuild_duration_seconds) s (file read, index build, swap)"
done
