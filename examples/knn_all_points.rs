//! The Rust side of the Python binding's overhead figure: kNN of every
//! point of a cloud on one thread, the calls `pointpipe.KDTree.query(data,
//! k)` makes, timed without Python around them.
//!
//! `cargo run --release --example knn_all_points -- CLOUD [K]`
//!
//! Prints the best of 12 calls of:
//! - `search_batch` (rows as `Neighborhoods`);
//! - `search_batch_into` two (n, k) arrays allocated once (squared
//!   distances, as the binding writes them first);
//! - the same, then one square-root pass over the distances: the output
//!   of `KDTree.query` (compare with `python python/benches/side_by_side.py`
//!   run in the same minute).
use std::time::Instant;

use pointpipe::kdtree::{KdTree, Queries, Search};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: knn_all_points CLOUD [K]"))?;
    let k: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let points = pointpipe::io::read(&path)?.points;
    let tree = KdTree::build(&points)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let best_of = |f: &mut dyn FnMut()| {
        f();
        (0..12)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    };
    let n = tree.len();
    let mut d = vec![0.0f64; n * k];
    let mut idx = vec![0i64; n * k];
    pool.install(|| -> anyhow::Result<()> {
        let batch = best_of(&mut || {
            std::hint::black_box(tree.search_batch(Queries::All, Search::Knn { k }));
        });
        let mut into = |roots: bool| {
            let rows: Vec<(&mut [f64], &mut [i64])> =
                d.chunks_mut(k).zip(idx.chunks_mut(k)).collect();
            let done =
                tree.search_batch_into(Queries::All, Search::Knn { k }, rows, |found, row| {
                    for (j, nb) in found.iter().enumerate() {
                        row.0[j] = nb.distance_sq;
                        row.1[j] = nb.index as i64;
                    }
                });
            if roots {
                d.iter_mut().for_each(|x| *x = x.sqrt());
            }
            done
        };
        into(false)?;
        let squared = best_of(&mut || {
            let _ = into(false);
        });
        let distances = best_of(&mut || {
            let _ = into(true);
        });
        println!("{n} points, k = {k}, 1 thread, best of 12:");
        println!("  search_batch                               {batch:8.2} ms");
        println!("  search_batch_into arrays (squared)         {squared:8.2} ms");
        println!("  search_batch_into arrays, then roots       {distances:8.2} ms");
        Ok(())
    })
}
