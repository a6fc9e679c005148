//! Sharded runs and their reports: [`run_shard`] processes one shard of a
//! folder and writes `OUT/_reports/shard-I.json`; [`merge_reports`] merges
//! the reports of every shard into one [`MergedReport`].
//!
//! # Files in `OUT/_reports/` (written atomically: temporary file + rename)
//! - `plan.json` ([`PlanFile`]): the plan, written by every shard before it
//!   starts (identical content for the shards of one plan; the last run's
//!   plan wins when a folder is rerun with another shard count);
//! - `shard-I.json` ([`ShardReport`]): written by shard `I` when it ends. A
//!   single-machine run is shard 0 of 1 and writes `shard-0.json`.
//!
//! Reports whose plan fingerprint differs from `plan.json`'s (left by an
//! earlier run with another shard count or other tiles) are ignored, with a
//! note in the merged summary. The folder `_reports` never holds tiles: it
//! is skipped when listing inputs recursively.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::run::{
    BatchConfig, BatchProgress, BatchSummary, FileStatus, parameter_fingerprint, plan_inputs,
    run_selected,
};
use super::shard::{
    OverlapConfig, PlanTile, ShardPlan, ShardSource, ShardSpec, TileOverlap, find_overlaps,
    fnv1a64, name_index, plan_shards,
};
use super::tiles::{TileInfo, read_tile_info};
use crate::error::{Error, Result};

/// The folder of the reports inside the output folder.
pub const REPORTS_DIR: &str = "_reports";

/// Options of a sharded run beyond the [`BatchConfig`]. Validated by
/// [`ShardOptions::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ShardOptions {
    /// Which shard to process. Default [`ShardSpec::SINGLE`].
    pub shard: ShardSpec,
    /// Where the shard came from (recorded in the report). Default
    /// [`ShardSource::Single`].
    pub source: ShardSource,
    /// When tiles count as overlapping (warning only). Default
    /// [`OverlapConfig::default`].
    pub overlap: OverlapConfig,
    /// With more than one shard, other shards may be writing into the same
    /// output folders: only temporary files older than this are removed as
    /// left over by a killed run. A single shard removes all of them.
    /// Default one hour.
    pub stale_temporary_age: Duration,
}

impl Default for ShardOptions {
    fn default() -> Self {
        ShardOptions {
            shard: ShardSpec::SINGLE,
            source: ShardSource::Single,
            overlap: OverlapConfig::default(),
            stale_temporary_age: Duration::from_secs(3600),
        }
    }
}

impl ShardOptions {
    /// Checks the shard and the overlap threshold.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        self.shard.validate()?;
        self.overlap.validate()
    }
}

/// `OUT/_reports/plan.json`: the plan of a run and the tiles that overlap
/// far beyond a halo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// The plan.
    pub plan: ShardPlan,
    /// Halo width used for the overlap check (CRS units).
    pub halo: f64,
    /// Pairs of tiles overlapping far beyond the halo (see
    /// [`find_overlaps`]).
    pub overlaps: Vec<TileOverlap>,
}

/// One tile in a [`ShardReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileReport {
    /// Input path relative to the input folder, `/`-separated (the plan's name).
    pub name: String,
    /// Output path relative to the output folder, `/`-separated.
    pub output: String,
    /// Done, skipped or failed.
    pub status: FileStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Points read (header count for skipped tiles).
    pub points_in: u64,
    /// Points written (0 for skipped and failed tiles).
    pub points_out: u64,
    /// Halo points borrowed from neighbouring tiles.
    pub halo_points: u64,
    /// Wall time of this tile, seconds.
    pub seconds: f64,
}

/// `OUT/_reports/shard-I.json`: what shard `I` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardReport {
    /// 0-based shard index.
    pub shard_index: usize,
    /// Number of shards.
    pub shard_count: usize,
    /// Where the shard came from.
    pub source: ShardSource,
    /// [`ShardPlan::fingerprint`] of the plan this shard followed.
    pub plan_fingerprint: String,
    /// 16 hex digits identifying the processing parameters and pointpipe's
    /// version: shards run with other parameters are flagged when merged.
    pub parameters: String,
    /// The shard's counts, wall time (seconds, planning included) and
    /// tiles (in name order), as fields of this report's JSON.
    #[serde(flatten)]
    pub summary: BatchSummary<TileReport>,
}

/// The result of [`run_shard`].
#[derive(Debug, Clone, PartialEq)]
pub struct ShardRun {
    /// The batch summary of this shard's tiles (as [`super::run_batch`]'s).
    pub summary: BatchSummary,
    /// The report written to [`ShardRun::report_path`].
    pub report: ShardReport,
    /// `OUT/_reports/shard-I.json`.
    pub report_path: PathBuf,
    /// The plan and overlaps (also in `OUT/_reports/plan.json`).
    pub plan: PlanFile,
}

