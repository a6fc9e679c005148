//! LiDAR odometry over the 40 BALM scans (`../shared/data/balm-realworld-lidar`):
//! registration time per sequence at 1 and 2 threads, frames read once
//! beforehand (as KISS-ICP's figures exclude reading). Frames/s =
//! 40 / (time per iteration). Per-stage medians are printed once
//! (set `ODOMETRY_SUMMARY=0` to skip them).
//!
//! `cargo bench --bench odometry -- --warm-up-time 1 --measurement-time 10`

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use pointpipe::PointCloud;
use pointpipe::odometry::{Odometry, OdometryConfig, Stage, sequence};

/// Runs the default pipeline over `frames`; returns the last pose's
/// translation (so the work cannot be optimised away) and per-frame timings.
fn run(frames: &[PointCloud]) -> (f64, Vec<pointpipe::odometry::StageTimings>) {
    let mut odometry = Odometry::new(OdometryConfig::default()).expect("default config");
    let mut timings = Vec::with_capacity(frames.len());
    let mut last = 0.0;
    for frame in frames {
        let r = odometry.process(frame);
        last = r.world_from_sensor.translation.vector.norm();
        timings.push(r.timings);
    }
    (last, timings)
}

fn bench_odometry(c: &mut Criterion) {
    let dir = common::shared_data_required("balm-realworld-lidar");
    let frames: Vec<PointCloud> = sequence::list_frames(&dir)
        .expect("list BALM frames")
        .iter()
        .map(|p| pointpipe::io::read(p).expect("read BALM frame"))
        .collect();
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .expect("thread pool");
            (t, pool)
        })
        .collect();
    if std::env::var("ODOMETRY_SUMMARY").map_or(true, |v| v != "0") {
        for (threads, pool) in &pools {
            let (_, timings) = pool.install(|| run(&frames));
            let median = |stage: Stage| {
                let mut v: Vec<f64> = timings.iter().map(|t| t.get(stage)).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let stages: Vec<String> = Stage::ALL
                .iter()
                .map(|&s| format!("{} {:.2}", s.name(), median(s)))
                .collect();
            eprintln!(
                "odometry BALM {threads}t per-frame medians (ms): {}",
                stages.join(", ")
            );
        }
    }
    let mut group = c.benchmark_group("odometry_balm_40_frames");
    group.sample_size(10);
    for (threads, pool) in &pools {
        group.bench_function(format!("{threads}t"), |b| {
            pool.install(|| b.iter(|| run(&frames).0))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_odometry);
criterion_main!(benches);
