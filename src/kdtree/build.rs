//! Building the tree: median partitioning with `rayon::join`, then boxes.
//!
//! About 80 % of a 1-thread build of a KITTI frame (122,626 points) is the
//! median selection (`select_nth_unstable_by_key`, std's branchless
//! introselect); item creation, gathers and boxes share the rest.
//! Alternatives measured and rejected (CPU time per build, interleaved runs
//! on a shared 2-core VM, noise about ±5 %):
//! - nodes of ≤ 32 / ≤ 64 items sorted as packed `(key, position)` `u64`s
//!   instead of introselect: no gain (0 to +6 %);
//! - a Floyd–Rivest two-pivot selection (sorted sample of up to 1,024 keys,
//!   two partition passes, introselect on the middle band) for nodes of
//!   ≥ 1,024 items: +15 % to +60 %, the safe-Rust partition loop being
//!   slower per pass than std's;
//! - `#[repr(align(16))]` items: no change;
//! - the point gather fused with the leaf boxes (one recursion over the
//!   leaves): no change; writing the outputs inside the partition recursion
//!   instead raises the peak heap use (items + indices + points + boxes)
//!   past glibc's dynamic trim threshold, so every build page-faults its
//!   buffers afresh (+10 %).

// Loops over the three axes index several arrays at once.
#![allow(clippy::needless_range_loop)]

use std::sync::atomic::{AtomicBool, Ordering};

use nalgebra::Point3;
use rayon::prelude::*;

use super::leaf_layout::LeafLayout;
use super::{KdTree, KdTreeConfig, NodeBox};
use crate::error::{Error, Result};

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
/// `n` points, split at `len / 2` (the same rule as [`partition`]).
fn node_ranges(n: usize, n_levels: usize) -> (Vec<u32>, Vec<u32>) {
    let n_nodes = (1usize << n_levels) - 1;
    let mut start = vec![0u32; n_nodes];
    let mut end = vec![0u32; n_nodes];
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

/// Tight box of the points at tree positions `start..end` (`+inf/-inf`
/// when empty).
fn bounds_of(layout: &LeafLayout, start: usize, end: usize) -> NodeBox {
    let mut b = NodeBox {
        lo: [f64::INFINITY; 3],
        hi: [f64::NEG_INFINITY; 3],
    };
    for t in start..end {
        let p = layout.point(t);
        for a in 0..3 {
            b.lo[a] = b.lo[a].min(p[a]);
            b.hi[a] = b.hi[a].max(p[a]);
        }
    }
    b
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
        config.validate()?;
        if points.len() > u32::MAX as usize {
            return Err(Error::invalid(
                "points",
                points.len(),
                "a k-d tree holds at most 2^32 - 1 points",
            ));
        }
        let n = points.len();
        let n_levels = level_count(n, config.leaf_size);
        let (node_start, node_end) = node_ranges(n, n_levels);

        let origin = points.first().copied().unwrap_or_else(Point3::origin);
        // An indexed collect writes the items in place (collecting into an
        // `Option<Vec<_>>` would go through rayon's unindexed path and copy
        // them once more); non-finite points only raise a flag here.
        let non_finite = AtomicBool::new(false);
        let mut items: Vec<Item> = Vec::with_capacity(n);
        points
            .par_iter()
            .with_min_len(MIN_LEN)
            .enumerate()
            .map(|(i, p)| {
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
            .collect_into_vec(&mut items);
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
        partition(&mut items, n_levels, config.parallel_min_points.max(2));

        let indices: Vec<u32> = items
            .par_iter()
            .with_min_len(MIN_LEN)
            .map(|it| it.index)
            .collect();
        drop(items);
        let layout = LeafLayout::gather(points, &indices);
        let node_bounds = compute_bounds(&layout, &node_start, &node_end, n_levels);
        Ok(KdTree {
            leaf_size: config.leaf_size,
            n_levels,
            indices,
            layout,
            node_start,
            node_end,
            node_bounds,
        })
    }
}

/// Leaf boxes from the points (parallel), inner boxes bottom-up as unions.
fn compute_bounds(
    layout: &LeafLayout,
    node_start: &[u32],
    node_end: &[u32],
    n_levels: usize,
) -> Vec<NodeBox> {
    if n_levels == 0 {
        return Vec::new();
    }
    let n_nodes = node_start.len();
    let first_leaf = (1usize << (n_levels - 1)) - 1;
    let leaf_bounds: Vec<NodeBox> = (first_leaf..n_nodes)
        .into_par_iter()
        .with_min_len(256)
        .map(|node| bounds_of(layout, node_start[node] as usize, node_end[node] as usize))
        .collect();
    let mut bounds = vec![
        NodeBox {
            lo: [f64::INFINITY; 3],
            hi: [f64::NEG_INFINITY; 3],
        };
        first_leaf
    ];
    bounds.extend(leaf_bounds);
    for node in (0..first_leaf).rev() {
        bounds[node] = union(&bounds[2 * node + 1], &bounds[2 * node + 2]);
    }
    bounds
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
