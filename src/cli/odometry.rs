//! `pointpipe odometry`: LiDAR odometry over a sequence of frames.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use nalgebra::Isometry3;
use pointpipe::eval;
use pointpipe::io::{self, poses};
use pointpipe::odometry::{
    FrameResult, MapBuilder, OdometryConfig, Pipeline, Stage, StageTimings, TimingSummary, sequence,
};

use super::Context;

/// Pose file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PoseFormat {
    /// KITTI: 12 numbers per line, the 3×4 matrix [R | t] row-major.
    Kitti,
    /// TUM: `t tx ty tz qx qy qz qw` per line.
    Tum,
}

/// Arguments of `pointpipe odometry`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory of frames (.bin, .pcd, .ply, .las, .laz; sorted by the number in
    /// the file name; KITTI layout with velodyne/ recognised) or a text file listing frames.
    pub input: PathBuf,
    /// Output pose file (world_from_sensor of every frame; world = first sensor frame).
    #[arg(long, value_name = "POSES")]
    pub out: PathBuf,
    /// Format of --out.
    #[arg(long, value_enum, default_value = "kitti")]
    pub format: PoseFormat,
    /// Write the merged, voxelised map of all frames in the world frame (.ply, .pcd, .las, .laz, .bin).
    #[arg(long, value_name = "MAP")]
    pub map: Option<PathBuf>,
    /// Voxel size of the --map output, metres.
    #[arg(long, value_name = "V", default_value_t = 0.1)]
    pub map_voxel_size: f64,
    /// Ground-truth poses (world_from_sensor per frame) for the built-in evaluation.
    #[arg(long, value_name = "GT")]
    pub gt: Option<PathBuf>,
    /// Format of --gt.
    #[arg(long, value_enum, default_value = "kitti")]
    pub gt_format: PoseFormat,
    /// Odometry parameters from a TOML file (any subset of the fields of OdometryConfig;
    /// see README). Default: built-in defaults.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Skip frames that cannot be read (flagged, pose predicted) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Print one JSON object with the results instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a run produced, for printing.
pub struct RunReport {
    pub frames: Vec<FrameResult>,
    pub process_seconds: f64,
    pub read_seconds: f64,
    pub evaluation: Option<eval::Evaluation>,
    pub voxel_size: Option<f64>,
}

pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            OdometryConfig::from_toml(&text)
                .with_context(|| format!("config {}", path.display()))?
        }
        None => OdometryConfig::default(),
    };
    if !(args.map_voxel_size.is_finite() && args.map_voxel_size > 0.0) {
        anyhow::bail!(
            "--map-voxel-size must be finite and > 0, got {}",
            args.map_voxel_size
        );
    }
    let frames = sequence::list_frames(&args.input)?;
    let times = sequence::read_times(&args.input, frames.len())?;
    let gt = args
        .gt
        .as_deref()
        .map(|p| read_poses(p, args.gt_format))
        .transpose()?;
    let mut pipeline = Pipeline::new(config)?;
    let mut map = args
        .map
        .as_ref()
        .map(|_| MapBuilder::new(args.map_voxel_size));
    let progress = super::progress_bar(frames.len() as u64, "frames", ctx);
    let mut results = Vec::with_capacity(frames.len());
    let (mut process_seconds, mut read_seconds) = (0.0, 0.0);
    for path in &frames {
        let start = Instant::now();
        let frame = match io::read(path) {
            Ok(frame) => frame,
            Err(e) if args.skip_bad => {
                log::warn!("skipping unreadable frame: {e}");
                results.push(pipeline.skip_frame(e.to_string()));
                progress.inc(1);
                continue;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "frame {} of {} is unreadable (use --skip-bad to skip such frames)",
                    results.len(),
                    frames.len()
                )));
            }
        };
        let read_ms = super::ms_since(start);
        let mut result = pipeline.process(&frame);
        result.timings.set(Stage::Read, read_ms);
        read_seconds += read_ms / 1e3;
        process_seconds += (result.timings.total() - read_ms) / 1e3;
        if let Some(map) = &mut map {
            let start = Instant::now();
            let cropped = pointpipe::odometry::crop_ranges(
                &frame,
                pipeline.config().min_range,
                pipeline.config().max_range,
            );
            map.add(&cropped, &result.world_from_sensor);
            result.timings.set(
                Stage::MapUpdate,
                result.timings.get(Stage::MapUpdate) + super::ms_since(start),
            );
        }
        if result.status.is_flagged() {
            log::warn!(
                "frame {} ({}): {:?}",
                result.index,
                path.display(),
                result.status
            );
        }
        results.push(result);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let poses: Vec<Isometry3<f64>> = results.iter().map(|r| r.world_from_sensor).collect();
    write_poses(&args.out, args.format, &poses, times.as_deref())?;
    if let (Some(path), Some(map)) = (&args.map, &map) {
        io::write(path, &map.to_cloud())?;
    }
    let evaluation = gt
        .map(|gt| {
            if gt.len() != poses.len() {
                anyhow::bail!(
                    "ground truth has {} poses but the sequence has {} frames",
                    gt.len(),
                    poses.len()
                );
            }
            Ok(eval::evaluate(&poses, &gt)?)
        })
        .transpose()?;
    let report = RunReport {
        frames: results,
        process_seconds,
        read_seconds,
        evaluation,
        voxel_size: pipeline.voxel_size(),
    };
    print_report(&report, args.json, Some(&args.out));
    Ok(())
}

