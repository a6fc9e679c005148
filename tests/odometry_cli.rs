//! The `pointpipe odometry` and `pointpipe demo` commands end to end.

mod common;

use std::path::Path;
use std::process::Command;

fn pointpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pointpipe"))
}

fn copy_kitti_frames(dir: &Path, names: &[&str]) -> Option<()> {
    for (i, name) in names.iter().enumerate() {
        let src = common::shared_data(&format!("kitti-raw-hdl64-5frames/{name}"))?;
        std::fs::copy(src, dir.join(format!("{:06}.bin", i * 2))).unwrap();
    }
    Some(())
}

/// A frame whose every point is inside `min_range` is empty after cropping.
fn write_empty_frame(path: &Path) {
    let bytes: Vec<u8> = [0.1f32, 0.0, 0.0, 0.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn empty_frame_is_flagged_and_corrupt_frame_stops_or_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let frames = ["0000000000.bin", "0000000001.bin", "0000000002.bin"];
    if copy_kitti_frames(dir.path(), &frames).is_none() {
        return;
    }
    write_empty_frame(&dir.path().join("000001.bin"));
    // 17 bytes: not a whole number of 16-byte KITTI points.
    std::fs::write(dir.path().join("000003.bin"), [0u8; 17]).unwrap();
    let out = dir.path().join("poses.txt");

    let stop = pointpipe()
        .args(["odometry"])
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!stop.status.success());
    let stderr = String::from_utf8_lossy(&stop.stderr);
    assert!(
        stderr.contains("000003.bin"),
        "error must name the file: {stderr}"
    );

    let skip = pointpipe()
        .args(["odometry", "--skip-bad", "--json"])
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        skip.status.success(),
        "{}",
        String::from_utf8_lossy(&skip.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&skip.stdout).unwrap();
    assert_eq!(json["frames"], 5);
    let flagged: Vec<(u64, String)> = json["flagged_frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["frame"].as_u64().unwrap(), f["status"].to_string()))
        .collect();
    assert_eq!(flagged.len(), 2, "{flagged:?}");
    assert_eq!(flagged[0].0, 1);
    assert!(flagged[0].1.contains("empty"));
    assert_eq!(flagged[1].0, 3);
    assert!(flagged[1].1.contains("unreadable"));
    let poses = pointpipe::io::poses::read_kitti_poses(&out).unwrap();
    assert_eq!(poses.len(), 5);
}

/// The README's first command: ATE ≤ 10 cm and KITTI translational error ≤ 1 %.
#[test]
fn demo_meets_its_accuracy_targets() {
    let dir = tempfile::tempdir().unwrap();
    let output = pointpipe()
        .args(["demo", "--json", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("demo: {json}");
    let ate = json["ate_m"].as_f64().unwrap();
    let kitti_t = json["kitti_t_err_pct"].as_f64().unwrap();
    assert!(ate <= 0.10, "ATE {ate} m");
    assert!(kitti_t <= 1.0, "KITTI translational error {kitti_t} %");
    assert!(dir.path().join("map.ply").is_file());
    assert_eq!(
        pointpipe::io::poses::read_kitti_poses(dir.path().join("poses.txt"))
            .unwrap()
            .len(),
        json["frames"].as_u64().unwrap() as usize
    );
}
