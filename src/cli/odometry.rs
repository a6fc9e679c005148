//! `pointpipe odometry`: LiDAR odometry over a sequence of frames.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nalgebra::Isometry3;
use pointpipe::eval;
use pointpipe::io::{self, poses};
use pointpipe::odometry::{
    FrameResult, FrameView, Odometry, OdometryConfig, SequenceConfig, SequenceOutput, StageTimings,
    TimingSummary, run_sequence, sequence,
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
    #[command(flatten)]
    pub pcd: super::PcdArgs,
    /// Voxel size of the --map output, metres.
    #[arg(
        long,
        value_name = "V",
        default_value_t = 0.1,
        allow_hyphen_values = true
    )]
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
    /// Show the merged map growing live in a 3D window, the current frame in
    /// yellow and the trajectory as a line (feature `viewer`). Odometry runs in
    /// its own thread; closing the window stops it and writes the poses so far.
    #[cfg(feature = "viewer")]
    #[arg(long)]
    pub view: bool,
    /// With --view: no window; after the run, render the merged map (voxel
    /// --map-voxel-size; points more than 1.5 m above the highest pose cut
    /// away), the trajectory and the last frame into this PNG
    /// (headless: `xvfb-run -a -s '-screen 0 1280x800x24' pointpipe odometry ...`).
    #[cfg(feature = "viewer")]
    #[arg(long, value_name = "OUT.png", requires = "view")]
    pub screenshot: Option<PathBuf>,
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
    // Everything that could make the run's result unusable is checked
    // before the first frame: output folders, the map's format, the times
    // TUM needs, the ground truth.
    check_output(&args.out, "--out")?;
    if let Some(map) = &args.map {
        check_output(map, "--map")?;
        io::Format::from_path(map).with_context(|| format!("--map {}", map.display()))?;
    }
    if args.format == PoseFormat::Tum && times.is_none() {
        anyhow::bail!(
            "--format tum writes a timestamp per pose: {}",
            times_problem(&args.input, frames.len())
        );
    }
    let gt = args
        .gt
        .as_deref()
        .map(|p| {
            GroundTruth::load(
                p,
                args.gt_format,
                times.as_deref(),
                &args.input,
                frames.len(),
            )
        })
        .transpose()?;
    let mut odometry = Odometry::new(config)?;
    #[cfg(not(feature = "viewer"))]
    let want_map = args.map.is_some();
    #[cfg(feature = "viewer")]
    let want_map = args.map.is_some() || args.view;
    #[cfg(feature = "viewer")]
    if args.view && args.screenshot.is_none() {
        // Fail before reading any frame.
        pointpipe::viewer::check_display()?;
    }
    let sequence_config = SequenceConfig {
        skip_bad: args.skip_bad,
        map_voxel_size: want_map.then_some(args.map_voxel_size),
    };
    let progress = super::progress_bar(frames.len() as u64, "frames", ctx);
    let frame_loop = FrameLoop {
        frames: &frames,
        config: &sequence_config,
        progress: &progress,
    };
    #[cfg(not(feature = "viewer"))]
    let output = frame_loop.run(&mut odometry, |_| ControlFlow::Continue(()))?;
    #[cfg(feature = "viewer")]
    let mut last_frame = Vec::new();
    #[cfg(feature = "viewer")]
    let output = view::run(&args, frame_loop, &mut odometry, &mut last_frame)?;
    let SequenceOutput {
        results,
        map,
        process_seconds,
        read_seconds,
    } = output;
    progress.finish_and_clear();
    let poses: Vec<Isometry3<f64>> = results.iter().map(|r| r.world_from_sensor).collect();
    write_poses(&args.out, args.format, &poses, times.as_deref())?;
    if let (Some(path), Some(map)) = (&args.map, &map) {
        io::write_with_pcd_options(path, &map.to_cloud(), &args.pcd.options())?;
    }
    #[cfg(feature = "viewer")]
    if let (Some(out), Some(map)) = (&args.screenshot, &map) {
        view::screenshot(out, map, last_frame, &poses)?;
    }
    if results
        .iter()
        .all(|r| r.status == pointpipe::odometry::FrameStatus::Empty)
    {
        log::warn!(
            "every frame was empty after the range crop (min_range {} m, max_range {} m): \
             are the coordinates in metres? Set min_range / max_range with --config",
            odometry.config().min_range,
            odometry.config().max_range
        );
    }
    let evaluation = match gt {
        Some(gt) => gt.evaluate(&poses)?,
        None => None,
    };
    let report = RunReport {
        frames: results,
        process_seconds,
        read_seconds,
        evaluation,
        voxel_size: odometry.voxel_size(),
    };
    print_report(&report, args.json, Some(&args.out));
    Ok(())
}

