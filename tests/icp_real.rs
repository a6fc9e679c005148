//! ICP accuracy on real scans against their reference transforms (issue 5
//! acceptance). Data from `../shared/data`; skipped when absent outside CI.

mod common;
mod icp_common;

use icp_common::{downsample, pose_error, read_cloud, with_tree_and_normals};
use nalgebra::{Isometry3, Point3, Quaternion, Translation3, UnitQuaternion, Vector3};
use pointpipe::icp::{IcpConfig, IcpMethod, RegistrationResult, RobustKernel, register};

/// Source points, target cloud with normals, its tree, reference
/// `target_from_source`.
type Pair = (
    Vec<Point3<f64>>,
    pointpipe::PointCloud,
    pointpipe::kdtree::KdTree,
    Isometry3<f64>,
);

/// BALM scans 32 (source) and 31 (target) at 0.25 m, target normals, and the
/// reference `target_from_source = pose31⁻¹ · pose32`.
fn balm_pair() -> Option<Pair> {
    let source = common::shared_data("balm-realworld-lidar/full32.pcd")?;
    let target = common::shared_data("balm-realworld-lidar/full31.pcd")?;
    let poses = common::shared_data("balm-realworld-lidar/poses_kitti.txt")?;
    let poses = pointpipe::io::poses::read_kitti_poses(poses).unwrap();
    let reference = poses[11].inverse() * poses[12];
    let source = downsample(&read_cloud(&source, 0.0), 0.25).points;
    let (target, tree) =
        with_tree_and_normals(downsample(&read_cloud(&target, 0.0), 0.25), 1.0, 30);
    Some((source, target, tree, reference))
}

fn report(name: &str, r: &RegistrationResult, truth: &Isometry3<f64>) -> (f64, f64) {
    let (rot_deg, trans_m) = pose_error(&r.target_from_source, truth);
    eprintln!(
        "{name}: {rot_deg:.4}° {:.2} mm, converged {}, {} iterations, fitness {:.3}, rmse {:.4} m, degeneracy ratio {:.2e}",
        trans_m * 1e3,
        r.converged,
        r.iterations,
        r.fitness,
        r.inlier_rmse,
        r.degeneracy_ratio
    );
    (rot_deg, trans_m)
}

#[test]
fn balm_point_to_plane_within_015_deg_and_2_cm() {
    let Some((source, target, tree, reference)) = balm_pair() else {
        return;
    };
    let r = register(
        &source,
        &target,
        &tree,
        &Isometry3::identity(),
        &IcpConfig::default(),
    )
    .unwrap();
    let (rot_deg, trans_m) = report("BALM point-to-plane", &r, &reference);
    assert!(r.converged);
    assert!(r.iterations <= 20);
    assert!(!r.degenerate);
    assert!(rot_deg <= 0.15 && trans_m <= 0.02, "{rot_deg}° {trans_m} m");
}

#[test]
fn balm_point_to_point_is_accurate_or_says_not_converged() {
    let Some((source, target, tree, reference)) = balm_pair() else {
        return;
    };
    let config = IcpConfig {
        method: IcpMethod::PointToPoint,
        max_iterations: 50,
        ..IcpConfig::default()
    };
    let r = register(&source, &target, &tree, &Isometry3::identity(), &config).unwrap();
    let (rot_deg, trans_m) = report("BALM point-to-point", &r, &reference);
    if rot_deg > 0.15 || trans_m > 0.02 {
        assert!(
            !r.converged,
            "inaccurate ({rot_deg}° {trans_m} m) but converged"
        );
    }
}

