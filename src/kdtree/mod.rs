//! The per-frame k-d tree (PLACEHOLDER: brute force with the final API; the
//! real parallel tree replaces the bodies, not the signatures).

use nalgebra::Point3;

use crate::error::{Error, Result};

/// Build parameters of a [`KdTree`].
#[derive(Debug, Clone, PartialEq)]
pub struct KdTreeConfig {
    /// Maximum number of points in a leaf bucket. Default: see `Default`.
    pub leaf_size: usize,
    /// Nodes with fewer points than this are built serially (no `rayon::join`).
    pub parallel_min_points: usize,
}

impl Default for KdTreeConfig {
    fn default() -> Self {
        KdTreeConfig {
            leaf_size: 16,
            parallel_min_points: 8192,
        }
    }
}

/// One neighbour found by a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Index of the point in the slice the tree was built from.
    pub index: usize,
    /// Squared Euclidean distance to the query, m².
    pub distance_sq: f64,
}

/// Neighbourhoods of many queries in one flat (CSR) layout: the neighbours of
/// query `i` are `neighbors[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Neighborhoods {
    /// `queries + 1` offsets into `neighbors`.
    pub offsets: Vec<usize>,
    /// All neighbours, query after query.
    pub neighbors: Vec<Neighbor>,
}

impl Neighborhoods {
    /// Number of queries.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    /// True when there are no queries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The neighbours of query `i`.
    pub fn get(&self, i: usize) -> &[Neighbor] {
        &self.neighbors[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// A k-d tree over a slice of points.
#[derive(Debug, Clone)]
pub struct KdTree {
    points: Vec<Point3<f64>>,
}

fn sort_neighbors(v: &mut [Neighbor]) {
    v.sort_by(|a, b| {
        a.distance_sq
            .total_cmp(&b.distance_sq)
            .then(a.index.cmp(&b.index))
    });
}

impl KdTree {
    /// Builds the tree with the default config.
    pub fn build(points: &[Point3<f64>]) -> Result<KdTree> {
        Self::build_with(points, &KdTreeConfig::default())
    }

    /// Builds the tree. Errors on non-finite points or a zero `leaf_size`.
    pub fn build_with(points: &[Point3<f64>], config: &KdTreeConfig) -> Result<KdTree> {
        if config.leaf_size == 0 {
            return Err(Error::invalid("leaf_size", 0, "must be at least 1"));
        }
        if let Some(index) = points
            .iter()
            .position(|p| !p.coords.iter().all(|c| c.is_finite()))
        {
            return Err(Error::NonFinite {
                what: "k-d tree input".into(),
                index,
            });
        }
        Ok(KdTree {
            points: points.to_vec(),
        })
    }

    /// Number of points in the tree.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when the tree holds no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The nearest point, or `None` for an empty tree.
    pub fn nearest(&self, q: &Point3<f64>) -> Option<Neighbor> {
        self.nearest_within(q, f64::INFINITY)
    }

    /// The nearest point within `max_distance` metres (inclusive), if any.
    pub fn nearest_within(&self, q: &Point3<f64>, max_distance: f64) -> Option<Neighbor> {
        let mut out = Vec::new();
        self.hybrid(q, max_distance, 1, &mut out);
        out.first().copied()
    }

    /// The `k` nearest points sorted by distance (ties by index) into `out`
    /// (cleared first). Fewer than `k` when the tree is smaller.
    pub fn knn(&self, q: &Point3<f64>, k: usize, out: &mut Vec<Neighbor>) {
        self.hybrid(q, f64::INFINITY, k, out);
    }

    /// All points within `radius` metres (inclusive), sorted, into `out`.
    pub fn radius(&self, q: &Point3<f64>, radius: f64, out: &mut Vec<Neighbor>) {
        self.hybrid(q, radius, usize::MAX, out);
    }

    /// All points within `radius` metres (inclusive), in no particular order.
    pub fn radius_unsorted(&self, q: &Point3<f64>, radius: f64, out: &mut Vec<Neighbor>) {
        self.radius(q, radius, out);
    }

    /// The up-to-`max_nn` nearest points within `radius` metres, sorted.
    pub fn hybrid(&self, q: &Point3<f64>, radius: f64, max_nn: usize, out: &mut Vec<Neighbor>) {
        out.clear();
        let radius_sq = radius * radius;
        out.extend(self.points.iter().enumerate().filter_map(|(index, p)| {
            let distance_sq = (p - q).norm_squared();
            (distance_sq <= radius_sq).then_some(Neighbor { index, distance_sq })
        }));
        sort_neighbors(out);
        out.truncate(max_nn);
    }

    /// kNN for many queries (parallel), results in query order.
    pub fn knn_batch(&self, queries: &[Point3<f64>], k: usize) -> Neighborhoods {
        self.hybrid_batch(queries, f64::INFINITY, k)
    }

    /// Radius search for many queries (parallel), sorted, in query order.
    pub fn radius_batch(&self, queries: &[Point3<f64>], radius: f64) -> Neighborhoods {
        self.hybrid_batch(queries, radius, usize::MAX)
    }

    /// Hybrid search for many queries (parallel), sorted, in query order.
    pub fn hybrid_batch(
        &self,
        queries: &[Point3<f64>],
        radius: f64,
        max_nn: usize,
    ) -> Neighborhoods {
        let mut result = Neighborhoods {
            offsets: vec![0],
            neighbors: Vec::new(),
        };
        let mut buf = Vec::new();
        for q in queries {
            self.hybrid(q, radius, max_nn, &mut buf);
            result.neighbors.extend_from_slice(&buf);
            result.offsets.push(result.neighbors.len());
        }
        result
    }
}
