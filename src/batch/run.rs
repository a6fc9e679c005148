//! The batch driver: planning, the job loop, per-file processing, summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use nalgebra::{Point3, Vector3};
use serde::Serialize;

use super::memory::{Admission, configure_allocator, estimated_file_bytes, release_freed_memory};
use super::normals_stage::{
    estimate_tile_normals, estimate_tile_normals_packed, packed_normals_peak_bytes,
};
use super::tiles::{TileInfo, halo_neighbors, read_tile_info};
use crate::PointCloud;
use crate::error::{Error, Result};
use crate::filter::{OutlierConfig, statistical_outlier_mask};
use crate::io::las::records::{
    LasTile, LasTileOutput, VoxelTile, quantise_into_records, read_las_tile,
    read_las_tile_voxelized, read_positions_where, write_las_records, write_las_tile,
};
use crate::normals::{NeighborSearch, NormalConfig, aerial_viewpoint};
use crate::voxel::{VoxelConfig, VoxelGrid, voxel_downsample_with_representatives};

/// Output container of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The input's own container (`.las` stays LAS, `.laz` stays LAZ). Default.
    #[default]
    Same,
    /// Uncompressed LAS.
    Las,
    /// LAZ (LASzip compressed).
    Laz,
    /// Binary PLY with normals and curvature (via [`crate::io::write`]); LAS
    /// attributes other than intensity and GPS time are not kept.
    Ply,
}

/// Parameters of a batch run. Validated by [`BatchConfig::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    /// Voxel downsampling; `None` keeps every point. Default: 0.1 m, centroid.
    pub voxel: Option<VoxelConfig>,
    /// Normal estimation: a radius search (metres, CRS units; it sets the
    /// default halo width), optionally capped at `max_nn`, and the
    /// viewpoint the normals face. Default: [`NormalConfig::aerial`]`(0.5,
    /// 30)` (radius 0.5 m, `max_nn` 30, normals facing up).
    pub normals: NormalConfig,
    /// Halo width in metres (CRS units): points of neighbouring tiles within
    /// this distance of a tile's bounds are used as neighbours for its
    /// normals. `None` means "equal to the normal radius" (exact normals at
    /// edges); `Some(0.0)` disables the halo. Default `None`.
    pub halo: Option<f64>,
    /// Statistical outlier removal before downsampling; `None` = off. Default off.
    pub outliers: Option<OutlierConfig>,
    /// Output container. Default [`OutputFormat::Same`].
    pub format: OutputFormat,
    /// Files processed at once, ≥ 1. Default: the number of cores.
    pub jobs: usize,
    /// Also process files in sub-folders (mirrored in the output). Default false.
    pub recursive: bool,
    /// Redo outputs that are already complete. Default false.
    pub force: bool,
    /// Memory limit in bytes for the files in flight, `None` = no limit
    /// (then `jobs` alone bounds them). A file starts only when the
    /// estimates of the files in flight plus its own
    /// ([`super::memory::estimated_file_bytes`], from its header's point
    /// count) fit; a file whose estimate alone exceeds the limit runs alone,
    /// with a warning. ≥ 1 when set. Default `None`.
    pub max_memory: Option<u64>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            voxel: Some(VoxelConfig::new(0.1)),
            normals: NormalConfig::aerial(0.5, 30),
            halo: None,
            outliers: None,
            format: OutputFormat::Same,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            recursive: false,
            force: false,
            max_memory: None,
        }
    }
}

impl BatchConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad field; a kNN normal
    /// search is refused (a tile's halo needs a radius).
    pub fn validate(&self) -> Result<()> {
        if let Some(v) = &self.voxel {
            v.validate()?;
        }
        if let NeighborSearch::Knn { k } = self.normals.search {
            return Err(Error::invalid(
                "normals.search",
                format!("knn {k}"),
                "must be a radius search (the halo width follows from the radius)",
            ));
        }
        self.normals.validate()?;
        if let Some(h) = self.halo
            && !(h.is_finite() && h >= 0.0)
        {
            return Err(Error::invalid(
                "halo",
                h,
                "must be finite and >= 0 (metres)",
            ));
        }
        if let Some(o) = &self.outliers {
            o.validate()?;
        }
        if self.jobs == 0 {
            return Err(Error::invalid("jobs", 0, "must be at least 1"));
        }
        if self.max_memory == Some(0) {
            return Err(Error::invalid("max_memory", 0, "must be at least 1 byte"));
        }
        Ok(())
    }

    /// The halo width in metres actually used.
    pub fn halo_width(&self) -> f64 {
        self.halo.unwrap_or_else(|| self.normal_radius())
    }

    /// The radius of the normal search in metres (infinite for a kNN
    /// search, which [`BatchConfig::validate`] refuses).
    fn normal_radius(&self) -> f64 {
        self.normals.search.own_set_bounds().0
    }

    /// True when files take the streaming path of [`process_file`] (voxel
    /// grid on, no outlier removal, LAS/LAZ output), which holds far less
    /// memory per point (see [`StageBytes`]).
    pub fn streams(&self) -> bool {
        self.voxel.is_some() && self.outliers.is_none() && self.format != OutputFormat::Ply
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Processed and written.
    Done,
    /// Output already complete and newer than the input.
    Skipped,
    /// Could not be processed; see [`FileReport::error`].
    Failed,
}

