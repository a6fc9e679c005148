//! PLY (Stanford polygon format): `ascii`, `binary_little_endian` and
//! `binary_big_endian` reader via `ply-rs-bw`, `binary_little_endian` writer.
//!
//! Source: Greg Turk, "The PLY Polygon File Format" (1994).
//!
//! # What is read
//! Only the `vertex` element. Its properties are parsed straight into a
//! typed struct through `ply_rs_bw::ply::PropertyAccess` (the generic
//! key-value reader is much slower). `x y z` are required and may have any
//! scalar type (float and double in practice); also read when present:
//! intensity (`intensity`, `scalar_intensity`, `reflectance`), normals
//! (`nx ny nz`), `curvature`, time (`time`, `t`, `timestamp`, seconds), and
//! the LAS attributes pointpipe writes (`red green blue`, `classification`,
//! `return_number`, `number_of_returns`, `scan_angle`, `user_data`,
//! `point_source_id`, `las_flags`, `nir`) into [`Extras::las_attributes`](crate::cloud::Extras::las_attributes).
//! Any scalar type (uchar, ushort, ...) is accepted for each and converted.
//! `comment pointpipe las_*` lines give back the LAS header of the source
//! (see [`write()`]). In ASCII files, `nan` / `inf` tokens are accepted (the
//! point is dropped as non-finite).
//! Every other property and every other element (faces, the `range_grid` of
//! range scans) is skipped by a byte-level scanner that still checks that the
//! data is present, so a truncated file is an error even when the vertices
//! are complete. Non-finite points are dropped and counted; the normal
//! convention of [`super::pcd`] applies (all-zero normals are not kept).

use std::io::Write;
use std::path::Path;

use nalgebra::{Point3, Vector3};
use ply_rs_bw::parser::{Parser, Reader};
use ply_rs_bw::ply::{
    ElementDef, Encoding, Header, PropertyAccess, PropertyAccessResult, PropertyType, ScalarType,
};

use super::{Format, ReadReport, atomic};
use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// Property names read as intensity.
const INTENSITY_NAMES: &[&str] = &["intensity", "scalar_intensity", "reflectance"];
/// Property names read as time.
const TIME_NAMES: &[&str] = &["time", "t", "timestamp"];

/// One vertex as parsed; fields the file lacks stay at their defaults.
#[derive(Debug, Clone, Copy, Default)]
struct Vertex {
    x: f64,
    y: f64,
    z: f64,
    intensity: f32,
    normal: [f64; 3],
    curvature: f64,
    time: f64,
}

/// A vertex of a file that also has LAS attribute properties
/// ([`super::ATTRIBUTE_NAMES`]); a separate type so that files without them
/// keep the small [`Vertex`].
#[derive(Debug, Clone, Copy, Default)]
struct LasVertex {
    base: Vertex,
    /// LAS attributes in the order of [`super::ATTRIBUTE_NAMES`] (every one
    /// fits `f32` exactly: u8, u16 or the f32 scan angle).
    las: [f32; 11],
}

/// Access to what [`build_cloud`] needs from either vertex type.
trait VertexData: PropertyAccess {
    fn base(&self) -> &Vertex;
    fn las(&self) -> Option<&[f32; 11]>;
}

impl VertexData for Vertex {
    #[inline]
    fn base(&self) -> &Vertex {
        self
    }
    #[inline]
    fn las(&self) -> Option<&[f32; 11]> {
        None
    }
}

impl VertexData for LasVertex {
    #[inline]
    fn base(&self) -> &Vertex {
        &self.base
    }
    #[inline]
    fn las(&self) -> Option<&[f32; 11]> {
        Some(&self.las)
    }
}

impl LasVertex {
    #[inline]
    fn set(&mut self, name: &str, v: f64) -> PropertyAccessResult {
        match self.base.set(name, v) {
            PropertyAccessResult::Ignored => {
                match super::ATTRIBUTE_NAMES.iter().position(|a| *a == name) {
                    Some(k) => {
                        self.las[k] = v as f32;
                        PropertyAccessResult::Set
                    }
                    None => PropertyAccessResult::Ignored,
                }
            }
            set => set,
        }
    }
}

impl PropertyAccess for LasVertex {
    fn new() -> Self {
        LasVertex::default()
    }
    fn set_char(&mut self, name: &str, v: i8) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_uchar(&mut self, name: &str, v: u8) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_short(&mut self, name: &str, v: i16) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_ushort(&mut self, name: &str, v: u16) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_int(&mut self, name: &str, v: i32) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_uint(&mut self, name: &str, v: u32) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_float(&mut self, name: &str, v: f32) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_double(&mut self, name: &str, v: f64) -> PropertyAccessResult {
        self.set(name, v)
    }
}

