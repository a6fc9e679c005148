//! Shared preparation for the ICP real-data tests and benchmark: read,
//! voxelise, build the tree and PCA normals.
#![allow(dead_code)]

use std::path::Path;

use nalgebra::Isometry3;
use pointpipe::PointCloud;
use pointpipe::kdtree::KdTree;
use pointpipe::normals::{NeighborSearch, NormalConfig};
use pointpipe::prepare::IndexedCloud;
use pointpipe::voxel::{VoxelConfig, VoxelMode, voxel_downsample};

/// Reads a cloud and drops points closer than `min_range` metres to the
/// sensor (HDL-32 files hold points at the origin).
pub fn read_cloud(path: &Path, min_range: f64) -> PointCloud {
    let mut cloud = pointpipe::io::read(path).unwrap();
    cloud.retain(|_, p| p.coords.norm() >= min_range);
    cloud
}

/// Voxel-downsampled copy (centroid mode).
pub fn downsample(cloud: &PointCloud, voxel_size: f64) -> PointCloud {
    voxel_downsample(
        cloud,
        &VoxelConfig {
            voxel_size,
            mode: VoxelMode::Centroid,
        },
    )
    .unwrap()
}

/// Tree and normals ([`estimate_normals`], hybrid search: up to `max_nn`
/// neighbours within `radius` m) of `cloud`, replacing any normals it had.
pub fn with_tree_and_normals(
    cloud: PointCloud,
    radius: f64,
    max_nn: usize,
) -> (PointCloud, KdTree) {
    let mut indexed = IndexedCloud::build(cloud).unwrap();
    let config = NormalConfig {
        search: NeighborSearch::Radius {
            radius,
            max_nn: Some(max_nn),
        },
        min_neighbors: 3,
        viewpoint: None,
    };
    indexed.estimate_normals(&config).unwrap();
    indexed.into_parts()
}

/// Rotation (degrees) and translation (metres) of `estimate · truth⁻¹`.
pub fn pose_error(estimate: &Isometry3<f64>, truth: &Isometry3<f64>) -> (f64, f64) {
    let e = estimate * truth.inverse();
    (e.rotation.angle().to_degrees(), e.translation.vector.norm())
}
