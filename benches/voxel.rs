//! Voxel grid on a real KITTI HDL-64 frame (122k points), 0.25 m, centroid
//! and first mode, at 1 and 2 threads.
//!
//! `cargo bench --bench voxel -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use pointpipe::voxel::{VoxelConfig, VoxelMode, voxel_downsample};

fn bench_voxel(c: &mut Criterion) {
    let cloud = pointpipe::io::read(common::shared_data_required(
        "kitti-raw-hdl64-5frames/0000000000.bin",
    ))
    .expect("read KITTI frame");
    let mut group = c.benchmark_group("voxel_kitti_0.25m");
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        for (name, mode) in [
            ("centroid", VoxelMode::Centroid),
            ("first", VoxelMode::First),
        ] {
            let config = VoxelConfig {
                voxel_size: 0.25,
                mode,
            };
            group.bench_function(format!("{name}/{threads}t"), |b| {
                pool.install(|| b.iter(|| voxel_downsample(&cloud, &config).expect("voxel")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_voxel);
criterion_main!(benches);