impl Vertex {
    #[inline]
    fn set(&mut self, name: &str, v: f64) -> PropertyAccessResult {
        match name {
            "x" => self.x = v,
            "y" => self.y = v,
            "z" => self.z = v,
            "nx" => self.normal[0] = v,
            "ny" => self.normal[1] = v,
            "nz" => self.normal[2] = v,
            "curvature" => self.curvature = v,
            n if INTENSITY_NAMES.contains(&n) => self.intensity = v as f32,
            n if TIME_NAMES.contains(&n) => self.time = v,
            _ => return PropertyAccessResult::Ignored,
        }
        PropertyAccessResult::Set
    }
}

impl PropertyAccess for Vertex {
    fn new() -> Self {
        Vertex::default()
    }
    fn set_char(&mut self, name: &str, v: i8) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_uchar(&mut self, name: &str, v: u8) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_short(&mut self, name: &str, v: i16) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_ushort(&mut self, name: &str, v: u16) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_int(&mut self, name: &str, v: i32) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_uint(&mut self, name: &str, v: u32) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_float(&mut self, name: &str, v: f32) -> PropertyAccessResult {
        self.set(name, f64::from(v))
    }
    fn set_double(&mut self, name: &str, v: f64) -> PropertyAccessResult {
        self.set(name, v)
    }
}

/// Reads a PLY file; see the [module docs](self).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is
/// empty, lacks the `ply` magic, has a malformed header, no `vertex` element
/// or no scalar `x y z`, or holds less data than its header promises. The
/// reason is one line naming the fault and where it is: the header line
/// (counted from 1 at `ply`), the ASCII data line and entry, or the binary
/// entry, property and byte where the data ends.
pub fn read(path: &Path) -> Result<(PointCloud, ReadReport)> {
    let bytes = super::read_file(path)?;
    read_from_bytes(&bytes, path)
}

/// Reads PLY from bytes in memory; `path` only names the source in errors.
///
/// # Errors
/// As [`read`].
pub fn read_from_bytes(bytes: &[u8], path: &Path) -> Result<(PointCloud, ReadReport)> {
    read_inner(bytes, path, true)
}

