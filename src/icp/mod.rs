//! Iterative Closest Point registration: point-to-point and point-to-plane,
//! with robust kernels, honest convergence and a degeneracy check.
//!
//! [`register`] estimates `target_from_source`, the rigid transform that
//! maps source points onto the target cloud, from an initial guess.
//!
//! # Algorithm (Besl & McKay 1992; Chen & Medioni 1991)
//! ```text
//! T ← initial_guess
//! for each stage s of the schedule (IcpConfig::coarse_stages, then the final stage):
//!     S ← every s.stride-th source point         (stride > 1 needs ≥ stride·1000 source points, else s is skipped)
//!     repeat until s's budget is spent:         (its own max_iterations, or what is left of the config's, shared)
//!         Δ ← point-to-plane: solve(associate_into_linear_system(S, T))   Gauss–Newton, Low 2004
//!             point-to-point: Kabsch/Umeyama on associate(S, T)           closed form, SVD
//!             (matches: nearest target point within s.max_correspondence_distance,
//!              robust kernel of scale s.kernel_scale; no match at all: an error naming s)
//!         T ← Δ · T
//!         converged ← |Δ.translation| < s.tolerance_factor · translation_tolerance
//!                     and angle(Δ) < s.tolerance_factor · rotation_tolerance
//!         if converged: next stage
//! C ← associate(source, T) with the final stage's distance           all source points
//! summarise C at the final T: inliers, fitness, inlier RMSE, information, degeneracy
//! ```
//! The final stage is the config's own fields (all source points, tolerance
//! factor 1), and the reported `converged` is its own. A stage without a
//! budget of its own shares `IcpConfig::max_iterations` with the final
//! stage. The default schedule puts one such stage on every 4th source
//! point with tolerances ×10 before it (coarse-to-fine over the source, Jost &
//! Hügli 2003). The odometry runs a wide, loose stage and a narrow one
//! (`crate::odometry`).
//!
//! # Local frame
//! The normal equations, the updates and the degeneracy analysis are
//! computed in a frame re-centred on the target when the target lies far
//! from the origin of its frame: `o` is the centre of the target's bounding
//! box rounded to whole units when that centre is farther from the origin
//! than the box's diagonal (georeferenced tiles), else `o = 0` (sensor
//! frames, where the sensor at the origin is the natural centre; results
//! there are unchanged). Matched points enter the equations as `p − o` and
//! each update `Δ`, a motion about `o`, is applied as
//! `target_from_source ← Translation(o) · Δ · Translation(−o) ·
//! target_from_source`. Rotation updates then turn about the data, not
//! about a CRS origin hundreds of kilometres away (with `o = 0` the rotation
//! and translation columns of the normal equations became nearly collinear,
//! and a (+2, −1) ft shift of a georeferenced Autzen tile came back as
//! (−0.003, −0.005) ft, not converged). The estimate, the k-d tree queries,
//! distances and residuals stay in the original frame.
//!
//! # Determinism
//! Association is an order-preserving parallel map. Every sum (normal
//! equations, centroids, cross-covariance) folds fixed-size chunks of 512
//! correspondences (or, in the fused point-to-plane step, of 512 source
//! points) in parallel from a named zero and combines the chunk sums in index
//! order, so the result is bit-identical at any thread count.
//!
//! # Complexity
//! Per iteration one nearest-neighbour query per source point
//! (`O(n log m)`), an `O(n)` reduction and an `O(1)` 6×6 solve.

mod associate;
mod degeneracy;
mod kernel;
mod point_to_plane;
mod point_to_point;

use nalgebra::{Isometry3, Matrix6, Point3, Translation3, Vector3, Vector6};

pub use kernel::RobustKernel;

use crate::PointCloud;
use crate::error::{Error, Result};
use crate::kdtree::{KdTree, SearchHint};
use associate::{Correspondence, associate, associate_into_linear_system};
use degeneracy::analyse_degeneracy;
use point_to_plane::{build_linear_system, solve_linear_system};
use point_to_point::{build_point_to_point_system, solve_point_to_point};

/// The error metric ICP minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IcpMethod {
    /// Sum of squared Euclidean distances `|T·q − p|²`; closed-form update
    /// per iteration (Arun et al. 1987, Umeyama 1991). Needs no normals;
    /// converges slowly on structured scenes (sliding along planes).
    PointToPoint,
    /// Sum of squared distances to the target's tangent planes
    /// `(nᵀ(T·q − p))²` (Chen & Medioni 1991), one Gauss–Newton step per
    /// iteration with the linearisation of Low 2004. Needs target normals.
    /// The default.
    #[default]
    PointToPlane,
}