/// `path` relative to `base`, `/`-separated (lossy for non-UTF-8 names).
fn relative_name(path: &Path, base: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The plan of `input` (relative names, header point counts) and overlaps.
fn make_plan(
    input_dir: &Path,
    inputs: &[(PathBuf, PathBuf)],
    infos: &[Result<TileInfo>],
    shard_count: usize,
    halo: f64,
    overlap: &OverlapConfig,
) -> Result<PlanFile> {
    let names: Vec<String> = inputs
        .iter()
        .map(|(input, _)| relative_name(input, input_dir))
        .collect();
    let tiles: Vec<PlanTile> = names
        .iter()
        .zip(infos)
        .map(|(name, info)| PlanTile {
            name: name.clone(),
            points: info.as_ref().map_or(0, |t| t.number_of_points),
        })
        .collect();
    let plan = plan_shards(&tiles, shard_count)?;
    let bounds: Vec<(String, Option<_>)> = names
        .iter()
        .zip(infos)
        .map(|(name, info)| (name.clone(), info.as_ref().ok().and_then(|t| t.bounds)))
        .collect();
    let overlaps = find_overlaps(&bounds, halo, overlap)?;
    // The first few pairs by name, then a count: jittered copies of one area
    // would otherwise give a warning per pair.
    const SHOWN: usize = 10;
    for o in overlaps.iter().take(SHOWN) {
        log::warn!(
            "tiles {} and {} overlap by {:.0} % of the smaller one (far beyond the halo of {halo}): \
             each pulls the other in as halo, which costs time and memory",
            o.a,
            o.b,
            o.fraction * 100.0
        );
    }
    if overlaps.len() > SHOWN {
        log::warn!(
            "{} more pairs of overlapping tiles (all in _reports/plan.json)",
            overlaps.len() - SHOWN
        );
    }
    Ok(PlanFile {
        plan,
        halo,
        overlaps,
    })
}

/// The plan of a folder for `shard_count` shards, as [`run_shard`] computes
/// it (`pointpipe batch IN OUT --plan N`): lists the inputs and reads every
/// header, writes nothing.
///
/// # Errors
/// As [`plan_inputs`]; [`Error::InvalidParameter`] for a bad `config`,
/// `overlap` or `shard_count` of 0.
pub fn plan_folder(
    input_dir: &Path,
    output_dir: &Path,
    config: &BatchConfig,
    shard_count: usize,
    overlap: &OverlapConfig,
) -> Result<PlanFile> {
    config.validate()?;
    let inputs = plan_inputs(input_dir, output_dir, config.format, config.recursive)?;
    let infos: Vec<Result<TileInfo>> = inputs.iter().map(|(i, _)| read_tile_info(i)).collect();
    make_plan(
        input_dir,
        &inputs,
        &infos,
        shard_count,
        config.halo_width(),
        overlap,
    )
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::io::atomic::write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)
            .map_err(|e| Error::format(path, format!("cannot write JSON: {e}")))?;
        use std::io::Write;
        w.write_all(b"\n").map_err(|e| Error::io(path, e))
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not a report: {e}")))
}

/// `OUT/_reports/shard-I.json`.
pub fn shard_report_path(output_dir: &Path, shard: usize) -> PathBuf {
    output_dir
        .join(REPORTS_DIR)
        .join(format!("shard-{shard}.json"))
}

