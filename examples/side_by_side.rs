//! Our half of the side-by-side comparison with Open3D
//! (`benches/open3d_side_by_side.py` is the other half): the same three cases
//! on the same frame, 1 thread, best and median of N calls.
//!
//! ```text
//! cargo run --release --example side_by_side -- FRAME [REPS]
//! ```
//!
//! Cases (times in milliseconds):
//! - voxel grid, 0.25 m, centroid mode, on the whole frame;
//! - normals, hybrid search r = 1.0 m / max_nn 30, k-d tree build included,
//!   on the 0.25 m cloud;
//! - normals, kNN 20, tree build included, on the same cloud.
//!
//! Run the two programs alternately a few times and compare best with best:
//! on a shared machine the best of many calls is the figure least disturbed
//! by other load. Criterion benches (`benches/voxel.rs`, `benches/normals.rs`)
//! give the same cases with confidence intervals.
use std::time::Instant;

use pointpipe::kdtree::KdTree;
use pointpipe::normals::{NeighborSearch, NormalConfig, estimate_normals};
use pointpipe::voxel::{VoxelConfig, voxel_downsample};

/// Best and median wall time of `reps` calls of `f`, milliseconds.
fn best_and_median(
    reps: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[0], times[times.len() / 2]))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: side_by_side FRAME [REPS]"))?;
    let reps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(40);
    let cloud = pointpipe::io::read(&path)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| -> anyhow::Result<()> {
        let voxel = VoxelConfig::new(0.25);
        let down = voxel_downsample(&cloud, &voxel)?;
        println!("points {} voxels {}", cloud.len(), down.len());
        let (best, median) = best_and_median(reps, || {
            std::hint::black_box(voxel_downsample(&cloud, &voxel)?);
            Ok(())
        })?;
        println!("voxel 0.25 m centroid: best {best:.2} ms median {median:.2} ms");
        let cases = [
            (
                "hybrid r 1.0 m / max_nn 30",
                NeighborSearch::Radius {
                    radius: 1.0,
                    max_nn: Some(30),
                },
            ),
            ("knn 20", NeighborSearch::Knn { k: 20 }),
        ];
        for (name, search) in cases {
            let config = NormalConfig {
                search,
                ..Default::default()
            };
            let mut work = down.clone();
            let (best, median) = best_and_median(reps, || {
                let tree = KdTree::build(&work.points)?;
                std::hint::black_box(estimate_normals(&mut work, &tree, &config)?);
                Ok(())
            })?;
            println!("normals {name} (tree included): best {best:.2} ms median {median:.2} ms");
        }
        Ok(())
    })
}