/// Parameters of [`register`]. Check with [`IcpConfig::validate`].
///
/// The fields describe the final stage of the registration (all source
/// points); [`IcpConfig::coarse_stages`] lists the stages run before it (see
/// the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct IcpConfig {
    /// Error metric (every stage). Default [`IcpMethod::PointToPlane`].
    pub method: IcpMethod,
    /// A source point is matched only to a target point within this distance,
    /// metres (inclusive); also the distance of the final statistics. Finite,
    /// > 0. Default 1.0 m.
    pub max_correspondence_distance: f64,
    /// Robust kernel for the IRLS weights (every stage). Default
    /// [`RobustKernel::Huber`].
    pub kernel: RobustKernel,
    /// Kernel scale `c`, metres: residuals beyond it are down-weighted
    /// (see [`RobustKernel`]). Finite, > 0. Default 0.1 m.
    pub kernel_scale: f64,
    /// Maximum number of pose updates of the final stage together with the
    /// coarse stages that have no budget of their own
    /// ([`IcpStage::max_iterations`] `None`, as in the default schedule). 0
    /// evaluates the initial guess after the stages with their own budget
    /// (with the default schedule: the initial guess itself); `converged` is
    /// then false. Default 30.
    pub max_iterations: usize,
    /// Convergence needs the last update's translation norm below this,
    /// metres (times [`IcpStage::tolerance_factor`] in a coarse stage).
    /// Finite, ≥ 0. Default 1e-4 m (0.1 mm).
    pub translation_tolerance: f64,
    /// Convergence needs the last update's rotation angle below this,
    /// radians (times [`IcpStage::tolerance_factor`] in a coarse stage).
    /// Finite, ≥ 0. Default 1e-4 rad (≈ 0.0057°).
    pub rotation_tolerance: f64,
    /// The result is `degenerate` when the smallest over the largest
    /// eigenvalue of the (unit-normalised, see
    /// [`RegistrationResult::degeneracy_ratio`]) information matrix is below
    /// this. In `[0, 1]`. Default 1e-3.
    pub degeneracy_threshold: f64,
    /// Stages run in order before the final stage, each from the estimate
    /// the previous one reached (coarse-to-fine). Empty: the final stage
    /// alone. Default: one [`IcpStage::default`], every 4th source point with
    /// tolerances ×10 (the multi-resolution scheme of Jost & Hügli 2003, "A
    /// multi-resolution ICP with heuristic closest point search"): far from
    /// the solution, where most iterations are spent, a quarter of the points
    /// steers the estimate as well as all of them at a quarter of the cost.
    pub coarse_stages: Vec<IcpStage>,
}

/// One coarse stage of [`register`] (see [`IcpConfig::coarse_stages`]): ICP
/// on a subsample of the source with its own correspondence distance,
/// kernel scale, tolerances and iteration budget. `None` fields take the
/// value of the [`IcpConfig`] (its final stage).
///
/// The stage ends when an update falls below `tolerance_factor` times the
/// config's tolerances, or when its iteration budget is spent; the next stage
/// then starts from its estimate (nearest-neighbour search hints start
/// afresh). No correspondence at all is an [`Error::Registration`] naming the
/// stage (`coarse_stages[i]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IcpStage {
    /// The stage uses every `stride`-th source point (1: all of them). A
    /// stage with `stride > 1` is skipped when the source has fewer than
    /// `stride × 1000` points (its subsample would be too sparse to steer
    /// the estimate). ≥ 1. Default 4.
    pub stride: usize,
    /// Correspondence distance, metres; `None`: the config's. Finite, > 0.
    /// Default `None`.
    pub max_correspondence_distance: Option<f64>,
    /// Kernel scale, metres; `None`: the config's. Finite, > 0. Default `None`.
    pub kernel_scale: Option<f64>,
    /// The stage converges when an update is below this many times the
    /// config's translation and rotation tolerances. Finite, > 0. Default 10.
    pub tolerance_factor: f64,
    /// Maximum number of pose updates of this stage (its own budget).
    /// `None`: the stage draws on the config's `max_iterations`, which it
    /// shares with the final stage and the other stages without a budget of
    /// their own (their updates together are at most `max_iterations`; what
    /// a coarse stage spends, the final stage no longer has). Default `None`.
    pub max_iterations: Option<usize>,
}

impl Default for IcpStage {
    fn default() -> Self {
        IcpStage {
            stride: 4,
            max_correspondence_distance: None,
            kernel_scale: None,
            tolerance_factor: 10.0,
            max_iterations: None,
        }
    }
}

