//! Batch processing of a directory of LAS/LAZ tiles: statistical outlier
//! removal, voxel downsampling, normals and curvature, one output per input.
//!
//! # Algorithm (per run)
//! 1. **Plan**: list the `.las`/`.laz` files of the input folder (sorted;
//!    recursive on request), refuse an output folder equal to the input
//!    folder, read every header's bounds into the tile index
//!    ([`tiles::read_tile_info`]) and mark outputs that are complete, newer
//!    than their input and made with the same parameters as skipped (unless
//!    `force`).
//! 2. **Run** up to `jobs` files at once (worker threads pulling the next file
//!    in order); each file's stages use the global rayon pool. Memory is
//!    bounded by the files in flight (plus their halos), never the folder;
//!    with `max_memory`, a file starts only when its estimate (from its
//!    header's point count) fits beside those in flight ([`memory`]).
//! 3. **Per file** ([`process_file`]). With a voxel grid, no outlier removal
//!    and LAS/LAZ output (the usual case), steps 1–3 are one streaming pass:
//!    the records are read 2^19 at a time straight into the voxel grid and
//!    only each voxel's first record is kept
//!    ([`crate::io::las::records::read_las_tile_voxelized`]),
//!    with the same result; [`StageBytes`] lists what each stage holds.
//!    1. read the tile's raw records and positions;
//!    2. optional statistical outlier removal ([`crate::filter`]), within the tile;
//!    3. optional voxel downsampling ([`crate::voxel`], grid anchored at the
//!       origin) keeping each voxel's representative record;
//!    4. halo: the points of neighbouring tiles (by header bounds) inside the
//!       tile's box grown by `halo` and rounded out to whole voxels, voxel
//!       downsampled the same way — they serve as neighbours only;
//!    5. normals and curvature of the tile's output points from neighbours in
//!       tile + halo (radius search with `max_nn`);
//!    6. atomic write (temporary file in the output folder, then rename):
//!       LAS/LAZ via [`crate::io::las::records`] with the normals as named
//!       extra bytes, or PLY.
//! 4. **Report**: a [`BatchSummary`] with one [`FileReport`] per file. A failed
//!    file (corrupt, unreadable) is reported with its reason and does not stop
//!    the others.
//!
//! # Exactness at tile edges
//! With `halo ≥ normal_radius`, every neighbour a point has in the uncut data
//! is present, so normals equal those of the uncut file **if the tiles are
//! cut on voxel boundaries** (multiples of `voxel_size`; otherwise a voxel
//! split by a tile edge yields one point per tile instead of one). Outlier
//! removal is per tile (its statistics are the tile's), so it is not
//! edge-exact.
//!
//! # Crash safety and resume
//! Outputs appear under their final name only when complete. A rerun skips
//! an input whose output exists, has a readable header, is at least as new
//! as the input and was made with the same parameters; `force` redoes it.
//! The parameters (voxel grid, normals, halo width, outliers, container,
//! pointpipe's version) are recorded beside each output in a hidden
//! `.NAME.pointpipe-params` file, removed before the output is replaced and
//! written after it, so an interrupted replacement is redone, never taken
//! for the old parameters' result. Temporary files (`.pointpipe-*.tmp`)
//! left by a killed run are removed when the next run starts: run one batch
//! per output folder at a time — except for the shards of one plan
//! ([`report::run_shard`]), which leave recent temporary files alone.
//!
//! # Many machines
//! [`shard::plan_shards`] splits a folder's tiles into N shards balanced by
//! header point count; [`report::run_shard`] processes one of them (halos
//! still from every tile, so the union of the shards is byte-identical to a
//! single run) and writes `OUT/_reports/shard-I.json`;
//! [`report::merge_reports`] merges those reports.

pub mod memory;
pub mod report;
pub mod shard;
pub mod tiles;

mod normals_stage;
mod run;

pub use run::{
    BatchConfig, BatchProgress, BatchSummary, FileReport, FileStatus, NoProgress, OutputFormat,
    StageBytes, StageSeconds, plan_inputs, process_file, run_batch,
};
