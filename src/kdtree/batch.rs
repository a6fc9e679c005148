//! Batch queries: many queries in parallel (rayon), results in query order in
//! one flat CSR [`Neighborhoods`], one candidate buffer per task (no
//! allocation per query).
//!
//! The `*_all` variants query every point of the tree itself. They run the
//! queries in *tree order* — consecutive queries then reuse the same leaves in
//! cache — and return the results in input order (query `i` = input point `i`).

use nalgebra::Point3;
use rayon::prelude::*;

use super::query::NoStats;
use super::{KdTree, Neighbor, Neighborhoods, QueryStats, SearchHint};

/// Queries per rayon task: large enough to amortise the task, small enough to
/// balance two cores.
const CHUNK: usize = 512;

const EMPTY: Neighbor = Neighbor {
    index: 0,
    distance_sq: 0.0,
};

impl KdTree {
    /// kNN for many queries (parallel), each sorted by `(distance_sq, index)`,
    /// in query order; every finite query gets `min(k, len)` neighbours, a
    /// query with a NaN/inf coordinate none.
    pub fn knn_batch(&self, queries: &[Point3<f64>], k: usize) -> Neighborhoods {
        let qs: Vec<[f64; 3]> = queries.iter().map(|q| [q.x, q.y, q.z]).collect();
        if qs.iter().flatten().all(|c| c.is_finite()) {
            self.knn_fixed(&qs, k, false)
        } else {
            self.hybrid_variable(&qs, f64::INFINITY, k, false)
        }
    }

    /// Radius search for many queries (parallel), each sorted, in query order.
    pub fn radius_batch(&self, queries: &[Point3<f64>], radius: f64) -> Neighborhoods {
        self.hybrid_batch(queries, radius, usize::MAX)
    }

    /// Hybrid search for many queries (parallel), each sorted, in query order.
    pub fn hybrid_batch(
        &self,
        queries: &[Point3<f64>],
        radius: f64,
        max_nn: usize,
    ) -> Neighborhoods {
        let qs: Vec<[f64; 3]> = queries.iter().map(|q| [q.x, q.y, q.z]).collect();
        self.hybrid_variable(&qs, radius, max_nn, false)
    }

    /// kNN of every point of the tree (the point itself included, as its own
    /// first neighbour unless it has exact duplicates of lower index); query
    /// `i` is input point `i`. Computed in tree order, in parallel.
    pub fn knn_all(&self, k: usize) -> Neighborhoods {
        let tree_order = self.knn_fixed(&self.points, k, true);
        self.to_input_order(&tree_order)
    }

    /// Radius search around every point of the tree, each sorted; query `i`
    /// is input point `i`. Memory: one [`Neighbor`] (16 bytes) per pair found;
    /// use [`KdTree::radius_counts_all`] when only counts are needed.
    pub fn radius_all(&self, radius: f64) -> Neighborhoods {
        self.hybrid_all(radius, usize::MAX)
    }

    /// Hybrid search around every point of the tree, each sorted; query `i`
    /// is input point `i`.
    pub fn hybrid_all(&self, radius: f64, max_nn: usize) -> Neighborhoods {
        let tree_order = self.hybrid_variable(&self.points, radius, max_nn, true);
        self.to_input_order(&tree_order)
    }

    /// Number of points within `radius` metres of every point of the tree
    /// (itself included); entry `i` belongs to input point `i`.
    pub fn radius_counts_all(&self, radius: f64) -> Vec<usize> {
        let mut counts = vec![0usize; self.len()];
        let tree_counts: Vec<usize> = self
            .points
            .par_iter()
            .with_min_len(CHUNK)
            .map(|p| self.radius_count(&Point3::from(*p), radius))
            .collect();
        for (t, &c) in tree_counts.iter().enumerate() {
            counts[self.indices[t] as usize] = c;
        }
        counts
    }

    /// Total work of a kNN query (`k`) from every point of the tree.
    pub fn knn_all_stats(&self, k: usize) -> QueryStats {
        self.points
            .par_chunks(CHUNK)
            .enumerate()
            .map_init(Vec::new, |buf, (c, chunk)| {
                let mut stats = QueryStats::ZERO;
                for (j, q) in chunk.iter().enumerate() {
                    stats.queries += 1;
                    let hint = self.hint_at(c * CHUNK + j);
                    self.hybrid_from(q, f64::INFINITY, k, &hint, buf, &mut stats);
                }
                stats
            })
            .reduce(|| QueryStats::ZERO, QueryStats::combine)
    }

