//! Issue 26, item 3 (output precision rule): PCD coordinates are float32
//! around a recorded local origin by default (what PCL and Open3D read), and
//! `--pcd-double` stores them as float64 (`SIZE 8`), exactly, in every
//! command that writes a cloud: convert, downsample, normals, register
//! `--out`, odometry `--map`. Crafted inputs are written by the tests into
//! temporary folders.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use nalgebra::Point3;
use pointpipe::{PointCloud, io};

fn pointpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pointpipe"))
}

/// Runs pointpipe with `args`, asserting success; returns stdout.
fn run(args: &[&std::ffi::OsStr]) -> String {
    let out = pointpipe().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The header lines of a binary PCD (up to `DATA binary`) and the offset of
/// its data.
fn pcd_header(path: &Path) -> (Vec<String>, usize) {
    let bytes = std::fs::read(path).unwrap();
    let end = bytes
        .windows(12)
        .position(|w| w == b"DATA binary\n")
        .unwrap();
    let text = String::from_utf8(bytes[..end].to_vec()).unwrap();
    (text.lines().map(str::to_string).collect(), end + 12)
}

fn header_value(lines: &[String], key: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
        .to_string()
}

/// A georeferenced-looking cloud (UTM-sized coordinates with millimetre
/// digits, too large for float32 at 1 mm): a gently curved 30 × 30 grid.
fn utm_cloud() -> PointCloud {
    PointCloud::from_points(
        (0..900)
            .map(|i| {
                let (u, v) = ((i % 30) as f64, (i / 30) as f64);
                Point3::new(
                    512_345.678 + u * 0.137,
                    4_123_456.789 + v * 0.151,
                    87.654 + 0.01 * u * v,
                )
            })
            .collect(),
    )
}

/// Asserts that `pcd` has float64 x y z, no local origin, and that its first
/// record's coordinates are bit-identical to `expected`'s first point;
/// returns the cloud read back.
fn assert_double(pcd: &Path, expected: &Point3<f64>) -> PointCloud {
    let (lines, data) = pcd_header(pcd);
    assert!(
        header_value(&lines, "SIZE ").starts_with("8 8 8"),
        "{lines:?}"
    );
    assert!(
        header_value(&lines, "TYPE ").starts_with("F F F"),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("# pointpipe origin")),
        "{lines:?}"
    );
    let bytes = std::fs::read(pcd).unwrap();
    let f =
        |k: usize| f64::from_le_bytes(bytes[data + 8 * k..data + 8 * k + 8].try_into().unwrap());
    assert_eq!([f(0), f(1), f(2)], [expected.x, expected.y, expected.z]);
    io::read(pcd).unwrap()
}

#[test]
fn convert_with_pcd_double_keeps_every_coordinate_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("utm.ply");
    let cloud = utm_cloud();
    io::write(&input, &cloud).unwrap();
    let pcd = dir.path().join("utm.pcd");
    run(&[
        "-q".as_ref(),
        "convert".as_ref(),
        "--pcd-double".as_ref(),
        input.as_os_str(),
        pcd.as_os_str(),
    ]);
    let back = assert_double(&pcd, &cloud.points[0]);
    assert_eq!(back.points, cloud.points);

    // The default: float32 around a recorded origin, within 1 mm.
    let pcd32 = dir.path().join("utm32.pcd");
    run(&[
        "-q".as_ref(),
        "convert".as_ref(),
        input.as_os_str(),
        pcd32.as_os_str(),
    ]);
    let (lines, _) = pcd_header(&pcd32);
    assert!(header_value(&lines, "SIZE ").starts_with("4 4 4"));
    assert!(lines.iter().any(|l| l.starts_with("# pointpipe origin ")));
    let back = io::read(&pcd32).unwrap();
    for (a, b) in cloud.points.iter().zip(&back.points) {
        assert!((a - b).abs().max() <= 5e-4, "{a} vs {b}");
    }
    // float32 does round them: the float64 output above is not a no-op.
    assert_ne!(back.points, cloud.points);
}

