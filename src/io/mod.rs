//! Point-cloud file I/O: LAS/LAZ, PLY, PCD and KITTI `.bin`, plus pose files.
//!
//! | format | read | write | module |
//! |---|---|---|---|
//! | LAS 1.0–1.4, point formats 0–10 | yes | yes (see [`las`]) | [`las`] |
//! | LAZ (compressed LAS) | yes | yes | [`las`] |
//! | PLY ascii, binary little/big endian | yes | binary little endian | [`ply`] |
//! | PCD v0.7 ascii, binary, binary_compressed | yes | binary (f32 x y z) | [`pcd`] |
//! | KITTI Velodyne `.bin` (f32 x y z reflectance) | yes | yes | [`kitti`] |
//! | KITTI / TUM trajectories, 4×4 matrix text | yes | yes | [`poses`] |
//!
//! The format is chosen by the file extension ([`Format::from_path`]) and
//! checked against the file's magic bytes, so a PLY file named `*.pcd` is
//! reported as such instead of being misread.
//!
//! # Errors and bad input
//! Every reader returns an error naming the file and the reason for truncated
//! files, wrong magic bytes, headers that promise more points than the file
//! holds, unsupported versions, empty files and unknown extensions. Readers
//! never panic on input data (fuzzed with `cargo fuzz`, see `fuzz/`).
//! Points with a NaN or infinite coordinate are dropped on read and counted in
//! [`ReadReport::dropped_non_finite`].
//!
//! # Writing
//! [`write()`] writes to a temporary file in the target folder and renames it
//! over the target only when everything was written, so a failed or
//! interrupted write never leaves a half-written file behind.
//!
//! # Example
//! ```
//! use nalgebra::Point3;
//! use pointpipe::{PointCloud, io};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("two.pcd");
//! let cloud = PointCloud::from_points(vec![Point3::new(1.0, 2.0, 3.0), Point3::new(4.0, 5.0, 6.0)]);
//! io::write(&path, &cloud)?;
//! let (back, report) = io::read_with_report(&path)?;
//! assert_eq!(back.points, cloud.points);
//! assert_eq!(report.format, io::Format::Pcd);
//! assert_eq!(report.dropped_non_finite, 0);
//! # Ok::<(), pointpipe::Error>(())
//! ```

pub mod atomic;
pub mod kitti;
pub mod las;
pub mod pcd;
pub mod ply;
pub mod poses;

use std::path::{Path, PathBuf};

use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// A point-cloud file format known to pointpipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ASPRS LAS 1.0–1.4 (`.las`).
    Las,
    /// LASzip-compressed LAS (`.laz`).
    Laz,
    /// Stanford PLY (`.ply`).
    Ply,
    /// PCL's Point Cloud Data v0.7 (`.pcd`).
    Pcd,
    /// KITTI Velodyne scan: little-endian f32 `x y z reflectance` records (`.bin`).
    KittiBin,
}

impl Format {
    /// The format named by `path`'s extension (case-insensitive): `las`, `laz`,
    /// `ply`, `pcd` or `bin`.
    ///
    /// # Errors
    /// [`Error::UnsupportedFormat`] for any other (or a missing) extension.
    pub fn from_path(path: &Path) -> Result<Format> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match extension.as_str() {
            "las" => Ok(Format::Las),
            "laz" => Ok(Format::Laz),
            "ply" => Ok(Format::Ply),
            "pcd" => Ok(Format::Pcd),
            "bin" => Ok(Format::KittiBin),
            _ => Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                extension,
            }),
        }
    }

    /// Short human-readable name: `"LAS"`, `"LAZ"`, `"PLY"`, `"PCD"`, `"KITTI bin"`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Las => "LAS",
            Format::Laz => "LAZ",
            Format::Ply => "PLY",
            Format::Pcd => "PCD",
            Format::KittiBin => "KITTI bin",
        }
    }
}