/// Runs shard `options.shard` of the folder: plans (as [`plan_folder`]),
/// writes `OUT/_reports/plan.json`, processes this shard's tiles as
/// [`super::run_batch`] does (halos from **every** tile, so outputs are
/// byte-identical to a single-machine run; up-to-date outputs skipped), then
/// writes `OUT/_reports/shard-I.json`.
///
/// # Errors
/// As [`super::run_batch`]; [`Error::InvalidParameter`] for bad `options`;
/// [`Error::Io`] when a report cannot be written. Failed tiles are in the
/// report, not an `Err`.
pub fn run_shard(
    input_dir: &Path,
    output_dir: &Path,
    config: &BatchConfig,
    options: &ShardOptions,
    progress: &dyn BatchProgress,
) -> Result<ShardRun> {
    options.validate()?;
    config.validate()?;
    let start = std::time::Instant::now();
    let shard = options.shard;
    let planned: RefCell<Option<(PlanFile, Vec<String>)>> = RefCell::new(None);
    let select = |inputs: &[(PathBuf, PathBuf)], infos: &[Result<TileInfo>]| {
        let plan = make_plan(
            input_dir,
            inputs,
            infos,
            shard.count,
            config.halo_width(),
            &options.overlap,
        )?;
        let names: Vec<String> = inputs
            .iter()
            .map(|(input, _)| relative_name(input, input_dir))
            .collect();
        let index = name_index(&names);
        let chosen: Vec<usize> = plan
            .plan
            .tiles_of(shard.index)
            .filter_map(|t| index.get(t.name.as_str()).copied())
            .collect();
        write_json(&output_dir.join(REPORTS_DIR).join("plan.json"), &plan)?;
        log::info!(
            "shard {shard}: {} of {} tiles, plan {}",
            chosen.len(),
            names.len(),
            plan.plan.fingerprint
        );
        *planned.borrow_mut() = Some((plan, names));
        Ok(chosen)
    };
    let temporaries = (shard.count > 1).then_some(options.stale_temporary_age);
    let summary = run_selected(
        input_dir,
        output_dir,
        config,
        progress,
        &select,
        temporaries,
    )?;
    // `run_selected` calls `select` whenever it returns Ok.
    let Some((plan, _)) = planned.into_inner() else {
        return Err(Error::invalid(
            "shard",
            shard,
            "the batch ended before planning",
        ));
    };
    let files: Vec<TileReport> = summary
        .files
        .iter()
        .map(|f| TileReport {
            name: relative_name(&f.input, input_dir),
            output: relative_name(&f.output, output_dir),
            status: f.status,
            error: f.error.clone(),
            points_in: f.points_in,
            points_out: f.points_out,
            halo_points: f.halo_points,
            seconds: f.seconds,
        })
        .collect();
    let report = ShardReport {
        shard_index: shard.index,
        shard_count: shard.count,
        source: options.source,
        plan_fingerprint: plan.plan.fingerprint.clone(),
        parameters: format!("{:016x}", fnv1a64(parameter_fingerprint(config).as_bytes())),
        summary: BatchSummary {
            done: summary.done,
            skipped: summary.skipped,
            failed: summary.failed,
            points_in: summary.points_in,
            points_out: summary.points_out,
            seconds: start.elapsed().as_secs_f64(),
            files,
        },
    };
    let report_path = shard_report_path(output_dir, shard.index);
    write_json(&report_path, &report)?;
    Ok(ShardRun {
        summary,
        report,
        report_path,
        plan,
    })
}

/// A failed tile in a [`MergedReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedTile {
    /// The tile's name.
    pub name: String,
    /// Its shard.
    pub shard: usize,
    /// Why it failed.
    pub error: String,
}

/// The reports of every shard of a run, merged (see [`merge_reports`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedReport {
    /// Fingerprint of the plan in `plan.json`.
    pub plan_fingerprint: String,
    /// Number of shards of the plan.
    pub shard_count: usize,
    /// Tiles in the plan.
    pub tiles: usize,
    /// Tiles written.
    pub done: usize,
    /// Tiles skipped as up to date.
    pub skipped: usize,
    /// Tiles that failed.
    pub failed: usize,
    /// Tiles of the plan that no report lists (their shard did not finish).
    pub missing: usize,
    /// Points read, over done tiles.
    pub points_in: u64,
    /// Points written, over done tiles.
    pub points_out: u64,
    /// Sum of the shards' wall times, seconds (the compute spent).
    pub seconds_total: f64,
    /// The slowest shard's wall time, seconds.
    pub seconds_max: f64,
    /// Shards with a report for this plan.
    pub shards_reported: Vec<usize>,
    /// Shards without one.
    pub shards_missing: Vec<usize>,
    /// The failed tiles and why.
    pub failed_tiles: Vec<FailedTile>,
    /// The missing tiles' names.
    pub missing_tiles: Vec<String>,
    /// Tiles overlapping far beyond a halo (from the plan).
    pub overlaps: Vec<TileOverlap>,
    /// Reports ignored (other plan) and parameter mismatches, in words.
    pub notes: Vec<String>,
    /// True when shards report different processing parameters.
    pub parameters_differ: bool,
}

impl MergedReport {
    /// True when every tile of the plan is done or skipped and all shards
    /// used the same parameters.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.missing == 0 && !self.parameters_differ
    }
}

