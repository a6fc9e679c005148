"""Open3D's half of the side-by-side comparison (see examples/side_by_side.rs).

The same three cases on the same frame, best and median of N calls:
voxel_down_sample(0.25) on the whole frame, and estimate_normals with
KDTreeSearchParamHybrid(1.0, 30) and KDTreeSearchParamKNN(20) on the 0.25 m
cloud (Open3D builds its KD tree inside estimate_normals, so the tree is
included, as in ours). Open3D anchors its voxel grid at the cloud's minimum
corner, so it keeps slightly fewer voxels (18,573 vs 18,592 on the KITTI
frame).

Setup (not needed for the tests or CI):
    apt-get install -y libusb-1.0-0 libgomp1
    python3 -m venv /tmp/o3d && /tmp/o3d/bin/pip install open3d
Run at one thread, alternating with our example:
    OMP_NUM_THREADS=1 /tmp/o3d/bin/python benches/open3d_side_by_side.py FRAME.bin [REPS]
    cargo run --release --example side_by_side -- FRAME.bin [REPS]
FRAME.bin is a KITTI velodyne frame (float32 x, y, z, intensity).
"""
import sys
import time

import numpy as np
import open3d as o3d


def best_and_median(reps, call, setup=lambda: None):
    """Best and median wall time of `reps` calls, milliseconds (setup untimed)."""
    times = []
    for _ in range(reps):
        arg = setup()
        start = time.perf_counter()
        call(arg)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[0], times[len(times) // 2]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: open3d_side_by_side.py FRAME.bin [REPS]")
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    xyz = np.fromfile(sys.argv[1], dtype=np.float32).reshape(-1, 4)[:, :3]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
    down = cloud.voxel_down_sample(0.25)
    print(f"open3d {o3d.__version__}: points {len(cloud.points)} voxels {len(down.points)}")
    best, median = best_and_median(reps, lambda _: cloud.voxel_down_sample(0.25))
    print(f"voxel 0.25 m centroid: best {best:.2f} ms median {median:.2f} ms")
    cases = [
        ("hybrid r 1.0 m / max_nn 30", o3d.geometry.KDTreeSearchParamHybrid(1.0, 30)),
        ("knn 20", o3d.geometry.KDTreeSearchParamKNN(20)),
    ]
    for name, param in cases:
        best, median = best_and_median(
            reps,
            lambda c: c.estimate_normals(param),
            setup=lambda: o3d.geometry.PointCloud(down.points),
        )
        print(f"normals {name} (tree included): best {best:.2f} ms median {median:.2f} ms")


if __name__ == "__main__":
    main()
