//! LiDAR odometry over a sequence of frames.
//!
//! [`Odometry::process`] runs one frame through the stages below and returns
//! its `world_from_sensor` pose; [`run_sequence`] runs a whole sequence,
//! builds the merged map and applies the skip-bad policy. The design follows KISS-ICP (Vizzo et al.,
//! RA-L 2023) with point-to-plane ICP instead of point-to-point: a local map
//! in a voxel hash map, a constant-velocity prediction, an adaptive
//! correspondence threshold, and a k-d tree rebuilt every frame.
//!
//! Per frame:
//! 1. range crop (`min_range`, `max_range`) and removal of non-finite points;
//! 2. voxel downsampling (first point per voxel): at `voxel_size / 2` for the
//!    map, and that again at `1.5 · voxel_size` for registration;
//! 3. prediction with a constant-velocity model;
//! 4. per-frame k-d tree rebuild on the local map, and normals of its new points;
//! 5. point-to-plane ICP of the frame against the local map from the
//!    prediction, Geman–McClure kernel, in two stages ([`IcpConfig::coarse_stages`]):
//!    a coarse stage with correspondence distance `d_c = min(3σ,
//!    max_correspondence_voxels · voxel_size)`, kernel scale σ/3 and
//!    tolerances ×10, then a fine stage with `d_f = min(refine_distance_factor
//!    · voxel_size, 3σ)` and kernel scale `d_f / 3`, each with
//!    `max_iterations`; σ from the recent model deviation
//!    ([`AdaptiveThreshold`]);
//! 6. the frame joins the local map in the world frame; voxels farther than
//!    `max_range` from the sensor leave it.
//!
//! Frames that are empty after cropping, or whose ICP (or any other stage)
//! fails or is degenerate, keep the predicted pose and are flagged in
//! [`FrameResult::status`] with the reason; no failure is hidden.

mod adaptive;
mod local_map;
mod map;
mod run;
pub mod sequence;
mod timing;

pub use adaptive::AdaptiveThreshold;
pub use local_map::LocalMap;
pub use map::MapBuilder;
pub use run::{FrameView, SequenceConfig, SequenceOutput, run_sequence};
pub use timing::{Stage, StageTimings, TimingSummary};

use nalgebra::{Isometry3, Point3};
use serde::{Deserialize, Serialize};

use crate::cloud::PointCloud;
use crate::error::{Error, Result};
use crate::icp::{self, IcpConfig, IcpMethod, IcpStage, RegistrationResult, RobustKernel};
use crate::kdtree::KdTree;
use crate::voxel;
use rayon::prelude::*;

/// Every parameter of the odometry, with units and defaults. The defaults work
/// on 16- to 128-beam spinning LiDARs without tuning. Read from TOML with
/// [`OdometryConfig::from_toml`]; unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OdometryConfig {
    /// Points closer than this to the sensor are dropped (operator, vehicle), metres. Default 1.0.
    pub min_range: f64,
    /// Points farther than this are dropped; also the local-map radius, metres. Default 100.0.
    pub max_range: f64,
    /// Map voxel size, metres. `None` (default): `r / 50`, where `r` is the
    /// smaller of `max_range` and the 99th-percentile range of the first
    /// non-empty frame (KISS-ICP uses `max_range / 100`; see `VOXELS_PER_RANGE`).
    pub voxel_size: Option<f64>,
    /// Maximum points per local-map voxel. Default 5.
    pub max_points_per_voxel: usize,
    /// Correspondence threshold σ before any motion was observed, metres. Default 2.0.
    pub initial_threshold: f64,
    /// Model deviations below this do not update σ, metres. Default 0.1.
    pub min_motion: f64,
    /// Normal neighbourhood radius as a multiple of `voxel_size`. Default 2.0.
    pub normal_radius_factor: f64,
    /// Maximum neighbours of a normal (hybrid search). Default 20.
    pub normal_max_nn: usize,
    /// Minimum neighbours for a normal. Default 5.
    pub normal_min_neighbors: usize,
    /// Cap on the coarse ICP stage's correspondence distance 3σ, as a multiple of
    /// `voxel_size`. Under fast rotation σ grows to metres, and a k-d tree
    /// then searches metres around every unmatched point (KISS-ICP's
    /// voxel-hash search reaches only the voxels next to a point). Default 6.0
    /// (the BALM figures with and without the cap: `docs/performance.md`).
    pub max_correspondence_voxels: f64,
    /// Correspondence distance of the fine ICP stage as a multiple of `voxel_size`
    /// (at most 3σ). Default 2.0.
    pub refine_distance_factor: f64,
    /// ICP iteration cap of each of the two stages. Default 30.
    pub max_iterations: usize,
    /// ICP convergence: translation update below this, metres. Default 1e-4.
    pub translation_tolerance: f64,
    /// ICP convergence: rotation update below this, radians. Default 1e-4.
    pub rotation_tolerance: f64,
    /// Registrations whose information matrix has a smallest-to-largest
    /// eigenvalue ratio below this are flagged degenerate. Default 1e-4.
    pub degeneracy_threshold: f64,
}

