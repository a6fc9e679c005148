//! Point-to-point closed-form step (Kabsch / Umeyama without scale).
//!
//! Minimises `Σ w |R·q + t − p|²` over rotations `R` and translations `t`
//! in closed form (Arun, Huang & Blostein 1987, "Least-squares fitting of two
//! 3-D point sets"; Umeyama 1991, eq. 39–42 with the reflection fix):
//!
//! ```text
//! q̄ = Σ w q / Σ w,   p̄ = Σ w p / Σ w
//! M = Σ w (q − q̄)(p − p̄)ᵀ = U Σ Vᵀ
//! R = V · diag(1, 1, det(V Uᵀ)) · Uᵀ,   t = p̄ − R q̄
//! ```

use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use rayon::prelude::*;

use super::RobustKernel;
use super::associate::Correspondence;
use super::point_to_plane::{LinearSystem, REDUCTION_CHUNK};
use crate::error::{Error, Result};

/// Weighted first moments of the matched source and target points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Centroids {
    weight_sum: f64,
    source_sum: Vector3<f64>,
    target_sum: Vector3<f64>,
}

impl Centroids {
    /// The named zero of the reduction.
    fn zero() -> Self {
        Centroids {
            weight_sum: 0.0,
            source_sum: Vector3::zeros(),
            target_sum: Vector3::zeros(),
        }
    }

    /// The named combine of the reduction.
    fn combine(self, other: Self) -> Self {
        Centroids {
            weight_sum: self.weight_sum + other.weight_sum,
            source_sum: self.source_sum + other.source_sum,
            target_sum: self.target_sum + other.target_sum,
        }
    }
}

/// Weight of a correspondence: the kernel on its Euclidean distance.
#[inline]
fn weight_of(c: &Correspondence, kernel: RobustKernel, kernel_scale: f64) -> f64 {
    kernel.weight(c.distance_sq.sqrt(), kernel_scale)
}

/// Computes the closed-form rigid update `Δ` that maps the (already
/// transformed) source points of `correspondences` onto their targets in the
/// weighted least-squares sense. New `target_from_source = Δ · old`.
///
/// Both reductions (centroids, then the 3×3 cross-covariance about them) fold
/// fixed-size chunks in parallel and combine them in index order, so the
/// result is bit-identical at any thread count.
///
/// Errors with [`Error::Registration`] when all weights are zero or the SVD
/// fails.
pub(crate) fn solve_point_to_point(
    correspondences: &[Correspondence],
    kernel: RobustKernel,
    kernel_scale: f64,
) -> Result<Isometry3<f64>> {
    let centroids = correspondences
        .par_chunks(REDUCTION_CHUNK)
        .map(|chunk| {
            chunk.iter().fold(Centroids::zero(), |mut acc, c| {
                let w = weight_of(c, kernel, kernel_scale);
                acc.weight_sum += w;
                acc.source_sum += c.source.coords * w;
                acc.target_sum += c.target.coords * w;
                acc
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Centroids::zero(), Centroids::combine);
    if centroids.weight_sum <= 0.0 {
        return Err(Error::Registration {
            reason: "all point-to-point correspondences have zero weight".into(),
        });
    }
    let source_mean = centroids.source_sum / centroids.weight_sum;
    let target_mean = centroids.target_sum / centroids.weight_sum;

    let cross_covariance = correspondences
        .par_chunks(REDUCTION_CHUNK)
        .map(|chunk| {
            chunk
                .iter()
                .fold(Matrix3::zeros(), |mut acc: Matrix3<f64>, c| {
                    let w = weight_of(c, kernel, kernel_scale);
                    acc.ger(
                        w,
                        &(c.source.coords - source_mean),
                        &(c.target.coords - target_mean),
                        1.0,
                    );
                    acc
                })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Matrix3::zeros(), |a, b| a + b);

    let svd = cross_covariance.try_svd(true, true, f64::EPSILON, 100);
    let (Some(u), Some(v_t)) = svd.map(|s| (s.u, s.v_t)).unwrap_or((None, None)) else {
        return Err(Error::Registration {
            reason: "SVD of the point-to-point cross-covariance failed".into(),
        });
    };
    let v = v_t.transpose();
    let reflection = (v * u.transpose()).determinant().signum();
    let rotation_matrix =
        v * Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, reflection)) * u.transpose();
    let rotation =
        UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(rotation_matrix));
    let translation = target_mean - rotation * source_mean;
    if !translation.iter().all(|v| v.is_finite()) || !rotation.coords.iter().all(|v| v.is_finite())
    {
        return Err(Error::Registration {
            reason: "point-to-point update is not finite".into(),
        });
    }
    Ok(Isometry3::from_parts(
        Translation3::from(translation),
        rotation,
    ))
}

/// The point-to-point normal equations at the current estimate: each
/// correspondence contributes its three coordinate residuals `eₖᵀ(q − p)`
/// with Jacobian `[(q × eₖ)ᵀ eₖᵀ]`, weighted by the kernel on its distance.
/// Used for the information matrix of a point-to-point result.
pub(crate) fn build_point_to_point_system(
    correspondences: &[Correspondence],
    kernel: RobustKernel,
    kernel_scale: f64,
) -> LinearSystem {
    let accumulate = |mut system: LinearSystem, c: &Correspondence| {
        let w = weight_of(c, kernel, kernel_scale);
        let difference = c.source - c.target;
        for axis in 0..3 {
            let direction = Vector3::ith(axis, 1.0);
            system.add_plane_residual(&c.source, &direction, difference[axis], w);
        }
        system
    };
    correspondences
        .par_chunks(REDUCTION_CHUNK)
        .map(|chunk| chunk.iter().fold(LinearSystem::zero(), accumulate))
        .collect::<Vec<_>>()
        .into_iter()
        .fold(LinearSystem::zero(), LinearSystem::combine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Point3, Vector3};

    #[test]
    fn recovers_a_known_rigid_motion_exactly() {
        let truth = Isometry3::new(Vector3::new(0.3, -0.2, 0.1), Vector3::new(0.1, -0.2, 0.3));
        let cs: Vec<Correspondence> = (0..100)
            .map(|i| {
                let t = i as f64;
                let q = Point3::new(t.sin() * 3.0, (t * 0.7).cos() * 2.0, (t * 1.3).sin());
                let p = truth * q;
                Correspondence {
                    source: q,
                    target: p,
                    normal: Vector3::zeros(),
                    distance_sq: (p - q).norm_squared(),
                }
            })
            .collect();
        let update = solve_point_to_point(&cs, RobustKernel::None, 1.0).unwrap();
        assert!(
            (update.to_homogeneous() - truth.to_homogeneous())
                .abs()
                .max()
                < 1e-12
        );
    }

    #[test]
    fn zero_weights_are_an_error() {
        let c = Correspondence {
            source: Point3::origin(),
            target: Point3::new(1.0, 0.0, 0.0),
            normal: Vector3::zeros(),
            distance_sq: 1.0,
        };
        assert!(solve_point_to_point(&[c], RobustKernel::Tukey, 0.1).is_err());
    }
}
