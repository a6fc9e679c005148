//! Display decimation: thin a cloud to at most `max_points` for drawing.
//!
//! This is *display* decimation only (it keeps one existing point per voxel,
//! the first in index order); the algorithms use [`crate::voxel`] instead.

use nalgebra::Point3;

use crate::voxel::{VoxelGrid, VoxelMap};

/// Growth factor of the voxel size between two attempts.
const VOXEL_GROWTH: f64 = 1.25;
/// Upper bound on attempts; 1.25^80 spans any finite extent.
const MAX_ATTEMPTS: usize = 80;

/// The outcome of [`decimate_indices`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decimation {
    /// Indices of the kept points, increasing.
    pub indices: Vec<usize>,
    /// Edge length of the cubic display voxel in the cloud's unit (metres),
    /// or `None` when every point was kept.
    pub voxel_size: Option<f64>,
}

/// Chooses at most `max_points` of `points` for display, one per cubic voxel.
///
/// Parameters: `points` (finite positions, metres), `max_points` (display budget).
/// Returns: the kept indices in increasing order and the voxel size used.
///
/// Algorithm:
/// 1. If `points.len() <= max_points`, keep everything.
/// 2. Start with voxel size `v = cbrt(V / max_points)` from the bounding-box
///    volume `V` (each extent clamped to 1e-3 of the diagonal, so flat tiles
///    and lines get a sensible start).
/// 3. Keep the first point (in index order) of every occupied voxel; while
///    more than `max_points` remain, grow `v` by 1.25 and repeat.
/// 4. Should the voxel grid still not fit (only when `max_points` < 8), keep
///    every k-th of the survivors.
///
/// Deterministic (index order decides). Complexity O(n) per attempt,
/// O(n log(n / max_points)) overall. Non-finite points are skipped.
pub fn decimate_indices(points: &[Point3<f64>], max_points: usize) -> Decimation {
    if points.len() <= max_points {
        return Decimation {
            indices: (0..points.len()).collect(),
            voxel_size: None,
        };
    }
    if max_points == 0 {
        return Decimation {
            indices: Vec::new(),
            voxel_size: None,
        };
    }
    let Some((lo, hi)) = finite_bounds(points) else {
        return Decimation {
            indices: Vec::new(),
            voxel_size: None,
        };
    };
    let extent = hi - lo;
    let diagonal = extent.norm().max(f64::MIN_POSITIVE);
    let volume: f64 = extent.iter().map(|e| e.max(diagonal * 1e-3)).product();
    let mut voxel_size = (volume / max_points as f64).cbrt();
    if !voxel_size.is_finite() || voxel_size <= 0.0 {
        voxel_size = 1.0; // all points (nearly) identical: any size works
    }
    let mut kept = Vec::new();
    let mut occupied = VoxelMap::default();
    for _ in 0..MAX_ATTEMPTS {
        keep_first_per_voxel(points, &lo, voxel_size, &mut occupied, &mut kept);
        if kept.len() <= max_points {
            break;
        }
        voxel_size *= VOXEL_GROWTH;
    }
    if kept.len() > max_points {
        let stride = kept.len().div_ceil(max_points);
        kept = kept.into_iter().step_by(stride).collect();
    }
    Decimation {
        indices: kept,
        voxel_size: Some(voxel_size),
    }
}

/// Fills `kept` with the index of the first finite point in each voxel of size
/// `voxel_size` anchored at `origin`; a size the grid refuses (grown past
/// `f64::MAX`, or too small to invert) is one voxel.
fn keep_first_per_voxel(
    points: &[Point3<f64>],
    origin: &Point3<f64>,
    voxel_size: f64,
    occupied: &mut VoxelMap<()>,
    kept: &mut Vec<usize>,
) {
    occupied.clear();
    kept.clear();
    let grid = VoxelGrid::new(voxel_size).ok();
    for (i, p) in points.iter().enumerate() {
        if !p.coords.iter().all(|c| c.is_finite()) {
            continue;
        }
        let key = grid.map_or([0; 3], |g| g.key(&Point3::from(p - origin)));
        if occupied.insert(key, ()).is_none() {
            kept.push(i);
        }
    }
}

/// Bounds of the finite points, `None` if there is none.
pub(crate) fn finite_bounds(points: &[Point3<f64>]) -> Option<(Point3<f64>, Point3<f64>)> {
    points
        .iter()
        .filter(|p| p.coords.iter().all(|c| c.is_finite()))
        .fold(None, |acc, p| match acc {
            None => Some((*p, *p)),
            Some((lo, hi)) => Some((lo.inf(p), hi.sup(p))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize) -> Vec<Point3<f64>> {
        let mut v = Vec::new();
        for i in 0..n {
            for j in 0..n {
                for k in 0..n {
                    v.push(Point3::new(i as f64, j as f64, k as f64 * 0.1));
                }
            }
        }
        v
    }

    #[test]
    fn small_cloud_is_kept_whole() {
        let pts = grid(3);
        let d = decimate_indices(&pts, 100);
        assert_eq!(d.indices, (0..27).collect::<Vec<_>>());
        assert_eq!(d.voxel_size, None);
    }

    #[test]
    fn large_cloud_fits_budget_and_is_deterministic() {
        let pts = grid(30); // 27 000 points
        let d = decimate_indices(&pts, 1000);
        assert!(d.indices.len() <= 1000, "{}", d.indices.len());
        assert!(
            d.indices.len() >= 250,
            "too aggressive: {}",
            d.indices.len()
        );
        assert!(d.indices.windows(2).all(|w| w[0] < w[1]));
        assert!(d.voxel_size.is_some_and(|v| v > 0.0));
        assert_eq!(d, decimate_indices(&pts, 1000));
    }

    #[test]
    fn identical_points_and_tiny_budgets() {
        let pts = vec![Point3::new(1.0, 2.0, 3.0); 50];
        let d = decimate_indices(&pts, 10);
        assert_eq!(d.indices, vec![0]);
        let d = decimate_indices(&grid(4), 1);
        assert_eq!(d.indices.len(), 1);
        assert!(decimate_indices(&grid(4), 0).indices.is_empty());
    }

    #[test]
    fn non_finite_points_are_skipped() {
        let mut pts = grid(5);
        pts.push(Point3::new(f64::NAN, 0.0, 0.0));
        pts.push(Point3::new(f64::INFINITY, 0.0, 0.0));
        let d = decimate_indices(&pts, 50);
        assert!(d.indices.iter().all(|&i| i < 125));
        assert!(!d.indices.is_empty() && d.indices.len() <= 50);
    }
}