/// What a reader found in a file besides the points themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadReport {
    /// The file's format.
    pub format: Format,
    /// Version and layout, e.g. `"LAS 1.2 point format 3"`,
    /// `"PLY binary_little_endian"`, `"PCD 0.7 binary_compressed"`.
    pub version: String,
    /// Number of point records in the file, including dropped ones.
    pub points_in_file: usize,
    /// Records dropped because a coordinate was NaN or ±Inf.
    pub dropped_non_finite: usize,
    /// Short CRS summary (LAS only), e.g. `"WKT: NAD83 / Oregon GIC Lambert (ft)"`
    /// or `"GeoTIFF: EPSG:2992"`; `None` when the file has none.
    pub crs: Option<String>,
    /// The horizontal unit of the coordinates according to the file's CRS
    /// ([`las::crs_linear_unit`]); `None` when the file has no CRS or the CRS
    /// does not say.
    pub unit: Option<LinearUnit>,
}

/// The unit of horizontal coordinates named by a CRS.
///
/// pointpipe's parameters (voxel_size, radius, max_correspondence_distance)
/// are in the coordinates' unit; their documented defaults assume metres.
#[derive(Debug, Clone, PartialEq)]
pub enum LinearUnit {
    /// Metre (EPSG:9001).
    Metre,
    /// International foot, 0.3048 m (EPSG:9002).
    InternationalFoot,
    /// US survey foot, 1200/3937 m (EPSG:9003).
    UsSurveyFoot,
    /// Degree of a geographic CRS (EPSG:9102/9122): not a length; metric
    /// operations (voxel grid, radius search, ICP distances) are meaningless.
    Degree,
    /// Another linear unit: its name and length in metres.
    Other {
        /// The unit's name as the CRS gives it.
        name: String,
        /// Metres per unit.
        metres: f64,
    },
}

impl LinearUnit {
    /// The unit of a WKT `UNIT["name", factor]` with `factor` metres per unit.
    pub fn from_metres(name: &str, metres: f64) -> LinearUnit {
        if (metres - 1.0).abs() < 1e-12 {
            LinearUnit::Metre
        } else if (metres - 0.3048).abs() < 1e-12 {
            LinearUnit::InternationalFoot
        } else if (metres - 1200.0 / 3937.0).abs() < 1e-10 {
            LinearUnit::UsSurveyFoot
        } else {
            LinearUnit::Other {
                name: name.to_string(),
                metres,
            }
        }
    }

    /// Metres per unit; `None` for degrees.
    pub fn metres(&self) -> Option<f64> {
        match self {
            LinearUnit::Metre => Some(1.0),
            LinearUnit::InternationalFoot => Some(0.3048),
            LinearUnit::UsSurveyFoot => Some(1200.0 / 3937.0),
            LinearUnit::Degree => None,
            LinearUnit::Other { metres, .. } => Some(*metres),
        }
    }

    /// Short symbol for reports: `m`, `ft`, `US ft`, `deg`, or the name.
    pub fn symbol(&self) -> String {
        match self {
            LinearUnit::Metre => "m".into(),
            LinearUnit::InternationalFoot => "ft".into(),
            LinearUnit::UsSurveyFoot => "US ft".into(),
            LinearUnit::Degree => "deg".into(),
            LinearUnit::Other { name, .. } => name.clone(),
        }
    }

    /// True for the degrees of a geographic CRS.
    pub fn is_angular(&self) -> bool {
        matches!(self, LinearUnit::Degree)
    }
}

impl std::fmt::Display for LinearUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinearUnit::Metre => write!(f, "metre"),
            LinearUnit::InternationalFoot => write!(f, "international foot (0.3048 m)"),
            LinearUnit::UsSurveyFoot => write!(f, "US survey foot (1200/3937 m)"),
            LinearUnit::Degree => write!(f, "degree (geographic CRS)"),
            LinearUnit::Other { name, metres } => write!(f, "{name} ({metres} m)"),
        }
    }
}

