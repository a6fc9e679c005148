//! Development aid: per-frame ICP statistics of the odometry on a sequence.
//!
//! `cargo run --release --example odometry_debug -- INPUT [CONFIG.toml] [GT_KITTI]`
use pointpipe::io::{self, poses};
use pointpipe::odometry::{Odometry, OdometryConfig, sequence};

fn main() -> anyhow::Result<()> {
    env_logger::init();
    let args: Vec<String> = std::env::args().collect();
    let input = std::path::PathBuf::from(&args[1]);
    let config = match args.get(2) {
        Some(path) => OdometryConfig::from_toml(&std::fs::read_to_string(path)?)?,
        None => OdometryConfig::default(),
    };
    let gt = match args.get(3) {
        Some(path) => Some(poses::read_kitti_poses(path)?),
        None => None,
    };
    let mut odometry = Odometry::new(config)?;
    for path in sequence::list_frames(&input)? {
        let frame = io::read(&path)?;
        let r = odometry.process(&frame);
        let step_error = match (&gt, r.index) {
            (Some(gt), i) if i > 0 => {
                let est = odometry.poses()[i - 1].inverse() * r.world_from_sensor;
                let refd = gt[i - 1].inverse() * gt[i];
                let e = refd.inverse() * est;
                format!(
                    "step err {:.3} m {:.3} deg",
                    e.translation.vector.norm(),
                    e.rotation.angle().to_degrees()
                )
            }
            _ => String::new(),
        };
        if let Some(reg) = &r.registration {
            println!(
                "{:3} src {:5} map {:7} sigma {:.3} it {:2} conv {} fit {:.3} rmse {:.4} deg {} {} {:?} {:.0}ms",
                r.index,
                r.source_points,
                r.map_points,
                r.sigma,
                reg.iterations,
                reg.converged as u8,
                reg.fitness,
                reg.inlier_rmse,
                reg.degenerate as u8,
                step_error,
                r.status,
                r.timings.total()
            );
        }
    }
    Ok(())
}
