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
//! point source id, RGB colour, NIR, the flag bits (synthetic, key-point,
//! withheld, overlap, scanner channel, scan direction, edge of flight line),
//! wave packet descriptors and the raw extra bytes to
//! [`Extras::las_attributes`](crate::cloud::Extras::las_attributes), and the header (version, point format,
//! scale, offset, every VLR and EVLR including the CRS) to
//! [`Extras::las_header`](crate::cloud::Extras::las_header). LAS coordinates are integers, so no point is
//! ever non-finite.
//!
//! # Header checks
//! Before the `las` crate reads anything, every length and count of the
//! header is checked against the file size ([`check_layout`]): the VLRs and
//! EVLRs must lie inside the file (an EVLR claiming 2⁶² bytes is an error, not
//! an allocation abort), and scale and offset must be finite, non-zero (scale)
//! and of a sane magnitude (|scale| in [1e-12, 1e6], |offset| ≤ 1e12).
//! The `las` crate reads only the first EVLR; pointpipe reads them all (a CRS
//! in a later EVLR is kept). LAS 1.3 internal waveform data (the waveform data
//! packet record after the points) is kept in [`LasAttributes::waveform_data`].
//! LAZ written with LASzip's point-wise compressor (no chunk table) is decoded
//! sequentially.
//!
//! # Writing
//! See [`write()`].
//!
//! # Raw records
//! [`records`] reads and writes the point records byte for byte (the batch's
//! path: streamed, attributes never decoded); [`extra_bytes`] is the LAS 1.4
//! extra-bytes VLR both paths use for normals.

use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use las::{Builder, Header, Transform, Vector};
use nalgebra::Point3;

use super::{Format, LinearUnit, ReadReport, atomic};
use crate::cloud::{Extras, LasAttributes, PointCloud};
use crate::error::{Error, Result};

pub mod extra_bytes;
pub mod records;

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

/// The error of the `las` crate on `path`: the one error helper of every
/// LAS path (this module and [`records`]).
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
    // Checked on the unbuffered file: a few small reads, where seeking a
    // 1 MiB `BufReader` would refill it at every VLR.
    let layout = check_layout(&mut file, path)?;
    read_from(BufReader::with_capacity(1 << 20, file), path, Some(layout))
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
    read_from(Cursor::new(bytes.to_vec()), path, None)
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
    layout: Option<LayoutInfo>,
) -> Result<(PointCloud, ReadReport)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode(source, path, layout)
    }))
    .unwrap_or_else(|_| {
        Err(Error::format(
            path,
            "the LAS/LAZ decoder failed on corrupt data",
        ))
    })
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

/// What [`check_layout`] found besides validating the header.
#[derive(Debug, Default)]
pub struct LayoutInfo {
    /// Every EVLR of the file, in order (the `las` crate reads only the first).
    pub evlrs: Vec<las::Vlr>,
    /// The LAS 1.3 internal waveform data packet record (60-byte header and
    /// data), when the header points at one.
    pub waveform_data: Option<Vec<u8>>,
    /// True when the file is LAZ written with LASzip's point-wise compressor
    /// (compressor 1), which has no chunk table and decodes sequentially only.
    pub pointwise_laz: bool,
}

/// Smallest and largest accepted `|scale|` of a LAS header.
pub const SCALE_RANGE: (f64, f64) = (1e-12, 1e6);
/// Largest accepted `|offset|` of a LAS header.
pub const MAX_OFFSET: f64 = 1e12;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(le(b, at))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(le(b, at))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(le(b, at))
}
fn f64_at(b: &[u8], at: usize) -> f64 {
    f64::from_le_bytes(le(b, at))
}

