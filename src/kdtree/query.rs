//! Single queries: nearest, kNN, radius and hybrid search.
//!
//! # Search (Friedman, Bentley & Finkel 1977)
//! Depth first, nearer child first. A child is entered only when the exact
//! distance from the query to its tight bounding box is within the current
//! threshold (the k-th best distance so far, or the radius). On LiDAR
//! surfaces the tight boxes are much smaller than the k-d cells, so this
//! prunes far better than the incremental cell bound of Arya & Mount
//! (nanoflann): on the BALM ICP pair it scans half the leaves (measured with
//! [`QueryStats`]).
//!
//! # Leaf scan
//! A leaf's points are read from the tree's structure-of-arrays copy (`leaf_layout`,
//! `x`, `y`, `z` contiguous in tree order, padded): the distances of 8
//! consecutive points are computed at once (a loop the compiler vectorises,
//! still exactly `(dx * dx + dy * dy) + dz * dz` in `f64`, no fused
//! multiply-add), compared with the current threshold into an 8-bit mask,
//! and only the set bits are offered to the collector (rechecked against the
//! threshold, which may shrink within the block).
//!
//! # Candidate collection
//! - sorted results (`knn`, `hybrid`, the batch and `*_all` queries): one
//!   insertion-sort step per accepted candidate on the sorted list;
//! - neighbour *sets* (crate-internal `nearest_set_hinted`, used by normal
//!   estimation, which needs no order): candidates within the threshold are
//!   appended, and whenever `2k` are held `select_nth_unstable` keeps the k
//!   best and lowers the threshold to the k-th distance. The members are
//!   exactly those of the sorted search (same tie-break), each with its tree
//!   position so the caller reads the coordinates from the tree's cache-warm
//!   copy.
//!
//! Measurements and the variants tried and rejected: `docs/performance.md`,
//! "k-d tree queries".

// Loops over the three axes index several arrays at once.
#![allow(clippy::needless_range_loop)]

use nalgebra::Point3;

use super::leaf_layout::LeafLayout;
use super::{KdTree, Neighbor, QueryStats};

/// Work counters, compiled away for [`NoStats`].
pub(super) trait Counter {
    fn node(&mut self);
    fn leaf(&mut self, points: usize);
}

/// The counter that counts nothing.
pub(super) struct NoStats;

impl Counter for NoStats {
    #[inline(always)]
    fn node(&mut self) {}
    #[inline(always)]
    fn leaf(&mut self, _points: usize) {}
}

impl Counter for QueryStats {
    #[inline(always)]
    fn node(&mut self) {
        self.nodes_visited += 1;
    }
    #[inline(always)]
    fn leaf(&mut self, points: usize) {
        self.leaves_scanned += 1;
        self.distance_evaluations += points as u64;
    }
}

/// Squared distance `(dx² + dy²) + dz²`, m² (same bits as nalgebra's
/// `(p - q).norm_squared()`).
#[inline(always)]
pub(super) fn distance_sq(p: &[f64; 3], q: &[f64; 3]) -> f64 {
    let dx = p[0] - q[0];
    let dy = p[1] - q[1];
    let dz = p[2] - q[2];
    dx * dx + dy * dy + dz * dz
}

/// Squared gap along one axis, m², from the signed distances `below` (box
/// minimum − coordinate) and `above` (coordinate − box maximum), or the
/// analogues between two boxes: the larger of them if positive, else 0.
/// Plain compares (one `maxsd` each) instead of `f64::max`, whose NaN rules
/// cost extra instructions; the inputs are finite here.
#[inline(always)]
pub(super) fn gap_sq(below: f64, above: f64) -> f64 {
    let d = if below > above { below } else { above };
    let d = if d > 0.0 { d } else { 0.0 };
    d * d
}

/// Sorts by `(distance_sq, index)`.
pub(super) fn sort_neighbors(v: &mut [Neighbor]) {
    v.sort_unstable_by(|a, b| {
        a.distance_sq
            .total_cmp(&b.distance_sq)
            .then(a.index.cmp(&b.index))
    });
}

/// Converts a radius in metres to the squared bound, `None` when nothing can
/// be within it (negative or NaN).
#[inline]
fn radius_to_sq(radius: f64) -> Option<f64> {
    (radius >= 0.0).then_some(radius * radius)
}

