//! LAS/LAZ reading and writing on the real files in `../shared/data/las`.

mod common;

use pointpipe::io::{self, Format};

/// (file, LAS version, point format, points) from `../shared/data/MANIFEST.md`.
const MANIFEST: &[(&str, &str, u8, usize)] = &[
    ("las/pdal/autzen_trim.las", "1.2", 3, 110_000),
    ("las/pdal/autzen_trim.laz", "1.2", 3, 110_000),
    ("las/pdal/autzen_trim_7.las", "1.4", 7, 110_000),
    ("las/pdal/test1_4.las", "1.4", 6, 1_000),
    ("las/pdal/mvk-thin.las", "1.2", 1, 6_280),
    ("las/pdal/epsg_4326.las", "1.2", 0, 5_380),
    ("las/laz-rs/point10.las", "1.2", 0, 1_065),
    ("las/laz-rs/point10.laz", "1.2", 0, 1_065),
    ("las/laz-rs/point-time.las", "1.2", 1, 1_065),
    ("las/laz-rs/point-time.laz", "1.2", 1, 1_065),
    ("las/laz-rs/point-color.las", "1.2", 2, 1_065),
    ("las/laz-rs/point-color.laz", "1.2", 2, 1_065),
    ("las/laz-rs/point-time-color.las", "1.2", 3, 1_065),
    ("las/laz-rs/point-time-color.laz", "1.2", 3, 1_065),
    ("las/laspy-2.7.0-sdist/simple1_3.las", "1.3", 4, 999),
    ("las/laspy-2.7.0-sdist/append-bug.laz", "1.4", 8, 37_805),
];

#[test]
fn every_manifest_las_file_reads_with_its_point_count_and_format() {
    for &(rel, version, point_format, count) in MANIFEST {
        let Some(path) = common::shared_data(rel) else {
            continue;
        };
        let (cloud, report) = io::read_with_report(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cloud.len(), count, "{rel}");
        assert_eq!(report.points_in_file, count, "{rel}");
        assert_eq!(report.dropped_non_finite, 0, "{rel}");
        let kind = if rel.ends_with(".laz") { "LAZ" } else { "LAS" };
        assert_eq!(
            report.version,
            format!("{kind} {version} point format {point_format}"),
            "{rel}"
        );
        assert!(cloud.check_lengths(), "{rel}");
        let has_time = matches!(point_format, 1 | 3 | 4 | 5 | 6..=10);
        assert_eq!(cloud.time.is_some(), has_time, "{rel}");
        let attrs = cloud
            .extras
            .las_attributes
            .as_ref()
            .expect("LAS attributes");
        assert_eq!(
            attrs.color.is_some(),
            matches!(point_format, 2 | 3 | 5 | 7 | 8 | 10),
            "{rel}"
        );
        assert!(cloud.extras.las_header.is_some());
    }
}

#[test]
fn autzen_las_laz_and_format_7_have_identical_coordinates() {
    let (Some(a), Some(b), Some(c)) = (
        common::shared_data("las/pdal/autzen_trim.las"),
        common::shared_data("las/pdal/autzen_trim.laz"),
        common::shared_data("las/pdal/autzen_trim_7.las"),
    ) else {
        return;
    };
    let a = io::read(a).unwrap();
    let b = io::read(b).unwrap();
    let c = io::read(c).unwrap();
    assert_eq!(a.points, b.points);
    assert_eq!(a.points, c.points);
    assert_eq!(a.intensity, b.intensity);
    assert_eq!(a.time, b.time);
    assert_eq!(a.extras.las_attributes, b.extras.las_attributes);
    // Point format 7 (extended layout) carries the same attributes as 3.
    let (la, lc) = (
        a.extras.las_attributes.as_ref().unwrap(),
        c.extras.las_attributes.as_ref().unwrap(),
    );
    assert_eq!(a.intensity, c.intensity);
    assert_eq!(a.time, c.time);
    assert_eq!(la.classification, lc.classification);
    assert_eq!(la.return_number, lc.return_number);
    assert_eq!(la.number_of_returns, lc.number_of_returns);
    assert_eq!(la.point_source_id, lc.point_source_id);
    assert_eq!(la.color, lc.color);
    for (x, y) in la.scan_angle.iter().zip(&lc.scan_angle) {
        assert!((x - y).abs() <= 1.0, "scan angle {x} vs {y}");
    }
    assert!(
        la.return_number.iter().any(|&r| r > 1),
        "returns 1-4 decoded"
    );
    // Autzen is in international feet around (637 000, 850 000, 400).
    let (lo, hi) = a.bounds().unwrap();
    assert!(lo.x > 630_000.0 && hi.x < 640_000.0, "{lo} {hi}");
    assert!(lo.y > 848_000.0 && hi.y < 856_000.0, "{lo} {hi}");
}

