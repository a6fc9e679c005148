//! PCD v0.7 (PCL's Point Cloud Data format): `ascii`, `binary` and
//! `binary_compressed` (LZF) reader, `binary` writer.
//!
//! Source: PCL, "The PCD (Point Cloud Data) file format",
//! <https://pointclouds.org/documentation/tutorials/pcd_file_format.html>,
//! and `pcl/io/src/pcd_io.cpp` for the `binary_compressed` layout.
//!
//! # What is read
//! Fields are found by name in any order; `SIZE`, `TYPE` and `COUNT` are
//! honoured, so any numeric type (F4, F8, I1–I8, U1–U8) works and padding
//! fields (`_`) or unknown fields are skipped. Read: `x y z` (required),
//! `intensity`, `normal_x normal_y normal_z`, `curvature`, and time from
//! `time`, `t` or `timestamp` (seconds), PCL's packed `rgb`/`rgba`, and the
//! LAS attributes pointpipe writes (`classification`, `return_number`,
//! `number_of_returns`, `scan_angle`, `user_data`, `point_source_id`,
//! `las_flags`, `nir`). Points with a non-finite coordinate are dropped and
//! counted. The comment lines `# pointpipe origin X Y Z` (added back to every
//! position) and `# pointpipe las_*` (the source LAS header) written by
//! [`write()`] are honoured.
//!
//! Normals that are zero for every point carry no information (the BALM
//! scans store all-zero normal and curvature columns), so they are not kept;
//! otherwise the curvature of a point with a zero normal is set to NaN,
//! following [`PointCloud::curvature`].
//!
//! # Layout
//! `binary` stores records of `Σ SIZE·COUNT` bytes one after the other;
//! `binary_compressed` stores `u32 compressed_size, u32 uncompressed_size`
//! followed by LZF data that decompresses to the same bytes transposed:
//! all values of field 0, then all of field 1, ... Both are read with the same
//! strided column accessor: one pass for the positions, then one tight pass
//! per attribute column; no per-point allocation.

use std::io::Write;
use std::path::Path;

use nalgebra::{Point3, Vector3};

use super::{Format, ReadReport, atomic};
use crate::cloud::{Extras, PointCloud};
use crate::error::{Error, Result};

/// A PCD scalar type (`TYPE` letter × `SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Scalar {
    fn new(kind: &str, size: usize) -> Option<Scalar> {
        Some(match (kind, size) {
            ("F", 4) => Scalar::F32,
            ("F", 8) => Scalar::F64,
            ("I", 1) => Scalar::I8,
            ("I", 2) => Scalar::I16,
            ("I", 4) => Scalar::I32,
            ("I", 8) => Scalar::I64,
            ("U", 1) => Scalar::U8,
            ("U", 2) => Scalar::U16,
            ("U", 4) => Scalar::U32,
            ("U", 8) => Scalar::U64,
            _ => return None,
        })
    }
}

/// One field of the PCD header.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    scalar: Scalar,
    size: usize,
    count: usize,
    /// Byte offset of the field inside a `binary` record.
    offset: usize,
    /// Token index of the field's first value on an `ascii` line.
    token: usize,
}

/// The `DATA` encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Ascii,
    Binary,
    BinaryCompressed,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Ascii => "ascii",
            Encoding::Binary => "binary",
            Encoding::BinaryCompressed => "binary_compressed",
        }
    }
}

/// A parsed PCD header.
#[derive(Debug, Clone)]
struct Header {
    version: String,
    fields: Vec<Field>,
    points: usize,
    encoding: Encoding,
    /// Bytes per `binary` record.
    record_bytes: usize,
    /// Byte offset of the data section.
    data_start: usize,
    /// Comment lines (without `#`) in pointpipe's metadata form.
    meta: Vec<String>,
}

/// Where one scalar value of every point lives in a decoded byte buffer:
/// point `i` is at `start + i * stride`.
#[derive(Debug, Clone, Copy)]
struct Column {
    start: usize,
    stride: usize,
    scalar: Scalar,
}

fn bytes_at<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

