//! Building the tree: median partitioning with `rayon::join`, then boxes.
//!
//! The median selection is std's introselect on integer keys (most of a
//! build); the layout (coordinates and leaf boxes) is written in one
//! recursion over the leaves after the partition buffer is freed, with
//! compare-selects instead of `f64::min`/`max` and a prefetch of the input
//! points ahead of the gather. Measurements and the alternatives that were
//! tried and rejected: `docs/performance.md`, "k-d tree build".

// Loops over the three axes index several arrays at once.
#![allow(clippy::needless_range_loop)]

use std::sync::atomic::{AtomicBool, Ordering};

use nalgebra::Point3;
use rayon::prelude::*;

use super::leaf_layout::LeafLayout;
use super::{KdTree, KdTreeConfig, NodeBox};
use crate::error::{Error, Result};
use crate::prefetch::prefetch;

/// One point during the build: its coordinates relative to the first point,
/// rounded to f32 and mapped to integers in IEEE total order, and its input
/// index. 16 bytes, so the median selection moves little memory.
#[derive(Debug, Clone, Copy)]
struct Item {
    key: [i32; 3],
    index: u32,
}

/// Maps an f32 to an i32 with the same (IEEE 754 total) order.
fn ordered_key(x: f32) -> i32 {
    let bits = x.to_bits() as i32;
    bits ^ (((bits >> 31) as u32) >> 1) as i32
}

/// Inverse of [`ordered_key`].
fn key_value(key: i32) -> f32 {
    f32::from_bits((key ^ (((key >> 31) as u32) >> 1) as i32) as u32)
}

/// Number of levels so that every leaf holds at most `leaf_size` points.
fn level_count(n: usize, leaf_size: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let leaves_needed = n.div_ceil(leaf_size);
    1 + leaves_needed.next_power_of_two().trailing_zeros() as usize
}

/// Ranges `start..end` of every node of a heap with `n_levels` levels over
/// `n` points, split at `len / 2` (the same rule as [`partition`]), into
/// `start` and `end` (cleared first, their allocations reused).
fn node_ranges_into(n: usize, n_levels: usize, start: &mut Vec<u32>, end: &mut Vec<u32>) {
    let n_nodes = (1usize << n_levels) - 1;
    start.clear();
    start.resize(n_nodes, 0);
    end.clear();
    end.resize(n_nodes, 0);
    if n_nodes > 0 {
        end[0] = n as u32;
    }
    for node in 0..n_nodes.saturating_sub(1) / 2 {
        let (s, e) = (start[node], end[node]);
        let mid = s + (e - s) / 2;
        start[2 * node + 1] = s;
        end[2 * node + 1] = mid;
        start[2 * node + 2] = mid;
        end[2 * node + 2] = e;
    }
}

#[cfg(test)]
fn node_ranges(n: usize, n_levels: usize) -> (Vec<u32>, Vec<u32>) {
    let (mut start, mut end) = (Vec::new(), Vec::new());
    node_ranges_into(n, n_levels, &mut start, &mut end);
    (start, end)
}

/// A box in key units (f32 metres from the origin).
#[derive(Debug, Clone, Copy)]
struct KeyBox {
    lo: [f32; 3],
    hi: [f32; 3],
}

impl KeyBox {
    /// The box of at most [`SAMPLE`] evenly spaced items (all of them when
    /// there are few): an estimate of the tight box at a negligible cost.
    fn sampled(items: &[Item]) -> KeyBox {
        let stride = (items.len() / SAMPLE).max(1);
        let mut lo = [i32::MAX; 3];
        let mut hi = [i32::MIN; 3];
        for it in items.iter().step_by(stride) {
            for a in 0..3 {
                lo[a] = lo[a].min(it.key[a]);
                hi[a] = hi[a].max(it.key[a]);
            }
        }
        KeyBox {
            lo: lo.map(key_value),
            hi: hi.map(key_value),
        }
    }

    /// The axis (0, 1, 2) of largest extent; ties → lowest axis.
    fn widest_axis(&self) -> usize {
        let spread = |a: usize| self.hi[a] - self.lo[a];
        let mut best = 0;
        for a in 1..3 {
            if spread(a) > spread(best) {
                best = a;
            }
        }
        best
    }
}

/// Items sampled per node to estimate its spread.
const SAMPLE: usize = 16;

