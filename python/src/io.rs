//! `pointpipe.read` / `pointpipe.write` (library calls: `io::read`,
//! `io::write`; the LAS header's WKT through the `las` crate).

use nalgebra::Vector3;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pointpipe::PointCloud;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{as_points, points_to_py, rows_to_py, to_py_err};

/// Reads a cloud (library call).
fn read_cloud(path: &str) -> pointpipe::Result<PointCloud> {
    pointpipe::io::read(path)
}

/// Writes a cloud (library call; temp file + rename).
fn write_cloud(path: &str, cloud: &PointCloud) -> pointpipe::Result<()> {
    pointpipe::io::write(path, cloud)
}

/// The CRS of a LAS header: its WKT, or `EPSG:<code>` from GeoTIFF keys.
fn crs(cloud: &PointCloud) -> Option<String> {
    let header = cloud.extras.las_header.as_ref()?;
    if let Some(wkt) = header.get_wkt_crs_bytes() {
        let text = String::from_utf8_lossy(wkt);
        return Some(text.trim_end_matches('\0').to_string());
    }
    let geotiff = header.get_geotiff_crs().ok()??;
    geotiff
        .get_projected_crs_geo_key_value()
        .or_else(|| geotiff.get_geodetic_crs_geo_key_value())
        .map(|code| format!("EPSG:{code}"))
}

/// A cloud as read, kept so that `write` can reuse its LAS header and
/// per-point LAS attributes (opaque to Python).
#[pyclass(module = "pointpipe._pointpipe", name = "_Cloud", frozen)]
pub struct PyCloud {
    cloud: PointCloud,
}

/// The attributes of `cloud` as numpy arrays, named as in laspy / Open3D.
fn attributes<'py>(py: Python<'py>, cloud: &PointCloud) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    if let Some(v) = &cloud.intensity {
        d.set_item("intensity", PyArray1::from_slice(py, v))?;
    }
    if let Some(v) = &cloud.normals {
        let flat: Vec<f64> = v.iter().flat_map(|n| [n.x, n.y, n.z]).collect();
        d.set_item("normals", rows_to_py(py, flat, 3))?;
    }
    if let Some(v) = &cloud.curvature {
        d.set_item("curvature", PyArray1::from_slice(py, v))?;
    }
    let las = cloud.extras.las_attributes.as_ref();
    if let Some(v) = &cloud.time {
        let name = if las.is_some() { "gps_time" } else { "time" };
        d.set_item(name, PyArray1::from_slice(py, v))?;
    }
    if let Some(a) = las {
        d.set_item(
            "classification",
            PyArray1::from_slice(py, &a.classification),
        )?;
        d.set_item("return_number", PyArray1::from_slice(py, &a.return_number))?;
        d.set_item(
            "number_of_returns",
            PyArray1::from_slice(py, &a.number_of_returns),
        )?;
        d.set_item("scan_angle", PyArray1::from_slice(py, &a.scan_angle))?;
        d.set_item("user_data", PyArray1::from_slice(py, &a.user_data))?;
        d.set_item(
            "point_source_id",
            PyArray1::from_slice(py, &a.point_source_id),
        )?;
        if let Some(c) = &a.color {
            let flat: Vec<u16> = c.iter().flatten().copied().collect();
            d.set_item("rgb", rows_to_py(py, flat, 3))?;
        }
        if let Some(v) = &a.nir {
            d.set_item("nir", PyArray1::from_slice(py, v))?;
        }
    }
    Ok(d)
}

/// Reads `path`: `(points (n, 3) float64, attributes dict, crs or None, handle)`.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn read<'py>(
    py: Python<'py>,
    path: &str,
) -> PyResult<(
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyDict>,
    Option<String>,
    PyCloud,
)> {
    let cloud = py.detach(|| read_cloud(path)).map_err(to_py_err)?;
    let points = points_to_py(py, &cloud.points);
    let attrs = attributes(py, &cloud)?;
    Ok((points, attrs, crs(&cloud), PyCloud { cloud }))
}