/// Reads a point cloud; the format comes from the extension and is checked
/// against the file's magic bytes. See [`read_with_report`].
///
/// # Errors
/// As [`read_with_report`].
pub fn read(path: impl AsRef<Path>) -> Result<PointCloud> {
    read_with_report(path).map(|(cloud, _)| cloud)
}

/// Reads a point cloud and reports format, version, point count, dropped
/// non-finite points and CRS.
///
/// Positions are `f64` in the file's unit (metres for PLY/PCD/KITTI; the CRS
/// unit for LAS, with scale and offset applied). Non-finite points are
/// dropped and counted.
///
/// # Errors
/// [`Error::UnsupportedFormat`] for an unknown extension, [`Error::Io`] when
/// the file cannot be read, [`Error::Format`] or [`Error::Las`] for content
/// that does not match the format (the message names file and reason).
pub fn read_with_report(path: impl AsRef<Path>) -> Result<(PointCloud, ReadReport)> {
    let path = path.as_ref();
    if path.is_dir() {
        return Err(Error::format(
            path,
            "is a directory, not a point-cloud file",
        ));
    }
    match Format::from_path(path)? {
        Format::Las | Format::Laz => las::read(path),
        Format::Ply => ply::read(path),
        Format::Pcd => pcd::read(path),
        Format::KittiBin => kitti::read(path),
    }
}

/// Writes `cloud` in the format named by `path`'s extension, atomically
/// (temporary file in the target folder, then rename).
///
/// What each format keeps (also tabulated in the README's "Formats"
/// section): LAS/LAZ see [`las::write`] (every field of the point format);
/// PLY see [`ply::write`]; PCD see [`pcd::write`]; KITTI `.bin` see
/// [`kitti::write`] (`x y z` as f32 and reflectance in [0, 1]).
///
/// # Errors
/// [`Error::UnsupportedFormat`] for an unknown extension, [`Error::Io`] when
/// the file cannot be written, [`Error::Las`] when LAS encoding fails.
pub fn write(path: impl AsRef<Path>, cloud: &PointCloud) -> Result<()> {
    write_with_pcd_options(path, cloud, &pcd::PcdOptions::default())
}

/// [`write()`], with `pcd_options` applied when `path` names a PCD file
/// (e.g. [`pcd::PcdOptions::double`] for `F 8` coordinates, the CLI's
/// `--pcd-double`); the other formats ignore them.
///
/// # Errors
/// As [`write()`].
pub fn write_with_pcd_options(
    path: impl AsRef<Path>,
    cloud: &PointCloud,
    pcd_options: &pcd::PcdOptions,
) -> Result<()> {
    let path = path.as_ref();
    let format = Format::from_path(path)?;
    warn_dropped(path, cloud, format);
    match format {
        Format::Las | Format::Laz => las::write(path, cloud),
        Format::Ply => ply::write(path, cloud),
        Format::Pcd => pcd::write_with_options(path, cloud, pcd_options),
        Format::KittiBin => kitti::write(path, cloud),
    }
}

