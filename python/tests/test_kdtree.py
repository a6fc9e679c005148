"""pointpipe.KDTree against scipy.spatial.cKDTree: indices and distances, ties aside."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data

import pointpipe

scipy_spatial = pytest.importorskip("scipy.spatial")


def kitti_points() -> np.ndarray:
    raw = np.fromfile(shared_data("kitti-raw-hdl64-5frames/0000000000.bin"), dtype=np.float32).reshape(-1, 4)
    return raw[:, :3].astype(np.float64)


def random_points() -> np.ndarray:
    return np.random.default_rng(7).uniform(-50, 50, size=(20_000, 3))


def duplicate_points() -> np.ndarray:
    rng = np.random.default_rng(8)
    base = rng.integers(0, 20, size=(300, 3)).astype(np.float64) * 0.5
    return base[rng.integers(0, len(base), size=6_000)]


def plane_points() -> np.ndarray:
    # A 2-D plane embedded in 3-D (tilted), on a grid: many equal distances.
    u, v = np.meshgrid(np.arange(80) * 0.1, np.arange(80) * 0.1)
    a, b = np.array([1.0, 0.0, 0.5]), np.array([0.0, 1.0, -0.25])
    return (u.reshape(-1, 1) * a + v.reshape(-1, 1) * b) + np.array([3.0, -2.0, 1.0])


CLOUDS = {"kitti": kitti_points, "random": random_points, "duplicates": duplicate_points, "plane": plane_points}


@pytest.fixture(scope="module", params=list(CLOUDS))
def cloud(request):
    data = CLOUDS[request.param]()
    rng = np.random.default_rng(9)
    # Queries: a subset of the points (exact hits) and jittered points.
    pick = rng.choice(len(data), size=min(1500, len(data)), replace=False)
    queries = np.vstack([data[pick[:750]], data[pick[750:]] + rng.normal(0, 0.3, size=(len(pick) - 750, 3))])
    return request.param, data, queries, pointpipe.KDTree(data), scipy_spatial.cKDTree(data)


def assert_same_knn(data, queries, d, i, d_ref, i_ref, n, d_ext):
    """Distances equal scipy's exactly; each index is a point at that distance (ties aside)."""
    np.testing.assert_array_equal(d, d_ref)
    missing = ~np.isfinite(d_ref)
    np.testing.assert_array_equal(i[missing], n)
    assert (i_ref[missing] == n).all()
    found = ~missing
    q = np.broadcast_to(queries[:, None, :], d.shape + (3,))[found]
    own = np.sqrt(((data[i[found]] - q) ** 2).sum(axis=1))
    np.testing.assert_allclose(own, d[found], rtol=1e-12, atol=1e-12)
    # Where distances are not tied, the indices are scipy's.
    # d_ext: scipy's k + 1 nearest, so a tie with the next point counts too.
    untied = np.ones_like(d, dtype=bool)
    untied[..., 1:] &= d[..., 1:] != d[..., :-1]
    untied &= d != d_ext[..., 1:]
    np.testing.assert_array_equal(i[untied & found], i_ref[untied & found])
    # No index twice in a row.
    for row in i:
        real = row[row < n]
        assert len(set(real.tolist())) == len(real)


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("bound", [np.inf, 0.7])
@pytest.mark.parametrize("workers", [1, -1])
def test_query_equals_scipy(cloud, k, bound, workers):
    name, data, queries, tree, ref = cloud
    d, i = tree.query(queries, k=k, distance_upper_bound=bound, workers=workers)
    d_ref, i_ref = ref.query(queries, k=k, distance_upper_bound=bound, workers=workers)
    assert d.shape == d_ref.shape and i.shape == i_ref.shape
    assert d.dtype == np.float64 and i.dtype == i_ref.dtype
    if k == 1:
        d, i, d_ref, i_ref = d[:, None], i[:, None], d_ref[:, None], i_ref[:, None]
    d_ext, _ = ref.query(queries, k=k + 1, distance_upper_bound=bound)
    assert_same_knn(data, queries, d, i, d_ref, i_ref, len(data), d_ext)