/// The outcome of one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The input file.
    pub input: PathBuf,
    /// The output file (written only when `status` is `Done`).
    pub output: PathBuf,
    /// Done, skipped or failed.
    pub status: FileStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Points read from the tile (header count for skipped files).
    pub points_in: u64,
    /// Points removed as statistical outliers.
    pub outliers_removed: u64,
    /// Halo points (after downsampling) borrowed from neighbouring tiles.
    pub halo_points: u64,
    /// Points written.
    pub points_out: u64,
    /// Output points without a normal (too few neighbours).
    pub without_normal: u64,
    /// Wall time of this file, seconds.
    pub seconds: f64,
    /// Wall time of each stage of this file, seconds (all zero for skipped
    /// and failed files).
    pub stage_seconds: StageSeconds,
    /// Estimated heap bytes held at the peak of each stage of this file
    /// (from the sizes of the buffers alive then; all zero for skipped and
    /// failed files). See [`StageBytes`].
    pub stage_bytes: StageBytes,
    /// Problems that did not stop this file (e.g. an unreadable halo
    /// neighbour, whose points are then missing from the halo).
    pub warnings: Vec<String>,
}

/// Wall time of each stage of one file, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageSeconds {
    /// Reading and decoding the tile (LAS/LAZ).
    pub read: f64,
    /// Statistical outlier removal (0 when off).
    pub outliers: f64,
    /// Voxel downsampling (0 when off).
    pub voxel: f64,
    /// Reading the halo points of neighbouring tiles (0 without a halo).
    pub halo: f64,
    /// k-d tree and normal estimation.
    pub normals: f64,
    /// Building the output records, encoding and writing the file.
    pub write: f64,
}

/// Estimated heap bytes held at the peak of each stage of one file: the
/// lengths of the buffers alive at that moment (records, positions, sums,
/// hash table, k-d tree, normals, one read or write slab), not a
/// measurement of the process (allocator overhead, thread stacks, the
/// binary and the halo's transient read buffers come on top). 0 for a
/// stage that did not run.
///
/// On the streaming path (voxel grid on, no outlier removal, LAS/LAZ
/// output) the stages hold, per output point `m` (voxel) and input point
/// `n`:
/// - `read` (read + voxel grid): the first record of every voxel (the
///   format's record length, e.g. 34 bytes), 28 bytes of sums and 16–32
///   bytes of hash table per voxel, and one chunk of 2^19 input records
///   with their positions;
/// - `normals`: the records, and 52 bytes per tile + halo point at the k-d
///   tree build (positions 24, tree 28) plus 60 bytes per tree node (about
///   one per 8–16 points), less during the search (tree, results 16);
/// - `write`: the records, 16 bytes of normals per point and one slab of
///   500,000 output records.
///
/// Otherwise (outlier removal, no voxel grid, PLY output) the whole tile is
/// read as before and the figures are the tile's records and positions plus
/// each stage's own buffers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StageBytes {
    /// Reading the tile (and, on the streaming path, the voxel grid).
    pub read: u64,
    /// The voxel grid when it runs after reading (0 on the streaming path).
    pub voxel: u64,
    /// k-d tree and normal estimation.
    pub normals: u64,
    /// Building and writing the output records.
    pub write: u64,
}

impl StageBytes {
    /// The largest of the stages' figures: the file's estimated peak.
    pub fn peak(&self) -> u64 {
        self.read.max(self.voxel).max(self.normals).max(self.write)
    }
}

/// The outcome of a batch run: the counts and one report per file, a
/// [`FileReport`] (or, in a shard's report, a
/// [`TileReport`](super::report::TileReport)).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct BatchSummary<F = FileReport> {
    /// Files processed and written.
    pub done: usize,
    /// Files skipped as up to date.
    pub skipped: usize,
    /// Files that failed.
    pub failed: usize,
    /// Points read, over processed files.
    pub points_in: u64,
    /// Points written, over processed files.
    pub points_out: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// One report per input file, in input order.
    pub files: Vec<F>,
}

/// Progress callbacks of [`run_batch`] (called from worker threads).
pub trait BatchProgress: Sync {
    /// The run starts: `files` inputs holding `points` points (from headers).
    fn started(&self, _files: usize, _points: u64) {}
    /// A file is finished (done, skipped or failed).
    fn file_finished(&self, _report: &FileReport, _header_points: u64) {}
}

/// A [`BatchProgress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl BatchProgress for NoProgress {}