/// Refuses an output path that names one of the inputs.
///
/// Paths are compared after canonicalisation (symlinks and `..` resolved);
/// an output that does not exist yet is canonicalised through its folder.
///
/// # Errors
/// [`Error::OutputIsInput`] when `output` is one of `inputs`.
pub fn ensure_not_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    let out = canonical_or_self(output);
    for input in inputs {
        if canonical_or_self(input) == out {
            return Err(Error::OutputIsInput {
                path: output.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// The canonical form of `path`, through its parent folder when the file does
/// not exist, or `path` itself when neither can be resolved.
fn canonical_or_self(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Reads a whole file into memory, mapping errors to [`Error::Io`] and an
/// empty file to [`Error::Format`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    Ok(bytes)
}

/// The format a file's first bytes announce, if they carry a magic number
/// (KITTI `.bin` has none).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"LASF") {
        Some(Format::Las)
    } else if bytes.starts_with(b"ply\n") || bytes.starts_with(b"ply\r\n") {
        Some(Format::Ply)
    } else if bytes.starts_with(b"# .PCD")
        || bytes.starts_with(b"VERSION")
        || bytes.starts_with(b"FIELDS")
    {
        Some(Format::Pcd)
    } else {
        None
    }
}

/// Error for a file whose magic bytes do not match the expected format.
pub(crate) fn wrong_magic(path: &Path, expected: Format, bytes: &[u8]) -> Error {
    let head: String = bytes
        .iter()
        .take(8)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    let looks_like = match sniff(bytes) {
        Some(f) => format!(" (the content looks like {})", f.name()),
        None => String::new(),
    };
    Error::format(
        path,
        format!(
            "not a {} file: it starts with {head:?}{looks_like}",
            expected.name()
        ),
    )
}

/// True when all three coordinates are finite. Shared by the readers' inner
/// loops.
#[inline]
pub(crate) fn is_finite3(x: f64, y: f64, z: f64) -> bool {
    x.is_finite() && y.is_finite() && z.is_finite()
}

/// Largest coordinate magnitude (metres) that writers store as `f32`: 8192 m,
/// where the `f32` spacing is 0.98 mm, so rounding stays within 0.5 mm.
/// Clouds with larger coordinates (UTM) are written as `f64`.
pub const F32_EXACT_LIMIT: f64 = 8192.0;

/// Precision assumed for clouds that carry none: 1 mm in the cloud's unit.
pub const DEFAULT_PRECISION: f64 = 0.001;

/// The spacing of the cloud's coordinates: the smallest LAS scale factor
/// when the cloud has a LAS header (0.01 ft, 1e-7 degrees...), otherwise
/// [`DEFAULT_PRECISION`].
pub fn data_precision(cloud: &PointCloud) -> f64 {
    cloud
        .extras
        .las_header
        .as_ref()
        .map_or(DEFAULT_PRECISION, |h| {
            let t = h.transforms();
            t.x.scale.abs().min(t.y.scale.abs()).min(t.z.scale.abs())
        })
}

/// Largest coordinate magnitude that `f32` stores within half of
/// `precision` (the `f32` spacing at `m` is at most `m · 2⁻²³`):
/// [`F32_EXACT_LIMIT`] at 1 mm, 0.8 at 1e-7 degrees.
pub fn f32_limit(precision: f64) -> f64 {
    precision * (F32_EXACT_LIMIT / DEFAULT_PRECISION)
}

/// Largest coordinate magnitude of `cloud` after subtracting `origin`.
pub(crate) fn max_abs(cloud: &PointCloud, origin: &nalgebra::Vector3<f64>) -> f64 {
    cloud
        .points
        .iter()
        .map(|p| (p.coords - origin).abs().max())
        .fold(0.0, f64::max)
}

/// True when some coordinate of `cloud` is too large for `f32` to keep the
/// data's precision ([`data_precision`], [`f32_limit`]), so that writers
/// must store positions as `f64`.
pub(crate) fn needs_double(cloud: &PointCloud) -> bool {
    let limit = f32_limit(data_precision(cloud));
    cloud
        .points
        .iter()
        .any(|p| p.coords.iter().any(|c| c.abs() > limit))
}

/// How a writer stores x, y, z.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XyzEncoding {
    /// `f64` instead of `f32`.
    pub double: bool,
    /// Subtracted from every position before it is stored (PCD local origin).
    pub origin: nalgebra::Vector3<f64>,
}

/// How a writer stores RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColorEncoding {
    /// No colour columns.
    None,
    /// `red green blue` as u8 (every value ≤ 255).
    U8,
    /// `red green blue` as u16 (LAS 16-bit colour).
    U16,
    /// PCL's packed `rgb` (one 4-byte field `0x00RRGGBB`, 8 bits per
    /// channel; 16-bit colour keeps its high byte).
    PackedRgb,
}

