//! The per-frame k-d tree: parallel build, kNN / radius / hybrid search.
//!
//! # Layout (scikit-learn's `KDTree`, Omohundro / Moore "ball and k-d trees")
//! Flat arrays, no pointer nodes, everything allocated once:
//! - an implicit heap of nodes: the children of node `i` are `2i + 1` and
//!   `2i + 2`; every level is full, the last level holds the leaves;
//! - per node its range `start..end` in *tree order* and its tight
//!   axis-aligned bounding box (`lo`, `hi`, f64, exact);
//! - `indices`: tree position → index in the input slice (a permutation);
//! - a copy of the points in tree order, so each leaf is contiguous in memory,
//!   stored as three padded coordinate arrays (x, y, z; the leaf scans
//!   compute 8 distances at a time from those, see `query`), gathered in
//!   parallel.
//!
//! # Build (Algorithm)
//! 1. Validate the config and reject non-finite points ([`Error::NonFinite`]).
//! 2. Number of levels `L = 1 + ceil(log2(ceil(n / leaf_size)))`, so the
//!    `2^(L-1)` leaves hold at most `leaf_size` (and, for `leaf_size ≥ 2`, at
//!    least one, typically between `leaf_size / 2` and `leaf_size`) points;
//!    `2^L - 1` nodes. (scikit-learn uses `floor(log2((n-1)/leaf_size)) + 1`,
//!    whose leaves hold between `leaf_size` and `2 leaf_size` points; ours
//!    keeps the issue's promise "leaves hold up to `leaf_size` points".)
//! 3. At each internal node: choose the axis of largest spread of the node's
//!    points, estimated from 16 evenly spaced points (all of them in smaller
//!    nodes; choosing then costs no pass over the points), put the median (position `len / 2`) in place with
//!    `select_nth_unstable_by` (introselect, O(len)), and recurse into both
//!    halves, with `rayon::join` while a node holds at least
//!    `parallel_min_points` points.
//! 4. Gather the points in tree order and compute the leaf boxes from them, in
//!    one recursion over the leaves; the inner boxes are the union of their
//!    children's.
//!
//! The partition keys are the coordinates relative to the first point,
//! rounded to `f32` and mapped to integers with the IEEE total order (so the
//! median selection compares integers and moves 16-byte items). The rounding
//! only decides *where* the tree splits; the stored points, the node boxes and
//! every reported distance are exact `f64`. The tree is a deterministic
//! function of the input: bit-identical at any thread count.
//!
//! Complexity: build O(n log n) work, O(n) memory; a query visits O(log n)
//! nodes on well-spread data.
//!
//! # Queries
//! Depth first from the root, nearer child first, a child entered only when
//! its exact box distance is within the current bound. With a search hint
//! the search starts bottom-up in a given leaf instead (the query's own leaf
//! for the tree's own points, the previous match for ICP) and climbs to the
//! root; same results, fewer nodes (10.4 instead of 23.4 entered per kNN
//! query, k = 10, on a KITTI frame).
//!
//! The neighbourhoods of all of the tree's own points (normal estimation) are
//! found leaf by leaf instead: one exact search for a pivot per leaf, one
//! gathered candidate list bounded by the triangle inequality, and branch-free
//! distance scans of it for the leaf's other points (`own_sets`).
//!
//! The query point counts as its own neighbour when it is in the cloud.
//! Distances are squared Euclidean in m², computed exactly as
//! `(dx * dx + dy * dy) + dz * dz` in `f64` (the same bits as
//! `(p - q).norm_squared()` in nalgebra), ties broken by the lower input index,
//! so results equal a brute-force scan sorted by `(distance_sq, index)`.
//!
//! Edge cases (documented results, never a panic):
//! - empty tree: every query returns nothing (`None`, empty, zero counts);
//! - `k = 0` or `max_nn = 0`: nothing; `k > n`: all `n` points, sorted;
//! - `radius = 0`: the points at exactly the query position; a negative or
//!   NaN radius: nothing; an infinite radius: every point;
//! - identical points / thousands of duplicates: the median split is by count,
//!   not by value, so the depth is always `L` and every leaf is bounded; a
//!   node whose box distance equals the current bound is entered only when
//!   its lowest input index could still win the tie-break (per-node minimum
//!   index), so a kNN query among 100,000 copies of one point scans about
//!   150 leaves (O(k log n)), not all 3,125 of them (the work bound is a regression test,
//!   `tests/kdtree_duplicates.rs`); a radius search still returns (and
//!   evaluates) every point within the radius;
//! - collinear / coplanar clouds: an axis along which the whole cloud is flat
//!   is never split while another axis has spread;
//! - non-finite query coordinates: nothing is found (comparisons with NaN fail).
//!
//! # Example
//! ```
//! use nalgebra::Point3;
//! use pointpipe::kdtree::KdTree;
//!
//! let points: Vec<Point3<f64>> = (0..100)
//!     .map(|i| Point3::new(i as f64, 0.0, 0.0))
//!     .collect();
//! let tree = KdTree::build(&points)?;
//! let mut out = Vec::new();
//! tree.knn(&Point3::new(10.2, 0.0, 0.0), 3, &mut out);
//! let idx: Vec<usize> = out.iter().map(|n| n.index).collect();
//! assert_eq!(idx, [10, 11, 9]);
//! tree.radius(&Point3::new(50.0, 0.0, 0.0), 1.0, &mut out);
//! assert_eq!(out.len(), 3);
//! # Ok::<(), pointpipe::Error>(())
//! ```

