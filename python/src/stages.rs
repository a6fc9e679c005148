//! Stages on numpy arrays (library calls: `voxel::voxel_downsample`,
//! `KdTree::build` + `normals::estimate_normals`, `icp::register`,
//! `eval::evaluate`).

use nalgebra::{Isometry3, Point3};
use numpy::{PyArray1, PyArray2, PyReadonlyArray2, PyReadonlyArray3};
use pointpipe::PointCloud;
use pointpipe::icp::{self, IcpConfig, IcpMethod, IcpStage, RegistrationResult, RobustKernel};
use pointpipe::kdtree::KdTree;
use pointpipe::normals::{self, NeighborSearch, NormalConfig};
use pointpipe::voxel::{self, VoxelConfig, VoxelMode};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{as_points, points_to_py, pose_from_view, pose_to_py, rows_to_py, to_py_err};

/// Voxel grid downsampling (library call).
fn downsample(
    points: &[Point3<f64>],
    voxel_size: f64,
    mode: VoxelMode,
) -> pointpipe::Result<Vec<Point3<f64>>> {
    let cloud = PointCloud::from_points(points.to_vec());
    Ok(voxel::voxel_downsample(&cloud, &VoxelConfig { voxel_size, mode })?.points)
}

/// Tree and PCA normals of `points` (library calls); the cloud gets
/// `normals` (zero = none) and `curvature` (NaN = none).
fn with_normals(
    points: &[Point3<f64>],
    config: &NormalConfig,
) -> pointpipe::Result<(PointCloud, KdTree)> {
    config.validate()?;
    let mut cloud = PointCloud::from_points(points.to_vec());
    cloud.check_finite("points")?;
    let tree = KdTree::build(&cloud.points)?;
    normals::estimate_normals(&mut cloud, &tree, config)?;
    Ok((cloud, tree))
}

/// ICP (library call).
fn icp(
    source: &[Point3<f64>],
    target: &PointCloud,
    tree: &KdTree,
    init: &Isometry3<f64>,
    config: &IcpConfig,
) -> pointpipe::Result<RegistrationResult> {
    icp::register(source, target, tree, init, config)
}

fn normal_config(
    radius: Option<f64>,
    max_nn: Option<usize>,
    knn: Option<usize>,
    min_neighbors: usize,
    viewpoint: [f64; 3],
) -> PyResult<NormalConfig> {
    let search = match (radius, knn) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "give radius (with max_nn) or knn, not both",
            ));
        }
        (None, Some(k)) => {
            if max_nn.is_some() {
                return Err(PyValueError::new_err("max_nn goes with radius, not knn"));
            }
            NeighborSearch::Knn { k }
        }
        (Some(radius), None) => NeighborSearch::Radius { radius, max_nn },
        (None, None) => match NormalConfig::default().search {
            NeighborSearch::Radius {
                radius,
                max_nn: default_nn,
            } => NeighborSearch::Radius {
                radius,
                max_nn: max_nn.or(default_nn),
            },
            other => other,
        },
    };
    Ok(NormalConfig {
        search,
        min_neighbors,
        viewpoint: Some(Point3::from(viewpoint)),
    })
}

/// `(normals (n, 3), curvature (n,))`, NaN where a point has no normal.
#[pyfunction]
#[pyo3(signature = (points, radius, max_nn, knn, min_neighbors, sensor_origin))]
#[allow(clippy::type_complexity)]
fn estimate_normals<'py>(
    py: Python<'py>,
    points: PyReadonlyArray2<'py, f64>,
    radius: Option<f64>,
    max_nn: Option<usize>,
    knn: Option<usize>,
    min_neighbors: usize,
    sensor_origin: [f64; 3],
) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>)> {
    let points = as_points(&points)?;
    let config = normal_config(radius, max_nn, knn, min_neighbors, sensor_origin)?;
    let (cloud, _) = py
        .detach(|| with_normals(points, &config))
        .map_err(to_py_err)?;
    let normals = cloud.normals.unwrap_or_default();
    let flat: Vec<f64> = normals
        .iter()
        .flat_map(|n| {
            if *n == nalgebra::Vector3::zeros() {
                [f64::NAN; 3]
            } else {
                [n.x, n.y, n.z]
            }
        })
        .collect();
    let curvature = cloud
        .curvature
        .unwrap_or_else(|| vec![f64::NAN; points.len()]);
    Ok((rows_to_py(py, flat, 3), PyArray1::from_vec(py, curvature)))
}