/// What a depth-first search collects from the leaves it scans.
trait Collector {
    /// Largest squared distance still of interest, m² (nodes whose lower
    /// bound exceeds it are skipped).
    fn bound_sq(&self) -> f64;
    /// For a node whose box distance equals [`Collector::bound_sq`]: false
    /// when no point of index `min_index` or above can be accepted any more
    /// (ties are broken by the lower index, so such a node can be skipped).
    fn tie_may_enter(&self, min_index: u32) -> bool;
    /// Offers the points of leaf node `leaf`, tree positions `start..end`,
    /// to the collector: coordinates from `layout`, input indices from
    /// `indices` (all of the tree's, indexed by tree position).
    fn scan(
        &mut self,
        leaf: usize,
        start: usize,
        end: usize,
        layout: &LeafLayout,
        indices: &[u32],
        q: &[f64; 3],
    );
}

/// The best candidate of a nearest search (`index = usize::MAX`: none yet).
struct Best {
    distance_sq: f64,
    index: usize,
    /// Tree position of `index` (meaningless while `index` is `usize::MAX`).
    position: usize,
    /// Leaf node holding `position`.
    leaf: usize,
}

impl Collector for Best {
    #[inline(always)]
    fn bound_sq(&self) -> f64 {
        self.distance_sq
    }

    #[inline(always)]
    fn tie_may_enter(&self, min_index: u32) -> bool {
        (min_index as usize) < self.index
    }

    #[inline(always)]
    fn scan(
        &mut self,
        leaf: usize,
        start: usize,
        end: usize,
        layout: &LeafLayout,
        indices: &[u32],
        q: &[f64; 3],
    ) {
        layout.scan_within(
            start,
            end,
            q,
            self,
            |best| best.distance_sq,
            |best, position, d| {
                let index = indices[position] as usize;
                if d < best.distance_sq || (d == best.distance_sq && index < best.index) {
                    best.distance_sq = d;
                    best.index = index;
                    best.position = position;
                    best.leaf = leaf;
                }
            },
        );
    }
}

/// Where a search may start: a tree position and the leaf node holding it
/// (see [`KdTree::hint_at`], [`KdTree::nearest_within_hinted`],
/// [`KdTree::hybrid_hinted`]). `SearchHint::default()` is "no hint".
///
/// A search with a hint first scans the hint's leaf and then climbs to the
/// root, entering each sibling subtree whose box is within the current
/// bound (bottom-up search, Friedman, Bentley & Finkel 1977, §5). Every
/// point is in that leaf or under exactly one of those siblings, so the
/// answer is exactly that of the search without a hint; a good hint (the
/// query's own leaf, or the leaf of a nearby query's answer) saves the
/// descent and most of the pruning tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SearchHint {
    /// Tree position of a point (`u32::MAX`: none).
    pub(super) position: u32,
    /// Leaf node holding `position`.
    pub(super) leaf: u32,
}

impl Default for SearchHint {
    fn default() -> Self {
        SearchHint {
            position: u32::MAX,
            leaf: u32::MAX,
        }
    }
}

/// The k best candidates so far, sorted by `(distance_sq, index)`.
struct Candidates<'a> {
    out: &'a mut Vec<Neighbor>,
    k: usize,
    /// Largest squared distance that can still enter: the bound until `k`
    /// candidates are held, then the k-th distance (kept here so the scan
    /// loop reads no vector).
    threshold: f64,
}

/// The order key of a candidate: `(distance_sq, index)` as one integer.
/// Squared distances are non-negative (never -0.0 or NaN: the query and the
/// points are finite), and the bits of a non-negative `f64` are ordered
/// like its value, so one `u128` comparison replaces two branchy ones.
#[inline(always)]
pub(super) fn order_key(distance_sq: f64, index: usize) -> u128 {
    (u128::from(distance_sq.to_bits()) << 64) | index as u128
}

impl<'a> Candidates<'a> {
    /// An empty candidate list for the `k ≥ 1` nearest within `bound_sq`.
    fn new(out: &'a mut Vec<Neighbor>, k: usize, bound_sq: f64) -> Self {
        Candidates {
            out,
            k,
            threshold: bound_sq,
        }
    }

