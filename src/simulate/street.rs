//! The procedural street: a curved centreline and the objects along it.

use nalgebra::{Point3, Vector2, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::scene::{Primitive, Scene};

/// Radius of the bend, metres (shrunk for short drives).
const BEND_RADIUS_M: f64 = 40.0;
/// Heading change over the bend, radians (75°, a left turn).
const BEND_ANGLE_RAD: f64 = 75.0 * std::f64::consts::PI / 180.0;
/// The scene extends this far before the start and after the end, metres.
const SCENE_MARGIN_M: f64 = 30.0;

/// The street's centreline: a straight, a circular left bend of 75°, and a
/// straight of the same length as the first, `length` metres in total,
/// parametrised by arc length `s` (extrapolated along the straights for
/// `s < 0` and `s > length`). Starts at the world origin heading along +x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreetPath {
    straight_m: f64,
    radius_m: f64,
    angle_rad: f64,
}

impl StreetPath {
    /// The centreline of a `length`-metre drive (the bend takes at most a
    /// third of it). `length` should be finite and positive; other values
    /// give a degenerate path of length 0.
    pub fn new(length: f64) -> StreetPath {
        let length = if length.is_finite() {
            length.max(0.0)
        } else {
            0.0
        };
        let radius_m = BEND_RADIUS_M.min(length / 3.0 / BEND_ANGLE_RAD);
        let straight_m = 0.5 * (length - radius_m * BEND_ANGLE_RAD);
        StreetPath {
            straight_m,
            radius_m,
            angle_rad: BEND_ANGLE_RAD,
        }
    }

    /// Total length, metres.
    pub fn length(&self) -> f64 {
        2.0 * self.straight_m + self.radius_m * self.angle_rad
    }

    /// Position (x–y, metres) and heading (radians from +x, counter-clockwise)
    /// of the centreline at arc length `s`.
    pub fn point_and_heading(&self, s: f64) -> (Vector2<f64>, f64) {
        let bend_end = self.straight_m + self.radius_m * self.angle_rad;
        if s <= self.straight_m || self.radius_m <= 0.0 {
            (Vector2::new(s, 0.0), 0.0)
        } else if s <= bend_end {
            let u = (s - self.straight_m) / self.radius_m;
            let p = Vector2::new(
                self.straight_m + self.radius_m * u.sin(),
                self.radius_m * (1.0 - u.cos()),
            );
            (p, u)
        } else {
            let (end, heading) = self.point_and_heading(bend_end);
            (
                end + (s - bend_end) * Vector2::new(heading.cos(), heading.sin()),
                heading,
            )
        }
    }

    /// Point `lateral` metres to the left of the centreline at `s`.
    fn offset_point(&self, s: f64, lateral: f64) -> (Vector2<f64>, f64) {
        let (p, heading) = self.point_and_heading(s);
        let left = Vector2::new(-heading.sin(), heading.cos());
        (p + lateral * left, heading)
    }
}

impl Scene {
    /// A procedural street along [`StreetPath::new`]`(drive_length)`,
    /// deterministic for a `seed` (ChaCha8).
    ///
    /// Contents, on both sides of a street centred on the path, from 30 m
    /// before the start to 30 m after the end:
    /// - the ground plane `z = 0`;
    /// - buildings: boxes 8–25 m wide (along the street), 8–12 m deep, 6–20 m
    ///   high, set back 9–14 m from the centreline, with gaps of 0–4 m and
    ///   occasional 10–15 m side streets, each façade with pilasters
    ///   (0.6 m × 0.5 m) every ~4 m, so the façades vary along the drive;
    /// - street lights: poles of radius 0.12 m, 7 m high, every 20–30 m, 6.2 m out;
    /// - trees (trunk cylinder + sphere crown) every 10–20 m, 7 m out;
    /// - parked cars (body and cabin boxes) in the parking lanes 4.3 m out.
    pub fn street(seed: u64, drive_length: f64) -> Scene {
        let path = StreetPath::new(drive_length);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut primitives = Vec::new();
        let (start, end) = (-SCENE_MARGIN_M, path.length() + SCENE_MARGIN_M);
        for side in [1.0, -1.0] {
            add_buildings(&path, side, start, end, &mut rng, &mut primitives);
            add_poles(&path, side, start, end, &mut rng, &mut primitives);
            add_trees(&path, side, start, end, &mut rng, &mut primitives);
            add_parked_cars(&path, side, start, end, &mut rng, &mut primitives);
        }
        Scene::new(primitives, Some(0.0))
    }
}