/// The LAS/LAZ inputs of `input_dir` (sorted), each with its output path
/// under `output_dir` (same relative path; extension from `format`).
///
/// # Errors
/// [`Error::Io`] when a folder cannot be listed.
pub fn plan_inputs(
    input_dir: &Path,
    output_dir: &Path,
    format: OutputFormat,
    recursive: bool,
) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut inputs = Vec::new();
    collect_inputs(input_dir, output_dir, recursive, &mut inputs)?;
    inputs.sort();
    Ok(inputs
        .into_iter()
        .map(|input| {
            let rel = input
                .strip_prefix(input_dir)
                .unwrap_or(&input)
                .to_path_buf();
            let output = output_dir
                .join(rel)
                .with_extension(output_extension(&input, format));
            (input, output)
        })
        .collect())
}

fn input_extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .filter(|e| e == "las" || e == "laz")
}

fn output_extension(input: &Path, format: OutputFormat) -> String {
    match format {
        OutputFormat::Same => input_extension(input).unwrap_or_else(|| "las".into()),
        OutputFormat::Las => "las".into(),
        OutputFormat::Laz => "laz".into(),
        OutputFormat::Ply => "ply".into(),
    }
}

fn collect_inputs(
    dir: &Path,
    output_dir: &Path,
    recursive: bool,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if file_type.is_dir() {
            // `_reports` holds the shard reports of a run (super::report).
            if recursive && !same_dir(&path, output_dir) && entry.file_name() != "_reports" {
                collect_inputs(&path, output_dir, recursive, out)?;
            }
        } else if input_extension(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Removes temporary files (`.pointpipe-*.tmp`) a killed run left in `dir`
/// (only those last modified more than `older_than` ago, when given).
fn remove_stale_temporaries(dir: &Path, older_than: Option<std::time::Duration>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old_enough = older_than.is_none_or(|age| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed > age)
        });
        if name.starts_with(".pointpipe-") && name.ends_with(".tmp") && old_enough {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => log::info!("removed stale temporary {}", entry.path().display()),
                Err(e) => log::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// True when `output` exists, is at least as new as `input`, (for LAS/LAZ)
/// has a readable header, and was made with the same parameters: its
/// fingerprint file ([`fingerprint_path`]) holds `fingerprint`.
fn is_up_to_date(input: &Path, output: &Path, fingerprint: &str) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (Some(t_in), Some(t_out)) = (modified(input), modified(output)) else {
        return false;
    };
    let same_parameters =
        std::fs::read_to_string(fingerprint_path(output)).is_ok_and(|stored| stored == fingerprint);
    t_out >= t_in
        && same_parameters
        && (input_extension(output).is_none() || read_tile_info(output).is_ok())
}

/// The file beside `output` that records the parameters it was made with:
/// `.NAME.pointpipe-params` in the same folder (hidden).
fn fingerprint_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.pointpipe-params"))
}

/// Every parameter that shapes an output (voxel grid, normals, halo width,
/// outlier removal, container) and pointpipe's version, as one text: an
/// output whose recorded fingerprint differs is redone, not skipped.
pub(crate) fn parameter_fingerprint(config: &BatchConfig) -> String {
    format!(
        "pointpipe {}\nvoxel {:?}\nnormals {}\nhalo {:?}\noutliers {:?}\nformat {:?}\n",
        env!("CARGO_PKG_VERSION"),
        config.voxel,
        normals_fingerprint(&config.normals),
        config.halo_width(),
        config.outliers,
        config.format
    )
}

/// The normals line of [`parameter_fingerprint`], worded as before the batch
/// took a [`NormalConfig`] where it can be, so older outputs stay up to date.
fn normals_fingerprint(normals: &NormalConfig) -> String {
    match normals.search {
        NeighborSearch::Radius {
            radius,
            max_nn: Some(max_nn),
        } if normals.min_neighbors == 3 && normals.viewpoint == Some(aerial_viewpoint()) => {
            format!("NormalParams {{ radius: {radius:?}, max_nn: {max_nn:?} }}")
        }
        _ => format!("{normals:?}"),
    }
}

/// Runs a batch: see the [module docs](super) for the algorithm.
///
/// Process-wide side effect (glibc only): the allocator's mmap threshold is
/// fixed at 4 MiB on the first call, and freed memory is returned to the
/// system after each file (`malloc_trim`), so that files in a row peak as
/// one file does ([`super::memory`]).
///
/// # Returns
/// The summary; failed files are in it, they are not an `Err`.
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad config, [`Error::OutputIsInput`]
/// when `output_dir` is `input_dir`, [`Error::Io`] when the input folder
/// cannot be listed or the output folder cannot be created.
///
/// # Example
/// ```
/// use pointpipe::batch::{run_batch, BatchConfig, NoProgress};
/// let input = tempfile::tempdir().unwrap();
/// let output = tempfile::tempdir().unwrap();
/// let summary = run_batch(input.path(), output.path(), &BatchConfig::default(), &NoProgress).unwrap();
/// assert_eq!((summary.done, summary.failed), (0, 0));
/// // The output folder may not be the input folder.
/// assert!(run_batch(input.path(), input.path(), &BatchConfig::default(), &NoProgress).is_err());
/// ```
pub fn run_batch(
    input_dir: &Path,
    output_dir: &Path,
    config: &BatchConfig,
    progress: &dyn BatchProgress,
) -> Result<BatchSummary> {
    let all = |plan: &[(PathBuf, PathBuf)], _: &[Result<TileInfo>]| Ok((0..plan.len()).collect());
    run_selected(input_dir, output_dir, config, progress, &all, None)
}