/// Puts the median along `axis` at position `mid`, smaller keys before it.
fn select_median(items: &mut [Item], mid: usize, axis: usize) {
    match axis {
        0 => items.select_nth_unstable_by_key(mid, |it| it.key[0]),
        1 => items.select_nth_unstable_by_key(mid, |it| it.key[1]),
        _ => items.select_nth_unstable_by_key(mid, |it| it.key[2]),
    };
}

/// Recursively partitions `items` into a subtree of `levels` levels: split
/// at the median of the axis of largest spread, the spread estimated from
/// [`SAMPLE`] evenly spaced items (exact for small nodes), so choosing the
/// axis costs no pass over the points.
fn partition(items: &mut [Item], levels: usize, parallel_min_points: usize) {
    if levels <= 1 || items.len() <= 1 {
        return;
    }
    let mid = items.len() / 2;
    let axis = KeyBox::sampled(items).widest_axis();
    select_median(items, mid, axis);
    if items.len() >= PACE_MIN_POINTS {
        crate::pace::checkpoint();
    }
    let big = items.len() >= parallel_min_points;
    let (left, right) = items.split_at_mut(mid);
    if big {
        rayon::join(
            || partition(left, levels - 1, parallel_min_points),
            || partition(right, levels - 1, parallel_min_points),
        );
    } else {
        partition(left, levels - 1, parallel_min_points);
        partition(right, levels - 1, parallel_min_points);
    }
}

/// Union of two boxes.
fn union(a: &NodeBox, b: &NodeBox) -> NodeBox {
    let mut u = *a;
    for k in 0..3 {
        u.lo[k] = u.lo[k].min(b.lo[k]);
        u.hi[k] = u.hi[k].max(b.hi[k]);
    }
    u
}

/// The empty box (`+inf/-inf`), the box of a leaf without points.
const EMPTY_BOX: NodeBox = NodeBox {
    lo: [f64::INFINITY; 3],
    hi: [f64::NEG_INFINITY; 3],
};

/// The layout arrays of one subtree, tree positions `0..len` of it.
struct LayoutOut<'a> {
    x: &'a mut [f64],
    y: &'a mut [f64],
    z: &'a mut [f64],
    /// The boxes of the subtree's leaves, left to right.
    leaf_bounds: &'a mut [NodeBox],
}

impl LayoutOut<'_> {
    /// Splits at tree position `mid` and at the middle leaf.
    fn split_at(&mut self, mid: usize) -> (LayoutOut<'_>, LayoutOut<'_>) {
        let (xl, xr) = self.x.split_at_mut(mid);
        let (yl, yr) = self.y.split_at_mut(mid);
        let (zl, zr) = self.z.split_at_mut(mid);
        let half = self.leaf_bounds.len() / 2;
        let (bl, br) = self.leaf_bounds.split_at_mut(half);
        (
            LayoutOut {
                x: xl,
                y: yl,
                z: zl,
                leaf_bounds: bl,
            },
            LayoutOut {
                x: xr,
                y: yr,
                z: zr,
                leaf_bounds: br,
            },
        )
    }
}

/// Writes the layout of a subtree of `levels` levels whose tree positions
/// hold the input points `indices` in one pass (recursing like
/// [`partition`], in parallel above `parallel_min_points`): per tree
/// position the point's coordinates, per leaf its tight box.
///
/// `ahead` holds the indices from this subtree's first position on, to the
/// end of the part of the tree this task lays out: while it writes position
/// `t`, it prefetches the point of position `t + PREFETCH_DISTANCE`.
fn lay_out(
    indices: &[u32],
    ahead: &[u32],
    points: &[Point3<f64>],
    out: &mut LayoutOut<'_>,
    levels: usize,
    parallel_min_points: usize,
) {
    if levels <= 1 {
        let mut b = EMPTY_BOX;
        for (t, &i) in indices.iter().enumerate() {
            if let Some(&j) = ahead.get(t + PREFETCH_DISTANCE) {
                prefetch_point(&points[j as usize]);
            }
            let p = &points[i as usize];
            (out.x[t], out.y[t], out.z[t]) = (p.x, p.y, p.z);
            // Compare-selects (`minsd`/`maxsd`), not `f64::min`/`max`: the
            // points are finite, and the NaN handling of those tripled the
            // instructions per point, so fewer of the gather's cache misses
            // overlapped.
            for (a, c) in [p.x, p.y, p.z].into_iter().enumerate() {
                b.lo[a] = if c < b.lo[a] { c } else { b.lo[a] };
                b.hi[a] = if c > b.hi[a] { c } else { b.hi[a] };
            }
        }
        out.leaf_bounds[0] = b;
        return;
    }
    if indices.len() >= PACE_MIN_POINTS && indices.len() < 2 * PACE_MIN_POINTS {
        crate::pace::checkpoint();
    }
    let mid = indices.len() / 2;
    let (il, ir) = indices.split_at(mid);
    let (mut ol, mut or) = out.split_at(mid);
    if indices.len() >= parallel_min_points {
        rayon::join(
            || lay_out(il, il, points, &mut ol, levels - 1, parallel_min_points),
            || lay_out(ir, ir, points, &mut or, levels - 1, parallel_min_points),
        );
    } else {
        let ahead_right = ahead.get(mid..).unwrap_or_default();
        lay_out(il, ahead, points, &mut ol, levels - 1, parallel_min_points);
        lay_out(
            ir,
            ahead_right,
            points,
            &mut or,
            levels - 1,
            parallel_min_points,
        );
    }
}

