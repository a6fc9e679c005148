#!/usr/bin/env python3
"""pointpipe against its Python peers, in one process, on the same arrays.

    python python/benches/side_by_side.py [--repeats N]

Times best and median of N calls (after one warm-up) at 1 thread and at all
threads where the library lets us choose, and prints ratios
(peer time / pointpipe time). Peers not installed are skipped: scipy
(cKDTree), scikit-learn (KDTree), pykdtree (threads from OMP_NUM_THREADS),
Open3D (KDTreeFlann, voxel, normals, ICP), small_gicp, KISS-ICP.
Data: ../shared/data (KITTI frame 0, BALM scans 20-29, 31, 32).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

import pointpipe

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ALL = os.cpu_count() or 1


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return min(times), statistics.median(times)


ROWS = []


def row(case, name, fn, repeats, base=None):
    try:
        best, median = timed(fn, repeats)
    except Exception as e:  # a peer's API or install problem: report, go on
        print(f"{case:<34} {name:<32} failed: {e}")
        return None
    ratio = "" if base is None else f"{best / base:8.2f}x"
    print(f"{case:<34} {name:<32} {best:10.2f} {median:10.2f} {ratio}")
    ROWS.append((case, name, best, median))
    return best


def optional(module):
    try:
        return __import__(module, fromlist=["_"])
    except Exception as e:
        print(f"(skipped {module}: {e.__class__.__name__}: {e})")
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    r = args.repeats
    spatial = optional("scipy.spatial")
    sk = optional("sklearn.neighbors")
    pyk = optional("pykdtree.kdtree")
    o3d = optional("open3d")
    sgicp = optional("small_gicp")
    kiss = optional("kiss_icp.kiss_icp")

    raw = np.fromfile(DATA / "kitti-raw-hdl64-5frames/0000000000.bin", dtype=np.float32).reshape(-1, 4)
    pts = np.ascontiguousarray(raw[:, :3], dtype=np.float64)
    small = pointpipe.voxel_downsample(pts, 0.25)
    print(f"KITTI frame: {len(pts)} points; 0.25 m cloud: {len(small)}; {ALL} cores")
    print(f"{'case':<34} {'implementation':<32} {'best ms':>10} {'median ms':>10} {'vs ours':>9}")

    # Build.
    b1 = row("build, KITTI frame, 1 thread", "pointpipe.KDTree", lambda: pointpipe.KDTree(pts, workers=1), r)
    bn = row(f"build, KITTI frame, {ALL} threads", "pointpipe.KDTree", lambda: pointpipe.KDTree(pts, workers=-1), r)
    if spatial:
        row("build, KITTI frame, 1 thread", "scipy cKDTree (leafsize 16)", lambda: spatial.cKDTree(pts), r, b1)
    if sk:
        row("build, KITTI frame, 1 thread", "sklearn KDTree (leaf_size 40)", lambda: sk.KDTree(pts), r, b1)
        row(f"build vs sklearn, {ALL} threads", "sklearn KDTree (leaf_size 40)", lambda: sk.KDTree(pts), r, bn)
    if pyk:
        row("build, KITTI frame, OMP threads", "pykdtree KDTree", lambda: pyk.KDTree(pts), r, bn)
    if o3d:
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        row("build, KITTI frame, 1 thread", "Open3D KDTreeFlann", lambda: o3d.geometry.KDTreeFlann(pcd), r, b1)

    # kNN k = 10 over all points.
    tree = pointpipe.KDTree(pts)
    k1 = row("kNN k=10 all points, 1 thread", "pointpipe.KDTree.query", lambda: tree.query(pts, k=10, workers=1), r)
    kn = row(f"kNN k=10 all points, {ALL} threads", "pointpipe.KDTree.query", lambda: tree.query(pts, k=10, workers=-1), r)
    if spatial:
        ct = spatial.cKDTree(pts)
        row("kNN k=10 all points, 1 thread", "scipy cKDTree.query", lambda: ct.query(pts, k=10, workers=1), r, k1)
        row(f"kNN k=10 all points, {ALL} threads", "scipy cKDTree.query", lambda: ct.query(pts, k=10, workers=-1), r, kn)
    if sk:
        st = sk.KDTree(pts)
        row("kNN k=10 all points, 1 thread", "sklearn KDTree.query", lambda: st.query(pts, k=10), max(1, r // 5), k1)
    if pyk:
        pt = pyk.KDTree(pts)
        row("kNN k=10 all points, OMP threads", "pykdtree query", lambda: pt.query(pts, k=10), r, kn)
    if o3d:
        flann = o3d.geometry.KDTreeFlann(pcd)
        sub = pts[::10]

        def o3d_knn():
            for q in sub:
                flann.search_knn_vector_3d(q, 10)

        best = row("kNN k=10 every 10th point, 1 thr", "Open3D KDTreeFlann (py loop)", o3d_knn, 1)
        ours = row("kNN k=10 every 10th point, 1 thr", "pointpipe.KDTree.query", lambda: tree.query(sub, k=10), r)
        if best and ours:
            print(f"{'':<34} {'ratio Open3D / ours':<32} {best / ours:10.2f}")

    # Radius 1 m on the 0.25 m cloud.
    st_small = pointpipe.KDTree(small)
    rc = row("radius 1 m counts, 0.25 m cloud, 1t", "pointpipe query_ball_point len", lambda: st_small.query_ball_point(small, 1.0, return_length=True), r)
    rl = row("radius 1 m lists, 0.25 m cloud, 1t", "pointpipe query_ball_point", lambda: st_small.query_ball_point(small, 1.0), r)
    if spatial:
        cs = spatial.cKDTree(small)
        row("radius 1 m counts, 0.25 m cloud, 1t", "scipy query_ball_point len", lambda: cs.query_ball_point(small, 1.0, return_length=True), r, rc)
        row("radius 1 m lists, 0.25 m cloud, 1t", "scipy query_ball_point", lambda: cs.query_ball_point(small, 1.0), r, rl)
    if sk:
        ss = sk.KDTree(small)
        row("radius 1 m lists, 0.25 m cloud, 1t", "sklearn query_radius", lambda: ss.query_radius(small, 1.0), r, rl)
    if o3d:
        fs = o3d.geometry.KDTreeFlann(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(small)))

        def o3d_radius():
            for q in small:
                fs.search_radius_vector_3d(q, 1.0)

        row("radius 1 m lists, 0.25 m cloud, 1t", "Open3D KDTreeFlann (py loop)", o3d_radius, max(1, r // 5), rl)

    # Voxel and normals.
    vx = row("voxel 0.25 m, KITTI frame", "pointpipe.voxel_downsample", lambda: pointpipe.voxel_downsample(pts, 0.25), r)
    nm = row("normals r=1 m nn<=30, 0.25 m cloud", "pointpipe.estimate_normals", lambda: pointpipe.estimate_normals(small, radius=1.0, max_nn=30), r)
    if o3d:
        row("voxel 0.25 m, KITTI frame", "Open3D voxel_down_sample", lambda: pcd.voxel_down_sample(0.25), r, vx)
        psmall = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(small))
        row("normals r=1 m nn<=30, 0.25 m cloud", "Open3D estimate_normals", lambda: psmall.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=1.0, max_nn=30)), r, nm)

    # Registration: BALM 32 -> 31 at 0.25 m, point-to-plane, 1 m.
    src = pointpipe.voxel_downsample(pointpipe.read(DATA / "balm-realworld-lidar/full32.pcd").points, 0.25)
    tgt = pointpipe.voxel_downsample(pointpipe.read(DATA / "balm-realworld-lidar/full31.pcd").points, 0.25)
    tn, _ = pointpipe.estimate_normals(tgt, radius=1.0, max_nn=30)
    rg = row("ICP p2plane BALM 32->31 (normals given)", "pointpipe.register", lambda: pointpipe.register(src, tgt, 1.0, target_normals=tn), r)
    if o3d:
        ps = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(src))
        pt_ = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(tgt))
        pt_.normals = o3d.utility.Vector3dVector(np.nan_to_num(tn))
        reg = o3d.pipelines.registration
        row("ICP p2plane BALM 32->31 (normals given)", "Open3D registration_icp", lambda: reg.registration_icp(ps, pt_, 1.0, np.eye(4), reg.TransformationEstimationPointToPlane(), reg.ICPConvergenceCriteria(max_iteration=30)), r, rg)
    if sgicp:
        row("ICP p2plane BALM 32->31 (own prep)", "small_gicp align (PLANE_ICP)", lambda: sgicp.align(tgt, src, registration_type="PLANE_ICP", max_correspondence_distance=1.0), r, rg)

    # Odometry over BALM scans 20-29.
    frames = [pointpipe.read(DATA / f"balm-realworld-lidar/full{i}.pcd").points for i in range(20, 30)]

    def ours_odometry():
        o = pointpipe.Odometry()
        for f in frames:
            o.register_frame(f)

    od = row("odometry BALM 20-29 (10 frames)", "pointpipe.Odometry", ours_odometry, max(1, r // 3))
    if kiss:
        from kiss_icp.config import KISSConfig

        def kiss_odometry():
            cfg = KISSConfig()
            cfg.data.max_range = 100.0
            cfg.data.min_range = 1.0
            cfg.data.deskew = False
            cfg.mapping.voxel_size = 1.0
            pipeline = kiss.KissICP(cfg)
            for f in frames:
                pipeline.register_frame(f, np.zeros(len(f)))

        row("odometry BALM 20-29 (10 frames)", "KISS-ICP (voxel 1 m)", kiss_odometry, max(1, r // 3), od)


if __name__ == "__main__":
    main()
