//! A deterministic spinning-LiDAR simulator for the built-in demo and tests.
//!
//! A vehicle drives along a procedural street ([`Scene::street`]: ground,
//! façades with gaps and pilasters, poles, trees, parked cars) on a curved
//! path of ~200 m ([`StreetPath`]) at ~10 m/s, and a 64-beam LiDAR mounted
//! 1.7 m above the ground ray-casts one revolution per frame
//! ([`simulate_frame`]). The output is what a real sensor log gives —
//! frames in the sensor frame, with ground-truth `world_from_sensor` poses
//! and timestamps — so the odometry can be run and evaluated without data.
//!
//! Everything is seeded: the same [`SimulationConfig`] gives bit-identical
//! frames at any thread count (the range noise comes from a counter-based
//! hash of `(seed, frame, ray)`, not from a shared generator); across
//! platforms only the last bits of `sin`/`cos`/`ln` may differ.
//!
//! # Example
//! ```
//! use pointpipe::simulate::{simulate_sequence, SimulationConfig, LidarModel};
//! let config = SimulationConfig {
//!     frames: 3,
//!     lidar: LidarModel { azimuth_step_deg: 2.0, ..Default::default() }, // coarse: fast doc test
//!     ..Default::default()
//! };
//! let seq = simulate_sequence(&config)?;
//! assert_eq!(seq.frames.len(), 3);
//! assert_eq!(seq.world_from_sensor.len(), 3);
//! assert!((seq.times[1] - 0.1).abs() < 1e-12);
//! assert!(seq.frames[0].len() > 5000);
//! # Ok::<(), pointpipe::Error>(())
//! ```

mod lidar;
mod scene;
mod street;

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

pub use lidar::{LidarModel, simulate_frame};
pub use scene::{Hit, Primitive, Scene};
pub use street::StreetPath;

use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// Parameters of a simulated drive.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SimulationConfig {
    /// The sensor. Default: [`LidarModel::default`] (64 beams, HDL-64E-like).
    pub lidar: LidarModel,
    /// Number of frames. Default 200.
    pub frames: usize,
    /// Seed of the scene and of the range noise. Default 42.
    pub seed: u64,
    /// Length of the street path, metres. Default 200. The frames must fit:
    /// `(frames − 1) · frame_period · speed` (plus ≤ 1.3 m of speed
    /// variation) must not exceed it.
    pub drive_length: f64,
    /// Time between frames, seconds. Default 0.1 (10 Hz).
    pub frame_period: f64,
    /// Mean speed of the vehicle, m/s. Default 10. The speed varies by ±10 %
    /// with an 8 s period.
    pub speed: f64,
    /// Height of the sensor above the ground, metres. Default 1.7.
    pub sensor_height: f64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            lidar: LidarModel::default(),
            frames: 200,
            seed: 42,
            drive_length: 200.0,
            frame_period: 0.1,
            speed: 10.0,
            sensor_height: 1.7,
        }
    }
}

/// Amplitude of the speed variation, as a fraction of the mean speed.
const SPEED_VARIATION: f64 = 0.1;
/// Period of the speed variation, seconds.
const SPEED_PERIOD_S: f64 = 8.0;
/// Lateral offset of the vehicle from the centreline (right lane), metres.
const LANE_OFFSET_M: f64 = -1.5;