/// Chooses which planned inputs a run processes, from the plan (input and
/// output paths, sorted) and every input's header (or why it is unreadable);
/// returns indices into the plan, in processing order.
pub(crate) type SelectTiles<'a> =
    dyn Fn(&[(PathBuf, PathBuf)], &[Result<TileInfo>]) -> Result<Vec<usize>> + 'a;

/// [`run_batch`] over the inputs `select` picks (see [`super::shard`]); the
/// tile index for halos always holds every readable input. Stale temporary
/// files are removed only when older than `temporaries_older_than` (`None`:
/// all of them), since other shards may be writing into the same folders.
pub(crate) fn run_selected(
    input_dir: &Path,
    output_dir: &Path,
    config: &BatchConfig,
    progress: &dyn BatchProgress,
    select: &SelectTiles<'_>,
    temporaries_older_than: Option<std::time::Duration>,
) -> Result<BatchSummary> {
    let start = Instant::now();
    config.validate()?;
    configure_allocator();
    if same_dir(input_dir, output_dir) {
        return Err(Error::OutputIsInput {
            path: output_dir.to_path_buf(),
        });
    }
    let all_inputs = plan_inputs(input_dir, output_dir, config.format, config.recursive)?;
    let all_infos: Vec<Result<TileInfo>> = all_inputs
        .iter()
        .map(|(input, _)| read_tile_info(input))
        .collect();
    let index: Vec<TileInfo> = all_infos
        .iter()
        .filter_map(|i| i.as_ref().ok().cloned())
        .collect();
    let chosen = select(&all_inputs, &all_infos)?;
    // Each chosen input once (a repeated or unknown index is dropped).
    let mut all_infos: Vec<Option<Result<TileInfo>>> = all_infos.into_iter().map(Some).collect();
    let (plan, infos): (Vec<(PathBuf, PathBuf)>, Vec<Result<TileInfo>>) = chosen
        .iter()
        .filter_map(|&i| Some((all_inputs.get(i)?.clone(), all_infos.get_mut(i)?.take()?)))
        .unzip();
    let header_points = |i: usize| infos[i].as_ref().map_or(0, |t| t.number_of_points);
    progress.started(plan.len(), (0..plan.len()).map(header_points).sum());

    let fingerprint = parameter_fingerprint(config);
    let admission = Admission::new(config.max_memory);
    let estimate = |i: usize| estimated_file_bytes(header_points(i), config.streams());
    let reports: Mutex<Vec<Option<FileReport>>> = Mutex::new(vec![None; plan.len()]);
    let mut cleaned = std::collections::BTreeSet::new();
    for (_, output) in &plan {
        if let Some(parent) = output.parent()
            && cleaned.insert(parent.to_path_buf())
        {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            remove_stale_temporaries(parent, temporaries_older_than);
        }
    }
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.min(plan.len().max(1)) {
            scope.spawn(|| {
                while let Some((i, alone)) = admission.start_next(plan.len(), estimate) {
                    let (Some((input, output)), Some(info)) = (plan.get(i), infos.get(i)) else {
                        admission.finish(estimate(i));
                        break;
                    };
                    let report = match info {
                        Err(e) => failed(input, output, e, 0, Instant::now()),
                        Ok(_) if !config.force && is_up_to_date(input, output, &fingerprint) => {
                            FileReport {
                                status: FileStatus::Skipped,
                                points_in: header_points(i),
                                ..empty_report(input, output)
                            }
                        }
                        Ok(info) => {
                            let tile_index = index.iter().position(|t| t.path == info.path);
                            let file_start = Instant::now();
                            // The old fingerprint goes first: an output
                            // replaced and then interrupted before its new
                            // fingerprint is written is redone next time,
                            // never taken for the old parameters' result.
                            let stale = fingerprint_path(output);
                            if stale.exists()
                                && let Err(e) = std::fs::remove_file(&stale)
                            {
                                log::warn!("cannot remove {}: {e}", stale.display());
                            }
                            let result = process_file(input, output, &index, tile_index, config)
                                .and_then(|r| {
                                    let path = fingerprint_path(output);
                                    crate::io::atomic::write_atomic(&path, |w| {
                                        w.write_all(fingerprint.as_bytes())
                                            .map_err(|e| Error::io(&path, e))
                                    })?;
                                    Ok(r)
                                });
                            match result {
                                Ok(r) => r,
                                Err(e) => failed(input, output, &e, header_points(i), file_start),
                            }
                        }
                    };
                    admission.finish(estimate(i));
                    release_freed_memory();
                    let mut report = report;
                    if alone && report.status == FileStatus::Done {
                        let warning = format!(
                            "estimated {} bytes exceed the memory limit of {} bytes: processed \
                             alone",
                            estimate(i),
                            config.max_memory.unwrap_or_default()
                        );
                        log::warn!("{}: {warning}", input.display());
                        report.warnings.push(warning);
                    }
                    progress.file_finished(&report, header_points(i));
                    if let Ok(mut all) = reports.lock() {
                        all[i] = Some(report);
                    }
                }
            });
        }
    });
    let files: Vec<FileReport> = reports
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    let count = |s: FileStatus| files.iter().filter(|f| f.status == s).count();
    let done: Vec<&FileReport> = files
        .iter()
        .filter(|f| f.status == FileStatus::Done)
        .collect();
    Ok(BatchSummary {
        done: done.len(),
        skipped: count(FileStatus::Skipped),
        failed: count(FileStatus::Failed),
        points_in: done.iter().map(|f| f.points_in).sum(),
        points_out: done.iter().map(|f| f.points_out).sum(),
        seconds: start.elapsed().as_secs_f64(),
        files,
    })
}

