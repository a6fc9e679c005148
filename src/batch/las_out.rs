//! LAS/LAZ output of a batch tile: the input's header and point records with
//! new positions and four appended extra-bytes fields (normals, curvature).
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

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use super::extra_bytes::{
    ExtraBytesField, ExtraBytesType, NORMAL_FIELDS_LEN, extra_bytes_vlr, is_extra_bytes_vlr,
    normal_fields, read_extra_bytes_fields,
};
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic_owned;

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
    let las_err = |source: las::Error| Error::Las {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let header = output_header(output.header, path, compressed)?;
    let bytes = build_records(path, output, &header)?;
    let data = las::PointDataBuilder::new()
        .for_header(&header)
        .build_from_bytes(bytes)
        .map_err(las_err)?;
    write_atomic_owned(path, |file: File| {
        let mut writer =
            las::Writer::new(BufWriter::with_capacity(1 << 20, file), header).map_err(las_err)?;
        writer.write_points(&data).map_err(las_err)?;
        let buffered = writer.into_inner().map_err(las_err)?;
        buffered
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))
    })
}

/// VLR user ids that describe the input's storage layout, not its content.
fn is_layout_vlr(vlr: &las::Vlr) -> bool {
    is_extra_bytes_vlr(vlr)
        || vlr.user_id.eq_ignore_ascii_case("laszip encoded")
        || vlr.user_id.eq_ignore_ascii_case("copc")
}

/// The output header: the input's, with the layout VLRs replaced and 16
/// extra bytes per point added.
fn output_header(input: &las::Header, path: &Path, compressed: bool) -> Result<las::Header> {
    let input_extra = usize::from(input.point_format().extra_bytes);
    let mut fields = input_fields(input, path, input_extra);
    fields.extend(normal_fields());
    let mut builder = las::Builder::from(input.clone());
    builder.vlrs.retain(|v| !is_layout_vlr(v));
    builder.evlrs.retain(|v| !is_layout_vlr(v));
    builder.vlrs.push(extra_bytes_vlr(&fields));
    builder.point_format.extra_bytes = u16::try_from(input_extra + NORMAL_FIELDS_LEN)
        .map_err(|_| Error::format(path, "too many extra bytes per point"))?;
    builder.point_format.is_compressed = compressed;
    builder.generating_software = "pointpipe batch".to_string();
    builder.into_header().map_err(|source| Error::Las {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
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

/// The output records: representative bytes, new X/Y/Z, appended normals.
fn build_records(path: &Path, output: &LasTileOutput<'_>, header: &las::Header) -> Result<Vec<u8>> {
    let in_len = output.records.record_len();
    let out_len = usize::from(header.point_format().len());
    if out_len != in_len + NORMAL_FIELDS_LEN {
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
            record[..in_len].copy_from_slice(source);
            let p = output.positions[j];
            for (axis, (value, transform)) in [
                (p.x, transforms.x),
                (p.y, transforms.y),
                (p.z, transforms.z),
            ]
            .into_iter()
            .enumerate()
            {
                let quantised = transform.inverse(value).map_err(|e| {
                    Error::format(
                        path,
                        format!("position {value} does not fit the LAS scale/offset: {e}"),
                    )
                })?;
                record[4 * axis..4 * axis + 4].copy_from_slice(&quantised.to_le_bytes());
            }
            let n = output.normals[j];
            let extra = [
                n.x as f32,
                n.y as f32,
                n.z as f32,
                output.curvature[j] as f32,
            ];
            for (k, v) in extra.iter().enumerate() {
                let at = in_len + 4 * k;
                record[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            Ok(())
        })?;
    Ok(bytes)
}
