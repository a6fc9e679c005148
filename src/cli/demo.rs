//! `pointpipe demo`: simulate a drive, run the odometry on it, print the
//! evaluation against the simulated ground truth. Needs no data.

use std::path::PathBuf;
use std::time::Instant;

use pointpipe::eval;
use pointpipe::io;
use pointpipe::odometry::{MapBuilder, OdometryConfig, Pipeline};
use pointpipe::simulate::{SimulationConfig, Simulator};

use super::Context;
use super::odometry::{PoseFormat, RunReport, print_report, write_poses};

/// Arguments of `pointpipe demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the outputs: poses.txt (estimated, KITTI), gt_poses.txt and map.ply.
    #[arg(long, value_name = "DIR", default_value = "pointpipe-demo")]
    pub out: PathBuf,
    /// Seed of the simulated scene and sensor noise.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Print one JSON object with the results instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let sim_config = SimulationConfig {
        seed: args.seed,
        ..SimulationConfig::default()
    };
    if !ctx.quiet && !args.json {
        eprintln!(
            "simulating {} frames of a {}-beam LiDAR along a {:.0} m drive...",
            sim_config.frames, sim_config.lidar.beams, sim_config.drive_length
        );
    }
    let simulator = Simulator::new(&sim_config)?;
    let mut pipeline = Pipeline::new(OdometryConfig::default())?;
    let mut map = MapBuilder::new(0.1);
    let progress = super::progress_bar(simulator.frames() as u64, "frames", ctx);
    let mut results = Vec::with_capacity(simulator.frames());
    let (mut process_seconds, mut simulate_seconds) = (0.0, 0.0);
    for i in 0..simulator.frames() {
        let start = Instant::now();
        let frame = simulator.frame(i);
        simulate_seconds += start.elapsed().as_secs_f64();
        let result = pipeline.process(&frame);
        process_seconds += result.timings.total() / 1e3;
        map.add(&frame.points, &result.world_from_sensor);
        results.push(result);
        progress.inc(1);
    }
    progress.finish_and_clear();
    if !ctx.quiet && !args.json {
        eprintln!("simulation took {simulate_seconds:.1} s in all");
    }
    let poses: Vec<_> = results.iter().map(|r| r.world_from_sensor).collect();
    let times: Vec<f64> = (0..simulator.frames()).map(|i| simulator.time(i)).collect();
    // The estimate's world frame is the first sensor frame: express the ground truth there too.
    let first_inv = simulator.world_from_sensor(0).inverse();
    let gt: Vec<_> = (0..simulator.frames())
        .map(|i| first_inv * simulator.world_from_sensor(i))
        .collect();
    let evaluation = eval::evaluate(&poses, &gt)?;
    std::fs::create_dir_all(&args.out).map_err(|e| pointpipe::Error::io(&args.out, e))?;
    let poses_path = args.out.join("poses.txt");
    write_poses(&poses_path, PoseFormat::Kitti, &poses, Some(&times))?;
    write_poses(
        &args.out.join("gt_poses.txt"),
        PoseFormat::Kitti,
        &gt,
        Some(&times),
    )?;
    io::write(args.out.join("map.ply"), &map.to_cloud())?;
    let report = RunReport {
        frames: results,
        process_seconds,
        read_seconds: 0.0,
        evaluation: Some(evaluation),
        voxel_size: pipeline.voxel_size(),
    };
    print_report(&report, args.json, Some(&poses_path));
    if !args.json {
        println!("map written to {}", args.out.join("map.ply").display());
    }
    Ok(())
}
