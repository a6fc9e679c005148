//! Trajectory evaluation: ATE, RPE and the KITTI relative error.
//!
//! The three metrics that robotics papers and tools report, computed as the
//! reference implementations do, so that figures from pointpipe can be put
//! next to figures from `evo` and the KITTI odometry devkit:
//!
//! | metric | function | reference implementation |
//! |---|---|---|
//! | ATE (absolute trajectory error) | [`ate`] | `evo_ape --align` (translation part) |
//! | RPE (relative pose error) | [`rpe`] | `evo_rpe --delta d --delta_unit f --all_pairs` |
//! | KITTI relative error | [`kitti_relative_error`] | `evaluate_odometry.cpp` of the KITTI devkit |
//!
//! Trajectories are slices of `world_from_sensor` poses
//! ([`Isometry3<f64>`], metres), one per frame, the estimated and the reference
//! (ground truth) trajectories associated by index (pose `i` of both belongs to
//! the same frame).
//!
//! # Units
//! Translations in metres, angles in degrees in the results (radians inside).
//! The KITTI rotation error is in **degrees per 100 m**: the devkit's
//! `stats.txt` holds radians per metre, which is multiplied by
//! `180/π · 100`; a factor-of-100 slip here has happened in public tools, and
//! the unit test `kitti_units_known_answer` pins the conversion with a
//! hand-computed case.
//!
//! # Example
//! ```
//! use nalgebra::Isometry3;
//! use pointpipe::eval::evaluate;
//!
//! // A reference drive along x, and an estimate whose heading is 0.01 rad off:
//! // every position rotated about the start.
//! let reference: Vec<Isometry3<f64>> = (0..20)
//!     .map(|i| Isometry3::translation(i as f64, 0.0, 0.0))
//!     .collect();
//! let a = 0.01f64;
//! let estimated: Vec<Isometry3<f64>> = (0..20)
//!     .map(|i| Isometry3::translation(i as f64 * a.cos(), i as f64 * a.sin(), 0.0))
//!     .collect();
//! let e = evaluate(&estimated, &reference)?;
//! // Each 1 m step is off by the chord 2 sin(a/2).
//! assert!((e.rpe.trans_rmse_m - 2.0 * (a / 2.0).sin()).abs() < 1e-12);
//! assert!(e.ate.rmse_m < 1e-9); // the rigid alignment undoes the rotation
//! assert!(e.kitti.is_none()); // 19 m < 100 m
//! # Ok::<(), pointpipe::Error>(())
//! ```

use nalgebra::{Isometry3, Matrix3, Point3, Rotation3, Translation3, UnitQuaternion, Vector3};

use crate::error::{Error, Result};

/// Segment lengths of the KITTI odometry benchmark, metres.
pub const KITTI_SEGMENT_LENGTHS_M: [f64; 8] =
    [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0];

/// A KITTI segment starts every this many frames (one second at 10 Hz).
pub const KITTI_STEP_FRAMES: usize = 10;

/// Absolute trajectory error: position errors after a rigid alignment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AteResult {
    /// Root mean square of the position errors, metres.
    pub rmse_m: f64,
    /// Mean position error, metres.
    pub mean_m: f64,
    /// Median position error (mean of the two middle values for an even
    /// count, as numpy), metres.
    pub median_m: f64,
    /// Largest position error, metres.
    pub max_m: f64,
    /// The alignment applied to the estimate before measuring
    /// ([`align_umeyama`] of the positions).
    pub reference_from_estimated: Isometry3<f64>,
}

/// Relative pose error between frames `i` and `i + delta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RpeResult {
    /// Root mean square of the translation errors, metres.
    pub trans_rmse_m: f64,
    /// Root mean square of the rotation errors, degrees.
    pub rot_rmse_deg: f64,
    /// Mean translation error, metres.
    pub trans_mean_m: f64,
    /// Mean rotation error, degrees.
    pub rot_mean_deg: f64,
    /// Number of frame pairs evaluated (`n - delta`).
    pub pairs: usize,
}