fn empty_report(input: &Path, output: &Path) -> FileReport {
    FileReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        status: FileStatus::Done,
        error: None,
        points_in: 0,
        outliers_removed: 0,
        halo_points: 0,
        points_out: 0,
        without_normal: 0,
        seconds: 0.0,
        stage_seconds: StageSeconds::default(),
        stage_bytes: StageBytes::default(),
        warnings: Vec::new(),
    }
}

fn failed(
    input: &Path,
    output: &Path,
    error: &Error,
    points_in: u64,
    start: Instant,
) -> FileReport {
    FileReport {
        status: FileStatus::Failed,
        error: Some(error.to_string()),
        points_in,
        seconds: start.elapsed().as_secs_f64(),
        ..empty_report(input, output)
    }
}

/// Processes one tile (steps 3.1–3.6 of the [module docs](super)) and writes
/// `output` atomically.
///
/// # Parameters
/// - `tiles`: the tile index of the run (for the halo); `tile_index` is this
///   tile's position in it (`None`: no halo).
///
/// # Errors
/// Any read, processing or write error of this file.
pub fn process_file(
    input: &Path,
    output: &Path,
    tiles: &[TileInfo],
    tile_index: Option<usize>,
    config: &BatchConfig,
) -> Result<FileReport> {
    if let Some(voxel) = &config.voxel
        && config.streams()
        && let Some(report) =
            process_file_streaming(input, output, tiles, tile_index, config, voxel)?
    {
        return Ok(report);
    }
    process_file_whole(input, output, tiles, tile_index, config)
}

/// The whole-tile path of [`process_file`]: every record and position of
/// the tile in memory, then the stages one after the other.
fn process_file_whole(
    input: &Path,
    output: &Path,
    tiles: &[TileInfo],
    tile_index: Option<usize>,
    config: &BatchConfig,
) -> Result<FileReport> {
    let mut clock = StageClock::start();
    let mut bytes = StageBytes::default();
    let mut tile = read_las_tile(input)?;
    let points_in = tile.positions.len() as u64;
    let tile_bytes = (tile.records.raw_bytes().len() + tile.positions.len() * POINT_BYTES) as u64;
    bytes.read = tile_bytes;
    clock.lap(|s| &mut s.read);

    // The tile's positions move through the stages (no copy of the cloud);
    // the records stay for the output's attributes.
    let (kept_positions, kept) = remove_outliers(
        std::mem::take(&mut tile.positions),
        config.outliers.as_ref(),
    )?;
    let points_kept = kept_positions.len() as u64;
    clock.lap(|s| &mut s.outliers);
    let (positions, representatives) =
        downsample(kept_positions, kept.as_deref(), config.voxel.as_ref())?;
    let m = positions.len() as u64;
    if config.voxel.is_some() {
        // The tile, the voxel table and sums (about 64 bytes per voxel) and
        // the output positions and representatives.
        bytes.voxel = tile_bytes + m * (64 + POINT_BYTES as u64 + 8);
    }
    clock.lap(|s| &mut s.voxel);
    let mut warnings = Vec::new();
    let halo = match (tile_index, config.halo_width()) {
        (Some(i), h) if h > 0.0 => load_halo(tiles, i, h, config.voxel.as_ref(), &mut warnings)?,
        _ => Vec::new(),
    };
    clock.lap(|s| &mut s.halo);
    let (normals, curvature) = estimate_tile_normals(&positions, &halo, &config.normals)?;
    // Records, positions and representatives, plus the cloud copy (24), the
    // tree (28), the tree order (8), the estimates (40) and the normals and
    // curvature (32) per tile + halo point.
    let records_bytes = tile.records.raw_bytes().len() as u64;
    bytes.normals = records_bytes
        + m * (POINT_BYTES as u64 + 8)
        + (m + halo.len() as u64) * (24 + 28 + 8 + 40 + 32);
    let without_normal = normals.iter().filter(|n| **n == Vector3::zeros()).count() as u64;
    clock.lap(|s| &mut s.normals);
    if without_normal * 2 > positions.len() as u64 {
        warnings.push(few_normals_warning(
            input,
            &tile.header,
            without_normal,
            positions.len(),
            config,
        ));
    }

    write_output(
        input,
        output,
        config.format,
        &tile,
        &representatives,
        &positions,
        &normals,
        &curvature,
    )?;
    // Records, positions, normals and curvature, and the output records.
    bytes.write = records_bytes
        + m * (POINT_BYTES as u64 + 8 + 32)
        + m * u64::from(tile.header.point_format().len() + 16);
    clock.lap(|s| &mut s.write);
    Ok(clock.finish(
        input,
        bytes,
        FileReport {
            points_in,
            outliers_removed: points_in - points_kept,
            halo_points: halo.len() as u64,
            points_out: positions.len() as u64,
            without_normal,
            warnings,
            ..empty_report(input, output)
        },
    ))
}

