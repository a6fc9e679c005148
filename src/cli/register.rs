//! `pointpipe register SOURCE TARGET [--voxel-size V] [--method M]
//! [--max-correspondence-distance D] [--normal-radius R] [--kernel K]
//! [--init T.txt | --evaluate T.txt] [--gt T.txt] [--out ALIGNED] [--allow-unconverged] [--json]
//! [--view [--screenshot OUT.png]]`
//!
//! Exit status 1 when ICP did not converge (after printing the report),
//! unless `--allow-unconverged`. Fitness and inlier RMSE are computed on the
//! voxel-downsampled clouds, and the report says so.
//!
//! `--view` and `--screenshot` exist only in builds with the cargo feature `viewer`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use nalgebra::{Isometry3, Matrix4};
use pointpipe::icp::{
    IcpConfig, IcpMethod, IcpStage, RegistrationResult, RobustKernel, evaluate_registration,
    register,
};
use pointpipe::io;
use pointpipe::normals::{NeighborSearch, NormalConfig};
use pointpipe::prepare::IndexedCloud;
use pointpipe::voxel::{VoxelConfig, VoxelMode, voxel_downsample};

use super::{Context, ms_since};

/// ICP error metric on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Method {
    PointToPlane,
    PointToPoint,
}

/// Robust kernel on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kernel {
    None,
    Huber,
    Cauchy,
    GemanMcclure,
    Tukey,
}

/// Register SOURCE to TARGET: voxel-downsample both, build the target's
/// k-d tree and normals, run ICP, print `target_from_source`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Source cloud (LAS, LAZ, PLY, PCD or KITTI .bin).
    source: PathBuf,
    /// Target cloud.
    target: PathBuf,
    /// Voxel size for both clouds, metres (centroid mode).
    #[arg(
        long,
        value_name = "METRES",
        default_value_t = 0.25,
        allow_hyphen_values = true
    )]
    voxel_size: f64,
    /// ICP error metric.
    #[arg(long, value_enum, default_value = "point-to-plane")]
    method: Method,
    /// Largest source–target distance of a correspondence, metres.
    #[arg(
        long,
        value_name = "METRES",
        default_value_t = 1.0,
        allow_hyphen_values = true
    )]
    max_correspondence_distance: f64,
    /// Radius of the target normal estimation (at most 30 neighbours), metres.
    #[arg(
        long,
        value_name = "METRES",
        default_value_t = 1.0,
        allow_hyphen_values = true
    )]
    normal_radius: f64,
    /// Robust kernel.
    #[arg(long, value_enum, default_value = "huber")]
    kernel: Kernel,
    /// Kernel scale, metres.
    #[arg(
        long,
        value_name = "METRES",
        default_value_t = 0.1,
        allow_hyphen_values = true
    )]
    kernel_scale: f64,
    /// Maximum number of ICP iterations, the coarse stage (see
    /// --coarse-stride) and the stage on all points together.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 30,
        allow_hyphen_values = true
    )]
    max_iterations: usize,
    /// Coarse-to-fine: a first ICP stage on every N-th source point, with
    /// tolerances ×10 and sharing --max-iterations, before the stage on all
    /// points (1 = all points throughout).
    #[arg(long, value_name = "N", default_value_t = 4)]
    coarse_stride: usize,
    /// Initial target_from_source, a text file with a 4×4 matrix or its 3×4
    /// block [R | t] (row-major). Default: identity.
    #[arg(long, value_name = "T.txt")]
    init: Option<PathBuf>,
    /// Score this target_from_source (4×4 or 3×4 text) without moving it:
    /// fitness, inlier RMSE and degeneracy at exactly this transform, no ICP.
    #[arg(long, value_name = "T.txt", conflicts_with = "init")]
    evaluate: Option<PathBuf>,
    /// Exit with status 0 even when ICP did not converge (default: the report
    /// is printed and the exit status is 1).
    #[arg(long)]
    allow_unconverged: bool,
    /// Reference target_from_source (4×4 text) to report the error against.
    #[arg(long, value_name = "T.txt")]
    gt: Option<PathBuf>,
    /// Write the full-resolution source, transformed into the target frame.
    #[arg(long, value_name = "ALIGNED")]
    out: Option<PathBuf>,
    #[command(flatten)]
    pcd: super::PcdArgs,
    /// Print a JSON report on stdout instead of a text summary.
    #[arg(long)]
    json: bool,
    /// After registering, show target (grey), source before ICP (red) and after
    /// ICP (green) in a 3D window; B toggles before/after (feature `viewer`).
    #[cfg(feature = "viewer")]
    #[arg(long)]
    view: bool,
    /// With --view: render before (left half) and after (right half) side by side
    /// into this PNG and exit instead of opening a window (headless:
    /// `xvfb-run -a -s '-screen 0 1280x800x24' pointpipe register ...`).
    #[cfg(feature = "viewer")]
    #[arg(long, value_name = "OUT.png", requires = "view")]
    screenshot: Option<PathBuf>,
}