/// Merges `OUT/_reports/shard-*.json` against `OUT/_reports/plan.json`.
///
/// Every tile of the plan is counted once: done, skipped or failed as its
/// shard's report says, or missing when its shard has no report (or the
/// report does not list it). Reports of another plan are ignored (noted).
///
/// # Complexity
/// O(T + R) for T tiles and R report entries.
///
/// # Errors
/// [`Error::Format`] when `plan.json` is missing (no run wrote into this
/// folder) or a report is not valid JSON; [`Error::Io`] when the folder
/// cannot be read.
pub fn merge_reports(output_dir: &Path) -> Result<MergedReport> {
    let dir = output_dir.join(REPORTS_DIR);
    let plan_path = dir.join("plan.json");
    if !plan_path.exists() {
        return Err(Error::format(
            &plan_path,
            "no plan: no `pointpipe batch` has run into this output folder \
             (every run writes _reports/plan.json)",
        ));
    }
    let plan: PlanFile = read_json(&plan_path)?;
    let n = plan.plan.shard_count;
    let mut notes = Vec::new();
    let mut reports: Vec<Option<ShardReport>> = vec![None; n];
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("shard-") && f.ends_with(".json"))
        })
        .collect();
    entries.sort();
    for path in entries {
        let report: ShardReport = read_json(&path)?;
        let name = path.file_name().map(|f| f.to_string_lossy().into_owned());
        if report.plan_fingerprint != plan.plan.fingerprint
            || report.shard_count != n
            || report.shard_index >= n
            || name.as_deref() != Some(&format!("shard-{}.json", report.shard_index))
        {
            notes.push(format!(
                "{} ignored: shard {}/{} of plan {}, not of plan {} ({n} shards)",
                path.display(),
                report.shard_index,
                report.shard_count,
                report.plan_fingerprint,
                plan.plan.fingerprint
            ));
            continue;
        }
        let i = report.shard_index;
        reports[i] = Some(report);
    }
    let mut parameters: Vec<&str> = reports
        .iter()
        .flatten()
        .map(|r| r.parameters.as_str())
        .collect();
    parameters.sort_unstable();
    parameters.dedup();
    let parameters_differ = parameters.len() > 1;
    if parameters_differ {
        notes.push(format!(
            "shards ran with different parameters ({}): rerun the odd ones with the same options",
            parameters.join(", ")
        ));
    }
    let mut merged = MergedReport {
        plan_fingerprint: plan.plan.fingerprint.clone(),
        shard_count: n,
        tiles: plan.plan.tiles.len(),
        done: 0,
        skipped: 0,
        failed: 0,
        missing: 0,
        points_in: 0,
        points_out: 0,
        seconds_total: reports.iter().flatten().map(|r| r.summary.seconds).sum(),
        seconds_max: reports
            .iter()
            .flatten()
            .map(|r| r.summary.seconds)
            .fold(0.0, f64::max),
        shards_reported: (0..n).filter(|&i| reports[i].is_some()).collect(),
        shards_missing: (0..n).filter(|&i| reports[i].is_none()).collect(),
        failed_tiles: Vec::new(),
        missing_tiles: Vec::new(),
        overlaps: plan.overlaps.clone(),
        notes,
        parameters_differ,
    };
    let by_name: Vec<std::collections::HashMap<&str, &TileReport>> = reports
        .iter()
        .map(|r| {
            r.iter()
                .flat_map(|r| r.summary.files.iter().map(|f| (f.name.as_str(), f)))
                .collect()
        })
        .collect();
    for tile in &plan.plan.tiles {
        match by_name
            .get(tile.shard)
            .and_then(|m| m.get(tile.name.as_str()))
        {
            None => {
                merged.missing += 1;
                merged.missing_tiles.push(tile.name.clone());
            }
            Some(f) => match f.status {
                FileStatus::Done => {
                    merged.done += 1;
                    merged.points_in += f.points_in;
                    merged.points_out += f.points_out;
                }
                FileStatus::Skipped => merged.skipped += 1,
                FileStatus::Failed => {
                    merged.failed += 1;
                    merged.failed_tiles.push(FailedTile {
                        name: tile.name.clone(),
                        shard: tile.shard,
                        error: f.error.clone().unwrap_or_default(),
                    });
                }
            },
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded summary's fields stand in the report's JSON where they
    /// always stood, and the report reads back.
    #[test]
    fn shard_report_json_keeps_its_fields() {
        let report = ShardReport {
            shard_index: 1,
            shard_count: 3,
            source: ShardSource::Flag,
            plan_fingerprint: "p".into(),
            parameters: "0123456789abcdef".into(),
            summary: BatchSummary {
                done: 1,
                skipped: 0,
                failed: 1,
                points_in: 10,
                points_out: 4,
                seconds: 0.25,
                files: vec![TileReport {
                    name: "a.las".into(),
                    output: "a.las".into(),
                    status: FileStatus::Done,
                    error: None,
                    points_in: 10,
                    points_out: 4,
                    halo_points: 2,
                    seconds: 0.125,
                }],
            },
        };
        let text = serde_json::to_string(&report).unwrap();
        let keys: Vec<&str> = [
            "shard_index",
            "shard_count",
            "source",
            "plan_fingerprint",
            "parameters",
            "done",
            "skipped",
            "failed",
            "points_in",
            "points_out",
            "seconds",
            "files",
        ]
        .into_iter()
        .filter(|k| text.contains(&format!("\"{k}\":")))
        .collect();
        assert_eq!(keys.len(), 12, "{text}");
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let back: ShardReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}