/// Georeferenced LAS (Autzen, State Plane feet, 0.01 ft scale): with
/// `--pcd-double` the PCD holds the LAS coordinates exactly.
#[test]
fn las_to_pcd_double_is_exact() {
    let Some(input) = common::shared_data("las/pdal/autzen_trim.las") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcd = dir.path().join("autzen.pcd");
    run(&[
        "-q".as_ref(),
        "convert".as_ref(),
        input.as_os_str(),
        pcd.as_os_str(),
        "--pcd-double".as_ref(),
    ]);
    let cloud = io::read(&input).unwrap();
    let back = assert_double(&pcd, &cloud.points[0]);
    assert_eq!(back.len(), 110_000);
    assert_eq!(back.points, cloud.points);
}

/// downsample, normals, register --out and odometry --map take the flag too.
#[test]
fn every_command_writing_a_cloud_takes_pcd_double() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("utm.ply");
    let cloud = utm_cloud();
    io::write(&input, &cloud).unwrap();
    let out = |name: &str| -> PathBuf { dir.path().join(name) };
    let os = |p: &PathBuf| p.as_os_str().to_owned();

    // A 5 cm grid keeps every point (they are 0.137 m apart): output = input.
    let down = out("down.pcd");
    run(&[
        "-q".as_ref(),
        "downsample".as_ref(),
        input.as_os_str(),
        &os(&down),
        "--voxel-size".as_ref(),
        "0.05".as_ref(),
        "--mode".as_ref(),
        "first".as_ref(),
        "--pcd-double".as_ref(),
    ]);
    let back = assert_double(&down, &cloud.points[0]);
    let mut got = back.points.clone();
    let mut want = cloud.points.clone();
    let key = |p: &Point3<f64>| (p.x.to_bits(), p.y.to_bits(), p.z.to_bits());
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);

    let normals = out("normals.pcd");
    run(&[
        "-q".as_ref(),
        "normals".as_ref(),
        input.as_os_str(),
        &os(&normals),
        "--knn".as_ref(),
        "8".as_ref(),
        "--pcd-double".as_ref(),
    ]);
    let back = assert_double(&normals, &cloud.points[0]);
    assert_eq!(back.points, cloud.points);
    assert!(back.normals.is_some());

    // register --evaluate identity: the aligned source is the source.
    let identity = out("identity.txt");
    std::fs::write(&identity, "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n").unwrap();
    let aligned = out("aligned.pcd");
    run(&[
        "-q".as_ref(),
        "register".as_ref(),
        input.as_os_str(),
        input.as_os_str(),
        "--voxel-size".as_ref(),
        "0.01".as_ref(),
        "--evaluate".as_ref(),
        &os(&identity),
        "--out".as_ref(),
        &os(&aligned),
        "--pcd-double".as_ref(),
    ]);
    let back = assert_double(&aligned, &cloud.points[0]);
    assert_eq!(back.points, cloud.points);

    // odometry --map over three copies of a frame: the map is written as
    // float64 PCD (its points are voxel centroids, so only the header and the
    // round trip through f64 are checked).
    let frames = out("frames");
    std::fs::create_dir(&frames).unwrap();
    let local = PointCloud::from_points(
        cloud
            .points
            .iter()
            .map(|p| Point3::new(p.x - 512_345.0, p.y - 4_123_456.0, p.z - 87.0))
            .collect(),
    );
    for i in 0..3 {
        io::write(frames.join(format!("{i:06}.ply")), &local).unwrap();
    }
    let map = out("map.pcd");
    run(&[
        "-q".as_ref(),
        "odometry".as_ref(),
        frames.as_os_str(),
        "--out".as_ref(),
        &os(&out("poses.txt")),
        "--map".as_ref(),
        &os(&map),
        "--pcd-double".as_ref(),
    ]);
    let (lines, _) = pcd_header(&map);
    assert!(
        header_value(&lines, "SIZE ").starts_with("8 8 8"),
        "{lines:?}"
    );
    assert!(!io::read(&map).unwrap().is_empty());
}
