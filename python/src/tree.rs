//! `pointpipe.KDTree`'s engine: the library's k-d tree on numpy arrays.
//!
//! Library calls: `KdTree::build_with`; `KdTree::search_batch_into` over the
//! tree's own points (`tree.query(tree.data)`, rows written straight into
//! the output arrays); per query, in parallel with
//! rayon, `KdTree::hybrid`, `KdTree::radius`, `KdTree::radius_count`;
//! `KdTree::query_stats` for the statistics. scipy's conventions (shapes, `inf` / `n` for missing
//! neighbours, sorting) are applied here and in `pointpipe/__init__.py`.

use std::sync::atomic::{AtomicU64, Ordering};

use nalgebra::Point3;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pointpipe::kdtree::{KdTree, KdTreeConfig, Neighbor, Queries, QueryStats, Search};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rayon::prelude::*;

use crate::{as_points, buffer, pool, rows_to_py, to_py_err};

/// Queries per chunk: the GIL is taken back and Ctrl-C checked between chunks.
const CHUNK: usize = 1 << 16;
/// Fewest queries per rayon task.
const MIN_LEN: usize = 64;

/// Builds the tree (library call).
fn build(points: &[Point3<f64>], leaf_size: usize) -> pointpipe::Result<KdTree> {
    let config = KdTreeConfig {
        leaf_size,
        ..KdTreeConfig::default()
    };
    KdTree::build_with(points, &config)
}

/// The up-to-`k` nearest points closer than `bound` metres to `q`
/// (strictly: scipy's `distance_upper_bound`), sorted by `(distance,
/// index)` (library call: `KdTree::hybrid`, inclusive, then the points at
/// exactly `bound` dropped).
fn k_nearest(tree: &KdTree, q: &Point3<f64>, k: usize, bound: f64, out: &mut Vec<Neighbor>) {
    tree.hybrid(q, bound, k, out);
    let kept = below(out, bound).len();
    out.truncate(kept);
}

/// The search of `query(data, k, distance_upper_bound=bound)` over the tree's
/// own points (library: `Queries::All` kNN shares the search between the
/// points of a leaf; a finite bound makes it a hybrid search, inclusive).
fn own_search(k: usize, bound: f64) -> Search {
    if bound == f64::INFINITY {
        Search::Knn { k }
    } else {
        Search::Hybrid {
            radius: bound,
            max_nn: k,
        }
    }
}

/// The neighbours of a sorted row closer than `bound` (strictly).
fn below(found: &[Neighbor], bound: f64) -> &[Neighbor] {
    if bound == f64::INFINITY {
        return found;
    }
    let bound_sq = bound * bound;
    &found[..found.partition_point(|n| n.distance_sq < bound_sq)]
}

/// Squared distances to distances, in place (one vectorised pass).
fn take_roots(d: &mut [f64]) {
    d.iter_mut().for_each(|x| *x = x.sqrt());
}

/// All points within `radius` metres of `q` (inclusive), sorted (library call).
fn in_radius(tree: &KdTree, q: &Point3<f64>, radius: f64, out: &mut Vec<Neighbor>) {
    tree.radius(q, radius, out);
}

/// Number of points within `radius` metres of `q` (library call).
fn count_in_radius(tree: &KdTree, q: &Point3<f64>, radius: f64) -> usize {
    tree.radius_count(q, radius)
}

/// Work counters of kNN (`radius = None`) or radius queries (library call).
fn query_stats(
    tree: &KdTree,
    queries: &[Point3<f64>],
    k: usize,
    radius: Option<f64>,
) -> QueryStats {
    let search = match radius {
        Some(radius) => Search::Radius { radius },
        None => Search::Knn { k },
    };
    tree.query_stats(Queries::Points(queries), search)
}

fn check_radius(r: f64) -> PyResult<()> {
    if r >= 0.0 {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "r must be >= 0 (metres), got {r}"
        )))
    }
}

/// The k-d tree engine behind `pointpipe.KDTree` (use that class).
#[pyclass(module = "pointpipe._pointpipe", name = "_KDTree", frozen)]
pub struct PyKdTree {
    tree: KdTree,
    data: Py<PyArray2<f64>>,
    nodes_visited: AtomicU64,
}

#[pymethods]
impl PyKdTree {
    /// Builds the tree over `data`, a C-contiguous (n, 3) float64 array
    /// (kept, not copied), with `workers` threads.
    #[new]
    fn new(
        py: Python<'_>,
        data: Bound<'_, PyArray2<f64>>,
        leafsize: usize,
        workers: i64,
    ) -> PyResult<Self> {
        let tree = {
            let view = data.readonly();
            let points = as_points(&view)?;
            pool::run(py, workers, || build(points, leafsize))?.map_err(to_py_err)?
        };
        Ok(PyKdTree {
            tree,
            data: data.unbind(),
            nodes_visited: AtomicU64::new(0),
        })
    }

    /// The points, (n, 3) float64.
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyArray2<f64>> {
        self.data.clone_ref(py)
    }