/// Per-stage wall-clock times, milliseconds.
#[derive(Debug, serde::Serialize)]
struct Timings {
    read: f64,
    downsample: f64,
    tree: f64,
    normals: f64,
    icp: f64,
}

/// What `register` reports.
#[derive(Debug, serde::Serialize)]
struct Report {
    /// "register" (ICP ran) or "evaluate" (`--evaluate`: the given
    /// transform scored, not moved).
    mode: &'static str,
    /// 4×4 row-major.
    target_from_source: [[f64; 4]; 4],
    converged: bool,
    iterations: usize,
    /// Matched source points over `source_points` (the downsampled source).
    fitness: f64,
    /// RMS distance of the matched pairs, metres, between the
    /// voxel-downsampled clouds (voxel centroids), not the input points.
    inlier_rmse_m: f64,
    /// What `inlier_rmse_m` and `fitness` are computed on.
    statistics_on: String,
    num_inliers: usize,
    degenerate: bool,
    degeneracy_ratio: f64,
    weakest_direction: [f64; 6],
    /// Source points used (after the voxel grid).
    source_points: usize,
    /// Target points used (after the voxel grid).
    target_points: usize,
    /// Source points read.
    source_points_in: usize,
    /// Target points read.
    target_points_in: usize,
    voxel_size_m: f64,
    /// Unit of every length in this report, the `_m` fields included: the
    /// target CRS's linear unit (`m`, `ft`, `US ft`, `deg`), `m` when it
    /// states none.
    length_unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_error_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    translation_error_m: Option<f64>,
    timings_ms: Timings,
}

fn rows(m: &Matrix4<f64>) -> [[f64; 4]; 4] {
    std::array::from_fn(|i| std::array::from_fn(|j| m[(i, j)]))
}

pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let config = IcpConfig {
        method: match args.method {
            Method::PointToPlane => IcpMethod::PointToPlane,
            Method::PointToPoint => IcpMethod::PointToPoint,
        },
        max_correspondence_distance: args.max_correspondence_distance,
        kernel: match args.kernel {
            Kernel::None => RobustKernel::None,
            Kernel::Huber => RobustKernel::Huber,
            Kernel::Cauchy => RobustKernel::Cauchy,
            Kernel::GemanMcclure => RobustKernel::GemanMcClure,
            Kernel::Tukey => RobustKernel::Tukey,
        },
        kernel_scale: args.kernel_scale,
        max_iterations: args.max_iterations,
        coarse_stages: IcpStage::strided_schedule(args.coarse_stride),
        ..IcpConfig::default()
    };
    config.validate()?;
    let voxel = VoxelConfig {
        voxel_size: args.voxel_size,
        mode: VoxelMode::Centroid,
    };
    voxel.validate()?;
    let normal_config = NormalConfig {
        search: NeighborSearch::Radius {
            radius: args.normal_radius,
            max_nn: Some(30),
        },
        min_neighbors: 3,
        viewpoint: None,
    };
    normal_config.validate()?;
    if let Some(out) = &args.out {
        io::ensure_not_input(out, &[&args.source, &args.target])?;
    }
    let initial_guess = match (&args.init, &args.evaluate) {
        (Some(path), _) | (None, Some(path)) => io::poses::read_matrix4(path)?,
        (None, None) => Isometry3::identity(),
    };
    let reference = args.gt.as_ref().map(io::poses::read_matrix4).transpose()?;
    #[cfg(feature = "viewer")]
    if args.view && args.screenshot.is_none() {
        // Fail before reading and registering.
        pointpipe::viewer::check_display()?;
    }

    let start = Instant::now();
    let source_full = io::read(&args.source)?;
    let target_full = io::read(&args.target)?;
    let read = ms_since(start);

    let start = Instant::now();
    let source = voxel_downsample(&source_full, &voxel)?;
    let target = voxel_downsample(&target_full, &voxel)?;
    let downsample = ms_since(start);
    check_enough_points(
        &args,
        (source_full.len(), source.len()),
        (target_full.len(), target.len()),
        &target_full,
    )?;

    let start = Instant::now();
    let mut indexed = IndexedCloud::build(target)?;
    let tree_ms = ms_since(start);

    let start = Instant::now();
    // Point-to-point does not use them, but its degeneracy check does
    // (a corridor is only visible through the target's planes).
    indexed.estimate_normals(&normal_config)?;
    let normals = ms_since(start);
    let (target, tree) = (indexed.cloud(), indexed.tree());

    let start = Instant::now();
    let result = if args.evaluate.is_some() {
        evaluate_registration(&source.points, target, tree, &initial_guess, &config)?
    } else {
        register(&source.points, target, tree, &initial_guess, &config)?
    };
    let icp = ms_since(start);

    if let Some(out) = &args.out {
        let aligned = source_full.transformed(&result.target_from_source);
        io::write_with_pcd_options(out, &aligned, &args.pcd.options())
            .with_context(|| format!("writing {}", out.display()))?;
    }

    let unit = length_unit(&target_full);
    let errors = reference.map(|truth| {
        let e = result.target_from_source * truth.inverse();
        (e.rotation.angle().to_degrees(), e.translation.vector.norm())
    });
    let report = make_report(
        &result,
        if args.evaluate.is_some() {
            "evaluate"
        } else {
            "register"
        },
        [
            source.len(),
            target.len(),
            source_full.len(),
            target_full.len(),
        ],
        (args.voxel_size, unit),
        errors,
        Timings {
            read,
            downsample,
            tree: tree_ms,
            normals,
            icp,
        },
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report, ctx);
    }
    if args.evaluate.is_none() && !result.converged && !args.allow_unconverged {
        anyhow::bail!(
            "ICP did not converge in {} iterations (the report above shows the last estimate); \
             raise --max-iterations, start closer with --init, or accept it with --allow-unconverged",
            result.iterations
        );
    }
    #[cfg(feature = "viewer")]
    if args.view {
        let scene = view::alignment_scene(
            &args.source,
            &args.target,
            &source_full,
            &target_full,
            &initial_guess,
            &result.target_from_source,
        );
        match &args.screenshot {
            Some(out) => view::screenshot_before_after(scene, out)?,
            None => {
                pointpipe::viewer::show(scene, 1280, 800)?;
            }
        }
    }
    Ok(())
}

/// `register --view`: the alignment as a before/after scene.
#[cfg(feature = "viewer")]
pub(crate) mod view {
    use std::path::Path;

    use anyhow::Context as _;
    use nalgebra::{Isometry3, Point3};
    use pointpipe::PointCloud;
    use pointpipe::viewer::{self, Layer, LayerRole, Scene, color};

    /// Size of the whole screenshot (two halves side by side), pixels.
    const SCREENSHOT_SIZE: (u32, u32) = (1280, 800);