/// Voxel grid downsampling; `mode` "centroid" or "first".
#[pyfunction]
fn voxel_downsample<'py>(
    py: Python<'py>,
    points: PyReadonlyArray2<'py, f64>,
    voxel_size: f64,
    mode: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let mode = match mode {
        "centroid" => VoxelMode::Centroid,
        "first" => VoxelMode::First,
        other => {
            return Err(PyValueError::new_err(format!(
                "mode must be 'centroid' or 'first', got {other:?}"
            )));
        }
    };
    let points = as_points(&points)?;
    let out = py
        .detach(|| downsample(points, voxel_size, mode))
        .map_err(to_py_err)?;
    Ok(points_to_py(py, &out))
}

/// ICP of `source` onto `target`; returns a dict of the result's fields.
#[pyfunction]
#[pyo3(signature = (source, target, max_correspondence_distance, init, method, kernel, kernel_scale,
    max_iterations, translation_tolerance, rotation_tolerance, degeneracy_threshold, coarse_stride,
    target_normals, normal_radius, normal_max_nn))]
#[allow(clippy::too_many_arguments)]
fn register<'py>(
    py: Python<'py>,
    source: PyReadonlyArray2<'py, f64>,
    target: PyReadonlyArray2<'py, f64>,
    max_correspondence_distance: f64,
    init: PyReadonlyArray2<'py, f64>,
    method: &str,
    kernel: &str,
    kernel_scale: f64,
    max_iterations: usize,
    translation_tolerance: f64,
    rotation_tolerance: f64,
    degeneracy_threshold: f64,
    coarse_stride: usize,
    target_normals: Option<PyReadonlyArray2<'py, f64>>,
    normal_radius: f64,
    normal_max_nn: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let method = match method {
        "point_to_plane" => IcpMethod::PointToPlane,
        "point_to_point" => IcpMethod::PointToPoint,
        other => {
            return Err(PyValueError::new_err(format!(
                "method must be 'point_to_plane' or 'point_to_point', got {other:?}"
            )));
        }
    };
    let kernel = match kernel {
        "none" => RobustKernel::None,
        "huber" => RobustKernel::Huber,
        "cauchy" => RobustKernel::Cauchy,
        "geman_mcclure" => RobustKernel::GemanMcClure,
        "tukey" => RobustKernel::Tukey,
        other => {
            return Err(PyValueError::new_err(format!(
                "kernel must be one of 'none', 'huber', 'cauchy', 'geman_mcclure', 'tukey', got {other:?}"
            )));
        }
    };
    let config = IcpConfig {
        method,
        max_correspondence_distance,
        kernel,
        kernel_scale,
        max_iterations,
        translation_tolerance,
        rotation_tolerance,
        degeneracy_threshold,
        coarse_stages: IcpStage::strided_schedule(coarse_stride),
    };
    config.validate().map_err(to_py_err)?;
    let init = pose_from_view(init.as_array(), "init")?;
    let source = as_points(&source)?;
    let target = as_points(&target)?;
    let given_normals: Option<Vec<nalgebra::Vector3<f64>>> = match &target_normals {
        Some(n) => {
            let a = n.as_array();
            if a.shape() != [target.len(), 3] {
                return Err(PyValueError::new_err(format!(
                    "target_normals: expected shape ({}, 3), got {:?}",
                    target.len(),
                    a.shape()
                )));
            }
            // NaN rows (no normal, as estimate_normals returns them) become
            // the library's zero vector.
            Some(
                a.rows()
                    .into_iter()
                    .map(|r| {
                        let v = nalgebra::Vector3::new(r[0], r[1], r[2]);
                        if v.iter().all(|c| c.is_finite()) {
                            v
                        } else {
                            nalgebra::Vector3::zeros()
                        }
                    })
                    .collect(),
            )
        }
        None => None,
    };
    let normal_cfg = NormalConfig {
        search: NeighborSearch::Radius {
            radius: normal_radius,
            max_nn: Some(normal_max_nn),
        },
        ..NormalConfig::default()
    };
    let result = py
        .detach(|| -> pointpipe::Result<RegistrationResult> {
            let (target_cloud, tree) = match given_normals {
                Some(normals) => {
                    let mut cloud = PointCloud::from_points(target.to_vec());
                    cloud.check_finite("target")?;
                    cloud.normals = Some(normals);
                    let tree = KdTree::build(&cloud.points)?;
                    (cloud, tree)
                }
                None if method == IcpMethod::PointToPlane => with_normals(target, &normal_cfg)?,
                None => {
                    let cloud = PointCloud::from_points(target.to_vec());
                    let tree = KdTree::build(&cloud.points)?;
                    (cloud, tree)
                }
            };
            icp(source, &target_cloud, &tree, &init, &config)
        })
        .map_err(to_py_err)?;
    let d = PyDict::new(py);
    d.set_item("transformation", pose_to_py(py, &result.target_from_source))?;
    d.set_item("fitness", result.fitness)?;
    d.set_item("inlier_rmse", result.inlier_rmse)?;
    d.set_item("converged", result.converged)?;
    d.set_item("iterations", result.iterations)?;
    d.set_item("num_inliers", result.num_inliers)?;
    d.set_item("degenerate", result.degenerate)?;
    d.set_item("degeneracy_ratio", result.degeneracy_ratio)?;
    let info: Vec<f64> = (0..6)
        .flat_map(|r| (0..6).map(move |c| (r, c)))
        .map(|(r, c)| result.information[(r, c)])
        .collect();
    d.set_item("information", rows_to_py(py, info, 6))?;
    Ok(d)
}

