//! Neighbour sets of the tree's own points, computed leaf by leaf.
//!
//! Normal estimation asks for the neighbourhood (the up-to-`k` nearest
//! within a radius, or the plain kNN) of every point of the tree. Instead of
//! one tree search per point, each leaf `L` is handled at once:
//!
//! 1. **Pivot.** The point `c` of `L` nearest the centre of its box gets an
//!    exact tree search ([`KdTree::nearest_set_hinted`]); `t_c` is its k-th
//!    distance (`+inf` when fewer than `k` lie within the radius).
//! 2. **Bounds.** By the triangle inequality the `k` neighbours of `c` are
//!    within `u(q) = |q − c| + t_c` of any query `q`, so `q`'s own `k`
//!    nearest are too. The candidates must cover, around the leaf's box,
//!    `B = min(r, max_q u(q), CAP_FACTOR · t_c)`; the cap keeps a leaf that
//!    is wide compared with its neighbourhoods (about 1.4 m from pivot to
//!    farthest point on the 0.25 m KITTI cloud) from gathering hundreds.
//! 3. **Gather.** The leaf's points, then every point of the siblings of
//!    its ancestors within `B` of its box (subtrees pruned by box-to-box
//!    distance, whole leaves copied when all of them are within, a partly
//!    covered leaf copied whole and compacted in place without a branch per
//!    point), into a padded structure-of-arrays candidate list.
//! 4. **Per query.** Distances from `q` to all candidates, 8 at a time, and
//!    a compaction without a branch per candidate (a block with one within
//!    the bound writes its 8 entries and the length advances for those
//!    within; a block with none writes nothing), first within a guess
//!    (`GUESS_FACTOR` times the previous query's k-th distance: valid when
//!    `k` fall within it), else within `min(r, u(q), u'(q), cap)` where
//!    `u'` is the bound from the previous query's set. Then the `k`
//!    smallest `(distance_sq, index)` are kept. Fewer than `k` within the
//!    cap means `q`'s k-th lies beyond it: `q` gets its own tree search.
//!
//! The sets are exactly those of the per-point search: every bound is an
//! upper bound of the k-th distance or is checked to hold `k` points; the
//! triangle-inequality bounds are inflated by a relative 1e-9 against the
//! rounding of two square roots; and the computed point-to-box distance never
//! exceeds the computed point-to-query distance (rounding is monotone). The
//! order of a set's entries differs from the per-point search; it depends on
//! the leaf and the query alone, never on the thread count.
//!
//! [`KdTree::search_batch`] over all points with kNN uses the same sets
//! (sorted afterwards). Measurements and rejected variants:
//! `docs/performance.md`, "k-d tree: neighbourhoods of all points".

// Loops over the lanes index several arrays at once.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

use super::leaf_layout::{LANES, LeafLayout, block_distances_sq};
use super::query::{distance_sq, gap_sq};
use super::{KdTree, NodeBox, SearchHint, SetEntry};

/// Filler of the unused part of a candidate buffer.
const UNUSED: SetEntry = SetEntry {
    distance_sq: f64::INFINITY,
    index: u32::MAX,
    position: u32::MAX,
};

/// Relative inflation of the triangle-inequality bounds (far above the
/// rounding of two square roots and a sum, far below any effect on the
/// candidate count).
const INFLATE: f64 = 1.0 + 1e-9;

/// The candidates of a leaf cover at most this multiple of the pivot's k-th
/// distance (a query whose k-th lies beyond gets its own tree search).
const CAP_FACTOR: f64 = 1.4;

/// Each query first collects within this multiple of the previous query's
/// k-th distance (valid when it holds `k` points, else redone with the
/// proven bound): fewer candidates to select from.
const GUESS_FACTOR: f64 = 1.3;

/// Above this many surplus candidates the `k` best are chosen by
/// `select_nth_unstable`, below it by removing the worst repeatedly.
const EXCESS_BY_SCAN: usize = 4;

/// Points per rayon task (whole subtrees of about this size).
const TASK_POINTS: usize = 512;