/// KITTI odometry relative error, averaged over all segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KittiError {
    /// Average translational error, percent of the segment length.
    pub t_err_pct: f64,
    /// Average rotational error, degrees per 100 m.
    pub r_err_deg_per_100m: f64,
    /// Number of (start frame, length) segments averaged.
    pub segments: usize,
}

/// All metrics of one estimated trajectory against its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Absolute trajectory error after Umeyama alignment.
    pub ate: AteResult,
    /// Relative pose error between consecutive frames (delta 1).
    pub rpe: RpeResult,
    /// KITTI relative error, `None` when the reference is not longer than 100 m.
    pub kitti: Option<KittiError>,
}

/// Least-squares rigid transform mapping `estimated` points onto `reference`
/// points (Umeyama 1991, "Least-squares estimation of transformation
/// parameters between two point patterns", without scale).
///
/// # Parameters
/// - `estimated`, `reference`: corresponding points (index `i` ↔ index `i`),
///   same length, at least 3, all finite, metres.
///
/// # Returns
/// `reference_from_estimated`: the `T = (R, t)` minimising
/// `Σ |reference_i − (R · estimated_i + t)|²`.
///
/// # Algorithm
/// 1. Centroids `μ_e`, `μ_r`.
/// 2. Cross-covariance `Σ = 1/n Σ (r_i − μ_r)(e_i − μ_e)ᵀ` (Umeyama eq. 38).
/// 3. SVD `Σ = U D Vᵀ`; `S = diag(1, 1, −1)` when `det U · det V < 0`, else `I`
///    (eq. 43, as evo does, which also covers a rank-deficient `Σ`).
/// 4. `R = U S Vᵀ` (eq. 40), `t = μ_r − R μ_e` (eq. 41).
///
/// O(n). For collinear points the rotation about the common line is not
/// determined; the aligned points (and hence the ATE) are the same for every
/// choice, and the SVD picks one.
///
/// # Errors
/// [`Error::TrajectoryLength`] for different lengths or fewer than 3 points;
/// [`Error::NonFinite`] for a NaN/Inf coordinate.
///
/// # Example
/// ```
/// use nalgebra::{Isometry3, Point3, Vector3};
/// let truth = Isometry3::new(Vector3::new(1.0, 2.0, 3.0), Vector3::new(0.1, -0.2, 0.3));
/// let est = vec![Point3::new(0.0, 0.0, 0.0), Point3::new(1.0, 0.0, 0.0), Point3::new(0.0, 2.0, 0.5)];
/// let reference: Vec<_> = est.iter().map(|p| truth * p).collect();
/// let t = pointpipe::eval::align_umeyama(&est, &reference)?;
/// assert!((t.to_homogeneous() - truth.to_homogeneous()).norm() < 1e-9);
/// # Ok::<(), pointpipe::Error>(())
/// ```
pub fn align_umeyama(
    estimated: &[Point3<f64>],
    reference: &[Point3<f64>],
) -> Result<Isometry3<f64>> {
    check_lengths(estimated.len(), reference.len(), 3)?;
    check_finite_points(estimated, "estimated positions")?;
    check_finite_points(reference, "reference positions")?;

    let n = estimated.len() as f64;
    let mean_e = estimated.iter().map(|p| p.coords).sum::<Vector3<f64>>() / n;
    let mean_r = reference.iter().map(|p| p.coords).sum::<Vector3<f64>>() / n;
    let covariance = estimated
        .iter()
        .zip(reference)
        .map(|(e, r)| (r.coords - mean_r) * (e.coords - mean_e).transpose())
        .sum::<Matrix3<f64>>()
        / n;

    let svd = covariance.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(Error::Registration {
            reason: "Umeyama alignment: SVD of the cross-covariance did not converge".into(),
        });
    };
    let mut s = Matrix3::identity();
    if u.determinant() * v_t.determinant() < 0.0 {
        // Singular values are sorted in descending order: flip the smallest.
        s[(2, 2)] = -1.0;
    }
    let rotation = Rotation3::from_matrix_unchecked(u * s * v_t);
    let translation = mean_r - rotation * mean_e;
    Ok(Isometry3::from_parts(
        Translation3::from(translation),
        UnitQuaternion::from_rotation_matrix(&rotation),
    ))
}