/// Poses from an (n, 4, 4) array.
fn poses_from_py(a: &PyReadonlyArray3<'_, f64>, what: &str) -> PyResult<Vec<Isometry3<f64>>> {
    let view = a.as_array();
    if view.shape()[1..] != [4, 4] {
        return Err(PyValueError::new_err(format!(
            "{what}: expected an (n, 4, 4) array of poses, got shape {:?}",
            view.shape()
        )));
    }
    view.outer_iter()
        .enumerate()
        .map(|(i, m)| pose_from_view(m, &format!("{what}[{i}]")))
        .collect()
}

/// ATE, RPE (delta 1) and the KITTI error of `poses` against `gt`.
#[pyfunction]
fn evaluate<'py>(
    py: Python<'py>,
    poses: PyReadonlyArray3<'py, f64>,
    gt: PyReadonlyArray3<'py, f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let est = poses_from_py(&poses, "poses")?;
    let reference = poses_from_py(&gt, "gt")?;
    let e = pointpipe::eval::evaluate(&est, &reference).map_err(to_py_err)?;
    let d = PyDict::new(py);
    let ate = PyDict::new(py);
    ate.set_item("rmse_m", e.ate.rmse_m)?;
    ate.set_item("mean_m", e.ate.mean_m)?;
    ate.set_item("median_m", e.ate.median_m)?;
    ate.set_item("max_m", e.ate.max_m)?;
    ate.set_item(
        "reference_from_estimated",
        pose_to_py(py, &e.ate.reference_from_estimated),
    )?;
    let rpe = PyDict::new(py);
    rpe.set_item("trans_rmse_m", e.rpe.trans_rmse_m)?;
    rpe.set_item("rot_rmse_deg", e.rpe.rot_rmse_deg)?;
    rpe.set_item("trans_mean_m", e.rpe.trans_mean_m)?;
    rpe.set_item("rot_mean_deg", e.rpe.rot_mean_deg)?;
    rpe.set_item("pairs", e.rpe.pairs)?;
    d.set_item("ate", ate)?;
    d.set_item("rpe", rpe)?;
    match e.kitti {
        Some(k) => {
            let kd = PyDict::new(py);
            kd.set_item("t_err_pct", k.t_err_pct)?;
            kd.set_item("r_err_deg_per_100m", k.r_err_deg_per_100m)?;
            kd.set_item("segments", k.segments)?;
            d.set_item("kitti", kd)?;
        }
        None => d.set_item("kitti", py.None())?,
    }
    Ok(d)
}

pub(crate) fn register_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(voxel_downsample, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_normals, m)?)?;
    m.add_function(wrap_pyfunction!(register, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    Ok(())
}
