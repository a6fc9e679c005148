//! Point filters: statistical outlier removal (SOR), with the semantics of PCL's
//! `StatisticalOutlierRemoval` (Rusu et al., "Towards 3D Point cloud based
//! object maps for household environments", RAS 2008, section 4).
//!
//! # Algorithm
//! 1. For every point `i`, find its `k` nearest neighbours *other than
//!    itself* and compute `d_i`, the mean Euclidean distance to them.
//! 2. Compute the global mean `μ` and the sample standard deviation `σ`
//!    (divisor `n − 1`) of all `d_i`.
//! 3. Keep point `i` when `d_i ≤ μ + std_ratio · σ`; the others are outliers.
//!
//! Open3D's `remove_statistical_outlier` differs in one detail: it counts the
//! point itself as one of its `k` neighbours (distance 0). pointpipe follows
//! PCL.
//!
//! Complexity: `O(n · (log n + k))` with the k-d tree, parallel over points.
//! The global statistics are reduced in fixed-size chunks in index order, so
//! the result is bit-identical at any thread count.

use nalgebra::Point3;
use rayon::prelude::*;

use crate::PointCloud;
use crate::error::{Error, Result};
use crate::kdtree::{KdTree, Neighbor};

/// Parameters of statistical outlier removal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierConfig {
    /// Number of neighbours `k` (the point itself not counted). Default 8.
    pub k: usize,
    /// Multiplier of the standard deviation, dimensionless; may be negative
    /// (removes more). Default 2.0.
    pub std_ratio: f64,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            k: 8,
            std_ratio: 2.0,
        }
    }
}

impl OutlierConfig {
    /// Checks `k ≥ 1` and a finite `std_ratio`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::invalid("k", self.k, "must be at least 1"));
        }
        if !self.std_ratio.is_finite() {
            return Err(Error::invalid(
                "std_ratio",
                self.std_ratio,
                "must be finite",
            ));
        }
        Ok(())
    }
}

/// Points per chunk of the fixed-order reduction.
const REDUCE_CHUNK: usize = 4096;

/// The inlier mask of statistical outlier removal: `mask[i]` is true when
/// point `i` is kept. See the [module docs](self) for the algorithm.
///
/// # Parameters
/// - `points`: positions in metres, all finite.
/// - `config`: `k` and `std_ratio`.
///
/// # Returns
/// One flag per point. A cloud of fewer than two points keeps every point
/// (no point has a neighbour to measure).
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad config, [`Error::NonFinite`] for a
/// non-finite point.
///
/// # Example
/// ```
/// use nalgebra::Point3;
/// use pointpipe::filter::{statistical_outlier_mask, OutlierConfig};
/// let mut points: Vec<_> = (0..100).map(|i| Point3::new(f64::from(i % 10), f64::from(i / 10), 0.0)).collect();
/// points.push(Point3::new(100.0, 100.0, 100.0));
/// let mask = statistical_outlier_mask(&points, &OutlierConfig { k: 4, std_ratio: 1.0 }).unwrap();
/// assert!(!mask[100]);
/// assert!(mask[..100].iter().all(|&keep| keep));
/// ```
pub fn statistical_outlier_mask(
    points: &[Point3<f64>],
    config: &OutlierConfig,
) -> Result<Vec<bool>> {
    config.validate()?;
    if points.len() < 2 {
        return Ok(vec![true; points.len()]);
    }
    let tree = KdTree::build(points)?;
    let mean_distances = mean_neighbor_distances(&tree, points, config.k);
    let threshold = outlier_threshold(&mean_distances, config.std_ratio);
    Ok(mean_distances.iter().map(|&d| d <= threshold).collect())
}

/// Removes the statistical outliers of `cloud` (every attribute follows);
/// returns the number of points removed. See [`statistical_outlier_mask`].
///
/// # Errors
/// As [`statistical_outlier_mask`].
pub fn remove_statistical_outliers(
    cloud: &mut PointCloud,
    config: &OutlierConfig,
) -> Result<usize> {
    let mask = statistical_outlier_mask(&cloud.points, config)?;
    Ok(cloud.retain(|i, _| mask[i]))
}

/// `d_i`: mean distance (m) of each point to its `k` nearest other points.
fn mean_neighbor_distances(tree: &KdTree, points: &[Point3<f64>], k: usize) -> Vec<f64> {
    points
        .par_iter()
        .enumerate()
        .map_init(Vec::<Neighbor>::new, |neighbors, (i, p)| {
            tree.knn(p, k + 1, neighbors);
            mean_distance_excluding(neighbors, i, k)
        })
        .collect()
}