/// Absolute trajectory error (ATE) of the positions after a least-squares
/// rigid alignment, as `evo_ape <ref> <est> --align` (translation part).
///
/// # Parameters
/// `estimated`, `reference`: `world_from_sensor` poses, associated by index,
/// same length ≥ 3, finite.
///
/// # Algorithm
/// 1. `reference_from_estimated` = [`align_umeyama`] of the positions.
/// 2. `e_i = |p_ref,i − reference_from_estimated · p_est,i|`.
/// 3. RMSE, mean, median, max of `e_i`. O(n log n) (median).
///
/// # Errors
/// As [`align_umeyama`]; [`Error::NonFinite`] also for a non-finite rotation.
pub fn ate(estimated: &[Isometry3<f64>], reference: &[Isometry3<f64>]) -> Result<AteResult> {
    check_lengths(estimated.len(), reference.len(), 3)?;
    check_finite_poses(estimated, "estimated trajectory")?;
    check_finite_poses(reference, "reference trajectory")?;

    let est_positions = positions(estimated);
    let ref_positions = positions(reference);
    let reference_from_estimated = align_umeyama(&est_positions, &ref_positions)?;
    let mut errors: Vec<f64> = est_positions
        .iter()
        .zip(&ref_positions)
        .map(|(e, r)| (r - reference_from_estimated * e).norm())
        .collect();
    let stats = Stats::of(&mut errors);
    Ok(AteResult {
        rmse_m: stats.rmse,
        mean_m: stats.mean,
        median_m: stats.median,
        max_m: stats.max,
        reference_from_estimated,
    })
}

/// Relative pose error (RPE) between frames `i` and `i + delta`, for every
/// `i` in `0..n − delta` (evo's RPE with `--delta_unit f --all_pairs`; for
/// `delta = 1` identical to evo's default).
///
/// # Parameters
/// - `estimated` (`P`), `reference` (`Q`): `world_from_sensor` poses, same
///   length ≥ 2, finite.
/// - `delta`: frame offset, ≥ 1 and < n.
///
/// # Algorithm
/// For each pair, `E_i = (Q_i⁻¹ Q_{i+δ})⁻¹ (P_i⁻¹ P_{i+δ})` (evo,
/// Sturm et al. 2012 eq. 1); translation error `|t(E_i)|` (m), rotation error
/// `angle(E_i)` (deg). RMSE and mean of each. O(n). RPE does not depend on a
/// global alignment, so none is applied.
///
/// # Errors
/// [`Error::TrajectoryLength`] for different lengths or fewer than 2 poses;
/// [`Error::InvalidParameter`] for `delta` of 0 or ≥ n; [`Error::NonFinite`].
pub fn rpe(
    estimated: &[Isometry3<f64>],
    reference: &[Isometry3<f64>],
    delta: usize,
) -> Result<RpeResult> {
    check_lengths(estimated.len(), reference.len(), 2)?;
    check_finite_poses(estimated, "estimated trajectory")?;
    check_finite_poses(reference, "reference trajectory")?;
    let n = estimated.len();
    if delta == 0 || delta >= n {
        return Err(Error::invalid(
            "delta",
            delta,
            format!("must be in 1..{n} (the trajectory has {n} poses)"),
        ));
    }

    let (mut trans, mut rot): (Vec<f64>, Vec<f64>) = (0..n - delta)
        .map(|i| {
            let error = relative_error(
                &estimated[i],
                &estimated[i + delta],
                &reference[i],
                &reference[i + delta],
            );
            (
                error.translation.vector.norm(),
                error.rotation.angle().to_degrees(),
            )
        })
        .unzip();
    let trans_stats = Stats::of(&mut trans);
    let rot_stats = Stats::of(&mut rot);
    Ok(RpeResult {
        trans_rmse_m: trans_stats.rmse,
        rot_rmse_deg: rot_stats.rmse,
        trans_mean_m: trans_stats.mean,
        rot_mean_deg: rot_stats.mean,
        pairs: n - delta,
    })
}

