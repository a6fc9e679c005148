//! Point-to-plane Gauss–Newton step on SE(3).
//!
//! Residual of a correspondence (source point `q` already mapped by the
//! current estimate, target point `p` with unit normal `n`), Chen & Medioni
//! 1991, "Object modeling by registration of multiple range images", eq. 4:
//!
//! ```text
//! r = nᵀ (q − p)
//! ```
//!
//! Small-angle linearisation of a left update `q ↦ R(ω)·q + v` (Low 2004,
//! "Linear least-squares optimization for point-to-plane ICP surface
//! registration", TR04-004, eq. 6–10): `R(ω)·q ≈ q + ω × q`, so
//!
//! ```text
//! r(δ) ≈ r + (q × n)ᵀ ω + nᵀ v,   J = [ (q × n)ᵀ  nᵀ ]   (1×6, order rx ry rz tx ty tz)
//! ```
//!
//! With IRLS weights `w` the normal equations are `H δ = −g` with
//! `H = Σ w JᵀJ` (6×6) and `g = Σ w Jᵀ r`.

use nalgebra::{
    Cholesky, Isometry3, Matrix6, Point3, Translation3, UnitQuaternion, Vector3, Vector6,
};
use rayon::prelude::*;

use super::RobustKernel;
use super::associate::Correspondence;
use crate::error::{Error, Result};

/// Number of correspondences summed serially into one partial system. The
/// partial sums are then added in chunk order, so the result does not depend
/// on how rayon splits the work (bit-identical at any thread count).
pub(crate) const REDUCTION_CHUNK: usize = 512;

/// The weighted normal equations `H δ = −g` of a set of residuals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinearSystem {
    /// `H = Σ w JᵀJ`, order (rx, ry, rz, tx, ty, tz).
    pub hessian: Matrix6<f64>,
    /// `g = Σ w Jᵀ r`.
    pub gradient: Vector6<f64>,
    /// `Σ w r²`, m².
    pub weighted_sq_error: f64,
}

impl LinearSystem {
    /// The named zero of the reduction.
    pub(super) fn zero() -> Self {
        LinearSystem {
            hessian: Matrix6::zeros(),
            gradient: Vector6::zeros(),
            weighted_sq_error: 0.0,
        }
    }

    /// The named combine of the reduction: the sum of two partial systems.
    pub(super) fn combine(self, other: Self) -> Self {
        LinearSystem {
            hessian: self.hessian + other.hessian,
            gradient: self.gradient + other.gradient,
            weighted_sq_error: self.weighted_sq_error + other.weighted_sq_error,
        }
    }

    /// Adds one plane residual `r = nᵀ(q − p)` with weight `w`.
    #[inline]
    pub(super) fn add_plane_residual(
        &mut self,
        q: &Point3<f64>,
        normal: &Vector3<f64>,
        residual: f64,
        weight: f64,
    ) {
        let rotational = q.coords.cross(normal);
        let jacobian = Vector6::new(
            rotational.x,
            rotational.y,
            rotational.z,
            normal.x,
            normal.y,
            normal.z,
        );
        let weighted = jacobian * weight;
        self.hessian.ger(1.0, &weighted, &jacobian, 1.0);
        self.gradient += weighted * residual;
        self.weighted_sq_error += weight * residual * residual;
    }
}

/// Sums the point-to-plane normal equations over `correspondences` with IRLS
/// weights `kernel.weight(r, kernel_scale)`.
///
/// Fixed-size chunks are folded in parallel from [`LinearSystem::zero`] and
/// the chunk sums combined with [`LinearSystem::combine`] in index order,
/// which makes the sum deterministic.
pub(crate) fn build_linear_system(
    correspondences: &[Correspondence],
    kernel: RobustKernel,
    kernel_scale: f64,
) -> LinearSystem {
    let accumulate = |mut system: LinearSystem, c: &Correspondence| {
        let residual = c.normal.dot(&(c.source - c.target));
        let weight = kernel.weight(residual, kernel_scale);
        system.add_plane_residual(&c.source, &c.normal, residual, weight);
        system
    };
    correspondences
        .par_chunks(REDUCTION_CHUNK)
        .map(|chunk| chunk.iter().fold(LinearSystem::zero(), accumulate))
        .collect::<Vec<_>>()
        .into_iter()
        .fold(LinearSystem::zero(), LinearSystem::combine)
}

