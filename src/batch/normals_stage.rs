//! The normal-estimation stage of a batch tile: normals and curvature of the
//! tile's points from neighbours in the tile plus its halo, by
//! [`crate::normals::estimate_normals`] (PCA, hybrid search) on the cloud
//! tile + halo, keeping the tile's outputs.
//!
//! Orientation: normals face up (`n · (v − p) ≥ 0` for a viewpoint 10¹² units
//! above the CRS origin, i.e. +z to within 10⁻⁶ rad for any projected
//! coordinate), as an airborne sensor sees the surface. The viewpoint is the
//! same for every tile, so tiles and the uncut file agree.

use nalgebra::{Point3, Vector3};

use crate::PointCloud;
use crate::error::{Error, Result};
use crate::normals::{NeighborSearch, NormalConfig, aerial_viewpoint};
use crate::prepare::IndexedCloud;

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
/// [`Error::InvalidParameter`] for bad parameters, [`Error::NonFinite`] for a
/// non-finite point.
pub(super) fn estimate_tile_normals(
    tile: &[Point3<f64>],
    halo: &[Point3<f64>],
    params: &NormalParams,
) -> Result<(Vec<Vector3<f64>>, Vec<f64>)> {
    params.validate()?;
    let cloud = PointCloud::from_points(tile.iter().chain(halo).copied().collect());
    let mut indexed = IndexedCloud::build(cloud)?;
    let config = NormalConfig {
        search: NeighborSearch::Radius {
            radius: params.radius,
            max_nn: Some(params.max_nn),
        },
        min_neighbors: MIN_NEIGHBORS,
        // The common viewpoint of every tile: far above the CRS origin.
        viewpoint: Some(aerial_viewpoint()),
    };
    indexed.estimate_normals(&config)?;
    let (cloud, _) = indexed.into_parts();
    let mut normals = cloud.normals.unwrap_or_default();
    let mut curvature = cloud.curvature.unwrap_or_default();
    normals.truncate(tile.len());
    curvature.truncate(tile.len());
    Ok((normals, curvature))
}

/// A point's normal (x, y, z) and curvature as stored in a LAS output's
/// extra bytes (`f32`); `[0, 0, 0, NaN]` for none.
pub(super) type PackedNormal = [f32; 4];

/// The value of a point without a normal.
pub(super) const NO_NORMAL: PackedNormal = [0.0, 0.0, 0.0, f32::NAN];

/// Estimated heap bytes at the peak of [`estimate_tile_normals_packed`] on
/// `points` points: the k-d tree build, with the positions (24 bytes per
/// point), the tree's order and coordinates (4 + 24) and its nodes (60
/// bytes each, twice the leaves of at most 32 points, rounded up to a power
/// of two); the search holds less (tree + 16 bytes of results per point).
pub(super) fn packed_normals_peak_bytes(points: u64) -> u64 {
    let leaves = points.div_ceil(32).max(1).next_power_of_two();
    points * (24 + 4 + 24) + (2 * leaves - 1) * 60
}

/// [`estimate_tile_normals`] for the lean batch path, with the same results
/// as it gives once rounded to `f32` (the precision of the output), holding
/// less: `points` is the tile's output positions followed by the halo
/// (`tile_len` of them are the tile's); the k-d tree is built on them and
/// `points` is freed before the search (query points are read from the
/// tree's own copy, the same `f64` values), no cloud copy is made, only the
/// tile's points are estimated (the halo serves as neighbours), and the
/// results are kept as 16-byte [`PackedNormal`]s in input order.
///
/// Memory at the peak (the search): the tree (28 bytes per point) plus 16
/// bytes per point of results; the scatter to input order frees the tree
/// first (keeping its 4-byte order).
///
/// # Errors
/// [`Error::InvalidParameter`] for bad parameters, [`Error::NonFinite`] for a
/// non-finite point.
///
/// Complexity: as [`crate::normals::estimate_normals`] on the tile's points.
pub(super) fn estimate_tile_normals_packed(
    points: Vec<Point3<f64>>,
    tile_len: usize,
    params: &NormalParams,
) -> Result<Vec<PackedNormal>> {
    params.validate()?;
    let tree = crate::kdtree::KdTree::build(&points)?;
    drop(points);
    let viewpoint = aerial_viewpoint();
    let mut estimates = vec![NO_NORMAL; tree.len()];
    tree.for_each_own_set(
        params.radius,
        params.max_nn,
        &mut estimates,
        |position, neighbors, out| {
            if neighbors.len() < MIN_NEIGHBORS || tree.index_at(position) >= tile_len {
                return;
            }
            let p = Point3::from(tree.point_at(position));
            let covariance = crate::normals::compute_covariance(&tree, &p, neighbors);
            if let Some((normal, curvature)) = crate::normals::fit_plane(&covariance) {
                let n = crate::normals::orient_toward(normal, &p, &viewpoint);
                *out = [n.x as f32, n.y as f32, n.z as f32, curvature as f32];
            }
        },
    );
    let order: Vec<u32> = tree.tree_order().map(|i| i as u32).collect();
    drop(tree);
    let mut normals = vec![NO_NORMAL; tile_len];
    for (&i, estimate) in order.iter().zip(&estimates) {
        if let Some(slot) = normals.get_mut(i as usize) {
            *slot = *estimate;
        }
    }
    Ok(normals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_normals_point_up() {
        let tile: Vec<_> = (0..100)
            .map(|i| {
                Point3::new(
                    f64::from(i % 10) * 0.1 + 5e5,
                    f64::from(i / 10) * 0.1 + 4e6,
                    0.3,
                )
            })
            .collect();
        let (normals, curvature) =
            estimate_tile_normals(&tile, &[], &NormalParams::default()).unwrap();
        for (n, c) in normals.iter().zip(&curvature) {
            assert!((n - Vector3::z()).norm() < 1e-5, "{n}");
            assert!(c.abs() < 1e-9);
        }
    }

    #[test]
    fn halo_points_are_neighbours_not_outputs() {
        let tile: Vec<_> = (0..3)
            .map(|i| Point3::new(f64::from(i) * 0.1, 0.0, 0.0))
            .collect();
        let halo: Vec<_> = (0..3)
            .map(|i| Point3::new(f64::from(i) * 0.1, 0.1, 0.0))
            .collect();
        let params = NormalParams::default();
        let (alone, _) = estimate_tile_normals(&tile, &[], &params).unwrap();
        assert_eq!(alone, vec![Vector3::zeros(); 3]); // collinear: no normal
        let (with_halo, curvature) = estimate_tile_normals(&tile, &halo, &params).unwrap();
        assert_eq!(with_halo.len(), 3);
        assert!(with_halo.iter().all(|n| (n - Vector3::z()).norm() < 1e-6));
        assert_eq!(curvature.len(), 3);
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
