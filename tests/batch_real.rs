//! Batch on real LAS/LAZ data: every shared file, attributes and CRS kept,
//! normals as named extra bytes; and the halo test on a 2×2 cut of Autzen.

mod common;

use std::collections::HashMap;
use std::path::Path;

use nalgebra::Point3;
use pointpipe::PointCloud;
use pointpipe::batch::{BatchConfig, NoProgress, run_batch};
use pointpipe::io::las::extra_bytes::read_extra_bytes_fields;
use pointpipe::io::las::records::read_las_tile;
use pointpipe::io::las::records::{LasTileOutput, write_las_tile};
use pointpipe::normals::NormalConfig;
use pointpipe::voxel::{VoxelConfig, voxel_downsample_with_representatives};

const NORMAL_NAMES: [&str; 4] = ["NormalX", "NormalY", "NormalZ", "Curvature"];

/// The last four `f32` extra bytes of every record: normal and curvature.
fn normals_of(records: &las::PointData) -> Vec<[f32; 4]> {
    let len = records.record_len();
    records
        .raw_bytes()
        .chunks_exact(len)
        .map(|r| {
            std::array::from_fn(|k| {
                let at = len - 16 + 4 * k;
                f32::from_le_bytes(r[at..at + 4].try_into().unwrap())
            })
        })
        .collect()
}

fn crs_vlrs(header: &las::Header) -> Vec<las::Vlr> {
    header.all_vlrs().filter(|v| v.is_crs()).cloned().collect()
}

#[test]
fn all_shared_las_files() {
    let Some(dir) = common::shared_data("las") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let voxel = VoxelConfig::new(0.5);
    let config = BatchConfig {
        voxel: Some(voxel),
        normals: NormalConfig::aerial(2.0, 30),
        // The shared files overlap each other (same points in several
        // containers), so they are not a tiling: no halo.
        halo: Some(0.0),
        recursive: true,
        jobs: 2,
        ..Default::default()
    };
    let summary = run_batch(&dir, out.path(), &config, &NoProgress).unwrap();
    assert_eq!(summary.files.len(), 16);
    assert_eq!((summary.done, summary.failed), (16, 0), "{summary:#?}");

    for report in &summary.files {
        let input = read_las_tile(&report.input).unwrap();
        let output = read_las_tile(&report.output).unwrap();
        let name = report.input.display();
        // Count equals the reference voxel grid; representatives give attributes.
        let (reference, reps) = voxel_downsample_with_representatives(
            &PointCloud::from_points(input.positions.clone()),
            &voxel,
        )
        .unwrap();
        assert_eq!(output.positions.len(), reference.len(), "{name}");
        assert_eq!(report.points_out as usize, reference.len(), "{name}");
        // The stage times are measured and add up to at most the file's time.
        let st = &report.stage_seconds;
        let stages = [
            st.read,
            st.outliers,
            st.voxel,
            st.halo,
            st.normals,
            st.write,
        ];
        assert!(st.read > 0.0 && st.write > 0.0, "{name}: {st:?}");
        assert!(stages.iter().all(|s| *s >= 0.0), "{name}: {st:?}");
        assert!(
            stages.iter().sum::<f64>() <= report.seconds,
            "{name}: {st:?}"
        );
        // Version, point format, scale/offset, CRS VLRs kept.
        let (hi, ho) = (&input.header, &output.header);
        assert_eq!(hi.version(), ho.version(), "{name}");
        assert_eq!(
            hi.point_format().to_u8().unwrap(),
            ho.point_format().to_u8().unwrap(),
            "{name}"
        );
        assert_eq!(hi.transforms(), ho.transforms(), "{name}");
        assert_eq!(crs_vlrs(hi), crs_vlrs(ho), "{name}");
        // Named extra bytes, the input's own fields first.
        let fields = read_extra_bytes_fields(ho, &report.output).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names[names.len() - 4..], NORMAL_NAMES, "{name}");
        // Positions within half a scale step of the voxel centroids.
        let step = hi.transforms().x.scale.max(hi.transforms().z.scale);
        for (p, q) in output.positions.iter().zip(&reference.points) {
            assert!((p - q).amax() <= step * 0.5 + 1e-9, "{name}: {p} vs {q}");
        }
        // Every attribute byte (all but X, Y, Z) from the representative record.
        let (li, lo) = (input.records.record_len(), output.records.record_len());
        assert_eq!(lo, li + 16, "{name}");
        for (j, &r) in reps.iter().enumerate() {
            let a = &input.records.raw_bytes()[r * li + 12..(r + 1) * li];
            let b = &output.records.raw_bytes()[j * lo + 12..j * lo + li];
            assert_eq!(a, b, "{name}: record {j}");
        }
        // Normals are unit vectors or zero (no normal, NaN curvature).
        for [x, y, z, c] in normals_of(&output.records) {
            let n = (x * x + y * y + z * z).sqrt();
            assert!(
                (n - 1.0).abs() < 1e-5 || (n == 0.0 && c.is_nan()),
                "{name}: {n} {c}"
            );
        }
    }
    check_with_laspy(out.path());
}