impl Default for OdometryConfig {
    fn default() -> Self {
        OdometryConfig {
            min_range: 1.0,
            max_range: 100.0,
            voxel_size: None,
            max_points_per_voxel: 5,
            initial_threshold: 2.0,
            min_motion: 0.1,
            normal_radius_factor: 2.0,
            normal_max_nn: 20,
            normal_min_neighbors: 5,
            max_correspondence_voxels: 6.0,
            refine_distance_factor: 2.0,
            max_iterations: 30,
            translation_tolerance: 1e-4,
            rotation_tolerance: 1e-4,
            degeneracy_threshold: 1e-4,
        }
    }
}

impl OdometryConfig {
    /// Parses a TOML document with any subset of the fields.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] on a syntax error, an unknown key, or a
    /// value that fails [`OdometryConfig::validate`].
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: OdometryConfig =
            toml::from_str(text).map_err(|e| Error::invalid("config", "TOML", e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; the one place where the config is validated.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(name, v, "must be finite and > 0"))
            }
        };
        if !(self.min_range.is_finite() && self.min_range >= 0.0) {
            return Err(Error::invalid(
                "min_range",
                self.min_range,
                "must be finite and >= 0",
            ));
        }
        positive("max_range", self.max_range)?;
        if self.max_range <= self.min_range {
            return Err(Error::invalid(
                "max_range",
                self.max_range,
                "must exceed min_range",
            ));
        }
        if let Some(v) = self.voxel_size {
            positive("voxel_size", v)?;
        }
        positive("initial_threshold", self.initial_threshold)?;
        positive("normal_radius_factor", self.normal_radius_factor)?;
        positive("refine_distance_factor", self.refine_distance_factor)?;
        positive("max_correspondence_voxels", self.max_correspondence_voxels)?;
        positive("translation_tolerance", self.translation_tolerance)?;
        positive("rotation_tolerance", self.rotation_tolerance)?;
        if !(self.min_motion.is_finite() && self.min_motion >= 0.0) {
            return Err(Error::invalid(
                "min_motion",
                self.min_motion,
                "must be finite and >= 0",
            ));
        }
        for (name, v) in [
            ("max_points_per_voxel", self.max_points_per_voxel),
            ("normal_max_nn", self.normal_max_nn),
            ("max_iterations", self.max_iterations),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, v, "must be at least 1"));
            }
        }
        if self.normal_min_neighbors < 3 {
            return Err(Error::invalid(
                "normal_min_neighbors",
                self.normal_min_neighbors,
                "a plane needs at least 3 points",
            ));
        }
        Ok(())
    }
}

/// What happened to a frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameStatus {
    /// The first frame: it defines the world frame (identity pose).
    First,
    /// Registered against the local map.
    Tracked,
    /// No points left after cropping: the prediction was kept.
    Empty,
    /// ICP was degenerate (e.g. a corridor): the prediction was kept.
    Degenerate,
    /// A stage failed (ICP, the map's tree rebuild, downsampling; the reason
    /// names it): the prediction was kept.
    Failed {
        /// The stage and its error.
        reason: String,
    },
    /// The frame could not be read (reason given) and was skipped: the
    /// prediction was kept.
    Unreadable {
        /// The read error.
        reason: String,
    },
}

impl FrameStatus {
    /// [`FrameStatus::Failed`] naming the stage and its error.
    fn failed(stage: &str, error: &Error) -> Self {
        FrameStatus::Failed {
            reason: format!("{stage}: {error}"),
        }
    }

