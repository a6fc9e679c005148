//! Single queries: nearest, kNN, radius and hybrid search (depth first,
//! nearer child first, pruning by the exact distance to the child's box).

// Loops over the three axes index several arrays at once.
#![allow(clippy::needless_range_loop)]

use nalgebra::Point3;

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

/// `(a.distance_sq, a.index) < (b.distance_sq, b.index)`.
#[inline(always)]
fn precedes(d: f64, index: usize, n: &Neighbor) -> bool {
    d < n.distance_sq || (d == n.distance_sq && index < n.index)
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

/// The best candidate of a nearest search (`index = usize::MAX`: none yet).
struct Best {
    distance_sq: f64,
    index: usize,
}

/// The k best candidates so far, sorted by `(distance_sq, index)`.
struct Candidates<'a> {
    out: &'a mut Vec<Neighbor>,
    k: usize,
    bound_sq: f64,
}

impl Candidates<'_> {
    /// Largest squared distance that can still enter.
    #[inline(always)]
    fn threshold(&self) -> f64 {
        if self.out.len() < self.k {
            self.bound_sq
        } else {
            // k ≥ 1 here, so `out` is non-empty.
            self.out.last().map_or(self.bound_sq, |n| n.distance_sq)
        }
    }

    /// Offers a point with `d <= threshold()`.
    #[inline(always)]
    fn offer(&mut self, d: f64, index: usize) {
        if self.out.len() == self.k {
            match self.out.last() {
                Some(worst) if precedes(d, index, worst) => {
                    self.out.pop();
                }
                _ => return,
            }
        }
        let mut pos = self.out.len();
        while pos > 0 && precedes(d, index, &self.out[pos - 1]) {
            pos -= 1;
        }
        self.out.insert(
            pos,
            Neighbor {
                index,
                distance_sq: d,
            },
        );
    }
}

impl KdTree {
    /// Exact squared distance from `q` to the box of `node`, m².
    #[inline(always)]
    pub(super) fn min_distance_sq(&self, node: usize, q: &[f64; 3]) -> f64 {
        let b = &self.node_bounds[node];
        let mut s = 0.0;
        for a in 0..3 {
            let d = (b.lo[a] - q[a]).max(q[a] - b.hi[a]).max(0.0);
            s += d * d;
        }
        s
    }

    /// The nearest point, or `None` for an empty tree (or a non-finite query).
    /// Ties go to the lower index.
    pub fn nearest(&self, q: &Point3<f64>) -> Option<Neighbor> {
        self.nearest_within(q, f64::INFINITY)
    }

    /// The nearest point within `max_distance` metres (inclusive), if any.
    /// A negative or NaN `max_distance` finds nothing.
    /// No allocation: the ICP correspondence search calls this per point.
    pub fn nearest_within(&self, q: &Point3<f64>, max_distance: f64) -> Option<Neighbor> {
        let bound_sq = radius_to_sq(max_distance)?;
        let q = [q.x, q.y, q.z];
        if self.is_empty() || self.min_distance_sq(0, &q) > bound_sq {
            return None;
        }
        let mut best = Best {
            distance_sq: bound_sq,
            index: usize::MAX,
        };
        self.nearest_node(0, &q, &mut best);
        (best.index != usize::MAX).then_some(Neighbor {
            index: best.index,
            distance_sq: best.distance_sq,
        })
    }

