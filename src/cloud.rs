//! The point-cloud type at the centre of pointpipe.
//!
//! A [`PointCloud`] is a structure of arrays: one `Vec` of positions and one
//! optional `Vec` per attribute, each of the same length as `points`.
//!
//! # Invariants
//! - Every position is finite (no NaN, no ±Inf). Readers drop non-finite
//!   points and count them; [`PointCloud::retain_finite`] does the same for
//!   clouds built by hand; algorithms that need the invariant check it with
//!   [`PointCloud::check_finite`].
//! - Every attribute vector that is `Some` has exactly `points.len()` entries
//!   ([`PointCloud::check_lengths`]).
//!
//! # Precision
//! Positions are `f64` metres (or the CRS unit of a LAS file, e.g. US feet).
//! A UTM northing of 5,000,000 m keeps a resolution of about 1 nm in `f64`,
//! so LAS round trips keep millimetres without a local origin. Algorithms that
//! want `f32` for speed (the k-d tree) subtract their own local origin first.

use nalgebra::{Isometry3, Point3, Vector3};

use crate::error::{Error, Result};

/// Per-point LAS attributes kept so that a LAS/LAZ file can be written back
/// without losing information. Every vector has one entry per point.
///
/// GPS time is stored in [`PointCloud::time`] and intensity in
/// [`PointCloud::intensity`], not here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LasAttributes {
    /// ASPRS classification code (0–255).
    pub classification: Vec<u8>,
    /// Return number (1-based; 0 occurs in some real files).
    pub return_number: Vec<u8>,
    /// Number of returns of the pulse.
    pub number_of_returns: Vec<u8>,
    /// Scan angle in degrees.
    pub scan_angle: Vec<f32>,
    /// User data byte.
    pub user_data: Vec<u8>,
    /// Point source (flight line) id.
    pub point_source_id: Vec<u16>,
    /// RGB colour (16 bit per channel), when the point format has it.
    pub color: Option<Vec<[u16; 3]>>,
    /// Per-point flag bits, in the layout of byte 15 of LAS 1.4 point
    /// formats 6–10 whatever the source format: bit 0 synthetic, bit 1
    /// key-point, bit 2 withheld, bit 3 overlap, bits 4–5 scanner channel,
    /// bit 6 scan direction flag, bit 7 edge of flight line. Legacy formats
    /// 0–5 have no overlap bit or scanner channel (their bits stay 0; an
    /// overlap point there is class 12).
    pub flags: Vec<u8>,
    /// Near-infrared (16 bit), when the point format has it (8 and 10).
    pub nir: Option<Vec<u16>>,
    /// The 29-byte wave packet descriptor of each point (formats 4, 5, 9,
    /// 10), kept as stored: descriptor index, byte offset to the waveform
    /// data, packet size, return point location and the x(t), y(t), z(t)
    /// parameters (ASPRS LAS 1.4 R15, table 14).
    pub waveform: Option<Vec<[u8; 29]>>,
    /// The extra bytes of each point, raw, [`LasAttributes::extra_bytes_len`]
    /// bytes per point one after the other; their layout is described by the
    /// extra-bytes VLR of [`Extras::las_header`](crate::cloud::Extras::las_header)
    /// (see [`crate::io::las::extra_bytes::read_extra_bytes_fields`]).
    pub extra_bytes: Vec<u8>,
    /// Extra bytes per point (0 when the point records have none).
    pub extra_bytes_len: usize,
    /// The LAS 1.3 "waveform data packet record" (its 60-byte header and the
    /// waveform samples) that the [`LasAttributes::waveform`] descriptors
    /// point into, when the source file stored its waveforms internally.
    /// (In LAS 1.4 the same record is an EVLR of [`Extras::las_header`](crate::cloud::Extras::las_header).)
    pub waveform_data: Option<Vec<u8>>,
}

impl LasAttributes {
    /// The attributes of the points at `indices`, in that order.
    pub(crate) fn select(&self, indices: &[usize]) -> Self {
        fn pick<T: Copy>(v: &[T], indices: &[usize]) -> Vec<T> {
            indices.iter().map(|&i| v[i]).collect()
        }
        LasAttributes {
            classification: pick(&self.classification, indices),
            return_number: pick(&self.return_number, indices),
            number_of_returns: pick(&self.number_of_returns, indices),
            scan_angle: pick(&self.scan_angle, indices),
            user_data: pick(&self.user_data, indices),
            point_source_id: pick(&self.point_source_id, indices),
            color: self.color.as_ref().map(|c| pick(c, indices)),
            flags: pick(&self.flags, indices),
            nir: self.nir.as_ref().map(|c| pick(c, indices)),
            waveform: self.waveform.as_ref().map(|c| pick(c, indices)),
            extra_bytes: {
                let len = self.extra_bytes_len;
                let mut out = Vec::with_capacity(indices.len() * len);
                for &i in indices {
                    out.extend_from_slice(&self.extra_bytes[i * len..(i + 1) * len]);
                }
                out
            },
            extra_bytes_len: self.extra_bytes_len,
            waveform_data: self.waveform_data.clone(),
        }
    }

