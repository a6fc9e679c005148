//! Degeneracy of a registration from the eigenvalues of its information matrix.
//!
//! A direction `δ` of the 6-D pose update is constrained by the data in
//! proportion to `δᵀ H δ` (Zhang, Kaess & Singh 2016, "On degeneracy of
//! optimization-based state estimation problems"). Rotations (rad) and
//! translations (m) have different units, so before the eigen-decomposition
//! the rotational block is expressed as arc length at the scene's radius of
//! gyration `L` (RMS distance of the matched source points from their
//! centroid): `H' = D H D` with `D = diag(1/L, 1/L, 1/L, 1, 1, 1)`. Then the
//! eigenvalues of `H'` share units (m⁻² · weight) and their ratio is
//! meaningful.

use nalgebra::{Matrix6, SymmetricEigen, Vector6};

/// Outcome of [`analyse_degeneracy`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Degeneracy {
    /// Smallest over largest eigenvalue of the normalised information
    /// matrix, in `[0, 1]` (0 when it is zero or not finite).
    pub ratio: f64,
    /// Unit 6-vector (rx, ry, rz, tx, ty, tz) of the least constrained
    /// update direction, mapped back to radians and metres; its largest
    /// component is positive.
    pub weakest_direction: Vector6<f64>,
}

/// Analyses `information` (order rx, ry, rz, tx, ty, tz) with the rotational
/// block scaled by `length_scale` metres (non-finite or non-positive → 1 m).
pub(crate) fn analyse_degeneracy(information: &Matrix6<f64>, length_scale: f64) -> Degeneracy {
    let inverse_length = if length_scale.is_finite() && length_scale > 0.0 {
        1.0 / length_scale
    } else {
        1.0
    };
    let scale = Vector6::new(
        inverse_length,
        inverse_length,
        inverse_length,
        1.0,
        1.0,
        1.0,
    );
    let normalised = Matrix6::from_fn(|i, j| information[(i, j)] * scale[i] * scale[j]);
    if !normalised.iter().all(|v| v.is_finite()) {
        return Degeneracy {
            ratio: 0.0,
            weakest_direction: Vector6::zeros(),
        };
    }
    let eigen = SymmetricEigen::new(normalised);
    let (mut weakest, mut largest) = (0, 0);
    for i in 1..6 {
        if eigen.eigenvalues[i] < eigen.eigenvalues[weakest] {
            weakest = i;
        }
        if eigen.eigenvalues[i] > eigen.eigenvalues[largest] {
            largest = i;
        }
    }
    let max = eigen.eigenvalues[largest];
    let ratio = if max > 0.0 {
        (eigen.eigenvalues[weakest].max(0.0) / max).min(1.0)
    } else {
        0.0
    };
    let direction = eigen.eigenvectors.column(weakest).component_mul(&scale);
    let norm = direction.norm();
    let mut weakest_direction = if norm > 0.0 {
        direction / norm
    } else {
        Vector6::zeros()
    };
    let dominant = weakest_direction.iamax();
    if weakest_direction[dominant] < 0.0 {
        weakest_direction = -weakest_direction;
    }
    Degeneracy {
        ratio,
        weakest_direction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_not_degenerate() {
        let d = analyse_degeneracy(&Matrix6::identity(), 1.0);
        assert!((d.ratio - 1.0).abs() < 1e-12);
        assert!((d.weakest_direction.norm() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn missing_direction_is_found() {
        let h = Matrix6::from_diagonal(&Vector6::new(50.0, 40.0, 30.0, 0.0, 2.0, 3.0));
        let d = analyse_degeneracy(&h, 5.0);
        assert_eq!(d.ratio, 0.0);
        assert!((d.weakest_direction - Vector6::new(0.0, 0.0, 0.0, 1.0, 0.0, 0.0)).norm() < 1e-12);
    }

    #[test]
    fn zero_and_nan_matrices_are_degenerate() {
        assert_eq!(analyse_degeneracy(&Matrix6::zeros(), 1.0).ratio, 0.0);
        assert_eq!(
            analyse_degeneracy(&Matrix6::from_element(f64::NAN), 1.0).ratio,
            0.0
        );
    }
}