    /// Offers a point with `d <= threshold`: one insertion-sort step on the
    /// sorted slice (shifting by hand: a `Vec::insert` calls `memmove`,
    /// which showed in normal estimation).
    #[inline(always)]
    fn offer(&mut self, d: f64, index: usize) {
        let new = Neighbor {
            index,
            distance_sq: d,
        };
        let key = order_key(d, index);
        let mut pos = self.out.len();
        if pos == self.k {
            match self.out.last() {
                Some(worst) if key < order_key(worst.distance_sq, worst.index) => pos -= 1,
                _ => return,
            }
        } else {
            self.out.push(new);
        }
        let out = self.out.as_mut_slice();
        while pos > 0 {
            let before = out[pos - 1];
            if key >= order_key(before.distance_sq, before.index) {
                break;
            }
            out[pos] = before;
            pos -= 1;
        }
        out[pos] = new;
        if out.len() == self.k {
            self.threshold = out[self.k - 1].distance_sq;
        }
    }
}

impl Collector for Candidates<'_> {
    #[inline(always)]
    fn bound_sq(&self) -> f64 {
        self.threshold
    }

    #[inline(always)]
    fn tie_may_enter(&self, min_index: u32) -> bool {
        // Until k are held the bound is the radius, which is inclusive.
        self.out.len() < self.k || (min_index as usize) < self.out[self.k - 1].index
    }

    #[inline(always)]
    fn scan(
        &mut self,
        _leaf: usize,
        start: usize,
        end: usize,
        layout: &LeafLayout,
        indices: &[u32],
        q: &[f64; 3],
    ) {
        layout.scan_within(
            start,
            end,
            q,
            self,
            |c| c.threshold,
            |c, position, d| {
                // The threshold may have shrunk since the block's mask.
                if d <= c.threshold {
                    c.offer(d, indices[position] as usize);
                }
            },
        );
    }
}

/// One member of a neighbour set found by [`KdTree::nearest_set_hinted`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SetEntry {
    /// Squared distance to the query, m².
    pub(crate) distance_sq: f64,
    /// Index in the input slice.
    pub(crate) index: u32,
    /// Tree position (for [`KdTree::point_at`]).
    pub(crate) position: u32,
}

impl SetEntry {
    #[inline(always)]
    pub(super) fn key(&self) -> u128 {
        order_key(self.distance_sq, self.index as usize)
    }
}

/// The `k` nearest within a bound as an unsorted set: candidates within the
/// current threshold are appended, and whenever `2k` are held the `k` best
/// are selected (`select_nth_unstable`, O(k)) and the threshold drops to the
/// k-th distance. Cheaper per candidate than keeping a sorted list (no
/// insertion shifts), at the price of a threshold that tightens in steps.
struct NearestSet<'a> {
    out: &'a mut Vec<SetEntry>,
    k: usize,
    threshold: f64,
    /// Index of the k-th best candidate at the last selection (`u32::MAX`
    /// before the first one): with `threshold`, the key every later member
    /// must beat.
    worst_index: u32,
}

impl NearestSet<'_> {
    /// Keeps the `k` best of the held candidates (the exact k smallest
    /// `(distance_sq, index)` keys, all distinct) and tightens the threshold.
    #[inline]
    fn compact(&mut self) {
        if self.out.len() > self.k {
            self.out
                .select_nth_unstable_by_key(self.k - 1, SetEntry::key);
            self.out.truncate(self.k);
            // After the selection the k-th smallest sits at k - 1 and every
            // entry before it is smaller.
            self.threshold = self.out[self.k - 1].distance_sq;
            self.worst_index = self.out[self.k - 1].index;
        }
    }
}

impl Collector for NearestSet<'_> {
    #[inline(always)]
    fn bound_sq(&self) -> f64 {
        self.threshold
    }

    #[inline(always)]
    fn tie_may_enter(&self, min_index: u32) -> bool {
        min_index < self.worst_index
    }

    #[inline(always)]
    fn scan(
        &mut self,
        _leaf: usize,
        start: usize,
        end: usize,
        layout: &LeafLayout,
        indices: &[u32],
        q: &[f64; 3],
    ) {
        layout.scan_within(
            start,
            end,
            q,
            self,
            |set| set.threshold,
            |set, position, d| {
                set.out.push(SetEntry {
                    distance_sq: d,
                    index: indices[position],
                    position: position as u32,
                });
            },
        );
        if self.out.len() >= self.k.saturating_mul(2) {
            self.compact();
        }
    }
}