/// Tree positions between a point's prefetch and its read in [`lay_out`].
const PREFETCH_DISTANCE: usize = 128;

/// Asks for the cache lines of `p` (24 bytes, which may straddle two lines)
/// without waiting for them. The layout's reads of the points in tree order
/// are random accesses into the input (2.9 MB for a KITTI frame, more than
/// L2); plain loads left about ten of them in flight, and the gather took
/// a fifth to a third of a 1-thread build's `perf` samples.
#[inline(always)]
fn prefetch_point(p: &Point3<f64>) {
    prefetch(&p.x);
    prefetch(&p.z);
}

/// Nodes of at least this many points are where a paced build
/// ([`crate::pace`]) may pause.
const PACE_MIN_POINTS: usize = 4096;

/// Points per rayon task in the element-wise passes.
const MIN_LEN: usize = 4096;

impl KdTree {
    /// Builds the tree with the default config ([`KdTreeConfig::default`]).
    ///
    /// # Errors
    /// See [`KdTree::build_with`].
    pub fn build(points: &[Point3<f64>]) -> Result<KdTree> {
        Self::build_with(points, &KdTreeConfig::default())
    }

    /// Builds the tree over `points` (metres); see the [module docs](super)
    /// for the algorithm. An empty slice gives an empty tree.
    ///
    /// Parallel with rayon (in the current pool); the result is bit-identical
    /// at any thread count. O(n log n) work, O(n) extra memory.
    ///
    /// # Errors
    /// - [`Error::InvalidParameter`] for `leaf_size = 0` or more than
    ///   `u32::MAX` points;
    /// - [`Error::NonFinite`] naming the first point with a NaN/inf coordinate.
    pub fn build_with(points: &[Point3<f64>], config: &KdTreeConfig) -> Result<KdTree> {
        let mut tree = KdTree::empty(config);
        // A one-off build frees its partition buffer as soon as it is done
        // (before the layout is allocated: a lower peak heap).
        tree.rebuild_impl(points, config, false)?;
        Ok(tree)
    }

    /// Rebuilds this tree over new `points` (metres) with `config`, reusing
    /// its allocations: the per-frame rebuild of a pipeline. The result is
    /// the tree [`KdTree::build_with`] gives, bit for bit; only the memory
    /// differs: the arrays are overwritten in place (no fresh pages to fault
    /// in, which is about a fifth of a fresh build of a 122k-point KITTI
    /// frame on this VM), and the tree keeps its 16-byte-per-point partition
    /// buffer between rebuilds.
    ///
    /// # Errors
    /// As [`KdTree::build_with`]; on error the tree is left empty.
    pub fn rebuild_with(&mut self, points: &[Point3<f64>], config: &KdTreeConfig) -> Result<()> {
        let result = self.rebuild_impl(points, config, true);
        if result.is_err() {
            self.clear();
        }
        result
    }

    /// [`KdTree::rebuild_with`] with the default config.
    ///
    /// # Errors
    /// As [`KdTree::build_with`]; on error the tree is left empty.
    pub fn rebuild(&mut self, points: &[Point3<f64>]) -> Result<()> {
        self.rebuild_with(points, &KdTreeConfig::default())
    }

    /// An empty tree with `config`'s leaf size.
    fn empty(config: &KdTreeConfig) -> KdTree {
        KdTree {
            leaf_size: config.leaf_size,
            n_levels: 0,
            indices: Vec::new(),
            layout: LeafLayout::default(),
            node_start: Vec::new(),
            node_end: Vec::new(),
            node_bounds: Vec::new(),
            node_min_index: Vec::new(),
            scratch: BuildScratch::default(),
        }
    }