impl Default for IcpConfig {
    fn default() -> Self {
        IcpConfig {
            method: IcpMethod::PointToPlane,
            max_correspondence_distance: 1.0,
            kernel: RobustKernel::Huber,
            kernel_scale: 0.1,
            max_iterations: 30,
            translation_tolerance: 1e-4,
            rotation_tolerance: 1e-4,
            degeneracy_threshold: 1e-3,
            coarse_stages: vec![IcpStage::default()],
        }
    }
}

impl IcpConfig {
    /// Checks every field, those of each coarse stage included; errors with
    /// [`Error::InvalidParameter`] naming the first invalid one (a stage's
    /// field as `coarse_stages.<field>`, its index in the reason).
    pub fn validate(&self) -> Result<()> {
        positive(
            "max_correspondence_distance",
            self.max_correspondence_distance,
        )?;
        positive("kernel_scale", self.kernel_scale)?;
        non_negative("translation_tolerance", self.translation_tolerance)?;
        non_negative("rotation_tolerance", self.rotation_tolerance)?;
        if !(0.0..=1.0).contains(&self.degeneracy_threshold) {
            return Err(Error::invalid(
                "degeneracy_threshold",
                self.degeneracy_threshold,
                "must be in [0, 1]",
            ));
        }
        for (index, stage) in self.coarse_stages.iter().enumerate() {
            stage
                .validate()
                .map_err(|error| error.in_context(format_args!("coarse_stages[{index}]")))?;
        }
        Ok(())
    }

    /// The schedule [`register`] runs: the coarse stages with their `None`
    /// fields filled in, then [`IcpConfig::final_stage`]. The one place
    /// where stages are resolved.
    fn schedule(&self) -> Vec<Stage> {
        let coarse = self
            .coarse_stages
            .iter()
            .enumerate()
            .map(|(index, s)| Stage {
                name: StageName::Coarse(index),
                stride: s.stride,
                method: self.method,
                kernel: self.kernel,
                max_correspondence_distance: s
                    .max_correspondence_distance
                    .unwrap_or(self.max_correspondence_distance),
                kernel_scale: s.kernel_scale.unwrap_or(self.kernel_scale),
                translation_tolerance: self.translation_tolerance * s.tolerance_factor,
                rotation_tolerance: self.rotation_tolerance * s.tolerance_factor,
                budget: s.max_iterations.map_or(Budget::Shared, Budget::Own),
            });
        coarse.chain([self.final_stage()]).collect()
    }

    /// The last stage: the config's own fields on every source point.
    fn final_stage(&self) -> Stage {
        Stage {
            name: StageName::Final,
            stride: 1,
            method: self.method,
            kernel: self.kernel,
            max_correspondence_distance: self.max_correspondence_distance,
            kernel_scale: self.kernel_scale,
            translation_tolerance: self.translation_tolerance,
            rotation_tolerance: self.rotation_tolerance,
            budget: Budget::Shared,
        }
    }
}

impl IcpStage {
    /// The default schedule with another stride: one [`IcpStage::default`]
    /// on every `stride`-th source point, or no coarse stage for `stride` 1
    /// (a stride-1 stage would still run a loose first pass on all points).
    /// What the CLI's `--coarse-stride` and Python's `coarse_stride` mean.
    /// A `stride` of 0 gives a stage that [`IcpConfig::validate`] rejects.
    ///
    /// ```
    /// use pointpipe::icp::{IcpConfig, IcpStage};
    ///
    /// assert_eq!(IcpStage::strided_schedule(4), IcpConfig::default().coarse_stages);
    /// assert!(IcpStage::strided_schedule(1).is_empty());
    /// ```
    pub fn strided_schedule(stride: usize) -> Vec<IcpStage> {
        if stride == 1 {
            return Vec::new();
        }
        vec![IcpStage {
            stride,
            ..IcpStage::default()
        }]
    }

    /// Checks the stage's fields (see [`IcpConfig::validate`]).
    fn validate(&self) -> Result<()> {
        if self.stride == 0 {
            return Err(Error::invalid(
                "coarse_stages.stride",
                0,
                "must be at least 1",
            ));
        }
        if let Some(distance) = self.max_correspondence_distance {
            positive("coarse_stages.max_correspondence_distance", distance)?;
        }
        if let Some(scale) = self.kernel_scale {
            positive("coarse_stages.kernel_scale", scale)?;
        }
        positive("coarse_stages.tolerance_factor", self.tolerance_factor)
    }
}

