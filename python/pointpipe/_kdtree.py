"""``pointpipe.KDTree``: scipy's ``cKDTree`` interface on pointpipe's k-d tree."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _pointpipe

__all__ = ["KDTree", "as_points"]


def as_points(points: Any, name: str = "points", allow_empty: bool = True, check_finite: bool = True) -> np.ndarray:
    """``points`` as a C-contiguous (n, 3) float64 array (no copy when it already is one).

    Raises ``ValueError`` for another shape (the library is 3-D), non-finite
    coordinates (unless ``check_finite`` is false: the caller's library call
    checks them), or an empty array when ``allow_empty`` is false.
    """
    a = np.ascontiguousarray(points, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{name}: expected an (n, 3) array of points (the library is 3-D), got shape {a.shape}")
    if not allow_empty and a.shape[0] == 0:
        raise ValueError(f"{name}: empty point array")
    if check_finite and not np.isfinite(a).all():
        raise ValueError(f"{name}: coordinates must be finite, check for nan or inf values")
    return a


def _workers(workers: Any) -> int:
    w = -1 if workers is None else int(workers)
    if w != -1 and w < 1:
        raise ValueError(f"workers must be -1 (all cores) or >= 1, got {workers}")
    return w


def _check_defaults(p: float, eps: float) -> None:
    if p != 2:
        raise NotImplementedError(f"p={p}: pointpipe.KDTree supports only the Euclidean distance (p=2)")
    if eps != 0:
        raise NotImplementedError(f"eps={eps}: pointpipe.KDTree answers exactly (eps=0) only")


class KDTree:
    """k-d tree over 3-D points for fast nearest-neighbour queries.

    A drop-in for the common part of ``scipy.spatial.cKDTree`` (same
    argument names, defaults, return shapes and dtypes) backed by
    pointpipe's parallel k-d tree (Rust). The tree is 3-D only: ``data``
    with another number of columns raises ``ValueError``.

    Parameters
    ----------
    data : array_like, shape (n, 3)
        The points, metres (any unit; distances come back in it). Used
        without a copy when it is a C-contiguous float64 array; other dtypes
        and layouts are converted. Coordinates must be finite.
    leafsize : int, optional
        Maximum number of points per leaf (default 32; scipy's is 16).
        Leaves hold between about ``leafsize / 2`` and ``leafsize`` points.
    compact_nodes, balanced_tree : bool, optional
        Accepted for compatibility; the tree is always balanced (median
        splits) with tight node boxes.
    copy_data : bool, optional
        Copy ``data`` first (default False).
    boxsize : None
        Periodic boundaries are not supported (``NotImplementedError``).
    workers : int, optional
        Threads for the build (pointpipe extension): -1 (default) all
        cores, 1 this thread only. The tree is the same at any count.

    Attributes
    ----------
    data : ndarray, shape (n, 3), float64
        The points.
    n : int
        Number of points.
    m : int
        Dimension, always 3.
    leafsize : int
        The configured leaf size.
    tree_height : int
        Number of levels, ``1 + ceil(log2(ceil(n / leafsize)))`` (0 when empty).
    nodes_visited : int
        Nodes entered by the last ``query_stats`` call (0 before).

    Notes
    -----
    Build O(n log n) work, parallel; queries visit O(log n) nodes on
    well-spread data. Results equal a brute-force scan; among equidistant
    points the lower index comes first. The GIL is released during the
    build and the queries; long queries can be interrupted with Ctrl-C.
    """

    def __init__(
        self,
        data: Any,
        leafsize: int = 32,
        compact_nodes: bool = True,
        copy_data: bool = False,
        balanced_tree: bool = True,
        boxsize: Any = None,
        workers: int = -1,
    ) -> None:
        if boxsize is not None:
            raise NotImplementedError("boxsize (periodic boundaries) is not supported")
        if int(leafsize) < 1:
            raise ValueError(f"leafsize must be >= 1, got {leafsize}")
        # The library's build rejects non-finite points (ValueError).
        a = as_points(data, "data", check_finite=False)
        if copy_data and a is data:
            a = a.copy()
        self._tree = _pointpipe._KDTree(a, int(leafsize), _workers(workers))

    @property
    def data(self) -> np.ndarray:
        return self._tree.data

    @property
    def n(self) -> int:
        return self._tree.n

    @property
    def m(self) -> int:
        return 3

    @property
    def leafsize(self) -> int:
        return self._tree.leafsize

    @property
    def tree_height(self) -> int:
        return self._tree.tree_height

    @property
    def size(self) -> int:
        """Number of nodes of the tree."""
        return self._tree.node_count

    @property
    def nodes_visited(self) -> int:
        return self._tree.nodes_visited

    def __repr__(self) -> str:
        return f"pointpipe.KDTree(n={self.n}, leafsize={self.leafsize}, tree_height={self.tree_height})"

    def _queries(self, x: Any) -> tuple[np.ndarray, tuple[int, ...], bool]:
        """Queries as (m, 3) float64, their leading shape, and whether they are the tree's own data."""
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 0 or a.shape[-1] != 3:
            raise ValueError(f"x must consist of vectors of length 3 (the tree is 3-D), got shape {a.shape}")
        shape = a.shape[:-1]
        data = self._tree.data
        # The tree's own points (tree.query(tree.data, ...)): finite (checked
        # by the build), and their searches start in their leaves.
        own = a is data or (
            a.shape == data.shape and a.ctypes.data == data.ctypes.data and a.strides == data.strides
        )
        q = data if own else as_points(a.reshape(-1, 3), "x")
        return q, shape, own

    def query(
        self,
        x: Any,
        k: Any = 1,
        eps: float = 0,
        p: float = 2,
        distance_upper_bound: float = math.inf,
        workers: int = 1,
    ) -> tuple[Any, Any]:
        """Query the tree for nearest neighbours.

        Parameters
        ----------
        x : array_like, last dimension 3
            Query points, float64 (converted if needed), finite.
        k : int or sequence of ints
            The number of nearest neighbours to return, or a list of the
            k-th nearest neighbours to return, starting from 1.
        eps : 0
            Only exact search is supported (other values raise
            ``NotImplementedError``).
        p : 2
            Only the Euclidean distance is supported (other values raise
            ``NotImplementedError``).
        distance_upper_bound : float, optional
            Return only neighbours closer than this (strictly), metres.
        workers : int, optional
            Threads: 1 (default) this thread, -1 all cores.

        Returns
        -------
        d : float or ndarray of float64, shape x.shape[:-1] + (k,)
            The distances to the nearest neighbours, sorted ascending. For
            an int ``k == 1`` the last dimension is squeezed; for a single
            query point (x of shape (3,)) with ``k == 1``, a float. Missing
            neighbours (fewer than k points, or none within
            ``distance_upper_bound``) have distance ``inf``.
        i : int or ndarray of int64 (intp), same shape as d
            The indices of the neighbours in ``data``; missing neighbours
            get index ``self.n``.

        Notes
        -----
        Output arrays of 1 MiB or more are 2 MiB-aligned and, once numpy
        frees them, kept for the next query of a similar size (at most 4
        buffers, 256 MiB in all, per process): repeated queries then write
        into memory already mapped instead of faulting in fresh pages.

        Raises
        ------
        ValueError
            ``x`` not of shape (..., 3) or not finite; ``k < 1``; a
            negative ``distance_upper_bound``; bad ``workers``.
        NotImplementedError
            ``p != 2`` or ``eps != 0``.
        """
        _check_defaults(p, eps)
        q, shape, own = self._queries(x)
        if isinstance(k, (int, np.integer)):
            ks = None
            kmax = int(k)
            if kmax < 1:
                raise ValueError(f"k must be >= 1, got {k}")
        else:
            ks = np.asarray(k, dtype=np.intp).ravel()
            if ks.size == 0 or (ks < 1).any():
                raise ValueError(f"k must be a non-empty list of integers >= 1, got {k}")
            kmax = int(ks.max())
        dub = float(distance_upper_bound)
        if not dub >= 0:
            raise ValueError(f"distance_upper_bound must be >= 0, got {distance_upper_bound}")
        d, i = self._tree.knn(q, kmax, dub, _workers(workers), bool(own))
        if ks is not None:
            d, i = d[:, ks - 1], i[:, ks - 1]
            return d.reshape(shape + (ks.size,)), i.reshape(shape + (ks.size,))
        if kmax == 1:
            d, i = d[:, 0], i[:, 0]
            if shape == ():
                return float(d[0]), int(i[0])
            return d.reshape(shape), i.reshape(shape)
        return d.reshape(shape + (kmax,)), i.reshape(shape + (kmax,))

    def query_ball_point(
        self,
        x: Any,
        r: Any,
        p: float = 2.0,
        eps: float = 0,
        workers: int = 1,
        return_sorted: bool | None = None,
        return_length: bool = False,
    ) -> Any:
        """Find all points within distance r of point(s) x.

        Parameters
        ----------
        x : array_like, shape (..., 3)
            Query point(s), finite.
        r : float or array_like
            Radius, metres, >= 0, inclusive (``d <= r``); broadcast
            against ``x.shape[:-1]``.
        p, eps : 2, 0
            Only exact Euclidean search (others raise ``NotImplementedError``).
        workers : int, optional
            Threads: 1 (default), -1 all cores.
        return_sorted : bool, optional
            Sort each list of indices ascending. None (default): sort for
            several query points, not for a single one (as scipy).
        return_length : bool, optional
            Return the number of points inside the radius instead of the
            indices.

        Returns
        -------
        results : list or ndarray of lists
            For a single point (x of shape (3,)): a list of indices (an int
            with ``return_length``). Otherwise an object array of shape
            ``x.shape[:-1]`` whose entries are lists of indices (an int64
            array of counts with ``return_length``).

        Raises
        ------
        ValueError
            bad shape, non-finite x, negative or NaN r.
        """
        _check_defaults(p, eps)
        q, shape, _ = self._queries(x)
        rr = np.ascontiguousarray(np.broadcast_to(np.asarray(r, dtype=np.float64), shape)).reshape(-1)
        if not (rr >= 0).all():
            raise ValueError("r must be >= 0 (and not NaN)")
        w = _workers(workers)
        if return_length:
            counts = self._tree.ball_count(q, rr, w)
            if shape == ():
                return int(counts[0])
            return counts.reshape(shape)
        sort = (shape != ()) if return_sorted is None else bool(return_sorted)
        lists = self._tree.ball(q, rr, sort, w)
        if shape == ():
            return lists[0]
        return lists.reshape(shape)

    def query_pairs(
        self, r: float, p: float = 2.0, eps: float = 0, output_type: str = "set", workers: int = -1
    ) -> Any:
        """Find all pairs of points whose distance is at most r.

        Parameters
        ----------
        r : float
            Maximum distance, metres, >= 0 (inclusive).
        p, eps : 2, 0
            Only exact Euclidean search (others raise ``NotImplementedError``).
        output_type : {'set', 'ndarray'}
            A set of ``(i, j)`` tuples with ``i < j``, or an (p, 2) int64
            (intp) array sorted by ``(i, j)``.
        workers : int, optional
            Threads (pointpipe extension): -1 (default) all cores, 1 this thread.

        Raises
        ------
        ValueError
            negative or NaN r, unknown output_type.
        """
        _check_defaults(p, eps)
        if output_type not in ("set", "ndarray"):
            raise ValueError(f"output_type must be 'set' or 'ndarray', got {output_type!r}")
        r = float(r)
        if not r >= 0:
            raise ValueError(f"r must be >= 0, got {r}")
        pairs = self._tree.pairs(r, _workers(workers))
        if output_type == "ndarray":
            return pairs
        return set(map(tuple, pairs.tolist()))

    def count_neighbors(
        self,
        other: "KDTree",
        r: Any,
        p: float = 2.0,
        weights: Any = None,
        cumulative: bool = True,
        workers: int = -1,
    ) -> Any:
        """Count the pairs ``(x1, x2)``, ``x1`` from this tree's data and ``x2``
        from ``other``'s, with ``distance(x1, x2) <= r``.

        Parameters
        ----------
        other : KDTree
            The tree of the second point set.
        r : float or array_like of float
            Radii, metres; the result has the shape of ``r``.
        p, weights : 2, None
            Only unweighted Euclidean counts (others raise ``NotImplementedError``).
        cumulative : bool, optional
            True (default): pairs within each ``r``. False: pairs in the bins
            ``r[i-1] < d <= r[i]`` (the first bin ``d <= r[0]``); ``r`` must then
            be non-decreasing.
        workers : int, optional
            Threads (pointpipe extension): -1 (default) all cores, 1 this thread.

        Returns
        -------
        result : int or ndarray of int64, shape of ``r``

        Raises
        ------
        ValueError
            negative or NaN radii; decreasing ``r`` with ``cumulative=False``.
        NotImplementedError
            ``p != 2`` or ``weights``.
        TypeError
            ``other`` is not a :class:`KDTree`.

        Notes
        -----
        One radius count per point of this tree in ``other``'s tree (library:
        ``KdTree::radius_count``, inclusive), per radius: O(len(r) · n · log m).
        """
        _check_defaults(p, 0)
        if weights is not None:
            raise NotImplementedError("weights are not supported")
        if not isinstance(other, KDTree):
            raise TypeError(f"other must be a pointpipe.KDTree, got {type(other).__name__}")
        radii = np.asarray(r, dtype=np.float64)
        if not (radii >= 0).all():
            raise ValueError("r must be >= 0 (and not NaN)")
        flat = radii.reshape(-1)
        if not cumulative and (np.diff(flat) < 0).any():
            raise ValueError("r must be non-decreasing when cumulative is False")
        w = _workers(workers)
        data = self.data
        counts = np.array(
            [int(other._tree.ball_count(data, np.full(len(data), radius), w).sum()) for radius in flat],
            dtype=np.int64,
        )
        if not cumulative:
            counts = np.diff(counts, prepend=0)
        if radii.ndim == 0:
            return int(counts[0])
        return counts.reshape(radii.shape)

    def query_stats(self, x: Any, k: int = 10, r: float | None = None, workers: int = 1) -> dict[str, float]:
        """Work counters of kNN (``r`` None) or radius-``r`` queries at ``x``.

        Returns a dict with ``queries``, ``nodes_visited``,
        ``leaves_scanned``, ``distance_evaluations`` (totals) and
        ``nodes_visited_per_query``; sets :attr:`nodes_visited`. The health
        metric of the index: pruning failing shows as nodes visited per
        query climbing toward ``size``.
        """
        q, _, _ = self._queries(x)
        queries, nodes, leaves, dist = self._tree.stats(q, int(k), None if r is None else float(r), _workers(workers))
        return {
            "queries": queries,
            "nodes_visited": nodes,
            "leaves_scanned": leaves,
            "distance_evaluations": dist,
            "nodes_visited_per_query": nodes / queries if queries else 0.0,
        }