/// [`read_from_bytes`]; when an ASCII file fails to parse and `retry` is
/// set, its `nan`/`inf` tokens are rewritten and it is read once more (so
/// files without them pay nothing).
fn read_inner(bytes: &[u8], path: &Path, retry: bool) -> Result<(PointCloud, ReadReport)> {
    if bytes.is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    if super::sniff(bytes) != Some(Format::Ply) {
        return Err(super::wrong_magic(path, Format::Ply, bytes));
    }
    let mut reader = Reader::new(bytes);
    let header = Parser::<Vertex>::new()
        .read_header(&mut reader)
        .map_err(|e| {
            // The crate's messages span lines and hold the grammar's debug
            // structures: say what is wrong with which line ourselves.
            let reason = header_problem(bytes).unwrap_or_else(|| one_line(&e));
            Error::format(path, format!("PLY header {reason}"))
        })?;
    let data_start = bytes.len() - reader.get_ref().len();
    let mut rest: &[u8] = reader.get_ref();

    let mut vertices: Option<(PointCloud, usize, usize)> = None;
    for (_, element) in &header.elements {
        if element.name == "vertex" && vertices.is_none() {
            check_xyz(element, path)?;
            let mut r = Reader::new(rest);
            let parsed = if has_las_properties(element) {
                Parser::<LasVertex>::new()
                    .read_payload_for_element(&mut r, element, &header)
                    .map(|v| build_cloud(&v, element))
            } else {
                Parser::<Vertex>::new()
                    .read_payload_for_element(&mut r, element, &header)
                    .map(|v| build_cloud(&v, element))
            };
            let (cloud, in_file, dropped) =
                match parsed {
                    Ok(built) => built,
                    Err(e) => {
                        let offset = bytes.len() - rest.len();
                        let diagnosis = || {
                            let reason =
                                body_problem(bytes, offset, element, &header.encoding, true)
                                    .unwrap_or_else(|| {
                                        format!("'{}' data: {}", element.name, one_line(&e))
                                    });
                            Error::format(path, format!("PLY {reason}"))
                        };
                        if retry
                            && matches!(header.encoding, Encoding::Ascii)
                            && let Some(data) = ascii_non_finite_as_overflow(&bytes[data_start..])
                        {
                            let mut fixed = bytes[..data_start].to_vec();
                            fixed.extend_from_slice(&data);
                            // A failure of the rewritten data is described on
                            // the original bytes (its tokens and lines).
                            return read_inner(&fixed, path, false).map_err(|retried| {
                                match body_problem(bytes, offset, element, &header.encoding, true) {
                                    Some(reason) => Error::format(path, format!("PLY {reason}")),
                                    None => retried,
                                }
                            });
                        }
                        return Err(diagnosis());
                    }
                };
            rest = r.get_ref();
            vertices = Some((cloud, in_file, dropped));
        } else {
            let offset = bytes.len() - rest.len();
            rest = skip_element(rest, element, &header.encoding).ok_or_else(|| {
                let reason = body_problem(bytes, offset, element, &header.encoding, false)
                    .unwrap_or_else(|| {
                        format!(
                            "data ends inside element '{}' ({} entries promised): \
                             file truncated",
                            element.name, element.count
                        )
                    });
                Error::format(path, format!("PLY {reason}"))
            })?;
        }
    }
    let Some((mut cloud, points_in_file, dropped)) = vertices else {
        return Err(Error::format(path, "PLY has no 'vertex' element"));
    };
    let meta = super::parse_meta_lines(header.comments.iter().map(String::as_str), path);
    cloud.extras.las_header = meta.las_header;
    let report = ReadReport {
        format: Format::Ply,
        version: format!("PLY {}", encoding_name(&header)),
        points_in_file,
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

/// True when the element has one of the LAS attribute properties.
fn has_las_properties(element: &ElementDef) -> bool {
    has_any(element, &super::ATTRIBUTE_NAMES)
}

fn encoding_name(header: &Header) -> &'static str {
    match header.encoding {
        Encoding::Ascii => "ascii",
        Encoding::BinaryLittleEndian => "binary_little_endian",
        Encoding::BinaryBigEndian => "binary_big_endian",
    }
}

fn check_xyz(element: &ElementDef, path: &Path) -> Result<()> {
    for name in ["x", "y", "z"] {
        match element.properties.get(name).map(|p| &p.data_type) {
            Some(PropertyType::Scalar(_)) => {}
            Some(PropertyType::List(..)) => {
                return Err(Error::format(
                    path,
                    format!("PLY vertex property '{name}' is a list, expected a number"),
                ));
            }
            None => {
                return Err(Error::format(
                    path,
                    format!("PLY vertex element has no '{name}' property"),
                ));
            }
        }
    }
    Ok(())
}

fn has_any(element: &ElementDef, names: &[&str]) -> bool {
    names.iter().any(|n| {
        element
            .properties
            .get(*n)
            .is_some_and(|p| matches!(p.data_type, PropertyType::Scalar(_)))
    })
}

/// Collects finite vertices into a cloud with the attributes the element
/// has; returns the cloud, the vertex count and the number dropped.
fn build_cloud<V: VertexData>(vertices: &[V], element: &ElementDef) -> (PointCloud, usize, usize) {
    let n = vertices.len();
    fn want<T>(element: &ElementDef, names: &[&str], n: usize) -> Option<Vec<T>> {
        has_any(element, names).then(|| Vec::with_capacity(n))
    }
    let mut cloud = PointCloud {
        points: Vec::with_capacity(n),
        intensity: want(element, INTENSITY_NAMES, n),
        normals: ["nx", "ny", "nz"]
            .iter()
            .all(|name| has_any(element, &[name]))
            .then(|| Vec::with_capacity(n)),
        curvature: want(element, &["curvature"], n),
        time: want(element, TIME_NAMES, n),
        ..Default::default()
    };
    let present: [bool; 11] =
        std::array::from_fn(|k| has_any(element, &[super::ATTRIBUTE_NAMES[k]]));
    let mut las_values = Vec::new();
    for vertex in vertices {
        let v = vertex.base();
        if !super::is_finite3(v.x, v.y, v.z) {
            continue;
        }
        if let Some(las) = vertex.las() {
            las_values.push(las.map(f64::from));
        }
        cloud.points.push(Point3::new(v.x, v.y, v.z));
        if let Some(i) = &mut cloud.intensity {
            i.push(v.intensity);
        }
        if let Some(nrm) = &mut cloud.normals {
            nrm.push(Vector3::from(v.normal));
        }
        if let Some(c) = &mut cloud.curvature {
            c.push(v.curvature);
        }
        if let Some(t) = &mut cloud.time {
            t.push(v.time);
        }
    }
    cloud.extras.las_attributes = super::las_attributes_from_columns(&present, &las_values);
    super::drop_empty_normals(&mut cloud);
    let dropped = n - cloud.len();
    (cloud, n, dropped)
}

/// The ASCII data section with every `nan` / `inf` token (any case and sign,
/// also `infinity`, `nan(...)`; what `pcl_pcd2ply` writes for the empty
/// cells of organised clouds) replaced by `1e999` / `-1e999`, which the PLY
/// number grammar accepts and which parse to ±∞ in float properties, so the
/// point is dropped and counted as non-finite. `None` when the data has no
/// such token (nothing copied).
fn ascii_non_finite_as_overflow(data: &[u8]) -> Option<Vec<u8>> {
    if !data.iter().any(|b| matches!(b, b'n' | b'N' | b'i' | b'I')) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut changed = false;
    for piece in data.split_inclusive(|b| b.is_ascii_whitespace()) {
        let end = piece
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(piece.len());
        let (token, space) = piece.split_at(end);
        let lower = token.to_ascii_lowercase();
        let (negative, body) = match lower.first() {
            Some(b'-') => (true, &lower[1..]),
            Some(b'+') => (false, &lower[1..]),
            _ => (false, &lower[..]),
        };
        let non_finite = body == b"inf" || body == b"infinity" || body.starts_with(b"nan");
        if non_finite {
            changed = true;
            out.extend_from_slice(if negative && !body.starts_with(b"nan") {
                b"-1e999"
            } else {
                b"1e999"
            });
        } else {
            out.extend_from_slice(token);
        }
        out.extend_from_slice(space);
    }
    changed.then_some(out)
}

/// The first line of a `ply-rs-bw` error, cut before any debug structure
/// (`{`) and without the crate's `Line N:` prefix (its line numbers count
/// from the start of the data handed to it, not of the file). Only used
/// when [`header_problem`] / [`body_problem`] find nothing to say.
fn one_line(e: &ply_rs_bw::parser::ParseError) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = match first.split_once(": ") {
        Some((prefix, rest)) if prefix.starts_with("Line ") => rest,
        _ => first,
    };
    let first = first.split('{').next().unwrap_or_default().trim_end();
    if first.is_empty() {
        "malformed data".to_string()
    } else {
        first.to_string()
    }
}

