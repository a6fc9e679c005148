"""Type stubs of the pointpipe package (shapes and dtypes in the docstrings of the implementation)."""

import os
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, os.PathLike[str]]

class KDTree:
    """k-d tree over 3-D points; a drop-in for the common part of scipy.spatial.cKDTree."""

    def __init__(
        self,
        data: npt.ArrayLike,
        leafsize: int = 32,
        compact_nodes: bool = True,
        copy_data: bool = False,
        balanced_tree: bool = True,
        boxsize: None = None,
        workers: int = -1,
    ) -> None: ...
    @property
    def data(self) -> npt.NDArray[np.float64]:
        """(n, 3) float64."""
    @property
    def n(self) -> int: ...
    @property
    def m(self) -> int: ...
    @property
    def leafsize(self) -> int: ...
    @property
    def tree_height(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def nodes_visited(self) -> int: ...
    def query(
        self,
        x: npt.ArrayLike,
        k: Union[int, Sequence[int]] = 1,
        eps: float = 0,
        p: float = 2,
        distance_upper_bound: float = ...,
        workers: int = 1,
    ) -> tuple[Any, Any]:
        """(distances float64, indices int64) of shape x.shape[:-1] + (k,) (squeezed for k=1); inf / n when missing."""
    def query_ball_point(
        self,
        x: npt.ArrayLike,
        r: npt.ArrayLike,
        p: float = 2.0,
        eps: float = 0,
        workers: int = 1,
        return_sorted: Optional[bool] = None,
        return_length: bool = False,
    ) -> Any:
        """list[int] for one point, else an object array of lists of shape x.shape[:-1] (int64 counts with return_length)."""
    @overload
    def query_pairs(
        self, r: float, p: float = 2.0, eps: float = 0, output_type: Literal["set"] = "set", workers: int = -1
    ) -> set[tuple[int, int]]: ...
    @overload
    def query_pairs(
        self, r: float, p: float = 2.0, eps: float = 0, *, output_type: Literal["ndarray"], workers: int = -1
    ) -> npt.NDArray[np.intp]: ...
    def count_neighbors(
        self,
        other: KDTree,
        r: npt.ArrayLike,
        p: float = 2.0,
        weights: None = None,
        cumulative: bool = True,
        workers: int = -1,
    ) -> Any:
        """Pairs (self point, other point) within r: int for a scalar r, else int64 of r's shape."""
    def query_stats(
        self, x: npt.ArrayLike, k: int = 10, r: Optional[float] = None, workers: int = 1
    ) -> dict[str, float]: ...

class PointCloud:
    points: npt.NDArray[np.float64]
    """(n, 3) float64, metres."""
    attributes: dict[str, npt.NDArray[Any]]
    def __init__(self, points: npt.ArrayLike, attributes: Optional[Mapping[str, npt.ArrayLike]] = None) -> None: ...
    @property
    def crs(self) -> Optional[str]:
        """WKT (or "EPSG:<code>") of a LAS/LAZ file, else None."""
    def __len__(self) -> int: ...

def read(path: _Path) -> PointCloud: ...
def write(path: _Path, cloud: Union[PointCloud, npt.ArrayLike]) -> None: ...
def voxel_downsample(
    points: npt.ArrayLike, voxel_size: float, mode: Literal["centroid", "first"] = "centroid"
) -> npt.NDArray[np.float64]:
    """(m, 3) float64."""
def estimate_normals(
    points: npt.ArrayLike,
    radius: Optional[float] = None,
    max_nn: Optional[int] = None,
    knn: Optional[int] = None,
    sensor_origin: npt.ArrayLike = (0.0, 0.0, 0.0),
    min_neighbors: int = 3,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(normals (n, 3), curvature (n,)), NaN where a point has no normal."""
@dataclass(frozen=True)
class RegistrationResult:
    transformation: npt.NDArray[np.float64]
    fitness: float
    inlier_rmse: float
    converged: bool
    iterations: int
    num_inliers: int
    degenerate: bool
    degeneracy_ratio: float
    information: npt.NDArray[np.float64]

def register(
    source: npt.ArrayLike,
    target: npt.ArrayLike,
    max_correspondence_distance: float = 1.0,
    init: Optional[npt.ArrayLike] = None,
    method: Literal["point_to_plane", "point_to_point"] = "point_to_plane",
    *,
    kernel: Literal["huber", "cauchy", "geman_mcclure", "tukey", "none"] = "huber",
    kernel_scale: float = 0.1,
    max_iterations: int = 30,
    translation_tolerance: float = 1e-4,
    rotation_tolerance: float = 1e-4,
    degeneracy_threshold: float = 1e-3,
    coarse_stride: int = 4,
    target_normals: Optional[npt.ArrayLike] = None,
    normal_radius: float = 1.0,
    normal_max_nn: int = 30,
) -> RegistrationResult: ...
def evaluate(poses: npt.ArrayLike, gt: npt.ArrayLike) -> dict[str, Any]: ...

class Odometry:
    def __init__(self, config: Optional[Mapping[str, Any]] = None) -> None: ...
    def register_frame(
        self, points: npt.ArrayLike, timestamps: Optional[npt.ArrayLike] = None
    ) -> npt.NDArray[np.float64]:
        """world_from_sensor, (4, 4) float64."""
    @property
    def poses(self) -> npt.NDArray[np.float64]:
        """(n, 4, 4) float64."""
    @property
    def last_pose(self) -> npt.NDArray[np.float64]: ...
    @property
    def statuses(self) -> list[str]: ...
    @property
    def voxel_size(self) -> Optional[float]: ...
    def local_map(self) -> npt.NDArray[np.float64]:
        """(m, 3) float64, world frame."""
    def run_sequence(self, path: _Path) -> npt.NDArray[np.float64]: ...

def odometry(
    path_or_frames: Union[_Path, Iterable[npt.ArrayLike]], config: Optional[Mapping[str, Any]] = None
) -> npt.NDArray[np.float64]:
    """(n, 4, 4) float64 world_from_sensor poses."""
