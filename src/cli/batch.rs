//! `pointpipe batch`: a folder of LAS/LAZ tiles in, downsampled tiles with
//! normals out (see [`pointpipe::batch`]).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pointpipe::batch::report::{ShardOptions, plan_folder, run_shard};
use pointpipe::batch::shard::{OverlapConfig, ShardEnv, ShardSpec, resolve_shard};
use pointpipe::batch::{BatchConfig, BatchProgress, FileReport, FileStatus, OutputFormat};
use pointpipe::filter::OutlierConfig;
use pointpipe::normals::NormalConfig;
use pointpipe::voxel::{VoxelConfig, VoxelMode};

use super::Context;

/// Voxel merge mode on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// Mean position of the voxel's points.
    Centroid,
    /// The voxel's first point.
    First,
}

/// Output container on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Container {
    /// Uncompressed LAS.
    Las,
    /// LAZ.
    Laz,
    /// Binary PLY.
    Ply,
}

/// Arguments of `pointpipe batch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of .las/.laz tiles (never modified).
    pub input_dir: PathBuf,
    /// Output folder (created; must differ from INPUT_DIR).
    pub output_dir: PathBuf,
    /// Voxel edge in metres (CRS units); 0 disables downsampling.
    #[arg(
        long,
        default_value_t = 0.1,
        value_name = "V",
        allow_hyphen_values = true
    )]
    pub voxel_size: f64,
    /// How a voxel's points become one point.
    #[arg(long, value_enum, default_value_t = Mode::Centroid)]
    pub voxel_mode: Mode,
    /// Normal search radius in metres (CRS units).
    #[arg(
        long,
        default_value_t = 0.5,
        value_name = "R",
        allow_hyphen_values = true
    )]
    pub normal_radius: f64,
    /// Most neighbours used per normal.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub max_nn: usize,
    /// Halo width in metres borrowed from neighbouring tiles; default: the normal radius; 0 disables.
    #[arg(long, value_name = "H", allow_hyphen_values = true)]
    pub halo: Option<f64>,
    /// Statistical outlier removal as `k,std_ratio` (e.g. `8,2.0`).
    #[arg(long, value_name = "K,STD_RATIO", value_parser = parse_outliers, allow_hyphen_values = true)]
    pub outlier_removal: Option<OutlierConfig>,
    /// Output format; default: the input's (las stays las, laz stays laz).
    #[arg(long, value_enum)]
    pub format: Option<Container>,
    /// Files processed at once; default: the number of cores.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Memory limit for the files in flight, in bytes with an optional
    /// K/M/G/T suffix (powers of 1024), e.g. `4G`: a file starts only when
    /// its estimate (from its header's point count) fits beside the files
    /// already running; a file bigger than the limit runs alone.
    #[arg(long, value_name = "BYTES", value_parser = parse_memory)]
    pub max_memory: Option<u64>,
    /// Also process sub-folders (mirrored in OUTPUT_DIR).
    #[arg(long)]
    pub recursive: bool,
    /// Redo outputs that are already complete and up to date (an output made
    /// with other parameters is always redone: each output has a hidden
    /// `.NAME.pointpipe-params` file beside it recording them).
    #[arg(long)]
    pub force: bool,
    /// Print the summary (or with --plan, the plan) as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print the plan for N shards (tiles by name, balanced by header point
    /// count, longest first) and exit without processing anything.
    #[arg(long, value_name = "N", conflicts_with_all = ["shard", "shards"])]
    pub plan: Option<usize>,
    /// Process only shard I of N (0-based), e.g. `--shard 2/8`. Without it,
    /// the shard comes from SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN)
    /// and SLURM_ARRAY_TASK_COUNT, else from JOB_COMPLETION_INDEX with
    /// --shards N; with none of them the whole folder is one shard (0/1).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<ShardSpec>,
    /// Number of shards, for JOB_COMPLETION_INDEX (Kubernetes Indexed Job:
    /// its `completions`); checked against SLURM_ARRAY_TASK_COUNT / --shard.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
}

fn parse_shard(s: &str) -> Result<ShardSpec, String> {
    s.parse().map_err(|e: pointpipe::Error| e.to_string())
}

fn parse_memory(s: &str) -> Result<u64, String> {
    pointpipe::batch::memory::parse_byte_size(s).map_err(|e| e.to_string())
}