mod batch;
mod build;
mod filtered;
mod leaf_layout;
mod own_sets;
mod query;
#[cfg(test)]
mod tests;

pub use batch::{Queries, Search};
pub(crate) use filtered::Gathered;
pub(crate) use query::SearchHint;
pub(crate) use query::SetEntry;

use crate::error::{Error, Result};

/// Build parameters of a [`KdTree`].
#[derive(Debug, Clone, PartialEq)]
pub struct KdTreeConfig {
    /// Maximum number of points in a leaf bucket (≥ 1); leaves end up with
    /// between about `leaf_size / 2` and `leaf_size` points (the leaf count is
    /// a power of two). Default 32 (about 30 points per leaf on a KITTI
    /// HDL-64 frame), chosen from a sweep over 4–64 on that frame
    /// (`docs/performance.md`, "k-d tree leaf size"). Leaf sizes that give
    /// the same leaf count give the same tree.
    pub leaf_size: usize,
    /// Nodes with fewer points than this are built serially (no
    /// `rayon::join`); any value is valid. Default 8192.
    pub parallel_min_points: usize,
}

impl Default for KdTreeConfig {
    fn default() -> Self {
        KdTreeConfig {
            leaf_size: 32,
            parallel_min_points: 8192,
        }
    }
}

impl KdTreeConfig {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `leaf_size` is 0.
    pub fn validate(&self) -> Result<()> {
        if self.leaf_size == 0 {
            return Err(Error::invalid("leaf_size", 0, "must be at least 1"));
        }
        Ok(())
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
    ///
    /// # Panics
    /// When `i >= self.len()` (a programming error).
    pub fn get(&self, i: usize) -> &[Neighbor] {
        &self.neighbors[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// Work counters of one or many queries: the health metrics of the index
/// (pruning failing shows as `nodes_visited` climbing toward the node count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Number of queries counted.
    pub queries: u64,
    /// Nodes entered (inner nodes and leaves).
    pub nodes_visited: u64,
    /// Leaves whose points were scanned.
    pub leaves_scanned: u64,
    /// Point-to-query distances computed.
    pub distance_evaluations: u64,
}

impl QueryStats {
    /// The zero of [`QueryStats::combine`].
    pub const ZERO: QueryStats = QueryStats {
        queries: 0,
        nodes_visited: 0,
        leaves_scanned: 0,
        distance_evaluations: 0,
    };

    /// Sum of two sets of counters.
    pub fn combine(self, other: QueryStats) -> QueryStats {
        QueryStats {
            queries: self.queries + other.queries,
            nodes_visited: self.nodes_visited + other.nodes_visited,
            leaves_scanned: self.leaves_scanned + other.leaves_scanned,
            distance_evaluations: self.distance_evaluations + other.distance_evaluations,
        }
    }

    /// Mean nodes visited per query (0 when no query was counted).
    pub fn nodes_visited_per_query(&self) -> f64 {
        per_query(self.nodes_visited, self.queries)
    }

    /// Mean leaves scanned per query (0 when no query was counted).
    pub fn leaves_scanned_per_query(&self) -> f64 {
        per_query(self.leaves_scanned, self.queries)
    }

    /// Mean distance evaluations per query (0 when no query was counted).
    pub fn distance_evaluations_per_query(&self) -> f64 {
        per_query(self.distance_evaluations, self.queries)
    }
}

fn per_query(total: u64, queries: u64) -> f64 {
    if queries == 0 {
        0.0
    } else {
        total as f64 / queries as f64
    }
}

/// Tight axis-aligned box of a node, metres. An empty node (possible only with
/// `leaf_size = 1`) holds `lo = +inf`, `hi = -inf`, so it is always pruned.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NodeBox {
    lo: [f64; 3],
    hi: [f64; 3],
}

/// A k-d tree over a slice of points (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct KdTree {
    /// Configured maximum leaf size.
    leaf_size: usize,
    /// Number of levels `L` (0 for an empty tree); leaves are the last level.
    n_levels: usize,
    /// Tree position → input index.
    indices: Vec<u32>,
    /// The points in tree order, metres, as padded coordinate arrays (one
    /// array per axis, so the leaf scans vectorise).
    layout: leaf_layout::LeafLayout,
    /// Per node: first tree position of the node's points.
    node_start: Vec<u32>,
    /// Per node: `end` in tree order (exclusive).
    node_end: Vec<u32>,
    /// Per node: tight bounding box.
    node_bounds: Vec<NodeBox>,
    /// Per node: the lowest input index of its points (`u32::MAX` when it
    /// has none). With ties broken by index, a node whose box lies exactly
    /// at the current bound can hold a better candidate only through a
    /// lower index; this prunes the others, so searches among thousands of
    /// equal points stay logarithmic (issue 26).
    node_min_index: Vec<u32>,
    /// The partition buffer, kept between [`KdTree::rebuild_with`] calls
    /// (empty after [`KdTree::build_with`]); not part of the tree's value.
    scratch: build::BuildScratch,
}

impl KdTree {
    /// Number of points in the tree.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when the tree holds no points.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The configured maximum number of points per leaf.
    pub fn leaf_size(&self) -> usize {
        self.leaf_size
    }

