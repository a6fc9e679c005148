//! One preparation step for registration and analysis: a cloud, its k-d tree
//! and its normals, made together (small_gicp's `preprocess_points`).
//!
//! [`IndexedCloud`] owns a cloud and the tree built on exactly its points;
//! the points cannot be changed through it, so the two cannot fall out of
//! step. Normals are estimated on it in place ([`IndexedCloud::estimate_normals`]).
//! [`preprocess_points`] runs the whole chain: voxel downsampling, tree,
//! normals.
//!
//! # Example
//! ```
//! use nalgebra::Point3;
//! use pointpipe::normals::{NeighborSearch, NormalConfig};
//! use pointpipe::prepare::preprocess_points;
//! use pointpipe::voxel::VoxelConfig;
//! use pointpipe::PointCloud;
//!
//! // A 2 m × 2 m floor sampled every 2 cm.
//! let floor: Vec<Point3<f64>> = (0..10_000)
//!     .map(|i| Point3::new((i % 100) as f64 * 0.02, (i / 100) as f64 * 0.02, 0.0))
//!     .collect();
//! let normals = NormalConfig {
//!     search: NeighborSearch::Knn { k: 10 },
//!     ..NormalConfig::default()
//! };
//! let target = preprocess_points(
//!     &PointCloud::from_points(floor),
//!     Some(&VoxelConfig::new(0.1)),
//!     Some(&normals),
//! )?;
//! assert_eq!(target.cloud().len(), 400);
//! assert_eq!(target.tree().len(), 400);
//! let n = target.cloud().normals.as_ref().unwrap()[0];
//! assert!((n.z.abs() - 1.0).abs() < 1e-9);
//! # Ok::<(), pointpipe::Error>(())
//! ```

use crate::cloud::PointCloud;
use crate::error::Result;
use crate::kdtree::{KdTree, KdTreeConfig};
use crate::normals::{self, NormalConfig, NormalReport};
use crate::voxel::{self, VoxelConfig};

/// A cloud with the k-d tree of its points (and, once estimated, its normals).
#[derive(Debug, Clone)]
pub struct IndexedCloud {
    cloud: PointCloud,
    tree: KdTree,
}

impl IndexedCloud {
    /// Builds the tree of `cloud`'s points ([`KdTree::build`]).
    ///
    /// # Errors
    /// [`crate::Error::NonFinite`] for a point with a NaN or infinite coordinate.
    ///
    /// Complexity: O(n log n).
    pub fn build(cloud: PointCloud) -> Result<Self> {
        Self::build_with(cloud, &KdTreeConfig::default())
    }

    /// [`IndexedCloud::build`] with a tree config.
    ///
    /// # Errors
    /// Those of [`KdTree::build_with`].
    pub fn build_with(cloud: PointCloud, config: &KdTreeConfig) -> Result<Self> {
        let tree = KdTree::build_with(&cloud.points, config)?;
        Ok(IndexedCloud { cloud, tree })
    }

    /// Estimates the normals and curvature of every point from its
    /// neighbours in the tree ([`normals::estimate_normals`]), replacing
    /// any it had.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] from [`NormalConfig::validate`].
    pub fn estimate_normals(&mut self, config: &NormalConfig) -> Result<NormalReport> {
        normals::estimate_normals(&mut self.cloud, &self.tree, config)
    }

    /// The cloud (points in metres; normals and curvature once estimated).
    pub fn cloud(&self) -> &PointCloud {
        &self.cloud
    }

    /// The tree of the cloud's points.
    pub fn tree(&self) -> &KdTree {
        &self.tree
    }

    /// The cloud and the tree, taken apart.
    pub fn into_parts(self) -> (PointCloud, KdTree) {
        (self.cloud, self.tree)
    }
}

/// Voxel-downsamples `cloud` (when `voxel` is given), builds the tree and
/// estimates the normals (when `normals` is given): the target of a
/// point-to-plane registration, or a cloud to analyse.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] for an invalid config;
/// [`crate::Error::NonFinite`] for a non-finite point.
///
/// Complexity: O(n) for the voxel grid, O(m log m) for the tree and
/// O(m · neighbours) for the normals, m the points kept.
pub fn preprocess_points(
    cloud: &PointCloud,
    voxel: Option<&VoxelConfig>,
    normals: Option<&NormalConfig>,
) -> Result<IndexedCloud> {
    let cloud = match voxel {
        Some(config) => voxel::voxel_downsample(cloud, config)?,
        None => cloud.clone(),
    };
    let mut indexed = IndexedCloud::build(cloud)?;
    if let Some(config) = normals {
        indexed.estimate_normals(config)?;
    }
    Ok(indexed)
}
