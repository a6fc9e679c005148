//! `pointpipe.Odometry` and `pointpipe.odometry` (library calls:
//! `odometry::Odometry::{new, process, poses, local_map_points,
//! voxel_size}`, `odometry::run_sequence`, `odometry::sequence::list_frames`,
//! `io::read`): the frame loop of `pointpipe odometry`, so the poses are
//! the CLI's bit for bit.

use std::path::PathBuf;

use numpy::{PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use pointpipe::PointCloud;
use std::ops::ControlFlow;

use pointpipe::odometry::{FrameResult, Odometry, OdometryConfig, SequenceConfig, run_sequence};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::{as_points, points_to_py, pose_to_py, to_py_err};

/// The config from a JSON object with any subset of `OdometryConfig`'s
/// fields (unknown keys are an error), validated.
fn config_from_json(json: Option<&str>) -> pointpipe::Result<OdometryConfig> {
    let config = match json {
        Some(text) => serde_json::from_str::<OdometryConfig>(text)
            .map_err(|e| pointpipe::Error::invalid("config", "dict", e.to_string()))?,
        None => OdometryConfig::default(),
    };
    config.validate()?;
    Ok(config)
}

/// One frame through the odometry (library call).
fn process(odometry: &mut Odometry, frame: &PointCloud) -> FrameResult {
    odometry.process(frame)
}

/// The frame files of a sequence folder or list file (library call).
fn list_frames(path: &str) -> pointpipe::Result<Vec<PathBuf>> {
    pointpipe::odometry::sequence::list_frames(std::path::Path::new(path))
}

fn status_name(result: &FrameResult) -> String {
    use pointpipe::odometry::FrameStatus as S;
    match &result.status {
        S::First => "first".into(),
        S::Tracked => "tracked".into(),
        S::Empty => "empty".into(),
        S::Degenerate => "degenerate".into(),
        S::Failed { reason } => format!("failed: {reason}"),
        S::Unreadable { reason } => format!("unreadable: {reason}"),
    }
}

/// The odometry state behind `pointpipe.Odometry` (use that class).
#[pyclass(module = "pointpipe._pointpipe", name = "_Odometry")]
pub struct PyOdometry {
    odometry: Odometry,
    statuses: Vec<String>,
}

impl PyOdometry {
    fn run(&mut self, py: Python<'_>, frame: &PointCloud) -> FrameResult {
        let odometry = &mut self.odometry;
        let result = py.detach(|| process(odometry, frame));
        self.statuses.push(status_name(&result));
        result
    }
}

#[pymethods]
impl PyOdometry {
    /// `config_json`: a JSON object with any subset of the config fields.
    #[new]
    #[pyo3(signature = (config_json=None))]
    fn new(config_json: Option<&str>) -> PyResult<Self> {
        let config = config_from_json(config_json).map_err(to_py_err)?;
        Ok(PyOdometry {
            odometry: Odometry::new(config).map_err(to_py_err)?,
            statuses: Vec::new(),
        })
    }

    /// Registers one frame ((n, 3) float64, sensor frame, metres; optional
    /// per-point times in seconds); returns its world_from_sensor pose, 4×4.
    #[pyo3(signature = (points, timestamps=None))]
    fn register_frame<'py>(
        &mut self,
        py: Python<'py>,
        points: PyReadonlyArray2<'py, f64>,
        timestamps: Option<PyReadonlyArray1<'py, f64>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let pts = as_points(&points)?;
        let mut frame = PointCloud::from_points(pts.to_vec());
        if let Some(t) = timestamps {
            let t = t.as_array().to_vec();
            if t.len() != pts.len() {
                return Err(PyValueError::new_err(format!(
                    "timestamps: {} values for {} points",
                    t.len(),
                    pts.len()
                )));
            }
            frame.time = Some(t);
        }
        let result = self.run(py, &frame);
        Ok(pose_to_py(py, &result.world_from_sensor))
    }

    /// Runs every frame of a sequence folder or list file (read as the CLI
    /// reads them); Ctrl-C between frames. Returns the number of frames.
    fn run_sequence(&mut self, py: Python<'_>, path: &str) -> PyResult<usize> {
        let frames = py.detach(|| list_frames(path)).map_err(to_py_err)?;
        let odometry = &mut self.odometry;
        let mut interrupted = None;
        let output = py.detach(|| {
            let reads = frames.iter().map(pointpipe::io::read);
            run_sequence(
                reads,
                odometry,
                &SequenceConfig::default(),
                |_| match Python::attach(|py| py.check_signals()) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        interrupted = Some(e);
                        ControlFlow::Break(())
                    }
                },
            )
        });
        let output = output.map_err(|e| match e {
            pointpipe::Error::Frame { index, source } => {
                let err = to_py_err(*source);
                PyErr::from_type(
                    err.get_type(py),
                    format!(
                        "frame {index} of {} is unreadable: {}",
                        frames.len(),
                        err.value(py)
                    ),
                )
            }
            e => to_py_err(e),
        })?;
        self.statuses.extend(output.results.iter().map(status_name));
        if let Some(e) = interrupted {
            return Err(e);
        }
        Ok(output.results.len())
    }

    /// world_from_sensor of every frame so far, (n, 4, 4) float64.
    #[getter]
    fn poses<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f64>> {
        let poses = self.odometry.poses();
        let mut flat = Vec::with_capacity(poses.len() * 16);
        for p in poses {
            let m = p.to_homogeneous();
            flat.extend((0..4).flat_map(|r| (0..4).map(move |c| m[(r, c)])));
        }
        numpy::ndarray::Array3::from_shape_vec((poses.len(), 4, 4), flat)
            .expect("16 values per pose")
            .into_pyarray(py)
    }

    /// Status of every frame: "first", "tracked", "empty", "degenerate",
    /// "failed: ...", "unreadable: ...".
    #[getter]
    fn statuses(&self) -> Vec<String> {
        self.statuses.clone()
    }

    /// The map voxel size in metres once known.
    #[getter]
    fn voxel_size(&self) -> Option<f64> {
        self.odometry.voxel_size()
    }

    /// The current local map (world frame), (m, 3) float64.
    fn local_map<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        points_to_py(py, self.odometry.local_map_points())
    }

    /// The last pose (4×4), or None before the first frame.
    fn last_pose<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f64>>> {
        self.odometry.poses().last().map(|p| pose_to_py(py, p))
    }
}

use numpy::IntoPyArray as _;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOdometry>()
}