/// `Ok` when `value` is finite and > 0, else [`Error::InvalidParameter`].
fn positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(name, value, "must be finite and > 0"))
    }
}

/// `Ok` when `value` is finite and ≥ 0, else [`Error::InvalidParameter`].
fn non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(name, value, "must be finite and >= 0"))
    }
}

/// A stage of the schedule with every value resolved
/// ([`IcpConfig::schedule`]): what one run of iterations needs.
#[derive(Debug, Clone, Copy)]
struct Stage {
    name: StageName,
    stride: usize,
    method: IcpMethod,
    kernel: RobustKernel,
    max_correspondence_distance: f64,
    kernel_scale: f64,
    /// The config's tolerance times the stage's factor.
    translation_tolerance: f64,
    rotation_tolerance: f64,
    budget: Budget,
}

/// The iteration budget of a [`Stage`].
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// At most this many updates.
    Own(usize),
    /// Draws on [`IcpConfig::max_iterations`], shared with the final stage.
    Shared,
}

/// Which stage, for error messages.
#[derive(Debug, Clone, Copy)]
enum StageName {
    /// `IcpConfig::coarse_stages[i]`.
    Coarse(usize),
    /// The config's own fields.
    Final,
}

impl std::fmt::Display for StageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageName::Coarse(index) => write!(f, "coarse_stages[{index}]"),
            StageName::Final => f.write_str("final stage"),
        }
    }
}

/// Outcome of [`register`]. All statistics are evaluated at the returned
/// `target_from_source`.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationResult {
    /// The estimate: `p_target = target_from_source · p_source`.
    pub target_from_source: Isometry3<f64>,
    /// True only when the final stage's last update was below both
    /// [`IcpConfig::translation_tolerance`] and
    /// [`IcpConfig::rotation_tolerance`]; false when its `max_iterations`
    /// ran out (coarse stages that run out of iterations just hand over).
    pub converged: bool,
    /// Number of pose updates applied, all stages together (each stage at
    /// most its own `max_iterations`).
    pub iterations: usize,
    /// Source points with a correspondence (within
    /// `max_correspondence_distance`; for point-to-plane, also with a target
    /// normal) at the final estimate.
    pub num_inliers: usize,
    /// `num_inliers / source.len()`, in `[0, 1]`.
    pub fitness: f64,
    /// RMS Euclidean distance between inliers and their nearest target
    /// points, metres (Open3D's definition, for both methods).
    pub inlier_rmse: f64,
    /// `JᵀWJ` at the final estimate, 6×6, order (rx, ry, rz, tx, ty, tz)
    /// for a left perturbation `q ↦ R(ω)·q + v` in the local frame (about
    /// [`RegistrationResult::local_origin`]), ω in radians, v in metres;
    /// `W` the robust-kernel weights. For point-to-point, each inlier adds
    /// its three coordinate residuals.
    pub information: Matrix6<f64>,
    /// `degeneracy_ratio < IcpConfig::degeneracy_threshold`: some direction
    /// of motion is (almost) unconstrained by the geometry (corridor,
    /// tunnel, flat ground), so the estimate along it is unreliable. For
    /// point-to-point with target normals, judged on the point-to-plane
    /// information of the same correspondences (point residuals pin every
    /// direction, so they cannot see a corridor); without normals, on
    /// [`RegistrationResult::information`], which flags only coincident or
    /// collinear matches.
    pub degenerate: bool,
    /// Smallest over largest eigenvalue of `D·information·D`, where
    /// `D = diag(1/L, 1/L, 1/L, 1, 1, 1)` and `L` (m) is the RMS distance of
    /// the inliers from their centroid: rotations are compared with
    /// translations as arc lengths at the scene's scale (for point-to-point
    /// with target normals, of the point-to-plane information instead; see
    /// [`RegistrationResult::degenerate`]). In `[0, 1]`.
    pub degeneracy_ratio: f64,
    /// The origin `o` of the local frame the registration worked in (the
    /// centre of the target's bounding box rounded to whole units when the
    /// target is far from its frame's origin, else zero; see the module
    /// docs), in target coordinates; rotations of [`RegistrationResult::information`]
    /// and [`RegistrationResult::weakest_direction`] are about it.
    pub local_origin: Vector3<f64>,
    /// Unit vector (rx, ry, rz, tx, ty, tz; rad and m) of the least
    /// constrained direction (eigenvector of the smallest eigenvalue above,
    /// mapped back to radians and metres, largest component positive).
    pub weakest_direction: Vector6<f64>,
}