/// Per-thread buffers of the leaf-by-leaf search (reused, no allocation per
/// leaf once grown).
#[derive(Debug, Default)]
pub(crate) struct LeafScratch {
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
    position: Vec<u32>,
    index: Vec<u32>,
    /// Output of the exact searches (pivots and fallbacks).
    found: Vec<SetEntry>,
    /// The branch-free collection buffer, at least as long as the padded
    /// candidate arrays.
    buf: Vec<SetEntry>,
}

impl LeafScratch {
    fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
        self.z.clear();
        self.position.clear();
        self.index.clear();
    }

    fn truncate(&mut self, len: usize) {
        self.x.truncate(len);
        self.y.truncate(len);
        self.z.truncate(len);
        self.position.truncate(len);
        self.index.truncate(len);
    }

    /// Appends the points at tree positions `start..end`.
    fn extend(&mut self, layout: &LeafLayout, indices: &[u32], start: usize, end: usize) {
        let (x, y, z) = layout.range(start, end);
        self.x.extend_from_slice(x);
        self.y.extend_from_slice(y);
        self.z.extend_from_slice(z);
        self.position.extend(start as u32..end as u32);
        self.index.extend_from_slice(&indices[start..end]);
    }

    /// Pads the candidate arrays by a block: coordinates `+inf` (never
    /// within a finite bound), ids `u32::MAX`.
    fn pad(&mut self) {
        for v in [&mut self.x, &mut self.y, &mut self.z] {
            v.extend([f64::INFINITY; LANES]);
        }
        self.position.extend([u32::MAX; LANES]);
        self.index.extend([u32::MAX; LANES]);
    }
}

/// Squared distance between two boxes, m² (0 when they overlap).
#[inline(always)]
fn box_box_distance_sq(a: &NodeBox, b: &NodeBox) -> f64 {
    let d: [f64; 3] = std::array::from_fn(|i| gap_sq(b.lo[i] - a.hi[i], a.lo[i] - b.hi[i]));
    d[0] + d[1] + d[2]
}

/// Largest squared distance from a point of box `a` to box `b`, m²: every
/// point of `a` is within it of `b`.
#[inline(always)]
fn box_box_max_distance_sq(a: &NodeBox, b: &NodeBox) -> f64 {
    let d: [f64; 3] = std::array::from_fn(|i| gap_sq(b.lo[i] - a.lo[i], a.hi[i] - b.hi[i]));
    d[0] + d[1] + d[2]
}

/// The k-th distance of a compacted set, m, or `+inf` when it holds fewer
/// than `k` (then it is everything within the radius).
#[inline]
fn kth_distance(set: &[SetEntry], k: usize) -> f64 {
    if set.len() >= k && k > 0 {
        set.iter().map(|e| e.distance_sq).fold(0.0, f64::max).sqrt()
    } else {
        f64::INFINITY
    }
}

