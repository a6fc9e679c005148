//! `pointpipe simulate OUT_DIR --frames N [--seed S] [--force]`: a simulated drive in
//! KITTI layout (`velodyne/NNNNNN.bin`, `poses.txt`, `times.txt`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use pointpipe::simulate::{SimulationConfig, Simulator};

use super::{Context, ms_since};

/// Arguments of `pointpipe simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory (created if missing): velodyne/NNNNNN.bin, poses.txt
    /// (KITTI 3x4 world_from_sensor per line, the world being the first
    /// sensor frame as in KITTI), times.txt (seconds).
    pub out_dir: PathBuf,
    /// Number of frames (10 Hz, ~1 m apart). The street is 200 m long, or
    /// longer when the frames need it.
    #[arg(long, default_value_t = 200)]
    pub frames: usize,
    /// Seed of the scene and of the range noise.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write into an OUT_DIR that already holds a simulation: its frames
    /// (velodyne/*.bin), poses.txt and times.txt are removed first, so no
    /// stale frame of a longer earlier run is left behind.
    #[arg(long)]
    pub force: bool,
}

/// The files of an earlier simulation in `out_dir`: velodyne/*.bin,
/// poses.txt, times.txt.
fn earlier_outputs(out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = ["poses.txt", "times.txt"]
        .iter()
        .map(|name| out_dir.join(name))
        .filter(|p| p.exists())
        .collect();
    let velodyne = out_dir.join("velodyne");
    if velodyne.is_dir() {
        for entry in std::fs::read_dir(&velodyne)
            .with_context(|| format!("cannot list {}", velodyne.display()))?
        {
            let path = entry
                .with_context(|| format!("cannot list {}", velodyne.display()))?
                .path();
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut config = SimulationConfig {
        frames: args.frames,
        seed: args.seed,
        ..Default::default()
    };
    config.drive_length = config.drive_length.max(config.drive_distance() + 1.0);
    let simulator = Simulator::new(&config)?;

    let earlier = earlier_outputs(&args.out_dir)?;
    if !earlier.is_empty() {
        if !args.force {
            anyhow::bail!(
                "{} already holds a simulation ({} files: frames, poses.txt, times.txt); \
                 choose another folder or pass --force to replace it",
                args.out_dir.display(),
                earlier.len()
            );
        }
        for path in &earlier {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    let velodyne = args.out_dir.join("velodyne");
    std::fs::create_dir_all(&velodyne)
        .with_context(|| format!("cannot create {}", velodyne.display()))?;
    let progress = if ctx.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(config.frames as u64)
    };
    let mut total_points = 0usize;
    for index in 0..simulator.frames() {
        let cloud = simulator.frame(index);
        total_points += cloud.len();
        pointpipe::io::write(velodyne.join(format!("{index:06}.bin")), &cloud)?;
        progress.inc(1);
    }
    progress.finish_and_clear();

    // As in KITTI, the world frame of poses.txt is the first sensor frame
    // (line 1 is the identity), which is also the odometry's world frame.
    let first_from_world = simulator.world_from_sensor(0).inverse();
    let poses: Vec<_> = (0..simulator.frames())
        .map(|i| first_from_world * simulator.world_from_sensor(i))
        .collect();
    pointpipe::io::poses::write_kitti_poses(args.out_dir.join("poses.txt"), &poses)?;
    write_times(&args.out_dir.join("times.txt"), &simulator)?;

    if !ctx.quiet {
        println!(
            "wrote {} frames ({:.0} points per frame, {:.1} m drive, seed {}) to {} in {:.1} s",
            config.frames,
            total_points as f64 / config.frames as f64,
            config.drive_distance(),
            config.seed,
            args.out_dir.display(),
            ms_since(start) / 1e3,
        );
    }
    Ok(())
}

/// `x` as C's `%e` (`1.000000e-01`), the style of KITTI's `times.txt`.
fn format_c_exponent(x: f64) -> String {
    let rust = format!("{x:.6e}");
    match rust.split_once('e') {
        Some((mantissa, exponent)) => {
            let exponent: i32 = exponent.parse().unwrap_or(0);
            let sign = if exponent < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exponent.abs())
        }
        None => rust,
    }
}

/// KITTI `times.txt`: one timestamp per line, seconds, `%e` style.
fn write_times(path: &Path, simulator: &Simulator) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for index in 0..simulator.frames() {
        writeln!(out, "{}", format_c_exponent(simulator.time(index)))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_c_exponent;

    #[test]
    fn c_exponent_format() {
        assert_eq!(format_c_exponent(0.0), "0.000000e+00");
        assert_eq!(format_c_exponent(0.1), "1.000000e-01");
        assert_eq!(format_c_exponent(123.4), "1.234000e+02");
    }
}