    /// Total work of a radius query from every point of the tree.
    pub fn radius_all_stats(&self, radius: f64) -> QueryStats {
        self.points
            .par_chunks(CHUNK)
            .enumerate()
            .map_init(Vec::new, |buf, (c, chunk)| {
                let mut stats = QueryStats::ZERO;
                for (j, q) in chunk.iter().enumerate() {
                    buf.clear();
                    stats.queries += 1;
                    let hint = self.hint_at(c * CHUNK + j);
                    self.radius_from(q, radius, &hint, buf, &mut stats);
                }
                stats
            })
            .reduce(|| QueryStats::ZERO, QueryStats::combine)
    }

    /// kNN with a fixed stride `min(k, len)`, written straight into the output.
    /// The search hint of query `i`: its own leaf when the queries are the
    /// tree's points in tree order (`own_points`), none otherwise.
    #[inline]
    fn query_hint(&self, own_points: bool, i: usize) -> SearchHint {
        if own_points {
            self.hint_at(i)
        } else {
            SearchHint::default()
        }
    }

    fn knn_fixed(&self, queries: &[[f64; 3]], k: usize, own_points: bool) -> Neighborhoods {
        let kk = k.min(self.len());
        let offsets: Vec<usize> = (0..=queries.len()).map(|i| i * kk).collect();
        if kk == 0 {
            return Neighborhoods {
                offsets,
                neighbors: Vec::new(),
            };
        }
        let mut neighbors = vec![EMPTY; queries.len() * kk];
        neighbors
            .par_chunks_mut(CHUNK * kk)
            .zip(queries.par_chunks(CHUNK))
            .enumerate()
            .for_each_init(
                || Vec::with_capacity(kk),
                |buf, (c, (out, qs))| {
                    for (j, (slot, q)) in out.chunks_exact_mut(kk).zip(qs).enumerate() {
                        let hint = self.query_hint(own_points, c * CHUNK + j);
                        self.hybrid_from(q, f64::INFINITY, kk, &hint, buf, &mut NoStats);
                        slot.copy_from_slice(buf);
                    }
                },
            );
        Neighborhoods { offsets, neighbors }
    }

    /// Hybrid search with a variable count per query: per-chunk CSR pieces,
    /// concatenated in query order.
    fn hybrid_variable(
        &self,
        queries: &[[f64; 3]],
        radius: f64,
        max_nn: usize,
        own_points: bool,
    ) -> Neighborhoods {
        let pieces: Vec<(Vec<usize>, Vec<Neighbor>)> = queries
            .par_chunks(CHUNK)
            .enumerate()
            .map_init(Vec::new, |buf, (c, qs)| {
                let mut counts = Vec::with_capacity(qs.len());
                let mut found = Vec::new();
                for (j, q) in qs.iter().enumerate() {
                    let hint = self.query_hint(own_points, c * CHUNK + j);
                    self.hybrid_from(q, radius, max_nn, &hint, buf, &mut NoStats);
                    counts.push(buf.len());
                    found.extend_from_slice(buf);
                }
                (counts, found)
            })
            .collect();
        let total: usize = pieces.iter().map(|(_, f)| f.len()).sum();
        let mut offsets = Vec::with_capacity(queries.len() + 1);
        offsets.push(0);
        let mut neighbors = Vec::with_capacity(total);
        for (counts, found) in pieces {
            for c in counts {
                offsets.push(offsets.last().copied().unwrap_or(0) + c);
            }
            neighbors.extend_from_slice(&found);
        }
        Neighborhoods { offsets, neighbors }
    }

    /// Reorders per-tree-position results to input order (parallel gather).
    fn to_input_order(&self, tree_order: &Neighborhoods) -> Neighborhoods {
        let n = self.len();
        let mut position = vec![0u32; n];
        for (t, &i) in self.indices.iter().enumerate() {
            position[i as usize] = t as u32;
        }
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0usize);
        for &t in &position {
            let t = t as usize;
            let count = tree_order.offsets[t + 1] - tree_order.offsets[t];
            offsets.push(offsets.last().copied().unwrap_or(0) + count);
        }
        let mut neighbors = vec![EMPTY; tree_order.neighbors.len()];
        // Split the output at every CHUNK-th query so that tasks own disjoint
        // slices.
        let mut slices = Vec::with_capacity(n.div_ceil(CHUNK));
        let mut rest: &mut [Neighbor] = &mut neighbors;
        for c in (0..n).step_by(CHUNK) {
            let end = (c + CHUNK).min(n);
            let (head, tail) = rest.split_at_mut(offsets[end] - offsets[c]);
            slices.push((c, end, head));
            rest = tail;
        }
        slices.into_par_iter().for_each(|(c, end, out)| {
            let mut at = 0;
            for &t in &position[c..end] {
                let src = tree_order.get(t as usize);
                out[at..at + src.len()].copy_from_slice(src);
                at += src.len();
            }
        });
        Neighborhoods { offsets, neighbors }
    }
}
