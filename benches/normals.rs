//! Normals on a real KITTI HDL-64 frame downsampled to 0.25 m (18,592
//! points), k-d tree build included: hybrid radius 1.0 m / max_nn 30 and
//! kNN 20, at 1 and 2 threads.
//!
//! `cargo bench --bench normals -- --warm-up-time 1 --measurement-time 3`
//! (`NORMALS_SUMMARY=1` first prints interleaved best-of timings and ratios).

#[path = "../tests/common/mod.rs"]
mod common;

use std::num::NonZero;

use criterion::{Criterion, criterion_group, criterion_main};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::{Matrix3, Point3, SymmetricEigen, Vector3};
use pointpipe::PointCloud;
use pointpipe::kdtree::KdTree;
use pointpipe::normals::{NeighborSearch, NormalConfig, estimate_normals};
use pointpipe::voxel::{VoxelConfig, voxel_downsample};

/// Baseline measured in the same run, for ratios on a shared machine: a
/// textbook Rust pipeline, serial: kiddo 6 `ImmutableKdTree` kNN 20 and
/// nalgebra's iterative `SymmetricEigen`.
fn baseline_kiddo_knn_symmetric_eigen(points: &[Point3<f64>], k: usize) -> Vec<Vector3<f64>> {
    let raw: Vec<[f64; 3]> = points.iter().map(|p| [p.x, p.y, p.z]).collect();
    let tree = ImmutableKdTree::<f64, 3>::new_from_slice(&raw).expect("kiddo build");
    let k = NonZero::new(k).expect("k > 0");
    points
        .iter()
        .zip(&raw)
        .map(|(p, q)| {
            let found = tree
                .query(q)
                .nearest_n::<SquaredEuclidean<f64>>(k)
                .execute();
            let n = found.len() as f64;
            let mean = found
                .iter()
                .map(|f| points[f.item as usize].coords)
                .sum::<Vector3<f64>>()
                / n;
            let cov = found.iter().fold(Matrix3::zeros(), |acc, f| {
                let d = points[f.item as usize].coords - mean;
                acc + d * d.transpose()
            }) / n;
            let eig = SymmetricEigen::new(cov);
            let normal = eig.eigenvectors.column(eig.eigenvalues.imin()).into_owned();
            if normal.dot(&(-p.coords)) < 0.0 {
                -normal
            } else {
                normal
            }
        })
        .collect()
}

/// Tree build + normals, 1 thread.
fn normals_ours(cloud: &PointCloud, search: NeighborSearch) -> usize {
    let mut cloud = cloud.clone();
    let tree = KdTree::build(&cloud.points).expect("tree");
    let config = NormalConfig {
        search,
        ..Default::default()
    };
    estimate_normals(&mut cloud, &tree, &config)
        .expect("normals")
        .with_normal
}

/// With `NORMALS_SUMMARY=1`: ours (1 thread) and the kiddo baseline timed in
/// interleaved rounds, best of all, and their ratios: robust to a shared
/// machine's load.
fn summary(cloud: &PointCloud) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    let hybrid = NeighborSearch::Radius {
        radius: 1.0,
        max_nn: Some(30),
    };
    let knn = NeighborSearch::Knn { k: 20 };
    let (mut h, mut k, mut base) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..10 {
        h = h.min(one.install(|| common::best_ms(5, || normals_ours(cloud, hybrid))));
        k = k.min(one.install(|| common::best_ms(5, || normals_ours(cloud, knn))));
        base = base.min(common::best_ms(2, || {
            baseline_kiddo_knn_symmetric_eigen(&cloud.points, 20)
        }));
    }
    println!(
        "normals summary ({} pts, 1 thread, best of interleaved runs): hybrid r1.0/nn30 {h:.2} ms ({:.2}x baseline), knn20 {k:.2} ms ({:.2}x baseline), baseline kiddo knn20 + SymmetricEigen {base:.2} ms",
        cloud.len(),
        base / h,
        base / k
    );
}

fn bench_normals(c: &mut Criterion) {
    let frame = pointpipe::io::read(common::shared_data_required(
        "kitti-raw-hdl64-5frames/0000000000.bin",
    ))
    .expect("read KITTI frame");
    let cloud = voxel_downsample(&frame, &VoxelConfig::new(0.25)).expect("voxel");
    if std::env::var("NORMALS_SUMMARY").is_ok_and(|v| v == "1") {
        summary(&cloud);
    }
    let mut group = c.benchmark_group("normals_kitti_0.25m_with_tree");
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        for (name, search) in [
            (
                "hybrid_r1.0_nn30",
                NeighborSearch::Radius {
                    radius: 1.0,
                    max_nn: Some(30),
                },
            ),
            ("knn20", NeighborSearch::Knn { k: 20 }),
        ] {
            let config = NormalConfig {
                search,
                ..Default::default()
            };
            group.bench_function(format!("{name}/{threads}t"), |b| {
                pool.install(|| {
                    b.iter_batched_ref(
                        || cloud.clone(),
                        |cloud| {
                            let tree = KdTree::build(&cloud.points).expect("tree");
                            estimate_normals(cloud, &tree, &config).expect("normals")
                        },
                        criterion::BatchSize::LargeInput,
                    )
                })
            });
        }
    }
    group.bench_function("baseline_kiddo_knn20_symmetric_eigen/1t", |b| {
        b.iter(|| baseline_kiddo_knn_symmetric_eigen(&cloud.points, 20))
    });
    group.finish();
}

criterion_group!(benches, bench_normals);
criterion_main!(benches);
