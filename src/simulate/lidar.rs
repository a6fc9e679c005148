//! The spinning-LiDAR model and the ray casting of one frame.

use nalgebra::{Isometry3, Point3, Vector3};
use rayon::prelude::*;

use super::scene::Scene;
use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// A spinning multi-beam LiDAR (defaults: a Velodyne HDL-64E-like sensor as
/// in KITTI).
///
/// Beams are spread uniformly in elevation from `min_elevation_deg` to
/// `max_elevation_deg`; one revolution samples azimuths `0, step, 2·step, …`
/// below 360°. The sensor frame is x forward, y left, z up.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LidarModel {
    /// Number of beams (lasers). Default 64.
    pub beams: usize,
    /// Elevation of the lowest beam, degrees. Default −24.8.
    pub min_elevation_deg: f64,
    /// Elevation of the highest beam, degrees. Default 2.0.
    pub max_elevation_deg: f64,
    /// Horizontal angular resolution, degrees (360 / step azimuths per
    /// revolution). Default 0.2 (1800 azimuths).
    pub azimuth_step_deg: f64,
    /// Returns beyond this range are lost, metres. Default 80.
    pub max_range: f64,
    /// Returns closer than this are dropped, metres. Default 1.0.
    pub min_range: f64,
    /// Standard deviation of the Gaussian range noise, metres. Default 0.02.
    pub range_noise_std: f64,
}

impl Default for LidarModel {
    fn default() -> Self {
        LidarModel {
            beams: 64,
            min_elevation_deg: -24.8,
            max_elevation_deg: 2.0,
            azimuth_step_deg: 0.2,
            max_range: 80.0,
            min_range: 1.0,
            range_noise_std: 0.02,
        }
    }
}

impl LidarModel {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for: `beams` of 0 or above 1024;
    /// elevations not finite, outside ±90° or with min > max; an azimuth
    /// step not in [0.01, 360] degrees; ranges not finite or with
    /// `0 ≤ min_range < max_range` violated; a negative or non-finite noise.
    pub fn validate(&self) -> Result<()> {
        if self.beams == 0 || self.beams > 1024 {
            return Err(Error::invalid("beams", self.beams, "must be in 1..=1024"));
        }
        for (name, v) in [
            ("min_elevation_deg", self.min_elevation_deg),
            ("max_elevation_deg", self.max_elevation_deg),
        ] {
            if !v.is_finite() || v.abs() > 90.0 {
                return Err(Error::invalid(name, v, "must be finite, within ±90°"));
            }
        }
        if self.min_elevation_deg > self.max_elevation_deg {
            return Err(Error::invalid(
                "min_elevation_deg",
                self.min_elevation_deg,
                format!(
                    "must not exceed max_elevation_deg = {}",
                    self.max_elevation_deg
                ),
            ));
        }
        if !(0.01..=360.0).contains(&self.azimuth_step_deg) {
            return Err(Error::invalid(
                "azimuth_step_deg",
                self.azimuth_step_deg,
                "must be in [0.01, 360] degrees",
            ));
        }
        if !self.max_range.is_finite() || self.max_range <= 0.0 {
            return Err(Error::invalid(
                "max_range",
                self.max_range,
                "must be finite and > 0",
            ));
        }
        if !self.min_range.is_finite() || self.min_range < 0.0 || self.min_range >= self.max_range {
            return Err(Error::invalid(
                "min_range",
                self.min_range,
                format!("must be in [0, max_range = {})", self.max_range),
            ));
        }
        if !self.range_noise_std.is_finite() || self.range_noise_std < 0.0 {
            return Err(Error::invalid(
                "range_noise_std",
                self.range_noise_std,
                "must be finite and ≥ 0",
            ));
        }
        Ok(())
    }

    /// Azimuths per revolution, `round(360 / azimuth_step_deg)`.
    pub fn azimuths(&self) -> usize {
        (360.0 / self.azimuth_step_deg).round() as usize
    }

    /// Rays per revolution, `beams × azimuths`.
    pub fn rays(&self) -> usize {
        self.beams * self.azimuths()
    }

    /// Elevation of beam `k`, radians.
    fn elevation_rad(&self, k: usize) -> f64 {
        let span = self.max_elevation_deg - self.min_elevation_deg;
        let fraction = if self.beams > 1 {
            k as f64 / (self.beams - 1) as f64
        } else {
            0.0
        };
        (self.min_elevation_deg + fraction * span).to_radians()
    }
}