/// Validates a LAS/LAZ header against the file size before any decoder
/// allocates from it, and reads what the `las` crate leaves out (every EVLR,
/// LAS 1.3 internal waveform data).
///
/// Checks (ASPRS LAS 1.4 R15 §2.4–2.6): the header holds at least 227 bytes;
/// the header size and the offset to point data lie inside the file; the VLRs
/// (54-byte headers plus their lengths) lie between the header and the end of
/// the file; scale is finite with `|scale|` in [`SCALE_RANGE`], offset finite
/// with `|offset|` ≤ [`MAX_OFFSET`]; the EVLRs (60-byte headers plus their
/// 64-bit lengths, LAS 1.4) and the waveform data packet record (LAS 1.3) lie
/// inside the file. Cost: one read per VLR and EVLR header; the EVLR payloads
/// are read (they are part of the header the caller keeps).
///
/// # Errors
/// [`Error::Format`] naming the field, its value and the file size.
pub fn check_layout<R: Read + Seek>(src: &mut R, path: &Path) -> Result<LayoutInfo> {
    let io = atomic::io_err(path);
    let file_len = src.seek(SeekFrom::End(0)).map_err(&io)?;
    let mut head = [0u8; 375];
    src.seek(SeekFrom::Start(0)).map_err(&io)?;
    let got = read_up_to_generic(src, &mut head).map_err(&io)?;
    if got < 227 {
        return Err(Error::format(
            path,
            format!(
                "LAS header ends after {got} bytes (a header has at least 227): file truncated"
            ),
        ));
    }
    let bad = |what: String| Error::format(path, what);
    let minor = head[25];
    let header_size = u64::from(u16_at(&head, 94));
    let point_offset = u64::from(u32_at(&head, 96));
    let n_vlrs = u64::from(u32_at(&head, 100));
    if header_size > file_len || point_offset > file_len {
        return Err(bad(format!(
            "header size {header_size} / offset to point data {point_offset} lie beyond the end \
             of the {file_len}-byte file: truncated or corrupt"
        )));
    }
    for (axis, i) in ["x", "y", "z"].iter().zip(0..3) {
        let scale = f64_at(&head, 131 + 8 * i);
        let offset = f64_at(&head, 155 + 8 * i);
        if !(scale.is_finite() && (SCALE_RANGE.0..=SCALE_RANGE.1).contains(&scale.abs())) {
            return Err(bad(format!(
                "{axis} scale factor {scale:e} is not usable (must be finite, with magnitude in \
                 [{:e}, {:e}]): corrupt header",
                SCALE_RANGE.0, SCALE_RANGE.1
            )));
        }
        if !(offset.is_finite() && offset.abs() <= MAX_OFFSET) {
            return Err(bad(format!(
                "{axis} offset {offset:e} is not usable (must be finite, magnitude at most \
                 {MAX_OFFSET:e}): corrupt header"
            )));
        }
    }
    // VLRs: 54-byte header, u16 length at byte 20.
    if n_vlrs.saturating_mul(54) > file_len.saturating_sub(header_size) {
        return Err(bad(format!(
            "header lists {n_vlrs} VLRs, more than a {file_len}-byte file can hold: corrupt"
        )));
    }
    let mut at = header_size;
    let mut vlr_head = [0u8; 54];
    let mut laszip: Option<Vec<u8>> = None;
    for i in 0..n_vlrs {
        src.seek(SeekFrom::Start(at)).map_err(&io)?;
        if read_up_to_generic(src, &mut vlr_head).map_err(&io)? < 54 {
            return Err(bad(format!(
                "VLR {i} at byte {at} runs past the end of the file"
            )));
        }
        let len = u64::from(u16_at(&vlr_head, 20));
        let end = at + 54 + len;
        if end > file_len {
            return Err(bad(format!(
                "VLR {i} at byte {at} claims {len} bytes, past the end of the {file_len}-byte file"
            )));
        }
        if vlr_head[2..18].starts_with(b"laszip encoded") && u16_at(&vlr_head, 18) == 22204 {
            let mut data = vec![0u8; len as usize];
            src.read_exact(&mut data).map_err(&io)?;
            laszip = Some(data);
        }
        at = end;
    }
    let mut info = LayoutInfo {
        pointwise_laz: laszip.is_some_and(|d| u16_at(&d, 0) == 1),
        ..Default::default()
    };
    let evlr_at = |src: &mut R, at: u64, i: u64| -> Result<(las::Vlr, u64)> {
        let mut h = [0u8; 60];
        src.seek(SeekFrom::Start(at)).map_err(&io)?;
        if read_up_to_generic(src, &mut h).map_err(&io)? < 60 {
            return Err(bad(format!(
                "EVLR {i} at byte {at} runs past the end of the file"
            )));
        }
        let len = u64_at(&h, 20);
        let remaining = file_len - at - 60;
        if len > remaining {
            return Err(bad(format!(
                "EVLR {i} at byte {at} claims {len} bytes but only {remaining} follow in the \
                 {file_len}-byte file: corrupt header"
            )));
        }
        let mut data = vec![0u8; len as usize];
        src.read_exact(&mut data).map_err(&io)?;
        let text = |b: &[u8]| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let vlr = las::Vlr {
            user_id: text(&h[2..18]),
            record_id: u16_at(&h, 18),
            description: text(&h[28..60]),
            data,
        };
        Ok((vlr, at + 60 + len))
    };
    if minor >= 4 && got >= 247 {
        let start = u64_at(&head, 235);
        let count = u64::from(u32_at(&head, 243));
        if count > 0 {
            if start > file_len || count.saturating_mul(60) > file_len - start {
                return Err(bad(format!(
                    "header lists {count} EVLRs from byte {start}, more than the {file_len}-byte \
                     file holds: corrupt"
                )));
            }
            let mut at = start;
            for i in 0..count {
                let (vlr, next) = evlr_at(src, at, i)?;
                info.evlrs.push(vlr);
                at = next;
            }
        }
    } else if minor == 3 && u16_at(&head, 6) & 0b10 != 0 {
        // LAS 1.3 internal waveform data: one record at the header's offset.
        let start = u64_at(&head, 227);
        if start > 0 {
            if start > file_len {
                return Err(bad(format!(
                    "waveform data at byte {start} lies past the end of the {file_len}-byte file"
                )));
            }
            let (_, end) = evlr_at(src, start, 0)?;
            let mut record = vec![0u8; (end - start) as usize];
            src.seek(SeekFrom::Start(start)).map_err(&io)?;
            src.read_exact(&mut record).map_err(&io)?;
            info.waveform_data = Some(record);
        }
    }
    src.seek(SeekFrom::Start(0)).map_err(&io)?;
    Ok(info)
}