/// Registers `source` to `target` with ICP.
///
/// # Parameters
/// - `source`: points in the source frame, metres, all finite.
/// - `target`: the target cloud; point-to-plane needs `target.normals`
///   (zero normal = point without a normal, never matched).
/// - `target_tree`: a [`KdTree`] built on `target.points` (same order).
/// - `initial_guess`: starting `target_from_source` (identity if unknown).
/// - `config`: see [`IcpConfig`].
///
/// # Returns
/// A [`RegistrationResult`] whose `converged` is true only when the final
/// stage met the tolerances; not converging is not an error. Its statistics
/// are computed once, on every source point at the final estimate, with the
/// config's own `max_correspondence_distance` and kernel.
///
/// # Errors
/// - [`Error::InvalidParameter`]: invalid `config`, a non-finite
///   `initial_guess`, or a tree whose size differs from the target's.
/// - [`Error::EmptyCloud`]: empty source or target.
/// - [`Error::NonFinite`]: a NaN/Inf source point.
/// - [`Error::Registration`]: point-to-plane without target normals; in
///   some stage (named in the reason: `coarse_stages[i]` or `final stage`),
///   no correspondence within its `max_correspondence_distance` at some
///   iterate, or an unsolvable update.
///
/// # Algorithm
/// See the [module docs](self): the stages of
/// [`IcpConfig::coarse_stages`], then the final stage, on one estimate.
/// Each iteration: match every point of the stage's subsample to its
/// nearest target point in parallel, build the 6×6 normal equations
/// (point-to-plane) or the 3×3 cross-covariance (point-to-point) with
/// deterministic chunked reductions, solve, apply the update on the left,
/// test convergence. Cost per iteration `O((n / stride) log m)` for `n`
/// source and `m` target points; at most `max_iterations` iterations plus
/// the budgets of the stages that have their own.
///
/// # Example
/// ```
/// use nalgebra::{Isometry3, Point3, Vector3};
/// use pointpipe::PointCloud;
/// use pointpipe::icp::{IcpConfig, register};
/// use pointpipe::kdtree::KdTree;
///
/// // The floor and two walls of a room corner, with analytic normals.
/// let mut target = PointCloud::default();
/// let mut normals = Vec::new();
/// for i in 0..20 {
///     for j in 0..20 {
///         let (a, b) = (i as f64 * 0.1, j as f64 * 0.1);
///         for (p, n) in [
///             (Point3::new(a, b, 0.0), Vector3::z()),
///             (Point3::new(a, 0.0, b), Vector3::y()),
///             (Point3::new(0.0, a, b), Vector3::x()),
///         ] {
///             target.points.push(p);
///             normals.push(n);
///         }
///     }
/// }
/// target.normals = Some(normals);
/// let truth = Isometry3::new(Vector3::new(0.05, -0.03, 0.02), Vector3::new(0.0, 0.0, 0.03));
/// let source: Vec<Point3<f64>> = target.points.iter().map(|p| truth.inverse() * p).collect();
/// let tree = KdTree::build(&target.points)?;
///
/// let result = register(&source, &target, &tree, &Isometry3::identity(), &IcpConfig::default())?;
/// assert!(result.converged);
/// let error = result.target_from_source * truth.inverse();
/// assert!(error.translation.vector.norm() < 1e-6 && error.rotation.angle() < 1e-6);
/// # Ok::<(), pointpipe::Error>(())
/// ```
pub fn register(
    source: &[Point3<f64>],
    target: &PointCloud,
    target_tree: &KdTree,
    initial_guess: &Isometry3<f64>,
    config: &IcpConfig,
) -> Result<RegistrationResult> {
    config.validate()?;
    check_inputs(source, target, target_tree, initial_guess, config.method)?;
    let origin = local_origin(target_tree);
    let mut target_from_source = *initial_guess;
    let mut iterations = 0;
    let mut converged = false;
    let mut hints = Vec::new();
    let mut shared_left = config.max_iterations;
    for stage in config.schedule() {
        if stage.stride > 1 && source.len() < stage.stride * COARSE_MIN_POINTS {
            continue;
        }
        let subsample: Vec<Point3<f64>>;
        let points = if stage.stride == 1 {
            source
        } else {
            subsample = source.iter().step_by(stage.stride).copied().collect();
            &subsample
        };
        hints.clear();
        hints.resize(points.len(), SearchHint::default());
        converged = false;
        let limit = match stage.budget {
            Budget::Own(n) => n,
            Budget::Shared => shared_left,
        };
        let mut spent = 0;
        while spent < limit {
            let (update, matches) = compute_update(
                points,
                &target_from_source,
                &origin,
                target,
                target_tree,
                &stage,
                &mut hints,
            )
            .and_then(|step| {
                step.ok_or_else(|| {
                    no_correspondences(stage.max_correspondence_distance, iterations)
                })
            })
            .map_err(|error| in_stage(error, stage.name))?;
            // Δ is a motion about `origin` (see the module docs).
            target_from_source = Translation3::from(origin)
                * update
                * Translation3::from(-origin)
                * target_from_source;
            // Products of unit quaternions drift from unit norm by rounding; keep it exact.
            target_from_source.rotation.renormalize();
            spent += 1;
            iterations += 1;
            converged = update.translation.vector.norm() < stage.translation_tolerance
                && update.rotation.angle() < stage.rotation_tolerance;
            log::trace!(
                "icp {} iteration {iterations}: {matches} correspondences, update {:.3e} m / {:.3e} rad",
                stage.name,
                update.translation.vector.norm(),
                update.rotation.angle()
            );
            if converged {
                break;
            }
        }
        if let Budget::Shared = stage.budget {
            shared_left -= spent;
        }
    }
    // The final stage used every source point: `hints` are theirs.
    let Some(scored) = score(
        source,
        target,
        target_tree,
        &target_from_source,
        &origin,
        config,
        &mut hints,
    ) else {
        let error = no_correspondences(config.max_correspondence_distance, iterations);
        return Err(in_stage(error, StageName::Final));
    };
    Ok(RegistrationResult {
        iterations,
        converged,
        ..scored
    })
}

