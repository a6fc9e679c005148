//! Batch robustness through the CLI: SIGKILL mid-run then resume, and a
//! corrupt tile among good ones.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nalgebra::{Point3, Vector3};
use pointpipe::PointCloud;
use pointpipe::io::las::records::read_las_tile;
use pointpipe::io::las::records::{LasTileOutput, write_las_tile};
use pointpipe::voxel::{VoxelConfig, voxel_downsample_with_representatives};

fn pointpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pointpipe"))
}

/// `copies` jittered copies of Autzen per tile, tiles shifted apart in x.
fn write_generated_tiles(source: &Path, dir: &Path, tiles: usize, copies: usize) {
    use rand::{Rng, SeedableRng};
    let autzen = read_las_tile(source).unwrap();
    let n = autzen.positions.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for t in 0..tiles {
        let representatives: Vec<usize> = (0..copies * n).map(|i| i % n).collect();
        let positions: Vec<Point3<f64>> = representatives
            .iter()
            .map(|&i| {
                let p = autzen.positions[i];
                Point3::new(
                    p.x + 2000.0 * t as f64 + rng.random_range(-0.5..0.5),
                    p.y + rng.random_range(-0.5..0.5),
                    p.z + rng.random_range(-0.1..0.1),
                )
            })
            .collect();
        let normals = vec![Vector3::zeros(); positions.len()];
        let curvature = vec![f64::NAN; positions.len()];
        let out = LasTileOutput {
            header: &autzen.header,
            records: &autzen.records,
            representatives: &representatives,
            positions: &positions,
            normals: &normals,
            curvature: &curvature,
        };
        write_las_tile(&dir.join(format!("tile_{t:02}.las")), &out, false).unwrap();
    }
}

/// The hidden file beside `output` recording its parameters.
fn params_path(output: &Path) -> PathBuf {
    let name = output.file_name().unwrap().to_string_lossy();
    output.with_file_name(format!(".{name}.pointpipe-params"))
}

fn final_outputs(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "las"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn expected_count(input: &Path, voxel_size: f64) -> usize {
    let tile = read_las_tile(input).unwrap();
    voxel_downsample_with_representatives(
        &PointCloud::from_points(tile.positions),
        &VoxelConfig::new(voxel_size),
    )
    .unwrap()
    .0
    .len()
}

fn summary_json(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(stdout)))
}

#[test]
fn sigkill_mid_run_then_resume() {
    let Some(source) = common::shared_data("las/pdal/autzen_trim.las") else {
        return;
    };
    let input = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    let tiles = 8;
    write_generated_tiles(&source, input.path(), tiles, 3);
    let args = |cmd: &mut Command| {
        cmd.arg("-q")
            .arg("batch")
            .arg(input.path())
            .arg(output.path())
            .args([
                "--voxel-size",
                "0.1",
                "--normal-radius",
                "0.5",
                "--halo",
                "0",
            ])
            .args(["--jobs", "1", "--json"]);
    };
    let mut cmd = pointpipe();
    args(&mut cmd);
    let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while final_outputs(output.path()).is_empty() && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let before = final_outputs(output.path());
    assert!(
        !before.is_empty() && before.len() < tiles,
        "kill came too late: {}",
        before.len()
    );
    for path in before.keys() {
        let input_path = input.path().join(path.file_name().unwrap());
        let tile = read_las_tile(path).expect("no truncated output under a final name");
        assert_eq!(tile.positions.len(), expected_count(&input_path, 0.1));
    }

    // An output counts as finished once its parameter file is written beside
    // it (after the output's rename); one killed between the two is redone.
    let finished: Vec<&PathBuf> = before.keys().filter(|p| params_path(p).exists()).collect();
    let mut cmd = pointpipe();
    args(&mut cmd);
    let rerun = cmd.output().unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let summary = summary_json(&rerun.stdout);
    assert_eq!(summary["skipped"], finished.len());
    assert_eq!(summary["done"], tiles - finished.len());
    assert_eq!(summary["failed"], 0);
    for file in summary["files"].as_array().unwrap() {
        let out = PathBuf::from(file["output"].as_str().unwrap());
        let was_finished = finished.contains(&&out);
        assert_eq!(
            file["status"],
            if was_finished { "skipped" } else { "done" }
        );
    }
    let after = final_outputs(output.path());
    assert_eq!(after.len(), tiles);
    for (path, bytes) in &before {
        assert_eq!(&after[path], bytes, "an output changed between the runs");
    }
    for path in after.keys() {
        let input_path = input.path().join(path.file_name().unwrap());
        assert_eq!(
            read_las_tile(path).unwrap().positions.len(),
            expected_count(&input_path, 0.1)
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(output.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn corrupt_tile_among_good_ones() {
    let Some(good) = common::shared_data("las/laz-rs/point10.las") else {
        return;
    };
    let Some(good_laz) = common::shared_data("las/laz-rs/point-time.laz") else {
        return;
    };
    let input = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    std::fs::copy(&good, input.path().join("a_good.las")).unwrap();
    std::fs::copy(&good_laz, input.path().join("b_good.laz")).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(
        input.path().join("c_truncated.las"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    std::fs::write(
        input.path().join("d_garbage.laz"),
        b"LASF this is not a point cloud",
    )
    .unwrap();

    let run = pointpipe()
        .arg("-q")
        .arg("batch")
        .arg(input.path())
        .arg(output.path())
        .args(["--voxel-size", "0.5", "--normal-radius", "2", "--json"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let summary = summary_json(&run.stdout);
    assert_eq!(summary["done"], 2);
    assert_eq!(summary["failed"], 2);
    let files = summary["files"].as_array().unwrap();
    for (file, status, name) in [
        (&files[0], "done", "a_good.las"),
        (&files[1], "done", "b_good.laz"),
        (&files[2], "failed", "c_truncated.las"),
        (&files[3], "failed", "d_garbage.laz"),
    ] {
        assert_eq!(file["status"], status, "{file}");
        let out = output.path().join(name);
        assert_eq!(out.exists(), status == "done", "{name}");
        if status == "failed" {
            assert!(file["error"].as_str().unwrap().contains(name), "{file}");
        }
    }
    assert!(String::from_utf8_lossy(&run.stderr).contains("2 of 4 files failed"));
}

#[test]
fn refuses_output_dir_equal_to_input_dir() {
    let dir = tempfile::tempdir().unwrap();
    let run = pointpipe()
        .arg("batch")
        .arg(dir.path())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("refusing to overwrite"));
}
