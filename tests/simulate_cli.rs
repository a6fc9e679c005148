//! `pointpipe simulate` writes a KITTI-layout sequence that the io module
//! reads back as the simulator produced it.

use std::process::Command;

use pointpipe::simulate::{SimulationConfig, Simulator};

#[test]
fn simulate_cli_writes_kitti_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seq");
    let status = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
        .args(["-q", "simulate"])
        .arg(&out)
        .args(["--frames", "3", "--seed", "5"])
        .status()
        .unwrap();
    assert!(status.success());

    let simulator = Simulator::new(&SimulationConfig {
        frames: 3,
        seed: 5,
        ..Default::default()
    })
    .unwrap();
    let poses = pointpipe::io::poses::read_kitti_poses(out.join("poses.txt")).unwrap();
    assert_eq!(poses.len(), 3);
    // World = first sensor frame, as in KITTI.
    let first_from_world = simulator.world_from_sensor(0).inverse();
    assert!((poses[0].to_homogeneous() - nalgebra::Matrix4::identity()).norm() < 1e-12);
    for (i, pose) in poses.iter().enumerate() {
        let truth = first_from_world * simulator.world_from_sensor(i);
        assert!((pose.to_homogeneous() - truth.to_homogeneous()).norm() < 1e-12);
    }
    let times = std::fs::read_to_string(out.join("times.txt")).unwrap();
    assert_eq!(times, "0.000000e+00\n1.000000e-01\n2.000000e-01\n");

    for i in 0..3 {
        let cloud = pointpipe::io::read(out.join(format!("velodyne/{i:06}.bin"))).unwrap();
        let expected = simulator.frame(i);
        assert_eq!(cloud.len(), expected.len());
        // KITTI .bin stores f32.
        let worst = cloud
            .points
            .iter()
            .zip(&expected.points)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "frame {i}: {worst}");
    }
}

#[test]
fn simulate_cli_rejects_zero_frames() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
        .arg("simulate")
        .arg(dir.path().join("seq"))
        .args(["--frames", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("frames"));
}