impl Column {
    /// The value of point `i` as `f64`; NaN if out of range (cannot happen
    /// after [`check_data_length`], kept so that no input can panic).
    #[inline(always)]
    fn get(&self, data: &[u8], i: usize) -> f64 {
        let at = self.start + i * self.stride;
        let v = match self.scalar {
            Scalar::F32 => bytes_at(data, at).map(|b| f64::from(f32::from_le_bytes(b))),
            Scalar::F64 => bytes_at(data, at).map(f64::from_le_bytes),
            Scalar::I8 => bytes_at(data, at).map(|b| f64::from(i8::from_le_bytes(b))),
            Scalar::I16 => bytes_at(data, at).map(|b| f64::from(i16::from_le_bytes(b))),
            Scalar::I32 => bytes_at(data, at).map(|b| f64::from(i32::from_le_bytes(b))),
            Scalar::I64 => bytes_at(data, at).map(|b| i64::from_le_bytes(b) as f64),
            Scalar::U8 => bytes_at(data, at).map(|b| f64::from(u8::from_le_bytes(b))),
            Scalar::U16 => bytes_at(data, at).map(|b| f64::from(u16::from_le_bytes(b))),
            Scalar::U32 => bytes_at(data, at).map(|b| f64::from(u32::from_le_bytes(b))),
            Scalar::U64 => bytes_at(data, at).map(|b| u64::from_le_bytes(b) as f64),
        };
        v.unwrap_or(f64::NAN)
    }
}

/// The columns pointpipe reads, each `Some` when the file has the field.
#[derive(Debug, Clone, Default)]
struct Wanted<T> {
    xyz: Option<[T; 3]>,
    intensity: Option<T>,
    normal: Option<[T; 3]>,
    curvature: Option<T>,
    time: Option<T>,
    /// PCL's packed `rgb` / `rgba`.
    rgb: Option<T>,
    /// LAS attribute columns by [`super::ATTRIBUTE_NAMES`] index (the
    /// first three, `red green blue`, as separate fields).
    las: [Option<T>; 11],
}

impl Header {
    fn field(&self, names: &[&str]) -> Option<&Field> {
        names
            .iter()
            .find_map(|n| self.fields.iter().find(|f| f.name == *n))
    }

    /// Finds the wanted fields by name.
    fn wanted(&self) -> Wanted<&Field> {
        let three = |a, b, c| Some([self.field(&[a])?, self.field(&[b])?, self.field(&[c])?]);
        Wanted {
            xyz: three("x", "y", "z"),
            intensity: self.field(&["intensity"]),
            normal: three("normal_x", "normal_y", "normal_z"),
            curvature: self.field(&["curvature"]),
            time: self.field(&["time", "t", "timestamp"]),
            rgb: self.field(&["rgb", "rgba"]),
            las: std::array::from_fn(|k| self.field(&[super::ATTRIBUTE_NAMES[k]])),
        }
    }
}

/// Reads a PCD file; see the [module docs](self).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is
/// empty, the header is malformed or names an unsupported version, type or
/// encoding, `x y z` are missing, the data section holds fewer points than
/// `POINTS` promises, or the LZF data is corrupt.
pub fn read(path: &Path) -> Result<(PointCloud, ReadReport)> {
    let bytes = super::read_file(path)?;
    read_from_bytes(&bytes, path)
}

/// Reads PCD from bytes in memory; `path` only names the source in errors.
///
/// # Errors
/// As [`read`].
pub fn read_from_bytes(bytes: &[u8], path: &Path) -> Result<(PointCloud, ReadReport)> {
    if bytes.is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    if super::sniff(bytes) != Some(Format::Pcd) {
        return Err(super::wrong_magic(path, Format::Pcd, bytes));
    }
    let header = parse_header(bytes, path)?;
    let wanted = header.wanted();
    let Some(xyz) = wanted.xyz else {
        return Err(Error::format(path, "PCD has no x, y and z fields"));
    };
    for f in xyz {
        if f.count != 1 {
            return Err(Error::format(
                path,
                format!("field {} has COUNT {}, expected 1", f.name, f.count),
            ));
        }
    }
    let data = bytes.get(header.data_start..).unwrap_or_default();
    let (mut cloud, dropped) = match header.encoding {
        Encoding::Ascii => read_ascii(data, &header, path)?,
        Encoding::Binary => {
            check_data_length(data.len(), &header, path)?;
            let column = |f: &Field| Column {
                start: f.offset,
                stride: header.record_bytes,
                scalar: f.scalar,
            };
            let cols = map_wanted(&wanted, column, data, header.points);
            decode_columns(data, header.points, &cols)
        }
        Encoding::BinaryCompressed => {
            let raw = decompress(data, &header, path)?;
            let column = |f: &Field| Column {
                start: header.points * f.offset,
                stride: f.size * f.count,
                scalar: f.scalar,
            };
            let cols = map_wanted(&wanted, column, &raw, header.points);
            decode_columns(&raw, header.points, &cols)
        }
    };
    super::drop_empty_normals(&mut cloud);
    let meta = super::parse_meta_lines(header.meta.iter().map(String::as_str), path);
    if let Some(origin) = meta.origin {
        for p in &mut cloud.points {
            p.coords += origin;
        }
    }
    cloud.extras.las_header = meta.las_header;
    let report = ReadReport {
        format: Format::Pcd,
        version: format!("PCD {} {}", header.version, header.encoding.name()),
        points_in_file: header.points,
        dropped_non_finite: dropped,
        crs: cloud
            .extras
            .las_header
            .as_ref()
            .and_then(super::las::crs_summary),
        unit: cloud.linear_unit(),
    };
    Ok((cloud, report))
}