impl KdTree {
    /// For every point of the tree, its up-to-`max_nn` nearest within
    /// `radius` metres as an unsorted set (the members of
    /// [`KdTree::nearest_set_hinted`], ties by the lower index):
    /// `f(position, set, &mut out[position])` for every tree position, in
    /// parallel (rayon) over whole subtrees of about 512 points. A negative
    /// or NaN radius, or `max_nn = 0`, gives empty sets.
    ///
    /// The sets are found leaf by leaf (module docs), with a finite radius
    /// and with an infinite one (plain kNN) alike: the candidates are capped
    /// at `CAP_FACTOR` times the pivot's k-th distance either way. Only when the
    /// pivot has fewer than `k` neighbours in reach (`t_c` infinite: fewer
    /// than `k` points in the tree and no radius) does every point of the
    /// leaf get its own search.
    ///
    /// # Panics
    /// When `out.len()` differs from the tree's length (a programming error).
    pub(crate) fn for_each_own_set<T, F>(&self, radius: f64, max_nn: usize, out: &mut [T], f: F)
    where
        T: Send,
        F: Fn(usize, &[SetEntry], &mut T) + Sync,
    {
        assert_eq!(out.len(), self.len(), "one output slot per tree position");
        if self.is_empty() {
            return;
        }
        // Subtrees of about TASK_POINTS points, each a contiguous range of
        // tree positions and of leaves.
        let mut level = 0;
        while level + 1 < self.n_levels && (self.len() >> (level + 1)) >= TASK_POINTS {
            level += 1;
        }
        let first = (1usize << level) - 1;
        let mut tasks: Vec<(usize, &mut [T])> = Vec::with_capacity(first + 1);
        let mut rest = out;
        for node in first..2 * first + 1 {
            let len = (self.node_end[node] - self.node_start[node]) as usize;
            let (head, tail) = rest.split_at_mut(len);
            tasks.push((node, head));
            rest = tail;
        }
        let depth = self.n_levels - 1 - level;
        tasks
            .into_par_iter()
            .for_each_init(LeafScratch::default, |scratch, (node, out)| {
                let offset = self.node_start[node] as usize;
                let first_leaf = ((node + 1) << depth) - 1;
                for leaf in first_leaf..first_leaf + (1 << depth) {
                    self.own_sets_of_leaf(leaf, radius, max_nn, scratch, |position, set| {
                        f(position, set, &mut out[position - offset]);
                    });
                }
            });
    }

    /// The sets of the points of leaf node `leaf` (see the module docs):
    /// `visit(position, set)` once for each of its tree positions.
    fn own_sets_of_leaf(
        &self,
        leaf: usize,
        radius: f64,
        max_nn: usize,
        s: &mut LeafScratch,
        mut visit: impl FnMut(usize, &[SetEntry]),
    ) {
        let (start, end) = (self.node_start[leaf] as usize, self.node_end[leaf] as usize);
        let mut found = std::mem::take(&mut s.found);
        found.clear();
        if radius.is_nan() || radius < 0.0 || max_nn == 0 {
            (start..end).for_each(|position| visit(position, &found));
            s.found = found;
            return;
        }
        let k = max_nn;
        // 1. Pivot: the point nearest the centre of the leaf's box, searched
        //    exactly.
        let leaf_box = self.node_bounds[leaf];
        let centre: [f64; 3] = std::array::from_fn(|a| 0.5 * (leaf_box.lo[a] + leaf_box.hi[a]));
        let mut pivot = start;
        let mut pivot_sq = f64::INFINITY;
        for position in start..end {
            let d = distance_sq(&self.point_at(position), &centre);
            if d < pivot_sq {
                (pivot, pivot_sq) = (position, d);
            }
        }
        let c = self.point_at(pivot);
        self.search_own(pivot, leaf, radius, max_nn, &mut found);
        visit(pivot, &found);
        let t_c = kth_distance(&found, k);
        // 2. Bounds: the candidates cover `cap` (a radius search capped at
        //    CAP_FACTOR times the pivot's k-th distance) or, when smaller,
        //    the triangle-inequality bound of the farthest query.
        let r_sq = radius * radius;
        let cap = t_c * CAP_FACTOR * INFLATE;
        let cover_sq = r_sq.min(cap * cap);
        let capped = cover_sq < r_sq;
        let far_sq = (start..end)
            .map(|position| distance_sq(&self.point_at(position), &c))
            .fold(0.0, f64::max);
        let b = (far_sq.sqrt() + t_c) * INFLATE;
        let b_sq = (b * b).min(cover_sq);
        if b_sq == f64::INFINITY {
            // Fewer than k points in the tree and no radius: nothing to
            // bound by.
            for position in (start..end).filter(|&position| position != pivot) {
                self.search_own(position, leaf, radius, max_nn, &mut found);
                visit(position, &found);
            }
            s.found = found;
            return;
        }
        // The pivot's k nearest are all at its exact position (duplicates):
        // every query at that position has the same set, so only points of
        // index at most the set's largest can matter to it, and subtrees
        // whose lowest index is above are not gathered (without this, a
        // leaf among 100,000 copies of one point gathered all of them).
        // Queries elsewhere in the leaf then get their own search.
        let index_cut = if t_c == 0.0 {
            found.iter().map(|e| e.index).max().unwrap_or(u32::MAX)
        } else {
            u32::MAX
        };
        // 3. Gather every point within `b` of the leaf's box: the leaf
        //    itself, then the siblings of its ancestors.
        s.clear();
        s.extend(&self.layout, &self.indices, start, end);
        let mut node = leaf;
        while node > 0 {
            // Heap layout: left children are odd, right children even.
            let sibling = if node % 2 == 1 { node + 1 } else { node - 1 };
            self.gather(sibling, leaf, b_sq, index_cut, s);
            node = (node - 1) / 2;
        }
        s.pad();
        let mut buf = std::mem::take(&mut s.buf);
        if buf.len() < s.position.len() {
            buf.resize(s.position.len(), UNUSED);
        }
        // 4. Each other query against the candidates.
        let (mut prev, mut t_prev) = (c, t_c);
        for position in (start..end).filter(|&position| position != pivot) {
            let q = self.point_at(position);
            if index_cut != u32::MAX && distance_sq(&q, &c) != 0.0 {
                self.search_own(position, leaf, radius, max_nn, &mut found);
                visit(position, &found);
                continue;
            }
            let u_c = (distance_sq(&q, &c).sqrt() + t_c) * INFLATE;
            let u_prev = (distance_sq(&q, &prev).sqrt() + t_prev) * INFLATE;
            let u = u_c.min(u_prev);
            let bound_sq = (u * u).min(cover_sq);
            // A guess first: k points within it make it a valid bound.
            let guess = t_prev * GUESS_FACTOR;
            let mut len = 0;
            if guess * guess < bound_sq {
                len = collect_within(s, &q, guess * guess, &mut buf);
            }
            if len < k {
                len = collect_within(s, &q, bound_sq, &mut buf);
            }
            let set = if len < k && capped {
                // Fewer than k within the cap: the k-th is beyond it.
                self.search_own(position, leaf, radius, max_nn, &mut found);
                &found[..]
            } else {
                let len = keep_nearest(&mut buf, len, k);
                &buf[..len]
            };
            visit(position, set);
            (prev, t_prev) = (q, kth_distance(set, k));
        }
        s.found = found;
        s.buf = buf;
    }

