//! Robust kernels (M-estimators) for iteratively reweighted least squares.
//!
//! Each kernel turns a residual `r` (metres) and a scale `c` (metres) into an
//! IRLS weight `w(r) = ρ'(r) / r` in `[0, 1]`, with `w(0) = 1`. Within one
//! Gauss–Newton iteration the weights are held fixed and the weighted normal
//! equations `Σ w·JᵀJ δ = −Σ w·Jᵀr` are solved (Zhang 1997, "Parameter
//! estimation techniques: a tutorial with application to conic fitting",
//! table 1; Babin et al. 2019, "Analysis of robust functions for registration
//! algorithms").

/// A robust kernel: how much a correspondence with residual `r` counts.
///
/// `c` is [`IcpConfig::kernel_scale`](super::IcpConfig::kernel_scale) in
/// metres. Point-to-plane uses the signed plane distance as `r`,
/// point-to-point the Euclidean distance.
///
/// | kernel | weight `w(r)` |
/// |---|---|
/// | `None` | `1` (plain least squares) |
/// | `Huber` | `1` for `|r| ≤ c`, else `c / |r|` |
/// | `Cauchy` | `1 / (1 + (r/c)²)` |
/// | `GemanMcClure` | `(c² / (c² + r²))²` |
/// | `Tukey` | `(1 − (r/c)²)²` for `|r| ≤ c`, else `0` |
///
/// Default: `Huber` (convex, so it keeps the basin of convergence of least
/// squares while bounding the pull of outliers; the redescending kernels
/// `GemanMcClure` and `Tukey` reject outliers harder but need a good start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RobustKernel {
    /// Plain least squares, every inlier weighs 1.
    None,
    /// Huber: quadratic within `c`, linear outside.
    #[default]
    Huber,
    /// Cauchy (Lorentzian): `ρ(r) = c²/2 · ln(1 + (r/c)²)`.
    Cauchy,
    /// Geman–McClure: `ρ(r) = c²/2 · r² / (c² + r²)`.
    GemanMcClure,
    /// Tukey biweight: zero weight beyond `c`.
    Tukey,
}

impl RobustKernel {
    /// The IRLS weight of a residual `residual` (m) at scale `scale` (m, > 0).
    ///
    /// Returns a value in `[0, 1]`; `1` at a zero residual.
    ///
    /// ```
    /// use pointpipe::icp::RobustKernel;
    /// assert_eq!(RobustKernel::Huber.weight(0.05, 0.1), 1.0);
    /// assert_eq!(RobustKernel::Huber.weight(0.4, 0.1), 0.25);
    /// assert_eq!(RobustKernel::Tukey.weight(0.2, 0.1), 0.0);
    /// ```
    #[inline]
    pub fn weight(self, residual: f64, scale: f64) -> f64 {
        let abs = residual.abs();
        match self {
            RobustKernel::None => 1.0,
            RobustKernel::Huber => {
                if abs <= scale {
                    1.0
                } else {
                    scale / abs
                }
            }
            RobustKernel::Cauchy => {
                let u = residual / scale;
                1.0 / (1.0 + u * u)
            }
            RobustKernel::GemanMcClure => {
                let c_sq = scale * scale;
                let d = c_sq / (c_sq + residual * residual);
                d * d
            }
            RobustKernel::Tukey => {
                if abs <= scale {
                    let u = residual / scale;
                    let d = 1.0 - u * u;
                    d * d
                } else {
                    0.0
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [RobustKernel; 5] = [
        RobustKernel::None,
        RobustKernel::Huber,
        RobustKernel::Cauchy,
        RobustKernel::GemanMcClure,
        RobustKernel::Tukey,
    ];

    #[test]
    fn weights_are_one_at_zero_and_in_unit_interval() {
        for k in ALL {
            assert_eq!(k.weight(0.0, 0.1), 1.0, "{k:?}");
            for i in 0..200 {
                let r = (i as f64 - 100.0) * 0.01;
                let w = k.weight(r, 0.1);
                assert!((0.0..=1.0).contains(&w), "{k:?} w({r}) = {w}");
            }
        }
    }

    #[test]
    fn weights_are_symmetric_and_non_increasing() {
        for k in ALL {
            let mut previous = 1.0;
            for i in 0..100 {
                let r = i as f64 * 0.01;
                let w = k.weight(r, 0.1);
                assert_eq!(w, k.weight(-r, 0.1), "{k:?}");
                assert!(w <= previous, "{k:?} not monotone at {r}");
                previous = w;
            }
        }
    }

    #[test]
    fn known_values() {
        assert!((RobustKernel::Cauchy.weight(0.1, 0.1) - 0.5).abs() < 1e-15);
        assert!((RobustKernel::GemanMcClure.weight(0.1, 0.1) - 0.25).abs() < 1e-15);
        assert!((RobustKernel::Tukey.weight(0.05, 0.1) - 0.5625).abs() < 1e-15);
        assert_eq!(RobustKernel::None.weight(1e9, 0.1), 1.0);
    }
}