/// Maps the wanted fields to columns, leaving out normal and curvature
/// columns when every normal is zero (checked before anything is allocated;
/// stops at the first non-zero value).
fn map_wanted(
    w: &Wanted<&Field>,
    column: impl Fn(&Field) -> Column,
    data: &[u8],
    n: usize,
) -> Wanted<Column> {
    let mut cols = Wanted {
        xyz: w.xyz.map(|a| a.map(&column)),
        intensity: w.intensity.map(&column),
        normal: w.normal.map(|a| a.map(&column)),
        curvature: w.curvature.map(&column),
        time: w.time.map(&column),
        rgb: w.rgb.map(&column),
        las: w.las.map(|f| f.map(&column)),
    };
    if let Some(normal) = &cols.normal
        && normal.iter().all(|c| (0..n).all(|i| c.get(data, i) == 0.0))
    {
        cols.normal = None;
        cols.curvature = None;
    }
    cols
}

/// Parses the header lines up to and including `DATA`.
fn parse_header(bytes: &[u8], path: &Path) -> Result<Header> {
    let err = |reason: String| Error::format(path, reason);
    let mut version = String::from("0.7");
    let mut names: Vec<String> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut types: Vec<String> = Vec::new();
    let mut counts: Option<Vec<usize>> = None;
    let (mut width, mut height, mut points) = (None::<usize>, None::<usize>, None::<usize>);
    let mut pos = 0;
    let mut line_no = 0;
    let mut meta = Vec::new();
    loop {
        let rest = &bytes[pos.min(bytes.len())..];
        if rest.is_empty() {
            return Err(err("header ends before the DATA line".to_string()));
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = std::str::from_utf8(&rest[..end])
            .map_err(|_| err(format!("header line {} is not text", line_no + 1)))?
            .trim();
        pos += end + 1;
        line_no += 1;
        if let Some(comment) = line.strip_prefix('#') {
            if comment.trim_start().starts_with(super::META_PREFIX) {
                meta.push(comment.trim_start().to_string());
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let mut tokens = line.split_whitespace();
        let key = tokens.next().unwrap_or_default();
        let values: Vec<&str> = tokens.collect();
        let numbers = |what: &str| -> Result<Vec<usize>> {
            values
                .iter()
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| err(format!("{what}: '{v}' is not a non-negative integer")))
                })
                .collect()
        };
        let one = |what: &str| -> Result<usize> {
            match numbers(what)?.as_slice() {
                [n] => Ok(*n),
                _ => Err(err(format!("{what} needs exactly one value"))),
            }
        };
        match key {
            "VERSION" => {
                let v = values.first().copied().unwrap_or_default();
                version = match v {
                    "0.7" | ".7" => "0.7".to_string(),
                    "0.6" | ".6" => "0.6".to_string(),
                    _ => {
                        return Err(err(format!(
                            "unsupported PCD VERSION '{v}' (supported: 0.6, 0.7)"
                        )));
                    }
                };
            }
            "FIELDS" | "COLUMNS" => names = values.iter().map(|s| s.to_string()).collect(),
            "SIZE" => sizes = numbers("SIZE")?,
            "TYPE" => types = values.iter().map(|s| s.to_string()).collect(),
            "COUNT" => counts = Some(numbers("COUNT")?),
            "WIDTH" => width = Some(one("WIDTH")?),
            "HEIGHT" => height = Some(one("HEIGHT")?),
            "POINTS" => points = Some(one("POINTS")?),
            "VIEWPOINT" => {}
            "DATA" => {
                let encoding = match values.first().copied().unwrap_or_default() {
                    "ascii" => Encoding::Ascii,
                    "binary" => Encoding::Binary,
                    "binary_compressed" => Encoding::BinaryCompressed,
                    other => {
                        return Err(err(format!(
                            "unsupported DATA encoding '{other}' \
                             (supported: ascii, binary, binary_compressed)"
                        )));
                    }
                };
                let points = match (points, width, height) {
                    (Some(p), Some(w), Some(h)) if w.checked_mul(h) != Some(p) => {
                        return Err(err(format!(
                            "POINTS {p} differs from WIDTH {w} × HEIGHT {h}"
                        )));
                    }
                    (Some(p), _, _) => p,
                    (None, Some(w), Some(h)) => w
                        .checked_mul(h)
                        .ok_or_else(|| err("WIDTH × HEIGHT overflows".to_string()))?,
                    _ => return Err(err("header has neither POINTS nor WIDTH and HEIGHT".into())),
                };
                let counts = counts.unwrap_or_else(|| vec![1; names.len()]);
                if names.is_empty() {
                    return Err(err("header has no FIELDS".to_string()));
                }
                if sizes.len() != names.len()
                    || types.len() != names.len()
                    || counts.len() != names.len()
                {
                    return Err(err(format!(
                        "FIELDS has {} entries but SIZE {}, TYPE {}, COUNT {}",
                        names.len(),
                        sizes.len(),
                        types.len(),
                        counts.len()
                    )));
                }
                let mut fields = Vec::with_capacity(names.len());
                let (mut offset, mut token) = (0usize, 0usize);
                for (((name, &size), kind), &count) in
                    names.iter().zip(&sizes).zip(&types).zip(&counts)
                {
                    let scalar = Scalar::new(kind, size).ok_or_else(|| {
                        err(format!(
                            "field {name}: unsupported TYPE {kind} with SIZE {size}"
                        ))
                    })?;
                    if count == 0 {
                        return Err(err(format!("field {name}: COUNT 0")));
                    }
                    fields.push(Field {
                        name: name.clone(),
                        scalar,
                        size,
                        count,
                        offset,
                        token,
                    });
                    offset = size
                        .checked_mul(count)
                        .and_then(|b| offset.checked_add(b))
                        .ok_or_else(|| err("record size overflows".to_string()))?;
                    token = token.saturating_add(count);
                }
                return Ok(Header {
                    version,
                    fields,
                    points,
                    encoding,
                    record_bytes: offset,
                    data_start: pos.min(bytes.len()),
                    meta,
                });
            }
            other => return Err(err(format!("unknown header line '{other}'"))),
        }
    }
}