/// Relative Levenberg damping added to the diagonal before the Cholesky
/// factorisation: `λ = 1e-9 · trace(H) / 6`. It only matters for directions
/// that the data do not constrain at all (a corridor), where it keeps the
/// update zero instead of undefined.
const RELATIVE_DAMPING: f64 = 1e-9;

/// Solves `(H + λI) δ = −g` by Cholesky and returns the update as a left
/// multiplicative pose `Δ` (new `target_from_source = Δ · old`), with
/// `Δ(q) = R(ω)·q + v`, `δ = (ω, v)`.
///
/// Errors with [`Error::Registration`] when `H` is not positive definite even
/// after damping (e.g. no valid residuals) or the update is not finite.
pub(crate) fn solve_linear_system(system: &LinearSystem) -> Result<Isometry3<f64>> {
    let damping = RELATIVE_DAMPING * system.hessian.trace() / 6.0;
    let damped = system.hessian + Matrix6::identity() * damping;
    let cholesky = Cholesky::new(damped).ok_or_else(|| Error::Registration {
        reason: "point-to-plane normal equations are not positive definite".into(),
    })?;
    let delta = cholesky.solve(&(-system.gradient));
    if !delta.iter().all(|v| v.is_finite()) {
        return Err(Error::Registration {
            reason: "point-to-plane update is not finite".into(),
        });
    }
    Ok(pose_from_update(&delta))
}

/// `δ = (ω, v)` ↦ the pose `q ↦ R(ω)·q + v` (`R(ω)` the rotation by angle
/// `|ω|` about `ω`, i.e. the SO(3) exponential).
pub(crate) fn pose_from_update(delta: &Vector6<f64>) -> Isometry3<f64> {
    let rotation = UnitQuaternion::from_scaled_axis(Vector3::new(delta[0], delta[1], delta[2]));
    Isometry3::from_parts(Translation3::new(delta[3], delta[4], delta[5]), rotation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_is_independent_of_thread_count() {
        let cs: Vec<Correspondence> = (0..5000)
            .map(|i| {
                let t = i as f64 * 0.37;
                Correspondence {
                    source: Point3::new(t.sin() * 10.0, t.cos() * 7.0, (t * 0.1).sin()),
                    target: Point3::new(t.sin() * 10.0 + 0.01, t.cos() * 7.0, 0.0),
                    normal: Vector3::new(t.cos(), t.sin(), 1.0).normalize(),
                    distance_sq: 0.0,
                }
            })
            .collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| build_linear_system(&cs, RobustKernel::Huber, 0.1))
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(one, two);
        assert!(one.hessian.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let q = Point3::new(1.0, -2.0, 0.5);
        let p = Point3::new(0.9, -2.1, 0.3);
        let n = Vector3::new(0.3, 0.4, 0.866).normalize();
        let residual = |delta: &Vector6<f64>| n.dot(&(pose_from_update(delta) * q - p));
        let mut system = LinearSystem::zero();
        system.add_plane_residual(&q, &n, residual(&Vector6::zeros()), 1.0);
        let r0 = residual(&Vector6::zeros());
        for k in 0..6 {
            let mut d = Vector6::zeros();
            d[k] = 1e-7;
            let numeric = (residual(&d) - r0) / 1e-7;
            // g = J r, so J_k = g_k / r.
            let analytic = system.gradient[k] / r0;
            assert!(
                (numeric - analytic).abs() < 1e-6,
                "{k}: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn singular_system_gives_zero_update_along_null_direction() {
        // Only normals along z: tx, ty, rz unconstrained.
        let mut system = LinearSystem::zero();
        for (i, (x, y)) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
            .iter()
            .enumerate()
        {
            system.add_plane_residual(
                &Point3::new(*x, *y, 0.0),
                &Vector3::z(),
                0.01 * i as f64,
                1.0,
            );
        }
        let update = solve_linear_system(&system).unwrap();
        assert!(update.translation.vector.x.abs() < 1e-12);
        assert!(update.translation.vector.y.abs() < 1e-12);
    }

    #[test]
    fn empty_system_is_an_error() {
        assert!(solve_linear_system(&LinearSystem::zero()).is_err());
    }
}