impl SimulationConfig {
    /// Checks every field (and the lidar model).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for: no frames or more than 100 000;
    /// a non-finite or non-positive `drive_length`, `frame_period`, `speed`
    /// or `sensor_height`; a drive that does not fit in `drive_length`;
    /// an invalid [`LidarModel`].
    pub fn validate(&self) -> Result<()> {
        self.lidar.validate()?;
        if self.frames == 0 || self.frames > 100_000 {
            return Err(Error::invalid(
                "frames",
                self.frames,
                "must be in 1..=100000",
            ));
        }
        for (name, v) in [
            ("drive_length", self.drive_length),
            ("frame_period", self.frame_period),
            ("speed", self.speed),
            ("sensor_height", self.sensor_height),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(Error::invalid(name, v, "must be finite and > 0"));
            }
        }
        let distance = self.drive_distance();
        if distance > self.drive_length {
            return Err(Error::invalid(
                "drive_length",
                self.drive_length,
                format!(
                    "{} frames at {} s and {} m/s drive {distance:.1} m; \
                     lengthen the drive or use fewer frames",
                    self.frames, self.frame_period, self.speed
                ),
            ));
        }
        Ok(())
    }

    /// Distance driven by the last frame, metres (what `drive_length` must
    /// at least be).
    pub fn drive_distance(&self) -> f64 {
        self.distance_at(self.frames.saturating_sub(1) as f64 * self.frame_period)
    }

    /// Distance driven at time `t`, metres: `v t + A sin(ω t)` with
    /// `A = 0.1 v / ω`, i.e. speed `v (1 + 0.1 cos ω t)`, never negative.
    fn distance_at(&self, t: f64) -> f64 {
        let omega = std::f64::consts::TAU / SPEED_PERIOD_S;
        self.speed * t + SPEED_VARIATION * self.speed / omega * (omega * t).sin()
    }

    /// Ground-truth `world_from_sensor` at time `t` (seconds): the right
    /// lane of `path`, sensor `sensor_height` above the ground, heading
    /// along the path, with a small body wobble (pitch ±0.46°, roll ±0.34°,
    /// yaw ±0.29°, height ±2 cm).
    pub fn world_from_sensor(&self, path: &StreetPath, t: f64) -> Isometry3<f64> {
        let s = self.distance_at(t);
        let (centre, heading) = path.point_and_heading(s);
        let left = nalgebra::Vector2::new(-heading.sin(), heading.cos());
        let xy = centre + LANE_OFFSET_M * left;
        let wobble = |amplitude: f64, period: f64, phase: f64| {
            amplitude * (std::f64::consts::TAU * t / period + phase).sin()
        };
        let z = self.sensor_height + wobble(0.02, 1.3, 0.0);
        let roll = wobble(0.006, 2.3, 1.0);
        let pitch = wobble(0.008, 1.7, 0.5);
        let yaw = heading + wobble(0.005, 2.9, 2.0);
        Isometry3::from_parts(
            Translation3::from(Vector3::new(xy.x, xy.y, z)),
            UnitQuaternion::from_euler_angles(roll, pitch, yaw),
        )
    }
}

/// A simulated drive: frames with their ground truth.
#[derive(Debug, Clone)]
pub struct SimulatedSequence {
    /// One cloud per frame, sensor frame, metres, with intensity in [0, 1].
    pub frames: Vec<PointCloud>,
    /// Ground-truth pose of each frame.
    pub world_from_sensor: Vec<Isometry3<f64>>,
    /// Timestamp of each frame, seconds from the first (`i · frame_period`).
    pub times: Vec<f64>,
}

/// A simulated drive, frame by frame: the scene, the path and the config,
/// so that frames can be produced (and written) one at a time without
/// holding the whole sequence in memory (~3 MB per default frame).
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimulationConfig,
    scene: Scene,
    path: StreetPath,
}