/// Property type names of the PLY header (the spec's and the sized aliases).
const SCALAR_TYPE_NAMES: &[&str] = &[
    "char", "uchar", "short", "ushort", "int", "uint", "float", "double", "int8", "uint8", "int16",
    "uint16", "int32", "uint32", "float32", "float64",
];

/// A token shown in a message: at most 40 characters, control characters
/// escaped, so a message stays on one line.
fn shown(token: &[u8]) -> String {
    let text = String::from_utf8_lossy(token);
    let mut out = String::new();
    for c in text.chars().take(40) {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Splits a header or ASCII data line into its tokens (PLY separates them
/// by spaces and tabs).
fn tokens(line: &[u8]) -> Vec<&[u8]> {
    line.split(|&b| b == b' ' || b == b'\t')
        .filter(|t| !t.is_empty())
        .collect()
}

/// `[A-Za-z_][A-Za-z0-9_-]*`: the names `ply-rs-bw` accepts for elements
/// and properties.
fn is_name(token: &[u8]) -> bool {
    token
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && token
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// Checks the header line by line and describes the first problem as
/// `line N: ...` (lines counted from 1 at the `ply` line); `None` when the
/// header looks well-formed. Called only after the crate refused the
/// header, to give a message that names the line and the fault.
fn header_problem(bytes: &[u8]) -> Option<String> {
    let mut rest = bytes;
    let mut format_line: Option<(usize, Vec<u8>)> = None;
    let mut element: Option<String> = None;
    for number in 1usize.. {
        if rest.is_empty() {
            return Some(format!(
                "ends after line {} without 'end_header': file truncated, or not a PLY file",
                number - 1
            ));
        }
        let end = rest.iter().position(|&b| b == b'\n');
        let raw = &rest[..end.unwrap_or(rest.len())];
        rest = end.map_or(&[][..], |e| &rest[e + 1..]);
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let at = format!("line {number}");
        if let Err(e) = std::str::from_utf8(line) {
            return Some(format!(
                "{at}: not text (byte {} of the line is not UTF-8): the header is damaged",
                e.valid_up_to() + 1
            ));
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Some(format!("{at}: starts with white space: '{}'", shown(line)));
        }
        let t = tokens(line);
        let Some(&keyword) = t.first() else {
            return Some(format!("{at}: empty line inside the header"));
        };
        if number == 1 {
            if t.as_slice() != [b"ply"] {
                return Some(format!("{at}: expected 'ply', found '{}'", shown(line)));
            }
            continue;
        }
        match keyword {
            b"ply" => return Some(format!("{at}: a second 'ply' line")),
            b"comment" | b"obj_info" => {}
            b"format" => {
                let [_, encoding, version] = t.as_slice() else {
                    return Some(format!(
                        "{at}: expected 'format ENCODING VERSION' (e.g. 'format \
                         binary_little_endian 1.0'), found '{}'",
                        shown(line)
                    ));
                };
                if !matches!(
                    *encoding,
                    b"ascii" | b"binary_little_endian" | b"binary_big_endian"
                ) {
                    return Some(format!(
                        "{at}: unknown format '{}' (expected ascii, binary_little_endian or \
                         binary_big_endian)",
                        shown(encoding)
                    ));
                }
                let valid_version = std::str::from_utf8(version)
                    .ok()
                    .and_then(|v| v.split_once('.'))
                    .is_some_and(|(major, minor)| {
                        major.bytes().all(|b| b.is_ascii_digit())
                            && minor.bytes().all(|b| b.is_ascii_digit())
                            && major.parse::<u16>().is_ok()
                            && minor.parse::<u8>().is_ok()
                    });
                if !valid_version {
                    return Some(format!(
                        "{at}: format version '{}' is not MAJOR.MINOR (e.g. 1.0)",
                        shown(version)
                    ));
                }
                match &format_line {
                    Some((first, previous)) if previous.as_slice() != line => {
                        return Some(format!(
                            "{at}: a second format line contradicts line {first}"
                        ));
                    }
                    Some(_) => {}
                    None => format_line = Some((number, line.to_vec())),
                }
            }
            b"element" => {
                let [_, name, count] = t.as_slice() else {
                    return Some(format!(
                        "{at}: expected 'element NAME COUNT' (e.g. 'element vertex 100'), \
                         found '{}'",
                        shown(line)
                    ));
                };
                if !is_name(name) {
                    return Some(format!(
                        "{at}: element name '{}' is not a name (letters, digits, '_', '-')",
                        shown(name)
                    ));
                }
                let count_ok = count.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(count)
                        .ok()
                        .and_then(|c| c.parse::<usize>().ok())
                        .is_some();
                if !count_ok {
                    return Some(format!(
                        "{at}: element '{}' count '{}' is not a whole number",
                        shown(name),
                        shown(count)
                    ));
                }
                element = Some(String::from_utf8_lossy(name).into_owned());
            }
            b"property" => {
                if element.is_none() {
                    return Some(format!(
                        "{at}: 'property' before any 'element' line: '{}'",
                        shown(line)
                    ));
                }
                let (types, name): (&[&[u8]], Option<&&[u8]>) = match t.get(1) {
                    Some(&b"list") if t.len() == 5 => (&t[2..4], t.get(4)),
                    Some(&b"list") => {
                        return Some(format!(
                            "{at}: expected 'property list COUNT_TYPE ITEM_TYPE NAME', found '{}'",
                            shown(line)
                        ));
                    }
                    _ if t.len() == 3 => (&t[1..2], t.get(2)),
                    _ => {
                        return Some(format!(
                            "{at}: expected 'property TYPE NAME' (e.g. 'property float x'), \
                             found '{}'",
                            shown(line)
                        ));
                    }
                };
                for ty in types {
                    if !SCALAR_TYPE_NAMES.iter().any(|n| n.as_bytes() == *ty) {
                        return Some(format!(
                            "{at}: unknown property type '{}' (expected char, uchar, short, \
                             ushort, int, uint, float or double, or int8 ... float64)",
                            shown(ty)
                        ));
                    }
                }
                if let Some(name) = name
                    && !is_name(name)
                {
                    return Some(format!(
                        "{at}: property name '{}' is not a name (letters, digits, '_', '-')",
                        shown(name)
                    ));
                }
            }
            b"end_header" => {
                if t.len() > 1 {
                    return Some(format!("{at}: text after 'end_header': '{}'", shown(line)));
                }
                if format_line.is_none() {
                    return Some(format!("{at}: 'end_header' before any 'format' line"));
                }
                return None;
            }
            other => {
                return Some(format!(
                    "{at}: unknown header keyword '{}' (expected format, comment, obj_info, \
                     element, property or end_header)",
                    shown(other)
                ));
            }
        }
    }
    None
}

/// True when `token` is a number as the PLY ASCII data grammar of
/// `ply-rs-bw` writes it: `[-+]?digits(.digits)?([eE][-+]?digits)?`.
fn is_ascii_number(token: &[u8]) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut s = token
        .strip_prefix(b"-")
        .or(token.strip_prefix(b"+"))
        .unwrap_or(token);
    let n = digits(s);
    if n == 0 {
        return false;
    }
    s = &s[n..];
    if let Some(r) = s.strip_prefix(b".") {
        let n = digits(r);
        if n == 0 {
            return false;
        }
        s = &r[n..];
    }
    if let Some(r) = s.strip_prefix(b"e").or(s.strip_prefix(b"E")) {
        let r = r.strip_prefix(b"-").or(r.strip_prefix(b"+")).unwrap_or(r);
        let n = digits(r);
        if n == 0 {
            return false;
        }
        s = &r[n..];
    }
    s.is_empty()
}

/// True for the `nan` / `inf` tokens [`read`] accepts in float properties.
fn is_non_finite_token(token: &[u8]) -> bool {
    let lower = token.to_ascii_lowercase();
    let body = lower
        .strip_prefix(b"-")
        .or(lower.strip_prefix(b"+"))
        .unwrap_or(&lower);
    body == b"inf" || body == b"infinity" || body.starts_with(b"nan")
}

fn type_name(t: &ScalarType) -> &'static str {
    match t {
        ScalarType::Char => "char",
        ScalarType::UChar => "uchar",
        ScalarType::Short => "short",
        ScalarType::UShort => "ushort",
        ScalarType::Int => "int",
        ScalarType::UInt => "uint",
        ScalarType::Float => "float",
        ScalarType::Double => "double",
    }
}

/// True when the ASCII token is a valid value of type `t`.
fn ascii_value_fits(token: &[u8], t: &ScalarType) -> bool {
    let Ok(s) = std::str::from_utf8(token) else {
        return false;
    };
    match t {
        ScalarType::Float | ScalarType::Double => {
            (is_ascii_number(token) && s.parse::<f64>().is_ok()) || is_non_finite_token(token)
        }
        _ if !is_ascii_number(token) => false,
        ScalarType::Char => s.parse::<i8>().is_ok(),
        ScalarType::UChar => s.parse::<u8>().is_ok(),
        ScalarType::Short => s.parse::<i16>().is_ok(),
        ScalarType::UShort => s.parse::<u16>().is_ok(),
        ScalarType::Int => s.parse::<i32>().is_ok(),
        ScalarType::UInt => s.parse::<u32>().is_ok(),
    }
}

/// Describes the first problem of `element`'s data, which starts at byte
/// `offset` of the file: for ASCII with the file's line number (and, when
/// `values`, the first token that is not a number of its property's type),
/// for binary with the entry and byte where the data ends. `None` when
/// nothing is found. Called only after reading the element failed.
fn body_problem(
    bytes: &[u8],
    offset: usize,
    element: &ElementDef,
    encoding: &Encoding,
    values: bool,
) -> Option<String> {
    let data = bytes.get(offset..)?;
    let name = &element.name;
    let count = element.count;
    let big_endian = match encoding {
        Encoding::Ascii => {
            let first_line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
            return ascii_problem(data, first_line, element, values);
        }
        Encoding::BinaryLittleEndian => false,
        Encoding::BinaryBigEndian => true,
    };
    let mut at = 0usize;
    for i in 0..count {
        for (property, p) in &element.properties {
            let ends = |at: usize| {
                format!(
                    "binary data ends at byte {} (the end of the file) inside '{name}' entry \
                     {} of {count}, property '{property}': file truncated",
                    offset + at,
                    i + 1
                )
            };
            match &p.data_type {
                PropertyType::Scalar(s) => {
                    at += scalar_bytes(s);
                    if at > data.len() {
                        return Some(ends(data.len()));
                    }
                }
                PropertyType::List(index, item) => {
                    if matches!(index, ScalarType::Float | ScalarType::Double) {
                        return Some(format!(
                            "'{name}' property '{property}' is a list with a {} length: list \
                             lengths must be integers",
                            type_name(index)
                        ));
                    }
                    let Some(len) = data.get(at..).and_then(|d| list_len(d, index, big_endian))
                    else {
                        return Some(ends(data.len()));
                    };
                    let signed = matches!(
                        index,
                        ScalarType::Char | ScalarType::Short | ScalarType::Int
                    );
                    let bits = 8 * scalar_bytes(index);
                    if signed && len >> (bits - 1) & 1 == 1 {
                        return Some(format!(
                            "'{name}' entry {} of {count}: list '{property}' has a negative \
                             length (byte {})",
                            i + 1,
                            offset + at
                        ));
                    }
                    at += scalar_bytes(index);
                    match len
                        .checked_mul(scalar_bytes(item))
                        .and_then(|n| at.checked_add(n))
                    {
                        Some(end) if end <= data.len() => at = end,
                        _ => return Some(ends(data.len())),
                    }
                }
            }
        }
    }
    None
}

/// [`body_problem`] for ASCII data: one line per entry, from file line
/// `first_line`.
fn ascii_problem(
    data: &[u8],
    first_line: usize,
    element: &ElementDef,
    values: bool,
) -> Option<String> {
    let name = &element.name;
    let count = element.count;
    let mut rest = data;
    for i in 0..count {
        let number = first_line + i;
        let entry = format!("line {number} ('{name}' entry {} of {count})", i + 1);
        if rest.is_empty() {
            return Some(format!(
                "data ends at line {number}, after {i} of the {count} '{name}' entries the \
                 header promises: file truncated"
            ));
        }
        let end = rest.iter().position(|&b| b == b'\n');
        let raw = &rest[..end.unwrap_or(rest.len())];
        rest = end.map_or(&[][..], |e| &rest[e + 1..]);
        if !values {
            continue;
        }
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let Err(e) = std::str::from_utf8(line) {
            return Some(format!(
                "{entry}: not text (byte {} of the line is not UTF-8)",
                e.valid_up_to() + 1
            ));
        }
        let t = tokens(line);
        let mut next = t.iter();
        for (property, p) in &element.properties {
            let missing = || {
                format!(
                    "{entry}: the line ends before property '{property}' ({} values on it)",
                    t.len()
                )
            };
            let bad = |token: &[u8], ty: &ScalarType, what: &str| {
                format!(
                    "{entry}: '{}' is not a valid {} ({what} '{property}')",
                    shown(token),
                    type_name(ty)
                )
            };
            match &p.data_type {
                PropertyType::Scalar(ty) => {
                    let Some(token) = next.next() else {
                        return Some(missing());
                    };
                    if !ascii_value_fits(token, ty) {
                        return Some(bad(token, ty, "property"));
                    }
                }
                PropertyType::List(_, item) => {
                    let Some(token) = next.next() else {
                        return Some(missing());
                    };
                    let len = std::str::from_utf8(token)
                        .ok()
                        .filter(|_| is_ascii_number(token))
                        .and_then(|s| s.parse::<usize>().ok());
                    let Some(len) = len else {
                        return Some(format!(
                            "{entry}: list length '{}' of '{property}' is not a whole number",
                            shown(token)
                        ));
                    };
                    for k in 0..len {
                        let Some(token) = next.next() else {
                            return Some(format!(
                                "{entry}: list '{property}' promises {len} values, the line has \
                                 {k} of them"
                            ));
                        };
                        if !ascii_value_fits(token, item) {
                            return Some(bad(token, item, "item of list"));
                        }
                    }
                }
            }
        }
        if let Some(extra) = next.find(|t| !is_ascii_number(t) && !is_non_finite_token(t)) {
            return Some(format!(
                "{entry}: '{}' after the declared values is not a number",
                shown(extra)
            ));
        }
    }
    None
}

fn scalar_bytes(t: &ScalarType) -> usize {
    match t {
        ScalarType::Char | ScalarType::UChar => 1,
        ScalarType::Short | ScalarType::UShort => 2,
        ScalarType::Int | ScalarType::UInt | ScalarType::Float => 4,
        ScalarType::Double => 8,
    }
}

/// Reads a binary list length of type `t` at the start of `data`.
fn list_len(data: &[u8], t: &ScalarType, big_endian: bool) -> Option<usize> {
    let n = scalar_bytes(t);
    let b = data.get(..n)?;
    let mut buf = [0u8; 8];
    if big_endian {
        buf[8 - n..].copy_from_slice(b);
        Some(u64::from_be_bytes(buf) as usize)
    } else {
        buf[..n].copy_from_slice(b);
        Some(u64::from_le_bytes(buf) as usize)
    }
}

/// Skips one element's data without parsing values; `None` when the data
/// ends early. ASCII: one line per entry. Binary: fixed-size properties are
/// summed, list lengths read from the data.
fn skip_element<'a>(data: &'a [u8], element: &ElementDef, encoding: &Encoding) -> Option<&'a [u8]> {
    let big_endian = match encoding {
        Encoding::Ascii => {
            let mut rest = data;
            for _ in 0..element.count {
                if rest.is_empty() {
                    return None;
                }
                let end = rest.iter().position(|&b| b == b'\n');
                rest = end.map_or(&[][..], |e| &rest[e + 1..]);
            }
            return Some(rest);
        }
        Encoding::BinaryLittleEndian => false,
        Encoding::BinaryBigEndian => true,
    };
    let props: Vec<&PropertyType> = element
        .properties
        .iter()
        .map(|(_, p)| &p.data_type)
        .collect();
    let fixed: Option<usize> = props
        .iter()
        .map(|t| match t {
            PropertyType::Scalar(s) => Some(scalar_bytes(s)),
            PropertyType::List(..) => None,
        })
        .sum();
    if let Some(record) = fixed {
        let total = record.checked_mul(element.count)?;
        return data.get(total..);
    }
    let mut rest = data;
    for _ in 0..element.count {
        for t in &props {
            let skip = match t {
                PropertyType::Scalar(s) => scalar_bytes(s),
                PropertyType::List(index, item) => {
                    let len = list_len(rest, index, big_endian)?;
                    scalar_bytes(index).checked_add(len.checked_mul(scalar_bytes(item))?)?
                }
            };
            rest = rest.get(skip..)?;
        }
    }
    Some(rest)
}