/// LAS attributes written by the PLY and PCD writers, in this order, after
/// `red green blue`: name and storage (`'u'` u8, `'s'` u16, `'f'` f32).
pub(crate) const LAS_COLUMNS: [(&str, char); 7] = [
    ("classification", 'u'),
    ("return_number", 'u'),
    ("number_of_returns", 'u'),
    ("scan_angle", 'f'),
    ("user_data", 'u'),
    ("point_source_id", 's'),
    ("las_flags", 'u'),
];

/// Index of each attribute in the per-point arrays readers fill
/// ([`las_attributes_from_columns`]): `red green blue`, then
/// [`LAS_COLUMNS`], then `nir`.
pub(crate) const ATTRIBUTE_NAMES: [&str; 11] = [
    "red",
    "green",
    "blue",
    "classification",
    "return_number",
    "number_of_returns",
    "scan_angle",
    "user_data",
    "point_source_id",
    "las_flags",
    "nir",
];

/// The colour encoding for a PLY writer: u8 when every channel fits.
pub(crate) fn ply_color(cloud: &PointCloud) -> ColorEncoding {
    match cloud
        .extras
        .las_attributes
        .as_ref()
        .and_then(|a| a.color.as_ref())
    {
        None => ColorEncoding::None,
        Some(c) if c.iter().flatten().all(|&v| v <= 255) => ColorEncoding::U8,
        Some(_) => ColorEncoding::U16,
    }
}

/// Packs a LAS colour as PCL's `rgb` (8 bits per channel: 16-bit colour,
/// any channel above 255 in the cloud, keeps its high byte).
fn packed_rgb(c: [u16; 3], sixteen_bit: bool) -> u32 {
    let b = |v: u16| u32::from(if sixteen_bit { v >> 8 } else { v.min(255) });
    (b(c[0]) << 16) | (b(c[1]) << 8) | b(c[2])
}

/// Appends one little-endian binary record per point to `bytes`, in the field
/// order shared by the PCD and PLY writers: `x y z` (see [`XyzEncoding`]),
/// then, when present, `intensity` (f32), `nx ny nz` (f32), `curvature`
/// (f32), `time` (f64, seconds), colour (see [`ColorEncoding`]), the
/// [`LAS_COLUMNS`] and `nir` (u16).
pub(crate) fn encode_le_records(
    cloud: &PointCloud,
    xyz: XyzEncoding,
    color: ColorEncoding,
    bytes: &mut Vec<u8>,
) {
    let attrs = cloud.extras.las_attributes.as_ref();
    let sixteen_bit = color == ColorEncoding::PackedRgb
        && attrs
            .and_then(|a| a.color.as_ref())
            .is_some_and(|c| c.iter().flatten().any(|&v| v > 255));
    for (i, p) in cloud.points.iter().enumerate() {
        for c in (p.coords - xyz.origin).iter() {
            if xyz.double {
                bytes.extend_from_slice(&c.to_le_bytes());
            } else {
                bytes.extend_from_slice(&(*c as f32).to_le_bytes());
            }
        }
        if let Some(v) = &cloud.intensity {
            bytes.extend_from_slice(&v[i].to_le_bytes());
        }
        if let Some(v) = &cloud.normals {
            for c in v[i].iter() {
                bytes.extend_from_slice(&(*c as f32).to_le_bytes());
            }
        }
        if let Some(v) = &cloud.curvature {
            bytes.extend_from_slice(&(v[i] as f32).to_le_bytes());
        }
        if let Some(v) = &cloud.time {
            bytes.extend_from_slice(&v[i].to_le_bytes());
        }
        let Some(a) = attrs else {
            continue;
        };
        if let Some(c) = &a.color {
            match color {
                ColorEncoding::None => {}
                ColorEncoding::U8 => bytes.extend(c[i].iter().map(|&v| v.min(255) as u8)),
                ColorEncoding::U16 => c[i]
                    .iter()
                    .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes())),
                ColorEncoding::PackedRgb => {
                    bytes.extend_from_slice(&packed_rgb(c[i], sixteen_bit).to_le_bytes())
                }
            }
        }
        bytes.extend_from_slice(&[
            a.classification[i],
            a.return_number[i],
            a.number_of_returns[i],
        ]);
        bytes.extend_from_slice(&a.scan_angle[i].to_le_bytes());
        bytes.push(a.user_data[i]);
        bytes.extend_from_slice(&a.point_source_id[i].to_le_bytes());
        bytes.push(a.flags[i]);
        if let Some(nir) = &a.nir {
            bytes.extend_from_slice(&nir[i].to_le_bytes());
        }
    }
}