/// KITTI odometry relative error (Geiger et al. 2012; devkit
/// `evaluate_odometry.cpp`, `calcSequenceErrors`).
///
/// # Parameters
/// `estimated`, `reference`: `world_from_sensor` poses, same length ≥ 2,
/// finite; frames are assumed to be 10 Hz only in that a segment starts every
/// [`KITTI_STEP_FRAMES`] frames.
///
/// # Returns
/// `None` when no segment fits, i.e. the reference path is not longer than
/// 100 m; else the average over all segments.
///
/// # Algorithm
/// 1. Cumulative path length `d_i` of the *reference* positions.
/// 2. For every first frame `f = 0, 10, 20, ...` and every length
///    `L ∈ {100, 200, ..., 800}` m: the last frame `l` is the first with
///    `d_l > d_f + L`; skip the segment when there is none.
/// 3. `E = (P_f⁻¹ P_l)⁻¹ (Q_f⁻¹ Q_l)` (devkit order: estimated `P`, reference `Q`);
///    `t_err = |t(E)| / L`, `r_err = angle(E) / L` (rad/m).
/// 4. Average `t_err` and `r_err` over all segments (as the devkit's
///    `stats.txt`) and convert: `t_err_pct = 100 · t_err`,
///    `r_err_deg_per_100m = r_err · 180/π · 100`.
///
/// O(n · 8 + n²/10) worst case for the segment search (linear scans as the
/// devkit; n is at most a few thousand frames).
///
/// # Errors
/// [`Error::TrajectoryLength`] for different lengths or fewer than 2 poses;
/// [`Error::NonFinite`].
pub fn kitti_relative_error(
    estimated: &[Isometry3<f64>],
    reference: &[Isometry3<f64>],
) -> Result<Option<KittiError>> {
    check_lengths(estimated.len(), reference.len(), 2)?;
    check_finite_poses(estimated, "estimated trajectory")?;
    check_finite_poses(reference, "reference trajectory")?;

    let distances = path_distances(reference);
    let mut t_err_sum = 0.0;
    let mut r_err_sum = 0.0;
    let mut segments = 0usize;
    for first in (0..reference.len()).step_by(KITTI_STEP_FRAMES) {
        for &length in &KITTI_SEGMENT_LENGTHS_M {
            let Some(last) = last_frame_of_segment(&distances, first, length) else {
                continue;
            };
            let delta_est = estimated[first].inverse() * estimated[last];
            let delta_ref = reference[first].inverse() * reference[last];
            let error = delta_est.inverse() * delta_ref;
            t_err_sum += error.translation.vector.norm() / length;
            r_err_sum += error.rotation.angle() / length;
            segments += 1;
        }
    }
    if segments == 0 {
        return Ok(None);
    }
    let count = segments as f64;
    Ok(Some(KittiError {
        t_err_pct: 100.0 * t_err_sum / count,
        r_err_deg_per_100m: (r_err_sum / count).to_degrees() * 100.0,
        segments,
    }))
}

/// Largest time difference of [`associate_by_time`] used by `pointpipe
/// odometry --gt-format tum`, seconds: evo's default `max_diff`.
pub const DEFAULT_MAX_TIME_DIFF: f64 = 0.01;