#[test]
fn hdl32_pair_within_025_deg_and_25_mm() {
    let (Some(source), Some(target), Some(reference)) = (
        common::shared_data("hdl32-pair-small_gicp/source.ply"),
        common::shared_data("hdl32-pair-small_gicp/target.ply"),
        common::shared_data("hdl32-pair-small_gicp/T_target_source.txt"),
    ) else {
        return;
    };
    let reference = pointpipe::io::poses::read_matrix4(reference).unwrap();
    // Points at the origin are invalid returns.
    let source = downsample(&read_cloud(&source, 0.5), 0.25).points;
    let (target, tree) =
        with_tree_and_normals(downsample(&read_cloud(&target, 0.5), 0.25), 1.0, 30);
    let r = register(
        &source,
        &target,
        &tree,
        &Isometry3::identity(),
        &IcpConfig::default(),
    )
    .unwrap();
    let (rot_deg, trans_m) = report("HDL-32 point-to-plane", &r, &reference);
    assert!(r.converged);
    assert!(
        rot_deg <= 0.25 && trans_m <= 0.025,
        "{rot_deg}° {trans_m} m"
    );
}

/// `common_from_scan` of a `bmesh` line: p_common = R(q)ᵀ·p + t (MANIFEST).
fn bunny_pose(conf: &str, file: &str) -> Isometry3<f64> {
    let line = conf.lines().find(|l| l.contains(file)).unwrap();
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(2)
        .map(|s| s.parse().unwrap())
        .collect();
    let q = UnitQuaternion::from_quaternion(Quaternion::new(v[6], v[3], v[4], v[5]));
    Isometry3::from_parts(Translation3::new(v[0], v[1], v[2]), q.inverse())
}

#[test]
fn bunny_from_perturbed_truth_within_01_deg_and_05_mm() {
    let (Some(source), Some(target), Some(conf)) = (
        common::shared_data("stanford-bunny-range-scans/bun045.ply"),
        common::shared_data("stanford-bunny-range-scans/bun000.ply"),
        common::shared_data("stanford-bunny-range-scans/bun_cut_dev.conf"),
    ) else {
        return;
    };
    let conf = std::fs::read_to_string(conf).unwrap();
    let truth = bunny_pose(&conf, "bun000.ply").inverse() * bunny_pose(&conf, "bun045.ply");
    let source = read_cloud(&source, 0.0).points;
    let (target, tree) = with_tree_and_normals(read_cloud(&target, 0.0), 0.005, 20);
    let perturbation = Isometry3::new(
        Vector3::new(0.005, 0.0, 0.0),
        Vector3::new(0.0, 5f64.to_radians(), 0.0),
    );
    let start = perturbation * truth;
    let config = IcpConfig {
        max_correspondence_distance: 0.02,
        kernel: RobustKernel::Huber,
        kernel_scale: 0.001,
        translation_tolerance: 1e-6,
        rotation_tolerance: 1e-6,
        max_iterations: 50,
        ..IcpConfig::default()
    };
    let r = register(&source, &target, &tree, &start, &config).unwrap();
    let (rot_deg, trans_m) = report("bunny 045 -> 000", &r, &truth);
    assert!(
        rot_deg <= 0.1 && trans_m <= 0.0005,
        "{rot_deg}° {trans_m} m"
    );
}

#[test]
fn kitti_frame_moved_10_deg_1_m_recovered_both_directions() {
    let Some(path) = common::shared_data("kitti-raw-hdl64-5frames/0000000000.bin") else {
        return;
    };
    let frame = read_cloud(&path, 3.0);
    let truth = Isometry3::new(
        Vector3::new(1.0, 0.0, 0.0),
        Vector3::new(0.0, 0.0, 10f64.to_radians()),
    );
    // Source = the frame seen from a sensor moved by `truth`, voxelised in its own grid.
    let moved = frame.transformed(&truth.inverse());
    let config = IcpConfig {
        max_correspondence_distance: 3.0,
        ..IcpConfig::default()
    };
    for (name, source, target, expected) in [
        ("KITTI moved -> original", &moved, &frame, truth),
        ("KITTI original -> moved", &frame, &moved, truth.inverse()),
    ] {
        let source = downsample(source, 0.25).points;
        let (target, tree) = with_tree_and_normals(downsample(target, 0.25), 1.0, 30);
        let r = register(&source, &target, &tree, &Isometry3::identity(), &config).unwrap();
        let (rot_deg, trans_m) = report(name, &r, &expected);
        assert!(r.converged, "{name}");
        assert!(
            rot_deg <= 0.02 && trans_m <= 0.002,
            "{name}: {rot_deg}° {trans_m} m"
        );
    }
}
