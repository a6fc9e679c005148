//! Writing raw records: the input's header and point records with new
//! positions and four appended extra-bytes fields (normals, curvature).
//!
//! # What is kept
//! - LAS version, point format, scale and offset, system identifier, GUID,
//!   file source id, global encoding, every VLR and EVLR except the ones that
//!   describe the old layout (the `laszip encoded` VLR, COPC VLRs and the old
//!   extra-bytes VLR, which is rewritten), so the CRS VLRs (WKT and GeoTIFF
//!   keys) pass through unchanged.
//! - Each output point's record is a byte copy of its voxel's *representative*
//!   input record (the first input point of the voxel, see
//!   [`crate::voxel::voxel_downsample_with_representatives`]): classification,
//!   flags, return numbers, intensity, scan angle, user data, point source id,
//!   GPS time, RGB, NIR, waveform packet and the input's own extra bytes are
//!   those of that point, not averaged (an average classification or GPS time
//!   has no meaning; intensity is kept from the same point so that every
//!   attribute of a record describes one real return). Only X, Y, Z are
//!   replaced, by the output position (the voxel centroid or the first point)
//!   quantised with the input's scale and offset.
//! - The extra-bytes VLR lists the input's fields (undescribed input extra
//!   bytes become opaque `data_type` 0 fields) followed by `NormalX`,
//!   `NormalY`, `NormalZ`, `Curvature` as `f32`.
//! - An input field with one of those four names (any case: a file written by
//!   pointpipe or CloudCompare, say) is dropped from the output records, so the
//!   new normals replace the old ones instead of standing beside fields of
//!   the same name; the other input fields keep their order and bytes.

use std::path::Path;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::las::extra_bytes::{
    ExtraBytesField, ExtraBytesType, NORMAL_FIELDS_LEN, extra_bytes_vlr, is_extra_bytes_vlr,
    normal_fields, read_extra_bytes_fields,
};
use crate::io::las::{LasWriter, WRITE_CHUNK, las_err, write_las_atomic, write_xyz};

/// The per-point content of a LAS/LAZ batch output.
#[derive(Debug, Clone, Copy)]
pub struct LasTileOutput<'a> {
    /// Header of the input tile.
    pub header: &'a las::Header,
    /// Raw point records of the input tile (as read by `las::Reader::read_all`).
    pub records: &'a las::PointData,
    /// For each output point, the index of its representative input record.
    pub representatives: &'a [usize],
    /// Output positions in the input's CRS units, one per output point.
    pub positions: &'a [Point3<f64>],
    /// Unit normals (zero vector = none), one per output point.
    pub normals: &'a [Vector3<f64>],
    /// Curvature (NaN = none), one per output point.
    pub curvature: &'a [f64],
}

/// Writes `output` to `path` as LAS, or LAZ when `compressed`, atomically
/// (a temporary file in `path`'s folder renamed when complete, see
/// [`crate::io::atomic`]), so a killed process never leaves a truncated file
/// under `path`.
///
/// # Errors
/// [`Error::Format`] when the slices have different lengths, a representative
/// index is out of range or a position does not fit the input's scale/offset
/// (`i32` overflow); [`Error::Io`] / [`Error::Las`] on write failures.
pub fn write_las_tile(path: &Path, output: &LasTileOutput<'_>, compressed: bool) -> Result<()> {
    let n = output.representatives.len();
    if output.positions.len() != n || output.normals.len() != n || output.curvature.len() != n {
        return Err(Error::format(path, "output slices have different lengths"));
    }
    let (header, layout) = output_header(output.header, path, compressed)?;
    let bytes = build_records(path, output, &header, &layout)?;
    let data = las::PointDataBuilder::new()
        .for_header(&header)
        .build_from_bytes(bytes)
        .map_err(las_err(path))?;
    write_las_atomic(
        path,
        header,
        |writer| writer.write_points(&data).map_err(las_err(path)),
        |_| Ok(()),
    )
}