/// Writes `cloud` as binary little-endian PLY, atomically.
///
/// Properties of element `vertex`: `x y z` as `float` when `f32` keeps the
/// data's precision ([`super::data_precision`]: the LAS scale, else 1 mm;
/// every coordinate within [`super::f32_limit`], 8192 at 1 mm), otherwise as
/// `double`; then, when present, `intensity` (float), `nx ny nz` (float),
/// `curvature` (float), `time` (double, seconds), `red green blue` (uchar
/// when every value fits, else ushort: LAS 16-bit colour), and for clouds
/// with LAS attributes `classification return_number number_of_returns`
/// (uchar), `scan_angle` (float, degrees), `user_data` (uchar),
/// `point_source_id` (ushort), `las_flags` (uchar, the bit layout of
/// [`crate::cloud::LasAttributes::flags`]) and `nir` (ushort). These are the
/// names CloudCompare and Open3D read for the common fields.
///
/// A cloud read from LAS also gets `comment pointpipe ...` lines recording
/// its LAS version, point format, scale, offset and CRS VLRs, which
/// [`read`] turns back into [`Extras::las_header`](crate::cloud::Extras::las_header), so PLY → LAS
/// restores them. Not kept: wave packets, extra bytes (other than normals).
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write(path: &Path, cloud: &PointCloud) -> Result<()> {
    let double = super::needs_double(cloud);
    let xyz_type = if double { "double" } else { "float" };
    let mut header =
        String::from("ply\nformat binary_little_endian 1.0\ncomment written by pointpipe\n");
    for line in super::las_meta_lines(cloud) {
        header.push_str(&format!("comment {line}\n"));
    }
    header.push_str(&format!(
        "element vertex {}\nproperty {xyz_type} x\nproperty {xyz_type} y\nproperty {xyz_type} z\n",
        cloud.len()
    ));
    if cloud.intensity.is_some() {
        header.push_str("property float intensity\n");
    }
    if cloud.normals.is_some() {
        header.push_str("property float nx\nproperty float ny\nproperty float nz\n");
    }
    if cloud.curvature.is_some() {
        header.push_str("property float curvature\n");
    }
    if cloud.time.is_some() {
        header.push_str("property double time\n");
    }
    let color = super::ply_color(cloud);
    match color {
        super::ColorEncoding::U8 => {
            header.push_str("property uchar red\nproperty uchar green\nproperty uchar blue\n")
        }
        super::ColorEncoding::U16 => {
            header.push_str("property ushort red\nproperty ushort green\nproperty ushort blue\n")
        }
        _ => {}
    }
    if let Some(a) = &cloud.extras.las_attributes {
        for (name, kind) in super::LAS_COLUMNS {
            let t = match kind {
                'u' => "uchar",
                's' => "ushort",
                _ => "float",
            };
            header.push_str(&format!("property {t} {name}\n"));
        }
        if a.nir.is_some() {
            header.push_str("property ushort nir\n");
        }
    }
    header.push_str("end_header\n");
    let mut bytes = Vec::with_capacity(header.len() + cloud.len() * 48);
    bytes.extend_from_slice(header.as_bytes());
    let xyz = super::XyzEncoding {
        double,
        origin: Vector3::zeros(),
    };
    super::encode_le_records(cloud, xyz, color, &mut bytes);
    atomic::write_atomic(path, |out| {
        out.write_all(&bytes).map_err(atomic::io_err(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "t.ply";

    #[test]
    fn ascii_with_mixed_types_and_a_face_element_before_vertices() {
        let text = "ply\nformat ascii 1.0\nelement face 1\nproperty list uchar int vertex_indices\n\
                    element vertex 3\nproperty uchar intensity\nproperty float x\n\
                    property double y\nproperty short z\nproperty ushort extra\nend_header\n\
                    3 0 1 2\n7 1.5 2.5 3 9\n8 1e39 0 0 9\n9 4 5 6 9\n";
        let (c, r) = read_from_bytes(text.as_bytes(), Path::new(P)).unwrap();
        assert_eq!(
            c.points,
            vec![Point3::new(1.5, 2.5, 3.0), Point3::new(4.0, 5.0, 6.0)]
        );
        assert_eq!(c.intensity, Some(vec![7.0, 9.0]));
        assert_eq!(r.dropped_non_finite, 1);
        assert_eq!(r.points_in_file, 3);
        assert_eq!(r.version, "PLY ascii");
    }

    #[test]
    fn big_endian_with_trailing_list_element() {
        let mut b = b"ply\nformat binary_big_endian 1.0\nelement vertex 2\nproperty float x\n\
                      property float y\nproperty float z\nelement grid 2\n\
                      property list uchar int idx\nend_header\n"
            .to_vec();
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            b.extend(v.to_be_bytes());
        }
        b.push(1);
        b.extend(7i32.to_be_bytes());
        b.push(0);
        let (c, r) = read_from_bytes(&b, Path::new(P)).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.points[1], Point3::new(4.0, 5.0, 6.0));
        assert_eq!(r.version, "PLY binary_big_endian");
        // The grid element is checked even though it is skipped.
        b.pop();
        assert!(read_from_bytes(&b, Path::new(P)).is_err());
    }

    #[test]
    fn missing_xyz_is_an_error() {
        let text = "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n\
                    end_header\n1 2\n";
        assert!(read_from_bytes(text.as_bytes(), Path::new(P)).is_err());
    }
}