    /// True for frames whose pose is the prediction rather than a registration.
    pub fn is_flagged(&self) -> bool {
        !matches!(self, FrameStatus::First | FrameStatus::Tracked)
    }
}

/// The outcome of [`Odometry::process`] for one frame.
#[derive(Debug, Clone)]
pub struct FrameResult {
    /// 0-based index of the frame in the sequence.
    pub index: usize,
    /// Pose of the sensor in the world (first sensor) frame.
    pub world_from_sensor: Isometry3<f64>,
    /// Tracked, first, or why the prediction was kept.
    pub status: FrameStatus,
    /// The ICP result when ICP succeeded.
    pub registration: Option<RegistrationResult>,
    /// Points used as the ICP source.
    pub source_points: usize,
    /// Points in the local map after the update.
    pub map_points: usize,
    /// Correspondence threshold σ used, metres.
    pub sigma: f64,
    /// Wall time per stage, milliseconds.
    pub timings: StageTimings,
}

/// The odometry state: local map, poses, adaptive threshold.
#[derive(Debug, Clone)]
pub struct Odometry {
    config: OdometryConfig,
    voxel_size: Option<f64>,
    local_map: Option<LocalMap>,
    threshold: AdaptiveThreshold,
    poses: Vec<Isometry3<f64>>,
    target: PointCloud,
    /// The last frame after the range crop (sensor frame).
    frame_points: Vec<Point3<f64>>,
    /// The local map's tree, rebuilt in place every frame
    /// ([`KdTree::rebuild`]: its arrays are reused, no fresh pages).
    tree: Option<KdTree>,
}

impl Odometry {
    /// An odometry state with a validated config and no frame yet.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] from [`OdometryConfig::validate`].
    pub fn new(config: OdometryConfig) -> Result<Self> {
        config.validate()?;
        Ok(Odometry {
            voxel_size: config.voxel_size,
            local_map: None,
            threshold: AdaptiveThreshold::new(
                config.initial_threshold,
                config.min_motion,
                config.max_range,
            ),
            poses: Vec::new(),
            target: PointCloud::default(),
            frame_points: Vec::new(),
            tree: None,
            config,
        })
    }

    /// The config in force.
    pub fn config(&self) -> &OdometryConfig {
        &self.config
    }

    /// The map voxel size in metres, once known (after the first non-empty frame).
    pub fn voxel_size(&self) -> Option<f64> {
        self.voxel_size
    }

    /// `world_from_sensor` of every frame processed so far.
    pub fn poses(&self) -> &[Isometry3<f64>] {
        &self.poses
    }

    /// The current local map points (world frame), e.g. for a viewer.
    pub fn local_map_points(&self) -> &[Point3<f64>] {
        &self.target.points
    }

    /// The last frame after the range crop (step 1): finite points within
    /// `[min_range, max_range]` of the sensor, sensor frame, metres, in input
    /// order. Empty before the first frame and after a skipped one.
    pub fn frame_points(&self) -> &[Point3<f64>] {
        &self.frame_points
    }

    /// Runs one frame (points in the sensor frame, metres) through the
    /// odometry and returns its pose. Never fails: a frame that cannot be
    /// registered keeps the prediction and its status says why.
    pub fn process(&mut self, frame: &PointCloud) -> FrameResult {
        let mut timings = StageTimings::start();
        // 1. Range crop and removal of non-finite points.
        self.frame_points =
            crop_ranges(&frame.points, self.config.min_range, self.config.max_range);
        timings.lap(Stage::Crop);
        // 2. Voxel downsampling: a fine cloud for the map, a coarse one for ICP.
        let voxel_size = self.resolve_voxel_size();
        let downsampled = downsample_frame(&self.frame_points, voxel_size);
        timings.lap(Stage::Voxel);
        // 3. Prediction with the constant-velocity model.
        let prediction = self.predict();
        // 4. Per-frame tree rebuild on the local map, normals of its new points.
        let tree = self.rebuild_tree();
        timings.lap(Stage::Tree);
        self.estimate_map_normals(&tree, voxel_size);
        timings.lap(Stage::Normals);
        // 5. Point-to-plane ICP against the local map from the prediction.
        let (world_from_sensor, mut status, registration) = match (&downsampled, &tree) {
            (Err(e), _) => (
                prediction,
                FrameStatus::failed("voxel downsampling", e),
                None,
            ),
            (_, Err(e)) => (
                prediction,
                FrameStatus::failed("local map k-d tree", e),
                None,
            ),
            (Ok((_, source)), Ok(tree)) => {
                self.register_frame(source, tree.as_ref(), &prediction, voxel_size)
            }
        };
        timings.lap(Stage::Icp);
        let source_points = downsampled.as_ref().map_or(0, |(_, source)| source.len());
        self.tree = tree.ok().flatten();
        // 6. The frame joins the local map; far voxels leave it.
        if let Ok((frame_downsample, _)) = &downsampled
            && let Err(e) = self.update_map(frame_downsample, &world_from_sensor, voxel_size)
        {
            status = FrameStatus::failed("local map update", &e);
        }
        timings.lap(Stage::MapUpdate);
        self.finish_frame(
            world_from_sensor,
            status,
            registration,
            source_points,
            timings,
        )
    }

