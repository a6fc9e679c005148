//! The nearest points that pass a predicate (category filters of the
//! proximity service), without a kNN whose `k` grows toward `n`.

use nalgebra::Point3;

use super::query::sort_neighbors;
use super::{KdTree, Neighbor, QueryStats};

/// Points gathered around a query: sorted by `(distance_sq, index)`, and the
/// squared distance below which every point of the tree is among them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Gathered {
    /// Sorted by `(distance_sq, index)`; includes points that fail the predicate.
    pub(crate) neighbors: Vec<Neighbor>,
    /// Every point with `distance_sq < covered_sq` is in `neighbors`
    /// (`f64::INFINITY` when all points are).
    pub(crate) covered_sq: f64,
}

impl KdTree {
    /// Gathers at least the `k` nearest points for which `keep` is true (all
    /// of them when fewer exist), plus `extra` more of the nearest points when
    /// no filter cuts the list, adding the work to `stats`.
    ///
    /// Algorithm: one kNN for `k + extra`; when fewer than `k` of them pass,
    /// radius searches whose radius doubles from the farthest found until `k`
    /// pass or the whole tree is covered. Complexity: O(log n + k) on spread
    /// data without a filter; O(r) with one, r the points within the radius
    /// that holds `k` passing points (O(n) for a predicate almost nothing
    /// passes).
    pub(crate) fn gather_where(
        &self,
        q: &Point3<f64>,
        k: usize,
        extra: usize,
        keep: &dyn Fn(usize) -> bool,
        stats: &mut QueryStats,
    ) -> Gathered {
        let n = self.len();
        let ask = k.saturating_add(extra).min(n);
        let mut neighbors = Vec::with_capacity(ask);
        self.knn_with_stats(q, ask, &mut neighbors, stats);
        let all = neighbors.len() == n;
        let passing = neighbors.iter().filter(|nb| keep(nb.index)).count();
        if all || passing >= k.min(n) {
            let covered_sq = match neighbors.last() {
                _ if all => f64::INFINITY,
                Some(last) => last.distance_sq,
                None => f64::INFINITY,
            };
            return Gathered {
                neighbors,
                covered_sq,
            };
        }
        let mut radius = neighbors.last().map_or(0.0, |last| last.distance_sq.sqrt());
        loop {
            radius = (radius * 2.0).max(1e-9);
            self.radius_with_stats(q, radius, &mut neighbors, stats);
            let passing = neighbors.iter().filter(|nb| keep(nb.index)).count();
            if passing >= k || neighbors.len() == n {
                sort_neighbors(&mut neighbors);
                let covered_sq = if neighbors.len() == n {
                    f64::INFINITY
                } else {
                    radius * radius
                };
                return Gathered {
                    neighbors,
                    covered_sq,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_predicate_equals_brute_force() {
        let points: Vec<Point3<f64>> = (0..5000)
            .map(|i| {
                Point3::new(
                    (i % 71) as f64,
                    (i / 71) as f64,
                    ((i * 7) % 13) as f64 * 0.1,
                )
            })
            .collect();
        let tree = KdTree::build(&points).unwrap();
        let q = Point3::new(10.3, 20.7, 0.2);
        for modulo in [1usize, 2, 97, 2500, 6000] {
            let keep = |i: usize| i.is_multiple_of(modulo);
            let mut stats = QueryStats::ZERO;
            let g = tree.gather_where(&q, 5, 3, &keep, &mut stats);
            let got: Vec<usize> = g
                .neighbors
                .iter()
                .map(|n| n.index)
                .filter(|&i| keep(i))
                .take(5)
                .collect();
            let mut brute: Vec<(f64, usize)> = (0..points.len())
                .filter(|&i| keep(i))
                .map(|i| ((points[i] - q).norm_squared(), i))
                .collect();
            brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<usize> = brute.iter().take(5).map(|b| b.1).collect();
            assert_eq!(got, want, "modulo {modulo}");
            // The coverage promise holds.
            for (i, p) in points.iter().enumerate() {
                if (p - q).norm_squared() < g.covered_sq {
                    assert!(g.neighbors.iter().any(|n| n.index == i));
                }
            }
        }
    }
}