def test_query_k_list_and_shapes(cloud):
    name, data, queries, tree, ref = cloud
    d, i = tree.query(queries[:50], k=[1, 3, 7])
    d_ref, i_ref = ref.query(queries[:50], k=[1, 3, 7])
    assert d.shape == d_ref.shape == (50, 3)
    np.testing.assert_array_equal(d, d_ref)
    # Single point: scalars for k=1, (k,) arrays otherwise; nested shapes kept.
    d1, i1 = tree.query(queries[0])
    d1_ref, i1_ref = ref.query(queries[0])
    assert d1 == d1_ref and isinstance(i1, int)
    d3, _ = tree.query(queries[0], k=3)
    assert d3.shape == (3,)
    d4, i4 = tree.query(queries[:12].reshape(3, 4, 3), k=2)
    assert d4.shape == i4.shape == (3, 4, 2)
    np.testing.assert_array_equal(d4, ref.query(queries[:12].reshape(3, 4, 3), k=2)[0])


@pytest.mark.parametrize("r", [0.3, 1.0])
@pytest.mark.parametrize("workers", [1, -1])
def test_query_ball_point_equals_scipy(cloud, r, workers):
    name, data, queries, tree, ref = cloud
    got = tree.query_ball_point(queries, r, workers=workers)
    expected = ref.query_ball_point(queries, r, workers=workers)
    assert got.shape == expected.shape and got.dtype == object
    for a, b in zip(got, expected):
        assert a == sorted(b)
    counts = tree.query_ball_point(queries, r, return_length=True, workers=workers)
    np.testing.assert_array_equal(counts, ref.query_ball_point(queries, r, return_length=True))
    one = tree.query_ball_point(queries[0], r)
    assert isinstance(one, list) and sorted(one) == sorted(ref.query_ball_point(queries[0], r))


def test_query_ball_point_radius_array(cloud):
    name, data, queries, tree, ref = cloud
    radii = np.linspace(0.0, 1.5, 40)
    got = tree.query_ball_point(queries[:40], radii, return_sorted=True)
    expected = ref.query_ball_point(queries[:40], radii, return_sorted=True)
    assert [list(x) for x in got] == [list(x) for x in expected]


def test_query_pairs_equals_scipy(cloud):
    name, data, queries, tree, ref = cloud
    r = 0.3 if name != "kitti" else 0.1
    assert tree.query_pairs(r) == ref.query_pairs(r)
    got = tree.query_pairs(r, output_type="ndarray")
    expected = ref.query_pairs(r, output_type="ndarray")
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert set(map(tuple, got.tolist())) == set(map(tuple, expected.tolist()))


def test_count_neighbors_equals_scipy(cloud):
    name, data, queries, tree, ref = cloud
    other = pointpipe.KDTree(queries)
    other_ref = scipy_spatial.cKDTree(queries)
    for r in (0.0, 0.25, 1.0):
        assert tree.count_neighbors(other, r) == ref.count_neighbors(other_ref, r)
        assert other.count_neighbors(tree, r, workers=1) == other_ref.count_neighbors(ref, r)
    radii = np.array([0.1, 0.5, 0.5, 2.0])
    for cumulative in (True, False):
        got = tree.count_neighbors(other, radii, cumulative=cumulative)
        expected = ref.count_neighbors(other_ref, radii, cumulative=cumulative)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError):
        tree.count_neighbors(other, -1.0)
    with pytest.raises(ValueError):
        tree.count_neighbors(other, [1.0, 0.5], cumulative=False)
    with pytest.raises(NotImplementedError):
        tree.count_neighbors(other, 1.0, weights=np.ones(len(data)))
    with pytest.raises(TypeError):
        tree.count_neighbors(other_ref, 1.0)


def test_attributes_and_stats():
    data = random_points()
    tree = pointpipe.KDTree(data, leafsize=16)
    assert tree.n == len(data) and tree.m == 3 and tree.leafsize == 16
    assert tree.data is data  # C-contiguous float64: used without a copy
    n_leaves = int(np.ceil(len(data) / 16))
    assert tree.tree_height == 1 + int(np.ceil(np.log2(n_leaves)))
    assert tree.nodes_visited == 0
    stats = tree.query_stats(data[:1000], k=10)
    assert stats["queries"] == 1000 and tree.nodes_visited == stats["nodes_visited"] > 0
    assert stats["nodes_visited_per_query"] < tree.size
    f32 = pointpipe.KDTree(data.astype(np.float32))
    assert f32.data.dtype == np.float64
    fortran = pointpipe.KDTree(np.asfortranarray(data))
    np.testing.assert_array_equal(fortran.query(data[:5], k=3)[1], tree.query(data[:5], k=3)[1])