/// A 1-D attribute of `n` values of type `T`, if present.
fn column<T: numpy::Element + Copy>(
    d: &Bound<'_, PyDict>,
    name: &str,
    n: usize,
) -> PyResult<Option<Vec<T>>> {
    let Some(item) = d.get_item(name)? else {
        return Ok(None);
    };
    let a: PyReadonlyArray1<'_, T> = item
        .extract()
        .map_err(|e| PyValueError::new_err(format!("attribute {name}: {e}")))?;
    let v = a.as_array().to_vec();
    if v.len() != n {
        return Err(PyValueError::new_err(format!(
            "attribute {name}: {} values for {n} points",
            v.len()
        )));
    }
    Ok(Some(v))
}

/// An (n, 3) attribute, if present.
fn triples<T: numpy::Element + Copy>(
    d: &Bound<'_, PyDict>,
    name: &str,
    n: usize,
) -> PyResult<Option<Vec<[T; 3]>>> {
    let Some(item) = d.get_item(name)? else {
        return Ok(None);
    };
    let a: PyReadonlyArray2<'_, T> = item
        .extract()
        .map_err(|e| PyValueError::new_err(format!("attribute {name}: {e}")))?;
    let a = a.as_array();
    if a.shape() != [n, 3] {
        return Err(PyValueError::new_err(format!(
            "attribute {name}: expected shape ({n}, 3), got {:?}",
            a.shape()
        )));
    }
    Ok(Some(
        a.rows().into_iter().map(|r| [r[0], r[1], r[2]]).collect(),
    ))
}

/// Writes `points` with `attributes` to `path` (format from the
/// extension). `source`: the cloud as read, whose LAS header and LAS
/// attributes are kept when it has as many points.
#[pyfunction]
#[pyo3(signature = (path, points, attributes, source=None))]
fn write(
    py: Python<'_>,
    path: &str,
    points: PyReadonlyArray2<'_, f64>,
    attributes: Bound<'_, PyDict>,
    source: Option<PyRef<'_, PyCloud>>,
) -> PyResult<()> {
    let points = as_points(&points)?;
    let n = points.len();
    let mut cloud = PointCloud::from_points(points.to_vec());
    if let Some(src) = source.as_ref().filter(|s| s.cloud.len() == n) {
        cloud.extras.las_header = src.cloud.extras.las_header.clone();
        cloud.extras.las_attributes = src.cloud.extras.las_attributes.clone();
    }
    cloud.intensity = column::<f32>(&attributes, "intensity", n)?;
    cloud.normals = triples::<f64>(&attributes, "normals", n)?.map(|v| {
        v.into_iter()
            .map(|[x, y, z]| Vector3::new(x, y, z))
            .collect()
    });
    cloud.curvature = column::<f64>(&attributes, "curvature", n)?;
    cloud.time = match column::<f64>(&attributes, "gps_time", n)? {
        Some(t) => Some(t),
        None => column::<f64>(&attributes, "time", n)?,
    };
    if let Some(a) = cloud.extras.las_attributes.as_mut() {
        macro_rules! replace {
            ($field:ident, $t:ty) => {
                if let Some(v) = column::<$t>(&attributes, stringify!($field), n)? {
                    a.$field = v;
                }
            };
        }
        replace!(classification, u8);
        replace!(return_number, u8);
        replace!(number_of_returns, u8);
        replace!(scan_angle, f32);
        replace!(user_data, u8);
        replace!(point_source_id, u16);
        if a.color.is_some()
            && let Some(c) = triples::<u16>(&attributes, "rgb", n)?
        {
            a.color = Some(c);
        }
        if a.nir.is_some()
            && let Some(v) = column::<u16>(&attributes, "nir", n)?
        {
            a.nir = Some(v);
        }
    }
    py.detach(|| write_cloud(path, &cloud)).map_err(to_py_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCloud>()?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(write, m)?)?;
    Ok(())
}
