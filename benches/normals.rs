//! Normals on a real KITTI HDL-64 frame downsampled to 0.25 m (18,592
//! points), k-d tree build included: hybrid radius 1.0 m / max_nn 30 and
//! kNN 20, at 1 and 2 threads.
//!
//! `cargo bench --bench normals -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use pointpipe::kdtree::KdTree;
use pointpipe::normals::{NeighborSearch, NormalConfig, estimate_normals};
use pointpipe::voxel::{VoxelConfig, voxel_downsample};

fn bench_normals(c: &mut Criterion) {
    let frame = pointpipe::io::read(common::shared_data_required(
        "kitti-raw-hdl64-5frames/0000000000.bin",
    ))
    .expect("read KITTI frame");
    let cloud = voxel_downsample(&frame, &VoxelConfig::new(0.25)).expect("voxel");
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
    group.finish();
}

criterion_group!(benches, bench_normals);
criterion_main!(benches);