/// Builds LAS attributes from the [`ATTRIBUTE_NAMES`] columns a PLY or PCD
/// reader found (`present`), one value array per kept point; absent columns
/// get LAS defaults (return 1 of 1, class 1 "unclassified" when the file has
/// no classification, zeros otherwise). `None` when no column is present.
pub(crate) fn las_attributes_from_columns(
    present: &[bool; 11],
    values: &[[f64; 11]],
) -> Option<crate::cloud::LasAttributes> {
    if !present.iter().any(|&p| p) {
        return None;
    }
    let col = |k: usize, default: f64| -> Vec<f64> {
        if present[k] {
            values.iter().map(|v| v[k]).collect()
        } else {
            vec![default; values.len()]
        }
    };
    let u8s = |k: usize, d: f64| col(k, d).into_iter().map(|v| v as u8).collect();
    let has_color = present[..3].iter().any(|&p| p);
    Some(crate::cloud::LasAttributes {
        classification: u8s(3, 1.0),
        return_number: u8s(4, 1.0),
        number_of_returns: u8s(5, 1.0),
        scan_angle: col(6, 0.0).into_iter().map(|v| v as f32).collect(),
        user_data: u8s(7, 0.0),
        point_source_id: col(8, 0.0).into_iter().map(|v| v as u16).collect(),
        flags: u8s(9, 0.0),
        color: has_color.then(|| {
            values
                .iter()
                .map(|v| std::array::from_fn(|k| if present[k] { v[k] as u16 } else { 0 }))
                .collect()
        }),
        nir: present[10].then(|| col(10, 0.0).into_iter().map(|v| v as u16).collect()),
        ..Default::default()
    })
}

/// Unpacks PCL's `rgb` / `rgba` value (the field's bits, `0x00RRGGBB`).
pub(crate) fn unpack_rgb(bits: u32) -> [f64; 3] {
    [
        f64::from((bits >> 16) & 0xff),
        f64::from((bits >> 8) & 0xff),
        f64::from(bits & 0xff),
    ]
}

/// Prefix of the header lines (PLY `comment`, PCD `#`) in which pointpipe
/// records what the text-header formats have no field for.
pub(crate) const META_PREFIX: &str = "pointpipe ";

/// Header lines (without the format's comment marker) recording the LAS
/// version, point format, scale, offset and CRS VLRs of a cloud read from
/// LAS, so that PLY/PCD → LAS restores them: `pointpipe las_format 1.2 3`,
/// `pointpipe las_scale sx sy sz`, `pointpipe las_offset ox oy oz`,
/// `pointpipe las_vlr <user id> <record id> <hex data>` (every
/// `LASF_Projection` VLR and EVLR). Numbers are written in Rust's
/// shortest round-trip form, so they read back exactly.
pub(crate) fn las_meta_lines(cloud: &PointCloud) -> Vec<String> {
    let Some(h) = &cloud.extras.las_header else {
        return Vec::new();
    };
    let t = h.transforms();
    let format = h.point_format().to_u8().unwrap_or(6);
    let mut lines = vec![
        format!("{META_PREFIX}las_format {} {format}", h.version()),
        format!(
            "{META_PREFIX}las_scale {} {} {}",
            t.x.scale, t.y.scale, t.z.scale
        ),
        format!(
            "{META_PREFIX}las_offset {} {} {}",
            t.x.offset, t.y.offset, t.z.offset
        ),
    ];
    for v in h.all_vlrs().filter(|v| v.user_id == "LASF_Projection") {
        let hex: String = v.data.iter().map(|b| format!("{b:02x}")).collect();
        lines.push(format!(
            "{META_PREFIX}las_vlr {} {} {hex}",
            v.user_id, v.record_id
        ));
    }
    lines
}