/// Writes a batch output from records that already hold their output X, Y,
/// Z: for output point `j`, the bytes of `records[j · record_len ..]` (an
/// input record of `header`'s layout whose X/Y/Z were replaced by the
/// output position, quantised), then `normals[j]`, as [`write_las_tile`]
/// writes them (same header, VLRs and record layout, so the same bytes).
/// The output records are built and handed to the writer [`WRITE_CHUNK`]
/// points at a time, so memory is one slab, not the output.
///
/// # Errors
/// [`Error::Format`] when `records` does not hold `normals.len()` records of
/// `header`'s length; [`Error::Io`] / [`Error::Las`] on write failures.
pub(crate) fn write_las_records(
    path: &Path,
    header: &las::Header,
    records: &[u8],
    normals: &[[f32; 4]],
    compressed: bool,
) -> Result<()> {
    let in_len = usize::from(header.point_format().len());
    if records.len() != normals.len() * in_len {
        return Err(Error::format(
            path,
            "output records and normals differ in number",
        ));
    }
    let (out_header, layout) = output_header(header, path, compressed)?;
    let out_len = usize::from(out_header.point_format().len());
    let kept_len = layout.kept_len();
    if out_len != kept_len + NORMAL_FIELDS_LEN || layout.kept.iter().any(|r| r.end > in_len) {
        return Err(Error::format(path, "output record length mismatch"));
    }
    let write_slabs = |writer: &mut LasWriter| {
        // One slab at least: an empty output is written as one empty slab,
        // as write_las_tile writes it.
        let mut start = 0;
        loop {
            let end = (start + WRITE_CHUNK).min(normals.len());
            let slab = &records[start * in_len..end * in_len];
            let slab_normals = &normals[start..end];
            let mut bytes = vec![0u8; slab_normals.len() * out_len];
            bytes
                .par_chunks_mut(out_len)
                .zip(slab.par_chunks(in_len))
                .zip(slab_normals.par_iter())
                .for_each(|((record, source), normal)| {
                    let mut at = 0;
                    for range in &layout.kept {
                        record[at..at + range.len()].copy_from_slice(&source[range.clone()]);
                        at += range.len();
                    }
                    for (k, v) in normal.iter().enumerate() {
                        let at = kept_len + 4 * k;
                        record[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    }
                });
            let data = las::PointDataBuilder::new()
                .for_header(writer.header())
                .build_from_bytes(bytes)
                .map_err(las_err(path))?;
            writer.write_points(&data).map_err(las_err(path))?;
            start = end;
            if start >= normals.len() {
                break;
            }
        }
        Ok(())
    };
    write_las_atomic(path, out_header, write_slabs, |_| Ok(()))
}

/// Replaces X, Y, Z of every record (`record_len` bytes each, X/Y/Z its
/// first 12 bytes) by `positions[j]` quantised with `transforms`, as
/// [`write_las_tile`] quantises output positions.
///
/// # Errors
/// [`Error::Format`] when a position does not fit the LAS scale/offset
/// (`i32` overflow) or the lengths differ.
pub(crate) fn quantise_into_records(
    path: &Path,
    records: &mut [u8],
    record_len: usize,
    positions: &[Point3<f64>],
    transforms: &las::Vector<las::Transform>,
) -> Result<()> {
    if record_len < 12 || records.len() != positions.len() * record_len {
        return Err(Error::format(
            path,
            "records and positions differ in number",
        ));
    }
    records
        .par_chunks_mut(record_len)
        .zip(positions.par_iter())
        .try_for_each(|(record, p)| write_position(record, p, transforms, path))
}

/// VLRs that describe the input's storage layout, not its content: the
/// LASzip and COPC VLRs and the extra-bytes VLR (rewritten).
fn is_layout_vlr(vlr: &las::Vlr) -> bool {
    is_extra_bytes_vlr(vlr) || crate::io::las::is_layout_vlr(vlr)
}

/// Which bytes of an input record start an output record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordLayout {
    /// Byte ranges of the input record, copied in order to the front of the
    /// output record: the point format's own fields, then every input extra
    /// field not named like one of [`normal_fields`].
    kept: Vec<std::ops::Range<usize>>,
}