fn check_data_length(available: usize, header: &Header, path: &Path) -> Result<()> {
    let needed = header.points.checked_mul(header.record_bytes);
    match needed {
        Some(n) if n <= available => {
            if available > n {
                log::debug!(
                    "{}: {} bytes after the last point ignored",
                    path.display(),
                    available - n
                );
            }
            Ok(())
        }
        _ => Err(Error::format(
            path,
            format!(
                "header promises {} points of {} bytes but the data section holds {available} \
                 bytes (file truncated?)",
                header.points, header.record_bytes
            ),
        )),
    }
}

/// Decompresses a `binary_compressed` data section.
fn decompress(data: &[u8], header: &Header, path: &Path) -> Result<Vec<u8>> {
    let err = |reason: String| Error::format(path, reason);
    let word = |at: usize| bytes_at::<4>(data, at).map(|b| u32::from_le_bytes(b) as usize);
    let (Some(compressed), Some(uncompressed)) = (word(0), word(4)) else {
        return Err(err(
            "binary_compressed data section shorter than its 8-byte size header".into(),
        ));
    };
    let expected = header.points.checked_mul(header.record_bytes);
    if expected != Some(uncompressed) {
        return Err(err(format!(
            "binary_compressed: uncompressed size {uncompressed} bytes differs from POINTS {} × \
             {} bytes",
            header.points, header.record_bytes
        )));
    }
    if uncompressed == 0 {
        return Ok(Vec::new());
    }
    let Some(payload) = data.get(8..8 + compressed) else {
        return Err(err(format!(
            "binary_compressed: header promises {compressed} compressed bytes but the file holds \
             {} (file truncated?)",
            data.len().saturating_sub(8)
        )));
    };
    // LZF expands at most ~88×; refuse absurd sizes before allocating them.
    if uncompressed / 100 > compressed.max(1) {
        return Err(err(format!(
            "binary_compressed: {compressed} compressed bytes cannot hold {uncompressed} bytes"
        )));
    }
    let raw = lzf::decompress(payload, uncompressed)
        .map_err(|e| err(format!("binary_compressed: LZF data corrupt: {e}")))?;
    if raw.len() != uncompressed {
        return Err(err(format!(
            "binary_compressed: LZF data decompressed to {} bytes, expected {uncompressed}",
            raw.len()
        )));
    }
    Ok(raw)
}

