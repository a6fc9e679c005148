#!/usr/bin/env bash
# Regenerates the README pictures under assets/ with `pointpipe ... --screenshot`.
#
# Usage (from the repository root):
#   apt-get install -y xvfb mesa-vulkan-drivers libvulkan1   # headless rendering
#   assets/make_screenshots.sh
#
# Builds pointpipe with the `viewer` feature (release), then renders each
# picture off-screen under a virtual X display. Needs ../shared/data
# (or POINTPIPE_DATA). Writes assets/las_height.png, assets/register_balm.png
# and assets/odometry_balm.png.
set -euo pipefail

cd "$(dirname "$0")/.."
DATA=${POINTPIPE_DATA:-../shared/data}
SIZE=${SIZE:-1280x800}
PROFILE=${PROFILE:-release}

if [ "$PROFILE" = release ]; then
    cargo build --release --features viewer
else
    cargo build --features viewer
fi
PP=target/$PROFILE/pointpipe
run() { xvfb-run -a -s '-screen 0 1280x800x24' "$PP" "$@"; }

# 1. A LAS tile coloured by height (PDAL's autzen_trim.las, 110 000 points).
run view "$DATA/las/pdal/autzen_trim.las" --color height --point-size 2 \
    --size "$SIZE" --screenshot assets/las_height.png

# 2. Registration of two consecutive BALM scans (full32 -> full31, voxel 0.25 m):
#    target grey; left: source before ICP (red), right: after ICP (green).
run -q register "$DATA/balm-realworld-lidar/full32.pcd" "$DATA/balm-realworld-lidar/full31.pcd" \
    --voxel-size 0.25 --view --screenshot assets/register_balm.png

# 3. Odometry over the 40 BALM scans: merged map (0.1 m voxels, roofs cut away),
#    trajectory (orange), last frame (yellow).
POSES=$(mktemp --suffix .txt)
run -q odometry "$DATA/balm-realworld-lidar" --out "$POSES" \
    --view --screenshot assets/odometry_balm.png
rm -f "$POSES"

ls -l assets/*.png