    /// Makes the tree empty (allocations kept): equal to an empty build.
    fn clear(&mut self) {
        self.n_levels = 0;
        self.indices.clear();
        self.layout.fill_with(0, |_, _, _| {});
        self.node_start.clear();
        self.node_end.clear();
        self.node_bounds.clear();
        self.node_min_index.clear();
    }

    /// The build into this tree's buffers; `keep_scratch`: keep the
    /// partition buffer for the next rebuild.
    fn rebuild_impl(
        &mut self,
        points: &[Point3<f64>],
        config: &KdTreeConfig,
        keep_scratch: bool,
    ) -> Result<()> {
        config.validate()?;
        self.leaf_size = config.leaf_size;
        if points.len() > u32::MAX as usize {
            return Err(Error::invalid(
                "points",
                points.len(),
                "a k-d tree holds at most 2^32 - 1 points",
            ));
        }
        let n = points.len();
        let n_levels = level_count(n, config.leaf_size);

        let origin = points.first().copied().unwrap_or_else(Point3::origin);
        // An indexed collect writes the items in place (collecting into an
        // `Option<Vec<_>>` would go through rayon's unindexed path and copy
        // them once more); non-finite points only raise a flag here.
        let non_finite = AtomicBool::new(false);
        let items = &mut self.scratch.items;
        points
            .par_iter()
            .with_min_len(MIN_LEN)
            .enumerate()
            .map(|(i, p)| {
                if i % MIN_LEN == MIN_LEN - 1 {
                    crate::pace::checkpoint();
                }
                if !(p.x.is_finite() && p.y.is_finite() && p.z.is_finite()) {
                    non_finite.store(true, Ordering::Relaxed);
                }
                Item {
                    key: [
                        ordered_key((p.x - origin.x) as f32),
                        ordered_key((p.y - origin.y) as f32),
                        ordered_key((p.z - origin.z) as f32),
                    ],
                    index: i as u32,
                }
            })
            .collect_into_vec(items);
        crate::pace::checkpoint();
        if non_finite.into_inner() {
            let index = points
                .iter()
                .position(|p| !p.coords.iter().all(|c| c.is_finite()))
                .unwrap_or(0);
            return Err(Error::NonFinite {
                what: "k-d tree input".into(),
                index,
            });
        }
        partition(items, n_levels, config.parallel_min_points.max(2));
        crate::pace::checkpoint();

        self.n_levels = n_levels;
        node_ranges_into(n, n_levels, &mut self.node_start, &mut self.node_end);
        items
            .par_iter()
            .with_min_len(MIN_LEN)
            .map(|it| it.index)
            .collect_into_vec(&mut self.indices);
        if !keep_scratch {
            self.scratch = BuildScratch::default();
        }
        crate::pace::checkpoint();
        let n_nodes = self.node_start.len();
        let first_leaf = n_nodes / 2;
        self.node_bounds.clear();
        self.node_bounds.resize(n_nodes, EMPTY_BOX);
        let (indices, node_bounds) = (&self.indices, &mut self.node_bounds);
        self.layout.fill_with(n, |x, y, z| {
            if n_levels > 0 {
                let mut out = LayoutOut {
                    x,
                    y,
                    z,
                    leaf_bounds: &mut node_bounds[first_leaf..],
                };
                lay_out(
                    indices,
                    indices,
                    points,
                    &mut out,
                    n_levels,
                    config.parallel_min_points.max(2),
                );
            }
        });
        crate::pace::checkpoint();
        for node in (0..first_leaf).rev() {
            node_bounds[node] = union(&node_bounds[2 * node + 1], &node_bounds[2 * node + 2]);
        }
        // The lowest input index per node: one pass over the leaves' index
        // ranges, then the inner nodes from their children.
        let min_index = &mut self.node_min_index;
        min_index.clear();
        min_index.resize(n_nodes, u32::MAX);
        for node in first_leaf..n_nodes {
            let range = self.node_start[node] as usize..self.node_end[node] as usize;
            min_index[node] = self.indices[range]
                .iter()
                .copied()
                .min()
                .unwrap_or(u32::MAX);
        }
        crate::pace::checkpoint();
        for node in (0..first_leaf).rev() {
            min_index[node] = min_index[2 * node + 1].min(min_index[2 * node + 2]);
        }
        Ok(())
    }
}

