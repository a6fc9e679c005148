//! Tiles of a batch: the tile index from the file headers' bounds and the
//! neighbours that lend a tile their halo points. The records themselves
//! are read and written by [`crate::io::las::records`].

use std::path::{Path, PathBuf};

use nalgebra::Point3;

use crate::error::Result;

/// An axis-aligned box in the CRS units of the tiles (inclusive bounds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aabb {
    /// Minimum corner.
    pub min: Point3<f64>,
    /// Maximum corner.
    pub max: Point3<f64>,
}

impl Aabb {
    /// The box grown by `margin` on every side.
    pub fn expanded(&self, margin: f64) -> Aabb {
        Aabb {
            min: self.min.map(|c| c - margin),
            max: self.max.map(|c| c + margin),
        }
    }

    /// True when the two boxes overlap (touching counts).
    pub fn intersects(&self, other: &Aabb) -> bool {
        (0..3).all(|i| self.min[i] <= other.max[i] && other.min[i] <= self.max[i])
    }

    /// True when `p` is inside (inclusive).
    pub fn contains(&self, p: &Point3<f64>) -> bool {
        (0..3).all(|i| self.min[i] <= p[i] && p[i] <= self.max[i])
    }
}

/// A tile of the batch as far as its header tells: path and bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct TileInfo {
    /// The input file.
    pub path: PathBuf,
    /// Bounds from the LAS header; `None` when the header's bounds are not
    /// finite or inverted (such a tile is then a halo neighbour of every tile).
    pub bounds: Option<Aabb>,
    /// Point count from the header.
    pub number_of_points: u64,
}

/// Reads only the header (and VLRs) of a LAS/LAZ file
/// ([`crate::io::las::read_header`]).
///
/// # Errors
/// As [`crate::io::las::read_header`].
pub fn read_tile_info(path: &Path) -> Result<TileInfo> {
    let header = crate::io::las::read_header(path)?;
    let b = header.bounds();
    let bounds = Aabb {
        min: Point3::new(b.min.x, b.min.y, b.min.z),
        max: Point3::new(b.max.x, b.max.y, b.max.z),
    };
    let valid = bounds
        .min
        .iter()
        .chain(bounds.max.iter())
        .all(|c| c.is_finite())
        && (0..3).all(|i| bounds.min[i] <= bounds.max[i]);
    Ok(TileInfo {
        path: path.to_path_buf(),
        bounds: valid.then_some(bounds),
        number_of_points: header.number_of_points(),
    })
}

/// Indices of the tiles (other than `index`) whose bounds come within
/// `halo` of tile `index`'s bounds. Tiles with unknown bounds are neighbours
/// of every tile.
pub fn halo_neighbors(tiles: &[TileInfo], index: usize, halo: f64) -> Vec<usize> {
    let Some(own) = tiles.get(index) else {
        return Vec::new();
    };
    let region = own.bounds.map(|b| b.expanded(halo));
    tiles
        .iter()
        .enumerate()
        .filter(|&(j, t)| {
            j != index
                && match (region, t.bounds) {
                    (Some(r), Some(b)) => r.intersects(&b),
                    _ => true,
                }
        })
        .map(|(j, _)| j)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(x0: f64, y0: f64) -> TileInfo {
        TileInfo {
            path: PathBuf::from(format!("{x0}_{y0}.las")),
            bounds: Some(Aabb {
                min: Point3::new(x0, y0, 0.0),
                max: Point3::new(x0 + 10.0, y0 + 10.0, 5.0),
            }),
            number_of_points: 1,
        }
    }

    #[test]
    fn neighbours_within_halo() {
        let mut tiles = vec![tile(0.0, 0.0), tile(10.5, 0.0), tile(0.0, 30.0)];
        assert_eq!(halo_neighbors(&tiles, 0, 0.0), Vec::<usize>::new());
        assert_eq!(halo_neighbors(&tiles, 0, 1.0), vec![1]);
        assert_eq!(halo_neighbors(&tiles, 1, 1.0), vec![0]);
        tiles[2].bounds = None;
        assert_eq!(halo_neighbors(&tiles, 0, 0.0), vec![2]);
        assert_eq!(halo_neighbors(&tiles, 2, 0.0), vec![0, 1]);
        assert!(halo_neighbors(&tiles, 9, 1.0).is_empty());
    }

    #[test]
    fn aabb_contains_is_inclusive() {
        let b = tile(0.0, 0.0).bounds.unwrap();
        assert!(b.contains(&Point3::new(10.0, 10.0, 5.0)));
        assert!(!b.contains(&Point3::new(10.0001, 10.0, 5.0)));
    }
}
