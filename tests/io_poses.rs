//! Pose files: KITTI and TUM round trips, the real BALM trajectory and the
//! small_gicp 4×4 matrix.

mod common;

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use pointpipe::io::poses;

fn trajectory() -> Vec<Isometry3<f64>> {
    (0..50)
        .map(|i| {
            let t = i as f64 * 0.1;
            Isometry3::from_parts(
                Translation3::new(t * 3.0, t.sin(), 0.01 * t),
                UnitQuaternion::from_euler_angles(0.01 * t, -0.02 * t, 0.3 * t),
            )
        })
        .collect()
}

#[test]
fn kitti_and_tum_poses_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let traj = trajectory();
    let kitti = dir.path().join("poses.txt");
    poses::write_kitti_poses(&kitti, &traj).unwrap();
    let back = poses::read_kitti_poses(&kitti).unwrap();
    assert_eq!(back.len(), traj.len());
    for (a, b) in traj.iter().zip(&back) {
        assert!((a.translation.vector - b.translation.vector).norm() < 1e-12);
        assert!(a.rotation.angle_to(&b.rotation) < 1e-9);
    }
    let stamped: Vec<_> = traj
        .iter()
        .enumerate()
        .map(|(i, p)| (1.7e9 + i as f64 * 0.1, *p))
        .collect();
    let tum = dir.path().join("tum.txt");
    poses::write_tum_poses(&tum, &stamped).unwrap();
    let back = poses::read_tum_poses(&tum).unwrap();
    assert_eq!(back.len(), stamped.len());
    for ((ta, a), (tb, b)) in stamped.iter().zip(&back) {
        assert_eq!(ta, tb);
        assert_eq!(a.translation.vector, b.translation.vector);
        assert!(a.rotation.angle_to(&b.rotation) < 1e-12);
    }
}

#[test]
fn balm_kitti_poses_read() {
    let Some(path) = common::shared_data("balm-realworld-lidar/poses_kitti.txt") else {
        return;
    };
    let traj = poses::read_kitti_poses(path).unwrap();
    assert_eq!(traj.len(), 40);
    // MANIFEST: about 14 m at walking speed over 40 frames.
    let length: f64 = traj
        .windows(2)
        .map(|w| (w[1].translation.vector - w[0].translation.vector).norm())
        .sum();
    assert!((5.0..30.0).contains(&length), "trajectory length {length}");
}

#[test]
fn small_gicp_target_from_source_reads_as_a_rigid_transform() {
    let Some(path) = common::shared_data("hdl32-pair-small_gicp/T_target_source.txt") else {
        return;
    };
    let target_from_source = poses::read_matrix4(path).unwrap();
    let t = target_from_source.translation.vector;
    assert!((t - Vector3::new(0.488882, 0.121214, -0.0253342)).norm() < 1e-9);
    // Rotation of about 0.8° (entry 0.0121 off the diagonal).
    let angle = target_from_source.rotation.angle().to_degrees();
    assert!((0.6..1.0).contains(&angle), "{angle}");
    if let Some(other) = common::shared_data("hdl32-pair-fast_gicp/relative.txt") {
        let rel = poses::read_matrix4(other).unwrap();
        // MANIFEST: the two published estimates differ slightly.
        assert!((rel.translation.vector - t).norm() < 0.05);
    }
}
