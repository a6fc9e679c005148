//! Voxel grid on a real KITTI HDL-64 frame (122k points), 0.25 m, centroid
//! and first mode, at 1 and 2 threads.
//!
//! `cargo bench --bench voxel -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::HashMap;

use nalgebra::{Point3, Vector3};
use pointpipe::PointCloud;
use pointpipe::voxel::{VoxelConfig, VoxelGrid, VoxelMode, voxel_downsample};

/// Baseline measured in the same run, for ratios on a shared machine: the
/// textbook centroid grid with `std::collections::HashMap` (SipHash), serial.
fn naive_hashmap_centroids(cloud: &PointCloud, voxel_size: f64) -> Vec<Point3<f64>> {
    let grid = VoxelGrid::new(voxel_size).unwrap();
    let mut map: HashMap<[i64; 3], (Vector3<f64>, usize)> = HashMap::new();
    for p in &cloud.points {
        let e = map.entry(grid.key(p)).or_insert((Vector3::zeros(), 0));
        e.0 += p.coords;
        e.1 += 1;
    }
    map.into_values()
        .map(|(sum, n)| Point3::from(sum / n as f64))
        .collect()
}

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
    group.bench_function("baseline_std_hashmap_centroid/1t", |b| {
        b.iter(|| naive_hashmap_centroids(&cloud, 0.25))
    });
    group.finish();
}

criterion_group!(benches, bench_voxel);
criterion_main!(benches);
