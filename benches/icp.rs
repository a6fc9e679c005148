//! ICP on the BALM pair (full32 -> full31) at voxel 0.25 m, target tree and
//! normals built beforehand: point-to-plane and point-to-point, 1 and 2
//! threads.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/icp_common/mod.rs"]
mod icp_common;

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::Isometry3;
use pointpipe::icp::{IcpConfig, IcpMethod, register};

fn bench_icp(c: &mut Criterion) {
    let source = icp_common::read_cloud(
        &common::shared_data_required("balm-realworld-lidar/full32.pcd"),
        0.0,
    );
    let target = icp_common::read_cloud(
        &common::shared_data_required("balm-realworld-lidar/full31.pcd"),
        0.0,
    );
    let source = icp_common::downsample(&source, 0.25).points;
    let (target, tree) =
        icp_common::with_tree_and_normals(icp_common::downsample(&target, 0.25), 1.0, 30);
    let mut group = c.benchmark_group(format!("icp_balm_{}src_{}tgt", source.len(), target.len()));
    // Reference inside the same run: one serial nearest-within-1-m pass over
    // the source (what every ICP iteration costs at least).
    group.bench_function("nearest_within_pass/1_thread", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            source
                .iter()
                .filter(|p| {
                    tree.hybrid(p, 1.0, 1, &mut out);
                    !out.is_empty()
                })
                .count()
        })
    });
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for (name, method) in [
            ("point_to_plane", IcpMethod::PointToPlane),
            ("point_to_point", IcpMethod::PointToPoint),
        ] {
            let config = IcpConfig {
                method,
                ..IcpConfig::default()
            };
            let r = pool.install(|| {
                register(&source, &target, &tree, &Isometry3::identity(), &config).unwrap()
            });
            eprintln!(
                "{name} {threads} thread(s): {} iterations, converged {}, fitness {:.3}",
                r.iterations, r.converged, r.fitness
            );
            group.bench_function(format!("{name}/{threads}_threads"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        register(&source, &target, &tree, &Isometry3::identity(), &config).unwrap()
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_icp
}
criterion_main!(benches);