impl RecordLayout {
    /// The total length of the kept ranges: the offset of `NormalX` in the
    /// output record.
    fn kept_len(&self) -> usize {
        self.kept.iter().map(|r| r.len()).sum()
    }
}

/// The output header (the input's, with the layout VLRs replaced, input
/// fields named like ours dropped and our 16 bytes per point appended) and
/// the [`RecordLayout`] that goes with it.
fn output_header(
    input: &las::Header,
    path: &Path,
    compressed: bool,
) -> Result<(las::Header, RecordLayout)> {
    let (mut builder, layout) = normal_builder(input, path)?;
    builder.point_format.is_compressed = compressed;
    builder.generating_software = "pointpipe batch".to_string();
    let header = builder.into_header().map_err(las_err(path))?;
    Ok((header, layout))
}

/// The header of a LAS output that appends the normal fields
/// ([`normal_fields`]) to the records of `input`, and the byte ranges of an
/// `input` record (format fields, then the kept input extra bytes) that come
/// before them, in order. Input extra-bytes fields named like ours are
/// dropped (replaced). Shared by the batch tiles and
/// [`crate::io::las::write`], so both LAS paths store normals alike.
///
/// # Errors
/// [`Error::Format`] when the extra bytes would exceed 65,535 per point,
/// [`Error::Las`] when the header is rejected.
pub(crate) fn with_normal_fields(
    input: &las::Header,
    path: &Path,
) -> Result<(las::Header, Vec<std::ops::Range<usize>>)> {
    let (builder, layout) = normal_builder(input, path)?;
    let header = builder.into_header().map_err(las_err(path))?;
    Ok((header, layout.kept))
}

fn normal_builder(input: &las::Header, path: &Path) -> Result<(las::Builder, RecordLayout)> {
    let input_extra = usize::from(input.point_format().extra_bytes);
    let record_len = usize::from(input.point_format().len());
    let core_len = record_len - input_extra;
    let ours = normal_fields();
    let mut fields = Vec::new();
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    kept.push(0..core_len);
    let mut at = core_len;
    for field in input_fields(input, path, input_extra) {
        let range = at..at + field.data_type.size();
        at = range.end;
        if ours
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&field.name))
        {
            log::info!(
                "{}: input extra-bytes field {} is replaced by the new normals",
                path.display(),
                field.name
            );
            continue;
        }
        match kept.last_mut() {
            Some(last) if last.end == range.start => last.end = range.end,
            _ => kept.push(range),
        }
        fields.push(field);
    }
    let layout = RecordLayout { kept };
    fields.extend(ours);
    let mut builder = las::Builder::from(input.clone());
    builder.vlrs.retain(|v| !is_layout_vlr(v));
    builder.evlrs.retain(|v| !is_layout_vlr(v));
    builder.vlrs.push(extra_bytes_vlr(&fields));
    builder.point_format.extra_bytes =
        u16::try_from(layout.kept_len() - core_len + NORMAL_FIELDS_LEN)
            .map_err(|_| Error::format(path, "too many extra bytes per point"))?;
    Ok((builder, layout))
}

