//! The local map of the odometry: a voxel hash map of world-frame points
//! around the sensor, flattened into a fresh [`PointCloud`] every frame for the
//! k-d tree rebuild and the normals.

use nalgebra::{Isometry3, Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::PointCloud;
use crate::error::Result;
use crate::kdtree::{KdTree, SetEntry};
use crate::normals::{compute_covariance, fit_plane};
use crate::voxel::{VoxelGrid, VoxelKey, VoxelMap};

#[derive(Debug, Clone)]
struct Voxel {
    key: VoxelKey,
    points: Vec<Point3<f64>>,
    /// Unit normal per point, zero until estimated.
    normals: Vec<Vector3<f64>>,
    /// Neighbours that supported each normal (0 = not estimated yet).
    support: Vec<u32>,
}

/// World-frame points in voxels of `voxel_size` metres, at most
/// `max_points_per_voxel` per voxel and no two closer than
/// `voxel_size / sqrt(max_points_per_voxel)` within a voxel (KISS-ICP's
/// `VoxelHashMap`).
///
/// Every point carries a normal. Normals are (re-)estimated each frame, from
/// the tree rebuilt that frame, for every point whose normal is missing or was
/// supported by fewer than `max_nn` neighbours (points at the map's growing
/// edge); points with a full neighbourhood keep theirs, which is what makes
/// the per-frame normal cost proportional to the new points, not the map size.
#[derive(Debug, Clone)]
pub struct LocalMap {
    grid: VoxelGrid,
    max_points_per_voxel: usize,
    min_point_distance_sq: f64,
    voxels: Vec<Voxel>,
    /// Voxel key → position in `voxels` (only looked up, never iterated).
    index: VoxelMap<usize>,
    /// (voxel, slot) of every point of the last flattened cloud.
    slots: Vec<(u32, u32)>,
}

impl LocalMap {
    /// An empty map with voxels of `voxel_size` metres holding at most
    /// `max_points_per_voxel` points (0 is taken as 1).
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] from [`VoxelGrid::new`].
    pub fn new(voxel_size: f64, max_points_per_voxel: usize) -> Result<Self> {
        let grid = VoxelGrid::new(voxel_size)?;
        let spacing = voxel_size / (max_points_per_voxel.max(1) as f64).sqrt();
        Ok(LocalMap {
            grid,
            max_points_per_voxel: max_points_per_voxel.max(1),
            min_point_distance_sq: spacing * spacing,
            voxels: Vec::new(),
            index: VoxelMap::default(),
            slots: Vec::new(),
        })
    }

    /// Number of points in the map.
    pub fn len(&self) -> usize {
        self.voxels.iter().map(|v| v.points.len()).sum()
    }

    /// True when the map holds no point.
    pub fn is_empty(&self) -> bool {
        self.voxels.is_empty()
    }

    /// Adds world-frame points (e.g. a registered, downsampled frame), in
    /// order: a point joins its voxel while the voxel holds fewer than
    /// `max_points_per_voxel` points and it keeps the minimum spacing to them.
    pub fn insert(&mut self, points: impl IntoIterator<Item = Point3<f64>>) {
        for p in points {
            self.insert_keyed(p, self.grid.key(&p));
        }
    }

    /// Adds the sensor-frame `points` (metres) moved by `world_from_sensor`:
    /// the same result as [`LocalMap::insert`] of the moved points, with the
    /// transform and the voxel keys computed in parallel (rayon) and only the
    /// order-dependent insertion serial.
    pub fn insert_transformed(
        &mut self,
        points: &[Point3<f64>],
        world_from_sensor: &Isometry3<f64>,
    ) {
        let grid = self.grid;
        let keyed: Vec<(Point3<f64>, VoxelKey)> = points
            .par_iter()
            .with_min_len(2048)
            .map(|p| {
                let w = world_from_sensor * p;
                (w, grid.key(&w))
            })
            .collect();
        self.index.reserve(keyed.len());
        for (p, key) in keyed {
            self.insert_keyed(p, key);
        }
    }

    /// Adds one world-frame point with its voxel key.
    #[inline]
    fn insert_keyed(&mut self, p: Point3<f64>, key: VoxelKey) {
        match self.index.get(&key) {
            Some(&i) => {
                let voxel = &mut self.voxels[i];
                if voxel.points.len() < self.max_points_per_voxel
                    && voxel
                        .points
                        .iter()
                        .all(|q| (q - p).norm_squared() >= self.min_point_distance_sq)
                {
                    voxel.points.push(p);
                    voxel.normals.push(Vector3::zeros());
                    voxel.support.push(0);
                }
            }
            None => {
                self.index.insert(key, self.voxels.len());
                self.voxels.push(Voxel {
                    key,
                    points: vec![p],
                    normals: vec![Vector3::zeros()],
                    support: vec![0],
                });
            }
        }
    }

    /// Removes every voxel whose first point is farther than `max_distance`
    /// metres from `center` (the sensor position).
    pub fn remove_far(&mut self, center: &Point3<f64>, max_distance: f64) {
        let max_distance_sq = max_distance * max_distance;
        let before = self.voxels.len();
        self.voxels
            .retain(|v| (v.points[0] - center).norm_squared() <= max_distance_sq);
        if self.voxels.len() != before {
            self.index.clear();
            for (i, v) in self.voxels.iter().enumerate() {
                self.index.insert(v.key, i);
            }
        }
    }

    /// Flattens the map into `target` (points and normals, voxel by voxel in
    /// insertion order), reusing its buffers.
    pub fn flatten_into(&mut self, target: &mut PointCloud) {
        target.points.clear();
        let normals = target.normals.get_or_insert_with(Vec::new);
        normals.clear();
        self.slots.clear();
        for (vi, v) in self.voxels.iter().enumerate() {
            target.points.extend_from_slice(&v.points);
            normals.extend_from_slice(&v.normals);
            self.slots
                .extend((0..v.points.len()).map(|s| (vi as u32, s as u32)));
        }
        target.intensity = None;
        target.curvature = None;
        target.time = None;
    }

    /// Estimates the normals of the flattened `target` (from
    /// [`LocalMap::flatten_into`]) whose support is below `max_nn`, with a
    /// hybrid search of `radius` metres / `max_nn` on `tree` (built on
    /// `target.points`); writes them to `target` and back into the map.
    /// Returns the number of normals estimated.
    pub fn estimate_normals(
        &mut self,
        target: &mut PointCloud,
        tree: &KdTree,
        radius: f64,
        max_nn: usize,
        min_neighbors: usize,
    ) -> usize {
        let todo: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, (v, s))| (self.voxels[*v as usize].support[*s as usize] as usize) < max_nn)
            .map(|(i, _)| i)
            .collect();
        let points = &target.points;
        // Each search starts in its own point's leaf.
        let position_of = tree.position_of();
        let fitted: Vec<(Vector3<f64>, u32)> = todo
            .par_iter()
            .map_init(Vec::<SetEntry>::new, |buf, &i| {
                let hint = tree.hint_at(position_of[i] as usize);
                // The set of neighbours, unsorted: PCA needs no order.
                tree.nearest_set_hinted(&points[i], radius, max_nn, &hint, buf);
                if buf.len() < min_neighbors {
                    return (Vector3::zeros(), 0);
                }
                match fit_plane(&compute_covariance(tree, &points[i], buf)) {
                    Some((normal, _curvature)) => (normal, buf.len() as u32),
                    None => (Vector3::zeros(), 0),
                }
            })
            .collect();
        let normals = target.normals.get_or_insert_with(Vec::new);
        for (&i, &(normal, support)) in todo.iter().zip(&fitted) {
            normals[i] = normal;
            let (v, s) = self.slots[i];
            let voxel = &mut self.voxels[v as usize];
            voxel.normals[s as usize] = normal;
            voxel.support[s as usize] = support;
        }
        todo.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `voxel_size` 1 and 4 points per voxel the spacing is 0.5 m: a
    /// voxel takes points while they are at least that far from its others,
    /// and at most four.
    #[test]
    fn insert_keeps_spacing_and_cap_per_voxel() {
        let mut map = LocalMap::new(1.0, 4).unwrap();
        map.insert([
            Point3::new(0.1, 0.1, 0.1),
            Point3::new(0.3, 0.1, 0.1), // 0.2 m from the first: refused
            Point3::new(0.7, 0.1, 0.1), // 0.6 m: kept
            Point3::new(0.1, 0.7, 0.1),
            Point3::new(0.7, 0.7, 0.1),
            Point3::new(0.7, 0.7, 0.7), // fifth acceptable point: over the cap
            Point3::new(1.5, 0.1, 0.1), // another voxel
        ]);
        assert_eq!(map.len(), 5);
        assert_eq!(map.voxels.len(), 2);
        assert_eq!(map.voxels[0].points.len(), 4);
        assert_eq!(map.voxels[0].points[1], Point3::new(0.7, 0.1, 0.1));
    }

    /// `insert_transformed` equals `insert` of the moved points.
    #[test]
    fn insert_transformed_equals_insert_of_moved_points() {
        let pose = Isometry3::new(Vector3::new(3.0, -2.0, 0.5), Vector3::new(0.0, 0.0, 0.7));
        let points: Vec<Point3<f64>> = (0..500)
            .map(|i| {
                let t = i as f64 * 0.137;
                Point3::new(t.sin() * 4.0, t.cos() * 3.0, (t * 0.3).sin())
            })
            .collect();
        let mut a = LocalMap::new(0.5, 3).unwrap();
        a.insert_transformed(&points, &pose);
        let mut b = LocalMap::new(0.5, 3).unwrap();
        b.insert(points.iter().map(|p| pose * p));
        let (mut ca, mut cb) = (PointCloud::default(), PointCloud::default());
        a.flatten_into(&mut ca);
        b.flatten_into(&mut cb);
        assert_eq!(ca.points, cb.points);
    }

    /// Eviction is by each voxel's first point (spacing here 1/√2 m): a voxel whose first point is
    /// within `max_distance` stays whole; later inserts find the survivors.
    #[test]
    fn remove_far_evicts_by_first_point_and_reindexes() {
        let mut map = LocalMap::new(1.0, 2).unwrap();
        map.insert([
            Point3::new(0.5, 0.5, 0.5),
            Point3::new(10.5, 0.5, 0.5),
            Point3::new(2.5, 0.5, 0.5),
            Point3::new(2.95, 0.95, 0.95), // same voxel as 2.5, 0.78 m away: kept
        ]);
        map.remove_far(&Point3::origin(), 3.0);
        assert_eq!(map.len(), 3);
        assert!(map.voxels.iter().all(|v| v.points[0].x < 3.0));
        // The index points at the moved voxel: a new point joins it.
        map.insert([Point3::new(2.1, 0.1, 0.1)]);
        assert_eq!(map.voxels.len(), 2);
        assert_eq!(map.len(), 3, "the voxel at x = 2 is full (2 points)");
        map.insert([Point3::new(0.0, 0.9, 0.9)]);
        assert_eq!(map.len(), 4);
    }
}