    /// The exact set of the point at tree position `position` (in leaf
    /// `leaf`) into `out`, by the tree search started in its leaf.
    fn search_own(
        &self,
        position: usize,
        leaf: usize,
        radius: f64,
        max_nn: usize,
        out: &mut Vec<SetEntry>,
    ) {
        let hint = SearchHint {
            position: position as u32,
            leaf: leaf as u32,
        };
        self.nearest_set_hinted(&point3(self.point_at(position)), radius, max_nn, &hint, out);
    }

    /// Appends every point below `node` within `b_sq` m² of the box of
    /// node `target` to the candidates, skipping subtrees whose lowest
    /// input index is above `index_cut`.
    fn gather(&self, node: usize, target: usize, b_sq: f64, index_cut: u32, s: &mut LeafScratch) {
        let target_box = &self.node_bounds[target];
        if box_box_distance_sq(&self.node_bounds[node], target_box) > b_sq
            || self.node_min_index[node] > index_cut
        {
            return;
        }
        let left = 2 * node + 1;
        if left < self.node_bounds.len() {
            self.gather(left, target, b_sq, index_cut, s);
            self.gather(left + 1, target, b_sq, index_cut, s);
            return;
        }
        let (start, end) = (self.node_start[node] as usize, self.node_end[node] as usize);
        if box_box_max_distance_sq(&self.node_bounds[node], target_box) <= b_sq {
            // The whole leaf is within the bound.
            s.extend(&self.layout, &self.indices, start, end);
            return;
        }
        // The whole leaf appended, then compacted in place without a
        // branch per point.
        let first = s.position.len();
        s.extend(&self.layout, &self.indices, start, end);
        let mut kept = first;
        for j in first..s.position.len() {
            let p = [s.x[j], s.y[j], s.z[j]];
            s.x[kept] = p[0];
            s.y[kept] = p[1];
            s.z[kept] = p[2];
            s.position[kept] = s.position[j];
            s.index[kept] = s.index[j];
            kept += usize::from(self.min_distance_sq(target, &p) <= b_sq);
        }
        s.truncate(kept);
    }
}

