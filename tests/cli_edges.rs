//! Issue 26 ("nothing lost, nothing misleading"): the CLI edges every user
//! hits. One test per item (the item number is in the test's doc comment);
//! crafted inputs are written by the tests themselves into temporary folders.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nalgebra::{Isometry3, Point3, Translation3};
use pointpipe::PointCloud;

fn pointpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pointpipe"))
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    pointpipe().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A plane patch of `n × n` points with 0.1 spacing at height `z`.
fn plane(n: usize, z: f64) -> PointCloud {
    PointCloud::from_points(
        (0..n * n)
            .map(|i| Point3::new((i % n) as f64 * 0.1, (i / n) as f64 * 0.1, z))
            .collect(),
    )
}

/// A small KITTI-like frame (metres, sensor frame): a box room 10 m wide.
fn room_frame(shift: f64) -> PointCloud {
    let mut points = Vec::new();
    for i in 0..80 {
        for j in 0..20 {
            let (a, b) = (i as f64 * 0.25 - 10.0, j as f64 * 0.25);
            let c = j as f64 * 0.5 - 5.0;
            points.push(Point3::new(a - shift, 5.0, b - 1.5));
            points.push(Point3::new(a - shift, -5.0, b - 1.5));
            points.push(Point3::new(10.0 - shift, a * 0.5, b - 1.5));
            points.push(Point3::new(-9.0 - shift, a * 0.5, b - 1.5));
            points.push(Point3::new(a - shift, c, -1.5));
            // A pillar and a slanted panel break the symmetry.
            points.push(Point3::new(
                3.0 - shift + 0.3 * (a * 0.7).cos(),
                1.0 + 0.3 * (a * 0.7).sin(),
                b - 1.5,
            ));
            points.push(Point3::new(a * 0.3 - shift - 2.0, -3.0 + b * 0.4, b - 1.5));
        }
    }
    PointCloud::from_points(points)
}

fn write_frames(dir: &Path, count: usize) {
    for i in 0..count {
        pointpipe::io::write(dir.join(format!("{i:06}.bin")), &room_frame(i as f64 * 0.2)).unwrap();
    }
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Item 4: outputs get the umask's mode (0666 & !umask), not the temporary
/// file's 0600.
#[cfg(unix)]
#[test]
fn item04_outputs_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ply");
    pointpipe::io::write(&input, &plane(5, 1.0)).unwrap();
    for (umask, mode) in [("022", 0o644), ("027", 0o640)] {
        let output = dir.path().join(format!("out{umask}.pcd"));
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" convert \"$1\" \"$2\""))
            .arg(env!("CARGO_BIN_EXE_pointpipe"))
            .arg(&input)
            .arg(&output)
            .status()
            .unwrap();
        assert!(status.success());
        let got = std::fs::metadata(&output).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "umask {umask}: mode {got:o}");
    }
}

/// Item 11: `info ... | head -1` ends like every Unix tool (SIGPIPE), no
/// "failed printing to stdout" panic, no exit status 101.
#[cfg(unix)]
#[test]
fn item11_broken_pipe_is_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ply");
    pointpipe::io::write(&input, &plane(3, 1.0)).unwrap();
    // Enough output to overflow any pipe buffer.
    let mut child = pointpipe()
        .arg("info")
        .args(std::iter::repeat_n(&input, 3000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here.
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(
        out.status.signal() == Some(13) || out.status.success(),
        "{:?} {err}",
        out.status
    );
}

/// Item 12: `--out`, `--map` and `--gt` are checked before the first frame:
/// frame 1 is corrupt, so a late check would report the frame instead.
#[test]
fn item12_odometry_validates_outputs_before_the_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    write_frames(&frames, 3);
    std::fs::write(frames.join("000001.bin"), [0u8; 17]).unwrap();
    let gt = dir.path().join("gt.txt");
    pointpipe::io::poses::write_kitti_poses(&gt, &[Isometry3::identity(); 2]).unwrap();
    let good_out = dir.path().join("poses.txt");
    let cases: [(Vec<PathBuf>, &str); 3] = [
        (
            vec!["--out".into(), dir.path().join("missing/dir/poses.txt")],
            "missing",
        ),
        (
            vec![
                "--out".into(),
                good_out.clone(),
                "--map".into(),
                dir.path().join("map.xyz"),
            ],
            "map.xyz",
        ),
        (
            vec!["--out".into(), good_out.clone(), "--gt".into(), gt.clone()],
            "2 poses",
        ),
    ];
    for (args, expected) in cases {
        let out = pointpipe()
            .arg("odometry")
            .arg(&frames)
            .args(&args)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success());
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("000001.bin"), "checked too late: {err}");
    }
    assert!(!good_out.exists());
}

