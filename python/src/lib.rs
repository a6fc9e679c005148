//! `pointpipe._pointpipe`: the Rust extension behind the `pointpipe` Python
//! package. It wraps the `pointpipe` library; no algorithm lives here.
//!
//! The Python layer (`pointpipe/__init__.py`) checks and converts arguments
//! (dtypes, shapes, scipy's return conventions) and calls these functions
//! with C-contiguous `(n, 3)` float64 arrays. Every call into the library
//! is in one file per area, so an API change touches one place:
//! `tree.rs` (k-d tree), `io.rs` (read / write), `stages.rs` (voxel,
//! normals, ICP, evaluation), `odometry.rs` (the odometry pipeline).
//!
//! Conventions: the GIL is released (`Python::detach`) around every
//! library call that takes time; long loops run in chunks with
//! `Python::check_signals` between them, so Ctrl-C interrupts them; library
//! errors become `ValueError` / `OSError` / `RuntimeError` with the
//! library's message.

mod buffer;
mod io;
mod odometry;
mod pool;
mod stages;
mod tree;

use nalgebra::{Isometry3, Matrix4, Point3, Rotation3, Translation3, UnitQuaternion};
use numpy::ndarray::{Array2, ArrayView2};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// A library error as the Python exception its kind calls for.
pub(crate) fn to_py_err(e: pointpipe::Error) -> PyErr {
    use pointpipe::Error as E;
    let message = e.to_string();
    match &e {
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        E::Io { .. } | E::OutputIsInput { .. } => PyOSError::new_err(message),
        E::Registration { .. } | E::Viewer { .. } => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// Views a C-contiguous `(n, 3)` float64 array as points, without a copy.
pub(crate) fn as_points<'a>(array: &'a PyReadonlyArray2<'_, f64>) -> PyResult<&'a [Point3<f64>]> {
    let shape = array.as_array().shape().to_vec();
    if shape.len() != 2 || shape[1] != 3 {
        return Err(PyValueError::new_err(format!(
            "expected an (n, 3) array of points, got shape {shape:?}"
        )));
    }
    let flat = array
        .as_slice()
        .map_err(|_| PyValueError::new_err("expected a C-contiguous (n, 3) float64 array"))?;
    const _: () = assert!(std::mem::size_of::<Point3<f64>>() == 3 * std::mem::size_of::<f64>());
    const _: () = assert!(std::mem::align_of::<Point3<f64>>() == std::mem::align_of::<f64>());
    // SAFETY: `Point3<f64>` is `#[repr(C)]` around `[f64; 3]` (nalgebra's
    // `OPoint` and `ArrayStorage` are `repr(C)`; size and alignment are
    // checked above), `flat` holds `3 n` contiguous, aligned f64 values, and
    // the result borrows `array`, which keeps the buffer alive and borrowed.
    Ok(unsafe { std::slice::from_raw_parts(flat.as_ptr().cast::<Point3<f64>>(), flat.len() / 3) })
}

/// Copies points into a new `(n, 3)` float64 array.
pub(crate) fn points_to_py<'py>(
    py: Python<'py>,
    points: &[Point3<f64>],
) -> Bound<'py, PyArray2<f64>> {
    let flat: Vec<f64> = points.iter().flat_map(|p| [p.x, p.y, p.z]).collect();
    rows_to_py(py, flat, 3)
}

/// A flat row-major buffer as a `(len / cols, cols)` array, without a copy.
pub(crate) fn rows_to_py<T: numpy::Element>(
    py: Python<'_>,
    flat: Vec<T>,
    cols: usize,
) -> Bound<'_, PyArray2<T>> {
    let rows = flat.len().checked_div(cols).unwrap_or(0);
    Array2::from_shape_vec((rows, cols), flat)
        .expect("rows * cols elements")
        .into_pyarray(py)
}

/// A 4×4 homogeneous matrix (float64) from an isometry.
pub(crate) fn pose_to_py<'py>(py: Python<'py>, pose: &Isometry3<f64>) -> Bound<'py, PyArray2<f64>> {
    let m = pose.to_homogeneous();
    let flat: Vec<f64> = (0..4)
        .flat_map(|r| (0..4).map(move |c| m[(r, c)]))
        .collect();
    rows_to_py(py, flat, 4)
}

/// An isometry from a 4×4 homogeneous matrix: the last row must be
/// (0, 0, 0, 1) and the 3×3 block a rotation within 1e-3 (`RᵀR ≈ I`,
/// `det R > 0`; poses printed with few digits pass); the nearest rotation
/// is used.
pub(crate) fn pose_from_view(a: ArrayView2<'_, f64>, what: &str) -> PyResult<Isometry3<f64>> {
    if a.shape() != [4, 4] {
        return Err(PyValueError::new_err(format!(
            "{what}: expected a 4x4 matrix, got shape {:?}",
            a.shape()
        )));
    }
    let m = Matrix4::from_fn(|r, c| a[[r, c]]);
    if !m.iter().all(|v| v.is_finite()) {
        return Err(PyValueError::new_err(format!("{what}: non-finite entry")));
    }
    if m[(3, 0)] != 0.0 || m[(3, 1)] != 0.0 || m[(3, 2)] != 0.0 || m[(3, 3)] != 1.0 {
        return Err(PyValueError::new_err(format!(
            "{what}: the last row must be [0, 0, 0, 1]"
        )));
    }
    let r = m.fixed_view::<3, 3>(0, 0).into_owned();
    if (r.transpose() * r - nalgebra::Matrix3::identity())
        .abs()
        .max()
        > 1e-3
        || r.determinant() <= 0.0
    {
        return Err(PyValueError::new_err(format!(
            "{what}: the upper-left 3x3 block is not a rotation"
        )));
    }
    let rotation = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_eps(
        &r,
        1e-15,
        100,
        Rotation3::identity(),
    ));
    Ok(Isometry3::from_parts(
        Translation3::new(m[(0, 3)], m[(1, 3)], m[(2, 3)]),
        rotation,
    ))
}

/// The Rust extension of the `pointpipe` package (use `import pointpipe`).
#[pymodule]
fn _pointpipe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    tree::register(m)?;
    io::register(m)?;
    stages::register_functions(m)?;
    odometry::register(m)?;
    Ok(())
}