#[test]
fn crs_is_summarised() {
    if let Some(p) = common::shared_data("las/pdal/test1_4.las") {
        let (_, r) = io::read_with_report(p).unwrap();
        assert!(
            r.crs.as_deref().is_some_and(|c| c.starts_with("WKT")),
            "{:?}",
            r.crs
        );
    }
    if let Some(p) = common::shared_data("las/pdal/autzen_trim.las") {
        let (_, r) = io::read_with_report(p).unwrap();
        assert!(r.crs.is_some(), "{:?}", r.crs);
    }
}

/// Writing a cloud read from LAS keeps scale, offset, version, point format
/// and the CRS VLRs; LAS -> LAS and LAS -> LAZ give the same points back.
#[test]
fn las_round_trip_keeps_scale_offset_crs_and_attributes() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "las/pdal/autzen_trim.las",
        "las/pdal/test1_4.las",
        "las/pdal/epsg_4326.las",
        "las/laspy-2.7.0-sdist/simple1_3.las",
        "las/laspy-2.7.0-sdist/append-bug.laz",
    ] {
        let Some(path) = common::shared_data(rel) else {
            continue;
        };
        let (cloud, report) = io::read_with_report(&path).unwrap();
        let src = cloud.extras.las_header.as_ref().unwrap();
        for ext in ["las", "laz"] {
            let out = dir.path().join(format!("out.{ext}"));
            io::write(&out, &cloud).unwrap_or_else(|e| panic!("{rel} -> {ext}: {e}"));
            let (back, back_report) = io::read_with_report(&out).unwrap();
            assert_eq!(
                back_report.format,
                if ext == "las" {
                    Format::Las
                } else {
                    Format::Laz
                }
            );
            assert_eq!(back.points, cloud.points, "{rel} -> {ext}");
            assert_eq!(back.intensity, cloud.intensity, "{rel} -> {ext}");
            assert_eq!(back.time, cloud.time, "{rel} -> {ext}");
            let (a, b) = (
                cloud.extras.las_attributes.as_ref().unwrap(),
                back.extras.las_attributes.as_ref().unwrap(),
            );
            assert_eq!(a.classification, b.classification, "{rel}");
            assert_eq!(a.return_number, b.return_number, "{rel}");
            assert_eq!(a.color, b.color, "{rel}");
            let h = back.extras.las_header.as_ref().unwrap();
            assert_eq!(h.transforms(), src.transforms(), "{rel}");
            assert_eq!(h.version(), src.version(), "{rel}");
            assert_eq!(back_report.crs, report.crs, "{rel}");
        }
    }
}

#[test]
fn clouds_not_from_las_get_a_millimetre_grid_at_utm_scale() {
    let dir = tempfile::tempdir().unwrap();
    let points: Vec<_> = (0..1000)
        .map(|i| {
            let f = i as f64;
            nalgebra::Point3::new(
                400_000.0 + f * 1.234_567,
                5_000_000.0 + f * 0.987_654,
                f * 0.01,
            )
        })
        .collect();
    let cloud = pointpipe::PointCloud::from_points(points.clone());
    for ext in ["las", "laz"] {
        let out = dir.path().join(format!("utm.{ext}"));
        io::write(&out, &cloud).unwrap();
        let back = io::read(&out).unwrap();
        let h = back.extras.las_header.as_ref().unwrap();
        assert_eq!(h.transforms().y.scale, 0.001);
        assert_eq!(h.transforms().y.offset, 5_000_000.0);
        for (a, b) in points.iter().zip(&back.points) {
            assert!((a - b).abs().max() <= 0.000_5 + 1e-9, "{a} vs {b}");
        }
    }
}