/// Decodes `n` points from strided columns, dropping non-finite positions;
/// returns the cloud and the number dropped. Positions are decoded first
/// (remembering the kept indices only once a point has been dropped), then
/// each attribute column in one tight loop.
fn decode_columns(data: &[u8], n: usize, cols: &Wanted<Column>) -> (PointCloud, usize) {
    let Some([cx, cy, cz]) = cols.xyz else {
        return (PointCloud::default(), 0);
    };
    let mut points = Vec::with_capacity(n);
    let mut kept: Option<Vec<usize>> = None;
    for i in 0..n {
        let (x, y, z) = (cx.get(data, i), cy.get(data, i), cz.get(data, i));
        if super::is_finite3(x, y, z) {
            points.push(Point3::new(x, y, z));
            if let Some(k) = &mut kept {
                k.push(i);
            }
        } else if kept.is_none() {
            kept = Some((0..i).collect());
        }
    }
    let kept = kept.as_deref();
    let gather = |c: &Column| gather_column(data, n, kept, c);
    let las_attributes = las_columns(cols, points.len(), gather);
    let cloud = PointCloud {
        extras: Extras {
            las_attributes,
            las_header: None,
        },
        intensity: cols
            .intensity
            .map(|c| gather(&c).into_iter().map(|v| v as f32).collect()),
        normals: cols.normal.map(|[a, b, c]| {
            let (a, b, c) = (gather(&a), gather(&b), gather(&c));
            a.iter()
                .zip(&b)
                .zip(&c)
                .map(|((&x, &y), &z)| Vector3::new(x, y, z))
                .collect()
        }),
        curvature: cols.curvature.map(|c| gather(&c)),
        time: cols.time.map(|c| gather(&c)),
        points,
    };
    let dropped = n - cloud.points.len();
    (cloud, dropped)
}

/// LAS attributes from the `rgb` and [`super::ATTRIBUTE_NAMES`] columns.
fn las_columns<T: Copy>(
    cols: &Wanted<T>,
    n: usize,
    gather: impl Fn(&T) -> Vec<f64>,
) -> Option<crate::cloud::LasAttributes> {
    let mut present: [bool; 11] = std::array::from_fn(|k| cols.las[k].is_some());
    let mut values = vec![[0.0f64; 11]; n];
    for (k, c) in cols.las.iter().enumerate() {
        if let Some(c) = c {
            for (v, x) in values.iter_mut().zip(gather(c)) {
                v[k] = x;
            }
        }
    }
    if let Some(c) = &cols.rgb {
        present[..3].fill(true);
        for (v, x) in values.iter_mut().zip(gather(c)) {
            v[..3].copy_from_slice(&super::unpack_rgb(rgb_bits(x)));
        }
    }
    super::las_attributes_from_columns(&present, &values)
}

/// The bits of a packed `rgb` value read as a number: an `F 4` field holds
/// the bits of a float (widened exactly to `f64`), a `U 4` / `I 4` field
/// the integer.
fn rgb_bits(x: f64) -> u32 {
    if x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x) && x >= 1.0 {
        // An integer field, or a float whose bits happen to be an integer
        // value: packed-float colours are denormals (< 1), never integers ≥ 1.
        x as u32
    } else {
        (x as f32).to_bits()
    }
}

/// Values of column `c` for every point, or for the `kept` indices only.
fn gather_column(data: &[u8], n: usize, kept: Option<&[usize]>, c: &Column) -> Vec<f64> {
    match kept {
        None => (0..n).map(|i| c.get(data, i)).collect(),
        Some(k) => k.iter().map(|&i| c.get(data, i)).collect(),
    }
}