/// The wall clock of one file: the time since it started and of each stage.
struct StageClock {
    start: Instant,
    lap: Instant,
    stages: StageSeconds,
}

impl StageClock {
    fn start() -> Self {
        let now = Instant::now();
        StageClock {
            start: now,
            lap: now,
            stages: StageSeconds::default(),
        }
    }

    /// Ends the current stage: the time since the previous lap goes to the
    /// field `stage` picks.
    fn lap(&mut self, stage: fn(&mut StageSeconds) -> &mut f64) {
        *stage(&mut self.stages) = self.lap.elapsed().as_secs_f64();
        self.lap = Instant::now();
    }

    /// `report` with the file's wall time, its stages' and `bytes`.
    fn finish(self, input: &Path, bytes: StageBytes, report: FileReport) -> FileReport {
        log::debug!(
            "{}: stage seconds {:?}, bytes {bytes:?}",
            input.display(),
            self.stages
        );
        FileReport {
            seconds: self.start.elapsed().as_secs_f64(),
            stage_seconds: self.stages,
            stage_bytes: bytes,
            ..report
        }
    }
}

/// Bytes of one `f64` position.
const POINT_BYTES: usize = size_of::<Point3<f64>>();

/// The streaming path of [`process_file`] (voxel grid on, no outlier
/// removal, LAS/LAZ output): the tile is read a chunk at a time straight
/// into the voxel grid keeping each voxel's first record
/// ([`read_las_tile_voxelized`]); the output positions are quantised into
/// those records at once; the k-d tree is built on positions + halo and the
/// positions freed; normals are kept as `f32` (the output's precision); the
/// output is written slab by slab ([`write_las_records`]). Same bytes as the
/// whole-tile path; see [`StageBytes`] for what each stage holds.
///
/// `Ok(None)`: the tile spans more than the voxel stream's key window; the
/// caller reads it whole.
fn process_file_streaming(
    input: &Path,
    output: &Path,
    tiles: &[TileInfo],
    tile_index: Option<usize>,
    config: &BatchConfig,
    voxel: &VoxelConfig,
) -> Result<Option<FileReport>> {
    let mut clock = StageClock::start();
    let mut bytes = StageBytes::default();
    let Some(tile) = read_las_tile_voxelized(input, voxel)? else {
        log::info!(
            "{}: the tile spans more than the streaming voxel grid's window; reading it whole",
            input.display()
        );
        return Ok(None);
    };
    bytes.read = tile.peak_bytes;
    clock.lap(|s| &mut s.read);
    let VoxelTile {
        header,
        points_in,
        mut records,
        record_len,
        mut positions,
        ..
    } = tile;
    let m = positions.len();
    quantise_into_records(
        output,
        &mut records,
        record_len,
        &positions,
        header.transforms(),
    )?;
    let mut warnings = Vec::new();
    let halo = match (tile_index, config.halo_width()) {
        (Some(i), h) if h > 0.0 => load_halo(tiles, i, h, config.voxel.as_ref(), &mut warnings)?,
        _ => Vec::new(),
    };
    let halo_points = halo.len() as u64;
    positions.extend(halo);
    clock.lap(|s| &mut s.halo);
    let points = positions.len() as u64;
    let normals = estimate_tile_normals_packed(positions, m, &config.normals)?;
    bytes.normals = records.len() as u64 + packed_normals_peak_bytes(points);
    let without_normal = normals.iter().filter(|n| n[..3] == [0.0; 3]).count() as u64;
    clock.lap(|s| &mut s.normals);
    if without_normal * 2 > m as u64 {
        warnings.push(few_normals_warning(
            input,
            &header,
            without_normal,
            m,
            config,
        ));
    }
    let compressed = match config.format {
        OutputFormat::Same => input_extension(input).as_deref() == Some("laz"),
        OutputFormat::Las | OutputFormat::Ply => false,
        OutputFormat::Laz => true,
    };
    write_las_records(output, &header, &records, &normals, compressed)?;
    bytes.write = (records.len() + normals.len() * 16) as u64
        + (m.min(crate::io::las::WRITE_CHUNK) as u64) * u64::from(header.point_format().len() + 16);
    clock.lap(|s| &mut s.write);
    Ok(Some(clock.finish(
        input,
        bytes,
        FileReport {
            points_in,
            halo_points,
            points_out: m as u64,
            without_normal,
            warnings,
            ..empty_report(input, output)
        },
    )))
}

