"""Bad input raises the documented exception; the interpreter survives."""

from __future__ import annotations

import numpy as np
import pytest

import pointpipe

POINTS = np.random.default_rng(1).uniform(0, 10, size=(500, 3))


@pytest.fixture(scope="module")
def tree():
    return pointpipe.KDTree(POINTS)


@pytest.mark.parametrize("data", [np.zeros((10, 2)), np.zeros((10, 4)), np.zeros(9), np.zeros((2, 3, 3))])
def test_tree_wrong_shape(data):
    with pytest.raises(ValueError, match="3"):
        pointpipe.KDTree(data)


def test_tree_nan_and_bad_leafsize():
    bad = POINTS.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError):
        pointpipe.KDTree(bad)
    with pytest.raises(ValueError):
        pointpipe.KDTree(POINTS, leafsize=0)
    with pytest.raises(NotImplementedError):
        pointpipe.KDTree(POINTS, boxsize=10.0)


def test_query_bad_arguments(tree):
    with pytest.raises(ValueError):
        tree.query(POINTS[:3], k=0)
    with pytest.raises(ValueError):
        tree.query(POINTS[:3], k=[0, 2])
    with pytest.raises(ValueError):
        tree.query(np.zeros((3, 2)))
    with pytest.raises(ValueError):
        tree.query([np.nan, 0.0, 0.0])
    with pytest.raises(ValueError):
        tree.query(POINTS[:3], distance_upper_bound=-1.0)
    with pytest.raises(ValueError):
        tree.query(POINTS[:3], workers=0)
    with pytest.raises(NotImplementedError):
        tree.query(POINTS[:3], p=1)
    with pytest.raises(NotImplementedError):
        tree.query(POINTS[:3], eps=0.1)
    d, i = tree.query(np.zeros((0, 3)), k=2)
    assert d.shape == (0, 2) and i.shape == (0, 2)


def test_ball_and_pairs_bad_arguments(tree):
    with pytest.raises(ValueError):
        tree.query_ball_point(POINTS[:3], -1.0)
    with pytest.raises(ValueError):
        tree.query_ball_point(POINTS[:3], np.nan)
    with pytest.raises(NotImplementedError):
        tree.query_ball_point(POINTS[:3], 1.0, p=np.inf)
    with pytest.raises(ValueError):
        tree.query_pairs(-0.5)
    with pytest.raises(ValueError):
        tree.query_pairs(0.5, output_type="list")


def test_io_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        pointpipe.read(tmp_path / "missing.pcd")
    with pytest.raises(OSError):
        pointpipe.read(tmp_path / "missing.las")
    bad = tmp_path / "bad.pcd"
    bad.write_bytes(b"this is not a pcd file\n")
    with pytest.raises(ValueError, match="bad.pcd"):
        pointpipe.read(bad)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(b"\x00" * 17)
    with pytest.raises(ValueError):
        pointpipe.read(truncated)
    with pytest.raises(ValueError, match="unsupported"):
        pointpipe.write(tmp_path / "out.xyz", POINTS)
    with pytest.raises(OSError):
        pointpipe.write(tmp_path / "no" / "such" / "dir.ply", POINTS)
    with pytest.raises(ValueError):
        pointpipe.write(tmp_path / "bad.ply", np.zeros((3, 2)))


def test_stage_errors():
    with pytest.raises(ValueError, match="voxel_size"):
        pointpipe.voxel_downsample(POINTS, 0.0)
    with pytest.raises(ValueError):
        pointpipe.voxel_downsample(POINTS, 0.1, mode="median")
    with pytest.raises(ValueError):
        pointpipe.voxel_downsample(np.full((3, 3), np.nan), 0.1)
    with pytest.raises(ValueError, match="radius"):
        pointpipe.estimate_normals(POINTS, radius=-1.0)
    with pytest.raises(ValueError):
        pointpipe.estimate_normals(POINTS, knn=2)
    with pytest.raises(ValueError):
        pointpipe.register(np.zeros((0, 3)), POINTS)
    with pytest.raises(ValueError, match="max_correspondence_distance"):
        pointpipe.register(POINTS, POINTS, max_correspondence_distance=-1.0)
    with pytest.raises(ValueError, match="4x4"):
        pointpipe.register(POINTS, POINTS, init=np.eye(3))
    with pytest.raises(RuntimeError, match="registration failed"):
        pointpipe.register(POINTS + 1000.0, POINTS, max_correspondence_distance=0.5, method="point_to_point")
    with pytest.raises(ValueError):
        pointpipe.evaluate(np.tile(np.eye(4), (2, 1, 1)), np.tile(np.eye(4), (2, 1, 1)))
    with pytest.raises(ValueError):
        pointpipe.Odometry({"no_such_key": 1})
    with pytest.raises(ValueError, match="max_range"):
        pointpipe.Odometry({"max_range": -5.0})
    with pytest.raises(ValueError):
        pointpipe.Odometry().register_frame(np.zeros((4, 2)))
    with pytest.raises(FileNotFoundError):
        pointpipe.odometry("/nonexistent/sequence/folder")
