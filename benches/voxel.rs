//! Voxel grid on a real KITTI HDL-64 frame (122k points), 0.25 m, centroid
//! and first mode, at 1 and 2 threads.
//!
//! `cargo bench --bench voxel -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::Point3;
use pointpipe::PointCloud;
use pointpipe::voxel::{VoxelConfig, VoxelMode, voxel_downsample};

/// KITTI `.bin` reader (x, y, z, reflectance as little-endian f32).
fn read_kitti(path: &std::path::Path) -> PointCloud {
    let bytes = std::fs::read(path).expect("read KITTI frame");
    let f = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    let mut cloud = PointCloud::default();
    let mut intensity = Vec::new();
    for rec in bytes.chunks_exact(16) {
        cloud.points.push(Point3::new(
            f64::from(f(&rec[0..4])),
            f64::from(f(&rec[4..8])),
            f64::from(f(&rec[8..12])),
        ));
        intensity.push(f(&rec[12..16]));
    }
    cloud.intensity = Some(intensity);
    cloud
}

fn bench_voxel(c: &mut Criterion) {
    let cloud = read_kitti(&common::shared_data_required(
        "kitti-raw-hdl64-5frames/0000000000.bin",
    ));
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
