//! Raw point records of LAS/LAZ files: read a file's records byte for byte
//! (whole, or streamed straight into a voxel grid keeping each voxel's first
//! record, or only the positions a predicate keeps) and write records back
//! with new positions and normals ([`write_las_tile`]). This is the batch's
//! LAS path: attributes travel as the input's own bytes, never decoded.
//!
//! A *tile* here is one LAS/LAZ file, whatever area it covers.

use std::path::Path;

use nalgebra::Point3;

use super::{CHUNK_POINTS, las_err, open_checked};
use crate::error::{Error, Result};
use crate::voxel::{VoxelConfig, VoxelStream};

mod write;

pub use write::{LasTileOutput, write_las_tile};
pub(crate) use write::{quantise_into_records, with_normal_fields, write_las_records};

/// A LAS/LAZ tile in memory: header, raw point records and decoded positions.
#[derive(Debug, Clone)]
pub struct LasTile {
    /// The file's header.
    pub header: las::Header,
    /// All point records, raw (decompressed) bytes.
    pub records: las::PointData,
    /// Positions (scale and offset applied), one per record.
    pub positions: Vec<Point3<f64>>,
}

/// Reads every point of a LAS/LAZ file, after the header checks of
/// [`open_checked`] (the header keeps every EVLR).
///
/// # Errors
/// [`Error::Io`] / [`Error::Las`] for unreadable or corrupt files, including
/// files with fewer points than their header promises.
pub fn read_las_tile(path: &Path) -> Result<LasTile> {
    let (mut reader, header, _) = open_checked(path)?;
    let records = reader.read_all().map_err(las_err(path))?;
    if (records.len() as u64) < header.number_of_points() {
        return Err(Error::format(
            path,
            format!(
                "header promises {} points, file holds {}",
                header.number_of_points(),
                records.len()
            ),
        ));
    }
    let positions = decode_positions(&records);
    Ok(LasTile {
        header,
        records,
        positions,
    })
}

fn decode_positions(records: &las::PointData) -> Vec<Point3<f64>> {
    records
        .x()
        .zip(records.y())
        .zip(records.z())
        .map(|((x, y), z)| Point3::new(x, y, z))
        .collect()
}

/// Points per chunk when a tile is read straight into a voxel grid
/// ([`read_las_tile_voxelized`]), a multiple of
/// [`VoxelStream::CHUNK_MULTIPLE`]: 2^19 points keep the chunk's records
/// and positions at 30 MB for a 34-byte point format while giving the
/// parallel LAZ decoder ten LAZ chunks (of 50,000 points) at a time.
pub const VOXEL_READ_CHUNK: usize = 1 << 19;

/// A tile read straight into a voxel grid: the header, the raw record of
/// each voxel's first point (in voxel order, the records' own length) and
/// each voxel's output position. The tile's other records are never held.
#[derive(Debug, Clone)]
pub struct VoxelTile {
    /// The file's header.
    pub header: las::Header,
    /// Points read.
    pub points_in: u64,
    /// The representative (first) record of every voxel, raw bytes,
    /// `record_len` each, in voxel order (first occurrence).
    pub records: Vec<u8>,
    /// Bytes per record.
    pub record_len: usize,
    /// Output position of every voxel (CRS units): the centroid or the first
    /// point, as [`crate::voxel::voxel_downsample_with_representatives`]
    /// gives it for the whole tile, bit for bit.
    pub positions: Vec<Point3<f64>>,
    /// Estimated heap bytes held at the end of the read (before the sums
    /// become positions): records, voxel table and sums, one chunk.
    pub peak_bytes: u64,
}

/// The position of a raw record (X, Y, Z are its first 12 bytes in every
/// LAS point format), scaled and offset as the `las` crate does.
pub(crate) fn record_position(
    record: &[u8],
    transforms: &las::Vector<las::Transform>,
) -> Point3<f64> {
    let raw = |axis: usize| {
        let mut b = [0u8; 4];
        if let Some(s) = record.get(4 * axis..4 * axis + 4) {
            b.copy_from_slice(s);
        }
        i32::from_le_bytes(b)
    };
    Point3::new(
        transforms.x.direct(raw(0)),
        transforms.y.direct(raw(1)),
        transforms.z.direct(raw(2)),
    )
}

/// Reads a LAS/LAZ tile [`VOXEL_READ_CHUNK`] points at a time straight into
/// a voxel grid ([`VoxelStream`]), keeping only the first record of each
/// voxel: the result equals reading the whole tile ([`read_las_tile`]) and
/// downsampling its positions, while the memory held is the voxels' (sums,
/// table, one record each) plus one chunk, not the tile's records.
///
/// Returns `None` when the tile spans more than the stream's key window
/// (±2^20 voxels around its first point): read it whole instead.
///
/// # Errors
/// As [`read_las_tile`]; [`Error::InvalidParameter`] for a bad voxel size.
///
/// Complexity: O(n) time; memory O(voxels + chunk).
pub fn read_las_tile_voxelized(path: &Path, voxel: &VoxelConfig) -> Result<Option<VoxelTile>> {
    read_voxelized_in_chunks(path, voxel, VOXEL_READ_CHUNK)
}