/// Reads the `ascii` data section: one point per line, values separated by
/// whitespace, fields in header order.
fn read_ascii(data: &[u8], header: &Header, path: &Path) -> Result<(PointCloud, usize)> {
    let text = std::str::from_utf8(data)
        .map_err(|e| Error::format(path, format!("ascii data is not UTF-8 text: {e}")))?;
    let wanted = header.wanted();
    let token = |f: Option<&Field>| f.map(|f| f.token);
    let xyz = wanted.xyz.map(|a| a.map(|f| f.token));
    let normal = wanted.normal.map(|a| a.map(|f| f.token));
    let (ti, tc, tt) = (
        token(wanted.intensity),
        token(wanted.curvature),
        token(wanted.time),
    );
    let Some([tx, ty, tz]) = xyz else {
        return Err(Error::format(path, "PCD has no x, y and z fields"));
    };
    let n = header.points;
    let mut cloud = PointCloud {
        points: Vec::with_capacity(n.min(text.len() / 2)),
        intensity: ti.map(|_| Vec::new()),
        normals: normal.map(|_| Vec::new()),
        curvature: tc.map(|_| Vec::new()),
        time: tt.map(|_| Vec::new()),
        ..Default::default()
    };
    let las_tokens: [Option<usize>; 11] = wanted.las.map(token);
    let rgb_token = token(wanted.rgb);
    let any_las = rgb_token.is_some() || las_tokens.iter().any(Option::is_some);
    let mut las_values: Vec<[f64; 11]> = Vec::new();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut tokens: Vec<&str> = Vec::new();
    for i in 0..n {
        let Some(line) = lines.next() else {
            return Err(Error::format(
                path,
                format!("header promises {n} points but the ascii data has {i} lines"),
            ));
        };
        tokens.clear();
        tokens.extend(line.split_whitespace());
        let value = |t: usize| -> Result<f64> {
            let s = tokens.get(t).ok_or_else(|| {
                Error::format(
                    path,
                    format!("ascii point {i}: {} values, expected more", tokens.len()),
                )
            })?;
            s.parse::<f64>()
                .map_err(|_| Error::format(path, format!("ascii point {i}: '{s}' is not a number")))
        };
        let (x, y, z) = (value(tx)?, value(ty)?, value(tz)?);
        if !super::is_finite3(x, y, z) {
            continue;
        }
        cloud.points.push(Point3::new(x, y, z));
        if let (Some(v), Some(t)) = (&mut cloud.intensity, ti) {
            v.push(value(t)? as f32);
        }
        if let (Some(v), Some([a, b, c])) = (&mut cloud.normals, normal) {
            v.push(Vector3::new(value(a)?, value(b)?, value(c)?));
        }
        if let (Some(v), Some(t)) = (&mut cloud.curvature, tc) {
            v.push(value(t)?);
        }
        if let (Some(v), Some(t)) = (&mut cloud.time, tt) {
            v.push(value(t)?);
        }
        if any_las {
            let mut row = [0.0; 11];
            for (k, t) in las_tokens.iter().enumerate() {
                if let Some(t) = t {
                    row[k] = value(*t)?;
                }
            }
            if let Some(t) = rgb_token {
                row[..3].copy_from_slice(&super::unpack_rgb(rgb_bits(value(t)?)));
            }
            las_values.push(row);
        }
    }
    let mut present: [bool; 11] = std::array::from_fn(|k| las_tokens[k].is_some());
    if rgb_token.is_some() {
        present[..3].fill(true);
    }
    cloud.extras.las_attributes = super::las_attributes_from_columns(&present, &las_values);
    let dropped = n - cloud.points.len();
    Ok((cloud, dropped))
}

/// Options of [`write_with_options`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcdOptions {
    /// Store `x y z` as `F 8` (double) instead of `F 4`. PCL's point types
    /// and Open3D read only `F 4` coordinates (Open3D reads `F 8` ones as
    /// zeros, PCL's tools fail to match the fields), so this is for readers
    /// that handle doubles.
    pub double: bool,
}

/// Writes `cloud` as PCD v0.7 `DATA binary` readable by PCL and Open3D,
/// atomically; see [`write_with_options`] (default options).
///
/// # Errors
/// As [`write_with_options`].
pub fn write(path: &Path, cloud: &PointCloud) -> Result<()> {
    write_with_options(path, cloud, &PcdOptions::default())
}