/// Every point within a fixed squared radius, appended unsorted.
struct InRadius<'a> {
    out: &'a mut Vec<Neighbor>,
    r_sq: f64,
}

impl Collector for InRadius<'_> {
    #[inline(always)]
    fn bound_sq(&self) -> f64 {
        self.r_sq
    }

    #[inline(always)]
    fn tie_may_enter(&self, _min_index: u32) -> bool {
        true
    }

    #[inline(always)]
    fn scan(
        &mut self,
        _leaf: usize,
        start: usize,
        end: usize,
        layout: &LeafLayout,
        indices: &[u32],
        q: &[f64; 3],
    ) {
        layout.scan_within(
            start,
            end,
            q,
            self,
            |r| r.r_sq,
            |r, position, d| {
                r.out.push(Neighbor {
                    index: indices[position] as usize,
                    distance_sq: d,
                });
            },
        );
    }
}

impl KdTree {
    /// Exact squared distance from `q` to the box of `node`, m².
    #[inline(always)]
    pub(super) fn min_distance_sq(&self, node: usize, q: &[f64; 3]) -> f64 {
        self.axis_distances_sq(node, q).iter().sum()
    }

    /// Per-axis squared distances from `q` to the box of `node`, m².
    #[inline(always)]
    fn axis_distances_sq(&self, node: usize, q: &[f64; 3]) -> [f64; 3] {
        let b = &self.node_bounds[node];
        std::array::from_fn(|a| gap_sq(b.lo[a] - q[a], q[a] - b.hi[a]))
    }

    /// True when a node at box distance `d` (m²) may still hold a point the
    /// collector accepts: below its bound, or at it with a low enough index
    /// (the tie-break; see `node_min_index`).
    #[inline(always)]
    fn may_enter<C: Collector>(&self, node: usize, d: f64, collector: &C) -> bool {
        let bound = collector.bound_sq();
        d < bound || (d == bound && collector.tie_may_enter(self.node_min_index[node]))
    }

    /// Runs the search from the root when the tree is not empty, the query
    /// is finite and the root box is within `collector.bound_sq()`.
    #[inline(always)]
    fn search_from_root<C: Collector, S: Counter>(
        &self,
        q: &[f64; 3],
        collector: &mut C,
        counter: &mut S,
    ) {
        if !self.is_empty()
            && q.iter().all(|c| c.is_finite())
            && self.may_enter(0, self.min_distance_sq(0, q), collector)
        {
            self.search(0, q, collector, counter);
        }
    }

    /// Runs the search bottom-up from the hint's leaf (see [`SearchHint`]),
    /// or from the root when the hint names no leaf of this tree.
    #[inline(always)]
    fn search_from_hint<C: Collector, S: Counter>(
        &self,
        q: &[f64; 3],
        hint: &SearchHint,
        collector: &mut C,
        counter: &mut S,
    ) {
        let leaf = hint.leaf as usize;
        if !(self.first_leaf()..self.node_count()).contains(&leaf) {
            self.search_from_root(q, collector, counter);
            return;
        }
        if !q.iter().all(|c| c.is_finite()) {
            return;
        }
        self.scan_leaf(leaf, q, collector, counter);
        let mut node = leaf;
        while node > 0 {
            // Heap layout: left children are odd, right children even.
            let sibling = if node % 2 == 1 { node + 1 } else { node - 1 };
            if self.may_enter(sibling, self.min_distance_sq(sibling, q), collector) {
                self.search(sibling, q, collector, counter);
            }
            node = (node - 1) / 2;
        }
    }

    /// Offers the points of leaf node `leaf` to the collector.
    #[inline(always)]
    fn scan_leaf<C: Collector, S: Counter>(
        &self,
        leaf: usize,
        q: &[f64; 3],
        collector: &mut C,
        counter: &mut S,
    ) {
        counter.node();
        let (start, end) = (self.node_start[leaf] as usize, self.node_end[leaf] as usize);
        counter.leaf(end - start);
        collector.scan(leaf, start, end, &self.layout, &self.indices, q);
    }

