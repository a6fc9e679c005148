//! LAS and LAZ (ASPRS LAS 1.0–1.4, point formats 0–10) via the `las` crate.
//!
//! # Reading
//! Points are decoded in chunks of at most [`CHUNK_POINTS`] points and
//! [`CHUNK_BYTES`] bytes with `las::Reader::fill_points` and converted in one
//! pass over the raw records (no per-point `las::Point`). An uncompressed
//! file must hold the records its header promises before any is read.
//! LAZ is decompressed in parallel (`las` feature `laz-parallel`).
//! Scale and offset are applied, so positions are in the CRS unit of the
//! file (metres or US/international feet; degrees for geographic CRSs).
//! Intensity goes to [`PointCloud::intensity`] (0–65535 as stored), GPS time to
//! [`PointCloud::time`] (seconds, GPS week time or adjusted standard GPS time as
//! the header says), classification, returns, scan angle (degrees), user data,
//! point source id and RGB colour to [`PointCloud::las_attributes`], and the
//! header (version, point format, scale, offset, VLRs including the CRS) to
//! [`PointCloud::las_header`]. LAS coordinates are integers, so no point is
//! ever non-finite. Waveform packets, NIR and extra bytes are not kept.
//!
//! # Writing
//! See [`write()`].

use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use las::point::Classification;
use las::{Builder, Color, Header, Transform, Vector};
use nalgebra::Point3;

use super::{Format, ReadReport, atomic};
use crate::cloud::{LasAttributes, PointCloud};
use crate::error::{Error, Result};

/// Most points decoded per `fill_points` call (about 34 MB of records at
/// point format 7).
pub const CHUNK_POINTS: u64 = 1 << 20;

/// Most record bytes decoded per `fill_points` call: records longer than 64
/// bytes (extra bytes) give chunks of fewer than [`CHUNK_POINTS`] points, so a
/// header claiming 65,535-byte records cannot make one chunk take 64 GiB.
pub const CHUNK_BYTES: u64 = 64 << 20;

/// Scale of LAS files written from clouds that did not come from LAS:
/// 1 mm in the cloud's unit.
pub const DEFAULT_SCALE: f64 = 0.001;

fn las_err(path: &Path) -> impl Fn(las::Error) -> Error + '_ {
    move |e| Error::Las {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Reads a LAS or LAZ file; see the [module docs](self).
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened, [`Error::Format`] when it is
/// empty, does not start with `LASF` or holds fewer points than its header
/// promises, [`Error::Las`] for anything the `las` crate rejects (unsupported
/// version or point format, corrupt LAZ data).
pub fn read(path: &Path) -> Result<(PointCloud, ReadReport)> {
    let mut file = File::open(path).map_err(atomic::io_err(path))?;
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut file, &mut magic).map_err(atomic::io_err(path))?;
    if got == 0 {
        return Err(Error::format(path, "file is empty"));
    }
    if &magic[..got] != b"LASF" {
        return Err(super::wrong_magic(path, Format::Las, &magic[..got]));
    }
    file.seek(SeekFrom::Start(0))
        .map_err(atomic::io_err(path))?;
    read_from(BufReader::with_capacity(1 << 20, file), path)
}

/// Reads LAS/LAZ from bytes in memory (used by the fuzz targets); `path` only
/// names the source in errors.
///
/// # Errors
/// As [`read`].
pub fn read_from_bytes(bytes: &[u8], path: &Path) -> Result<(PointCloud, ReadReport)> {
    if bytes.is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    if !bytes.starts_with(b"LASF") {
        return Err(super::wrong_magic(path, Format::Las, bytes));
    }
    read_from(Cursor::new(bytes.to_vec()), path)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Decodes a LAS/LAZ stream. The `laz` decoder can panic on corrupt
/// compressed data (slice splits on item sizes it does not validate), so the
/// LAZ item sizes are checked against the point record first and, as a last
/// line of defence, a panic inside the `las`/`laz` crates is caught and
/// turned into [`Error::Format`] (the default panic hook still prints it).
fn read_from<R: Read + Seek + Send + Sync + 'static>(
    source: R,
    path: &Path,
) -> Result<(PointCloud, ReadReport)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(source, path))).unwrap_or_else(
        |_| {
            Err(Error::format(
                path,
                "the LAS/LAZ decoder failed on corrupt data",
            ))
        },
    )
}