/// Scores a given `target_from_source` without moving it: the statistics
/// [`register`] reports at its final estimate (inliers, fitness, inlier
/// RMSE, information, degeneracy), here at `target_from_source` itself.
/// `iterations` is 0 and `converged` false (nothing was iterated);
/// `target_from_source` is returned unchanged.
///
/// Same parameters, frames and errors as [`register`] (point-to-plane needs
/// target normals; only `max_correspondence_distance`, `kernel`,
/// `kernel_scale`, `method` and `degeneracy_threshold` of `config` matter);
/// no correspondence within `max_correspondence_distance` is an
/// [`Error::Registration`]. Cost: one nearest-neighbour query per source
/// point.
pub fn evaluate_registration(
    source: &[Point3<f64>],
    target: &PointCloud,
    target_tree: &KdTree,
    target_from_source: &Isometry3<f64>,
    config: &IcpConfig,
) -> Result<RegistrationResult> {
    config.validate()?;
    check_inputs(
        source,
        target,
        target_tree,
        target_from_source,
        config.method,
    )?;
    let origin = local_origin(target_tree);
    let mut hints = vec![SearchHint::default(); source.len()];
    score(
        source,
        target,
        target_tree,
        target_from_source,
        &origin,
        config,
        &mut hints,
    )
    .ok_or_else(|| no_correspondences(config.max_correspondence_distance, 0))
}

/// The statistics at `target_from_source` (unchanged) on every source
/// point, matched within the config's `max_correspondence_distance` and
/// weighted with its kernel; `iterations` 0 and `converged` false. `None`
/// when no source point has a match.
fn score(
    source: &[Point3<f64>],
    target: &PointCloud,
    target_tree: &KdTree,
    target_from_source: &Isometry3<f64>,
    origin: &Vector3<f64>,
    config: &IcpConfig,
    hints: &mut [SearchHint],
) -> Option<RegistrationResult> {
    let correspondences = associate(
        source,
        target_from_source,
        origin,
        target,
        target_tree,
        config.max_correspondence_distance,
        config.method == IcpMethod::PointToPlane,
        hints,
    );
    if correspondences.is_empty() {
        return None;
    }
    Some(summarize(
        source.len(),
        &correspondences,
        *target_from_source,
        *origin,
        config,
    ))
}