fn read_up_to_generic<R: Read>(src: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The header the `las` crate read, with every EVLR of the file instead of
/// only the first.
fn with_all_evlrs(header: Header, evlrs: Vec<las::Vlr>, path: &Path) -> Result<Header> {
    if evlrs.len() <= header.evlrs().len() {
        return Ok(header);
    }
    let mut builder = Builder::from(header);
    builder.evlrs = evlrs;
    builder.into_header().map_err(las_err(path))
}

/// Errors as `pointpipe info` gives them for a file that is empty or does
/// not start with `LASF` (instead of the `las` crate's "failed to fill whole
/// buffer" or "signature is not 'LASF': [104, 101, 108, 108]"); leaves
/// `file` at its start.
fn check_signature(path: &Path, file: &mut File) -> Result<()> {
    let mut head = Vec::with_capacity(8);
    file.by_ref()
        .take(8)
        .read_to_end(&mut head)
        .map_err(atomic::io_err(path))?;
    file.rewind().map_err(atomic::io_err(path))?;
    if head.is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    if !head.starts_with(b"LASF") {
        let expected = match Format::from_path(path) {
            Ok(Format::Laz) => Format::Laz,
            _ => Format::Las,
        };
        return Err(super::wrong_magic(path, expected, &head));
    }
    Ok(())
}

/// Reads and validates the header of a LAS/LAZ file (every EVLR included)
/// without decoding points; see [`check_layout`].
///
/// # Errors
/// As [`read`] (an empty file or one that does not start with `LASF` is
/// named as the format its extension says, LAS or LAZ).
pub fn read_header(path: &Path) -> Result<Header> {
    let mut file = File::open(path).map_err(atomic::io_err(path))?;
    check_signature(path, &mut file)?;
    let layout = check_layout(&mut file, path)?;
    let header = Header::new(BufReader::new(file)).map_err(las_err(path))?;
    with_all_evlrs(header, layout.evlrs, path)
}

/// Opens a LAS/LAZ file for reading after [`check_layout`] and the LAZ
/// checks: a `las::Reader` (sequential for point-wise LAZ) and the full
/// header (every EVLR). Used by [`records`] so that every LAS path has
/// the same protections.
///
/// # Errors
/// As [`read`].
pub fn open_checked(path: &Path) -> Result<(las::Reader, Header, LayoutInfo)> {
    let mut file = File::open(path).map_err(atomic::io_err(path))?;
    let layout = check_layout(&mut file, path)?;
    open_source(BufReader::with_capacity(1 << 20, file), path, Some(layout))
}

/// Opens `source` for decoding; `layout` is [`check_layout`]'s result when
/// the caller already ran it on the same bytes.
fn open_source<R: Read + Seek + Send + Sync + 'static>(
    mut source: R,
    path: &Path,
    layout: Option<LayoutInfo>,
) -> Result<(las::Reader, Header, LayoutInfo)> {
    let mut layout = match layout {
        Some(layout) => layout,
        None => check_layout(&mut source, path)?,
    };
    let pre = Header::new(&mut source).map_err(las_err(path))?;
    if pre.point_format().is_compressed {
        check_laz_items(&pre, path)?;
        if !layout.pointwise_laz {
            check_chunk_table(&mut source, &pre, path)?;
        }
    } else {
        check_point_data_size(&mut source, &pre, path)?;
    }
    source
        .seek(SeekFrom::Start(0))
        .map_err(atomic::io_err(path))?;
    let options = if layout.pointwise_laz {
        las::ReaderOptions::default().with_laz_parallelism(las::LazParallelism::No)
    } else {
        las::ReaderOptions::default()
    };
    let reader = las::Reader::with_options(source, options).map_err(las_err(path))?;
    let header = with_all_evlrs(
        reader.header().clone(),
        std::mem::take(&mut layout.evlrs),
        path,
    )?;
    Ok((reader, header, layout))
}

fn decode<R: Read + Seek + Send + Sync + 'static>(
    source: R,
    path: &Path,
    layout: Option<LayoutInfo>,
) -> Result<(PointCloud, ReadReport)> {
    let (mut reader, header, layout) = open_source(source, path, layout)?;
    let promised = header.number_of_points();
    let format = *header.point_format();

    let mut cloud = PointCloud {
        // Capacity is a hint only: never trust a header with a huge count.
        points: Vec::with_capacity(promised.min(CHUNK_POINTS) as usize),
        intensity: Some(Vec::new()),
        time: format.has_gps_time.then(Vec::new),
        extras: Extras {
            las_attributes: Some(LasAttributes {
                color: format.has_color.then(Vec::new),
                nir: format.has_nir.then(Vec::new),
                waveform: format.has_waveform.then(Vec::new),
                extra_bytes_len: usize::from(format.extra_bytes),
                waveform_data: layout.waveform_data,
                ..Default::default()
            }),
            las_header: None,
        },
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
        unit: crs_linear_unit(&header),
    };
    decode_normal_fields(&mut cloud, &header, path);
    cloud.extras.las_header = Some(header);
    Ok((cloud, report))
}