    /// The hint that starts a search at the point at tree position
    /// `tree_position` (the `i`-th of [`KdTree::tree_order`]) and its leaf:
    /// the ideal start for querying the tree's own points. A position beyond
    /// the tree gives "no hint". O(tree height).
    pub(crate) fn hint_at(&self, tree_position: usize) -> SearchHint {
        if tree_position >= self.len() {
            return SearchHint::default();
        }
        let first_leaf = self.first_leaf();
        let mut node = 0;
        while node < first_leaf {
            let right = 2 * node + 2;
            node = if tree_position < self.node_start[right] as usize {
                right - 1
            } else {
                right
            };
        }
        SearchHint {
            position: tree_position as u32,
            leaf: node as u32,
        }
    }

    /// Depth-first search below `node` (already known to be within the
    /// collector's bound).
    fn search<C: Collector, S: Counter>(
        &self,
        node: usize,
        q: &[f64; 3],
        collector: &mut C,
        counter: &mut S,
    ) {
        let left = 2 * node + 1;
        if left >= self.node_bounds.len() {
            self.scan_leaf(node, q, collector, counter);
            return;
        }
        counter.node();
        let right = left + 1;
        let d_left = self.min_distance_sq(left, q);
        let d_right = self.min_distance_sq(right, q);
        // Equal distances (overlapping boxes, duplicates): the child with
        // the lower index first, as the tie-break favours it.
        let left_first = d_left < d_right
            || (d_left == d_right && self.node_min_index[left] <= self.node_min_index[right]);
        let (near, d_near, far, d_far) = if left_first {
            (left, d_left, right, d_right)
        } else {
            (right, d_right, left, d_left)
        };
        if self.may_enter(near, d_near, collector) {
            self.search(near, q, collector, counter);
        }
        if self.may_enter(far, d_far, collector) {
            self.search(far, q, collector, counter);
        }
    }

    /// The nearest point, or `None` for an empty tree (or a non-finite query).
    /// Ties go to the lower index.
    pub fn nearest(&self, q: &Point3<f64>) -> Option<Neighbor> {
        self.nearest_within(q, f64::INFINITY)
    }

    /// The nearest point within `max_distance` metres (inclusive), if any.
    /// A negative or NaN `max_distance` finds nothing.
    /// No allocation: the ICP correspondence search calls this per point.
    pub(crate) fn nearest_within(&self, q: &Point3<f64>, max_distance: f64) -> Option<Neighbor> {
        self.nearest_within_hinted(q, max_distance, &mut SearchHint::default())
    }

    /// [`KdTree::nearest_within`] that starts from `hint` (see
    /// [`SearchHint`]) and then stores its own answer there. The result is
    /// exactly that of `nearest_within` (same point, same tie-break); only
    /// the work differs.
    ///
    /// Meant for queries that move little between calls, like the source
    /// points of ICP from one iteration to the next: the previous answer's
    /// distance is a tight first bound and its leaf the place to start. A
    /// hint that is stale, far away or from another tree costs time, never
    /// correctness. A query that finds nothing leaves the hint unchanged.
    /// No allocation.
    pub(crate) fn nearest_within_hinted(
        &self,
        q: &Point3<f64>,
        max_distance: f64,
        hint: &mut SearchHint,
    ) -> Option<Neighbor> {
        let bound_sq = radius_to_sq(max_distance)?;
        let q = [q.x, q.y, q.z];
        let mut best = Best {
            distance_sq: bound_sq,
            index: usize::MAX,
            position: 0,
            leaf: 0,
        };
        let position = hint.position as usize;
        if let Some(&index) = self.indices.get(position) {
            let d = distance_sq(&self.layout.point(position), &q);
            if d <= bound_sq {
                best.distance_sq = d;
                best.index = index as usize;
                best.position = position;
                best.leaf = hint.leaf as usize;
            }
        }
        self.search_from_hint(&q, hint, &mut best, &mut NoStats);
        if best.index == usize::MAX {
            return None;
        }
        *hint = SearchHint {
            position: best.position as u32,
            leaf: best.leaf as u32,
        };
        Some(Neighbor {
            index: best.index,
            distance_sq: best.distance_sq,
        })
    }