    /// Records a frame that could not be read: it keeps the prediction and is
    /// flagged [`FrameStatus::Unreadable`].
    pub fn skip_frame(&mut self, reason: impl Into<String>) -> FrameResult {
        self.frame_points.clear();
        let prediction = self.predict();
        let status = FrameStatus::Unreadable {
            reason: reason.into(),
        };
        self.finish_frame(prediction, status, None, 0, StageTimings::start())
    }

    fn finish_frame(
        &mut self,
        world_from_sensor: Isometry3<f64>,
        status: FrameStatus,
        registration: Option<RegistrationResult>,
        source_points: usize,
        timings: StageTimings,
    ) -> FrameResult {
        let world_from_sensor = renormalized(world_from_sensor);
        let sigma = self.threshold.sigma();
        self.poses.push(world_from_sensor);
        FrameResult {
            index: self.poses.len() - 1,
            world_from_sensor,
            status,
            registration,
            source_points,
            map_points: self.local_map.as_ref().map_or(0, LocalMap::len),
            sigma,
            timings,
        }
    }

    /// Fixes the voxel size from the first non-empty frame when not configured.
    fn resolve_voxel_size(&mut self) -> f64 {
        if let Some(v) = self.voxel_size {
            return v;
        }
        if self.frame_points.is_empty() {
            return self.config.max_range / VOXELS_PER_RANGE;
        }
        let range = effective_max_range(&self.frame_points, self.config.max_range);
        self.threshold.set_max_range(range);
        let v = range / VOXELS_PER_RANGE;
        self.voxel_size = Some(v);
        v
    }

    /// Constant velocity: the last relative motion applied again.
    fn predict(&self) -> Isometry3<f64> {
        match self.poses.as_slice() {
            [] => Isometry3::identity(),
            [only] => *only,
            [.., before, last] => renormalized(last * (before.inverse() * last)),
        }
    }

    /// The local map's tree, rebuilt in place (taken from `self.tree`; the
    /// caller puts it back after the frame). `Ok(None)` before the first map.
    fn rebuild_tree(&mut self) -> Result<Option<KdTree>> {
        let Some(map) = self.local_map.as_mut() else {
            return Ok(None);
        };
        map.flatten_into(&mut self.target);
        match self.tree.take() {
            Some(mut tree) => tree.rebuild(&self.target.points).map(|()| Some(tree)),
            None => KdTree::build(&self.target.points).map(Some),
        }
    }

    fn estimate_map_normals(&mut self, tree: &Result<Option<KdTree>>, voxel_size: f64) {
        if let (Some(map), Ok(Some(tree))) = (self.local_map.as_mut(), tree) {
            map.estimate_normals(
                &mut self.target,
                tree,
                self.config.normal_radius_factor * voxel_size,
                self.config.normal_max_nn,
                self.config.normal_min_neighbors,
            );
        }
    }