/// Fills [`PointCloud::normals`] and [`PointCloud::curvature`] from the
/// extra-bytes fields `NormalX`, `NormalY`, `NormalZ` (and `Curvature`), `f32`
/// as pointpipe and `batch` write them (names compared case-insensitively).
/// The raw extra bytes stay in [`LasAttributes::extra_bytes`]; on output the
/// fields are replaced by the cloud's normals ([`write`]).
fn decode_normal_fields(cloud: &mut PointCloud, header: &Header, path: &Path) {
    use extra_bytes::{ExtraBytesType, read_extra_bytes_fields};
    let Some(attrs) = &cloud.extras.las_attributes else {
        return;
    };
    let len = attrs.extra_bytes_len;
    if len == 0 {
        return;
    }
    let Ok(fields) = read_extra_bytes_fields(header, path) else {
        return;
    };
    let mut offsets = [None; 4];
    let mut at = 0;
    for f in &fields {
        let slot = ["normalx", "normaly", "normalz", "curvature"]
            .iter()
            .position(|n| f.name.eq_ignore_ascii_case(n));
        if let (Some(k), ExtraBytesType::F32) = (slot, f.data_type) {
            offsets[k] = Some(at);
        }
        at += f.data_type.size();
    }
    if at != len {
        return;
    }
    let column = |at: usize| -> Vec<f64> {
        attrs
            .extra_bytes
            .chunks_exact(len)
            .map(|r| f64::from(f32::from_le_bytes(le(r, at))))
            .collect()
    };
    if let [Some(x), Some(y), Some(z), c] = offsets {
        let (x, y, z) = (column(x), column(y), column(z));
        cloud.normals = Some(
            (0..x.len())
                .map(|i| nalgebra::Vector3::new(x[i], y[i], z[i]))
                .collect(),
        );
        cloud.curvature = c.map(column);
        super::drop_empty_normals(cloud);
    }
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

/// Byte offsets of the fields inside one LAS point record (ASPRS LAS 1.4
/// R15, tables 7–17). Shared by the reader and the writer.
#[derive(Debug, Clone, Copy)]
struct RecordLayout {
    extended: bool,
    scan_angle: usize,
    user_data: usize,
    point_source_id: usize,
    gps_time: Option<usize>,
    rgb: Option<usize>,
    nir: Option<usize>,
    waveform: Option<usize>,
    /// Start of the extra bytes: the length of the format's own fields.
    extra: usize,
}

/// Bytes of a wave packet descriptor.
const WAVEFORM_LEN: usize = 29;

impl RecordLayout {
    fn new(format: &las::point::Format) -> Self {
        let extra = usize::from(format.len() - format.extra_bytes);
        if format.is_extended {
            let after_rgb = if format.has_color { 36 } else { 30 };
            let nir = format.has_nir.then_some(after_rgb);
            RecordLayout {
                extended: true,
                user_data: 17,
                scan_angle: 18,
                point_source_id: 20,
                gps_time: Some(22),
                rgb: format.has_color.then_some(30),
                nir,
                waveform: format
                    .has_waveform
                    .then_some(after_rgb + if nir.is_some() { 2 } else { 0 }),
                extra,
            }
        } else {
            let after_time = if format.has_gps_time { 28 } else { 20 };
            RecordLayout {
                extended: false,
                scan_angle: 16,
                user_data: 17,
                point_source_id: 18,
                gps_time: format.has_gps_time.then_some(20),
                rgb: format.has_color.then_some(after_time),
                nir: None,
                waveform: format
                    .has_waveform
                    .then_some(after_time + if format.has_color { 6 } else { 0 }),
                extra,
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
/// records (the `las` crate's column iterators make one pass per field,
/// slower than the decode itself).
fn append_chunk(cloud: &mut PointCloud, chunk: &las::PointData) {
    let layout = RecordLayout::new(chunk.format());
    let t = chunk.transforms();
    let record_len = chunk.record_len();
    if record_len < 20 || layout.extra > record_len {
        return; // cannot happen: every LAS point format has at least 20 bytes
    }
    let records = chunk.raw_bytes().chunks_exact(record_len);
    let n = records.len();
    let has_extra = layout.extra < record_len;
    cloud.points.reserve(n);
    reserve(&mut cloud.intensity, n);
    reserve(&mut cloud.time, n);
    if let Some(a) = &mut cloud.extras.las_attributes {
        a.classification.reserve(n);
        a.return_number.reserve(n);
        a.number_of_returns.reserve(n);
        a.scan_angle.reserve(n);
        a.user_data.reserve(n);
        a.point_source_id.reserve(n);
        a.flags.reserve(n);
        reserve(&mut a.color, n);
        reserve(&mut a.nir, n);
        reserve(&mut a.waveform, n);
        a.extra_bytes.reserve(n * (record_len - layout.extra));
    }
    let Some(a) = &mut cloud.extras.las_attributes else {
        return; // cannot happen: the reader always fills the attributes
    };
    let columns = Columns {
        points: &mut cloud.points,
        intensity: cloud.intensity.as_mut(),
        time: cloud.time.as_mut(),
        a,
    };
    if layout.extended {
        decode_records::<true>(records, &layout, t, has_extra, columns);
    } else {
        decode_records::<false>(records, &layout, t, has_extra, columns);
    }
}

/// The column vectors [`decode_records`] appends to.
struct Columns<'a> {
    points: &'a mut Vec<Point3<f64>>,
    intensity: Option<&'a mut Vec<f32>>,
    time: Option<&'a mut Vec<f64>>,
    a: &'a mut LasAttributes,
}

/// The per-record loop of [`append_chunk`], specialised on the legacy (0–5)
/// or extended (6–10) layout so that the fixed offsets are constants.
#[inline(always)]
fn decode_records<const EXTENDED: bool>(
    records: std::slice::ChunksExact<'_, u8>,
    layout: &RecordLayout,
    t: &Vector<Transform>,
    has_extra: bool,
    c: Columns<'_>,
) {
    let Columns {
        points,
        mut intensity,
        mut time,
        a,
    } = c;
    let (scan_angle_at, user_at, source_at) = if EXTENDED { (18, 17, 20) } else { (16, 17, 18) };
    for rec in records {
        let coord = |at: usize, t: &Transform| t.direct(i32::from_le_bytes(le(rec, at)));
        points.push(Point3::new(coord(0, &t.x), coord(4, &t.y), coord(8, &t.z)));
        if let Some(intensity) = intensity.as_deref_mut() {
            intensity.push(f32::from(u16::from_le_bytes(le(rec, 12))));
        }
        if let (Some(time), Some(at)) = (time.as_deref_mut(), layout.gps_time) {
            time.push(f64::from_le_bytes(le(rec, at)));
        }
        let [returns, byte15, byte16] = le(rec, 14);
        if EXTENDED {
            a.return_number.push(returns & 0x0f);
            a.number_of_returns.push(returns >> 4);
            a.flags.push(byte15);
            a.classification.push(byte16);
            let raw = i16::from_le_bytes(le(rec, scan_angle_at));
            a.scan_angle.push(f32::from(raw) * 0.006);
        } else {
            a.return_number.push(returns & 0x07);
            a.number_of_returns.push((returns >> 3) & 0x07);
            a.classification.push(byte15 & 0x1f);
            a.flags.push((byte15 >> 5) | (returns & 0xc0));
            a.scan_angle.push(f32::from(byte16 as i8));
        }
        let [user] = le(rec, user_at);
        a.user_data.push(user);
        a.point_source_id
            .push(u16::from_le_bytes(le(rec, source_at)));
        if let (Some(color), Some(at)) = (&mut a.color, layout.rgb) {
            let c: [u8; 6] = le(rec, at);
            color.push([
                u16::from_le_bytes([c[0], c[1]]),
                u16::from_le_bytes([c[2], c[3]]),
                u16::from_le_bytes([c[4], c[5]]),
            ]);
        }
        if let (Some(nir), Some(at)) = (&mut a.nir, layout.nir) {
            nir.push(u16::from_le_bytes(le(rec, at)));
        }
        if let (Some(w), Some(at)) = (&mut a.waveform, layout.waveform) {
            w.push(le(rec, at));
        }
        if has_extra {
            a.extra_bytes.extend_from_slice(&rec[layout.extra..]);
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

/// The horizontal unit of a LAS header's CRS.
///
/// - WKT (OGC 01-009 WKT1 and ISO 19162 WKT2): a geographic CRS (`GEOGCS`,
///   `GEOGCRS`, `GEODCRS` at the top, or inside `COMPD_CS`/`COMPOUNDCRS`)
///   gives [`LinearUnit::Degree`]; for a projected CRS (`PROJCS`,
///   `PROJCRS`) the `UNIT`/`LENGTHUNIT` that is a direct child of it (or of
///   its coordinate-system axes), with its factor in metres.
/// - GeoTIFF keys (GeoTIFF 1.0 §6.3): `ProjLinearUnitsGeoKey` (3076) 9001
///   metre, 9002 foot, 9003 US survey foot; a model type (1024) of 2
///   (geographic) gives degrees.
///
/// `None` when the header has no CRS or the CRS does not name a unit.
pub fn crs_linear_unit(header: &Header) -> Option<LinearUnit> {
    if let Some(wkt) = header.get_wkt_crs_bytes() {
        return wkt_linear_unit(&String::from_utf8_lossy(wkt));
    }
    let geotiff = header.get_geotiff_crs().ok()??;
    let key = |id: u16| {
        geotiff
            .entries
            .iter()
            .find_map(|e| match (&e.data, e.id == id) {
                (las::crs::GeoTiffData::U16(v), true) => Some(*v),
                _ => None,
            })
    };
    match key(3076) {
        Some(9001) => Some(LinearUnit::Metre),
        Some(9002) => Some(LinearUnit::InternationalFoot),
        Some(9003) => Some(LinearUnit::UsSurveyFoot),
        Some(_) => None,
        None if key(1024) == Some(2) => Some(LinearUnit::Degree),
        None => None,
    }
}

/// The horizontal unit of a WKT CRS; see [`crs_linear_unit`].
pub fn wkt_linear_unit(wkt: &str) -> Option<LinearUnit> {
    let upper = wkt.to_ascii_uppercase();
    // The outermost horizontal CRS keyword decides.
    let first = |keys: &[&str]| {
        keys.iter()
            .filter_map(|k| upper.find(&format!("{k}[")).map(|at| (at, k.len())))
            .min()
    };
    let projected = first(&["PROJCS", "PROJCRS", "PROJECTEDCRS"]);
    let geographic = first(&[
        "GEOGCS",
        "GEOGCRS",
        "GEODCRS",
        "GEOGRAPHICCRS",
        "GEODETICCRS",
    ]);
    let (start, key_len) = match (projected, geographic) {
        (Some(p), Some(g)) if g.0 < p.0 && !inside(&upper, g.0, p.0) => {
            return Some(LinearUnit::Degree);
        }
        (Some(p), _) => p,
        (None, Some(_)) => return Some(LinearUnit::Degree),
        (None, None) => return None,
    };
    // Direct children of the projected CRS (depth 1), or of its AXIS /
    // CS (depth 2) in WKT2.
    let bytes = upper.as_bytes();
    let mut depth = 0i32;
    let mut i = start + key_len;
    let mut found = None;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'(' => depth += 1,
            b']' | b')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b'"' => {
                // skip quoted text
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += 1;
                }
            }
            _ => {
                for key in ["LENGTHUNIT[", "UNIT["] {
                    if (depth == 1 || depth == 2 && found.is_none())
                        && upper[i..].starts_with(key)
                        && (i == 0 || !bytes[i - 1].is_ascii_alphabetic())
                    {
                        found = parse_unit(&wkt[i + key.len()..]).or(found);
                        break;
                    }
                }
            }
        }
        i += 1;
    }
    found
}

/// True when position `inner` lies inside the brackets opened after `outer`.
fn inside(text: &str, outer: usize, inner: usize) -> bool {
    let mut depth = 0i32;
    for b in text.as_bytes()[outer..inner].iter() {
        match b {
            b'[' | b'(' => depth += 1,
            b']' | b')' => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// Parses `"name", factor` at the start of a `UNIT[` body.
fn parse_unit(body: &str) -> Option<LinearUnit> {
    let body = body.trim_start().strip_prefix('"')?;
    let (name, rest) = body.split_once('"')?;
    let rest = rest.trim_start().strip_prefix(',')?;
    let end = rest.find([',', ']', ')']).unwrap_or(rest.len());
    let metres: f64 = rest[..end].trim().parse().ok()?;
    if !(metres.is_finite() && metres > 0.0) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if lower.contains("degree") {
        return Some(LinearUnit::Degree);
    }
    Some(LinearUnit::from_metres(name, metres))
}

/// Writes `cloud` as LAS, or LAZ when `path` ends in `.laz`, atomically.
///
/// # Header
/// - Cloud read from LAS/LAZ ([`Extras::las_header`](crate::cloud::Extras::las_header) is `Some`): the
///   source header is written back — version, point format (waveform, NIR
///   and extra bytes included), scale, offset, every VLR and EVLR (CRS as WKT
///   or GeoTIFF, extra-bytes descriptors, wave packet descriptors, waveform
///   data), GPS time type, system identifier, GUID and software. Only the
///   `laszip encoded` and COPC VLRs are dropped (they describe the old
///   storage; the writer adds its own LASzip VLR for LAZ). If a point no
///   longer fits the source scale/offset in `i32` (the cloud was moved), the
///   offset is moved to the minimum corner and the scale kept.
/// - Any other cloud: LAS 1.4, the smallest point format of 6–10 that holds
///   the cloud's attributes (6; 7 with colour; 8 with NIR),
///   scale [`DEFAULT_SCALE`] = 1 mm in the cloud's unit (coarsened by powers
///   of ten only if the extent exceeds 2³¹ mm ≈ 2147 km), offset at the
///   minimum corner rounded down to the scale. No CRS.
///
/// # Attributes
/// Every field of the point format is written from the cloud: intensity
/// (rounded and clamped to 0–65535; when the cloud did not come from LAS
/// and all intensities lie in [0, 1], KITTI reflectance, they are scaled by
/// 65535 first), GPS time ([`PointCloud::time`], 0 when absent) and from
/// [`Extras::las_attributes`](crate::cloud::Extras::las_attributes) classification, return number and count,
/// the flag bits (synthetic, key-point, withheld, overlap, scanner channel,
/// scan direction, edge of flight line), scan angle, user data, point source
/// id, RGB, NIR, wave packet descriptors and extra bytes (return 1 of 1,
/// class 1 "unclassified" and zeros when absent). A LAS → LAS or LAS → LAZ
/// conversion therefore reproduces every point record byte for byte.
///
/// Normals ([`PointCloud::normals`]) are appended as the extra-bytes fields
/// `NormalX`, `NormalY`, `NormalZ`, `Curvature` (`f32`, NaN curvature when
/// absent), described in the extra-bytes VLR exactly as `pointpipe batch`
/// writes them ([`extra_bytes::normal_fields`]); input fields
/// of those names are replaced.
///
/// # Errors
/// [`Error::Io`] when writing fails, [`Error::Las`] when the `las` crate
/// rejects the header, [`Error::Format`] when a value cannot be stored in the
/// output's point format (a classification over 31, more than 7 returns, an
/// overlap or scanner-channel bit in a legacy format 0–5; a position that
/// does not fit the scale/offset).
pub fn write(path: &Path, cloud: &PointCloud) -> Result<()> {
    let compress = Format::from_path(path).ok() == Some(Format::Laz);
    let plan = OutputPlan::new(cloud, compress, path)?;
    let intensity_scale = intensity_scale(cloud);
    let out_len = usize::from(plan.header.point_format().len());
    write_las_atomic(
        path,
        plan.header.clone(),
        |writer| {
            let builder = las::PointDataBuilder::new().for_header(writer.header());
            let mut start = 0;
            while start < cloud.len() {
                let end = (start + WRITE_CHUNK).min(cloud.len());
                let mut bytes = vec![0u8; (end - start) * out_len];
                bytes
                    .par_chunks_exact_mut(out_len)
                    .zip(start..end)
                    .try_for_each(|(rec, i)| {
                        encode_point(rec, i, cloud, &plan, intensity_scale, path)
                    })?;
                let data = builder
                    .clone()
                    .build_from_bytes(bytes)
                    .map_err(las_err(path))?;
                writer.write_points(&data).map_err(las_err(path))?;
                start = end;
            }
            Ok(())
        },
        |file| patch_waveform_pointer(file, cloud, &plan, path),
    )
}

/// The writer [`write_las_atomic`] hands out.
type LasWriter = las::Writer<BufWriter<File>>;

/// Writes `path` as LAS/LAZ with `header`, atomically
/// ([`atomic::write_atomic_owned`]): `write_points` hands the records to
/// the writer, which is then closed (header counts and bounds, LAZ chunk
/// table), and `patch` may edit the finished file before it is renamed.
/// The one writer set-up of every LAS path (this module and [`records`]).
///
/// # Errors
/// [`Error::Io`] / [`Error::Las`] on write failures; those of the closures.
fn write_las_atomic(
    path: &Path,
    header: Header,
    write_points: impl FnOnce(&mut LasWriter) -> Result<()>,
    patch: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    atomic::write_atomic_owned(path, |file| {
        let mut writer = las::Writer::new(BufWriter::with_capacity(1 << 20, file), header)
            .map_err(las_err(path))?;
        write_points(&mut writer)?;
        writer.close().map_err(las_err(path))?;
        let inner = writer.into_inner().map_err(las_err(path))?;
        let mut file = inner
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?;
        patch(&mut file)?;
        Ok(file)
    })
}

/// Quantises `p` with `transforms` into the X, Y, Z integers that open
/// every LAS record (its first 12 bytes, little-endian).
///
/// # Errors
/// [`Error::Format`] naming `path` and, through `what`, the coordinate when
/// it does not fit the scale/offset in `i32`.
fn write_xyz(
    record: &mut [u8],
    p: &Point3<f64>,
    transforms: &Vector<Transform>,
    path: &Path,
    what: impl Fn(f64) -> String,
) -> Result<()> {
    for (axis, (v, t)) in [
        (p.x, &transforms.x),
        (p.y, &transforms.y),
        (p.z, &transforms.z),
    ]
    .into_iter()
    .enumerate()
    {
        let q = t.inverse(v).map_err(|e| {
            Error::format(
                path,
                format!("{} does not fit the LAS scale/offset: {e}", what(v)),
            )
        })?;
        record[4 * axis..4 * axis + 4].copy_from_slice(&q.to_le_bytes());
    }
    Ok(())
}

/// Points encoded per `write_points` call ([`write`] and the raw records of
/// [`records`]): ten LAZ chunks of the usual 50,000 points, so that the
/// parallel LAZ compressor has chunks to share out. LAZ chunks do not
/// depend on how the points are handed over: the file is the same whatever
/// this is.
pub(crate) const WRITE_CHUNK: usize = 500_000;

/// The output header and where each part of a record comes from.
struct OutputPlan {
    header: Header,
    layout: RecordLayout,
    /// Ranges of the cloud's per-point extra bytes copied, in order, after
    /// the format's own fields.
    extra_kept: Vec<std::ops::Range<usize>>,
    /// Offset of the appended `NormalX..Curvature` fields, when written.
    normals_at: Option<usize>,
}

impl OutputPlan {
    fn new(cloud: &PointCloud, compress: bool, path: &Path) -> Result<OutputPlan> {
        let attrs = cloud.extras.las_attributes.as_ref();
        let extra_len = attrs.map_or(0, |a| a.extra_bytes_len);
        let mut base = build_header(cloud, path)?;
        // Extra bytes come from the cloud; a header that disagrees (a cloud
        // edited by hand) loses its descriptors rather than mislabel bytes.
        if usize::from(base.point_format.extra_bytes) != extra_len {
            log::warn!(
                "{}: the LAS header describes {} extra bytes per point, the cloud holds {extra_len}; \
                 writing them without field descriptors",
                path.display(),
                base.point_format.extra_bytes
            );
            base.vlrs.retain(|v| !extra_bytes::is_extra_bytes_vlr(v));
            base.evlrs.retain(|v| !extra_bytes::is_extra_bytes_vlr(v));
            base.point_format.extra_bytes = u16::try_from(extra_len)
                .map_err(|_| Error::format(path, "too many extra bytes per point"))?;
        }
        let base = base.into_header().map_err(las_err(path))?;
        let core = RecordLayout::new(base.point_format()).extra;
        let (mut header, extra_kept, normals_at) = if cloud.normals.is_some() {
            let (header, kept) = records::with_normal_fields(&base, path)?;
            let mut extra_kept = Vec::new();
            let mut at = core;
            for r in kept {
                if r.end > core {
                    let r = r.start.max(core) - core..r.end - core;
                    at += r.len();
                    extra_kept.push(r);
                }
            }
            (header, extra_kept, Some(at))
        } else {
            (base, std::iter::once(0..extra_len).collect(), None)
        };
        if header.point_format().is_compressed != compress {
            let mut b = Builder::from(header);
            b.point_format.is_compressed = compress;
            header = b.into_header().map_err(las_err(path))?;
        }
        let layout = RecordLayout::new(header.point_format());
        Ok(OutputPlan {
            header,
            layout,
            extra_kept,
            normals_at,
        })
    }
}

/// Factor applied to intensities before rounding (see [`write`]).
fn intensity_scale(cloud: &PointCloud) -> f32 {
    match (&cloud.intensity, &cloud.extras.las_header) {
        (Some(v), None) if v.iter().all(|&x| (0.0..=1.0).contains(&x)) => 65535.0,
        _ => 1.0,
    }
}

/// The output header before the normal fields are added.
fn build_header(cloud: &PointCloud, path: &Path) -> Result<Builder> {
    let bounds = cloud.bounds();
    let attrs = cloud.extras.las_attributes.as_ref();
    Ok(match &cloud.extras.las_header {
        Some(source) => {
            let mut b = Builder::from(source.clone());
            b.vlrs.retain(|v| !is_layout_vlr(v));
            b.evlrs.retain(|v| !is_layout_vlr(v));
            if let Some((lo, hi)) = bounds
                && !fits(&b.transforms, &lo, &hi)
            {
                log::info!(
                    "{}: points moved outside the source LAS offset; offset reset",
                    path.display()
                );
                b.transforms = transforms_for(&lo, &hi, b.transforms.x.scale);
            }
            b
        }
        None => {
            let mut b = Builder::from((1, 4));
            let has_color = attrs.is_some_and(|a| a.color.is_some());
            let has_nir = attrs.is_some_and(|a| a.nir.is_some());
            let has_waveform = attrs.is_some_and(|a| a.waveform.is_some());
            let number = match (has_color || has_nir, has_nir, has_waveform) {
                (false, _, false) => 6,
                (true, false, false) => 7,
                (_, true, false) => 8,
                (false, _, true) => 9,
                (true, _, true) => 10,
            };
            b.point_format = las::point::Format::new(number).map_err(las_err(path))?;
            b.point_format.extra_bytes = attrs.map_or(0, |a| a.extra_bytes_len as u16);
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
    })
}

/// VLRs that describe the source file's storage, not its content: the
/// LASzip VLR (the writer adds its own for LAZ) and COPC VLRs.
fn is_layout_vlr(v: &las::Vlr) -> bool {
    v.user_id.eq_ignore_ascii_case("laszip encoded") || v.user_id.eq_ignore_ascii_case("copc")
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

/// Encodes point `i` of `cloud` into the record `rec` (zeroed, the output
/// record length) following `plan`.
fn encode_point(
    rec: &mut [u8],
    i: usize,
    cloud: &PointCloud,
    plan: &OutputPlan,
    intensity_scale: f32,
    path: &Path,
) -> Result<()> {
    let l = &plan.layout;
    write_xyz(rec, &cloud.points[i], plan.header.transforms(), path, |v| {
        format!("point {i}: coordinate {v}")
    })?;
    let intensity = cloud.intensity.as_ref().map_or(0, |v| {
        (v[i] * intensity_scale).round().clamp(0.0, 65535.0) as u16
    });
    rec[12..14].copy_from_slice(&intensity.to_le_bytes());
    if let (Some(at), Some(time)) = (l.gps_time, &cloud.time) {
        rec[at..at + 8].copy_from_slice(&time[i].to_le_bytes());
    }
    let Some(a) = &cloud.extras.las_attributes else {
        rec[14] = if l.extended { 0x11 } else { 0x09 }; // return 1 of 1
        rec[if l.extended { 16 } else { 15 }] = 1; // unclassified
        return encode_normals(rec, i, cloud, plan);
    };
    let (ret, nret, class, flags) = (
        a.return_number[i],
        a.number_of_returns[i],
        a.classification[i],
        a.flags[i],
    );
    if l.extended {
        rec[14] = (ret & 0x0f) | (nret << 4);
        rec[15] = flags;
        rec[16] = class;
        let raw = (a.scan_angle[i] / 0.006)
            .round()
            .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
        rec[l.scan_angle..l.scan_angle + 2].copy_from_slice(&raw.to_le_bytes());
    } else {
        if class > 31 || ret > 7 || nret > 7 || flags & 0x38 != 0 {
            return Err(Error::format(
                path,
                format!(
                    "point {i}: classification {class}, return {ret} of {nret} or flags \
                     {flags:#010b} (overlap / scanner channel) cannot be stored in legacy LAS \
                     point format {}; formats 6-10 can hold them",
                    plan.header.point_format().to_u8().unwrap_or(0)
                ),
            ));
        }
        rec[14] = ret | (nret << 3) | (flags & 0xc0);
        rec[15] = class | ((flags & 0x07) << 5);
        rec[l.scan_angle] = a.scan_angle[i].round().clamp(-128.0, 127.0) as i8 as u8;
    }
    rec[l.user_data] = a.user_data[i];
    rec[l.point_source_id..l.point_source_id + 2]
        .copy_from_slice(&a.point_source_id[i].to_le_bytes());
    if let (Some(at), Some(c)) = (l.rgb, &a.color) {
        for (k, v) in c[i].iter().enumerate() {
            rec[at + 2 * k..at + 2 * k + 2].copy_from_slice(&v.to_le_bytes());
        }
    }
    if let (Some(at), Some(nir)) = (l.nir, &a.nir) {
        rec[at..at + 2].copy_from_slice(&nir[i].to_le_bytes());
    }
    if let (Some(at), Some(w)) = (l.waveform, &a.waveform) {
        rec[at..at + WAVEFORM_LEN].copy_from_slice(&w[i]);
    }
    let len = a.extra_bytes_len;
    if len > 0 {
        let src = &a.extra_bytes[i * len..(i + 1) * len];
        let mut at = l.extra;
        for r in &plan.extra_kept {
            rec[at..at + r.len()].copy_from_slice(&src[r.clone()]);
            at += r.len();
        }
    }
    encode_normals(rec, i, cloud, plan)
}

fn encode_normals(rec: &mut [u8], i: usize, cloud: &PointCloud, plan: &OutputPlan) -> Result<()> {
    if let (Some(at), Some(normals)) = (plan.normals_at, &cloud.normals) {
        let n = normals[i];
        let c = cloud.curvature.as_ref().map_or(f64::NAN, |c| c[i]);
        for (k, v) in [n.x, n.y, n.z, c].into_iter().enumerate() {
            rec[at + 4 * k..at + 4 * k + 4].copy_from_slice(&(v as f32).to_le_bytes());
        }
    }
    Ok(())
}

/// The `las` crate writes 0 for "start of waveform data packet record" and
/// clears the waveform bits of the global encoding. When the output keeps
/// internal waveform data (a LAS 1.3 record appended after the points, or a
/// LAS 1.4 EVLR 65535), the record is located in the written file and the
/// pointer and global-encoding bit 1 ("internal") are written; descriptors
/// without internal data get bit 2 ("external `.wdp` file", not copied).
fn patch_waveform_pointer(
    file: &mut File,
    cloud: &PointCloud,
    plan: &OutputPlan,
    path: &Path,
) -> Result<()> {
    use std::io::Write;
    if !plan.header.point_format().has_waveform {
        return Ok(());
    }
    let io = atomic::io_err(path);
    let mut start = None;
    if let Some(data) = cloud
        .extras
        .las_attributes
        .as_ref()
        .and_then(|a| a.waveform_data.as_ref())
        && plan.header.version().minor < 4
    {
        let end = file.seek(SeekFrom::End(0)).map_err(&io)?;
        file.write_all(data).map_err(&io)?;
        start = Some(end);
    } else if plan.header.version().minor >= 4 {
        let mut word = [0u8; 12];
        file.seek(SeekFrom::Start(235)).map_err(&io)?;
        file.read_exact(&mut word).map_err(&io)?;
        let mut at = u64_at(&word, 0);
        for _ in 0..u32_at(&word, 8) {
            let mut h = [0u8; 60];
            file.seek(SeekFrom::Start(at)).map_err(&io)?;
            file.read_exact(&mut h).map_err(&io)?;
            if h[2..18].starts_with(b"LASF_Spec") && u16_at(&h, 18) == 65535 {
                start = Some(at);
                break;
            }
            at += 60 + u64_at(&h, 20);
        }
    }
    let mut encoding = [0u8; 2];
    file.seek(SeekFrom::Start(6)).map_err(&io)?;
    file.read_exact(&mut encoding).map_err(&io)?;
    let bits = u16::from_le_bytes(encoding) | if start.is_some() { 0b10 } else { 0b100 };
    file.seek(SeekFrom::Start(6)).map_err(&io)?;
    file.write_all(&bits.to_le_bytes()).map_err(&io)?;
    if let Some(start) = start {
        file.seek(SeekFrom::Start(227)).map_err(&io)?;
        file.write_all(&start.to_le_bytes()).map_err(&io)?;
    }
    file.flush().map_err(&io)?;
    Ok(())
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
