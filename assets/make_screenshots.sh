#!/usr/bin/env bash
# Regenerates the README pictures under assets/ with `pointpipe ... --screenshot`.
#
# Usage (from the repository root):
#   apt-get install -y xvfb mesa-vulkan-drivers libvulkan1   # headless rendering
#   assets/make_screenshots.sh
#
# Builds pointpipe with the `viewer` feature (release), then renders each
# picture off-screen under a virtual X display. Needs ../shared/data.
set -euo pipefail

cd "$(dirname "$0")/.."
DATA=${POINTPIPE_DATA:-../shared/data}
SIZE=${SIZE:-1280x800}

cargo build --release --features viewer
PP=target/release/pointpipe
run() { xvfb-run -a -s '-screen 0 1280x800x24' "$PP" "$@"; }

# 1. A LAS tile coloured by height (PDAL's autzen_trim.las, 110 000 points).
run view "$DATA/las/pdal/autzen_trim.las" --color height --point-size 2 \
    --size "$SIZE" --screenshot assets/las_height.png

# 2. TODO(lead): registration before/after, once `pointpipe register --view` exists, e.g.
# run register "$DATA/hdl32-pair-small_gicp/source.ply" "$DATA/hdl32-pair-small_gicp/target.ply" \
#     --view --screenshot assets/register_before_after.png

# 3. TODO(lead): odometry map with its trajectory, once `pointpipe odometry --view` exists, e.g.
# run odometry "$DATA/balm-realworld-lidar" --view --screenshot assets/odometry_map.png

ls -l assets/*.png