/// The candidates within `bound_sq` m² (finite) of `q` into
/// `buf[..returned length]`, in candidate order, 8 distances at a time: a
/// block with a candidate within the bound writes all 8 entries and the
/// length advances only for those within (no branch per candidate; the
/// padding is `+inf`, never within); a block with none writes nothing.
/// `buf` must hold at least the padded candidate count. Runs the AVX2 build
/// of the loop when the CPU has it (runtime detection, x86-64).
#[inline(always)]
fn collect_within(s: &LeafScratch, q: &[f64; 3], bound_sq: f64, buf: &mut [SetEntry]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked above).
        return unsafe { collect_within_avx2(s, q, bound_sq, buf) };
    }
    collect_within_any(s, q, bound_sq, buf)
}

/// [`collect_within`] compiled for AVX2 (the same operations, so the same
/// bits: no FMA).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn collect_within_avx2(
    s: &LeafScratch,
    q: &[f64; 3],
    bound_sq: f64,
    buf: &mut [SetEntry],
) -> usize {
    collect_within_any(s, q, bound_sq, buf)
}

#[inline(always)]
fn collect_within_any(s: &LeafScratch, q: &[f64; 3], bound_sq: f64, buf: &mut [SetEntry]) -> usize {
    // The real candidates; the padding completes the last block.
    let m = (s.position.len() - LANES).div_ceil(LANES) * LANES;
    let blocks = s.x[..m]
        .as_chunks::<LANES>()
        .0
        .iter()
        .zip(s.y[..m].as_chunks::<LANES>().0)
        .zip(s.z[..m].as_chunks::<LANES>().0)
        .zip(s.index[..m].as_chunks::<LANES>().0)
        .zip(s.position[..m].as_chunks::<LANES>().0);
    let mut len = 0;
    for ((((x, y), z), index), position) in blocks {
        let d = block_distances_sq(x, y, z, q);
        // Most blocks hold none: skip their writes.
        if !d.iter().fold(false, |any, &d| any | (d <= bound_sq)) {
            continue;
        }
        for j in 0..LANES {
            buf[len] = SetEntry {
                distance_sq: d[j],
                index: index[j],
                position: position[j],
            };
            len += usize::from(d[j] <= bound_sq);
        }
    }
    len
}

/// Keeps the `k` smallest keys of `set[..len]` (in any order) and returns
/// their number, `min(k, len)`.
#[inline]
fn keep_nearest(set: &mut [SetEntry], len: usize, k: usize) -> usize {
    let set = &mut set[..len];
    let excess = len.saturating_sub(k);
    if excess == 0 {
        return len;
    }
    if excess <= EXCESS_BY_SCAN {
        for removed in 0..excess {
            let live = &set[..len - removed];
            let mut worst = 0;
            let mut worst_key = live[0].key();
            for (i, e) in live.iter().enumerate().skip(1) {
                let key = e.key();
                if key > worst_key {
                    (worst, worst_key) = (i, key);
                }
            }
            set.swap(worst, len - 1 - removed);
        }
    } else {
        set.select_nth_unstable_by_key(k - 1, SetEntry::key);
    }
    k
}

fn point3(p: [f64; 3]) -> nalgebra::Point3<f64> {
    nalgebra::Point3::new(p[0], p[1], p[2])
}

#[cfg(test)]
mod tests {
    use crate::kdtree::query::sort_neighbors;
    use crate::kdtree::query::tests::test_cloud;
    use crate::kdtree::{KdTree, KdTreeConfig, Neighbor};

