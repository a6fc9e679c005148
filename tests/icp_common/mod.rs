//! Shared preparation for the ICP real-data tests and benchmark: read,
//! voxelise, build the tree and PCA normals.
#![allow(dead_code)]

use std::path::Path;

use nalgebra::{Isometry3, Matrix3, SymmetricEigen, Vector3};
use pointpipe::PointCloud;
use pointpipe::kdtree::KdTree;
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

/// Tree and PCA normals (up to `max_nn` neighbours within `radius` m, at
/// least 5) of `cloud`, replacing any normals it had.
/// TODO: switch to pointpipe::normals::estimate_normals once merged.
pub fn with_tree_and_normals(
    mut cloud: PointCloud,
    radius: f64,
    max_nn: usize,
) -> (PointCloud, KdTree) {
    let tree = KdTree::build(&cloud.points).unwrap();
    let mut neighbors = Vec::new();
    let normals = cloud
        .points
        .iter()
        .map(|p| {
            tree.hybrid(p, radius, max_nn, &mut neighbors);
            if neighbors.len() < 5 {
                return Vector3::zeros();
            }
            let n = neighbors.len() as f64;
            let mean = neighbors
                .iter()
                .fold(Vector3::zeros(), |a, nb| a + cloud.points[nb.index].coords)
                / n;
            let covariance = neighbors.iter().fold(Matrix3::zeros(), |a, nb| {
                let d = cloud.points[nb.index].coords - mean;
                a + d * d.transpose()
            }) / n;
            let eigen = SymmetricEigen::new(covariance);
            let smallest = eigen.eigenvalues.imin();
            let normal = eigen.eigenvectors.column(smallest).into_owned();
            if normal.dot(&p.coords) > 0.0 {
                -normal
            } else {
                normal
            }
        })
        .collect();
    cloud.normals = Some(normals);
    (cloud, tree)
}

/// Rotation (degrees) and translation (metres) of `estimate · truth⁻¹`.
pub fn pose_error(estimate: &Isometry3<f64>, truth: &Isometry3<f64>) -> (f64, f64) {
    let e = estimate * truth.inverse();
    (e.rotation.angle().to_degrees(), e.translation.vector.norm())
}
