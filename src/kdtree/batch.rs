//! Batch queries: many queries in parallel (rayon), results in query order in
//! one flat CSR [`Neighborhoods`], one candidate buffer per task (no
//! allocation per query). One entry point, [`KdTree::search_batch`], over
//! the tree's own points ([`Queries::All`]) or given coordinates
//! ([`Queries::Points`]); [`KdTree::count_batch`] for radius counts and
//! [`KdTree::query_stats`] for the work the searches cost.
//!
//! kNN over all points finds the sets leaf by leaf (`own_sets.rs`): one exact
//! search per leaf, then every other point of the leaf scans one shared
//! candidate list. The other searches over all points start bottom-up in the
//! point's own leaf ([`SearchHint`]). Measurements: `docs/performance.md`.

use nalgebra::Point3;
use rayon::prelude::*;

use super::query::{NoStats, order_key};
use super::{KdTree, Neighbor, Neighborhoods, QueryStats, SearchHint};

/// Queries per rayon task: large enough to amortise the task, small enough to
/// balance two cores.
const CHUNK: usize = 512;

thread_local! {
    /// One sorted row, reused across the sets a thread finds.
    static ROW: std::cell::RefCell<Vec<Neighbor>> = const { std::cell::RefCell::new(Vec::new()) };
}

const EMPTY: Neighbor = Neighbor {
    index: 0,
    distance_sq: 0.0,
};

/// The queries of a batch.
#[derive(Clone, Copy)]
enum Sources<'a> {
    /// Given coordinates, searched from the root.
    Given(&'a [[f64; 3]]),
    /// The tree's own points in input order; `position_of[i]` is the tree
    /// position of input point `i`, whose leaf starts the search.
    Own { position_of: &'a [u32] },
}

impl Sources<'_> {
    fn len(&self) -> usize {
        match self {
            Sources::Given(q) => q.len(),
            Sources::Own { position_of } => position_of.len(),
        }
    }

    /// Query `i` and where its search starts.
    #[inline]
    fn get(&self, tree: &KdTree, i: usize) -> ([f64; 3], SearchHint) {
        match self {
            Sources::Given(q) => (q[i], SearchHint::default()),
            Sources::Own { position_of } => {
                let position = position_of[i] as usize;
                (tree.point_at(position), tree.hint_at(position))
            }
        }
    }
}

/// What to search around each query of a batch. Distances in metres;
/// results sorted by `(distance_sq, index)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Search {
    /// The `min(k, len)` nearest points.
    Knn {
        /// Number of neighbours (0: none).
        k: usize,
    },
    /// Every point within `radius` (inclusive; negative or NaN: none).
    Radius {
        /// Search radius, metres.
        radius: f64,
    },
    /// The up-to-`max_nn` nearest points within `radius` (Open3D's hybrid search).
    Hybrid {
        /// Search radius, metres.
        radius: f64,
        /// Cap on the number of neighbours.
        max_nn: usize,
    },
}

/// The queries of a batch.
#[derive(Debug, Clone, Copy)]
pub enum Queries<'a> {
    /// Every point of the tree itself, in input order (query `i` = input
    /// point `i`; a point is its own first neighbour unless it has exact
    /// duplicates of lower index).
    All,
    /// Given coordinates, metres; a query with a NaN/inf coordinate finds nothing.
    Points(&'a [Point3<f64>]),
}

impl KdTree {
    /// Runs `search` around every query, in parallel, and returns one sorted
    /// row per query, in query order.
    ///
    /// The result is identical (bit for bit) at any thread count and equals a
    /// brute-force scan sorted by `(distance_sq, index)`. Memory: one
    /// [`Neighbor`] (16 bytes) per pair found; use [`KdTree::count_batch`]
    /// when only counts are needed.
    ///
    /// Complexity: per query that of [`KdTree::knn`], [`KdTree::radius`] or
    /// [`KdTree::hybrid`]; [`Queries::All`] with [`Search::Knn`] shares the
    /// search between the points of a leaf.
    ///
    /// ```
    /// use nalgebra::Point3;
    /// use pointpipe::kdtree::{KdTree, Queries, Search};
    ///
    /// let points: Vec<Point3<f64>> = (0..10).map(|i| Point3::new(i as f64, 0.0, 0.0)).collect();
    /// let tree = KdTree::build(&points)?;
    /// let knn = tree.search_batch(Queries::All, Search::Knn { k: 2 });
    /// assert_eq!(knn.get(0).iter().map(|n| n.index).collect::<Vec<_>>(), [0, 1]);
    /// let near = [Point3::new(4.2, 0.0, 0.0)];
    /// let within = tree.search_batch(Queries::Points(&near), Search::Radius { radius: 1.0 });
    /// assert_eq!(within.get(0).len(), 2);
    /// # Ok::<(), pointpipe::Error>(())
    /// ```
    pub fn search_batch(&self, queries: Queries<'_>, search: Search) -> Neighborhoods {
        match (queries, search) {
            (Queries::All, Search::Knn { k }) => self.knn_all(k),
            (Queries::All, Search::Radius { radius }) => self.radius_all(radius),
            (Queries::All, Search::Hybrid { radius, max_nn }) => self.hybrid_all(radius, max_nn),
            (Queries::Points(q), Search::Knn { k }) => self.knn_batch(q, k),
            (Queries::Points(q), Search::Radius { radius }) => self.radius_batch(q, radius),
            (Queries::Points(q), Search::Hybrid { radius, max_nn }) => {
                self.hybrid_batch(q, radius, max_nn)
            }
        }
    }