/// The warning for a tile where most output points got no normal (issue 26
/// item 8: the defaults are metres; in a tile in feet or degrees the radius
/// may hold no neighbours at all), also logged.
fn few_normals_warning(
    input: &Path,
    header: &las::Header,
    without_normal: u64,
    outputs: usize,
    config: &BatchConfig,
) -> String {
    let unit = crate::io::las::crs_linear_unit(header)
        .map_or_else(|| "m, assumed".to_string(), |u| u.symbol());
    let warning = format!(
        "{without_normal} of {outputs} output points got no normal (fewer than {} neighbours \
         within the normal radius {} {unit}): the radius is probably too small for the point \
         spacing",
        config.normals.min_neighbors,
        config.normal_radius()
    );
    log::warn!("{}: {warning}", input.display());
    warning
}

/// Points and, when some were removed, their indices in the tile.
type KeptPoints = (Vec<Point3<f64>>, Option<Vec<usize>>);

/// The points kept by statistical outlier removal and their indices in the
/// tile (`None`: all kept, without it).
fn remove_outliers(
    positions: Vec<Point3<f64>>,
    config: Option<&OutlierConfig>,
) -> Result<KeptPoints> {
    match config {
        None => Ok((positions, None)),
        Some(c) => {
            let mask = statistical_outlier_mask(&positions, c)?;
            let kept: Vec<usize> = (0..positions.len()).filter(|&i| mask[i]).collect();
            Ok((kept.iter().map(|&i| positions[i]).collect(), Some(kept)))
        }
    }
}

/// Output positions and, for each, the index of its representative record
/// (`kept[i]` is the tile index of `positions[i]`; `None`: the identity).
fn downsample(
    positions: Vec<Point3<f64>>,
    kept: Option<&[usize]>,
    voxel: Option<&VoxelConfig>,
) -> Result<(Vec<Point3<f64>>, Vec<usize>)> {
    let tile_index = |i: usize| kept.map_or(i, |k| k[i]);
    match voxel {
        None => {
            let representatives = (0..positions.len()).map(tile_index).collect();
            Ok((positions, representatives))
        }
        Some(v) => {
            let cloud = PointCloud::from_points(positions);
            let (down, reps) = voxel_downsample_with_representatives(&cloud, v)?;
            Ok((down.points, reps.into_iter().map(tile_index).collect()))
        }
    }
}