    /// Depth-first nearest search; `best` starts at the bound with no index.
    fn nearest_node(&self, node: usize, q: &[f64; 3], best: &mut Best) {
        let left = 2 * node + 1;
        if left >= self.node_bounds.len() {
            let (start, end) = (self.node_start[node] as usize, self.node_end[node] as usize);
            for (p, &index) in self.points[start..end]
                .iter()
                .zip(&self.indices[start..end])
            {
                let d = distance_sq(p, q);
                let index = index as usize;
                if d < best.distance_sq || (d == best.distance_sq && index < best.index) {
                    *best = Best {
                        distance_sq: d,
                        index,
                    };
                }
            }
            return;
        }
        let right = left + 1;
        let d_left = self.min_distance_sq(left, q);
        let d_right = self.min_distance_sq(right, q);
        let (near, d_near, far, d_far) = if d_left <= d_right {
            (left, d_left, right, d_right)
        } else {
            (right, d_right, left, d_left)
        };
        if d_near <= best.distance_sq {
            self.nearest_node(near, q, best);
        }
        if d_far <= best.distance_sq {
            self.nearest_node(far, q, best);
        }
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
    pub fn knn_with_stats(
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
    pub fn radius_unsorted(&self, q: &Point3<f64>, radius: f64, out: &mut Vec<Neighbor>) {
        out.clear();
        self.radius_counted(&[q.x, q.y, q.z], radius, out, &mut NoStats);
    }

    /// [`KdTree::radius_unsorted`] that also adds its work to `stats`.
    pub fn radius_with_stats(
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
    /// [`KdTree::radius_unsorted`]: nodes whose box lies inside the ball are
    /// counted without distance evaluations.
    pub fn radius_count(&self, q: &Point3<f64>, radius: f64) -> usize {
        match radius_to_sq(radius) {
            Some(r_sq) if !self.is_empty() => self.count_node(0, &[q.x, q.y, q.z], r_sq),
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
    pub(super) fn hybrid_counted<C: Counter>(
        &self,
        q: &[f64; 3],
        radius: f64,
        max_nn: usize,
        out: &mut Vec<Neighbor>,
        counter: &mut C,
    ) {
        out.clear();
        if max_nn == 0 || self.is_empty() {
            return;
        }
        if max_nn >= self.len() {
            // Every point within the radius qualifies: radius search + sort.
            self.radius_counted(q, radius, out, counter);
            sort_neighbors(out);
            return;
        }
        let Some(bound_sq) = radius_to_sq(radius) else {
            return;
        };
        let d_root = self.min_distance_sq(0, q);
        let mut cand = Candidates {
            out,
            k: max_nn,
            bound_sq,
        };
        if d_root <= bound_sq {
            self.knn_node(0, q, &mut cand, counter);
        }
    }

    /// Radius search (unsorted, appending to `out`) with a counter.
    #[inline]
    pub(super) fn radius_counted<C: Counter>(
        &self,
        q: &[f64; 3],
        radius: f64,
        out: &mut Vec<Neighbor>,
        counter: &mut C,
    ) {
        let Some(r_sq) = radius_to_sq(radius) else {
            return;
        };
        if !self.is_empty() && self.min_distance_sq(0, q) <= r_sq {
            self.radius_node(0, q, r_sq, out, counter);
        }
    }

    fn knn_node<C: Counter>(
        &self,
        node: usize,
        q: &[f64; 3],
        cand: &mut Candidates<'_>,
        counter: &mut C,
    ) {
        counter.node();
        let left = 2 * node + 1;
        if left >= self.node_bounds.len() {
            let (start, end) = (self.node_start[node] as usize, self.node_end[node] as usize);
            counter.leaf(end - start);
            let mut threshold = cand.threshold();
            for (p, &index) in self.points[start..end]
                .iter()
                .zip(&self.indices[start..end])
            {
                let d = distance_sq(p, q);
                if d <= threshold {
                    cand.offer(d, index as usize);
                    threshold = cand.threshold();
                }
            }
            return;
        }
        let right = left + 1;
        let d_left = self.min_distance_sq(left, q);
        let d_right = self.min_distance_sq(right, q);
        let (near, d_near, far, d_far) = if d_left <= d_right {
            (left, d_left, right, d_right)
        } else {
            (right, d_right, left, d_left)
        };
        if d_near <= cand.threshold() {
            self.knn_node(near, q, cand, counter);
        }
        if d_far <= cand.threshold() {
            self.knn_node(far, q, cand, counter);
        }
    }

    fn radius_node<C: Counter>(
        &self,
        node: usize,
        q: &[f64; 3],
        r_sq: f64,
        out: &mut Vec<Neighbor>,
        counter: &mut C,
    ) {
        counter.node();
        let left = 2 * node + 1;
        if left >= self.node_bounds.len() {
            let (start, end) = (self.node_start[node] as usize, self.node_end[node] as usize);
            counter.leaf(end - start);
            for (p, &index) in self.points[start..end]
                .iter()
                .zip(&self.indices[start..end])
            {
                let d = distance_sq(p, q);
                if d <= r_sq {
                    out.push(Neighbor {
                        index: index as usize,
                        distance_sq: d,
                    });
                }
            }
            return;
        }
        for child in [left, left + 1] {
            if self.min_distance_sq(child, q) <= r_sq {
                self.radius_node(child, q, r_sq, out, counter);
            }
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
            return self.points[start..end]
                .iter()
                .filter(|p| distance_sq(p, q) <= r_sq)
                .count();
        }
        [left, left + 1]
            .into_iter()
            .filter(|&child| self.min_distance_sq(child, q) <= r_sq)
            .map(|child| self.count_node(child, q, r_sq))
            .sum()
    }
}