/// What [`parse_meta_lines`] found.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    /// The LAS header rebuilt from the `las_*` lines.
    pub las_header: Option<::las::Header>,
    /// The local origin to add back to every position (PCD).
    pub origin: Option<nalgebra::Vector3<f64>>,
}

/// Parses the lines written by [`las_meta_lines`] (and `pointpipe origin x y
/// z`) from comment texts; other comments are ignored. The rebuilt LAS
/// header has the recorded version, scale, offset and CRS VLRs, and the
/// recorded point format without what PLY/PCD do not keep (waveform
/// packets: 4→1, 5→3, 9→6, 10→8; no extra bytes). A malformed line is
/// logged and ignored.
pub(crate) fn parse_meta_lines<'a>(comments: impl Iterator<Item = &'a str>, path: &Path) -> Meta {
    let mut meta = Meta::default();
    let mut version = None;
    let mut format = None;
    let mut scale = None;
    let mut offset = None;
    let mut vlrs = Vec::new();
    let three = |rest: &str| -> Option<[f64; 3]> {
        let v: Vec<f64> = rest
            .split_whitespace()
            .map(|t| t.parse().ok())
            .collect::<Option<_>>()?;
        let a: [f64; 3] = v.try_into().ok()?;
        a.iter().all(|x| x.is_finite()).then_some(a)
    };
    for line in comments {
        let Some(rest) = line.trim().strip_prefix(META_PREFIX) else {
            continue;
        };
        let (key, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let ok = match key {
            "las_format" => {
                let mut it = rest.split_whitespace();
                let v = it.next().and_then(|v| {
                    let (a, b) = v.split_once('.')?;
                    Some((a.parse::<u8>().ok()?, b.parse::<u8>().ok()?))
                });
                let f = it.next().and_then(|f| f.parse::<u8>().ok());
                version = v;
                format = f;
                v.is_some() && f.is_some()
            }
            "las_scale" => {
                scale = three(rest);
                scale.is_some()
            }
            "las_offset" => {
                offset = three(rest);
                offset.is_some()
            }
            "origin" => {
                meta.origin = three(rest).map(nalgebra::Vector3::from);
                meta.origin.is_some()
            }
            "las_vlr" => {
                let mut it = rest.split_whitespace();
                let vlr = (|| {
                    let user_id = it.next()?.to_string();
                    let record_id = it.next()?.parse::<u16>().ok()?;
                    let hex = it.next().unwrap_or("");
                    let data = (0..hex.len() / 2)
                        .map(|k| u8::from_str_radix(hex.get(2 * k..2 * k + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()?;
                    Some(::las::Vlr {
                        user_id,
                        record_id,
                        description: String::new(),
                        data,
                    })
                })();
                vlr.map(|v| vlrs.push(v)).is_some()
            }
            _ => true,
        };
        if !ok {
            log::warn!(
                "{}: ignoring malformed header line '{line}'",
                path.display()
            );
        }
    }
    let (Some((major, minor)), Some(format), Some(scale), Some(offset)) =
        (version, format, scale, offset)
    else {
        return meta;
    };
    let build = || -> ::las::Result<::las::Header> {
        let mut b = ::las::Builder::from((major, minor));
        let kept = match format {
            4 => 1,
            5 => 3,
            9 => 6,
            10 => 8,
            f => f,
        };
        b.point_format = ::las::point::Format::new(kept)?;
        let t = |k: usize| ::las::Transform {
            scale: scale[k],
            offset: offset[k],
        };
        b.transforms = ::las::Vector {
            x: t(0),
            y: t(1),
            z: t(2),
        };
        for v in vlrs {
            if v.data.len() > usize::from(u16::MAX) {
                b.evlrs.push(v);
            } else {
                b.vlrs.push(v);
            }
        }
        b.into_header()
    };
    match build() {
        Ok(h) => meta.las_header = Some(h),
        Err(e) => log::warn!(
            "{}: recorded LAS header not usable ({e}); LAS output gets a new one",
            path.display()
        ),
    }
    meta
}

/// Logs (warning) the attributes of `cloud` that an output `format` cannot
/// store, so nothing is dropped without a word: wave packets and extra
/// bytes for PLY/PCD; everything but x y z and intensity for KITTI `.bin`.
/// Returns the names it listed.
pub(crate) fn warn_dropped(path: &Path, cloud: &PointCloud, format: Format) -> Vec<&'static str> {
    let mut lost = Vec::new();
    let attrs = cloud.extras.las_attributes.as_ref();
    match format {
        Format::Las | Format::Laz => {}
        Format::Ply | Format::Pcd => {
            if attrs.is_some_and(|a| a.waveform.is_some()) {
                lost.push("wave packets");
            }
            if attrs.is_some_and(|a| a.extra_bytes_len > 0) {
                lost.push("extra-bytes fields (normals excepted)");
            }
        }
        Format::KittiBin => {
            for (present, name) in [
                (cloud.normals.is_some(), "normals"),
                (cloud.curvature.is_some(), "curvature"),
                (cloud.time.is_some(), "time"),
                (
                    attrs.is_some(),
                    "LAS attributes (classification, returns, flags, ...)",
                ),
                (attrs.is_some_and(|a| a.color.is_some()), "RGB"),
                (cloud.extras.las_header.is_some(), "LAS header and CRS"),
            ] {
                if present {
                    lost.push(name);
                }
            }
        }
    }
    if !lost.is_empty() {
        log::warn!(
            "{}: {} cannot store {}; they are not written (LAS/LAZ keeps everything)",
            path.display(),
            format.name(),
            lost.join(", ")
        );
    }
    lost
}

/// Applies the readers' normal convention: normals that are zero for every
/// point carry no information and are removed together with curvature;
/// otherwise a point with a zero normal gets NaN curvature.
pub(crate) fn drop_empty_normals(cloud: &mut PointCloud) {
    let Some(normals) = &cloud.normals else {
        return;
    };
    if normals.iter().all(|n| *n == nalgebra::Vector3::zeros()) {
        cloud.normals = None;
        cloud.curvature = None;
    } else if let Some(curvature) = &mut cloud.curvature {
        for (c, n) in curvature.iter_mut().zip(normals) {
            if *n == nalgebra::Vector3::zeros() {
                *c = f64::NAN;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension_is_case_insensitive() {
        assert_eq!(
            Format::from_path(Path::new("a/B.LAZ")).ok(),
            Some(Format::Laz)
        );
        assert_eq!(
            Format::from_path(Path::new("x.bin")).ok(),
            Some(Format::KittiBin)
        );
        assert!(matches!(
            Format::from_path(Path::new("x.xyz")),
            Err(Error::UnsupportedFormat { .. })
        ));
        assert!(matches!(
            Format::from_path(Path::new("noext")),
            Err(Error::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn output_equal_to_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pcd");
        std::fs::write(&a, b"x").unwrap();
        let same = dir.path().join(".").join("a.pcd");
        assert!(matches!(
            ensure_not_input(&same, &[&a]),
            Err(Error::OutputIsInput { .. })
        ));
        let other = dir.path().join("b.pcd");
        assert!(ensure_not_input(&other, &[&a]).is_ok());
    }

    #[test]
    fn sniff_recognises_magic() {
        assert_eq!(sniff(b"LASF...."), Some(Format::Las));
        assert_eq!(sniff(b"ply\nformat"), Some(Format::Ply));
        assert_eq!(sniff(b"# .PCD v0.7"), Some(Format::Pcd));
        assert_eq!(sniff(&[0u8; 16]), None);
    }
}