/// Writes `cloud` as PCD v0.7 `DATA binary`, atomically.
///
/// Fields: `x y z` as `F 4` (what PCL and Open3D read), or `F 8` with
/// [`PcdOptions::double`]; then, when present, `intensity` (F4),
/// `normal_x normal_y normal_z` (F4), `curvature` (F4), `time` (F8,
/// seconds), PCL's packed `rgb` (F4 bits `0x00RRGGBB`, 8 bits per channel:
/// 16-bit LAS colour keeps its high byte), and for clouds with LAS
/// attributes `classification return_number number_of_returns` (U1),
/// `scan_angle` (F4, degrees), `user_data` (U1), `point_source_id` (U2),
/// `las_flags` (U1) and `nir` (U2). `WIDTH` is the point count, `HEIGHT 1`,
/// `VIEWPOINT` identity (it is the sensor pose, not an offset).
///
/// # Local origin
/// When a coordinate is too large for `f32` to keep the data's precision
/// ([`super::data_precision`], [`super::f32_limit`]: 8192 at 1 mm; UTM or
/// State Plane coordinates always are), the positions are stored relative
/// to a local origin, the centre of the bounds rounded to the precision,
/// recorded in the header line `# pointpipe origin X Y Z` ([`read`] adds it
/// back; PCL and Open3D see local coordinates). If even the local
/// coordinates round by more than half the precision, a warning is logged
/// with the rounding. A cloud read from LAS also gets `# pointpipe las_*`
/// lines (version, point format, scale, offset, CRS VLRs) so that PCD → LAS
/// restores them.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_with_options(path: &Path, cloud: &PointCloud, options: &PcdOptions) -> Result<()> {
    let precision = super::data_precision(cloud);
    let limit = super::f32_limit(precision);
    let zero = Vector3::zeros();
    let origin = match cloud.bounds() {
        Some((lo, hi)) if !options.double && super::max_abs(cloud, &zero) > limit => {
            ((lo.coords + hi.coords) / 2.0).map(|c| (c / precision).round() * precision)
        }
        _ => zero,
    };
    if !options.double {
        let local = super::max_abs(cloud, &origin);
        if local > limit {
            log::warn!(
                "{}: float32 PCD coordinates round by up to {:.3e} (local extent {local:.3e} \
                 from the origin), more than half the data's precision {precision:e}; use PLY or \
                 LAS output, or double PCD (`PcdOptions::double`, the CLI's --pcd-double), \
                 to keep it",
                path.display(),
                local * f64::powi(2.0, -24)
            );
        }
    }
    let mut fields: Vec<(&str, usize, char)> = Vec::new();
    let xyz_size = if options.double { 8 } else { 4 };
    fields.extend([
        ("x", xyz_size, 'F'),
        ("y", xyz_size, 'F'),
        ("z", xyz_size, 'F'),
    ]);
    if cloud.intensity.is_some() {
        fields.push(("intensity", 4, 'F'));
    }
    if cloud.normals.is_some() {
        fields.extend([
            ("normal_x", 4, 'F'),
            ("normal_y", 4, 'F'),
            ("normal_z", 4, 'F'),
        ]);
    }
    if cloud.curvature.is_some() {
        fields.push(("curvature", 4, 'F'));
    }
    if cloud.time.is_some() {
        fields.push(("time", 8, 'F'));
    }
    let mut color = super::ColorEncoding::None;
    if let Some(a) = &cloud.extras.las_attributes {
        if let Some(c) = &a.color {
            color = super::ColorEncoding::PackedRgb;
            fields.push(("rgb", 4, 'F'));
            if c.iter().flatten().any(|&v| v > 255) {
                log::info!(
                    "{}: PCD colour is 8 bits per channel; the 16-bit LAS colour keeps its high byte",
                    path.display()
                );
            }
        }
        for (name, kind) in super::LAS_COLUMNS {
            fields.push(match kind {
                'u' => (name, 1, 'U'),
                's' => (name, 2, 'U'),
                _ => (name, 4, 'F'),
            });
        }
        if a.nir.is_some() {
            fields.push(("nir", 2, 'U'));
        }
    }
    let n = cloud.len();
    let join = |f: &dyn Fn(&(&str, usize, char)) -> String| {
        fields.iter().map(f).collect::<Vec<_>>().join(" ")
    };
    let mut meta = String::new();
    if origin != zero {
        meta.push_str(&format!(
            "# {}origin {} {} {}\n",
            super::META_PREFIX,
            origin.x,
            origin.y,
            origin.z
        ));
    }
    for line in super::las_meta_lines(cloud) {
        meta.push_str(&format!("# {line}\n"));
    }
    let header = format!(
        "# .PCD v0.7 - Point Cloud Data file format (written by pointpipe)\n{meta}\
         VERSION 0.7\nFIELDS {}\nSIZE {}\nTYPE {}\nCOUNT {}\nWIDTH {n}\nHEIGHT 1\n\
         VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n",
        join(&|f| f.0.to_string()),
        join(&|f| f.1.to_string()),
        join(&|f| f.2.to_string()),
        join(&|_| "1".to_string()),
    );
    let record: usize = fields.iter().map(|f| f.1).sum();
    let mut bytes = Vec::with_capacity(header.len() + n * record);
    bytes.extend_from_slice(header.as_bytes());
    let xyz = super::XyzEncoding {
        double: options.double,
        origin,
    };
    super::encode_le_records(cloud, xyz, color, &mut bytes);
    atomic::write_atomic(path, |out| {
        out.write_all(&bytes).map_err(atomic::io_err(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "t.pcd";

    fn header(fields: &str, size: &str, kind: &str, count: &str, n: usize, data: &str) -> String {
        format!(
            "# .PCD v0.7\nVERSION 0.7\nFIELDS {fields}\nSIZE {size}\nTYPE {kind}\nCOUNT {count}\n\
             WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n"
        )
    }

    #[test]
    fn ascii_with_fields_out_of_order_and_padding() {
        let text = header(
            "_ z intensity y x",
            "4 4 4 8 8",
            "U F F F F",
            "2 1 1 1 1",
            2,
            "ascii",
        ) + "0 0 3 0.5 2 1\n9 9 nan 0.1 0 0\n";
        let (c, r) = read_from_bytes(text.as_bytes(), Path::new(P)).unwrap();
        assert_eq!(c.points, vec![Point3::new(1.0, 2.0, 3.0)]);
        assert_eq!(c.intensity, Some(vec![0.5]));
        assert_eq!(r.dropped_non_finite, 1);
        assert_eq!(r.version, "PCD 0.7 ascii");
    }

    #[test]
    fn binary_mixed_types_and_binary_compressed_agree() {
        // x:F8 y:F4 z:I2 ring:U1 (count 3)
        let h = |data| header("x y z ring", "8 4 2 1", "F F I U", "1 1 1 3", 2, data);
        let pts = [(1.5f64, -2.25f32, 7i16), (4.0, 5.0, -3)];
        let mut rows = Vec::new();
        for &(x, y, z) in &pts {
            rows.extend(x.to_le_bytes());
            rows.extend(y.to_le_bytes());
            rows.extend(z.to_le_bytes());
            rows.extend([1u8, 2, 3]);
        }
        let mut bin = h("binary").into_bytes();
        bin.extend(&rows);
        let (a, _) = read_from_bytes(&bin, Path::new(P)).unwrap();
        assert_eq!(
            a.points,
            vec![Point3::new(1.5, -2.25, 7.0), Point3::new(4.0, 5.0, -3.0)]
        );
        // Column-major layout for binary_compressed.
        let mut cols = Vec::new();
        for &(x, _, _) in &pts {
            cols.extend(x.to_le_bytes());
        }
        for &(_, y, _) in &pts {
            cols.extend(y.to_le_bytes());
        }
        for &(_, _, z) in &pts {
            cols.extend(z.to_le_bytes());
        }
        for _ in &pts {
            cols.extend([1u8, 2, 3]);
        }
        let lz = lzf::compress(&cols).unwrap_or_else(|_| {
            // Incompressible: store as literal runs of at most 32 bytes.
            cols.chunks(32)
                .flat_map(|c| std::iter::once(c.len() as u8 - 1).chain(c.iter().copied()))
                .collect()
        });
        let mut comp = h("binary_compressed").into_bytes();
        comp.extend((lz.len() as u32).to_le_bytes());
        comp.extend((cols.len() as u32).to_le_bytes());
        comp.extend(&lz);
        let (b, r) = read_from_bytes(&comp, Path::new(P)).unwrap();
        assert_eq!(b.points, a.points);
        assert_eq!(r.version, "PCD 0.7 binary_compressed");
    }

    #[test]
    fn header_promising_more_points_than_present_is_an_error() {
        let mut bin = header("x y z", "4 4 4", "F F F", "1 1 1", 3, "binary").into_bytes();
        bin.extend([0u8; 24]);
        let e = read_from_bytes(&bin, Path::new(P)).unwrap_err().to_string();
        assert!(e.contains("promises 3 points"), "{e}");
    }

    #[test]
    fn unsupported_version_type_and_encoding_are_errors() {
        let ok = header("x y z", "4 4 4", "F F F", "1 1 1", 0, "binary");
        assert!(read_from_bytes(ok.as_bytes(), Path::new(P)).is_ok());
        for bad in [
            ok.replace("VERSION 0.7", "VERSION 0.9"),
            ok.replace("TYPE F F F", "TYPE F F X"),
            ok.replace("SIZE 4 4 4", "SIZE 4 4 3"),
            ok.replace("DATA binary", "DATA zip"),
            ok.replace("FIELDS x y z", "FIELDS x y w"),
            ok.replace("POINTS 0", "POINTS 5"),
        ] {
            assert!(
                read_from_bytes(bad.as_bytes(), Path::new(P)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn all_zero_normals_are_not_kept() {
        let mut bin = header(
            "x y z normal_x normal_y normal_z curvature",
            "4 4 4 4 4 4 4",
            "F F F F F F F",
            "1 1 1 1 1 1 1",
            1,
            "binary",
        )
        .into_bytes();
        bin.extend(
            [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0]
                .iter()
                .flat_map(|f| f.to_le_bytes()),
        );
        let (c, _) = read_from_bytes(&bin, Path::new(P)).unwrap();
        assert!(c.normals.is_none() && c.curvature.is_none());
    }
}
