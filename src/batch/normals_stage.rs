//! The normal-estimation stage of a batch tile: normals and curvature of the
//! tile's points from neighbours in the tile plus its halo.
//!
//! NOTE: this stage holds a small PCA of its own until `crate::normals`
//! lands; it is meant to be replaced by a call to `estimate_normals` on the
//! tile + halo cloud (keeping the first `tile.len()` outputs), with the same
//! conventions: hybrid search (radius, `max_nn`), at least 3 neighbours, the
//! normal is the eigenvector of the smallest eigenvalue of the neighbourhood
//! covariance, oriented towards +z (airborne data seen from above), curvature
//! is the surface variation `λ0 / (λ0 + λ1 + λ2)` (Pauly et al. 2002).

use nalgebra::{Matrix3, Point3, SymmetricEigen, Vector3};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kdtree::{KdTree, Neighbor};

/// Neighbourhood of the normal estimation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalParams {
    /// Search radius in metres (CRS units), finite and > 0. Default 0.5.
    pub radius: f64,
    /// At most this many nearest neighbours inside the radius, ≥ 3. Default 30.
    pub max_nn: usize,
}

impl Default for NormalParams {
    fn default() -> Self {
        NormalParams {
            radius: 0.5,
            max_nn: 30,
        }
    }
}

impl NormalParams {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if !(self.radius.is_finite() && self.radius > 0.0) {
            return Err(Error::invalid(
                "normal_radius",
                self.radius,
                "must be finite and > 0 (metres)",
            ));
        }
        if self.max_nn < MIN_NEIGHBORS {
            return Err(Error::invalid("max_nn", self.max_nn, "must be at least 3"));
        }
        Ok(())
    }
}

/// Fewest neighbours (the point included) that define a plane.
const MIN_NEIGHBORS: usize = 3;

/// Normals (zero = none) and curvature (NaN = none) of `tile` points, with
/// neighbours searched in `tile ∪ halo`.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite point.
pub fn estimate_tile_normals(
    tile: &[Point3<f64>],
    halo: &[Point3<f64>],
    params: &NormalParams,
) -> Result<(Vec<Vector3<f64>>, Vec<f64>)> {
    params.validate()?;
    let all: Vec<Point3<f64>> = tile.iter().chain(halo).copied().collect();
    let tree = KdTree::build(&all)?;
    let (normals, curvature) = tile
        .par_iter()
        .map_init(Vec::<Neighbor>::new, |neighbors, p| {
            tree.hybrid(p, params.radius, params.max_nn, neighbors);
            fit_plane(&all, neighbors)
        })
        .unzip();
    Ok((normals, curvature))
}

/// PCA plane of a neighbourhood: (normal oriented to +z, surface variation).
fn fit_plane(points: &[Point3<f64>], neighbors: &[Neighbor]) -> (Vector3<f64>, f64) {
    if neighbors.len() < MIN_NEIGHBORS {
        return (Vector3::zeros(), f64::NAN);
    }
    let n = neighbors.len() as f64;
    let mean = neighbors
        .iter()
        .fold(Vector3::zeros(), |acc, nb| acc + points[nb.index].coords)
        / n;
    let covariance = neighbors.iter().fold(Matrix3::zeros(), |acc, nb| {
        let d = points[nb.index].coords - mean;
        acc + d * d.transpose()
    }) / n;
    let eigen = SymmetricEigen::new(covariance);
    let (smallest, _) =
        eigen
            .eigenvalues
            .iter()
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |best, (i, &v)| if v < best.1 { (i, v) } else { best },
            );
    let mut normal: Vector3<f64> = eigen.eigenvectors.column(smallest).into_owned();
    let norm = normal.norm();
    if !(norm > 0.0 && norm.is_finite()) {
        return (Vector3::zeros(), f64::NAN);
    }
    normal /= norm;
    if normal.z < 0.0 {
        normal = -normal;
    }
    let total: f64 = eigen.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let curvature = if total > 0.0 {
        eigen.eigenvalues[smallest].max(0.0) / total
    } else {
        0.0
    };
    (normal, curvature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_normals_point_up() {
        let tile: Vec<_> = (0..100)
            .map(|i| Point3::new(f64::from(i % 10) * 0.1, f64::from(i / 10) * 0.1, 0.3))
            .collect();
        let (normals, curvature) =
            estimate_tile_normals(&tile, &[], &NormalParams::default()).unwrap();
        for (n, c) in normals.iter().zip(&curvature) {
            assert!((n - Vector3::z()).norm() < 1e-9);
            assert!(c.abs() < 1e-9);
        }
    }

    #[test]
    fn isolated_point_has_no_normal() {
        let tile = [Point3::origin(), Point3::new(10.0, 0.0, 0.0)];
        let (normals, curvature) =
            estimate_tile_normals(&tile, &[], &NormalParams::default()).unwrap();
        assert_eq!(normals, vec![Vector3::zeros(); 2]);
        assert!(curvature.iter().all(|c| c.is_nan()));
    }
}