    /// ICP of `source` (sensor frame) against the local map from `prediction`.
    fn register_frame(
        &mut self,
        source: &[Point3<f64>],
        tree: Option<&KdTree>,
        prediction: &Isometry3<f64>,
        voxel_size: f64,
    ) -> (Isometry3<f64>, FrameStatus, Option<RegistrationResult>) {
        // An empty frame is flagged whether or not a map exists yet (the
        // first frames of a sequence whose points all lie inside
        // `min_range` used to pass as "first").
        if source.is_empty() {
            return (*prediction, FrameStatus::Empty, None);
        }
        let Some(tree) = tree else {
            return (*prediction, FrameStatus::First, None);
        };
        // One ICP with two stages on one estimate: a wide, loose stage from
        // the prediction, bounded by the adaptive threshold σ (at most
        // `max_correspondence_voxels` voxels), brings the estimate into the
        // basin of a narrow one at the map's own scale, which bounds the
        // alignment error. Each stage has its own iteration budget.
        let sigma = self.threshold.sigma();
        let coarse_distance = (3.0 * sigma).min(self.config.max_correspondence_voxels * voxel_size);
        let fine_distance = (self.config.refine_distance_factor * voxel_size).min(3.0 * sigma);
        let config = IcpConfig {
            method: IcpMethod::PointToPlane,
            max_correspondence_distance: fine_distance,
            kernel: RobustKernel::GemanMcClure,
            kernel_scale: fine_distance / 3.0,
            max_iterations: self.config.max_iterations,
            translation_tolerance: self.config.translation_tolerance,
            rotation_tolerance: self.config.rotation_tolerance,
            degeneracy_threshold: self.config.degeneracy_threshold,
            coarse_stages: vec![IcpStage {
                stride: 1,
                max_correspondence_distance: Some(coarse_distance),
                kernel_scale: Some(sigma / 3.0),
                tolerance_factor: COARSE_TOLERANCE_FACTOR,
                max_iterations: Some(self.config.max_iterations),
            }],
        };
        let result = match icp::register(source, &self.target, tree, prediction, &config) {
            Ok(r) => r,
            Err(e) => return (*prediction, FrameStatus::failed("ICP", &e), None),
        };
        let correction = prediction.inverse() * result.target_from_source;
        log::debug!(
            "frame {}: sigma {sigma:.3} m; ICP moved the prediction {:.4} m / {:.4} deg in {} iterations",
            self.poses.len(),
            correction.translation.vector.norm(),
            correction.rotation.angle().to_degrees(),
            result.iterations,
        );
        match result {
            r if r.degenerate => (*prediction, FrameStatus::Degenerate, Some(r)),
            r => {
                self.threshold.update(&correction);
                (r.target_from_source, FrameStatus::Tracked, Some(r))
            }
        }
    }

    fn update_map(
        &mut self,
        frame_downsample: &[Point3<f64>],
        world_from_sensor: &Isometry3<f64>,
        voxel_size: f64,
    ) -> Result<()> {
        if frame_downsample.is_empty() {
            return Ok(());
        }
        let map = match &mut self.local_map {
            Some(map) => map,
            None => self
                .local_map
                .insert(LocalMap::new(voxel_size, self.config.max_points_per_voxel)?),
        };
        map.insert_transformed(frame_downsample, world_from_sensor);
        let sensor = Point3::from(world_from_sensor.translation.vector);
        map.remove_far(&sensor, self.config.max_range);
        Ok(())
    }
}

/// Default voxel size = effective range / this (KISS-ICP uses 100 with its
/// configured `max_range`; we use the 99th-percentile range of the data and
/// 50, measured on the BALM scans and the simulated street).
const VOXELS_PER_RANGE: f64 = 50.0;

/// [`IcpStage::tolerance_factor`] of the coarse stage of the per-frame
/// registration: it only has to bring the estimate into the basin of the
/// fine stage.
const COARSE_TOLERANCE_FACTOR: f64 = 10.0;

/// `pose` with its rotation quaternion scaled back to unit norm. Rounding in
/// long chains of pose products otherwise grows (the constant-velocity
/// prediction squares the last rotation) until rotations start to scale points.
fn renormalized(mut pose: Isometry3<f64>) -> Isometry3<f64> {
    pose.rotation.renormalize();
    pose
}

/// Finite points with `min_range ≤ ‖p‖ ≤ max_range` (metres, sensor frame).
fn crop_ranges(points: &[Point3<f64>], min_range: f64, max_range: f64) -> Vec<Point3<f64>> {
    let (min_sq, max_sq) = (min_range * min_range, max_range * max_range);
    // Parallel filter; rayon's collect keeps the input order.
    points
        .par_iter()
        .with_min_len(8192)
        .filter(|p| {
            let r_sq = p.coords.norm_squared();
            r_sq.is_finite() && r_sq >= min_sq && r_sq <= max_sq
        })
        .copied()
        .collect()
}