/// The partition buffer of a build, kept by trees that are rebuilt (see
/// [`KdTree::rebuild_with`]). Never part of a tree's value: it compares
/// equal to any other and clones empty.
#[derive(Default)]
pub(super) struct BuildScratch {
    items: Vec<Item>,
}

impl BuildScratch {
    /// Heap bytes held by the partition buffer.
    pub(super) fn heap_bytes(&self) -> usize {
        self.items.capacity() * size_of::<Item>()
    }
}

impl Clone for BuildScratch {
    fn clone(&self) -> Self {
        BuildScratch::default()
    }
}

impl PartialEq for BuildScratch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for BuildScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BuildScratch({} items)", self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_key_keeps_order_and_round_trips() {
        let xs = [-1e30f32, -2.5, -0.0, 0.0, 1e-40, 0.5, 3.0, 1e30];
        for w in xs.windows(2) {
            assert!(ordered_key(w[0]) <= ordered_key(w[1]), "{w:?}");
        }
        for x in xs {
            assert_eq!(key_value(ordered_key(x)).to_bits(), x.to_bits());
        }
    }

    /// A tree rebuilt in place equals a fresh build of the same points,
    /// whatever it held before (larger, smaller, empty, other leaf size),
    /// and a failed rebuild leaves it empty.
    #[test]
    fn rebuild_equals_a_fresh_build() {
        use crate::kdtree::query::tests::test_cloud;
        let config = |leaf_size| KdTreeConfig {
            leaf_size,
            ..Default::default()
        };
        let mut tree = KdTree::build(&test_cloud(1, 3000)).unwrap();
        for (seed, n, leaf_size) in [(2, 5000, 32), (3, 40, 4), (4, 0, 8), (5, 2500, 24)] {
            let points = test_cloud(seed, n);
            tree.rebuild_with(&points, &config(leaf_size)).unwrap();
            let fresh = KdTree::build_with(&points, &config(leaf_size)).unwrap();
            assert_eq!(tree, fresh, "seed {seed} n {n} leaf_size {leaf_size}");
            assert_eq!(tree.indices, fresh.indices);
            assert_eq!(tree.node_bounds, fresh.node_bounds);
            assert_eq!(tree.node_min_index, fresh.node_min_index);
            assert_eq!(tree.layout, fresh.layout);
        }
        let mut bad = test_cloud(6, 100);
        bad[50].x = f64::NAN;
        assert!(matches!(
            tree.rebuild(&bad),
            Err(Error::NonFinite { index: 50, .. })
        ));
        assert!(tree.is_empty());
        assert_eq!(tree, KdTree::build(&[]).unwrap());
        tree.rebuild(&test_cloud(7, 900)).unwrap();
        assert_eq!(tree, KdTree::build(&test_cloud(7, 900)).unwrap());
    }

    #[test]
    fn a_paced_build_in_one_thread_equals_a_plain_build() {
        use crate::kdtree::query::tests::test_cloud;
        use crate::pace::{Pace, paced};
        let points = test_cloud(8, 60_000);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let pace = Pace {
            cpu_share: 0.5,
            slice: std::time::Duration::from_micros(20),
        };
        let (tree, report) = pool.install(|| paced(&pace, || KdTree::build(&points).unwrap()));
        let plain = KdTree::build(&points).unwrap();
        assert_eq!(tree, plain);
        assert_eq!(tree.indices, plain.indices);
        assert_eq!(tree.node_bounds, plain.node_bounds);
        assert_eq!(tree.layout, plain.layout);
        assert!(report.pauses > 0, "{report:?}");
    }

    #[test]
    fn level_count_keeps_leaves_at_most_leaf_size() {
        for n in 1..300 {
            for leaf_size in 1..20 {
                let levels = level_count(n, leaf_size);
                let (s, e) = node_ranges(n, levels);
                let first_leaf = (1 << (levels - 1)) - 1;
                for node in first_leaf..s.len() {
                    assert!((e[node] - s[node]) as usize <= leaf_size);
                    if leaf_size >= 2 {
                        assert!(e[node] > s[node], "empty leaf n={n} ls={leaf_size}");
                    }
                }
                if levels > 1 {
                    // One level fewer would overflow a leaf.
                    assert!(n.div_ceil(1 << (levels - 2)) > leaf_size);
                }
            }
        }
        assert_eq!(level_count(0, 8), 0);
        assert_eq!(level_count(8, 8), 1);
        assert_eq!(level_count(9, 8), 2);
    }
}
