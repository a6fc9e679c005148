#!/usr/bin/env bash
# Writes N points uniform on the sphere as a `lat,lon` CSV layer (awk,
# srand(7), 5 decimals), for the size and rebuild benchmarks.
#
#   benches/serve/synthetic.sh N OUT.csv
set -euo pipefail
N="${1:?N}"
OUT="${2:?OUT.csv}"
awk -v n="$N" 'BEGIN {
  srand(7); pi = atan2(0, -1); print "lat,lon";
  for (i = 0; i < n; i++) {
    z = 2 * rand() - 1; lat = atan2(z, sqrt(1 - z * z)) * 180 / pi;
    lon = 360 * rand() - 180;
    printf "%.5f,%.5f\n", lat, lon } }' > "$OUT"