    /// [`KdTree::search_batch`] without the [`Neighborhoods`]: runs `search`
    /// around every query, in parallel, and calls `write(row, &mut rows[i])`
    /// with query `i`'s sorted row, for callers that keep the rows in their
    /// own layout (`rows[i]` is typically a handle on the caller's storage,
    /// e.g. the `i`-th rows of a distance and an index array).
    ///
    /// The rows are those of [`KdTree::search_batch`], bit for bit, at any
    /// thread count; `write` runs once per query, in no particular order.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when
    /// `rows.len()` differs from the number of queries.
    ///
    /// Complexity: that of [`KdTree::search_batch`], without its
    /// 16 bytes per pair found.
    ///
    /// ```
    /// use nalgebra::Point3;
    /// use pointpipe::kdtree::{KdTree, Queries, Search};
    ///
    /// let points: Vec<Point3<f64>> = (0..10).map(|i| Point3::new(i as f64, 0.0, 0.0)).collect();
    /// let tree = KdTree::build(&points)?;
    /// let mut farthest_of_two = vec![0.0; points.len()];
    /// let rows: Vec<&mut f64> = farthest_of_two.iter_mut().collect();
    /// tree.search_batch_into(Queries::All, Search::Knn { k: 2 }, rows, |row, out| {
    ///     **out = row[1].distance_sq.sqrt();
    /// })?;
    /// assert_eq!(farthest_of_two, vec![1.0; 10]);
    /// # Ok::<(), pointpipe::Error>(())
    /// ```
    pub fn search_batch_into<T, F>(
        &self,
        queries: Queries<'_>,
        search: Search,
        rows: Vec<T>,
        write: F,
    ) -> crate::Result<()>
    where
        T: Send,
        F: Fn(&[Neighbor], &mut T) + Sync,
    {
        let n = match queries {
            Queries::All => self.len(),
            Queries::Points(q) => q.len(),
        };
        if rows.len() != n {
            return Err(crate::Error::invalid(
                "rows",
                rows.len(),
                format!("must hold one slot per query ({n})"),
            ));
        }
        let (radius, max_nn) = match search {
            Search::Knn { k } => {
                if let Queries::All = queries {
                    self.own_knn_into(k, rows, write);
                    return Ok(());
                }
                (f64::INFINITY, k)
            }
            Search::Radius { radius } => (radius, usize::MAX),
            Search::Hybrid { radius, max_nn } => (radius, max_nn),
        };
        let mut rows = rows;
        self.with_sources(queries, |sources| {
            rows.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each_init(Vec::new, |buf, (c, slots)| {
                    for (j, slot) in slots.iter_mut().enumerate() {
                        let (q, hint) = sources.get(self, c * CHUNK + j);
                        self.hybrid_from(&q, radius, max_nn, &hint, buf, &mut NoStats);
                        write(buf, slot);
                    }
                });
        });
        Ok(())
    }

    /// The number of points within `radius` metres (inclusive) of every
    /// query, in query order, in parallel; no neighbour list is kept.
    /// Complexity: per query that of [`KdTree::radius_count`].
    pub fn count_batch(&self, queries: Queries<'_>, radius: f64) -> Vec<usize> {
        match queries {
            Queries::All => self.radius_counts_all(radius),
            Queries::Points(q) => q
                .par_iter()
                .with_min_len(CHUNK)
                .map(|q| self.radius_count(q, radius))
                .collect(),
        }
    }