/// Errors for inputs `register` cannot work with (see its docs).
fn check_inputs(
    source: &[Point3<f64>],
    target: &PointCloud,
    target_tree: &KdTree,
    initial_guess: &Isometry3<f64>,
    method: IcpMethod,
) -> Result<()> {
    if source.is_empty() {
        return Err(Error::EmptyCloud {
            what: "ICP source".into(),
        });
    }
    if target.is_empty() {
        return Err(Error::EmptyCloud {
            what: "ICP target".into(),
        });
    }
    if let Some(index) = source
        .iter()
        .position(|p| !p.coords.iter().all(|c| c.is_finite()))
    {
        return Err(Error::NonFinite {
            what: "ICP source".into(),
            index,
        });
    }
    if target_tree.len() != target.len() {
        return Err(Error::invalid(
            "target_tree",
            format!("{} points", target_tree.len()),
            format!("must be built on the target's {} points", target.len()),
        ));
    }
    let matrix = initial_guess.to_homogeneous();
    if !matrix.iter().all(|v| v.is_finite()) {
        return Err(Error::invalid("initial_guess", matrix, "must be finite"));
    }
    if method == IcpMethod::PointToPlane {
        let has_normals = target
            .normals
            .as_ref()
            .is_some_and(|n| n.len() == target.len() && n.iter().any(|v| *v != Vector3::zeros()));
        if !has_normals {
            return Err(Error::Registration {
                reason: "point-to-plane needs target normals (estimate them first, or use point-to-point)"
                    .into(),
            });
        }
    }
    Ok(())
}

/// One pose update from the matches of `points` at `target_from_source`
/// with the stage's distance and kernel: point-to-plane fuses association
/// and the normal equations ([`associate_into_linear_system`]) and solves
/// them (Gauss–Newton); point-to-point matches, then solves in closed form
/// (Kabsch/Umeyama). `None` when no source point has a match.
fn compute_update(
    points: &[Point3<f64>],
    target_from_source: &Isometry3<f64>,
    origin: &Vector3<f64>,
    target: &PointCloud,
    target_tree: &KdTree,
    stage: &Stage,
    hints: &mut [SearchHint],
) -> Result<Option<(Isometry3<f64>, usize)>> {
    match stage.method {
        IcpMethod::PointToPlane => {
            let (system, matches) = associate_into_linear_system(
                points,
                target_from_source,
                origin,
                target,
                target_tree,
                stage.max_correspondence_distance,
                stage.kernel,
                stage.kernel_scale,
                hints,
            );
            if matches == 0 {
                return Ok(None);
            }
            Ok(Some((solve_linear_system(&system)?, matches)))
        }
        IcpMethod::PointToPoint => {
            let correspondences = associate(
                points,
                target_from_source,
                origin,
                target,
                target_tree,
                stage.max_correspondence_distance,
                false,
                hints,
            );
            if correspondences.is_empty() {
                return Ok(None);
            }
            let update = solve_point_to_point(&correspondences, stage.kernel, stage.kernel_scale)?;
            Ok(Some((update, correspondences.len())))
        }
    }
}

/// The error for an iteration in which no source point found a match.
fn no_correspondences(max_correspondence_distance: f64, iterations: usize) -> Error {
    Error::Registration {
        reason: format!(
            "no correspondences within max_correspondence_distance = {max_correspondence_distance} m after {iterations} iterations"
        ),
    }
}

/// A registration error of `stage` with the stage named in its reason.
fn in_stage(error: Error, stage: StageName) -> Error {
    match error {
        Error::Registration { reason } => Error::Registration {
            reason: format!("{stage}: {reason}"),
        },
        other => other,
    }
}

/// A stage with `stride > 1` needs at least `stride ×` this many source
/// points, else it is skipped.
const COARSE_MIN_POINTS: usize = 1000;

/// The origin of the local frame (module docs): the centre of the target's
/// bounding box (the tree's root box, O(1)) rounded to whole units when it
/// is farther from the frame's origin than the box's diagonal, else zero.
fn local_origin(target_tree: &KdTree) -> Vector3<f64> {
    let Some((lo, hi)) = target_tree.bounding_box() else {
        return Vector3::zeros();
    };
    let centre = Vector3::from_fn(|i, _| 0.5 * (lo[i] + hi[i]));
    let diagonal = Vector3::from_fn(|i, _| hi[i] - lo[i]).norm();
    if centre.norm() > diagonal {
        centre.map(f64::round)
    } else {
        Vector3::zeros()
    }
}

