//! KITTI Velodyne scans (`.bin`): a headerless array of little-endian `f32`
//! records `x y z reflectance`, 16 bytes per point, metres in the sensor frame
//! (x forward, y left, z up), reflectance in [0, 1].
//!
//! Source: KITTI raw data devkit, `readme.txt` ("velodyne_points").

use std::io::Write;
use std::path::Path;

use nalgebra::Point3;

use super::{Format, ReadReport, atomic};
use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// Bytes per KITTI point record (4 × f32).
pub const RECORD_BYTES: usize = 16;

/// Reads a KITTI `.bin` scan. Positions go to [`PointCloud::points`],
/// reflectance to [`PointCloud::intensity`]; records with a non-finite
/// coordinate are dropped and counted.
///
/// One pass over the bytes with no per-point allocation (≥ 1 GB/s, see
/// `benches/io.rs`).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is
/// empty, its size is not a multiple of 16 bytes, or it starts with the magic
/// of another format (LAS, PLY, PCD).
pub fn read(path: &Path) -> Result<(PointCloud, ReadReport)> {
    let bytes = super::read_file(path)?;
    read_from_bytes(&bytes, path)
}

/// Reads a KITTI scan from bytes in memory; `path` only names the source in
/// errors. See [`read`].
///
/// # Errors
/// As [`read`].
pub fn read_from_bytes(bytes: &[u8], path: &Path) -> Result<(PointCloud, ReadReport)> {
    if bytes.is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    if let Some(other) = super::sniff(bytes) {
        return Err(Error::format(
            path,
            format!(
                "not a KITTI .bin scan: the content is a {} file",
                other.name()
            ),
        ));
    }
    let (records, rest) = bytes.as_chunks::<RECORD_BYTES>();
    if !rest.is_empty() {
        return Err(Error::format(
            path,
            format!(
                "size {} bytes is not a multiple of {RECORD_BYTES} (x y z reflectance as f32): \
                 truncated or not a KITTI scan",
                bytes.len()
            ),
        ));
    }
    let mut points = Vec::with_capacity(records.len());
    let mut intensity = Vec::with_capacity(records.len());
    for r in records {
        let [
            x0,
            x1,
            x2,
            x3,
            y0,
            y1,
            y2,
            y3,
            z0,
            z1,
            z2,
            z3,
            i0,
            i1,
            i2,
            i3,
        ] = *r;
        let x = f64::from(f32::from_le_bytes([x0, x1, x2, x3]));
        let y = f64::from(f32::from_le_bytes([y0, y1, y2, y3]));
        let z = f64::from(f32::from_le_bytes([z0, z1, z2, z3]));
        if super::is_finite3(x, y, z) {
            points.push(Point3::new(x, y, z));
            intensity.push(f32::from_le_bytes([i0, i1, i2, i3]));
        }
    }
    let report = ReadReport {
        format: Format::KittiBin,
        version: "KITTI bin (f32 x y z reflectance)".to_string(),
        points_in_file: records.len(),
        dropped_non_finite: records.len() - points.len(),
        crs: None,
        unit: None,
    };
    let cloud = PointCloud {
        points,
        intensity: Some(intensity),
        ..Default::default()
    };
    Ok((cloud, report))
}

/// Writes `cloud` as a KITTI `.bin` scan, atomically: positions rounded to
/// `f32` (about 4 µm resolution at 50 m, 0.5 mm at 8 km; a warning is logged
/// when that rounding exceeds half the data's precision,
/// [`super::data_precision`]), intensity as reflectance in [0, 1]: LAS
/// intensities (a cloud read from LAS, or any value above 1) are divided by
/// 65535 and clamped, so KITTI → LAS → KITTI gives the reflectance back
/// (within 1/65535); 0 when the cloud has none. Every other attribute is
/// lost (the format has no other field).
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write(path: &Path, cloud: &PointCloud) -> Result<()> {
    let precision = super::data_precision(cloud);
    let extent = super::max_abs(cloud, &nalgebra::Vector3::zeros());
    if extent > super::f32_limit(precision) {
        log::warn!(
            "{}: KITTI .bin stores float32 coordinates: they round by up to {:.3e}, more than \
             half the data's precision {precision:e}",
            path.display(),
            extent * f64::powi(2.0, -24)
        );
    }
    let scale = match &cloud.intensity {
        Some(v) if cloud.extras.las_header.is_some() || v.iter().any(|&x| x > 1.0) => 1.0 / 65535.0,
        _ => 1.0,
    };
    let mut bytes = Vec::with_capacity(cloud.len() * RECORD_BYTES);
    for (i, p) in cloud.points.iter().enumerate() {
        let reflectance = cloud.intensity.as_ref().map_or(0.0, |v| {
            if scale == 1.0 {
                v[i]
            } else {
                (v[i] * scale).clamp(0.0, 1.0)
            }
        });
        for v in [p.x as f32, p.y as f32, p.z as f32, reflectance] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    atomic::write_atomic(path, |out| {
        out.write_all(&bytes).map_err(atomic::io_err(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v: [f32; 4]) -> Vec<u8> {
        v.iter().flat_map(|f| f.to_le_bytes()).collect()
    }

    #[test]
    fn nan_points_are_dropped_and_counted() {
        let mut bytes = record([1.0, 2.0, 3.0, 0.5]);
        bytes.extend(record([f32::NAN, 0.0, 0.0, 0.1]));
        bytes.extend(record([0.0, f32::INFINITY, 0.0, 0.1]));
        bytes.extend(record([4.0, 5.0, 6.0, 0.25]));
        let (cloud, report) = read_from_bytes(&bytes, Path::new("t.bin")).unwrap();
        assert_eq!(report.points_in_file, 4);
        assert_eq!(report.dropped_non_finite, 2);
        assert_eq!(
            cloud.points,
            vec![Point3::new(1.0, 2.0, 3.0), Point3::new(4.0, 5.0, 6.0)]
        );
        assert_eq!(cloud.intensity, Some(vec![0.5, 0.25]));
    }

    #[test]
    fn bad_sizes_and_foreign_magic_are_errors() {
        let p = Path::new("t.bin");
        assert!(read_from_bytes(&[], p).is_err());
        assert!(read_from_bytes(&[0u8; 17], p).is_err());
        let mut ply = b"ply\nformat ascii 1.0\n".to_vec();
        ply.resize(32, b' ');
        assert!(read_from_bytes(&ply, p).is_err());
    }
}
