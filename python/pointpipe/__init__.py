"""pointpipe: LiDAR point clouds on numpy arrays, backed by the pointpipe Rust library.

- :class:`KDTree`: a drop-in for the common part of ``scipy.spatial.cKDTree`` (3-D).
- :func:`read` / :func:`write`: LAS, LAZ, PLY, PCD, KITTI ``.bin``.
- :func:`voxel_downsample`, :func:`estimate_normals`, :func:`register` (ICP),
  :func:`evaluate` (ATE, RPE, KITTI).
- :class:`Odometry` / :func:`odometry`: LiDAR odometry, poses identical to the CLI's.

Units are metres and seconds; poses are 4x4 float64 homogeneous matrices.
"""

from ._kdtree import KDTree
from ._pipeline import (
    Odometry,
    PointCloud,
    RegistrationResult,
    estimate_normals,
    evaluate,
    odometry,
    read,
    register,
    voxel_downsample,
    write,
)
from ._pointpipe import __version__

__all__ = [
    "KDTree",
    "Odometry",
    "PointCloud",
    "RegistrationResult",
    "estimate_normals",
    "evaluate",
    "odometry",
    "read",
    "register",
    "voxel_downsample",
    "write",
    "__version__",
]
