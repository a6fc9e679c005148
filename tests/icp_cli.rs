//! `pointpipe register ... --gt ... --json` reproduces the accuracy tests.

mod common;

use std::process::Command;

fn register_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
        .arg("register")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(report: &serde_json::Value, max_deg: f64, max_m: f64) {
    let rot = report["rotation_error_deg"].as_f64().unwrap();
    let trans = report["translation_error_m"].as_f64().unwrap();
    eprintln!("{rot}° {trans} m");
    assert_eq!(report["converged"], true);
    assert_eq!(report["degenerate"], false);
    assert!(rot <= max_deg && trans <= max_m, "{report}");
    for stage in ["downsample", "tree", "normals", "icp"] {
        assert!(report["timings_ms"][stage].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(report["target_from_source"][3][3], 1.0);
}

#[test]
fn hdl32_pair_from_the_cli() {
    let (Some(source), Some(target), Some(gt)) = (
        common::shared_data("hdl32-pair-small_gicp/source.ply"),
        common::shared_data("hdl32-pair-small_gicp/target.ply"),
        common::shared_data("hdl32-pair-small_gicp/T_target_source.txt"),
    ) else {
        return;
    };
    let report = register_json(&[
        source.as_os_str(),
        target.as_os_str(),
        "--gt".as_ref(),
        gt.as_os_str(),
    ]);
    check(&report, 0.25, 0.025);
}

#[test]
fn balm_pair_from_the_cli() {
    let (Some(source), Some(target), Some(poses)) = (
        common::shared_data("balm-realworld-lidar/full32.pcd"),
        common::shared_data("balm-realworld-lidar/full31.pcd"),
        common::shared_data("balm-realworld-lidar/poses_kitti.txt"),
    ) else {
        return;
    };
    let poses = pointpipe::io::poses::read_kitti_poses(poses).unwrap();
    let reference = (poses[11].inverse() * poses[12]).to_homogeneous();
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt.txt");
    let text: String = (0..4)
        .map(|i| {
            format!(
                "{} {} {} {}\n",
                reference[(i, 0)],
                reference[(i, 1)],
                reference[(i, 2)],
                reference[(i, 3)]
            )
        })
        .collect();
    std::fs::write(&gt, text).unwrap();
    let report = register_json(&[
        source.as_os_str(),
        target.as_os_str(),
        "--voxel-size".as_ref(),
        "0.25".as_ref(),
        "--max-correspondence-distance".as_ref(),
        "1.0".as_ref(),
        "--gt".as_ref(),
        gt.as_os_str(),
    ]);
    check(&report, 0.15, 0.02);
}

#[test]
fn bad_arguments_fail_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
        .args([
            "register",
            "/nonexistent/a.pcd",
            "/nonexistent/b.pcd",
            "--voxel-size",
            "-1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("voxel_size"));
}