/// The offset to point data (header bytes 96–99) and the length of the
/// stream, in bytes.
fn point_data_span<R: Read + Seek>(src: &mut R, path: &Path) -> Result<(u64, u64)> {
    let io = atomic::io_err(path);
    let file_len = src.seek(SeekFrom::End(0)).map_err(&io)?;
    let mut word = [0u8; 4];
    src.seek(SeekFrom::Start(96)).map_err(&io)?;
    src.read_exact(&mut word)
        .map_err(|_| Error::format(path, "LAS header ends early (file truncated?)"))?;
    Ok((u64::from(u32::from_le_bytes(word)), file_len))
}

/// Checks that an uncompressed file holds the point records its header
/// promises (`offset to point data + count × record length` bytes), so a
/// truncated file or a corrupt count fails before anything is allocated.
fn check_point_data_size<R: Read + Seek>(src: &mut R, header: &Header, path: &Path) -> Result<()> {
    let (data_start, file_len) = point_data_span(src, path)?;
    let promised = header.number_of_points();
    let record_len = u64::from(header.point_format().len());
    let needed = promised
        .checked_mul(record_len)
        .and_then(|bytes| bytes.checked_add(data_start));
    match needed {
        Some(needed) if needed <= file_len => Ok(()),
        _ => Err(Error::format(
            path,
            format!(
                "header promises {promised} points of {record_len} bytes from byte \
                 {data_start}, but the file has {file_len} bytes: it is truncated or its \
                 header is corrupt"
            ),
        )),
    }
}

/// Checks that the LASzip VLR's items add up to the point record length.
fn check_laz_items(header: &Header, path: &Path) -> Result<()> {
    let format = header.point_format();
    if !format.is_compressed {
        return Ok(());
    }
    let vlr = header.laz_vlr().map_err(las_err(path))?;
    let items = vlr.items_size();
    let record = u64::from(format.len());
    if items != record {
        return Err(Error::format(
            path,
            format!(
                "LAZ item sizes add up to {items} bytes but point format records have {record}: \
                 corrupt LASzip VLR"
            ),
        ));
    }
    Ok(())
}

/// Checks the LASzip chunk table's location and size before the `laz` crate
/// reads it: that crate allocates `number_of_chunks` entries up front, so a
/// corrupt count would abort the process on allocation failure. Mirrors
/// `laz::laszip::ChunkTable::read_offset`. Every chunk holds at least 4 bytes
/// of compressed data, which bounds the count by the file size. Then the
/// table itself is read and its compressed byte counts must fit between the
/// point data offset and the end of the file (the parallel decoder allocates
/// their sum at once), and no variable-size chunk may hold more points than
/// the header promises (the decoder reserves the largest chunk up front).
fn check_chunk_table<R: Read + Seek>(src: &mut R, header: &Header, path: &Path) -> Result<()> {
    let io = atomic::io_err(path);
    let truncated = |what: &str| Error::format(path, format!("LAZ: {what} (file truncated?)"));
    let (data_start, file_len) = point_data_span(src, path)?;
    let mut word = [0u8; 4];
    let mut offset = [0u8; 8];
    src.seek(SeekFrom::Start(data_start)).map_err(&io)?;
    src.read_exact(&mut offset)
        .map_err(|_| truncated("no point data"))?;
    let mut table = i64::from_le_bytes(offset);
    if table <= data_start as i64 {
        src.seek(SeekFrom::End(-8)).map_err(&io)?;
        src.read_exact(&mut offset).map_err(&io)?;
        table = i64::from_le_bytes(offset);
        if table <= data_start as i64 {
            return Ok(()); // no chunk table: the decoder reads sequentially
        }
    }
    let table = table as u64;
    if table.saturating_add(8) > file_len {
        return Err(truncated(&format!(
            "chunk table at byte {table} lies beyond the end of the file ({file_len} bytes)"
        )));
    }
    src.seek(SeekFrom::Start(table + 4)).map_err(&io)?;
    src.read_exact(&mut word).map_err(&io)?;
    let chunks = u64::from(u32::from_le_bytes(word));
    if chunks > file_len / 4 {
        return Err(Error::format(
            path,
            format!("LAZ: chunk table claims {chunks} chunks in a {file_len}-byte file: corrupt"),
        ));
    }
    // The chunks' compressed sizes must fit in the file: the parallel decoder
    // allocates their sum at once (a corrupt size made it abort).
    let vlr = header.laz_vlr().map_err(las_err(path))?;
    src.seek(SeekFrom::Start(data_start)).map_err(&io)?;
    let table = laz::laszip::ChunkTable::read_from(&mut *src, &vlr)
        .map_err(|e| Error::format(path, format!("LAZ: unreadable chunk table: {e}")))?;
    let compressed = table
        .as_ref()
        .iter()
        .fold(0u64, |sum, entry| sum.saturating_add(entry.byte_count));
    let promised = header.number_of_points();
    if vlr.uses_variable_size_chunks()
        && let Some(entry) = table.as_ref().iter().find(|e| e.point_count > promised)
    {
        // The decoder reserves the largest chunk's point count in bytes.
        return Err(Error::format(
            path,
            format!(
                "LAZ: chunk table lists a chunk of {} points but the header promises {promised} \
                 in all: corrupt",
                entry.point_count
            ),
        ));
    }
    let available = file_len.saturating_sub(data_start);
    if compressed > available {
        return Err(Error::format(
            path,
            format!(
                "LAZ: chunk table lists {compressed} bytes of compressed points but only \
                 {available} bytes follow the point data offset: corrupt or truncated"
            ),
        ));
    }
    Ok(())
}