/// An independent reader, when laspy is installed (optional outside CI).
fn check_with_laspy(dir: &Path) {
    let script = r#"
import glob, sys, laspy
files = sorted(glob.glob(sys.argv[1] + '/**/*.la[sz]', recursive=True))
for f in files:
    las = laspy.read(f)
    names = list(las.point_format.extra_dimension_names)
    assert names[-4:] == ['NormalX', 'NormalY', 'NormalZ', 'Curvature'], (f, names)
    assert len(las.NormalX) == las.header.point_count
print(len(files))
"#;
    match std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
    {
        Ok(o) if o.status.success() => {
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "16");
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("skipped: laspy not installed");
        }
        Ok(o) => panic!("laspy check failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => eprintln!("skipped: python3 not available ({e})"),
    }
}

/// Cuts Autzen into a 2×2 grid on voxel boundaries (written with our own
/// writer); batch with halo = normal radius gives the normals of the uncut file.
#[test]
fn halo_normals_equal_uncut_file() {
    let Some(path) = common::shared_data("las/pdal/autzen_trim.las") else {
        return;
    };
    // Autzen is in international feet: 2 ft voxels, 8 ft normal radius,
    // max_nn high enough that no neighbourhood is truncated (no tie-breaks).
    let voxel = VoxelConfig::new(2.0);
    let normals = NormalConfig::aerial(8.0, 100_000);
    let (cut_x, cut_y) = (636_600.0, 849_200.0); // multiples of the voxel size
    let whole = read_las_tile(&path).unwrap();
    let tiles_dir = tempfile::tempdir().unwrap();
    for (tx, ty) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let indices: Vec<usize> = (0..whole.positions.len())
            .filter(|&i| {
                let p = whole.positions[i];
                usize::from(p.x >= cut_x) == tx && usize::from(p.y >= cut_y) == ty
            })
            .collect();
        assert!(indices.len() > 1000);
        let positions: Vec<Point3<f64>> = indices.iter().map(|&i| whole.positions[i]).collect();
        let zeros = vec![nalgebra::Vector3::zeros(); indices.len()];
        let nan = vec![f64::NAN; indices.len()];
        let tile = LasTileOutput {
            header: &whole.header,
            records: &whole.records,
            representatives: &indices,
            positions: &positions,
            normals: &zeros,
            curvature: &nan,
        };
        write_las_tile(
            &tiles_dir.path().join(format!("tile_{tx}_{ty}.las")),
            &tile,
            false,
        )
        .unwrap();
    }
    let config = BatchConfig {
        voxel: Some(voxel),
        normals,
        halo: Some(8.0),
        jobs: 2,
        ..Default::default()
    };
    let tiles_out = tempfile::tempdir().unwrap();
    let s = run_batch(tiles_dir.path(), tiles_out.path(), &config, &NoProgress).unwrap();
    assert_eq!(s.done, 4, "{s:#?}");
    assert!(s.files.iter().all(|f| f.halo_points > 0));

    let whole_in = tempfile::tempdir().unwrap();
    let whole_out = tempfile::tempdir().unwrap();
    std::fs::copy(&path, whole_in.path().join("autzen.las")).unwrap();
    let s_whole = run_batch(whole_in.path(), whole_out.path(), &config, &NoProgress).unwrap();
    assert_eq!(s_whole.done, 1);
    assert_eq!(s.points_out, s_whole.points_out);

    let key = |records: &las::PointData| -> Vec<[i32; 3]> {
        records
            .x_raw()
            .zip(records.y_raw())
            .zip(records.z_raw())
            .map(|((x, y), z)| [x, y, z])
            .collect()
    };
    let uncut = read_las_tile(&whole_out.path().join("autzen.las")).unwrap();
    let uncut_normals: HashMap<[i32; 3], [f32; 4]> = key(&uncut.records)
        .into_iter()
        .zip(normals_of(&uncut.records))
        .collect();
    let mut compared = 0;
    let mut with_halo_effect = 0;
    let no_halo = BatchConfig {
        halo: Some(0.0),
        ..config.clone()
    };
    let no_halo_out = tempfile::tempdir().unwrap();
    run_batch(tiles_dir.path(), no_halo_out.path(), &no_halo, &NoProgress).unwrap();
    for f in &s.files {
        let out = read_las_tile(&f.output).unwrap();
        let plain = read_las_tile(&no_halo_out.path().join(f.output.file_name().unwrap())).unwrap();
        for ((k, n), m) in key(&out.records)
            .iter()
            .zip(normals_of(&out.records))
            .zip(normals_of(&plain.records))
        {
            let reference = uncut_normals[k];
            for c in 0..4 {
                let (a, b) = (n[c], reference[c]);
                assert!(
                    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6,
                    "{k:?}: {n:?} vs {reference:?}"
                );
            }
            if (0..3).any(|c| (m[c] - n[c]).abs() > 1e-3) {
                with_halo_effect += 1;
            }
            compared += 1;
        }
    }
    assert_eq!(compared, uncut.positions.len());
    // Without the halo, border points get different normals: the test has teeth.
    assert!(with_halo_effect > 50, "{with_halo_effect}");
}