/// [`read_las_tile_voxelized`] with `chunk` points per read (a multiple of
/// [`VoxelStream::CHUNK_MULTIPLE`]).
fn read_voxelized_in_chunks(
    path: &Path,
    voxel: &VoxelConfig,
    chunk_points: usize,
) -> Result<Option<VoxelTile>> {
    let (mut reader, header, _) = open_checked(path)?;
    let expected = usize::try_from(header.number_of_points()).unwrap_or(usize::MAX);
    let mut stream = VoxelStream::new(voxel, expected)?;
    let mut chunk = las::PointDataBuilder::new()
        .for_header(reader.header())
        .build();
    let record_len = usize::from(header.point_format().len());
    let mut positions = Vec::new();
    let mut records = Vec::new();
    let mut read = 0usize;
    loop {
        let n = reader
            .fill_points(chunk_points as u64, &mut chunk)
            .map_err(las_err(path))?;
        if n == 0 {
            break;
        }
        positions.clear();
        positions.extend(
            chunk
                .x()
                .zip(chunk.y())
                .zip(chunk.z())
                .map(|((x, y), z)| Point3::new(x, y, z)),
        );
        if !stream.push(&positions)? {
            return Ok(None);
        }
        let raw = chunk.raw_bytes();
        let len = chunk.record_len();
        for &r in stream.new_representatives() {
            let local = r - read;
            records.extend_from_slice(&raw[local * len..(local + 1) * len]);
        }
        read += positions.len();
    }
    if (read as u64) < header.number_of_points() {
        return Err(Error::format(
            path,
            format!(
                "header promises {} points, file holds {read}",
                header.number_of_points(),
            ),
        ));
    }
    let chunk_bytes = chunk_points.min(read) * (record_len + size_of::<Point3<f64>>());
    let peak_bytes = (records.len() + stream.heap_bytes() + chunk_bytes) as u64;
    drop((chunk, positions));
    records.shrink_to_fit();
    let transforms = *header.transforms();
    let positions = stream
        .finish(|v| record_position(&records[v * record_len..(v + 1) * record_len], &transforms));
    Ok(Some(VoxelTile {
        header,
        points_in: read as u64,
        records,
        record_len,
        positions,
        peak_bytes,
    }))
}

/// The positions of the points of a LAS/LAZ file for which `keep` is
/// true, read [`CHUNK_POINTS`] at a time so that only the kept points stay
/// in memory (a batch tile's halo from a neighbouring tile).
///
/// # Errors
/// As [`read_las_tile`].
///
/// Complexity: O(n) time; memory O(kept + chunk).
pub fn read_positions_where(
    path: &Path,
    keep: impl Fn(&Point3<f64>) -> bool,
) -> Result<Vec<Point3<f64>>> {
    let mut out = Vec::new();
    let (mut reader, _, _) = open_checked(path)?;
    let mut chunk = las::PointDataBuilder::new()
        .for_header(reader.header())
        .build();
    while reader
        .fill_points(CHUNK_POINTS, &mut chunk)
        .map_err(las_err(path))?
        > 0
    {
        out.extend(decode_positions(&chunk).into_iter().filter(|p| keep(p)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read in chunks of 4,096 or 2^19 points straight into the voxel grid,
    /// a tile gives the voxels, representative records and positions of the
    /// whole tile downsampled at once.
    #[test]
    fn voxelized_read_equals_whole_tile() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/las/pdal/autzen_trim.laz");
        if !path.exists() {
            log::warn!("skipped: {} not found", path.display());
            return;
        }
        let whole = read_las_tile(&path).unwrap();
        let len = whole.records.record_len();
        for size in [0.1, 2.0] {
            let voxel = VoxelConfig::new(size);
            let (down, reps) = crate::voxel::voxel_downsample_with_representatives(
                &crate::PointCloud::from_points(whole.positions.clone()),
                &voxel,
            )
            .unwrap();
            for chunk in [
                VoxelStream::CHUNK_MULTIPLE,
                3 * VoxelStream::CHUNK_MULTIPLE,
                VOXEL_READ_CHUNK,
            ] {
                let tile = read_voxelized_in_chunks(&path, &voxel, chunk)
                    .unwrap()
                    .unwrap();
                assert_eq!(tile.points_in, 110_000);
                assert_eq!(tile.positions, down.points, "{size} {chunk}");
                let expected: Vec<u8> = reps
                    .iter()
                    .flat_map(|&r| whole.records.raw_bytes()[r * len..(r + 1) * len].to_vec())
                    .collect();
                assert_eq!(tile.records, expected, "{size} {chunk}");
            }
        }
    }
}