/// The result at `target_from_source` from its correspondences (in the
/// frame shifted by `origin`); `iterations` 0 and `converged` false.
fn summarize(
    num_source: usize,
    correspondences: &[Correspondence],
    target_from_source: Isometry3<f64>,
    origin: Vector3<f64>,
    config: &IcpConfig,
) -> RegistrationResult {
    let information = match config.method {
        IcpMethod::PointToPlane => {
            build_linear_system(correspondences, config.kernel, config.kernel_scale).hessian
        }
        IcpMethod::PointToPoint => {
            build_point_to_point_system(correspondences, config.kernel, config.kernel_scale).hessian
        }
    };
    let num_inliers = correspondences.len();
    let inverse_count = 1.0 / num_inliers as f64;
    let sum_distance_sq: f64 = correspondences.iter().map(|c| c.distance_sq).sum();
    // Point residuals constrain every direction whatever the geometry (a
    // corridor's points pin the slide along it too, wrongly): when the
    // target has normals, point-to-point judges the geometry by its planes,
    // as point-to-plane does.
    let geometry = match config.method {
        IcpMethod::PointToPoint if correspondences.iter().any(|c| c.normal != Vector3::zeros()) => {
            build_linear_system(correspondences, config.kernel, config.kernel_scale).hessian
        }
        _ => information,
    };
    let degeneracy = analyse_degeneracy(&geometry, compute_radius_of_gyration(correspondences));
    RegistrationResult {
        target_from_source,
        converged: false,
        iterations: 0,
        num_inliers,
        fitness: num_inliers as f64 / num_source as f64,
        inlier_rmse: (sum_distance_sq * inverse_count).sqrt(),
        information,
        degenerate: degeneracy.ratio < config.degeneracy_threshold,
        degeneracy_ratio: degeneracy.ratio,
        weakest_direction: degeneracy.weakest_direction,
        local_origin: origin,
    }
}

/// RMS distance (m) of the matched source points from their centroid.
fn compute_radius_of_gyration(correspondences: &[Correspondence]) -> f64 {
    let count = correspondences.len() as f64;
    let centroid = correspondences
        .iter()
        .fold(Vector3::zeros(), |acc, c| acc + c.source.coords)
        / count;
    let sum_sq: f64 = correspondences
        .iter()
        .map(|c| (c.source.coords - centroid).norm_squared())
        .sum();
    (sum_sq / count).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    /// Three perpendicular planes (a room corner) sampled every 10 cm.
    fn corner() -> PointCloud {
        let mut points = Vec::new();
        for i in 0..30 {
            for j in 0..30 {
                let (a, b) = (i as f64 * 0.1, j as f64 * 0.1);
                points.extend([
                    Point3::new(a, b, 0.0),
                    Point3::new(a, 0.0, b),
                    Point3::new(0.0, a, b),
                ]);
            }
        }
        PointCloud::from_points(points)
    }

    fn point_to_point(distance: f64) -> IcpConfig {
        IcpConfig {
            method: IcpMethod::PointToPoint,
            max_correspondence_distance: distance,
            ..IcpConfig::default()
        }
    }

    /// Scoring the true transform: every point an inlier at distance 0.
    #[test]
    fn evaluate_registration_of_the_truth_is_perfect() {
        let target = corner();
        let tree = KdTree::build(&target.points).unwrap();
        let truth = Isometry3::new(Vector3::new(0.3, -0.2, 0.1), Vector3::new(0.0, 0.0, 0.2));
        let source = target.transformed(&truth.inverse());
        let r = evaluate_registration(
            &source.points,
            &target,
            &tree,
            &truth,
            &point_to_point(0.05),
        )
        .unwrap();
        assert_eq!(r.num_inliers, target.len());
        assert!((r.fitness - 1.0).abs() < 1e-12);
        assert!(r.inlier_rmse < 1e-9, "{}", r.inlier_rmse);
        assert_eq!(r.target_from_source, truth);
    }

    /// Point-to-point ICP recovers a small motion of the corner.
    #[test]
    fn register_recovers_a_small_motion() {
        let target = corner();
        let tree = KdTree::build(&target.points).unwrap();
        let truth = Isometry3::new(
            Vector3::new(0.04, -0.03, 0.02),
            Vector3::new(0.0, 0.02, 0.03),
        );
        let source = target.transformed(&truth.inverse());
        let r = register(
            &source.points,
            &target,
            &tree,
            &Isometry3::identity(),
            &point_to_point(0.3),
        )
        .unwrap();
        let error = truth.inverse() * r.target_from_source;
        assert!(r.converged);
        assert!(error.translation.vector.norm() < 1e-4, "{error}");
        assert!(error.rotation.angle() < 1e-4, "{error}");
    }

    /// No correspondence within the distance is an error, not a pose.
    #[test]
    fn no_correspondence_is_a_registration_error() {
        let target = corner();
        let tree = KdTree::build(&target.points).unwrap();
        let far = target.transformed(&Isometry3::translation(100.0, 0.0, 0.0));
        let r = register(
            &far.points,
            &target,
            &tree,
            &Isometry3::identity(),
            &point_to_point(0.5),
        );
        assert!(matches!(r, Err(Error::Registration { .. })), "{r:?}");
    }
}
