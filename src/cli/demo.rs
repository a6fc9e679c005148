//! `pointpipe demo`: simulate a drive, run the odometry on it, print the
//! evaluation against the simulated ground truth. Needs no data.

use std::ops::ControlFlow;
use std::path::PathBuf;

use pointpipe::eval;
use pointpipe::io;
use pointpipe::odometry::{Odometry, OdometryConfig, SequenceConfig, run_sequence};
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

/// Voxel size of the demo's merged map, metres (`odometry --map-voxel-size`'s default).
const DEMO_MAP_VOXEL_SIZE: f64 = 0.1;

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
    let mut odometry = Odometry::new(OdometryConfig::default())?;
    // The same loop and merged map as `pointpipe odometry` (default --map-voxel-size).
    let config = SequenceConfig {
        skip_bad: false,
        map_voxel_size: Some(DEMO_MAP_VOXEL_SIZE),
    };
    let progress = super::progress_bar(simulator.frames() as u64, "frames", ctx);
    let frames = (0..simulator.frames()).map(|i| Ok(simulator.frame(i)));
    let output = run_sequence(frames, &mut odometry, &config, |_| {
        progress.inc(1);
        ControlFlow::Continue(())
    })?;
    progress.finish_and_clear();
    if !ctx.quiet && !args.json {
        eprintln!("simulation took {:.1} s in all", output.read_seconds);
    }
    let results = output.results;
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
    if let Some(map) = &output.map {
        io::write(args.out.join("map.ply"), &map.to_cloud())?;
    }
    let report = RunReport {
        frames: results,
        process_seconds: output.process_seconds,
        read_seconds: output.read_seconds,
        evaluation: Some(evaluation),
        voxel_size: odometry.voxel_size(),
    };
    print_report(&report, args.json, Some(&poses_path));
    if !args.json {
        println!("map written to {}", args.out.join("map.ply").display());
    }
    Ok(())
}