def test_missing_neighbours_and_empty_tree():
    tree = pointpipe.KDTree(np.zeros((0, 3)))
    d, i = tree.query(np.ones((2, 3)), k=3)
    assert np.isinf(d).all() and (i == 0).all()
    small = pointpipe.KDTree(np.eye(3))
    d, i = small.query([0.0, 0.0, 0.0], k=5)
    np.testing.assert_array_equal(i, [0, 1, 2, 3, 3])
    assert np.isinf(d[3:]).all()
    # The bound is strict, as scipy's.
    d, i = small.query([0.0, 0.0, 0.0], k=2, distance_upper_bound=1.0)
    np.testing.assert_array_equal(i, [3, 3])
    d_ref, i_ref = scipy_spatial.cKDTree(np.eye(3)).query([0.0, 0.0, 0.0], k=2, distance_upper_bound=1.0)
    np.testing.assert_array_equal(i, i_ref)


@pytest.mark.parametrize("workers", [1, -1])
def test_whole_frame_in_scan_order_equals_scipy(workers):
    # The tree's own points start in their own leaves; a copy of them, in
    # scan order, from the previous answer's leaf: the same results.
    data = kitti_points()
    tree, ref = pointpipe.KDTree(data), scipy_spatial.cKDTree(data)
    for x, k, bound in ((data, 10, np.inf), (data, 5, 0.5), (data.copy(), 10, np.inf), (data.copy(), 5, 0.5)):
        d, i = tree.query(x, k=k, distance_upper_bound=bound, workers=workers)
        d_ref, i_ref = ref.query(data, k=k, distance_upper_bound=bound)
        d_ext, _ = ref.query(data, k=k + 1, distance_upper_bound=bound)
        assert_same_knn(data, data, d, i, d_ref, i_ref, len(data), d_ext)


def test_recycled_output_buffers_never_show_old_values():
    # Output buffers of 1 MiB and more are kept when numpy frees them and
    # reused by the next query: every slot must be written again, and a
    # live array must never be written by a later query.
    data = random_points()
    tree, ref = pointpipe.KDTree(data), scipy_spatial.cKDTree(data)
    d, i = tree.query(data, k=10)
    first_d, first_i = d.copy(), i.copy()
    del d, i
    d, i = tree.query(data, k=10)
    np.testing.assert_array_equal(d, first_d)
    np.testing.assert_array_equal(i, first_i)
    assert d.flags.writeable and d.flags.c_contiguous and d.base is not None
    held_d, held_i = d, i
    del d, i
    # Same size, other queries, most rows without 10 within the bound.
    moved = data + 0.5
    d2, i2 = tree.query(moved, k=10, distance_upper_bound=2.0)
    d_ref, i_ref = ref.query(moved, k=10, distance_upper_bound=2.0)
    np.testing.assert_array_equal(np.isinf(d2), np.isinf(d_ref))
    np.testing.assert_array_equal(i2[np.isinf(d2)], len(data))
    np.testing.assert_allclose(d2[~np.isinf(d2)], d_ref[~np.isinf(d_ref)], rtol=0, atol=1e-12)
    # The held arrays are untouched and still writable.
    np.testing.assert_array_equal(held_d, first_d)
    np.testing.assert_array_equal(held_i, first_i)
    held_d[0, 0] = -1.0
    assert held_d[0, 0] == -1.0
    # The tree's own points again, into recycled memory, with a bound.
    del held_d, held_i, d2, i2
    d3, i3 = tree.query(data, k=10, distance_upper_bound=1.0)
    d3_ref, i3_ref = ref.query(data, k=10, distance_upper_bound=1.0)
    np.testing.assert_array_equal(np.isinf(d3), np.isinf(d3_ref))
    np.testing.assert_array_equal(i3[np.isinf(d3)], len(data))


def test_queries_release_the_gil():
    import threading
    import time

    data = random_points()
    tree = pointpipe.KDTree(data)
    queries = np.random.default_rng(3).uniform(-50, 50, size=(100_000, 3))
    span = {}

    def work():
        span["start"] = time.perf_counter()
        tree.query(queries, k=10)
        span["end"] = time.perf_counter()

    ticks = []
    thread = threading.Thread(target=work)
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    # This thread ran Python code while the query was running.
    inside = [t for t in ticks if span["start"] + 0.01 < t < span["end"] - 0.01]
    assert span["end"] - span["start"] > 0.05
    assert len(inside) > 100, (len(inside), span)
