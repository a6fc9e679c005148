//! Prints per-frame ICP statistics of the odometry on a sequence
//! (development aid): `cargo run --release --example odometry_debug -- DIR [voxel_size]`.
use pointpipe::io;
use pointpipe::odometry::{OdometryConfig, Pipeline, sequence};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let mut config = OdometryConfig::default();
    if let Some(v) = args.get(2) {
        config.voxel_size = Some(v.parse()?);
    }
    let mut pipeline = Pipeline::new(config)?;
    for path in sequence::list_frames(&dir)? {
        let frame = io::read(&path)?;
        let r = pipeline.process(&frame);
        if let Some(reg) = &r.registration {
            println!(
                "{:3} src {:6} map {:7} sigma {:.3} it {:2} conv {} fit {:.3} rmse {:.4} t {:?}",
                r.index,
                r.source_points,
                r.map_points,
                r.sigma,
                reg.iterations,
                reg.converged,
                reg.fitness,
                reg.inlier_rmse,
                r.world_from_sensor.translation.vector.as_slice()
            );
        }
    }
    Ok(())
}