    #[getter]
    fn n(&self) -> usize {
        self.tree.len()
    }

    #[getter]
    fn leafsize(&self) -> usize {
        self.tree.leaf_size()
    }

    #[getter]
    fn tree_height(&self) -> usize {
        self.tree.tree_height()
    }

    #[getter]
    fn node_count(&self) -> usize {
        self.tree.node_count()
    }

    #[getter]
    fn nodes_visited(&self) -> u64 {
        self.nodes_visited.load(Ordering::Relaxed)
    }

    /// kNN of every row of `x` ((m, 3), C-contiguous float64): distances
    /// (m, k) float64 and indices (m, k) int64, `inf` / `n` where fewer
    /// than `k` points lie within `distance_upper_bound` (exclusive).
    /// `own_points`: `x` is the tree's own data (row `i` = point `i`).
    #[allow(clippy::type_complexity)]
    fn knn<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        k: usize,
        distance_upper_bound: f64,
        workers: i64,
        own_points: bool,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<i64>>)> {
        if k == 0 {
            return Err(PyValueError::new_err("k must be >= 1"));
        }
        if distance_upper_bound.is_nan() || distance_upper_bound < 0.0 {
            return Err(PyValueError::new_err(format!(
                "distance_upper_bound must be >= 0, got {distance_upper_bound}"
            )));
        }
        let queries = as_points(&x)?;
        let m = queries.len();
        let size = m
            .checked_mul(k)
            .ok_or_else(|| PyValueError::new_err("m * k overflows"))?;
        let missing = self.tree.len() as i64;
        // Recycled output memory (`buffer`): every slot of every row is
        // written (`fill`), so no earlier values show. Squared distances
        // first, square roots in one vectorised pass after (faster than a
        // root per slot: docs/performance.md).
        let mut d_out = buffer::OutBuf::<f64>::new(size)?;
        let mut idx_out = buffer::OutBuf::<i64>::new(size)?;
        let (d, idx) = (d_out.as_mut_slice(), idx_out.as_mut_slice());
        let tree = &self.tree;
        let threads = pool::threads(workers)?;
        let p = pool::pool(threads)?;
        let fill = |d_row: &mut [f64], i_row: &mut [i64], found: &[Neighbor]| {
            for (j, (d, i)) in d_row.iter_mut().zip(i_row.iter_mut()).enumerate() {
                match found.get(j) {
                    Some(n) => {
                        *d = n.distance_sq;
                        *i = n.index as i64;
                    }
                    None => {
                        *d = f64::INFINITY;
                        *i = missing;
                    }
                }
            }
        };
        // The tree's own points in input order: one batch over all of them,
        // written straight into the output rows.
        if own_points && m == tree.len() {
            let search = own_search(k, distance_upper_bound);
            py.detach(|| {
                p.install(|| {
                    let rows: Vec<(&mut [f64], &mut [i64])> =
                        d.chunks_mut(k).zip(idx.chunks_mut(k)).collect();
                    let done = tree.search_batch_into(Queries::All, search, rows, |found, row| {
                        fill(row.0, row.1, below(found, distance_upper_bound));
                    });
                    take_roots(d);
                    done
                })
            })
            .map_err(to_py_err)?;
            py.check_signals()?;
            return Ok((d_out.into_pyarray(py, k)?, idx_out.into_pyarray(py, k)?));
        }
        let row =
            |q: &Point3<f64>, d_row: &mut [f64], i_row: &mut [i64], buf: &mut Vec<Neighbor>| {
                k_nearest(tree, q, k, distance_upper_bound, buf);
                fill(d_row, i_row, buf);
            };
        for ((qs, ds), is) in queries
            .chunks(CHUNK)
            .zip(d.chunks_mut(CHUNK * k))
            .zip(idx.chunks_mut(CHUNK * k))
        {
            if threads == 1 {
                py.detach(|| {
                    let mut buf = Vec::with_capacity(k);
                    for ((q, d_row), i_row) in qs.iter().zip(ds.chunks_mut(k)).zip(is.chunks_mut(k))
                    {
                        row(q, d_row, i_row, &mut buf);
                    }
                    take_roots(ds);
                });
            } else {
                py.detach(|| {
                    p.install(|| {
                        qs.par_iter()
                            .zip(ds.par_chunks_mut(k))
                            .zip(is.par_chunks_mut(k))
                            .with_min_len(MIN_LEN)
                            .for_each_init(
                                || Vec::with_capacity(k),
                                |buf, ((q, d_row), i_row)| row(q, d_row, i_row, buf),
                            );
                        take_roots(ds);
                    })
                });
            }
            py.check_signals()?;
        }
        Ok((d_out.into_pyarray(py, k)?, idx_out.into_pyarray(py, k)?))
    }

    /// Indices of the points within `r[i]` metres (inclusive) of row `i` of
    /// `x`, as a 1-D object array of lists (sorted by index when `sort`).
    fn ball<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        r: PyReadonlyArray1<'py, f64>,
        sort: bool,
        workers: i64,
    ) -> PyResult<Bound<'py, PyArray1<Py<PyAny>>>> {
        let queries = as_points(&x)?;
        let r = r
            .as_slice()
            .map_err(|_| PyValueError::new_err("r must be contiguous"))?;
        if r.len() != queries.len() {
            return Err(PyValueError::new_err("one radius per query expected"));
        }
        r.iter().try_for_each(|&r| check_radius(r))?;
        let tree = &self.tree;
        let p = pool::pool(pool::threads(workers)?)?;
        let mut lists: Vec<Py<PyAny>> = Vec::with_capacity(queries.len());
        for (qs, rs) in queries.chunks(CHUNK).zip(r.chunks(CHUNK)) {
            let found: Vec<Vec<usize>> = py.detach(|| {
                p.install(|| {
                    qs.par_iter()
                        .zip(rs.par_iter())
                        .with_min_len(MIN_LEN)
                        .map_init(Vec::new, |buf, (q, &r)| {
                            in_radius(tree, q, r, buf);
                            let mut ids: Vec<usize> = buf.iter().map(|n| n.index).collect();
                            if sort {
                                ids.sort_unstable();
                            }
                            ids
                        })
                        .collect()
                })
            });
            for ids in found {
                lists.push(PyList::new(py, ids)?.into_any().unbind());
            }
            py.check_signals()?;
        }
        Ok(PyArray1::from_vec(py, lists))
    }

    /// Number of points within `r[i]` metres (inclusive) of row `i` of `x`, int64.
    fn ball_count<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        r: PyReadonlyArray1<'py, f64>,
        workers: i64,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let queries = as_points(&x)?;
        let r = r
            .as_slice()
            .map_err(|_| PyValueError::new_err("r must be contiguous"))?;
        if r.len() != queries.len() {
            return Err(PyValueError::new_err("one radius per query expected"));
        }
        r.iter().try_for_each(|&r| check_radius(r))?;
        let tree = &self.tree;
        let p = pool::pool(pool::threads(workers)?)?;
        let mut counts = vec![0i64; queries.len()];
        for ((qs, rs), cs) in queries
            .chunks(CHUNK)
            .zip(r.chunks(CHUNK))
            .zip(counts.chunks_mut(CHUNK))
        {
            py.detach(|| {
                p.install(|| {
                    qs.par_iter()
                        .zip(rs.par_iter())
                        .zip(cs.par_iter_mut())
                        .with_min_len(MIN_LEN)
                        .for_each(|((q, &r), c)| *c = count_in_radius(tree, q, r) as i64)
                })
            });
            py.check_signals()?;
        }
        Ok(PyArray1::from_vec(py, counts))
    }

    /// All pairs `(i, j)`, `i < j`, of the tree's points at most `r` metres
    /// apart, as an (p, 2) int64 array sorted by `(i, j)`.
    fn pairs<'py>(
        &self,
        py: Python<'py>,
        r: f64,
        workers: i64,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        check_radius(r)?;
        let data = self.data.bind(py).readonly();
        let points = as_points(&data)?;
        let tree = &self.tree;
        let p = pool::pool(pool::threads(workers)?)?;
        let mut flat: Vec<i64> = Vec::new();
        for (c, chunk) in points.chunks(CHUNK).enumerate() {
            let found: Vec<Vec<i64>> = py.detach(|| {
                p.install(|| {
                    chunk
                        .par_iter()
                        .enumerate()
                        .with_min_len(MIN_LEN)
                        .map_init(Vec::new, |buf, (k, q)| {
                            let i = c * CHUNK + k;
                            in_radius(tree, q, r, buf);
                            let mut js: Vec<i64> = buf
                                .iter()
                                .filter(|n| n.index > i)
                                .map(|n| n.index as i64)
                                .collect();
                            js.sort_unstable();
                            js.into_iter().flat_map(|j| [i as i64, j]).collect()
                        })
                        .collect()
                })
            });
            for f in found {
                flat.extend(f);
            }
            py.check_signals()?;
        }
        Ok(rows_to_py(py, flat, 2))
    }

    /// Work counters of kNN (`r` None) or radius-`r` queries at the rows of
    /// `x`: `(queries, nodes_visited, leaves_scanned, distance_evaluations)`.
    /// Also sets `nodes_visited`.
    #[pyo3(signature = (x, k, r, workers))]
    fn stats(
        &self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f64>,
        k: usize,
        r: Option<f64>,
        workers: i64,
    ) -> PyResult<(u64, u64, u64, u64)> {
        if let Some(r) = r {
            check_radius(r)?;
        } else if k == 0 {
            return Err(PyValueError::new_err("k must be >= 1"));
        }
        let queries = as_points(&x)?;
        let tree = &self.tree;
        let s = pool::run(py, workers, || query_stats(tree, queries, k, r))?;
        self.nodes_visited.store(s.nodes_visited, Ordering::Relaxed);
        Ok((
            s.queries,
            s.nodes_visited,
            s.leaves_scanned,
            s.distance_evaluations,
        ))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKdTree>()
}