    fn lengths_match(&self, n: usize) -> bool {
        self.classification.len() == n
            && self.return_number.len() == n
            && self.number_of_returns.len() == n
            && self.scan_angle.len() == n
            && self.user_data.len() == n
            && self.point_source_id.len() == n
            && self.color.as_ref().is_none_or(|c| c.len() == n)
            && self.flags.len() == n
            && self.nir.as_ref().is_none_or(|c| c.len() == n)
            && self.waveform.as_ref().is_none_or(|c| c.len() == n)
            && self.extra_bytes.len() == n * self.extra_bytes_len
    }
}

/// A point cloud: positions plus optional per-point attributes.
///
/// See the [module docs](self) for the invariants. Construct with
/// [`PointCloud::from_points`] or a reader in [`crate::io`].
#[derive(Debug, Clone, Default)]
pub struct PointCloud {
    /// Positions in metres (or the LAS file's CRS unit), all finite.
    pub points: Vec<Point3<f64>>,
    /// Intensity / reflectance as stored by the source format (KITTI: 0–1,
    /// LAS: 0–65535), if present.
    pub intensity: Option<Vec<f32>>,
    /// Unit surface normals, if estimated or read. A point *without* a normal
    /// (too few neighbours) holds the zero vector; see [`PointCloud::has_normal`].
    pub normals: Option<Vec<Vector3<f64>>>,
    /// Surface variation `λ0 / (λ0 + λ1 + λ2)` in [0, 1/3]; NaN where the
    /// point has no normal.
    pub curvature: Option<Vec<f64>>,
    /// Per-point time in seconds (LAS GPS time, PCD/PLY `t`/`time` fields).
    pub time: Option<Vec<f64>>,
    /// What a file format carries beyond the attributes above (today: LAS),
    /// kept so that writing back to that format loses nothing.
    pub extras: Extras,
}

/// Format-specific data of a [`PointCloud`]: what the algorithms never read
/// and writers need for lossless round trips. Only LAS/LAZ has such data.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Per-point LAS attributes: from a LAS/LAZ file, or from the columns a
    /// PLY/PCD file written by pointpipe from LAS recorded.
    pub las_attributes: Option<LasAttributes>,
    /// The LAS header of the source file (scale, offset, CRS VLRs, version,
    /// point format), kept so that LAS output can reuse it; for a PLY or PCD
    /// file written by pointpipe from LAS, the header rebuilt from the
    /// `pointpipe las_*` lines it recorded (see [`crate::io::ply::write`]).
    pub las_header: Option<las::Header>,
}

impl Extras {
    /// The extras of the points at `indices`, in that order (the header is
    /// cloned). O(`indices.len()`).
    ///
    /// # Panics
    /// If an index is out of bounds (a programming error, not an input error).
    pub fn select(&self, indices: &[usize]) -> Extras {
        Extras {
            las_attributes: self.las_attributes.as_ref().map(|a| a.select(indices)),
            las_header: self.las_header.clone(),
        }
    }
}