/// The input's extra-bytes fields, or opaque fields covering its extra bytes
/// when the descriptors are missing or do not add up to the record size.
fn input_fields(input: &las::Header, path: &Path, input_extra: usize) -> Vec<ExtraBytesField> {
    let described = read_extra_bytes_fields(input, path).unwrap_or_else(|e| {
        log::warn!("{e}; keeping the input's extra bytes as opaque bytes");
        Vec::new()
    });
    let described_len: usize = described.iter().map(|f| f.data_type.size()).sum();
    if described_len == input_extra {
        return described;
    }
    if !described.is_empty() {
        log::warn!(
            "{}: extra-bytes descriptors cover {described_len} bytes, records have {input_extra}; keeping them as opaque bytes",
            path.display()
        );
    }
    let mut fields = Vec::new();
    let mut remaining = input_extra;
    while remaining > 0 {
        let size = remaining.min(255);
        let name = format!("input_extra_{}", fields.len());
        if let Ok(field) = ExtraBytesField::new(&name, ExtraBytesType::Opaque(size as u8), "") {
            fields.push(field);
        }
        remaining -= size;
    }
    fields
}

/// The output records: representative bytes (the `layout`'s kept ranges),
/// new X/Y/Z, appended normals.
fn build_records(
    path: &Path,
    output: &LasTileOutput<'_>,
    header: &las::Header,
    layout: &RecordLayout,
) -> Result<Vec<u8>> {
    let in_len = output.records.record_len();
    let out_len = usize::from(header.point_format().len());
    let kept_len = layout.kept_len();
    if out_len != kept_len + NORMAL_FIELDS_LEN || layout.kept.iter().any(|r| r.end > in_len) {
        return Err(Error::format(path, "output record length mismatch"));
    }
    let raw = output.records.raw_bytes();
    let transforms = *header.transforms();
    let mut bytes = vec![0u8; output.representatives.len() * out_len];
    bytes
        .par_chunks_mut(out_len)
        .enumerate()
        .try_for_each(|(j, record)| {
            let rep = output.representatives[j];
            let source = raw
                .get(rep * in_len..(rep + 1) * in_len)
                .ok_or_else(|| Error::format(path, format!("representative {rep} out of range")))?;
            let mut at = 0;
            for range in &layout.kept {
                record[at..at + range.len()].copy_from_slice(&source[range.clone()]);
                at += range.len();
            }
            let p = output.positions[j];
            write_position(record, &p, &transforms, path)?;
            let n = output.normals[j];
            let extra = [
                n.x as f32,
                n.y as f32,
                n.z as f32,
                output.curvature[j] as f32,
            ];
            for (k, v) in extra.iter().enumerate() {
                let at = kept_len + 4 * k;
                record[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            Ok(())
        })?;
    Ok(bytes)
}

/// [`write_xyz`] with the error naming the position.
fn write_position(
    record: &mut [u8],
    p: &Point3<f64>,
    transforms: &las::Vector<las::Transform>,
    path: &Path,
) -> Result<()> {
    write_xyz(record, p, transforms, path, |v| format!("position {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::las::records::{LasTile, read_las_tile};

    /// A LAS 1.4 format-3 header whose records carry `fields` as extra bytes.
    fn header_with(fields: &[ExtraBytesField]) -> las::Header {
        let mut builder = las::Builder::from((1, 4));
        builder.point_format = las::point::Format::new(3).unwrap();
        builder.point_format.extra_bytes = fields
            .iter()
            .map(|f| f.data_type.size() as u16)
            .sum::<u16>();
        builder.vlrs.push(extra_bytes_vlr(fields));
        builder.into_header().unwrap()
    }

    /// Writes two points whose records carry `extra` after the core fields,
    /// with the given normals, and reads the file back.
    fn write_and_read(
        dir: &Path,
        name: &str,
        header: &las::Header,
        extra: [&[u8]; 2],
        normals: [Vector3<f64>; 2],
    ) -> LasTile {
        let len = usize::from(header.point_format().len());
        let core = len - extra[0].len();
        let mut bytes = vec![0u8; 2 * len];
        for (j, e) in extra.iter().enumerate() {
            bytes[j * len + core..(j + 1) * len].copy_from_slice(e);
        }
        let records = las::PointDataBuilder::new()
            .for_header(header)
            .build_from_bytes(bytes)
            .unwrap();
        let out = LasTileOutput {
            header,
            records: &records,
            representatives: &[0, 1],
            positions: &[Point3::new(1.0, 2.0, 3.0), Point3::new(4.0, 5.0, 6.0)],
            normals: &normals,
            curvature: &[0.25, 0.5],
        };
        let path = dir.join(name);
        write_las_tile(&path, &out, false).unwrap();
        read_las_tile(&path).unwrap()
    }

    fn names(tile: &LasTile) -> Vec<String> {
        read_extra_bytes_fields(&tile.header, Path::new("t"))
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect()
    }

    /// The last [`NORMAL_FIELDS_LEN`] bytes of record `j`, as four `f32`.
    fn normal_bytes(tile: &LasTile, j: usize) -> [f32; 4] {
        let len = tile.records.record_len();
        let r = &tile.records.raw_bytes()[j * len..(j + 1) * len];
        std::array::from_fn(|k| {
            let at = len - NORMAL_FIELDS_LEN + 4 * k;
            f32::from_le_bytes(r[at..at + 4].try_into().unwrap())
        })
    }

    #[test]
    fn input_normal_fields_are_replaced_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        // An input with a u16 field, its own (stale) NormalX / normalz, and
        // a u8 field after them.
        let height = ExtraBytesField::new("Height", ExtraBytesType::U16, "").unwrap();
        let stale_x = ExtraBytesField::new("NormalX", ExtraBytesType::F32, "").unwrap();
        let stale_z = ExtraBytesField::new("normalz", ExtraBytesType::F64, "").unwrap();
        let flag = ExtraBytesField::new("Flag", ExtraBytesType::U8, "").unwrap();
        let header = header_with(&[height, stale_x, stale_z, flag]);
        let mut e0 = vec![0x34, 0x12];
        e0.extend(9.0f32.to_le_bytes());
        e0.extend(9.0f64.to_le_bytes());
        e0.push(7);
        let mut e1 = vec![0x78, 0x56];
        e1.extend(8.0f32.to_le_bytes());
        e1.extend(8.0f64.to_le_bytes());
        e1.push(3);
        let up = Vector3::new(0.0, 0.0, 1.0);
        let east = Vector3::new(1.0, 0.0, 0.0);
        let tile = write_and_read(dir.path(), "a.las", &header, [&e0, &e1], [up, east]);
        assert_eq!(
            names(&tile),
            [
                "Height",
                "Flag",
                "NormalX",
                "NormalY",
                "NormalZ",
                "Curvature"
            ]
        );
        // Core 34 bytes + Height 2 + Flag 1 + ours 16.
        assert_eq!(tile.records.record_len(), 34 + 3 + 16);
        let r0 = &tile.records.raw_bytes()[..tile.records.record_len()];
        assert_eq!(&r0[34..37], &[0x34, 0x12, 7]);
        assert_eq!(normal_bytes(&tile, 0), [0.0, 0.0, 1.0, 0.25]);
        assert_eq!(normal_bytes(&tile, 1), [1.0, 0.0, 0.0, 0.5]);
        assert_eq!(tile.positions[1], Point3::new(4.0, 5.0, 6.0));

        // Re-processing our own output keeps the record length and names.
        let again = LasTileOutput {
            header: &tile.header,
            records: &tile.records,
            representatives: &[1],
            positions: &tile.positions[1..],
            normals: &[up],
            curvature: &[0.125],
        };
        let path = dir.path().join("b.las");
        write_las_tile(&path, &again, false).unwrap();
        let twice = read_las_tile(&path).unwrap();
        assert_eq!(names(&twice), names(&tile));
        assert_eq!(twice.records.record_len(), tile.records.record_len());
        assert_eq!(normal_bytes(&twice, 0), [0.0, 0.0, 1.0, 0.125]);
        let r = twice.records.raw_bytes();
        assert_eq!(&r[34..37], &[0x78, 0x56, 3]);
    }
}
