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
use crate::error::Result;
use crate::normals::NormalConfig;
use crate::prepare::IndexedCloud;

/// Normals (zero = none) and curvature (NaN = none) of `tile` points, with
/// neighbours searched in `tile ∪ halo`, by
/// [`crate::normals::estimate_normals`] with `config`.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] for a bad config, [`crate::Error::NonFinite`] for a
/// non-finite point.
pub(super) fn estimate_tile_normals(
    tile: &[Point3<f64>],
    halo: &[Point3<f64>],
    config: &NormalConfig,
) -> Result<(Vec<Vector3<f64>>, Vec<f64>)> {
    let cloud = PointCloud::from_points(tile.iter().chain(halo).copied().collect());
    let mut indexed = IndexedCloud::build(cloud)?;
    indexed.estimate_normals(config)?;
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
/// [`crate::Error::InvalidParameter`] for a bad config, [`crate::Error::NonFinite`] for a
/// non-finite point.
///
/// Complexity: as [`crate::normals::estimate_normals`] on the tile's points.
pub(super) fn estimate_tile_normals_packed(
    points: Vec<Point3<f64>>,
    tile_len: usize,
    config: &NormalConfig,
) -> Result<Vec<PackedNormal>> {
    config.validate()?;
    let tree = crate::kdtree::KdTree::build(&points)?;
    drop(points);
    let viewpoint = config.viewpoint.unwrap_or_else(Point3::origin);
    let (radius, max_nn) = config.search.own_set_bounds();
    let mut estimates = vec![NO_NORMAL; tree.len()];
    tree.for_each_own_set(
        radius,
        max_nn,
        &mut estimates,
        |position, neighbors, out| {
            if neighbors.len() < config.min_neighbors || tree.index_at(position) >= tile_len {
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
            estimate_tile_normals(&tile, &[], &NormalConfig::aerial(0.5, 30)).unwrap();
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
        let params = NormalConfig::aerial(0.5, 30);
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
            estimate_tile_normals(&tile, &[], &NormalConfig::aerial(0.5, 30)).unwrap();
        assert_eq!(normals, vec![Vector3::zeros(); 2]);
        assert!(curvature.iter().all(|c| c.is_nan()));
    }
}