fn decode<R: Read + Seek + Send + Sync + 'static>(
    mut source: R,
    path: &Path,
) -> Result<(PointCloud, ReadReport)> {
    let pre = Header::new(&mut source).map_err(las_err(path))?;
    if pre.point_format().is_compressed {
        check_laz_items(&pre, path)?;
        check_chunk_table(&mut source, &pre, path)?;
    } else {
        check_point_data_size(&mut source, &pre, path)?;
    }
    source
        .seek(SeekFrom::Start(0))
        .map_err(atomic::io_err(path))?;
    let mut reader = las::Reader::new(source).map_err(las_err(path))?;
    let header = reader.header().clone();
    let promised = header.number_of_points();
    let format = *header.point_format();

    let mut cloud = PointCloud {
        // Capacity is a hint only: never trust a header with a huge count.
        points: Vec::with_capacity(promised.min(CHUNK_POINTS) as usize),
        intensity: Some(Vec::new()),
        time: format.has_gps_time.then(Vec::new),
        las_attributes: Some(LasAttributes {
            color: format.has_color.then(Vec::new),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut chunk = las::PointDataBuilder::new().for_header(&header).build();
    let record_len = u64::from(format.len()).max(1);
    let chunk_points = (CHUNK_BYTES / record_len).clamp(1, CHUNK_POINTS);
    let mut read_so_far = 0u64;
    while read_so_far < promised {
        let n = reader
            .fill_points(chunk_points, &mut chunk)
            .map_err(|e| truncation_error(path, promised, read_so_far, e))?;
        if n == 0 {
            break;
        }
        read_so_far += n;
        append_chunk(&mut cloud, &chunk);
    }
    if read_so_far != promised {
        return Err(Error::format(
            path,
            format!("header promises {promised} points but the file holds {read_so_far}"),
        ));
    }
    let report = ReadReport {
        format: if format.is_compressed {
            Format::Laz
        } else {
            Format::Las
        },
        version: format!(
            "{} {} point format {}",
            if format.is_compressed { "LAZ" } else { "LAS" },
            header.version(),
            format
                .to_u8()
                .map_or_else(|_| "unknown".to_string(), |n| n.to_string())
        ),
        points_in_file: read_so_far as usize,
        dropped_non_finite: 0,
        crs: crs_summary(&header),
    };
    cloud.las_header = Some(header);
    Ok((cloud, report))
}

fn truncation_error(path: &Path, promised: u64, read: u64, e: las::Error) -> Error {
    Error::format(
        path,
        format!(
            "header promises {promised} points but reading failed after {read}: \
             the file is truncated or corrupt ({e})"
        ),
    )
}

/// Byte offsets of the fields pointpipe keeps inside one LAS point record
/// (ASPRS LAS 1.4 R15, tables 7–17).
struct RecordLayout {
    extended: bool,
    scan_angle: usize,
    user_data: usize,
    point_source_id: usize,
    gps_time: Option<usize>,
    rgb: Option<usize>,
}

impl RecordLayout {
    fn new(format: &las::point::Format) -> Self {
        if format.is_extended {
            RecordLayout {
                extended: true,
                user_data: 17,
                scan_angle: 18,
                point_source_id: 20,
                gps_time: Some(22),
                rgb: format.has_color.then_some(30),
            }
        } else {
            RecordLayout {
                extended: false,
                scan_angle: 16,
                user_data: 17,
                point_source_id: 18,
                gps_time: format.has_gps_time.then_some(20),
                rgb: format
                    .has_color
                    .then_some(if format.has_gps_time { 28 } else { 20 }),
            }
        }
    }
}

fn le<const N: usize>(rec: &[u8], at: usize) -> [u8; N] {
    rec.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

fn reserve<T>(v: &mut Option<Vec<T>>, n: usize) {
    if let Some(v) = v {
        v.reserve(n);
    }
}

/// Appends one decoded chunk to the cloud in a single pass over its raw
/// records (the `las` crate's column iterators make one pass per field and
/// were 6× slower than the decode itself).
fn append_chunk(cloud: &mut PointCloud, chunk: &las::PointData) {
    let layout = RecordLayout::new(chunk.format());
    let t = chunk.transforms();
    let record_len = chunk.record_len();
    if record_len < 20 {
        return; // cannot happen: every LAS point format has at least 20 bytes
    }
    let records = chunk.raw_bytes().chunks_exact(record_len);
    let n = records.len();
    cloud.points.reserve(n);
    reserve(&mut cloud.intensity, n);
    reserve(&mut cloud.time, n);
    if let Some(a) = &mut cloud.las_attributes {
        a.classification.reserve(n);
        a.return_number.reserve(n);
        a.number_of_returns.reserve(n);
        a.scan_angle.reserve(n);
        a.user_data.reserve(n);
        a.point_source_id.reserve(n);
        reserve(&mut a.color, n);
    }
    for rec in records {
        let coord = |at: usize, t: &Transform| t.direct(i32::from_le_bytes(le(rec, at)));
        cloud
            .points
            .push(Point3::new(coord(0, &t.x), coord(4, &t.y), coord(8, &t.z)));
        if let Some(intensity) = &mut cloud.intensity {
            intensity.push(f32::from(u16::from_le_bytes(le(rec, 12))));
        }
        if let (Some(time), Some(at)) = (&mut cloud.time, layout.gps_time) {
            time.push(f64::from_le_bytes(le(rec, at)));
        }
        let Some(a) = &mut cloud.las_attributes else {
            continue;
        };
        let [returns] = le(rec, 14);
        if layout.extended {
            a.return_number.push(returns & 0x0f);
            a.number_of_returns.push(returns >> 4);
            let [class] = le(rec, 16);
            a.classification.push(class);
            let raw = i16::from_le_bytes(le(rec, layout.scan_angle));
            a.scan_angle.push(f32::from(raw) * 0.006);
        } else {
            a.return_number.push(returns & 0x07);
            a.number_of_returns.push((returns >> 3) & 0x07);
            let [class] = le(rec, 15);
            a.classification.push(class & 0x1f);
            let [rank] = le(rec, layout.scan_angle);
            a.scan_angle.push(f32::from(rank as i8));
        }
        let [user] = le(rec, layout.user_data);
        a.user_data.push(user);
        a.point_source_id
            .push(u16::from_le_bytes(le(rec, layout.point_source_id)));
        if let (Some(color), Some(at)) = (&mut a.color, layout.rgb) {
            let c: [u8; 6] = le(rec, at);
            color.push([
                u16::from_le_bytes([c[0], c[1]]),
                u16::from_le_bytes([c[2], c[3]]),
                u16::from_le_bytes([c[4], c[5]]),
            ]);
        }
    }
}

/// A one-line CRS summary: the WKT's first quoted name, or the GeoTIFF EPSG
/// codes; `None` when the header has no CRS VLR.
pub fn crs_summary(header: &Header) -> Option<String> {
    if let Some(wkt) = header.get_wkt_crs_bytes() {
        let text = String::from_utf8_lossy(wkt);
        let name = text
            .split('"')
            .nth(1)
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(60).collect());
        return Some(format!("WKT: {name}"));
    }
    match header.get_geotiff_crs() {
        Ok(Some(geotiff)) => {
            let mut parts = Vec::new();
            if let Some(code) = geotiff.get_projected_crs_geo_key_value() {
                parts.push(format!("projected EPSG:{code}"));
            }
            if let Some(code) = geotiff.get_geodetic_crs_geo_key_value() {
                parts.push(format!("geographic EPSG:{code}"));
            }
            if let Some(code) = geotiff.get_vertical_crs_geo_key_value() {
                parts.push(format!("vertical EPSG:{code}"));
            }
            if parts.is_empty() {
                parts.push(format!("{} keys, user-defined", geotiff.entries.len()));
            }
            Some(format!("GeoTIFF: {}", parts.join(", ")))
        }
        Ok(None) => None,
        Err(e) => Some(format!("GeoTIFF (unreadable: {e})")),
    }
}

/// Writes `cloud` as LAS, or LAZ when `path` ends in `.laz`, atomically.
///
/// # Header
/// - Cloud read from LAS/LAZ ([`PointCloud::las_header`] is `Some`): the
///   source header's version, point format, scale, offset, VLRs (CRS as WKT
///   or GeoTIFF), GPS time type, system identifier and software are written
///   back. Exceptions: waveform formats (4, 5, 9, 10) are written as their
///   non-waveform equivalents (1, 3, 6, 7) and format 8 as 7, since waveform
///   packets and NIR are not kept; extra bytes are dropped with their VLRs.
///   If a point no longer fits the source scale/offset in `i32` (the cloud
///   was moved), the offset is moved to the minimum corner and the scale kept.
/// - Any other cloud: LAS 1.4, point format 6 (7 with colour),
///   scale [`DEFAULT_SCALE`] = 1 mm (coarsened by powers of ten only if the
///   extent exceeds 2³¹ mm ≈ 2147 km), offset at the minimum corner rounded
///   down to the scale. No CRS.
///
/// # Attributes
/// Intensity is rounded and clamped to 0–65535; when the cloud did not come
/// from LAS and all intensities lie in [0, 1] (KITTI reflectance) they are
/// scaled by 65535 first. GPS time comes from [`PointCloud::time`] (0 when
/// absent); LAS attributes from [`PointCloud::las_attributes`] (return 1 of 1,
/// class 1 "unclassified" when absent). Normals and curvature are not stored.
///
/// # Errors
/// [`Error::Io`] when writing fails, [`Error::Las`] when the `las` crate
/// rejects the header or a point (e.g. a classification over 31 in a legacy
/// point format).
pub fn write(path: &Path, cloud: &PointCloud) -> Result<()> {
    let compress = Format::from_path(path).ok() == Some(Format::Laz);
    let header = build_header(cloud, compress).map_err(las_err(path))?;
    let intensity_scale = intensity_scale(cloud);
    atomic::write_atomic_owned(path, |file| {
        let mut writer = las::Writer::new(BufWriter::with_capacity(1 << 20, file), header)
            .map_err(las_err(path))?;
        let format = *writer.header().point_format();
        for i in 0..cloud.len() {
            let point = to_las_point(cloud, i, &format, intensity_scale);
            writer.write_point(point).map_err(las_err(path))?;
        }
        writer.close().map_err(las_err(path))?;
        let inner = writer.into_inner().map_err(las_err(path))?;
        inner
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))
    })
}

/// Factor applied to intensities before rounding (see [`write`]).
fn intensity_scale(cloud: &PointCloud) -> f32 {
    match (&cloud.intensity, &cloud.las_header) {
        (Some(v), None) if v.iter().all(|&x| (0.0..=1.0).contains(&x)) => 65535.0,
        _ => 1.0,
    }
}

fn build_header(cloud: &PointCloud, compress: bool) -> las::Result<Header> {
    let bounds = cloud.bounds();
    let mut builder = match &cloud.las_header {
        Some(source) => {
            let mut b = Builder::from(source.clone());
            b.point_format.extra_bytes = 0;
            b.point_format.has_waveform = false;
            b.point_format.has_nir = false;
            b.vlrs.retain(|v| !is_dropped_vlr(v));
            b.evlrs.retain(|v| !is_dropped_vlr(v));
            if let Some((lo, hi)) = bounds
                && !fits(&b.transforms, &lo, &hi)
            {
                log::info!("LAS output: points moved outside the source offset; offset reset");
                b.transforms = transforms_for(&lo, &hi, b.transforms.x.scale);
            }
            b
        }
        None => {
            let mut b = Builder::from((1, 4));
            let has_color = cloud
                .las_attributes
                .as_ref()
                .is_some_and(|a| a.color.is_some());
            b.point_format = las::point::Format::new(if has_color { 7 } else { 6 })?;
            b.generating_software = "pointpipe".to_string();
            b.system_identifier = "pointpipe".to_string();
            if let Some((lo, hi)) = bounds {
                let mut scale = DEFAULT_SCALE;
                while !fits(&transforms_for(&lo, &hi, scale), &lo, &hi) && scale < 1e6 {
                    scale *= 10.0;
                }
                b.transforms = transforms_for(&lo, &hi, scale);
            }
            b
        }
    };
    builder.point_format.is_compressed = compress;
    builder.into_header()
}

/// VLRs that describe data pointpipe does not keep (extra bytes, waveform
/// packets) or that the writer adds itself (LASzip).
fn is_dropped_vlr(v: &las::Vlr) -> bool {
    let spec = v.user_id == "LASF_Spec"
        && (v.record_id == 4 || (100..=354).contains(&v.record_id) || v.record_id == 65535);
    spec || v.user_id == "laszip encoded"
}

fn transforms_for(lo: &Point3<f64>, _hi: &Point3<f64>, scale: f64) -> Vector<Transform> {
    let t = |v: f64| Transform {
        scale,
        offset: (v / scale).floor() * scale,
    };
    Vector {
        x: t(lo.x),
        y: t(lo.y),
        z: t(lo.z),
    }
}

fn fits(t: &Vector<Transform>, lo: &Point3<f64>, hi: &Point3<f64>) -> bool {
    [(t.x, lo.x, hi.x), (t.y, lo.y, hi.y), (t.z, lo.z, hi.z)]
        .iter()
        .all(|(t, lo, hi)| t.inverse(*lo).is_ok() && t.inverse(*hi).is_ok())
}

fn to_las_point(
    cloud: &PointCloud,
    i: usize,
    format: &las::point::Format,
    intensity_scale: f32,
) -> las::Point {
    let p = cloud.points[i];
    let intensity = cloud.intensity.as_ref().map_or(0, |v| {
        (v[i] * intensity_scale).round().clamp(0.0, 65535.0) as u16
    });
    let gps_time = format
        .has_gps_time
        .then(|| cloud.time.as_ref().map_or(0.0, |t| t[i]));
    let mut point = las::Point {
        x: p.x,
        y: p.y,
        z: p.z,
        intensity,
        gps_time,
        return_number: 1,
        number_of_returns: 1,
        classification: Classification::Unclassified,
        color: format.has_color.then_some(Color::default()),
        ..Default::default()
    };
    if let Some(a) = &cloud.las_attributes {
        let class = a.classification[i];
        match Classification::new(class) {
            Ok(c) => point.classification = c,
            Err(_) => point.is_overlap = true, // class 12 is the overlap flag
        }
        point.return_number = a.return_number[i];
        point.number_of_returns = a.number_of_returns[i];
        point.scan_angle = a.scan_angle[i];
        point.user_data = a.user_data[i];
        point.point_source_id = a.point_source_id[i];
        if let (true, Some(c)) = (format.has_color, &a.color) {
            let [red, green, blue] = c[i];
            point.color = Some(Color { red, green, blue });
        }
    }
    point
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_at_five_million_northing_round_trips_within_a_millimetre() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("utm.las");
        let pts = vec![
            Point3::new(500_000.123_4, 5_000_000.987_6, 123.456_7),
            Point3::new(500_100.000_4, 5_000_050.000_6, 99.000_1),
        ];
        let cloud = PointCloud::from_points(pts.clone());
        write(&path, &cloud).unwrap();
        let (back, report) = read(&path).unwrap();
        assert_eq!(report.version, "LAS 1.4 point format 6");
        for (a, b) in pts.iter().zip(&back.points) {
            assert!((a - b).abs().max() <= 0.000_5 + 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn empty_and_wrong_magic_are_errors() {
        let p = Path::new("x.las");
        assert!(read_from_bytes(b"", p).is_err());
        assert!(read_from_bytes(b"ply\nformat ascii 1.0\n", p).is_err());
        assert!(read_from_bytes(b"LASF", p).is_err());
    }
}