/// The 99th-percentile range of `points` (metres), capped at `max_range`.
fn effective_max_range(points: &[Point3<f64>], max_range: f64) -> f64 {
    let mut ranges: Vec<f64> = points.iter().map(|p| p.coords.norm()).collect();
    let k = ((ranges.len() as f64 * 0.99) as usize).min(ranges.len() - 1);
    let (_, r, _) = ranges.select_nth_unstable_by(k, f64::total_cmp);
    r.min(max_range)
}

/// Voxel downsampling of a cropped frame (first point per voxel, KISS-ICP):
/// returns `(frame_downsample at voxel_size/2, source at 1.5·voxel_size)`.
type Downsampled = (Vec<Point3<f64>>, Vec<Point3<f64>>);

fn downsample_frame(points: &[Point3<f64>], voxel_size: f64) -> Result<Downsampled> {
    let first = |points: &[Point3<f64>], size: f64| -> Result<Vec<Point3<f64>>> {
        let representatives = voxel::voxel_representatives(points, 1.0 / size)?;
        Ok(representatives.iter().map(|&i| points[i]).collect())
    };
    let frame_downsample = first(points, 0.5 * voxel_size)?;
    let source = first(&frame_downsample, 1.5 * voxel_size)?;
    Ok((frame_downsample, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12 m × 8 m room (four walls 3 m high and a floor) around the
    /// sensor, sampled every 10 cm: every degree of freedom is constrained.
    fn room() -> PointCloud {
        let mut points = Vec::new();
        for i in 0..120 {
            for j in 0..30 {
                let (a, h) = (i as f64 * 0.1 - 6.0, j as f64 * 0.1 - 1.5);
                points.extend([Point3::new(a, -4.0, h), Point3::new(a, 4.0, h)]);
                if i < 80 {
                    let b = i as f64 * 0.1 - 4.0;
                    points.extend([Point3::new(-6.0, b, h), Point3::new(6.0, b, h)]);
                }
            }
            for j in 0..80 {
                points.push(Point3::new(
                    i as f64 * 0.1 - 6.0,
                    j as f64 * 0.1 - 4.0,
                    -1.5,
                ));
            }
        }
        PointCloud::from_points(points)
    }

    /// The first frame defines the world; a frame whose points all lie
    /// inside `min_range` is empty and keeps the (constant-velocity)
    /// prediction; the next frames track again.
    #[test]
    fn first_empty_and_tracked_statuses() {
        let mut odometry = Odometry::new(OdometryConfig::default()).unwrap();
        let first = odometry.process(&room());
        assert_eq!(first.status, FrameStatus::First);
        assert_eq!(first.world_from_sensor, Isometry3::identity());
        let tiny = PointCloud::from_points(vec![Point3::new(0.1, 0.0, 0.0); 50]);
        let empty = odometry.process(&tiny);
        assert_eq!(empty.status, FrameStatus::Empty);
        assert!(odometry.frame_points().is_empty());
        assert_eq!(empty.world_from_sensor, Isometry3::identity());
        let tracked = odometry.process(&room());
        assert_eq!(tracked.status, FrameStatus::Tracked);
        assert!(tracked.world_from_sensor.translation.vector.norm() < 0.01);
        assert_eq!(odometry.poses().len(), 3);
    }

    /// The crop keeps finite points within [min_range, max_range], in order.
    #[test]
    fn crop_keeps_finite_points_in_range_in_order() {
        let points = [
            Point3::new(0.5, 0.0, 0.0),
            Point3::new(2.0, 0.0, 0.0),
            Point3::new(f64::NAN, 0.0, 0.0),
            Point3::new(0.0, 150.0, 0.0),
            Point3::new(0.0, -3.0, 0.0),
        ];
        assert_eq!(crop_ranges(&points, 1.0, 100.0), [points[1], points[4]]);
    }

    #[test]
    fn config_errors_name_the_field() {
        let bad = OdometryConfig {
            max_range: 0.5,
            ..OdometryConfig::default()
        };
        assert!(matches!(
            Odometry::new(bad),
            Err(Error::InvalidParameter {
                name: "max_range",
                ..
            })
        ));
        let text = "voxel_size = -1.0";
        assert!(OdometryConfig::from_toml(text).is_err());
        assert!(OdometryConfig::from_toml("no_such_key = 1").is_err());
    }
}