    #[cfg(test)]
    /// [`KdTree::hybrid`] started from `hint` (see [`SearchHint`]; e.g.
    /// [`KdTree::hint_at`] when the query is the tree's own point). Same
    /// result as `hybrid`, less work with a good hint. No allocation beyond
    /// `out`.
    pub(crate) fn hybrid_hinted(
        &self,
        q: &Point3<f64>,
        radius: f64,
        max_nn: usize,
        hint: &SearchHint,
        out: &mut Vec<Neighbor>,
    ) {
        self.hybrid_from(&[q.x, q.y, q.z], radius, max_nn, hint, out, &mut NoStats);
    }

    /// The up-to-`max_nn` nearest points within `radius` metres (inclusive)
    /// as an unsorted set into `out` (cleared first), the search started
    /// from `hint`: the same members as [`KdTree::hybrid_hinted`] (ties by
    /// the lower index), in an order that depends only on the query and the
    /// tree. `max_nn = usize::MAX` gives the radius search. For callers that
    /// need the set, not the order (normal estimation); each entry carries
    /// its tree position for [`KdTree::point_at`].
    pub(crate) fn nearest_set_hinted(
        &self,
        q: &Point3<f64>,
        radius: f64,
        max_nn: usize,
        hint: &SearchHint,
        out: &mut Vec<SetEntry>,
    ) {
        out.clear();
        let Some(bound_sq) = radius_to_sq(radius) else {
            return;
        };
        if max_nn == 0 || self.is_empty() {
            return;
        }
        let mut set = NearestSet {
            out,
            k: max_nn,
            threshold: bound_sq,
            worst_index: u32::MAX,
        };
        self.search_from_hint(&[q.x, q.y, q.z], hint, &mut set, &mut NoStats);
        set.compact();
    }

    /// The point at tree position `position` (see
    /// [`KdTree::tree_order`]), metres.
    ///
    /// # Panics
    /// When `position >= self.len()` (a programming error).
    #[inline(always)]
    pub(crate) fn point_at(&self, position: usize) -> [f64; 3] {
        self.layout.point(position)
    }

    #[cfg(test)]
    /// [`KdTree::radius_unsorted`] started from `hint` (see [`SearchHint`]).
    /// Same result as `radius_unsorted`, less work with a good hint.
    pub(crate) fn radius_unsorted_hinted(
        &self,
        q: &Point3<f64>,
        radius: f64,
        hint: &SearchHint,
        out: &mut Vec<Neighbor>,
    ) {
        out.clear();
        self.radius_from(&[q.x, q.y, q.z], radius, hint, out, &mut NoStats);
    }

    /// The `k` nearest points sorted by `(distance_sq, index)` into `out`
    /// (cleared first). Fewer than `k` (all points) when the tree is smaller;
    /// nothing for `k = 0`.
    ///
    /// Complexity: O(log n + k) node visits on well-spread data; each accepted
    /// candidate costs O(k) to insert.
    pub fn knn(&self, q: &Point3<f64>, k: usize, out: &mut Vec<Neighbor>) {
        self.hybrid(q, f64::INFINITY, k, out);
    }

    /// [`KdTree::knn`] that also adds its work to `stats`.
    pub(crate) fn knn_with_stats(
        &self,
        q: &Point3<f64>,
        k: usize,
        out: &mut Vec<Neighbor>,
        stats: &mut QueryStats,
    ) {
        stats.queries += 1;
        self.hybrid_counted(&[q.x, q.y, q.z], f64::INFINITY, k, out, stats);
    }

    /// All points within `radius` metres (inclusive) sorted by
    /// `(distance_sq, index)` into `out` (cleared first).
    pub fn radius(&self, q: &Point3<f64>, radius: f64, out: &mut Vec<Neighbor>) {
        self.radius_unsorted(q, radius, out);
        sort_neighbors(out);
    }

    /// All points within `radius` metres (inclusive), in tree order (no
    /// particular order), into `out` (cleared first).
    pub(crate) fn radius_unsorted(&self, q: &Point3<f64>, radius: f64, out: &mut Vec<Neighbor>) {
        out.clear();
        self.radius_counted(&[q.x, q.y, q.z], radius, out, &mut NoStats);
    }