/// Reads a pose file as `world_from_sensor` per line.
pub fn read_poses(path: &Path, format: PoseFormat) -> anyhow::Result<Vec<Isometry3<f64>>> {
    Ok(match format {
        PoseFormat::Kitti => poses::read_kitti_poses(path)?,
        PoseFormat::Tum => poses::read_tum_poses(path)?
            .into_iter()
            .map(|(_, p)| p)
            .collect(),
    })
}

/// Writes poses; TUM needs times (the frame index is used when there are none).
pub fn write_poses(
    path: &Path,
    format: PoseFormat,
    poses: &[Isometry3<f64>],
    times: Option<&[f64]>,
) -> anyhow::Result<()> {
    match format {
        PoseFormat::Kitti => poses::write_kitti_poses(path, poses)?,
        PoseFormat::Tum => {
            let stamped: Vec<(f64, Isometry3<f64>)> = poses
                .iter()
                .enumerate()
                .map(|(i, p)| (times.map_or(i as f64, |t| t[i]), *p))
                .collect();
            poses::write_tum_poses(path, &stamped)?
        }
    }
    Ok(())
}

/// Prints the run summary as text (stderr/stdout) or one JSON object.
pub fn print_report(report: &RunReport, json: bool, out: Option<&Path>) {
    let n = report.frames.len();
    let timings: Vec<StageTimings> = report.frames.iter().map(|r| r.timings).collect();
    let summary = TimingSummary::from_frames(&timings);
    let fps = n as f64 / report.process_seconds.max(1e-9);
    let fps_with_read = n as f64 / (report.process_seconds + report.read_seconds).max(1e-9);
    let flagged: Vec<serde_json::Value> = report
        .frames
        .iter()
        .filter(|r| r.status.is_flagged())
        .map(|r| serde_json::json!({"frame": r.index, "status": r.status}))
        .collect();
    let ev = report.evaluation.as_ref();
    if json {
        let medians: serde_json::Map<String, serde_json::Value> = summary
            .stages
            .iter()
            .map(|(name, median, _)| (name.to_string(), serde_json::json!(round3(*median))))
            .collect();
        let p95: serde_json::Map<String, serde_json::Value> = summary
            .stages
            .iter()
            .map(|(name, _, p95)| (name.to_string(), serde_json::json!(round3(*p95))))
            .collect();
        let value = serde_json::json!({
            "frames": n,
            "fps": round3(fps),
            "fps_with_read": round3(fps_with_read),
            "voxel_size_m": report.voxel_size,
            "timings_ms": medians,
            "timings_p95_ms": p95,
            "flagged_frames": flagged,
            "ate_m": ev.map(|e| e.ate.rmse_m),
            "rpe_trans_m": ev.map(|e| e.rpe.trans_rmse_m),
            "rpe_rot_deg": ev.map(|e| e.rpe.rot_rmse_deg),
            "kitti_t_err_pct": ev.and_then(|e| e.kitti.as_ref().map(|k| k.t_err_pct)),
            "kitti_r_err_deg_per_100m": ev.and_then(|e| e.kitti.as_ref().map(|k| k.r_err_deg_per_100m)),
            "poses": out.map(|p| p.display().to_string()),
        });
        println!("{value}");
        return;
    }
    println!(
        "{n} frames, {fps:.1} frames/s processing ({fps_with_read:.1} frames/s with reading), voxel size {}",
        report
            .voxel_size
            .map_or("-".into(), |v| format!("{v:.3} m"))
    );
    println!("{:<11} {:>10} {:>10}", "stage", "median ms", "p95 ms");
    for (name, median, p95) in &summary.stages {
        println!("{name:<11} {median:>10.2} {p95:>10.2}");
    }
    println!("{:<11} {:>10.2}", "total", summary.total_median_ms);
    if flagged.is_empty() {
        println!("flagged frames: none");
    } else {
        println!("flagged frames: {}", serde_json::Value::Array(flagged));
    }
    if let Some(e) = ev {
        println!(
            "ATE {:.4} m | RPE {:.4} m, {:.3} deg per frame | KITTI {}",
            e.ate.rmse_m,
            e.rpe.trans_rmse_m,
            e.rpe.rot_rmse_deg,
            e.kitti.as_ref().map_or(
                "n/a (trajectory shorter than 100 m)".to_string(),
                |k| format!(
                    "{:.3} % translation, {:.4} deg/100 m rotation",
                    k.t_err_pct, k.r_err_deg_per_100m
                )
            )
        );
    }
    if let Some(p) = out {
        println!("poses written to {}", p.display());
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}