/// The CLI's view of [`run_sequence`]: frames read from files, a progress
/// bar, an error that says how to skip unreadable frames.
pub struct FrameLoop<'a> {
    /// Frame files in order.
    pub frames: &'a [PathBuf],
    /// Skip-bad policy and merged map.
    pub config: &'a SequenceConfig,
    /// Advanced once per frame.
    pub progress: &'a indicatif::ProgressBar,
}

impl FrameLoop<'_> {
    /// Runs every frame through `odometry` with [`run_sequence`], calling
    /// `on_frame` after each ([`ControlFlow::Break`] stops the loop).
    pub fn run(
        &self,
        odometry: &mut Odometry,
        mut on_frame: impl FnMut(&FrameView<'_>) -> ControlFlow<()>,
    ) -> anyhow::Result<SequenceOutput> {
        let total = self.frames.len();
        let frames = self.frames.iter().map(io::read);
        run_sequence(frames, odometry, self.config, |view| {
            self.progress.inc(1);
            on_frame(view)
        })
        .map_err(|e| match e {
            pointpipe::Error::Frame { index, source } => {
                anyhow::Error::new(*source).context(format!(
                    "frame {index} of {total} is unreadable (use --skip-bad to skip such frames)"
                ))
            }
            e => e.into(),
        })
    }
}

/// Fewest poses the built-in evaluation needs (ATE aligns three points).
const MIN_EVALUATED_POSES: usize = 3;

/// Fails unless `path` can be written: its folder exists and accepts a new
/// file, and it is not a folder itself. `flag` names the option.
fn check_output(path: &Path, flag: &str) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("{flag} {}: is a directory, expected a file", path.display());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "{flag} {}: the folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    tempfile::Builder::new()
        .prefix(".pointpipe-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            let reason = e.to_string();
            let reason = reason
                .split(" at path ")
                .next()
                .unwrap_or_default()
                .to_string();
            anyhow::anyhow!(
                "{flag} {}: cannot write in {}: {reason}",
                path.display(),
                dir.display()
            )
        })
}