/// Matches poses by timestamp as evo's `associate_trajectories` does: each
/// estimated time (seconds) is paired with the reference time nearest to it
/// when they differ by at most `max_diff` seconds; estimated times without
/// one are left out. Returns `(estimated index, reference index)` pairs in
/// estimated order (a reference pose may serve several estimated ones, as in
/// evo; ties go to the earlier reference time). Non-finite times never match.
///
/// Complexity: O((n + m) log m) for `n` estimated and `m` reference times
/// (the reference is sorted once, then binary-searched).
///
/// # Example
/// ```
/// let pairs = pointpipe::eval::associate_by_time(&[0.0, 0.1, 0.5], &[0.0, 0.05, 0.104], 0.01);
/// assert_eq!(pairs, [(0, 0), (1, 2)]);
/// ```
pub fn associate_by_time(
    estimated: &[f64],
    reference: &[f64],
    max_diff: f64,
) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..reference.len())
        .filter(|&j| reference[j].is_finite())
        .collect();
    order.sort_by(|&a, &b| reference[a].total_cmp(&reference[b]).then(a.cmp(&b)));
    let sorted: Vec<f64> = order.iter().map(|&j| reference[j]).collect();
    let mut pairs = Vec::new();
    for (i, &t) in estimated.iter().enumerate() {
        if !t.is_finite() {
            continue;
        }
        let at = sorted.partition_point(|&r| r < t);
        let best = [at.checked_sub(1), (at < sorted.len()).then_some(at)]
            .into_iter()
            .flatten()
            .min_by(|&a, &b| (sorted[a] - t).abs().total_cmp(&(sorted[b] - t).abs()));
        if let Some(k) = best
            && (sorted[k] - t).abs() <= max_diff
        {
            pairs.push((i, order[k]));
        }
    }
    pairs
}

/// ATE, RPE with `delta = 1`, and the KITTI relative error in one call.
///
/// # Errors
/// As [`ate`] (at least 3 poses), [`rpe`] and [`kitti_relative_error`].
pub fn evaluate(estimated: &[Isometry3<f64>], reference: &[Isometry3<f64>]) -> Result<Evaluation> {
    Ok(Evaluation {
        ate: ate(estimated, reference)?,
        rpe: rpe(estimated, reference, 1)?,
        kitti: kitti_relative_error(estimated, reference)?,
    })
}

/// `E = (Q_i⁻¹ Q_j)⁻¹ (P_i⁻¹ P_j)`: the estimated relative motion seen from
/// the reference relative motion.
fn relative_error(
    est_i: &Isometry3<f64>,
    est_j: &Isometry3<f64>,
    ref_i: &Isometry3<f64>,
    ref_j: &Isometry3<f64>,
) -> Isometry3<f64> {
    let delta_ref = ref_i.inverse() * ref_j;
    let delta_est = est_i.inverse() * est_j;
    delta_ref.inverse() * delta_est
}

/// Cumulative path length along the positions, `d_0 = 0`, metres.
fn path_distances(poses: &[Isometry3<f64>]) -> Vec<f64> {
    let mut distances = Vec::with_capacity(poses.len());
    let mut total = 0.0;
    distances.push(total);
    for pair in poses.windows(2) {
        total += (pair[1].translation.vector - pair[0].translation.vector).norm();
        distances.push(total);
    }
    distances
}

/// First frame `l ≥ first` with `d_l > d_first + length` (devkit
/// `lastFrameFromSegmentLength`), or `None`.
fn last_frame_of_segment(distances: &[f64], first: usize, length: f64) -> Option<usize> {
    let start = *distances.get(first)?;
    distances
        .iter()
        .skip(first)
        .position(|&d| d > start + length)
        .map(|offset| first + offset)
}

fn positions(poses: &[Isometry3<f64>]) -> Vec<Point3<f64>> {
    poses
        .iter()
        .map(|p| Point3::from(p.translation.vector))
        .collect()
}

fn check_lengths(estimated: usize, reference: usize, min: usize) -> Result<()> {
    if estimated != reference || estimated < min {
        return Err(Error::TrajectoryLength {
            estimated,
            reference,
            min,
        });
    }
    Ok(())
}