    /// [`KdTree::radius_unsorted`] that also adds its work to `stats`.
    pub(crate) fn radius_with_stats(
        &self,
        q: &Point3<f64>,
        radius: f64,
        out: &mut Vec<Neighbor>,
        stats: &mut QueryStats,
    ) {
        out.clear();
        stats.queries += 1;
        self.radius_counted(&[q.x, q.y, q.z], radius, out, stats);
    }

    /// Number of points within `radius` metres (inclusive). Faster than
    /// collecting the points: nodes whose box lies inside the ball are
    /// counted without distance evaluations.
    pub fn radius_count(&self, q: &Point3<f64>, radius: f64) -> usize {
        let q = [q.x, q.y, q.z];
        match radius_to_sq(radius) {
            Some(r_sq) if !self.is_empty() && q.iter().all(|c| c.is_finite()) => {
                self.count_node(0, &q, r_sq)
            }
            _ => 0,
        }
    }

    /// The up-to-`max_nn` nearest points within `radius` metres (inclusive),
    /// sorted by `(distance_sq, index)`, into `out` (cleared first): Open3D's
    /// hybrid search. Nothing for `max_nn = 0` or a negative/NaN radius.
    pub fn hybrid(&self, q: &Point3<f64>, radius: f64, max_nn: usize, out: &mut Vec<Neighbor>) {
        self.hybrid_counted(&[q.x, q.y, q.z], radius, max_nn, out, &mut NoStats);
    }

    /// Hybrid search on a raw query with a counter.
    #[inline]
    pub(super) fn hybrid_counted<S: Counter>(
        &self,
        q: &[f64; 3],
        radius: f64,
        max_nn: usize,
        out: &mut Vec<Neighbor>,
        counter: &mut S,
    ) {
        self.hybrid_from(q, radius, max_nn, &SearchHint::default(), out, counter);
    }

    /// Hybrid search on a raw query from a hint, with a counter.
    #[inline]
    pub(super) fn hybrid_from<S: Counter>(
        &self,
        q: &[f64; 3],
        radius: f64,
        max_nn: usize,
        hint: &SearchHint,
        out: &mut Vec<Neighbor>,
        counter: &mut S,
    ) {
        out.clear();
        if max_nn == 0 || self.is_empty() {
            return;
        }
        let Some(bound_sq) = radius_to_sq(radius) else {
            return;
        };
        if max_nn >= self.len() {
            // Every point within the radius qualifies: radius search + sort.
            self.radius_from(q, radius, hint, out, counter);
            sort_neighbors(out);
            return;
        }
        let mut candidates = Candidates::new(out, max_nn, bound_sq);
        self.search_from_hint(q, hint, &mut candidates, counter);
    }

    /// Radius search (unsorted, appending to `out`) with a counter.
    #[inline]
    pub(super) fn radius_counted<S: Counter>(
        &self,
        q: &[f64; 3],
        radius: f64,
        out: &mut Vec<Neighbor>,
        counter: &mut S,
    ) {
        self.radius_from(q, radius, &SearchHint::default(), out, counter);
    }

    /// Radius search (unsorted, appending to `out`) from a hint, with a
    /// counter.
    #[inline]
    pub(super) fn radius_from<S: Counter>(
        &self,
        q: &[f64; 3],
        radius: f64,
        hint: &SearchHint,
        out: &mut Vec<Neighbor>,
        counter: &mut S,
    ) {
        if let Some(r_sq) = radius_to_sq(radius) {
            self.search_from_hint(q, hint, &mut InRadius { out, r_sq }, counter);
        }
    }

    /// Exact squared distance from `q` to the farthest corner of the box.
    #[inline(always)]
    fn max_distance_sq(&self, node: usize, q: &[f64; 3]) -> f64 {
        let b = &self.node_bounds[node];
        let mut s = 0.0;
        for a in 0..3 {
            let d = (q[a] - b.lo[a]).abs().max((b.hi[a] - q[a]).abs());
            s += d * d;
        }
        s
    }

