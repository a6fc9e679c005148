#!/usr/bin/env bash
# Issue 25's dense tile and the memory / speed figures of `pointpipe batch`
# and `pointpipe convert` on it (docs/performance.md, "Batch memory").
#
#   benches/batch_dense_tile.sh [WORKDIR]
#
# WORKDIR (default: target/dense-tile) receives:
#   in/dense.laz      10,010,000 points: 91 copies of autzen_trim.laz stacked
#                     on its extent, X/Y jittered by ±0.5, Z by ±0.1 (feet,
#                     the file's CRS units), seed 25 (examples/dense_tile.rs)
#   in4/t{0..3}.laz   four copies of it, for the 4-tiles-in-a-row RSS figure
#   out*/             the batch outputs
# Nothing is written into the repository's tracked files.
#
# Environment: PP (pointpipe binary, default target/release/pointpipe),
# DATA (default ../shared/data), RUNS (repetitions, default 3; the minimum
# wall time is the figure to quote on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-target/dense-tile}
DATA=${DATA:-../shared/data}
PP=${PP:-target/release/pointpipe}
RUNS=${RUNS:-3}
mkdir -p "$WORK/in"

if [[ ! -f $WORK/in/dense.laz ]]; then
    cargo run --release --example dense_tile -- \
        "$DATA/las/pdal/autzen_trim.laz" "$WORK/in/dense.laz" 91 0.5 0.1 25
fi
[[ -x $PP ]] || cargo build --release --bin pointpipe

POINTS=10010000
# One measured command: wall seconds, peak RSS (kB) and bytes per input point.
measure() {
    local label=$1
    shift
    local log
    log=$(mktemp)
    /usr/bin/time -v "$@" >/dev/null 2>"$log"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    printf '%-34s wall %8s  peak RSS %7.0f MB  %5.1f B/point\n' \
        "$label" "$wall" "$((rss / 1024))" "$(echo "$rss * 1024 / $POINTS" | bc -l)"
    rm -f "$log"
}

for run in $(seq "$RUNS"); do
    echo "# run $run"
    for voxel in 0.1 0.5; do
        rm -rf "$WORK/out-$voxel"
        measure "batch --jobs 1 voxel $voxel" \
            "$PP" batch "$WORK/in" "$WORK/out-$voxel" --jobs 1 --voxel-size "$voxel" \
            --normal-radius 0.5 --max-nn 30 --force
    done
    rm -f "$WORK/convert.laz"
    measure "convert LAZ -> LAZ" "$PP" convert "$WORK/in/dense.laz" "$WORK/convert.laz"
done

# Four tiles in a row in one process: the peak must be that of one tile.
mkdir -p "$WORK/in4"
for i in 0 1 2 3; do
    # Tiles far apart would need a copy with shifted headers; the same tile
    # four times overlaps entirely, so the halo is switched off (--halo 0).
    [[ -e $WORK/in4/t$i.laz ]] || ln "$WORK/in/dense.laz" "$WORK/in4/t$i.laz" 2>/dev/null ||
        cp "$WORK/in/dense.laz" "$WORK/in4/t$i.laz"
done
rm -rf "$WORK/out4"
# B/point over one tile's points: equal to the single-tile figure when the
# RSS does not grow from tile to tile.
measure "batch --jobs 1, 4 tiles in a row" \
    "$PP" batch "$WORK/in4" "$WORK/out4" --jobs 1 --voxel-size 0.1 --normal-radius 0.5 \
    --max-nn 30 --halo 0 --force