impl Simulator {
    /// Validates `config` and builds [`Scene::street`]`(seed, drive_length)`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] from [`SimulationConfig::validate`].
    pub fn new(config: &SimulationConfig) -> Result<Simulator> {
        config.validate()?;
        Ok(Simulator {
            config: *config,
            scene: Scene::street(config.seed, config.drive_length),
            path: StreetPath::new(config.drive_length),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SimulationConfig {
        &self.config
    }

    /// The scene.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// Number of frames, `config.frames`.
    pub fn frames(&self) -> usize {
        self.config.frames
    }

    /// Timestamp of frame `index`, seconds: `index · frame_period`.
    pub fn time(&self, index: usize) -> f64 {
        index as f64 * self.config.frame_period
    }

    /// Ground-truth `world_from_sensor` of frame `index`.
    pub fn world_from_sensor(&self, index: usize) -> Isometry3<f64> {
        self.config.world_from_sensor(&self.path, self.time(index))
    }

    /// Frame `index` (sensor frame): [`simulate_frame`] at
    /// [`Simulator::world_from_sensor`] with the noise seed
    /// [`frame_seed`]`(seed, index)`. Any index works; indices beyond
    /// `frames` continue the drive past the end of the path.
    pub fn frame(&self, index: usize) -> PointCloud {
        simulate_frame(
            &self.scene,
            &self.world_from_sensor(index),
            &self.config.lidar,
            frame_seed(self.config.seed, index),
        )
    }
}

/// Simulates a whole drive and keeps it in memory (~3 MB per default frame,
/// ~650 MB for the default 200 frames; use [`Simulator`] to stream).
///
/// # Algorithm
/// 1. Validate `config`; build [`Scene::street`]`(seed, drive_length)`.
/// 2. For frame `i`: time `t_i = i · frame_period`, ground-truth pose
///    [`SimulationConfig::world_from_sensor`]`(t_i)`, and
///    [`simulate_frame`] with the noise seed [`frame_seed`]`(seed, i)`.
///
/// Frames are simulated one after the other, each in parallel over its rays.
///
/// # Errors
/// [`Error::InvalidParameter`] from [`SimulationConfig::validate`].
pub fn simulate_sequence(config: &SimulationConfig) -> Result<SimulatedSequence> {
    let simulator = Simulator::new(config)?;
    let indices = 0..simulator.frames();
    let sequence = SimulatedSequence {
        frames: indices.clone().map(|i| simulator.frame(i)).collect(),
        world_from_sensor: indices
            .clone()
            .map(|i| simulator.world_from_sensor(i))
            .collect(),
        times: indices.map(|i| simulator.time(i)).collect(),
    };
    log::info!(
        "simulated {} frames over {:.1} m",
        config.frames,
        config.drive_distance()
    );
    Ok(sequence)
}

/// Noise seed of frame `index` of a sequence seeded with `seed`:
/// `splitmix64(seed ⊕ splitmix64(index))`.
pub fn frame_seed(seed: u64, index: usize) -> u64 {
    lidar::splitmix64(seed ^ lidar::splitmix64(index as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_fits() {
        SimulationConfig::default().validate().unwrap();
        let too_many = SimulationConfig {
            frames: 250,
            ..Default::default()
        };
        assert!(matches!(
            too_many.validate(),
            Err(Error::InvalidParameter {
                name: "drive_length",
                ..
            })
        ));
        let zero = SimulationConfig {
            frames: 0,
            ..Default::default()
        };
        assert!(zero.validate().is_err());
        let nan = SimulationConfig {
            speed: f64::NAN,
            ..Default::default()
        };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn poses_follow_the_street_at_about_10_m_per_s() {
        let config = SimulationConfig::default();
        let path = StreetPath::new(config.drive_length);
        let poses: Vec<_> = (0..200)
            .map(|i| config.world_from_sensor(&path, i as f64 * 0.1))
            .collect();
        for pair in poses.windows(2) {
            let step = (pair[1].translation.vector - pair[0].translation.vector).norm();
            assert!((0.85..1.15).contains(&step), "{step}");
        }
        let (_, _, yaw_end) = poses[199].rotation.euler_angles();
        assert!(
            (yaw_end.to_degrees() - 75.0).abs() < 1.0,
            "{}",
            yaw_end.to_degrees()
        );
        assert!(
            poses
                .iter()
                .all(|p| (p.translation.z - 1.7).abs() <= 0.02 + 1e-12)
        );
    }
}