    /// The work `search` costs over `queries` (nodes visited, leaves scanned,
    /// distances evaluated), summed; the index's pruning health. Searches
    /// over [`Queries::All`] start in each point's own leaf, as
    /// [`KdTree::search_batch`]'s per-point searches do (kNN is counted as
    /// one search per point, not the shared leaf-by-leaf sets).
    pub fn query_stats(&self, queries: Queries<'_>, search: Search) -> QueryStats {
        let (radius, max_nn) = match search {
            Search::Knn { k } => (f64::INFINITY, k),
            Search::Radius { radius } => (radius, usize::MAX),
            Search::Hybrid { radius, max_nn } => (radius, max_nn),
        };
        self.with_sources(queries, |sources| {
            let n = sources.len();
            (0..n.div_ceil(CHUNK))
                .into_par_iter()
                .map_init(Vec::new, |buf, c| {
                    let mut stats = QueryStats::ZERO;
                    for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                        stats.queries += 1;
                        let (q, hint) = sources.get(self, i);
                        if max_nn == usize::MAX {
                            buf.clear();
                            self.radius_from(&q, radius, &hint, buf, &mut stats);
                        } else {
                            self.hybrid_from(&q, radius, max_nn, &hint, buf, &mut stats);
                        }
                    }
                    stats
                })
                .reduce(|| QueryStats::ZERO, QueryStats::combine)
        })
    }
    /// kNN for many queries (parallel), each sorted by `(distance_sq, index)`,
    /// in query order; every finite query gets `min(k, len)` neighbours, a
    /// query with a NaN/inf coordinate none.
    pub(crate) fn knn_batch(&self, queries: &[Point3<f64>], k: usize) -> Neighborhoods {
        let qs: Vec<[f64; 3]> = queries.iter().map(|q| [q.x, q.y, q.z]).collect();
        if qs.iter().flatten().all(|c| c.is_finite()) {
            self.knn_fixed(Sources::Given(&qs), k)
        } else {
            self.hybrid_variable(Sources::Given(&qs), f64::INFINITY, k)
        }
    }

    /// Radius search for many queries (parallel), each sorted, in query order.
    pub(crate) fn radius_batch(&self, queries: &[Point3<f64>], radius: f64) -> Neighborhoods {
        self.hybrid_batch(queries, radius, usize::MAX)
    }

    /// Hybrid search for many queries (parallel), each sorted, in query order.
    pub(crate) fn hybrid_batch(
        &self,
        queries: &[Point3<f64>],
        radius: f64,
        max_nn: usize,
    ) -> Neighborhoods {
        let qs: Vec<[f64; 3]> = queries.iter().map(|q| [q.x, q.y, q.z]).collect();
        self.hybrid_variable(Sources::Given(&qs), radius, max_nn)
    }

    /// kNN of every point of the tree (the point itself included, as its own
    /// first neighbour unless it has exact duplicates of lower index); query
    /// `i` is input point `i`, each row sorted by `(distance_sq, index)`,
    /// `min(k, len)` neighbours per row. Computed in parallel, leaf by leaf
    /// (module docs); the same result as [`KdTree::knn_batch`] on the
    /// points, bit for bit, at any thread count.
    pub(crate) fn knn_all(&self, k: usize) -> Neighborhoods {
        let n = self.len();
        let kk = k.min(n);
        let offsets: Vec<usize> = (0..=n).map(|i| i * kk).collect();
        let mut neighbors = vec![EMPTY; n * kk];
        if kk > 0 {
            let rows: Vec<&mut [Neighbor]> = neighbors.chunks_exact_mut(kk).collect();
            self.own_knn_into(kk, rows, |row, out| out.copy_from_slice(row));
        }
        Neighborhoods { offsets, neighbors }
    }

    /// The sorted kNN row of every input point `i`, handed to
    /// `write(row, &mut out[i])`; leaf by leaf (module docs).
    fn own_knn_into<T, F>(&self, k: usize, rows: Vec<T>, write: F)
    where
        T: Send,
        F: Fn(&[Neighbor], &mut T) + Sync,
    {
        let kk = k.min(self.len());
        // The rows in tree order, so that a leaf's rows are read in sequence
        // (in place: no second buffer of rows to allocate and fault in).
        let mut by_position = rows;
        gather_in_place(&mut by_position, &self.indices);
        self.for_each_own_set(f64::INFINITY, kk, &mut by_position, |_, set, slot| {
            ROW.with_borrow_mut(|row| {
                row.clear();
                row.extend(set.iter().map(|e| Neighbor {
                    index: e.index as usize,
                    distance_sq: e.distance_sq,
                }));
                row.sort_unstable_by_key(|nb| order_key(nb.distance_sq, nb.index));
                write(row, slot);
            });
        });
    }

    /// Radius search around every point of the tree, each sorted; query `i`
    /// is input point `i`. Memory: one [`Neighbor`] (16 bytes) per pair found;
    /// use [`KdTree::radius_counts_all`] when only counts are needed.
    pub(crate) fn radius_all(&self, radius: f64) -> Neighborhoods {
        self.hybrid_all(radius, usize::MAX)
    }

    /// Hybrid search around every point of the tree, each sorted; query `i`
    /// is input point `i`.
    pub(crate) fn hybrid_all(&self, radius: f64, max_nn: usize) -> Neighborhoods {
        let position_of = self.position_of();
        self.hybrid_variable(
            Sources::Own {
                position_of: &position_of,
            },
            radius,
            max_nn,
        )
    }

    /// Number of points within `radius` metres of every point of the tree
    /// (itself included); entry `i` belongs to input point `i`.
    pub(crate) fn radius_counts_all(&self, radius: f64) -> Vec<usize> {
        let mut counts = vec![0usize; self.len()];
        let tree_counts: Vec<usize> = (0..self.len())
            .into_par_iter()
            .with_min_len(CHUNK)
            .map(|t| self.radius_count(&Point3::from(self.point_at(t)), radius))
            .collect();
        for (t, &c) in tree_counts.iter().enumerate() {
            counts[self.indices[t] as usize] = c;
        }
        counts
    }

    /// Runs `f` on `queries` as batch sources (own points: their tree
    /// positions; given points: their coordinates).
    fn with_sources<R>(&self, queries: Queries<'_>, f: impl FnOnce(Sources<'_>) -> R) -> R {
        match queries {
            Queries::All => {
                let position_of = self.position_of();
                f(Sources::Own {
                    position_of: &position_of,
                })
            }
            Queries::Points(q) => {
                let qs: Vec<[f64; 3]> = q.iter().map(|q| [q.x, q.y, q.z]).collect();
                f(Sources::Given(&qs))
            }
        }
    }

    /// Tree position of every input point (the inverse of `indices`), e.g.
    /// for [`KdTree::hint_at`] when querying the tree's own points.
    pub(crate) fn position_of(&self) -> Vec<u32> {
        let mut position_of = vec![0u32; self.len()];
        for (t, &i) in self.indices.iter().enumerate() {
            position_of[i as usize] = t as u32;
        }
        position_of
    }

    /// kNN with a fixed stride `min(k, len)`, written straight into the output.
    fn knn_fixed(&self, queries: Sources<'_>, k: usize) -> Neighborhoods {
        let n = queries.len();
        let kk = k.min(self.len());
        let offsets: Vec<usize> = (0..=n).map(|i| i * kk).collect();
        if kk == 0 {
            return Neighborhoods {
                offsets,
                neighbors: Vec::new(),
            };
        }
        let mut neighbors = vec![EMPTY; n * kk];
        neighbors
            .par_chunks_mut(CHUNK * kk)
            .enumerate()
            .for_each_init(
                || Vec::with_capacity(kk),
                |buf, (c, out)| {
                    for (j, slot) in out.chunks_exact_mut(kk).enumerate() {
                        let (q, hint) = queries.get(self, c * CHUNK + j);
                        self.hybrid_from(&q, f64::INFINITY, kk, &hint, buf, &mut NoStats);
                        slot.copy_from_slice(buf);
                    }
                },
            );
        Neighborhoods { offsets, neighbors }
    }

    /// Hybrid search with a variable count per query: per-chunk CSR pieces,
    /// concatenated in query order.
    fn hybrid_variable(&self, queries: Sources<'_>, radius: f64, max_nn: usize) -> Neighborhoods {
        let n = queries.len();
        let pieces: Vec<(Vec<usize>, Vec<Neighbor>)> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map_init(Vec::new, |buf, c| {
                let range = c * CHUNK..((c + 1) * CHUNK).min(n);
                let mut counts = Vec::with_capacity(range.len());
                let mut found = Vec::new();
                for i in range {
                    let (q, hint) = queries.get(self, i);
                    self.hybrid_from(&q, radius, max_nn, &hint, buf, &mut NoStats);
                    counts.push(buf.len());
                    found.extend_from_slice(buf);
                }
                (counts, found)
            })
            .collect();
        let total: usize = pieces.iter().map(|(_, f)| f.len()).sum();
        let mut offsets = Vec::with_capacity(n + 1);
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
}

/// Reorders `items` in place so that `items[p]` becomes the old
/// `items[order[p]]`; `order` is a permutation of `0..items.len()`.
/// O(n) swaps along the permutation's cycles, n bits of bookkeeping.
pub(super) fn gather_in_place<T>(items: &mut [T], order: &[u32]) {
    debug_assert_eq!(items.len(), order.len());
    let mut done = vec![0u64; items.len().div_ceil(64)];
    for start in 0..items.len() {
        if done[start / 64] >> (start % 64) & 1 == 1 {
            continue;
        }
        // Position `p` takes the item at `order[p]`, which then carries the
        // cycle's first item on to the next position.
        let mut p = start;
        loop {
            done[p / 64] |= 1 << (p % 64);
            let from = order[p] as usize;
            if from == start {
                break;
            }
            items.swap(p, from);
            p = from;
        }
    }
}
