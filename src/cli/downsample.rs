//! `pointpipe downsample IN OUT --voxel-size V [--mode centroid|first] [--json]`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use pointpipe::io;
use pointpipe::voxel::{VoxelConfig, VoxelMode, voxel_downsample};

use super::{Context, ms_since};

/// Voxel-grid downsampling of one point cloud.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input cloud (LAS, LAZ, PLY, PCD or KITTI .bin).
    input: PathBuf,
    /// Output cloud; the format follows the extension.
    output: PathBuf,
    /// Voxel edge length in metres (cloud units), > 0. Voxels are anchored at
    /// the coordinate origin (keys floor(p / voxel_size)).
    #[arg(long, value_name = "METRES", allow_hyphen_values = true)]
    voxel_size: f64,
    /// How a voxel's points are merged: their centroid (mean position,
    /// intensity, time) or the first point in input order.
    #[arg(long, value_enum, default_value_t = ModeArg::Centroid)]
    mode: ModeArg,
    /// Print a JSON report on stdout instead of a text summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pcd: super::PcdArgs,
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Centroid,
    First,
}

/// What `downsample` reports.
#[derive(Debug, serde::Serialize)]
struct Report {
    points_in: usize,
    points_out: usize,
    voxel_size: f64,
    /// Unit of voxel_size: the input CRS's linear unit (`m`, `ft`, `US ft`,
    /// `deg`), or `m` when the file states none.
    unit: String,
    mode: &'static str,
    read_ms: f64,
    voxel_ms: f64,
    write_ms: f64,
}

pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let config = VoxelConfig {
        voxel_size: args.voxel_size,
        mode: match args.mode {
            ModeArg::Centroid => VoxelMode::Centroid,
            ModeArg::First => VoxelMode::First,
        },
    };
    config.validate()?;
    io::ensure_not_input(&args.output, &[&args.input])?;

    let start = Instant::now();
    let cloud = io::read(&args.input)?;
    let read_ms = ms_since(start);

    let start = Instant::now();
    let down = voxel_downsample(&cloud, &config)?;
    let voxel_ms = ms_since(start);

    let start = Instant::now();
    io::write_with_pcd_options(&args.output, &down, &args.pcd.options())
        .with_context(|| format!("writing {}", args.output.display()))?;
    let write_ms = ms_since(start);

    let report = Report {
        points_in: cloud.len(),
        points_out: down.len(),
        voxel_size: config.voxel_size,
        unit: cloud
            .linear_unit()
            .map_or_else(|| "m".to_string(), |u| u.symbol()),
        mode: match config.mode {
            VoxelMode::Centroid => "centroid",
            VoxelMode::First => "first",
        },
        read_ms,
        voxel_ms,
        write_ms,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.quiet {
        println!(
            "{} -> {} points ({} voxels of {} {}); read {:.1} ms, voxel {:.2} ms, write {:.1} ms",
            report.points_in,
            report.points_out,
            report.mode,
            report.voxel_size,
            report.unit,
            read_ms,
            voxel_ms,
            write_ms
        );
    }
    Ok(())
}