/// The downsampled points of neighbouring tiles within `halo` of tile `index`
/// (rounded out to whole voxels, so that halo voxels are complete). An
/// unreadable neighbour is left out with a warning: it fails on its own.
fn load_halo(
    tiles: &[TileInfo],
    index: usize,
    halo: f64,
    voxel: Option<&VoxelConfig>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Point3<f64>>> {
    let neighbours = halo_neighbors(tiles, index, halo);
    let Some(bounds) = tiles.get(index).and_then(|t| t.bounds) else {
        return Ok(Vec::new());
    };
    if neighbours.is_empty() {
        return Ok(Vec::new());
    }
    let region = bounds.expanded(halo);
    let paths: Vec<&Path> = neighbours
        .iter()
        .map(|&j| tiles[j].path.as_path())
        .collect();
    let mut read_readable = |keep: &dyn Fn(&Point3<f64>) -> bool| {
        let mut points = Vec::new();
        for &path in &paths {
            match read_positions_where(path, keep) {
                Ok(p) => points.extend(p),
                Err(e) => {
                    log::warn!("halo neighbour left out: {e}");
                    warnings.push(format!("halo neighbour left out: {e}"));
                }
            }
        }
        points
    };
    let points = match voxel {
        None => read_readable(&|p| region.contains(p)),
        Some(v) => {
            let grid = VoxelGrid::new(v.voxel_size)?;
            let (lo, hi) = (grid.key(&region.min), grid.key(&region.max));
            let in_region = |p: &Point3<f64>| {
                let k = grid.key(p);
                (0..3).all(|a| lo[a] <= k[a] && k[a] <= hi[a])
            };
            let raw = read_readable(&in_region);
            voxel_downsample_with_representatives(&PointCloud::from_points(raw), v)?
                .0
                .points
        }
    };
    Ok(points)
}

#[allow(clippy::too_many_arguments)]
fn write_output(
    input: &Path,
    output: &Path,
    format: OutputFormat,
    tile: &LasTile,
    representatives: &[usize],
    positions: &[Point3<f64>],
    normals: &[Vector3<f64>],
    curvature: &[f64],
) -> Result<()> {
    let compressed = match format {
        OutputFormat::Same => input_extension(input).as_deref() == Some("laz"),
        OutputFormat::Las => false,
        OutputFormat::Laz => true,
        OutputFormat::Ply => {
            return crate::io::write(
                output,
                &ply_cloud(tile, representatives, positions, normals, curvature),
            );
        }
    };
    let out = LasTileOutput {
        header: &tile.header,
        records: &tile.records,
        representatives,
        positions,
        normals,
        curvature,
    };
    write_las_tile(output, &out, compressed)
}

/// The cloud written as PLY: positions, normals, curvature, and intensity and
/// GPS time of the representative records.
fn ply_cloud(
    tile: &LasTile,
    representatives: &[usize],
    positions: &[Point3<f64>],
    normals: &[Vector3<f64>],
    curvature: &[f64],
) -> PointCloud {
    let intensity: Vec<f32> = tile.records.intensity().map(f32::from).collect();
    let time: Option<Vec<f64>> = tile.records.gps_time().map(|t| t.collect());
    PointCloud {
        points: positions.to_vec(),
        intensity: Some(representatives.iter().map(|&r| intensity[r]).collect()),
        normals: Some(normals.to_vec()),
        curvature: Some(curvature.to_vec()),
        time: time.map(|t| representatives.iter().map(|&r| t[r]).collect()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(BatchConfig::default().validate().is_ok());
        let bad = [
            BatchConfig {
                jobs: 0,
                ..Default::default()
            },
            BatchConfig {
                halo: Some(-1.0),
                ..Default::default()
            },
            BatchConfig {
                voxel: Some(VoxelConfig::new(0.0)),
                ..Default::default()
            },
            BatchConfig {
                outliers: Some(OutlierConfig {
                    k: 0,
                    std_ratio: 1.0,
                }),
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    fn pdal(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/las/pdal")
            .join(name)
    }

    /// The streaming path writes the bytes the whole-tile path writes, at
    /// any rayon thread count, and reports its per-stage estimates.
    #[test]
    fn streaming_equals_whole_tile() {
        let dir = tempfile::tempdir().unwrap();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (name, voxel) in [
            ("autzen_trim.laz", VoxelConfig::new(0.1)),
            ("autzen_trim.las", VoxelConfig::new(3.0)),
            (
                "autzen_trim_7.las",
                VoxelConfig {
                    voxel_size: 1.0,
                    mode: crate::voxel::VoxelMode::First,
                },
            ),
            ("test1_4.las", VoxelConfig::new(0.5)),
        ] {
            let input = pdal(name);
            if !input.exists() {
                log::warn!("skipped: {} not found", input.display());
                return;
            }
            let config = BatchConfig {
                voxel: Some(voxel),
                ..Default::default()
            };
            let whole = dir.path().join(format!("whole-{name}"));
            process_file_whole(&input, &whole, &[], None, &config).unwrap();
            for (pool, threads) in [(&one, 1), (&two, 2)] {
                let out = dir.path().join(format!("stream{threads}-{name}"));
                let report = pool
                    .install(|| process_file_streaming(&input, &out, &[], None, &config, &voxel))
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    std::fs::read(&out).unwrap(),
                    std::fs::read(&whole).unwrap(),
                    "{name}, {threads} threads"
                );
                assert!(report.stage_bytes.read > 0 && report.stage_bytes.normals > 0);
                assert!(report.stage_bytes.peak() >= report.stage_bytes.write);
            }
        }
    }

    /// Outputs made before the batch took a `NormalConfig` keep their
    /// fingerprint, so a rerun still skips them.
    #[test]
    fn fingerprint_words_normals_as_before() {
        let fingerprint = parameter_fingerprint(&BatchConfig::default());
        assert!(
            fingerprint.contains("\nnormals NormalParams { radius: 0.5, max_nn: 30 }\n"),
            "{fingerprint}"
        );
        let knn = BatchConfig {
            normals: NormalConfig {
                search: NeighborSearch::Knn { k: 10 },
                ..NormalConfig::aerial(0.5, 30)
            },
            ..Default::default()
        };
        assert!(knn.validate().is_err());
    }

    #[test]
    fn max_memory_is_validated() {
        let zero = BatchConfig {
            max_memory: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(Error::InvalidParameter { .. })
        ));
        let some = BatchConfig {
            max_memory: Some(1),
            ..Default::default()
        };
        assert!(some.validate().is_ok());
    }

    #[test]
    fn refuses_output_equal_to_input() {
        let dir = tempfile::tempdir().unwrap();
        let r = run_batch(dir.path(), dir.path(), &BatchConfig::default(), &NoProgress);
        assert!(matches!(r, Err(Error::OutputIsInput { .. })));
    }

    #[test]
    fn plans_las_and_laz_only_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.LAZ", "a.las", "c.txt", "d.ply"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/e.las"), b"x").unwrap();
        let out = Path::new("/out");
        let plan = plan_inputs(dir.path(), out, OutputFormat::Same, false).unwrap();
        let names: Vec<_> = plan.iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(names, [out.join("a.las"), out.join("b.laz")]);
        let plan = plan_inputs(dir.path(), out, OutputFormat::Ply, true).unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[2].1, out.join("sub/e.ply"));
    }
}