/// Why the frames have no usable times: times.txt missing or of the wrong
/// length.
fn times_problem(input: &Path, frames: usize) -> String {
    let dir = if input.is_dir() {
        input.to_path_buf()
    } else {
        input.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let path = dir.join("times.txt");
    if path.is_file() {
        format!(
            "{} does not hold one time per frame ({frames} frames)",
            path.display()
        )
    } else {
        format!("no {} (one time in seconds per frame)", path.display())
    }
}

/// Ground truth read and matched to the frames before the run.
struct GroundTruth {
    /// Reference poses, one per evaluated frame.
    poses: Vec<Isometry3<f64>>,
    /// The frame index of each reference pose.
    frames: Vec<usize>,
    /// Source and matching rule, for the messages.
    what: String,
}

impl GroundTruth {
    /// KITTI: one pose per frame (checked). TUM: matched to the frames'
    /// times (times.txt) by timestamp, as evo does (within
    /// [`eval::DEFAULT_MAX_TIME_DIFF`]).
    fn load(
        path: &Path,
        format: PoseFormat,
        times: Option<&[f64]>,
        input: &Path,
        frame_count: usize,
    ) -> anyhow::Result<GroundTruth> {
        match format {
            PoseFormat::Kitti => {
                let poses = poses::read_kitti_poses(path)?;
                if poses.len() != frame_count {
                    anyhow::bail!(
                        "--gt {}: {} poses but the sequence has {frame_count} frames \
                         (KITTI ground truth has one pose per frame; TUM ground truth \
                         with --gt-format tum is matched by timestamp)",
                        path.display(),
                        poses.len()
                    );
                }
                Ok(GroundTruth {
                    frames: (0..poses.len()).collect(),
                    poses,
                    what: format!("{} (one pose per frame)", path.display()),
                })
            }
            PoseFormat::Tum => {
                let Some(times) = times else {
                    anyhow::bail!(
                        "--gt-format tum matches poses by timestamp, which needs the frames' times: {}",
                        times_problem(input, frame_count)
                    );
                };
                let stamped = poses::read_tum_poses(path)?;
                let reference: Vec<f64> = stamped.iter().map(|(t, _)| *t).collect();
                let pairs = eval::associate_by_time(times, &reference, eval::DEFAULT_MAX_TIME_DIFF);
                if pairs.len() < frame_count.min(MIN_EVALUATED_POSES) {
                    anyhow::bail!(
                        "--gt {}: only {} of {frame_count} frame times have a ground-truth pose \
                         within {} s",
                        path.display(),
                        pairs.len(),
                        eval::DEFAULT_MAX_TIME_DIFF
                    );
                }
                Ok(GroundTruth {
                    frames: pairs.iter().map(|&(i, _)| i).collect(),
                    poses: pairs.iter().map(|&(_, j)| stamped[j].1).collect(),
                    what: format!(
                        "{} ({} of {frame_count} frames matched by timestamp within {} s)",
                        path.display(),
                        pairs.len(),
                        eval::DEFAULT_MAX_TIME_DIFF
                    ),
                })
            }
        }
    }

    /// The evaluation of `estimated` (one pose per frame) against the
    /// matched reference; `None`, with a note on stderr, when fewer than
    /// [`MIN_EVALUATED_POSES`] poses can be compared.
    fn evaluate(&self, estimated: &[Isometry3<f64>]) -> anyhow::Result<Option<eval::Evaluation>> {
        let pairs: Vec<(Isometry3<f64>, Isometry3<f64>)> = self
            .frames
            .iter()
            .zip(&self.poses)
            .filter_map(|(&i, gt)| estimated.get(i).map(|e| (*e, *gt)))
            .collect();
        if pairs.len() < MIN_EVALUATED_POSES {
            eprintln!(
                "note: evaluation skipped: {} poses to compare with {}, the evaluation needs at least {MIN_EVALUATED_POSES}",
                pairs.len(),
                self.what
            );
            return Ok(None);
        }
        let (est, gt): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        Ok(Some(eval::evaluate(&est, &gt)?))
    }
}

/// Writes poses; TUM needs times (the frame index is used when there are
/// none: `demo` has no times.txt; `odometry` refuses TUM output without one).
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

/// `odometry --view`: the live window and the after-run screenshot.
#[cfg(feature = "viewer")]
mod view {
    use std::ops::ControlFlow;
    use std::path::Path;
    use std::sync::mpsc::{self, Sender};
    use std::time::{Duration, Instant};

    use nalgebra::{Isometry3, Point3};
    use pointpipe::odometry::{FrameView, MapBuilder, Odometry, SequenceOutput};
    use pointpipe::viewer::{self, LiveScene, ViewerUpdate, decimate_points};

    use super::{Args, FrameLoop};

    /// Window and screenshot size, pixels.
    const SIZE: (u32, u32) = viewer::DEFAULT_SIZE;
    /// Display budget of the current frame sent each frame (points).
    const FRAME_POINTS: usize = 30_000;
    /// Display budget of the map (points).
    const MAP_POINTS: usize = viewer::DEFAULT_MAX_POINTS;
    /// Display budget of the map in the after-run screenshot (points).
    const SCREENSHOT_MAP_POINTS: usize = 400_000;
    /// Height above the highest pose above which the screenshot hides points, metres.
    const CEILING_CUT: f64 = 1.5;
    /// Least time between two map updates sent to the live window.
    const MAP_INTERVAL: Duration = Duration::from_secs(2);

    /// Runs the frame loop as `args` asks: plain, recording the last frame
    /// (world frame) into `last_frame` for [`screenshot`], or live.
    pub fn run(
        args: &Args,
        frame_loop: FrameLoop<'_>,
        odometry: &mut Odometry,
        last_frame: &mut Vec<Point3<f64>>,
    ) -> anyhow::Result<SequenceOutput> {
        if !args.view {
            return frame_loop.run(odometry, |_| ControlFlow::Continue(()));
        }
        if args.screenshot.is_some() {
            return frame_loop.run(odometry, |view| {
                last_frame.clear();
                let pose = view.result.world_from_sensor;
                last_frame.extend(view.points.iter().map(|p| pose * p));
                ControlFlow::Continue(())
            });
        }
        run_live(args, frame_loop, odometry)
    }

    /// The frame loop in a worker thread feeding [`viewer::show_live`] on this
    /// (main) thread; closing the window makes the next send fail and stops
    /// the loop.
    fn run_live(
        args: &Args,
        frame_loop: FrameLoop<'_>,
        odometry: &mut Odometry,
    ) -> anyhow::Result<SequenceOutput> {
        let total = frame_loop.frames.len();
        let live = LiveScene::new(format!("pointpipe odometry: {}", args.input.display()));
        let (updates, received) = mpsc::channel();
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || {
                let mut last_map_sent = None;
                let output = frame_loop.run(odometry, |view| {
                    send_frame(&updates, view, total, &mut last_map_sent)
                });
                if let Ok(Some(map)) = output.as_ref().map(|o| o.map.as_ref()) {
                    // The complete map; fails harmlessly when the window is closed.
                    let _ = updates.send(ViewerUpdate::Map(decimate_points(
                        &map.to_cloud().points,
                        MAP_POINTS,
                    )));
                }
                output
            });
            let shown = viewer::show_live(live, received, SIZE.0, SIZE.1);
            let output = worker
                .join()
                .map_err(|_| anyhow::anyhow!("the odometry thread panicked"))??;
            shown?;
            Ok(output)
        })
    }

    /// Sends the pose, the decimated frame (world frame), a status line and,
    /// at most every [`MAP_INTERVAL`], the decimated map. Break when the
    /// window is gone.
    fn send_frame(
        updates: &Sender<ViewerUpdate>,
        view: &FrameView<'_>,
        total: usize,
        last_map_sent: &mut Option<Instant>,
    ) -> ControlFlow<()> {
        let (result, pose) = (view.result, view.result.world_from_sensor);
        let frame = decimate_points(view.points, FRAME_POINTS)
            .into_iter()
            .map(|p| pose * p)
            .collect();
        let mut batch = vec![
            ViewerUpdate::Pose(pose),
            ViewerUpdate::Frame(frame),
            ViewerUpdate::Status(format!("frame {}/{total}", result.index + 1)),
        ];
        if let Some(map) = view.map
            && last_map_sent.is_none_or(|t| t.elapsed() >= MAP_INTERVAL)
        {
            *last_map_sent = Some(Instant::now());
            batch.push(ViewerUpdate::Map(decimate_points(
                &map.to_cloud().points,
                MAP_POINTS,
            )));
        }
        for update in batch {
            if updates.send(update).is_err() {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Renders the merged map, the trajectory `poses` and the last frame
    /// (`last_frame`, world frame) into the PNG `out`.
    pub fn screenshot(
        out: &Path,
        map: &MapBuilder,
        last_frame: Vec<Point3<f64>>,
        poses: &[Isometry3<f64>],
    ) -> anyhow::Result<()> {
        let map_points = map.to_cloud().points;
        // Stray far returns would shrink the map to a dot: show what lies in
        // the map's 1st-99th percentile box (grown by 20 %). Roofs would hide
        // the ground and the trajectory from the camera above: cut away what
        // is more than CEILING_CUT above the highest pose.
        let top = poses
            .iter()
            .map(|p| p.translation.z)
            .fold(f64::NEG_INFINITY, f64::max)
            + CEILING_CUT;
        let shown = super::super::register::view::display_box(&map_points).map(|(lo, mut hi)| {
            hi.z = hi.z.min(top);
            (lo, hi)
        });
        let crop = |points: Vec<Point3<f64>>| -> Vec<Point3<f64>> {
            match &shown {
                Some((lo, hi)) => points
                    .into_iter()
                    .filter(|p| (0..3).all(|k| p[k] >= lo[k] && p[k] <= hi[k]))
                    .collect(),
                None => points,
            }
        };
        let mut live = LiveScene::new("pointpipe odometry");
        live.max_points = SCREENSHOT_MAP_POINTS;
        live.apply(ViewerUpdate::Map(crop(map_points)));
        live.apply(ViewerUpdate::Frame(decimate_points(
            &crop(last_frame),
            FRAME_POINTS,
        )));
        for pose in poses {
            live.apply(ViewerUpdate::Pose(*pose));
        }
        // The frame lies on the map's surfaces: draw it first so that it wins
        // the depth ties.
        live.scene.layers.swap(live.map_layer, live.frame_layer);
        viewer::render_screenshot(&live.scene, SIZE.0, SIZE.1, out)?;
        eprintln!(
            "screenshot written to {} ({}x{}: map, trajectory, last frame in yellow)",
            out.display(),
            SIZE.0,
            SIZE.1
        );
        Ok(())
    }
}
