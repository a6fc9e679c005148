//! `pointpipe info` and `pointpipe convert` as a user runs them.

mod common;

use std::process::Command;

fn pointpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pointpipe"))
}

#[test]
fn info_json_reports_every_file_and_fails_at_the_end_for_a_bad_one() {
    let (Some(las), Some(pcd)) = (
        common::shared_data("las/pdal/test1_4.las"),
        common::shared_data("hdl32-pair-fast_gicp/251370668.pcd"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ply");
    std::fs::write(&bad, b"not a ply").unwrap();
    let out = pointpipe()
        .args(["info", "--json"])
        .arg(&las)
        .arg(&bad)
        .arg(&pcd)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a bad file makes the exit status non-zero"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["format"], "LAS");
    assert_eq!(lines[0]["points"], 1000);
    assert_eq!(lines[0]["dropped_non_finite"], 0);
    assert!(lines[0]["crs"].as_str().unwrap().starts_with("WKT"));
    assert_eq!(lines[0]["bounds_min"].as_array().unwrap().len(), 3);
    assert!(lines[0]["attributes"].as_array().unwrap().len() >= 6);
    assert!(lines[1]["error"].as_str().unwrap().contains("bad.ply"));
    assert_eq!(lines[2]["format"], "PCD");
    assert_eq!(lines[2]["points"], 69088);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("bad.ply"), "{stderr}");
}

#[test]
fn convert_writes_a_readable_file_and_refuses_to_overwrite_its_input() {
    let Some(src) = common::shared_data("las/laz-rs/point-time-color.laz") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.ply");
    let status = pointpipe()
        .arg("convert")
        .arg(&src)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let a = pointpipe::io::read(&src).unwrap();
    let b = pointpipe::io::read(&out).unwrap();
    assert_eq!(
        a.points, b.points,
        "UTM-scale coordinates are written as double"
    );
    let refused = pointpipe()
        .arg("convert")
        .arg(&out)
        .arg(&out)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refusing"));
}