/// Simulates one revolution of `lidar` at `world_from_sensor` in `scene`.
///
/// # Parameters
/// - `scene`: the world (see [`Scene::street`]).
/// - `world_from_sensor`: the sensor pose; the whole revolution is taken from
///   this one pose (no motion distortion).
/// - `lidar`: the sensor model; an invalid model (see
///   [`LidarModel::validate`]) gives an empty cloud and a logged warning.
/// - `rng_seed`: seed of the range noise.
///
/// # Returns
/// Points in the **sensor frame**, metres, ordered by azimuth then beam
/// (lost rays left out), with `intensity` in [0, 1]: the surface
/// reflectivity × (0.3 + 0.7 |cos incidence|).
///
/// # Algorithm
/// For every ray (azimuth column in parallel with rayon):
/// 1. direction in the sensor frame from (elevation, azimuth), rotated to the
///    world;
/// 2. [`Scene::cast`] up to `max_range` (ground plane, then a 2D grid walk);
/// 3. range + `N(0, range_noise_std²)`, the noise drawn from a counter-based
///    generator (SplitMix64 of `(rng_seed, ray index)`, Box–Muller), so the
///    output is bit-identical at any thread count;
/// 4. keep the point when the noisy range is in `[min_range, max_range]`.
///
/// O(rays × grid cells crossed × primitives per cell); ~115k rays per frame
/// with the default model.
pub fn simulate_frame(
    scene: &Scene,
    world_from_sensor: &Isometry3<f64>,
    lidar: &LidarModel,
    rng_seed: u64,
) -> PointCloud {
    if let Err(e) = lidar.validate() {
        log::warn!("simulate_frame: {e}; returning an empty cloud");
        return PointCloud::default();
    }
    let elevations: Vec<(f64, f64)> = (0..lidar.beams)
        .map(|k| lidar.elevation_rad(k).sin_cos())
        .collect();
    let origin = Point3::from(world_from_sensor.translation.vector);
    let mut returns = vec![MISS; lidar.rays()];
    returns
        .par_chunks_mut(lidar.beams)
        .enumerate()
        .for_each(|(column, out)| {
            let (sin_az, cos_az) = (column as f64 * lidar.azimuth_step_deg)
                .to_radians()
                .sin_cos();
            for (beam, (ret, &(sin_el, cos_el))) in out.iter_mut().zip(&elevations).enumerate() {
                let dir_sensor = Vector3::new(cos_el * cos_az, cos_el * sin_az, sin_el);
                let dir_world = world_from_sensor.rotation * dir_sensor;
                let Some(hit) = scene.cast(&origin, &dir_world, lidar.max_range) else {
                    continue;
                };
                let ray_index = (column * lidar.beams + beam) as u64;
                let range =
                    hit.range + lidar.range_noise_std * standard_normal(rng_seed, ray_index);
                if range < lidar.min_range || range > lidar.max_range {
                    continue;
                }
                let incidence = hit.normal.dot(&dir_world).abs();
                let intensity = hit.reflectivity * (0.3 + 0.7 * incidence);
                *ret = Return {
                    point: Point3::from(dir_sensor * range),
                    intensity: intensity.clamp(0.0, 1.0) as f32,
                };
            }
        });
    let (points, intensity): (Vec<_>, Vec<_>) = returns
        .into_iter()
        .filter(|r| r.intensity >= 0.0)
        .map(|r| (r.point, r.intensity))
        .unzip();
    let mut cloud = PointCloud::from_points(points);
    cloud.intensity = Some(intensity);
    cloud
}

/// One ray's return; a negative intensity marks a lost ray.
#[derive(Clone, Copy)]
struct Return {
    point: Point3<f64>,
    intensity: f32,
}

const MISS: Return = Return {
    point: Point3::new(0.0, 0.0, 0.0),
    intensity: -1.0,
};

/// SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit hash.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal sample that depends only on `(seed, counter)`
/// (Box–Muller on two SplitMix64 outputs).
fn standard_normal(seed: u64, counter: u64) -> f64 {
    let a = splitmix64(seed ^ splitmix64(counter));
    let b = splitmix64(a);
    let scale = 1.0 / (1u64 << 53) as f64;
    let u1 = ((a >> 11) as f64 + 0.5) * scale; // (0, 1): ln is finite
    let u2 = (b >> 11) as f64 * scale;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_hdl64_sized() {
        let m = LidarModel::default();
        m.validate().unwrap();
        assert_eq!(m.azimuths(), 1800);
        assert_eq!(m.rays(), 115_200);
        assert!((m.elevation_rad(0).to_degrees() + 24.8).abs() < 1e-12);
        assert!((m.elevation_rad(63).to_degrees() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn invalid_models_rejected_and_give_empty_frames() {
        let bad = [
            LidarModel {
                beams: 0,
                ..Default::default()
            },
            LidarModel {
                azimuth_step_deg: 0.0,
                ..Default::default()
            },
            LidarModel {
                azimuth_step_deg: f64::NAN,
                ..Default::default()
            },
            LidarModel {
                min_elevation_deg: 5.0,
                ..Default::default()
            },
            LidarModel {
                min_range: 90.0,
                ..Default::default()
            },
            LidarModel {
                range_noise_std: -1.0,
                ..Default::default()
            },
            LidarModel {
                max_range: f64::INFINITY,
                ..Default::default()
            },
        ];
        let scene = Scene::new(vec![], Some(0.0));
        for m in bad {
            assert!(
                matches!(m.validate(), Err(Error::InvalidParameter { .. })),
                "{m:?}"
            );
            assert!(simulate_frame(&scene, &Isometry3::identity(), &m, 0).is_empty());
        }
    }

    #[test]
    fn noise_has_unit_variance_and_zero_mean() {
        let n = 200_000;
        let samples: Vec<f64> = (0..n).map(|i| standard_normal(42, i)).collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
    }

    #[test]
    fn ground_ring_at_the_right_range() {
        // Flat ground, sensor 1.7 m up, no noise: the lowest beam's ring has
        // range 1.7 / sin(24.8°) in every direction.
        let scene = Scene::new(vec![], Some(0.0));
        let lidar = LidarModel {
            range_noise_std: 0.0,
            ..Default::default()
        };
        let pose = Isometry3::translation(3.0, -2.0, 1.7);
        let cloud = simulate_frame(&scene, &pose, &lidar, 1);
        let expected = 1.7 / 24.8f64.to_radians().sin();
        let ring: Vec<_> = cloud
            .points
            .iter()
            .filter(|p| (p.coords.norm() - expected).abs() < 1e-9)
            .collect();
        assert_eq!(ring.len(), 1800);
        // Every return lies on the ground, 1.7 m below the sensor.
        assert!(cloud.points.iter().all(|p| (p.z + 1.7).abs() < 1e-9));
    }
}
