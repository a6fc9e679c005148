//! Adaptive correspondence threshold from the recent model deviation
//! (Vizzo et al., "KISS-ICP: In Defense of Point-to-Point ICP", RA-L 2023, Sec. III-C).

use nalgebra::Isometry3;

/// Running estimate σ of how far the constant-velocity prediction is off.
///
/// For every frame, the deviation between the prediction and the registered
/// pose, `Δ = prediction⁻¹ · registered`, is turned into a point displacement
/// bound `δ = ‖t(Δ)‖ + 2·r_max·sin(θ(Δ)/2)` (metres; `θ` is the rotation angle
/// of `Δ`, `r_max` the maximum range). Deviations above `min_motion` (m) are
/// accumulated and σ = sqrt(mean δ²). The correspondence distance used for ICP
/// is `3σ` and the robust kernel scale `σ/3` (KISS-ICP, Eq. 7–9). Until a first
/// deviation is recorded σ is `initial_threshold`.
#[derive(Debug, Clone)]
pub struct AdaptiveThreshold {
    initial_threshold: f64,
    min_motion: f64,
    max_range: f64,
    sum_sq: f64,
    samples: usize,
}

impl AdaptiveThreshold {
    /// `initial_threshold` (m), `min_motion` (m) and `max_range` (m) as in
    /// [`super::OdometryConfig`].
    pub fn new(initial_threshold: f64, min_motion: f64, max_range: f64) -> Self {
        AdaptiveThreshold {
            initial_threshold,
            min_motion,
            max_range,
            sum_sq: 0.0,
            samples: 0,
        }
    }

    /// Records the deviation between a prediction and the registered pose.
    pub fn update(&mut self, model_deviation: &Isometry3<f64>) {
        let theta = model_deviation.rotation.angle();
        let delta_rot = 2.0 * self.max_range * (theta / 2.0).sin();
        let delta_trans = model_deviation.translation.vector.norm();
        let error = delta_trans + delta_rot;
        if error > self.min_motion {
            self.sum_sq += error * error;
            self.samples += 1;
        }
    }

    /// Sets the range `r_max` (metres) that turns rotation deviations into
    /// displacements, e.g. once the effective range of the data is known.
    pub fn set_max_range(&mut self, max_range: f64) {
        self.max_range = max_range;
    }

    /// Current σ in metres.
    pub fn sigma(&self) -> f64 {
        if self.samples == 0 {
            self.initial_threshold
        } else {
            (self.sum_sq / self.samples as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    #[test]
    fn sigma_starts_at_initial_and_ignores_small_motion() {
        let mut t = AdaptiveThreshold::new(2.0, 0.1, 100.0);
        assert_eq!(t.sigma(), 2.0);
        t.update(&Isometry3::translation(0.05, 0.0, 0.0));
        assert_eq!(t.sigma(), 2.0);
        t.update(&Isometry3::translation(0.3, 0.0, 0.0));
        assert!((t.sigma() - 0.3).abs() < 1e-12);
    }

    #[test]
    fn rotation_counts_as_displacement_at_max_range() {
        let mut t = AdaptiveThreshold::new(2.0, 0.1, 50.0);
        let angle: f64 = 0.01;
        t.update(&Isometry3::from_parts(
            Translation3::identity(),
            UnitQuaternion::from_euler_angles(0.0, 0.0, angle),
        ));
        let expected = 2.0 * 50.0 * (angle / 2.0).sin();
        assert!((t.sigma() - expected).abs() < 1e-9);
    }
}