/// Mean distance over the first `k` neighbours that are not `self_index`.
fn mean_distance_excluding(neighbors: &[Neighbor], self_index: usize, k: usize) -> f64 {
    let (sum, count) = neighbors
        .iter()
        .filter(|n| n.index != self_index)
        .take(k)
        .fold((0.0, 0usize), |(sum, count), n| {
            (sum + n.distance_sq.sqrt(), count + 1)
        });
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// `μ + std_ratio · σ` of the mean distances (sample standard deviation),
/// reduced over fixed-size chunks in index order.
fn outlier_threshold(mean_distances: &[f64], std_ratio: f64) -> f64 {
    let zero = (0.0_f64, 0.0_f64);
    let combine = |a: (f64, f64), b: (f64, f64)| (a.0 + b.0, a.1 + b.1);
    let partials: Vec<(f64, f64)> = mean_distances
        .par_chunks(REDUCE_CHUNK)
        .map(|chunk| chunk.iter().fold(zero, |acc, &d| combine(acc, (d, d * d))))
        .collect();
    let (sum, sum_sq) = partials.into_iter().fold(zero, combine);
    let n = mean_distances.len() as f64;
    let mean = sum / n;
    let variance = ((sum_sq - sum * sum / n) / (n - 1.0)).max(0.0);
    mean + std_ratio * variance.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force reference: all pairwise distances, sorted per point.
    fn reference_mask(points: &[Point3<f64>], k: usize, std_ratio: f64) -> Vec<bool> {
        let d: Vec<f64> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut dist: Vec<f64> = points
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, q)| (p - q).norm())
                    .collect();
                dist.sort_by(f64::total_cmp);
                dist.truncate(k);
                dist.iter().sum::<f64>() / dist.len() as f64
            })
            .collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let t = mean + std_ratio * var.sqrt();
        d.iter().map(|&x| x <= t).collect()
    }

    fn scattered(n: usize, seed: u64) -> Vec<Point3<f64>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let s = if i % 37 == 0 { 20.0 } else { 2.0 };
                Point3::new(
                    rng.random_range(-s..s),
                    rng.random_range(-s..s),
                    rng.random_range(-0.1..0.1),
                )
            })
            .collect()
    }

    #[test]
    fn equals_brute_force() {
        let points = scattered(600, 7);
        for (k, std_ratio) in [(1, 1.0), (8, 2.0), (20, 0.5), (5, -0.5)] {
            let mask = statistical_outlier_mask(&points, &OutlierConfig { k, std_ratio }).unwrap();
            assert_eq!(mask, reference_mask(&points, k, std_ratio), "k={k}");
            assert!(mask.iter().any(|&m| !m));
        }
    }

    #[test]
    fn deterministic_across_thread_counts() {
        let points = scattered(20_000, 3);
        let config = OutlierConfig::default();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| statistical_outlier_mask(&points, &config).unwrap())
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn duplicates_and_tiny_clouds() {
        assert!(
            statistical_outlier_mask(&[], &OutlierConfig::default())
                .unwrap()
                .is_empty()
        );
        let one = [Point3::origin()];
        assert_eq!(
            statistical_outlier_mask(&one, &OutlierConfig::default()).unwrap(),
            [true]
        );
        // Identical points: every mean distance is 0, σ = 0, all kept.
        let same = vec![Point3::new(1.0, 2.0, 3.0); 10];
        assert!(
            statistical_outlier_mask(&same, &OutlierConfig::default())
                .unwrap()
                .iter()
                .all(|&m| m)
        );
    }

    #[test]
    fn rejects_bad_config() {
        let p = [Point3::origin(), Point3::new(1.0, 0.0, 0.0)];
        assert!(
            statistical_outlier_mask(
                &p,
                &OutlierConfig {
                    k: 0,
                    std_ratio: 1.0
                }
            )
            .is_err()
        );
        assert!(
            statistical_outlier_mask(
                &p,
                &OutlierConfig {
                    k: 3,
                    std_ratio: f64::NAN
                }
            )
            .is_err()
        );
    }

    #[test]
    fn removes_with_attributes() {
        let mut points = scattered(200, 1);
        points.push(Point3::new(1e3, 1e3, 1e3));
        let mut cloud = PointCloud::from_points(points);
        cloud.intensity = Some((0..201).map(|i| i as f32).collect());
        let removed = remove_statistical_outliers(&mut cloud, &OutlierConfig::default()).unwrap();
        assert!(removed >= 1);
        assert!(cloud.check_lengths());
        assert!(!cloud.points.contains(&Point3::new(1e3, 1e3, 1e3)));
    }
}