    /// Every own-point set equals the sorted hybrid search of that point
    /// (members and distances, ties by the lower index), for radius, hybrid
    /// and kNN forms, k below, at and far above the leaf size, tiny and
    /// empty trees, leaves of 1 to 24 points.
    #[test]
    fn own_sets_equal_the_per_point_search() {
        for (seed, n) in [(1, 0), (2, 1), (3, 7), (4, 60), (5, 900), (6, 2500)] {
            let points = test_cloud(seed, n);
            for leaf_size in [1, 4, 24] {
                let config = KdTreeConfig {
                    leaf_size,
                    ..Default::default()
                };
                let tree = KdTree::build_with(&points, &config).unwrap();
                let order: Vec<usize> = tree.tree_order().collect();
                for radius in [-1.0, 0.0, 0.3, 0.7, 2.5, f64::INFINITY] {
                    for max_nn in [0, 1, 3, 10, 20, 30, 101, usize::MAX] {
                        let mut got: Vec<Vec<Neighbor>> = vec![Vec::new(); tree.len()];
                        tree.for_each_own_set(radius, max_nn, &mut got, |position, set, out| {
                            for e in set {
                                assert_eq!(tree.indices[e.position as usize], e.index);
                            }
                            *out = set
                                .iter()
                                .map(|e| Neighbor {
                                    index: e.index as usize,
                                    distance_sq: e.distance_sq,
                                })
                                .collect();
                            sort_neighbors(out);
                            assert!(position < order.len());
                        });
                        let mut expected = Vec::new();
                        for (position, &i) in order.iter().enumerate() {
                            tree.hybrid(&points[i], radius, max_nn, &mut expected);
                            assert_eq!(
                                got[position], expected,
                                "n {n} leaf {leaf_size} r {radius} max_nn {max_nn} point {i}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Among 20,000 copies of one point (and a few others) the leaves
    /// gather bounded candidate lists (issue 26: each gathered every copy)
    /// and the sets still equal the per-point search.
    #[test]
    fn duplicates_gather_few_candidates() {
        let mut points = vec![nalgebra::Point3::new(0.5, 0.5, 0.5); 20_000];
        points.extend((0..40).map(|i| nalgebra::Point3::new(0.5 + f64::from(i) * 0.01, 0.5, 0.5)));
        let tree = KdTree::build(&points).unwrap();
        let order: Vec<usize> = tree.tree_order().collect();
        for (radius, max_nn) in [(f64::INFINITY, 10), (0.5, 30)] {
            let mut scratch = super::LeafScratch::default();
            let mut total = 0;
            for leaf in tree.first_leaf()..tree.node_count() {
                let mut expected = Vec::new();
                tree.own_sets_of_leaf(leaf, radius, max_nn, &mut scratch, |position, set| {
                    let mut got: Vec<Neighbor> = set
                        .iter()
                        .map(|e| Neighbor {
                            index: e.index as usize,
                            distance_sq: e.distance_sq,
                        })
                        .collect();
                    sort_neighbors(&mut got);
                    tree.hybrid(&points[order[position]], radius, max_nn, &mut expected);
                    assert_eq!(got, expected, "position {position}");
                });
                total += scratch.position.len();
            }
            // Before: every copy for each of the 626 leaves (1.25e7). Now
            // at most the leaves holding the `max_nn + 1` lowest indices
            // (under 32 points each) per leaf, and every copy only for the
            // few leaves where the copies meet the other points.
            let leaves = tree.node_count() - tree.first_leaf();
            let bound = leaves * (max_nn + 1) * 32 + 3 * points.len();
            assert!(total < bound, "{total} candidates gathered (bound {bound})");
        }
    }

    /// The sets, and their order, do not depend on the thread count.
    #[test]
    fn own_sets_are_thread_count_independent() {
        let points = test_cloud(9, 5000);
        let tree = KdTree::build(&points).unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut out: Vec<Vec<(u32, u64)>> = vec![Vec::new(); tree.len()];
                tree.for_each_own_set(1.0, 30, &mut out, |_, set, out| {
                    *out = set
                        .iter()
                        .map(|e| (e.index, e.distance_sq.to_bits()))
                        .collect();
                });
                out
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}