fn parse_outliers(s: &str) -> Result<OutlierConfig, String> {
    let (k, ratio) = s
        .split_once(',')
        .ok_or_else(|| format!("expected k,std_ratio, got '{s}'"))?;
    let config = OutlierConfig {
        k: k.trim().parse().map_err(|e| format!("k '{k}': {e}"))?,
        std_ratio: ratio
            .trim()
            .parse()
            .map_err(|e| format!("std_ratio '{ratio}': {e}"))?,
    };
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

impl Args {
    fn config(&self) -> BatchConfig {
        let defaults = BatchConfig::default();
        BatchConfig {
            voxel: (self.voxel_size != 0.0).then_some(VoxelConfig {
                voxel_size: self.voxel_size,
                mode: match self.voxel_mode {
                    Mode::Centroid => VoxelMode::Centroid,
                    Mode::First => VoxelMode::First,
                },
            }),
            normals: NormalConfig::aerial(self.normal_radius, self.max_nn),
            halo: self.halo,
            outliers: self.outlier_removal,
            format: match self.format {
                None => OutputFormat::Same,
                Some(Container::Las) => OutputFormat::Las,
                Some(Container::Laz) => OutputFormat::Laz,
                Some(Container::Ply) => OutputFormat::Ply,
            },
            jobs: self.jobs.unwrap_or(defaults.jobs),
            recursive: self.recursive,
            force: self.force,
            max_memory: self.max_memory,
        }
    }
}

/// Progress bars over files and points.
struct Bars {
    files: ProgressBar,
    points: ProgressBar,
}

impl Bars {
    fn new(visible: bool) -> Bars {
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = |template: &str| {
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        let files = multi.add(ProgressBar::new(0));
        files.set_style(style(
            "files  [{bar:40}] {pos}/{len} {elapsed_precise} {msg}",
        ));
        let points = multi.add(ProgressBar::new(0));
        points.set_style(style(
            "points [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
        ));
        Bars { files, points }
    }
}

impl BatchProgress for Bars {
    fn started(&self, files: usize, points: u64) {
        self.files.set_length(files as u64);
        self.points.set_length(points);
    }

    fn file_finished(&self, report: &FileReport, header_points: u64) {
        self.files.set_message(
            report
                .input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        self.files.inc(1);
        self.points.inc(header_points);
    }
}

/// Runs `pointpipe batch`; fails (non-zero exit) when any file failed.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let config = args.config();
    let context = || {
        format!(
            "batch {} -> {}",
            args.input_dir.display(),
            args.output_dir.display()
        )
    };
    if let Some(n) = args.plan {
        let plan = plan_folder(
            &args.input_dir,
            &args.output_dir,
            &config,
            n,
            &OverlapConfig::default(),
        )
        .with_context(context)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            println!(
                "plan {}: {} tiles in {} shards (imbalance {:.3})",
                plan.plan.fingerprint,
                plan.plan.tiles.len(),
                n,
                plan.plan.imbalance()
            );
            for s in &plan.plan.shards {
                println!("shard {}: {} tiles, {} points", s.index, s.tiles, s.points);
            }
            for t in &plan.plan.tiles {
                println!("{}\t{}\t{}", t.shard, t.points, t.name);
            }
        }
        return Ok(());
    }
    let (shard, source) = resolve_shard(args.shard, args.shards, &ShardEnv::from_process())?;
    let options = ShardOptions {
        shard,
        source,
        ..Default::default()
    };
    let bars = Bars::new(!ctx.quiet && std::io::stderr().is_terminal());
    let run = run_shard(&args.input_dir, &args.output_dir, &config, &options, &bars)
        .with_context(context)?;
    let summary = run.summary;
    bars.files.finish_and_clear();
    bars.points.finish_and_clear();
    if run.plan.plan.tiles.is_empty() {
        anyhow::bail!(
            "{}: no .las or .laz files to process{}",
            args.input_dir.display(),
            if args.recursive {
                ""
            } else {
                " (--recursive also searches sub-folders)"
            }
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        for f in summary
            .files
            .iter()
            .filter(|f| f.status == FileStatus::Failed)
        {
            eprintln!("failed: {}", f.error.as_deref().unwrap_or("unknown error"));
        }
    }
    if !args.json && !ctx.quiet {
        if shard.count > 1 {
            println!(
                "shard {shard} ({} of {} tiles; report {})",
                summary.files.len(),
                run.plan.plan.tiles.len(),
                run.report_path.display()
            );
        }
        println!(
            "{} done, {} skipped, {} failed; {} points in, {} out; {:.2} s",
            summary.done,
            summary.skipped,
            summary.failed,
            summary.points_in,
            summary.points_out,
            summary.seconds
        );
    }
    if summary.failed > 0 {
        anyhow::bail!("{} of {} files failed", summary.failed, summary.files.len());
    }
    Ok(())
}
