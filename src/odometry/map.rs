//! The merged map of a whole run: every frame in the world frame, voxelised.

use nalgebra::{Isometry3, Point3, Vector3};

use crate::cloud::PointCloud;
use crate::error::Result;
use crate::voxel::{VoxelGrid, VoxelMap};

/// Accumulates world-frame points into voxels of `voxel_size` metres and
/// returns one point per voxel: the centroid of everything that fell in it.
///
/// Memory is one entry per occupied voxel (not per input point). Output order
/// is the order in which voxels were first hit, so runs are reproducible.
#[derive(Debug, Clone)]
pub struct MapBuilder {
    grid: VoxelGrid,
    index: VoxelMap<usize>,
    sums: Vec<(Vector3<f64>, u32)>,
}

impl MapBuilder {
    /// An empty map with voxels of `voxel_size` metres.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] from [`VoxelGrid::new`].
    pub fn new(voxel_size: f64) -> Result<Self> {
        Ok(MapBuilder {
            grid: VoxelGrid::new(voxel_size)?,
            index: VoxelMap::default(),
            sums: Vec::new(),
        })
    }

    /// Adds `points` (sensor frame) at pose `world_from_sensor`.
    pub fn add(&mut self, points: &[Point3<f64>], world_from_sensor: &Isometry3<f64>) {
        for p in points {
            let w = world_from_sensor * p;
            let key = self.grid.key(&w);
            let next = self.sums.len();
            let i = *self.index.entry(key).or_insert(next);
            if i == next {
                self.sums.push((Vector3::zeros(), 0));
            }
            self.sums[i].0 += w.coords;
            self.sums[i].1 += 1;
        }
    }

    /// Number of occupied voxels.
    pub fn len(&self) -> usize {
        self.sums.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    /// The map: one centroid per voxel.
    pub fn to_cloud(&self) -> PointCloud {
        PointCloud::from_points(
            self.sums
                .iter()
                .map(|(sum, n)| Point3::from(sum / f64::from(*n)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One centroid per voxel, in order of first hit, in the world frame.
    #[test]
    fn centroids_per_voxel_in_first_hit_order() {
        let mut map = MapBuilder::new(1.0).unwrap();
        let pose = Isometry3::translation(10.0, 0.0, 0.0);
        map.add(
            &[
                Point3::new(0.2, 0.2, 0.2),
                Point3::new(-3.5, 0.5, 0.5),
                Point3::new(0.4, 0.6, 0.8),
            ],
            &pose,
        );
        map.add(&[Point3::new(-3.0, 0.5, 0.5)], &Isometry3::identity());
        let cloud = map.to_cloud();
        assert_eq!(map.len(), 3);
        assert_eq!(
            cloud.points,
            [
                Point3::new(10.3, 0.4, 0.5),
                Point3::new(6.5, 0.5, 0.5),
                Point3::new(-3.0, 0.5, 0.5),
            ]
        );
    }
}