    fn file_name(path: &Path) -> String {
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Target grey (always), source at `initial_guess` red ([`LayerRole::Before`]),
    /// source at `target_from_source` green ([`LayerRole::After`]); all in the
    /// target frame, full resolution decimated for display.
    pub fn alignment_scene(
        source_path: &Path,
        target_path: &Path,
        source: &PointCloud,
        target: &PointCloud,
        initial_guess: &Isometry3<f64>,
        target_from_source: &Isometry3<f64>,
    ) -> Scene {
        let (source_name, target_name) = (file_name(source_path), file_name(target_path));
        let before = source.transformed(initial_guess);
        let after = source.transformed(target_from_source);
        // A few stray far returns would shrink the data to a dot: show only
        // points inside the target's 1st-99th percentile box, grown by 20 %.
        let shown = display_box(&target.points);
        let crop = |points: &[Point3<f64>]| -> Vec<Point3<f64>> {
            match &shown {
                Some((lo, hi)) => points
                    .iter()
                    .filter(|p| (0..3).all(|k| p[k] >= lo[k] && p[k] <= hi[k]))
                    .copied()
                    .collect(),
                None => points.to_vec(),
            }
        };
        let (target, before, after) = (
            crop(&target.points),
            crop(&before.points),
            crop(&after.points),
        );
        let max = viewer::DEFAULT_MAX_POINTS;
        let mut scene = Scene {
            title: format!(
                "pointpipe register: {source_name} (red before, green after ICP) -> {target_name} (grey), B toggles"
            ),
            ..Scene::default()
        };
        scene.add_layer(Layer::from_points(target_name, &target, color::GREY, max));
        scene.add_layer(
            Layer::from_points(format!("{source_name} before"), &before, color::RED, max)
                .with_role(LayerRole::Before),
        );
        scene.add_layer(
            Layer::from_points(format!("{source_name} after"), &after, color::GREEN, max)
                .with_role(LayerRole::After),
        );
        scene
    }

    /// The 1st–99th percentile box of `points` per axis, grown by 20 % of its
    /// size on each side; `None` for an empty cloud.
    pub(crate) fn display_box(points: &[Point3<f64>]) -> Option<(Point3<f64>, Point3<f64>)> {
        let mut lo = Point3::origin();
        let mut hi = Point3::origin();
        let mut values = Vec::with_capacity(points.len());
        for k in 0..3 {
            values.clear();
            values.extend(points.iter().map(|p| p[k]));
            let (a, b) = color::percentile_range(&mut values, 0.01, 0.99)?;
            let margin = 0.2 * (b - a);
            lo[k] = a - margin;
            hi[k] = b + margin;
        }
        Some((lo, hi))
    }

    /// Renders `scene` before (left) and after (right) with the same camera
    /// and writes both halves, split by a white line, to `out`.
    pub fn screenshot_before_after(mut scene: Scene, out: &Path) -> anyhow::Result<()> {
        let (width, height) = SCREENSHOT_SIZE;
        let half = width / 2;
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let mut halves = Vec::with_capacity(2);
        for (show_after, name) in [(false, "before.png"), (true, "after.png")] {
            scene.show_after = show_after;
            let path = dir.path().join(name);
            // kiss3d keeps its GPU context in thread-locals, bound to the
            // first device: a second render needs a fresh thread.
            let scene = &scene;
            let path_ref = &path;
            std::thread::scope(|s| {
                s.spawn(move || viewer::render_screenshot(scene, half, height, path_ref))
                    .join()
                    .map_err(|_| anyhow::anyhow!("the render thread panicked"))
            })??;
            let image = image::open(&path)
                .with_context(|| format!("reading back {}", path.display()))?
                .to_rgb8();
            halves.push(image);
        }
        let mut combined = image::RgbImage::new(half * 2, height);
        for (i, image) in halves.iter().enumerate() {
            image::imageops::replace(&mut combined, image, i64::from(half) * i as i64, 0);
        }
        for y in 0..height {
            combined.put_pixel(half, y, image::Rgb([255, 255, 255]));
        }
        combined
            .save(out)
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!(
            "screenshot written to {} ({}x{height}: before ICP left, after right)",
            out.display(),
            half * 2
        );
        Ok(())
    }
}

/// Fewest points either cloud must keep after the voxel grid: below it a
/// "fitness 1.000" says nothing (the bunny at the default 0.25 m voxel size
/// kept 4 points per scan).
const MIN_REGISTRATION_POINTS: usize = 30;

/// Refuses a voxel size that leaves too few points to register, suggesting
/// one from the target's extent; warns when the grid keeps under 1 % of a
/// cloud.
fn check_enough_points(
    args: &Args,
    source: (usize, usize),
    target: (usize, usize),
    target_full: &pointpipe::PointCloud,
) -> anyhow::Result<()> {
    let extent = target_full.bounds().map_or(0.0, |(lo, hi)| (hi - lo).max());
    let unit = length_unit(target_full);
    if source.1 < MIN_REGISTRATION_POINTS || target.1 < MIN_REGISTRATION_POINTS {
        anyhow::bail!(
            "--voxel-size {} leaves {} source and {} target points (of {} and {}): too few to \
             register (at least {MIN_REGISTRATION_POINTS}); the target spans {extent:.3} {unit}, \
             try --voxel-size {:.3e}",
            args.voxel_size,
            source.1,
            target.1,
            source.0,
            target.0,
            extent / 100.0
        );
    }
    for (name, (read, kept)) in [("source", source), ("target", target)] {
        if kept * 100 < read {
            log::warn!(
                "the {} {unit} voxel grid keeps {kept} of {read} {name} points: fitness and inlier RMSE \
                 describe the downsampled clouds",
                args.voxel_size
            );
        }
    }
    Ok(())
}

fn make_report(
    r: &RegistrationResult,
    mode: &'static str,
    [
        source_points,
        target_points,
        source_points_in,
        target_points_in,
    ]: [usize; 4],
    (voxel_size_m, length_unit): (f64, String),
    errors: Option<(f64, f64)>,
    timings_ms: Timings,
) -> Report {
    Report {
        mode,
        target_from_source: rows(&r.target_from_source.to_homogeneous()),
        converged: r.converged,
        iterations: r.iterations,
        fitness: r.fitness,
        inlier_rmse_m: r.inlier_rmse,
        statistics_on: format!(
            "the clouds after the {voxel_size_m} {length_unit} voxel grid (voxel centroids): \
             {source_points} source and {target_points} target points"
        ),
        num_inliers: r.num_inliers,
        degenerate: r.degenerate,
        degeneracy_ratio: r.degeneracy_ratio,
        weakest_direction: std::array::from_fn(|i| r.weakest_direction[i]),
        source_points,
        target_points,
        source_points_in,
        target_points_in,
        voxel_size_m,
        length_unit,
        rotation_error_deg: errors.map(|e| e.0),
        translation_error_m: errors.map(|e| e.1),
        timings_ms,
    }
}

/// The cloud's CRS linear unit symbol (`m`, `ft`, `US ft`, `deg`), `m`
/// when it states none (pointpipe's defaults are metres).
fn length_unit(cloud: &pointpipe::PointCloud) -> String {
    cloud
        .linear_unit()
        .map_or_else(|| "m".to_string(), |u| u.symbol())
}

fn print_summary(r: &Report, ctx: &Context) {
    let unit = &r.length_unit;
    println!("target_from_source:");
    for row in &r.target_from_source {
        println!(
            "  {:>12.6} {:>12.6} {:>12.6} {:>12.6}",
            row[0], row[1], row[2], row[3]
        );
    }
    if r.mode == "evaluate" {
        println!("evaluated (not moved): the given transform, no ICP");
    } else {
        println!(
            "converged: {} after {} iterations",
            r.converged, r.iterations
        );
    }
    println!(
        "fitness {:.3} ({} of {} source points matched), inlier RMSE {:.4} {unit}, \
         both between the downsampled clouds ({} {unit} voxels; {} of {} source, {} of {} target points)",
        r.fitness,
        r.num_inliers,
        r.source_points,
        r.inlier_rmse_m,
        r.voxel_size_m,
        r.source_points,
        r.source_points_in,
        r.target_points,
        r.target_points_in
    );
    if r.degenerate {
        println!(
            "WARNING: degenerate geometry (ratio {:.2e}); weakest direction (rx ry rz tx ty tz) {:?}",
            r.degeneracy_ratio, r.weakest_direction
        );
    }
    if let (Some(rot), Some(trans)) = (r.rotation_error_deg, r.translation_error_m) {
        if unit == "m" {
            println!("error vs --gt: {rot:.4}° {:.2} mm", trans * 1e3);
        } else {
            println!("error vs --gt: {rot:.4}° {trans:.4} {unit}");
        }
    }
    if !ctx.quiet {
        let t = &r.timings_ms;
        println!(
            "timings (ms): read {:.1}, downsample {:.1}, tree {:.1}, normals {:.1}, icp {:.1}",
            t.read, t.downsample, t.tree, t.normals, t.icp
        );
    }
}