fn check_finite_points(points: &[Point3<f64>], what: &str) -> Result<()> {
    match points
        .iter()
        .position(|p| !p.coords.iter().all(|c| c.is_finite()))
    {
        Some(index) => Err(Error::NonFinite {
            what: what.to_string(),
            index,
        }),
        None => Ok(()),
    }
}

fn check_finite_poses(poses: &[Isometry3<f64>], what: &str) -> Result<()> {
    let finite = |p: &Isometry3<f64>| {
        p.translation.vector.iter().all(|c| c.is_finite())
            && p.rotation.coords.iter().all(|c| c.is_finite())
    };
    match poses.iter().position(|p| !finite(p)) {
        Some(index) => Err(Error::NonFinite {
            what: what.to_string(),
            index,
        }),
        None => Ok(()),
    }
}

/// Summary statistics of a non-empty error list.
struct Stats {
    rmse: f64,
    mean: f64,
    median: f64,
    max: f64,
}

impl Stats {
    /// Statistics of `values` (sorted in place for the median; callers
    /// guarantee at least one value).
    fn of(values: &mut [f64]) -> Stats {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let rmse = (values.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
        values.sort_unstable_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = match values.len() {
            0 => 0.0,
            len if len % 2 == 1 => values[mid],
            _ => 0.5 * (values[mid - 1] + values[mid]),
        };
        let max = values.last().copied().unwrap_or(0.0);
        Stats {
            rmse,
            mean,
            median,
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn straight(n: usize, step: f64) -> Vec<Isometry3<f64>> {
        (0..n)
            .map(|i| Isometry3::translation(step * i as f64, 0.0, 0.0))
            .collect()
    }

    #[test]
    fn umeyama_recovers_rigid_transform_of_noisy_free_points() {
        let truth = Isometry3::new(Vector3::new(-4.0, 0.5, 2.0), Vector3::new(0.3, 0.2, -1.1));
        let est: Vec<Point3<f64>> = (0..10)
            .map(|i| {
                let f = i as f64;
                Point3::new(f, (0.7 * f).sin() * 3.0, 0.1 * f * f)
            })
            .collect();
        let reference: Vec<_> = est.iter().map(|p| truth * p).collect();
        let t = align_umeyama(&est, &reference).unwrap();
        assert!((t.to_homogeneous() - truth.to_homogeneous()).norm() < 1e-9);
    }

    #[test]
    fn umeyama_handles_reflection_case_with_proper_rotation() {
        // Planar points mirrored: the best *rotation* must still have det +1.
        let est = vec![
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(1.0, 0.0, 0.0),
            Point3::new(0.0, 1.0, 0.0),
            Point3::new(1.0, 1.0, 0.0),
        ];
        let reference: Vec<_> = est.iter().map(|p| Point3::new(p.x, -p.y, 0.0)).collect();
        let t = align_umeyama(&est, &reference).unwrap();
        let det = t.rotation.to_rotation_matrix().matrix().determinant();
        assert!((det - 1.0).abs() < 1e-12);
    }

    #[test]
    fn errors_on_bad_input() {
        let a = straight(5, 1.0);
        let b = straight(4, 1.0);
        assert!(matches!(ate(&a, &b), Err(Error::TrajectoryLength { .. })));
        assert!(matches!(
            ate(&a[..2], &a[..2]),
            Err(Error::TrajectoryLength { min: 3, .. })
        ));
        assert!(matches!(
            rpe(&a[..1], &a[..1], 1),
            Err(Error::TrajectoryLength { min: 2, .. })
        ));
        assert!(matches!(
            rpe(&a, &a, 0),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            rpe(&a, &a, 5),
            Err(Error::InvalidParameter { .. })
        ));
        let mut bad = a.clone();
        bad[3].translation.vector.y = f64::NAN;
        assert!(matches!(
            evaluate(&bad, &a),
            Err(Error::NonFinite { index: 3, .. })
        ));
        assert!(matches!(
            kitti_relative_error(&a, &bad),
            Err(Error::NonFinite { index: 3, .. })
        ));
    }

    #[test]
    fn perfect_estimate_has_zero_error_even_in_another_world_frame() {
        let reference: Vec<_> = (0..50)
            .map(|i| {
                let f = i as f64;
                Isometry3::new(
                    Vector3::new(3.0 * f, (0.1 * f).sin() * 5.0, 0.0),
                    Vector3::new(0.0, 0.0, 0.05 * f),
                )
            })
            .collect();
        let offset = Isometry3::new(Vector3::new(10.0, -3.0, 1.0), Vector3::new(0.0, 0.1, 0.7));
        let estimated: Vec<_> = reference.iter().map(|p| offset * p).collect();
        let e = evaluate(&estimated, &reference).unwrap();
        assert!(e.ate.rmse_m < 1e-9 && e.ate.max_m < 1e-9);
        assert!(e.rpe.trans_rmse_m < 1e-9 && e.rpe.rot_rmse_deg < 1e-6);
        assert_eq!(e.rpe.pairs, 49);
        let k = e.kitti.unwrap();
        assert!(k.t_err_pct < 1e-9 && k.r_err_deg_per_100m < 1e-6);
    }

    #[test]
    fn kitti_none_when_shorter_than_100_m() {
        // 101 poses, 1 m apart = exactly 100 m: no frame lies *beyond* 100 m.
        let t = straight(101, 1.0);
        assert_eq!(kitti_relative_error(&t, &t).unwrap(), None);
        let t = straight(102, 1.0);
        assert_eq!(kitti_relative_error(&t, &t).unwrap().unwrap().segments, 1);
    }

    #[test]
    fn kitti_units_known_answer() {
        // Reference: straight 1 m steps along x, 111 poses (110 m). Estimate:
        // the same positions, heading growing 0.5 deg per 100 frames.
        // Segments: f = 0 -> l = 101 (d = 101 > 100); f = 10 needs d > 110,
        // which no frame has. One segment, E = (R_101ᵀ, 0).
        let reference = straight(111, 1.0);
        let yaw = 0.5f64.to_radians();
        let estimated: Vec<_> = (0..111)
            .map(|i| {
                let f = i as f64;
                Isometry3::new(
                    Vector3::new(f, 0.0, 0.0),
                    Vector3::new(0.0, 0.0, yaw * f / 100.0),
                )
            })
            .collect();
        let k = kitti_relative_error(&estimated, &reference)
            .unwrap()
            .unwrap();
        assert_eq!(k.segments, 1);
        // Rotation error over the segment: 0.5 deg * 101/100 over L = 100 m
        // -> 0.505 deg per 100 m (not 0.00505, not 50.5).
        assert!((k.r_err_deg_per_100m - 0.505).abs() < 1e-9, "{k:?}");
        // Translations coincide in the world, but the relative translation
        // expressed in the rotated start frame is the same (start rotation is
        // identity for f = 0) -> only rotation error remains in t(E)? E's
        // translation is R_est_l⁻¹ applied to zero offset: 0.
        assert!(k.t_err_pct < 1e-9, "{k:?}");
    }

    #[test]
    fn rpe_all_pairs_with_delta() {
        let reference = straight(10, 1.0);
        let estimated: Vec<_> = (0..10)
            .map(|i| Isometry3::translation(1.1 * i as f64, 0.0, 0.0))
            .collect();
        let r = rpe(&estimated, &reference, 3).unwrap();
        assert_eq!(r.pairs, 7);
        assert!((r.trans_rmse_m - 0.3).abs() < 1e-12);
        assert!((r.trans_mean_m - 0.3).abs() < 1e-12);
        assert_eq!(r.rot_rmse_deg, 0.0);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(Stats::of(&mut [3.0, 1.0, 2.0]).median, 2.0);
        assert_eq!(Stats::of(&mut [4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }
}