    /// Number of levels of the tree (a root-only tree has 1, an empty tree 0).
    /// Always `1 + ceil(log2(ceil(n / leaf_size)))`, i.e. about
    /// `log2(n) - log2(leaf_size) + 1`; compare with `log2(n)`.
    pub fn tree_height(&self) -> usize {
        self.n_levels
    }

    /// Number of nodes (`2^height - 1`).
    pub fn node_count(&self) -> usize {
        self.node_start.len()
    }

    /// Heap bytes the tree holds (allocated capacity): 4 (permutation) + 24
    /// (coordinates) per point, 60 per node, and the partition buffer kept by
    /// [`KdTree::rebuild_with`].
    pub(crate) fn heap_bytes(&self) -> usize {
        self.indices.capacity() * size_of::<u32>()
            + self.layout.heap_bytes()
            + (self.node_start.capacity()
                + self.node_end.capacity()
                + self.node_min_index.capacity())
                * size_of::<u32>()
            + self.node_bounds.capacity() * size_of::<NodeBox>()
            + self.scratch.heap_bytes()
    }

    /// The tight axis-aligned bounding box of all points, `(min, max)` in
    /// metres, or `None` for an empty tree. O(1) (the root's box).
    pub fn bounding_box(&self) -> Option<([f64; 3], [f64; 3])> {
        self.node_bounds.first().map(|b| (b.lo, b.hi))
    }

    /// Tree position → index in the input slice (a permutation of `0..len`).
    /// Consecutive positions are spatially close; leaves are contiguous.
    pub(crate) fn tree_order(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.indices.iter().map(|&i| i as usize)
    }

    /// The input index of the point at tree position `position`.
    ///
    /// # Panics
    /// When `position` is beyond the tree (a programming error).
    #[inline]
    pub(crate) fn index_at(&self, position: usize) -> usize {
        self.indices[position] as usize
    }

    #[cfg(test)]
    /// The input indices of the points of every leaf, leaf after leaf (left to
    /// right). Every point appears in exactly one leaf.
    pub(crate) fn leaves(&self) -> impl Iterator<Item = LeafView<'_>> + '_ {
        let first_leaf = self.first_leaf();
        (first_leaf..self.node_count()).map(move |node| {
            let range = self.node_start[node] as usize..self.node_end[node] as usize;
            let b = self.node_bounds[node];
            LeafView {
                indices: &self.indices[range],
                lo: b.lo,
                hi: b.hi,
            }
        })
    }

    /// Index of the first leaf node in the heap.
    fn first_leaf(&self) -> usize {
        if self.n_levels == 0 {
            0
        } else {
            (1usize << (self.n_levels - 1)) - 1
        }
    }
}

#[cfg(test)]
/// A read-only view of one leaf, for tests and diagnostics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeafView<'a> {
    /// Input indices of the leaf's points.
    pub indices: &'a [u32],
    /// Lower corner of the leaf's tight bounding box, metres (`+inf` if empty).
    pub lo: [f64; 3],
    /// Upper corner of the leaf's tight bounding box, metres (`-inf` if empty).
    pub hi: [f64; 3],
}