impl PointCloud {
    /// A cloud with positions only.
    pub fn from_points(points: Vec<Point3<f64>>) -> Self {
        PointCloud {
            points,
            ..Default::default()
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when the cloud has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// True when point `i` has a valid (non-zero) normal.
    pub fn has_normal(&self, i: usize) -> bool {
        self.normals
            .as_ref()
            .is_some_and(|n| n[i] != Vector3::zeros())
    }

    /// Names of the attributes present besides `x y z`, for reports.
    pub fn attribute_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.intensity.is_some() {
            names.push("intensity");
        }
        if self.normals.is_some() {
            names.push("normals");
        }
        if self.curvature.is_some() {
            names.push("curvature");
        }
        if self.time.is_some() {
            names.push("time");
        }
        if let Some(a) = &self.extras.las_attributes {
            names.extend([
                "classification",
                "return_number",
                "number_of_returns",
                "scan_angle",
                "user_data",
                "point_source_id",
            ]);
            names.push("flags");
            if a.color.is_some() {
                names.push("color");
            }
            if a.nir.is_some() {
                names.push("nir");
            }
            if a.waveform.is_some() {
                names.push("waveform");
            }
            if a.extra_bytes_len > 0 {
                names.push("extra_bytes");
            }
        }
        names
    }

    /// The horizontal unit of the coordinates according to the CRS of the
    /// source LAS header ([`crate::io::las::crs_linear_unit`]); `None` when
    /// the cloud has no LAS header or its CRS names no unit.
    pub fn linear_unit(&self) -> Option<crate::io::LinearUnit> {
        self.extras
            .las_header
            .as_ref()
            .and_then(crate::io::las::crs_linear_unit)
    }

    /// Logs a warning when the cloud's CRS is geographic (degrees), for an
    /// operation whose parameters are lengths (`what`, e.g. "voxel
    /// downsampling"): a voxel or radius in degrees is not metric (one degree
    /// of longitude spans 111 km at the equator and 0 at the poles).
    /// Returns true when it warned.
    pub fn warn_if_geographic(&self, what: &str) -> bool {
        let angular = self.linear_unit().is_some_and(|u| u.is_angular());
        if angular {
            log::warn!(
                "{what}: the cloud's CRS is geographic (coordinates in degrees); lengths such as \
                 voxel_size or radius are applied in degrees, not metres. Reproject to a \
                 projected CRS (e.g. UTM) first"
            );
        }
        angular
    }

    /// Axis-aligned bounds `(min, max)`, or `None` for an empty cloud.
    pub fn bounds(&self) -> Option<(Point3<f64>, Point3<f64>)> {
        let first = *self.points.first()?;
        Some(
            self.points
                .iter()
                .fold((first, first), |(lo, hi), p| (lo.inf(p), hi.sup(p))),
        )
    }

    /// A new cloud with the points at `indices` (in that order), every
    /// attribute carried along. The LAS header is cloned.
    ///
    /// # Panics
    /// If an index is out of bounds (a programming error, not an input error).
    pub fn select(&self, indices: &[usize]) -> PointCloud {
        fn pick<T: Copy>(v: &Option<Vec<T>>, indices: &[usize]) -> Option<Vec<T>> {
            v.as_ref().map(|v| indices.iter().map(|&i| v[i]).collect())
        }
        PointCloud {
            points: indices.iter().map(|&i| self.points[i]).collect(),
            intensity: pick(&self.intensity, indices),
            normals: pick(&self.normals, indices),
            curvature: pick(&self.curvature, indices),
            time: pick(&self.time, indices),
            extras: self.extras.select(indices),
        }
    }

    /// Keeps the points for which `keep(index, position)` is true, with their
    /// attributes; returns the number of points removed.
    pub fn retain(&mut self, mut keep: impl FnMut(usize, &Point3<f64>) -> bool) -> usize {
        let indices: Vec<usize> = (0..self.len())
            .filter(|&i| keep(i, &self.points[i]))
            .collect();
        let removed = self.len() - indices.len();
        if removed > 0 {
            let header = self.extras.las_header.take();
            *self = self.select(&indices);
            self.extras.las_header = header;
        }
        removed
    }

    /// Drops every point with a NaN or infinite coordinate; returns how many
    /// were dropped.
    pub fn retain_finite(&mut self) -> usize {
        self.retain(|_, p| p.coords.iter().all(|c| c.is_finite()))
    }

    /// Errors with [`Error::NonFinite`] at the first non-finite position.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        match self
            .points
            .iter()
            .position(|p| !p.coords.iter().all(|c| c.is_finite()))
        {
            Some(index) => Err(Error::NonFinite {
                what: what.to_string(),
                index,
            }),
            None => Ok(()),
        }
    }

    /// True when every present attribute has one entry per point.
    pub fn check_lengths(&self) -> bool {
        let n = self.len();
        self.intensity.as_ref().is_none_or(|v| v.len() == n)
            && self.normals.as_ref().is_none_or(|v| v.len() == n)
            && self.curvature.as_ref().is_none_or(|v| v.len() == n)
            && self.time.as_ref().is_none_or(|v| v.len() == n)
            && self
                .extras
                .las_attributes
                .as_ref()
                .is_none_or(|a| a.lengths_match(n))
    }

    /// Applies a rigid transform `b_from_a` in place to positions and normals
    /// (positions in frame `a` become positions in frame `b`).
    pub fn transform(&mut self, b_from_a: &Isometry3<f64>) {
        for p in &mut self.points {
            *p = b_from_a * *p;
        }
        if let Some(normals) = &mut self.normals {
            for n in normals {
                *n = b_from_a.rotation * *n;
            }
        }
    }

    /// A transformed copy; see [`PointCloud::transform`].
    pub fn transformed(&self, b_from_a: &Isometry3<f64>) -> PointCloud {
        let mut out = self.clone();
        out.transform(b_from_a);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_finite_drops_and_counts() {
        let mut c = PointCloud::from_points(vec![
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(f64::NAN, 0.0, 0.0),
            Point3::new(1.0, f64::INFINITY, 0.0),
            Point3::new(2.0, 0.0, 0.0),
        ]);
        c.intensity = Some(vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(c.retain_finite(), 2);
        assert_eq!(c.points, vec![Point3::origin(), Point3::new(2.0, 0.0, 0.0)]);
        assert_eq!(c.intensity, Some(vec![1.0, 4.0]));
        assert!(c.check_lengths());
        assert!(c.check_finite("test").is_ok());
    }

    #[test]
    fn bounds_of_empty_is_none() {
        assert!(PointCloud::default().bounds().is_none());
    }
}
