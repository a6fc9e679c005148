//! The `pointpipe` command line: parses arguments and calls the library.
//! Every subcommand lives in its own file under `src/cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// LiDAR frames in, registered and analysed point clouds out.
#[derive(Debug, Parser)]
#[command(name = "pointpipe", version, about, long_about = None)]
struct Cli {
    /// Worker threads for data parallelism (rayon pool size). Default: all cores.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). Default: warnings only.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print format, point count, bounds, attributes and CRS of point-cloud files.
    Info(cli::info::Args),
    /// Convert a point cloud between LAS, LAZ, PLY, PCD and KITTI .bin.
    Convert(cli::convert::Args),
    /// Build the k-d tree on a cloud and query every point (kNN, radius); timings.
    Neighbors(cli::neighbors::Args),
    /// Voxel-downsample a point cloud.
    Downsample(cli::downsample::Args),
    /// Estimate surface normals and curvature.
    Normals(cli::normals::Args),
    /// Register SOURCE to TARGET with ICP and print target_from_source.
    Register(cli::register::Args),
    /// LiDAR odometry over a sequence of frames: poses, map, evaluation.
    Odometry(cli::odometry::Args),
    /// Simulate a drive, run the odometry on it and print the evaluation (no data needed).
    Demo(cli::demo::Args),
    /// Write a simulated LiDAR sequence in KITTI layout.
    Simulate(cli::simulate::Args),
    /// Serve proximity layers over HTTP: kNN, radius and per-category counts (WGS84-exact).
    Serve(cli::serve::Args),
    /// Answer one kNN / radius / stats query on a layer file without a server (same JSON).
    Query(cli::query::Args),
    /// Batch-process a directory of LAS/LAZ tiles (outliers, voxel, normals).
    Batch(cli::batch::Args),
    /// Merge the shard reports of a batch output folder; fails if a tile failed or is missing.
    BatchReport(cli::batch_report::Args),
    /// Look at point clouds in a 3D window, or render a screenshot (feature `viewer`).
    #[cfg(feature = "viewer")]
    View(cli::view::Args),
    /// The 3D viewer: not in this build (rebuild with `--features viewer`).
    #[cfg(not(feature = "viewer"))]
    #[command(hide = true)]
    View {
        /// Whatever was given; the command only explains how to get it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let level = if cli.quiet {
        log::LevelFilter::Error
    } else {
        match cli.verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    };
    env_logger::Builder::new()
        .filter_level(level)
        .parse_default_env()
        .format_target(false)
        .init();
    if let Some(n) = cli.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
    {
        eprintln!("error: --threads {n}: {e}");
        return ExitCode::FAILURE;
    }
    let ctx = cli::Context { quiet: cli.quiet };
    let result = match cli.command {
        Command::Info(a) => cli::info::run(a, &ctx),
        Command::Convert(a) => cli::convert::run(a, &ctx),
        Command::Neighbors(a) => cli::neighbors::run(a, &ctx),
        Command::Downsample(a) => cli::downsample::run(a, &ctx),
        Command::Normals(a) => cli::normals::run(a, &ctx),
        Command::Register(a) => cli::register::run(a, &ctx),
        Command::Odometry(a) => cli::odometry::run(a, &ctx),
        Command::Demo(a) => cli::demo::run(a, &ctx),
        Command::Simulate(a) => cli::simulate::run(a, &ctx),
        Command::Batch(a) => cli::batch::run(a, &ctx),
        Command::BatchReport(a) => cli::batch_report::run(a, &ctx),
        Command::Serve(a) => cli::serve::run(a, &ctx),
        Command::Query(a) => cli::query::run(a, &ctx),
        #[cfg(feature = "viewer")]
        Command::View(a) => cli::view::run(a, &ctx),
        #[cfg(not(feature = "viewer"))]
        Command::View { .. } => Err(anyhow::anyhow!(
            "this pointpipe was built without the 3D viewer; rebuild it with \
             `cargo install pointpipe --features viewer` (or `cargo build --release --features viewer`)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause only when its text is
/// not already part of the message (`Error::Io` prints its OS error itself,
/// and anyhow's `{:#}` would print it a second time).
fn error_message(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Output to a closed pipe (`pointpipe info ... | head -2`) ends the process
/// quietly with SIGPIPE, as it does for every Unix tool; Rust ignores the
/// signal by default, so `println!` would panic instead ("failed printing to
/// stdout", exit status 101).
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists;
    // restoring a signal's default disposition has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