    fn count_node(&self, node: usize, q: &[f64; 3], r_sq: f64) -> usize {
        let (start, end) = (self.node_start[node] as usize, self.node_end[node] as usize);
        if start == end {
            return 0;
        }
        if self.max_distance_sq(node, q) <= r_sq {
            return end - start;
        }
        let left = 2 * node + 1;
        if left >= self.node_bounds.len() {
            // A plain scalar count: faster here than the blocked scan, as
            // no candidate is offered.
            return self.layout.count_within(start, end, q, r_sq);
        }
        [left, left + 1]
            .into_iter()
            .filter(|&child| self.min_distance_sq(child, q) <= r_sq)
            .map(|child| self.count_node(child, q, r_sq))
            .sum()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::kdtree::leaf_layout::{LANES, within_mask};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Spread points, exact duplicates, a line, an integer grid (many equal
    /// distances) and a dense noisy surface patch (the LiDAR case).
    pub(in crate::kdtree) fn test_cloud(seed: u64, n: usize) -> Vec<Point3<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| match i % 5 {
                0 => Point3::new(
                    rng.random_range(-5.0..5.0),
                    rng.random_range(-5.0..5.0),
                    rng.random_range(-5.0..5.0),
                ),
                1 => Point3::new(1.0, 2.0, 3.0),
                2 => Point3::new(rng.random_range(-1.0..1.0), 0.5, 0.0),
                3 => Point3::new(
                    f64::from(rng.random_range(-3..3)),
                    f64::from(rng.random_range(-3..3)),
                    0.25,
                ),
                _ => Point3::new(
                    rng.random_range(-2.0..2.0),
                    rng.random_range(-2.0..2.0),
                    rng.random_range(-0.01..0.01),
                ),
            })
            .collect()
    }

    /// `nearest_set_hinted` holds exactly the members (and distances) of
    /// the sorted hybrid search, from any hint, for k below, at and far
    /// above the leaf size (many select rounds) and for the radius form.
    #[test]
    fn nearest_set_equals_sorted_hybrid() {
        for (seed, n) in [(1, 0), (2, 1), (3, 50), (4, 700)] {
            let points = test_cloud(seed, n);
            let tree = KdTree::build_with(
                &points,
                &crate::kdtree::KdTreeConfig {
                    leaf_size: 6,
                    ..Default::default()
                },
            )
            .unwrap();
            let mut set = Vec::new();
            let mut sorted = Vec::new();
            let queries = points
                .iter()
                .copied()
                .chain([Point3::new(0.3, -0.2, 0.1), Point3::new(40.0, 0.0, 0.0)]);
            for (qi, q) in queries.enumerate() {
                let hint = tree.hint_at(qi);
                for radius in [0.0, 0.7, 2.5, f64::INFINITY] {
                    for max_nn in [1, 3, 10, 30, 101, usize::MAX] {
                        tree.nearest_set_hinted(&q, radius, max_nn, &hint, &mut set);
                        tree.hybrid(&q, radius, max_nn, &mut sorted);
                        let mut got: Vec<Neighbor> = set
                            .iter()
                            .map(|e| Neighbor {
                                index: e.index as usize,
                                distance_sq: e.distance_sq,
                            })
                            .collect();
                        sort_neighbors(&mut got);
                        assert_eq!(got, sorted, "n {n} q {qi} r {radius} max_nn {max_nn}");
                        for e in &set {
                            let p = tree.point_at(e.position as usize);
                            assert_eq!(tree.indices[e.position as usize], e.index);
                            assert_eq!(distance_sq(&p, &[q.x, q.y, q.z]), e.distance_sq);
                        }
                    }
                }
            }
        }
    }

    /// The blocked leaf scan gives the scalar distances bit for bit and
    /// masks the lanes past the leaf's end.
    #[test]
    fn blocked_distances_equal_scalar() {
        let points = test_cloud(9, 37);
        let tree = KdTree::build(&points).unwrap();
        let q = [0.123, -4.5, 2.25];
        for base in 0..tree.len() {
            let d = tree.layout.distances_sq(base, &q);
            for j in 0..LANES.min(tree.len() - base) {
                assert_eq!(
                    d[j].to_bits(),
                    distance_sq(&tree.point_at(base + j), &q).to_bits()
                );
            }
            let live = (tree.len() - base).min(LANES);
            let mask = within_mask(&d, f64::INFINITY, live);
            assert_eq!(mask, (1u32 << live) - 1);
        }
    }
}
