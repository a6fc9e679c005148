"""pointpipe's I/O, stages and odometry on numpy arrays."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from . import _pointpipe
from ._kdtree import as_points

__all__ = [
    "PointCloud",
    "read",
    "write",
    "voxel_downsample",
    "estimate_normals",
    "register",
    "RegistrationResult",
    "evaluate",
    "Odometry",
    "odometry",
]

# dtype of each attribute pointpipe stores (names as in laspy / Open3D).
_ATTRIBUTE_DTYPES = {
    "intensity": np.float32,
    "normals": np.float64,
    "curvature": np.float64,
    "time": np.float64,
    "gps_time": np.float64,
    "classification": np.uint8,
    "return_number": np.uint8,
    "number_of_returns": np.uint8,
    "scan_angle": np.float32,
    "user_data": np.uint8,
    "point_source_id": np.uint16,
    "rgb": np.uint16,
    "nir": np.uint16,
}


class PointCloud:
    """Points and per-point attributes, as read by :func:`read`.

    Attributes
    ----------
    points : ndarray, shape (n, 3), float64
        Positions, metres (or the LAS file's CRS unit).
    attributes : dict of str to ndarray
        Per-point attributes, named as in laspy / Open3D: ``intensity``
        (float32; KITTI 0-1, LAS 0-65535), ``normals`` ((n, 3) float64),
        ``curvature`` (float64), ``time`` (float64 s; ``gps_time`` for LAS),
        and for LAS/LAZ ``classification``, ``return_number``,
        ``number_of_returns``, ``user_data`` (uint8), ``scan_angle``
        (float32, degrees), ``point_source_id`` (uint16), ``rgb`` ((n, 3)
        uint16), ``nir`` (uint16).
    crs : str or None
        The CRS of a LAS/LAZ file: its WKT, or ``"EPSG:<code>"`` from GeoTIFF
        keys; None when there is none (read-only: it comes with the file).
    """

    def __init__(self, points: Any, attributes: Mapping[str, Any] | None = None) -> None:
        self.points = as_points(points, "points")
        self.attributes: dict[str, np.ndarray] = dict(attributes or {})
        self._crs: str | None = None
        self._source: Any = None

    @property
    def crs(self) -> str | None:
        return self._crs

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __repr__(self) -> str:
        return f"pointpipe.PointCloud({len(self)} points, attributes={sorted(self.attributes)}, crs={'yes' if self._crs else None})"


def read(path: str | os.PathLike[str]) -> PointCloud:
    """Read a point cloud: LAS, LAZ, PLY, PCD or KITTI ``.bin`` (by extension, checked against the content).

    Returns a :class:`PointCloud`. Points with NaN/inf coordinates are
    dropped on read.

    Raises
    ------
    FileNotFoundError
        The file does not exist (an ``OSError``).
    OSError
        Another I/O error.
    ValueError
        A malformed file or an unsupported extension (the message names the
        file and the reason).
    """
    points, attributes, crs, source = _pointpipe.read(os.fspath(path))
    cloud = PointCloud(points, attributes)
    cloud._crs = crs
    cloud._source = source
    return cloud


def write(path: str | os.PathLike[str], cloud: PointCloud | Any) -> None:
    """Write a point cloud; the format comes from the extension (las, laz, ply, pcd, bin).

    ``cloud`` is a :class:`PointCloud` or an (n, 3) array. The file is
    written to a temporary file and renamed, so a failed write leaves
    nothing behind. A cloud that came from :func:`read` with its point count
    unchanged keeps its LAS header (CRS, scales) and LAS attributes; the
    values in ``attributes`` replace them.

    Raises ``ValueError`` (bad shapes, unsupported extension) or ``OSError``.
    """
    if not isinstance(cloud, PointCloud):
        cloud = PointCloud(cloud)
    points = as_points(cloud.points, "points")
    attrs = {}
    for name, value in cloud.attributes.items():
        dtype = _ATTRIBUTE_DTYPES.get(name)
        if dtype is not None:
            attrs[name] = np.ascontiguousarray(value, dtype=dtype)
    _pointpipe.write(os.fspath(path), points, attrs, cloud._source)


def voxel_downsample(points: Any, voxel_size: float, mode: str = "centroid") -> np.ndarray:
    """Voxel grid downsampling.

    Parameters
    ----------
    points : array_like, shape (n, 3)
        Metres, finite.
    voxel_size : float
        Voxel edge, metres, > 0.
    mode : {"centroid", "first"}
        The mean of each voxel's points, or its first point (input order).

    Returns
    -------
    ndarray, shape (m, 3), float64
        One point per occupied voxel, in order of first occurrence.

    Raises ``ValueError`` for a bad shape, non-finite points, ``voxel_size
    <= 0`` or an unknown mode.
    """
    return _pointpipe.voxel_downsample(as_points(points), float(voxel_size), str(mode))


def estimate_normals(
    points: Any,
    radius: float | None = None,
    max_nn: int | None = None,
    knn: int | None = None,
    sensor_origin: Any = (0.0, 0.0, 0.0),
    min_neighbors: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """PCA surface normals and curvature.

    Neighbourhood: ``radius`` metres (with up to ``max_nn`` nearest of them:
    Open3D's hybrid search), or the ``knn`` nearest points; default radius
    1.0 m with ``max_nn`` 30. Normals face ``sensor_origin``.

    Returns
    -------
    normals : ndarray, shape (n, 3), float64
        Unit normals; NaN rows for points with fewer than ``min_neighbors``
        neighbours.
    curvature : ndarray, shape (n,), float64
        Surface variation ``l0 / (l0 + l1 + l2)`` in [0, 1/3]; NaN where
        there is no normal.

    Raises ``ValueError`` for bad shapes, non-finite points, a radius not
    > 0, ``knn`` or ``max_nn`` below ``min_neighbors``, both radius and knn.
    """
    origin = [float(c) for c in np.asarray(sensor_origin, dtype=np.float64).reshape(3)]
    return _pointpipe.estimate_normals(
        as_points(points),
        None if radius is None else float(radius),
        None if max_nn is None else int(max_nn),
        None if knn is None else int(knn),
        int(min_neighbors),
        origin,
    )


@dataclass(frozen=True)
class RegistrationResult:
    """The outcome of :func:`register` (Open3D's names where they exist).

    Attributes
    ----------
    transformation : ndarray, shape (4, 4), float64
        ``target_from_source``: ``p_target = T @ p_source``.
    fitness : float
        Fraction of source points with a correspondence, in [0, 1].
    inlier_rmse : float
        RMS distance of the inliers to their nearest target points, metres.
    converged : bool
        The last update was below both tolerances.
    iterations : int
        Pose updates applied.
    num_inliers : int
    degenerate : bool
        Some direction of motion is (almost) unconstrained (corridor, plane).
    degeneracy_ratio : float
        Smallest over largest eigenvalue of the scaled information matrix.
    information : ndarray, shape (6, 6), float64
        ``J^T W J`` (rx, ry, rz, tx, ty, tz).
    """

    transformation: np.ndarray
    fitness: float
    inlier_rmse: float
    converged: bool
    iterations: int
    num_inliers: int
    degenerate: bool
    degeneracy_ratio: float
    information: np.ndarray = field(repr=False)


def register(
    source: Any,
    target: Any,
    max_correspondence_distance: float = 1.0,
    init: Any = None,
    method: str = "point_to_plane",
    *,
    kernel: str = "huber",
    kernel_scale: float = 0.1,
    max_iterations: int = 30,
    translation_tolerance: float = 1e-4,
    rotation_tolerance: float = 1e-4,
    degeneracy_threshold: float = 1e-3,
    coarse_stride: int = 4,
    target_normals: Any = None,
    normal_radius: float = 1.0,
    normal_max_nn: int = 30,
) -> RegistrationResult:
    """Register ``source`` onto ``target`` with ICP.

    Parameters
    ----------
    source, target : array_like, shape (n, 3) / (m, 3)
        Points in their own frames, metres, finite, non-empty.
    max_correspondence_distance : float
        Matches farther than this are ignored, metres (> 0).
    init : array_like, shape (4, 4), optional
        Initial ``target_from_source`` (identity by default).
    method : {"point_to_plane", "point_to_point"}
    kernel : {"huber", "cauchy", "geman_mcclure", "tukey", "none"}
        Robust kernel, of scale ``kernel_scale`` metres.
    max_iterations : int
        Iteration budget of the coarse stage and the stage on all points
        together (>= 0).
    coarse_stride : int
        Coarse-to-fine: a first stage on every ``coarse_stride``-th source
        point (tolerances x10, sharing ``max_iterations``) before the stage
        on all points; 1 turns it off (>= 1).
    target_normals : array_like, shape (m, 3), optional
        For point-to-plane; estimated from ``target`` (radius
        ``normal_radius`` m, up to ``normal_max_nn`` neighbours) when omitted.

    Returns a :class:`RegistrationResult`. The GIL is released while it runs.

    Raises
    ------
    ValueError
        bad shapes, non-finite or empty input, invalid parameters.
    RuntimeError
        the registration failed (e.g. no correspondence within
        ``max_correspondence_distance``).
    """
    init = np.eye(4) if init is None else np.ascontiguousarray(init, dtype=np.float64)
    normals = None if target_normals is None else np.ascontiguousarray(target_normals, dtype=np.float64)
    d = _pointpipe.register(
        as_points(source, "source", allow_empty=False),
        as_points(target, "target", allow_empty=False),
        float(max_correspondence_distance),
        init,
        str(method),
        str(kernel),
        float(kernel_scale),
        int(max_iterations),
        float(translation_tolerance),
        float(rotation_tolerance),
        float(degeneracy_threshold),
        int(coarse_stride),
        normals,
        float(normal_radius),
        int(normal_max_nn),
    )
    return RegistrationResult(**d)


def evaluate(poses: Any, gt: Any) -> dict[str, Any]:
    """ATE (after Umeyama alignment), RPE (consecutive frames) and the KITTI relative error.

    ``poses`` and ``gt``: (n, 4, 4) world_from_sensor poses, n >= 3, frame
    ``i`` of one matching frame ``i`` of the other.

    Returns ``{"ate": {"rmse_m", "mean_m", "median_m", "max_m",
    "reference_from_estimated"}, "rpe": {"trans_rmse_m", "rot_rmse_deg",
    "trans_mean_m", "rot_mean_deg", "pairs"}, "kitti": {"t_err_pct",
    "r_err_deg_per_100m", "segments"} or None}`` (None when the reference is
    not longer than 100 m). Raises ``ValueError`` for bad shapes, different
    lengths, fewer than 3 poses, or matrices that are not rigid transforms.
    """
    return _pointpipe.evaluate(
        np.ascontiguousarray(poses, dtype=np.float64), np.ascontiguousarray(gt, dtype=np.float64)
    )


class Odometry:
    """LiDAR odometry, frame by frame (KISS-ICP's Python pipeline names where they overlap).

    Parameters
    ----------
    config : dict, optional
        Any subset of the fields of pointpipe's ``OdometryConfig`` (the
        TOML keys of ``pointpipe odometry --config``: ``min_range``,
        ``max_range``, ``voxel_size``, ``max_points_per_voxel``,
        ``initial_threshold``, ``min_motion``, ...); unknown keys and invalid
        values raise ``ValueError``.

    Poses are ``world_from_sensor``, world = the first frame's sensor frame,
    and bit-identical to ``pointpipe odometry`` on the same frames.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._odometry = _pointpipe._Odometry(None if config is None else json.dumps(dict(config)))

    def register_frame(self, points: Any, timestamps: Any = None) -> np.ndarray:
        """Register one frame and return its pose.

        Parameters
        ----------
        points : array_like, shape (n, 3)
            The frame in the sensor frame, metres. Non-finite points are
            dropped (as the library's range crop does).
        timestamps : array_like, shape (n,), optional
            Per-point times, seconds (kept with the frame; not used for
            deskewing).

        Returns
        -------
        ndarray, shape (4, 4), float64
            ``world_from_sensor`` of this frame. Frames that cannot be
            registered keep the constant-velocity prediction (see
            :attr:`statuses`).
        """
        a = np.ascontiguousarray(points, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 3:
            raise ValueError(f"points: expected an (n, 3) array of points, got shape {a.shape}")
        t = None if timestamps is None else np.ascontiguousarray(timestamps, dtype=np.float64).reshape(-1)
        return self._odometry.register_frame(a, t)

    @property
    def poses(self) -> np.ndarray:
        """``world_from_sensor`` of every frame so far, shape (n, 4, 4), float64."""
        return self._odometry.poses

    @property
    def last_pose(self) -> np.ndarray:
        """The latest pose (4, 4), identity before the first frame."""
        p = self._odometry.last_pose()
        return np.eye(4) if p is None else p

    @property
    def statuses(self) -> list[str]:
        """Per frame: "first", "tracked", "empty", "degenerate", "failed: ...", "unreadable: ..."."""
        return self._odometry.statuses

    @property
    def voxel_size(self) -> float | None:
        """The map voxel size in metres, once known (after the first non-empty frame)."""
        return self._odometry.voxel_size

    def local_map(self) -> np.ndarray:
        """The local map the last frame was registered against (world frame), shape (m, 3), float64."""
        return self._odometry.local_map()

    def run_sequence(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Run every frame of a sequence folder or frame-list file, as ``pointpipe odometry`` reads it.

        Returns :attr:`poses`. Ctrl-C stops between frames
        (``KeyboardInterrupt``; the frames done so far stay in :attr:`poses`).
        Raises ``FileNotFoundError``/``OSError``/``ValueError`` for a missing
        folder or an unreadable frame.
        """
        self._odometry.run_sequence(os.fspath(path))
        return self.poses


def odometry(
    path_or_frames: str | os.PathLike[str] | Iterable[Any], config: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Run the odometry over a whole sequence; returns the poses, (n, 4, 4) float64.

    ``path_or_frames``: a folder of frames (.bin, .pcd, .ply, .las, .laz;
    sorted by the number in the file name; KITTI layout with velodyne/
    recognised), a text file listing frames, or an iterable of (n, 3)
    arrays. ``config``: as for :class:`Odometry`. The poses equal the CLI's
    ``pointpipe odometry`` bit for bit.
    """
    o = Odometry(config)
    if isinstance(path_or_frames, (str, os.PathLike)):
        return o.run_sequence(path_or_frames)
    for frame in path_or_frames:
        o.register_frame(frame)
    return o.poses