/// Item 12: with 1–2 frames and `--gt` the evaluation is skipped with a note.
#[test]
fn item12_short_sequence_skips_the_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 2);
    let gt = dir.path().join("gt.txt");
    let poses = [
        Isometry3::identity(),
        Isometry3::from(Translation3::new(0.2, 0.0, 0.0)),
    ];
    pointpipe::io::poses::write_kitti_poses(&gt, &poses).unwrap();
    let out = pointpipe()
        .arg("odometry")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("poses.out"))
        .arg("--gt")
        .arg(&gt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("evaluation skipped"), "{text}");
}

/// Item 10: frames that the range crop empties are flagged, the first one
/// included (the bunny scans are 0.15 m across, inside `min_range`).
#[test]
fn item10_frames_emptied_by_the_crop_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        let mut small = plane(6, 0.05);
        small.points.iter_mut().for_each(|p| p.x += i as f64 * 0.01);
        pointpipe::io::write(dir.path().join(format!("{i:06}.ply")), &small).unwrap();
    }
    let out = pointpipe()
        .args(["odometry", "--json"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("poses.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flagged = json["flagged_frames"].as_array().unwrap();
    assert_eq!(flagged.len(), 3, "{json}");
    assert!(flagged.iter().all(|f| f["status"] == "empty"), "{json}");
}

/// Item 13: `simulate` into a folder holding frames refuses (or, with
/// `--force`, removes the stale frames); `odometry --format tum` needs a
/// valid times.txt.
#[test]
fn item13_simulate_refuses_stale_frames_and_tum_needs_times() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let first = run(&[os("simulate"), sim.as_os_str(), os("--frames"), os("3")]);
    assert!(first.status.success(), "{}", stderr(&first));
    let again = run(&[os("simulate"), sim.as_os_str(), os("--frames"), os("2")]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = run(&[
        os("simulate"),
        sim.as_os_str(),
        os("--frames"),
        os("2"),
        os("--force"),
    ]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(std::fs::read_dir(sim.join("velodyne")).unwrap().count(), 2);

    // TUM output without times.txt: an error before any frame.
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    write_frames(&frames, 3);
    let out = pointpipe()
        .args(["odometry", "--format", "tum"])
        .arg(&frames)
        .arg("--out")
        .arg(dir.path().join("poses.tum"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("times.txt"), "{}", stderr(&out));
    // A times.txt of the wrong length too.
    std::fs::write(frames.join("times.txt"), "0.0\n0.1\n").unwrap();
    let out = pointpipe()
        .args(["odometry", "--format", "tum"])
        .arg(&frames)
        .arg("--out")
        .arg(dir.path().join("poses.tum"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("times.txt"), "{}", stderr(&out));
}

/// Item 13: `--gt-format tum` matches poses by timestamp, as evo does: a
/// ground truth at 20 Hz (twice the frames) evaluates the frames.
#[test]
fn item13_tum_ground_truth_is_matched_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 4);
    std::fs::write(dir.path().join("times.txt"), "0.0\n0.1\n0.2\n0.3\n").unwrap();
    let gt: Vec<(f64, Isometry3<f64>)> = (0..8)
        .map(|i| {
            (
                i as f64 * 0.05,
                Isometry3::from(Translation3::new(i as f64 * 0.1, 0.0, 0.0)),
            )
        })
        .collect();
    let gt_path = dir.path().join("gt.tum");
    pointpipe::io::poses::write_tum_poses(&gt_path, &gt).unwrap();
    let out = pointpipe()
        .args(["odometry", "--json", "--gt-format", "tum"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("poses.txt"))
        .arg("--gt")
        .arg(&gt_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Before: "ground truth has 8 poses but the sequence has 4 frames".
    let ate = json["ate_m"].as_f64().unwrap();
    assert!(ate.is_finite(), "{json}");
}

/// Item 14: messages that say what to do.
#[test]
fn item14_messages_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A single frame given to odometry.
    let frame = dir.path().join("full20.pcd");
    pointpipe::io::write(&frame, &plane(4, 1.0)).unwrap();
    let out = run(&[
        os("odometry"),
        frame.as_os_str(),
        os("--out"),
        dir.path().join("p.txt").as_os_str(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(!err.contains("UTF-8"), "{err}");
    assert!(err.contains("directory"), "{err}");

    // KITTI raw layout: velodyne_points/data/*.bin is found.
    let raw = dir.path().join("drive");
    std::fs::create_dir_all(raw.join("velodyne_points/data")).unwrap();
    write_frames(&raw.join("velodyne_points/data"), 3);
    let out = run(&[
        os("odometry"),
        raw.as_os_str(),
        os("--out"),
        dir.path().join("raw.txt").as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Frames one folder down: the error names the folder.
    let nested = dir.path().join("nested");
    std::fs::create_dir_all(nested.join("scans")).unwrap();
    write_frames(&nested.join("scans"), 1);
    let out = run(&[
        os("odometry"),
        nested.as_os_str(),
        os("--out"),
        dir.path().join("n.txt").as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("scans"), "{}", stderr(&out));

    // A negative number is a value, rejected with a clear message.
    let input = dir.path().join("in.ply");
    pointpipe::io::write(&input, &plane(5, 1.0)).unwrap();
    for args in [
        vec![os("neighbors"), input.as_os_str(), os("--radius"), os("-1")],
        vec![
            os("normals"),
            input.as_os_str(),
            dir.path().join("o.ply").as_os_str(),
            os("--radius"),
            os("-1"),
        ],
    ] {
        let out = run(&args);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(!err.contains("unexpected argument"), "{err}");
        assert!(err.contains("radius"), "{err}");
    }

    // OS errors once, without the temporary file's name.
    let out = run(&[
        os("convert"),
        input.as_os_str(),
        dir.path().join("no/such/dir/out.ply").as_os_str(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert!(!err.contains(".pointpipe-"), "{err}");

    // `view` in a build without the viewer names the feature.
    #[cfg(not(feature = "viewer"))]
    {
        let out = run(&[os("view"), input.as_os_str()]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("--features viewer"),
            "{}",
            stderr(&out)
        );
    }

    // batch explains a file that is not LAS as `info` does.
    let tiles = dir.path().join("tiles");
    std::fs::create_dir(&tiles).unwrap();
    std::fs::write(
        tiles.join("hello.las"),
        b"hello, this is not a LAS file at all",
    )
    .unwrap();
    let out = run(&[
        os("batch"),
        tiles.as_os_str(),
        dir.path().join("tiles_out").as_os_str(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(!err.contains("[104, 101"), "{err}");
    assert!(err.contains("not a LAS"), "{err}");
}

/// Item 15: nonsense parameters are refused with a message naming them.
#[test]
fn item15_nonsense_parameters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ply");
    pointpipe::io::write(&input, &plane(10, 1.0)).unwrap();
    let o = dir.path().join("o.ply");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec![os("neighbors"), input.as_os_str(), os("--k"), os("0")],
            "k",
        ),
        (
            vec![os("neighbors"), input.as_os_str(), os("--radius"), os("0")],
            "radius",
        ),
        (
            vec![os("neighbors"), input.as_os_str(), os("--max-nn"), os("0")],
            "max",
        ),
        (
            vec![
                os("normals"),
                input.as_os_str(),
                o.as_os_str(),
                os("--knn"),
                os("10"),
                os("--max-nn"),
                os("5"),
            ],
            "max-nn",
        ),
        (
            vec![
                os("normals"),
                input.as_os_str(),
                o.as_os_str(),
                os("--radius"),
                os("0.001"),
            ],
            "no point got a normal",
        ),
        (
            vec![
                os("normals"),
                input.as_os_str(),
                o.as_os_str(),
                os("--knn"),
                os("200000"),
            ],
            "k",
        ),
        (
            vec![
                os("serve"),
                os("--layer"),
                os("a=missing.csv"),
                os("--rebuild-cpu-share"),
                os("0"),
            ],
            "--rebuild-cpu-share 0: must be in (0, 1]",
        ),
        (
            vec![
                os("serve"),
                os("--layer"),
                os("a=missing.csv"),
                os("--rebuild-cpu-share"),
                os("1.5"),
            ],
            "--rebuild-cpu-share 1.5",
        ),
    ];
    for (args, expected) in cases {
        let out = run(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // An input folder without LAS/LAZ tiles is an error.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(&[
        os("batch"),
        empty.as_os_str(),
        dir.path().join("out").as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no .las or .laz"), "{}", stderr(&out));
}

/// Item 21: a directory or a dangling symlink named like a frame is not
/// skipped silently: the run stops naming it (or flags it with --skip-bad).
#[cfg(unix)]
#[test]
fn item21_odd_frame_entries_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 4);
    std::fs::create_dir(dir.path().join("000004.bin")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.bin"), dir.path().join("000005.bin")).unwrap();
    let out = pointpipe()
        .args(["odometry", "--json", "--skip-bad"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("poses.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["frames"], 6, "{json}");
    let unreadable: Vec<u64> = json["flagged_frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"].get("unreadable").is_some())
        .map(|f| f["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(unreadable, [4, 5], "{json}");
}

/// Item 5: `normals` on LAS/LAZ input orients normals up (as `batch`
/// does), not toward the CRS origin (which flipped half of an aerial tile).
#[test]
fn item05_las_normals_face_up_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut tile = plane(20, 120.0);
    for p in &mut tile.points {
        p.x += 637_000.0;
        p.y += 851_000.0;
    }
    let input = dir.path().join("tile.las");
    pointpipe::io::write(&input, &tile).unwrap();
    let output = dir.path().join("normals.ply");
    let out = run(&[
        os("normals"),
        input.as_os_str(),
        output.as_os_str(),
        os("--radius"),
        os("0.25"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cloud = pointpipe::io::read(&output).unwrap();
    let normals = cloud.normals.unwrap();
    assert!(normals.iter().all(|n| n.z > 0.99), "{:?}", &normals[..3]);
}

/// Item 6: a rerun with other parameters redoes the outputs; with the same
/// parameters it skips them.
#[test]
fn item06_batch_reruns_with_other_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let mut tile = plane(30, 10.0);
    for p in &mut tile.points {
        p.z += 0.01 * (p.x * 7.0).sin();
    }
    pointpipe::io::write(input.join("tile.las"), &tile).unwrap();
    let output = dir.path().join("out");
    let batch = |voxel: &str| {
        let out = run(&[
            os("batch"),
            input.as_os_str(),
            output.as_os_str(),
            os("--json"),
            os("--voxel-size"),
            os(voxel),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            json["done"].as_u64().unwrap(),
            json["skipped"].as_u64().unwrap(),
            pointpipe::io::read(output.join("tile.las")).unwrap().len(),
        )
    };
    let (done, skipped, fine) = batch("0.2");
    assert_eq!((done, skipped), (1, 0));
    let (done, skipped, coarse) = batch("0.5");
    assert_eq!(
        (done, skipped),
        (1, 0),
        "other parameters must redo the tile"
    );
    assert!(coarse < fine, "{coarse} vs {fine}");
    let (done, skipped, same) = batch("0.5");
    assert_eq!((done, skipped, same), (0, 1, coarse));
}

/// Three planes of a room corner, `n × n` points each, spacing 0.05.
fn corner(n: usize) -> PointCloud {
    let mut points = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (i as f64 * 0.05, j as f64 * 0.05);
            points.push(Point3::new(a, b, 0.0));
            points.push(Point3::new(a, 0.0, b + 0.05));
            points.push(Point3::new(0.0, a + 0.05, b + 0.05));
        }
    }
    PointCloud::from_points(points)
}

fn write_matrix(path: &Path, m: &nalgebra::Matrix4<f64>, rows: usize) {
    let text: String = (0..rows)
        .map(|i| format!("{} {} {} {}\n", m[(i, 0)], m[(i, 1)], m[(i, 2)], m[(i, 3)]))
        .collect();
    std::fs::write(path, text).unwrap();
}

/// Item 9: the report says what its figures are computed on; too few
/// points after the voxel grid is refused; not converging exits non-zero
/// (unless --allow-unconverged); --evaluate scores a transform without
/// moving it; --init takes a 3×4 matrix.
#[test]
fn item09_register_reports_what_it_measured() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.ply");
    let source = dir.path().join("source.ply");
    let truth = Isometry3::from(Translation3::new(0.03, -0.02, 0.01));
    let cloud = corner(40);
    pointpipe::io::write(&target, &cloud).unwrap();
    pointpipe::io::write(&source, &cloud.transformed(&truth.inverse())).unwrap();
    let register = |extra: &[&str]| {
        pointpipe()
            .arg("register")
            .arg(&source)
            .arg(&target)
            .args(["--voxel-size", "0.05", "--normal-radius", "0.2"])
            .args([
                "--max-correspondence-distance",
                "0.2",
                "--kernel-scale",
                "0.05",
            ])
            .args(extra)
            .output()
            .unwrap()
    };

    // The default voxel size 0.25 m on a 0.2 m cloud (the bunny case):
    // refused, with a suggestion.
    let small = PointCloud::from_points(cloud.points.iter().map(|p| p * 0.1).collect());
    let small_path = dir.path().join("small.ply");
    pointpipe::io::write(&small_path, &small).unwrap();
    let out = run(&[
        os("register"),
        small_path.as_os_str(),
        small_path.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too few"), "{}", stderr(&out));

    let out = register(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["converged"], true);
    assert_eq!(json["mode"], "register");
    assert!(
        json["statistics_on"].as_str().unwrap().contains("voxel"),
        "{json}"
    );
    assert_eq!(json["source_points_in"], cloud.len());

    // One iteration cannot converge: exit status 1, the report still printed.
    let out = register(&["--max-iterations", "1"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("converged: false"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("--allow-unconverged"),
        "{}",
        stderr(&out)
    );
    let out = register(&["--max-iterations", "1", "--allow-unconverged"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // --evaluate: the given transform is scored, not moved.
    let given = dir.path().join("given.txt");
    let m = Isometry3::from(Translation3::new(0.02, -0.02, 0.01)).to_homogeneous();
    write_matrix(&given, &m, 4);
    let out = register(&["--json", "--evaluate", given.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["mode"], "evaluate");
    assert_eq!(json["iterations"], 0);
    assert_eq!(json["target_from_source"][0][3].as_f64().unwrap(), 0.02);
    assert!(json["inlier_rmse_m"].as_f64().unwrap() > 0.005, "{json}");

    // --init with a 3×4 matrix.
    let init = dir.path().join("init.txt");
    write_matrix(&init, &truth.to_homogeneous(), 3);
    let out = register(&["--json", "--init", init.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `-q` means quiet: commands whose text summary only describes the work
/// done (convert, downsample, normals, batch) print nothing with it and a
/// summary without it; `--json`, an explicit request, is printed either way.
#[test]
fn quiet_commands_print_no_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plane.ply");
    pointpipe::io::write(&input, &plane(20, 1.0)).unwrap();
    let tiles = dir.path().join("tiles");
    std::fs::create_dir(&tiles).unwrap();
    pointpipe::io::write(tiles.join("t.las"), &plane(20, 1.0)).unwrap();
    let out = |name: &str| dir.path().join(name).into_os_string();
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["convert".into(), input.clone().into(), out("c.pcd")],
        vec![
            "downsample".into(),
            input.clone().into(),
            out("d.ply"),
            "--voxel-size".into(),
            "0.2".into(),
        ],
        vec![
            "normals".into(),
            input.clone().into(),
            out("n.ply"),
            "--knn".into(),
            "8".into(),
        ],
        vec![
            "batch".into(),
            tiles.clone().into(),
            out("batch"),
            "--voxel-size".into(),
            "0.1".into(),
            "--normal-radius".into(),
            "0.3".into(),
            "--force".into(),
        ],
    ];
    for args in &cases {
        let loud = pointpipe().args(args).output().unwrap();
        assert!(loud.status.success(), "{args:?}: {}", stderr(&loud));
        assert!(
            !(stdout(&loud) + &stderr(&loud)).trim().is_empty(),
            "{args:?}: no summary without -q"
        );
        let quiet = pointpipe().arg("-q").args(args).output().unwrap();
        assert!(quiet.status.success(), "{args:?}: {}", stderr(&quiet));
        assert_eq!(stdout(&quiet), "", "{args:?} -q");
        assert_eq!(stderr(&quiet), "", "{args:?} -q");
    }
    // --json is still printed with -q.
    let json = pointpipe()
        .arg("-q")
        .args(&cases[2])
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["points"], 400);
}

/// Item 8: lengths are stated in the data's unit and the metric defaults are
/// warned about. Autzen is in international feet: `batch` with its default
/// 0.5 radius leaves almost every point without a normal and says so, in
/// feet; `normals` says it once; `register` reports its lengths in feet;
/// a geographic file (degrees) is voxelised with a warning and the unit.
#[test]
fn item08_units_are_stated_and_metric_defaults_warned() {
    let (Some(autzen), Some(geographic)) = (
        common::shared_data("las/pdal/autzen_trim.las"),
        common::shared_data("las/pdal/epsg_4326.las"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tiles = dir.path().join("tiles");
    std::fs::create_dir(&tiles).unwrap();
    std::fs::copy(&autzen, tiles.join("autzen.las")).unwrap();
    let out = run(&[
        os("batch"),
        tiles.as_os_str(),
        dir.path().join("out").as_os_str(),
        os("--json"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("got no normal") && err.contains("0.5 ft"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = summary["files"][0]["warnings"].to_string();
    assert!(warnings.contains("0.5 ft"), "{summary}");

    let out = run(&[
        os("normals"),
        autzen.as_os_str(),
        dir.path().join("n.ply").as_os_str(),
        os("--radius"),
        os("0.5"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("got no normal").count(), 1, "{err}");
    assert!(err.contains("radius 0.5 ft"), "{err}");
    assert!(!err.contains('{'), "{err}");

    let out = run(&[
        os("register"),
        autzen.as_os_str(),
        autzen.as_os_str(),
        os("--voxel-size"),
        os("5"),
        os("--normal-radius"),
        os("15"),
        os("--max-correspondence-distance"),
        os("3"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(" ft,") && text.contains("(5 ft voxels"),
        "{text}"
    );
    assert!(
        !text.contains(" m,") && !text.contains(" m voxels"),
        "{text}"
    );

    let out = run(&[
        os("downsample"),
        geographic.as_os_str(),
        dir.path().join("g.ply").as_os_str(),
        os("--voxel-size"),
        os("0.1"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("geographic"), "{}", stderr(&out));
    assert!(stdout(&out).contains("0.1 deg"), "{}", stdout(&out));
}

/// Item 21: `batch` on a 0-byte tile says the file is empty (not "failed to
/// fill whole buffer") and goes on with the other tiles.
#[test]
fn item21_batch_names_an_empty_tile() {
    let dir = tempfile::tempdir().unwrap();
    let tiles = dir.path().join("tiles");
    std::fs::create_dir(&tiles).unwrap();
    std::fs::write(tiles.join("a_empty.las"), b"").unwrap();
    pointpipe::io::write(tiles.join("b_good.las"), &plane(20, 1.0)).unwrap();
    let out = run(&[
        os("batch"),
        tiles.as_os_str(),
        dir.path().join("out").as_os_str(),
        os("--normal-radius"),
        os("0.3"),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("a_empty.las: file is empty"), "{err}");
    assert!(!err.contains("fill whole buffer"), "{err}");
    assert!(
        stdout(&out).starts_with("1 done, 0 skipped, 1 failed"),
        "{}",
        stdout(&out)
    );
    assert!(dir.path().join("out/b_good.las").exists());
}