fn add_buildings(
    path: &StreetPath,
    side: f64,
    start: f64,
    end: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Primitive>,
) {
    let mut s = start;
    while s < end {
        let width = rng.random_range(8.0..25.0);
        let depth = rng.random_range(8.0..12.0);
        let height = rng.random_range(6.0..20.0);
        let setback = rng.random_range(9.0..14.0);
        let reflectivity = rng.random_range(0.4..0.6);
        let (mid, heading) = path.offset_point(s + 0.5 * width, side * (setback + 0.5 * depth));
        out.push(Primitive::Box {
            center: Point3::new(mid.x, mid.y, 0.5 * height),
            half_extents: Vector3::new(0.5 * width, 0.5 * depth, 0.5 * height),
            yaw: heading,
            reflectivity,
        });
        // Pilasters on the street-facing façade.
        let count = (width / 4.0).floor() as usize;
        for k in 0..count {
            let along = -0.5 * width + (k as f64 + 0.5) * width / count as f64;
            let (c, sn) = (heading.cos(), heading.sin());
            let tangent = Vector2::new(c, sn);
            let left = Vector2::new(-sn, c);
            let p = mid + along * tangent - side * (0.5 * depth + 0.25) * left;
            out.push(Primitive::Box {
                center: Point3::new(p.x, p.y, 0.5 * height),
                half_extents: Vector3::new(0.3, 0.25, 0.5 * height),
                yaw: heading,
                reflectivity,
            });
        }
        let gap = if rng.random_bool(0.15) {
            rng.random_range(10.0..15.0)
        } else {
            rng.random_range(0.0..4.0)
        };
        s += width + gap;
    }
}

fn add_poles(
    path: &StreetPath,
    side: f64,
    start: f64,
    end: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Primitive>,
) {
    let mut s = start + rng.random_range(0.0..20.0);
    while s < end {
        let (p, _) = path.offset_point(s, side * 6.2);
        out.push(Primitive::Cylinder {
            center: p,
            z_min: 0.0,
            z_max: 7.0,
            radius: 0.12,
            reflectivity: 0.6,
        });
        s += rng.random_range(20.0..30.0);
    }
}

fn add_trees(
    path: &StreetPath,
    side: f64,
    start: f64,
    end: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Primitive>,
) {
    let mut s = start + rng.random_range(0.0..10.0);
    while s < end {
        let (p, _) = path.offset_point(s, side * rng.random_range(6.8..7.4));
        let trunk_height = rng.random_range(2.5..3.5);
        let crown_radius = rng.random_range(1.5..2.5);
        out.push(Primitive::Cylinder {
            center: p,
            z_min: 0.0,
            z_max: trunk_height,
            radius: rng.random_range(0.15..0.25),
            reflectivity: 0.3,
        });
        out.push(Primitive::Sphere {
            center: Point3::new(p.x, p.y, trunk_height + 0.7 * crown_radius),
            radius: crown_radius,
            reflectivity: 0.15,
        });
        s += rng.random_range(10.0..20.0);
    }
}

fn add_parked_cars(
    path: &StreetPath,
    side: f64,
    start: f64,
    end: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Primitive>,
) {
    let mut s = start;
    while s < end {
        if rng.random_bool(0.5) {
            let (p, heading) = path.offset_point(s + 2.25, side * 4.3);
            let yaw = heading + rng.random_range(-0.05..0.05);
            let reflectivity = rng.random_range(0.5..0.9);
            out.push(Primitive::Box {
                center: Point3::new(p.x, p.y, 0.6),
                half_extents: Vector3::new(2.25, 0.9, 0.45),
                yaw,
                reflectivity,
            });
            out.push(Primitive::Box {
                center: Point3::new(p.x, p.y, 1.3),
                half_extents: Vector3::new(1.2, 0.8, 0.25),
                yaw,
                reflectivity: 0.2,
            });
        }
        s += rng.random_range(5.5..9.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_continuous_and_has_requested_length() {
        let path = StreetPath::new(200.0);
        assert!((path.length() - 200.0).abs() < 1e-9);
        let mut prev = path.point_and_heading(-50.0 * 0.21);
        for k in -49..=1000 {
            let s = k as f64 * 0.21;
            let cur = path.point_and_heading(s);
            // Unit speed: consecutive samples 0.21 m apart (chord ≤ arc).
            let step = (cur.0 - prev.0).norm();
            assert!(step <= 0.21 + 1e-9 && step > 0.2099, "s = {s}: step {step}");
            assert!((cur.1 - prev.1).abs() < 0.21 / 40.0 + 1e-9);
            prev = cur;
        }
        let (_, heading) = path.point_and_heading(200.0);
        assert!((heading - BEND_ANGLE_RAD).abs() < 1e-12);
    }

    #[test]
    fn street_is_deterministic_and_varied() {
        let a = Scene::street(7, 200.0);
        let b = Scene::street(7, 200.0);
        let c = Scene::street(8, 200.0);
        assert_eq!(a.primitives(), b.primitives());
        assert_ne!(a.primitives(), c.primitives());
        assert!(a.primitives().len() > 100, "{}", a.primitives().len());
    }
}
