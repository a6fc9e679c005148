//! Camera framing and projection in f64, independent of the GPU.
//!
//! The viewer places its orbit camera with [`frame_bounds`]; the same
//! [`CameraFrame::project`] lets tests and tools predict where a world point
//! lands in a screenshot.

use nalgebra::{Isometry3, Perspective3, Point3, Vector3};

/// Vertical field of view of the viewer, radians (45°, kiss3d's default).
pub const FOV_Y: f64 = std::f64::consts::FRAC_PI_4;
/// Azimuth of the default view direction (from `at` towards the eye), radians
/// from +x towards +y: the camera sits south-south-west of the data.
const VIEW_AZIMUTH: f64 = -1.9;
/// Elevation of the default view direction above the xy plane, radians (35°).
const VIEW_ELEVATION: f64 = 0.61;
/// Fraction of the half field of view the data may use (the rest is margin).
const FILL: f64 = 0.92;

/// A perspective camera: where it is, what it looks at, its lens and clip planes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraFrame {
    /// Eye position, world frame (metres).
    pub eye: Point3<f64>,
    /// Point looked at and orbited around, world frame (metres).
    pub at: Point3<f64>,
    /// World up axis (unit); +z for LiDAR and LAS data.
    pub up: Vector3<f64>,
    /// Vertical field of view, radians.
    pub fov_y: f64,
    /// Near clip distance from the eye, metres (> 0).
    pub znear: f64,
    /// Far clip distance from the eye, metres (> `znear`).
    pub zfar: f64,
}

impl CameraFrame {
    /// Distance from the eye to `at`, metres.
    pub fn distance(&self) -> f64 {
        (self.at - self.eye).norm()
    }

    /// Pixel position of world point `p` in a `width` × `height` image, origin
    /// at the top-left corner, x right, y down; `None` when `p` is behind the
    /// eye or outside the near/far planes.
    ///
    /// Standard pinhole model: view = right-handed look-at (eye, at, up), then
    /// the OpenGL perspective matrix with `fov_y` and aspect `width / height`.
    pub fn project(&self, p: &Point3<f64>, width: u32, height: u32) -> Option<[f64; 2]> {
        let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
        let view = Isometry3::look_at_rh(&self.eye, &self.at, &self.up);
        let in_camera = view * p;
        let depth = -in_camera.z;
        if !(self.znear..=self.zfar).contains(&depth) {
            return None;
        }
        let proj = Perspective3::new(w / h, self.fov_y, self.znear, self.zfar);
        let ndc = proj.project_point(&in_camera);
        Some([(ndc.x + 1.0) * 0.5 * w, (1.0 - ndc.y) * 0.5 * h])
    }
}

/// An orbit camera looking at the centre of the box `lo`–`hi` from the
/// south-south-west, 35° above the horizon, as close as possible while all 8
/// corners stay inside the view (92 % of the half field of view).
///
/// Parameters: `lo`, `hi` (box corners, metres, finite), `aspect` (image
/// width / height, > 0). A degenerate box (one point) is treated as a 1 m cube.
///
/// Algorithm: with forward `f`, right `u` and up `v` of the view, a corner at
/// offset `q` from the centre is visible at distance `d` when
/// `|q·u| ≤ tan(fov_x/2)·(d + q·f)` and likewise for `v` with `fov_y`; `d` is
/// the largest lower bound over the corners. Near and far planes bracket the
/// box's bounding sphere.
pub fn frame_bounds(lo: &Point3<f64>, hi: &Point3<f64>, aspect: f64) -> CameraFrame {
    let mut half = (hi - lo) * 0.5;
    if half.norm().is_nan() || half.norm() <= 1e-9 {
        half = Vector3::repeat(0.5);
    }
    let at = nalgebra::center(lo, hi);
    let up = Vector3::z();
    let to_eye = Vector3::new(
        VIEW_AZIMUTH.cos() * VIEW_ELEVATION.cos(),
        VIEW_AZIMUTH.sin() * VIEW_ELEVATION.cos(),
        VIEW_ELEVATION.sin(),
    );
    let forward = -to_eye;
    let right = forward.cross(&up).normalize();
    let cam_up = right.cross(&forward);
    let aspect = if aspect.is_finite() && aspect > 0.0 {
        aspect
    } else {
        1.0
    };
    let tan_y = (FOV_Y * 0.5).tan() * FILL;
    let tan_x = (FOV_Y * 0.5).tan() * aspect * FILL;
    let radius = half.norm();
    let mut distance = radius * 1e-3;
    for corner in 0..8 {
        let sign = |bit: usize| if corner & bit == 0 { -1.0 } else { 1.0 };
        let q = Vector3::new(sign(1) * half.x, sign(2) * half.y, sign(4) * half.z);
        let along = q.dot(&forward);
        distance = distance
            .max(q.dot(&right).abs() / tan_x - along)
            .max(q.dot(&cam_up).abs() / tan_y - along);
    }
    let eye = at + to_eye * distance;
    CameraFrame {
        eye,
        at,
        up,
        fov_y: FOV_Y,
        znear: ((distance - radius) * 0.5).max(radius * 1e-3),
        zfar: (distance + radius) * 4.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_box_corners_project_inside_and_fill_the_view() {
        let lo = Point3::new(637_000.0, 851_000.0, 400.0);
        let hi = Point3::new(637_800.0, 851_500.0, 520.0);
        let (w, h) = (1280, 800);
        let cam = frame_bounds(&lo, &hi, f64::from(w) / f64::from(h));
        let mut max_ndc: f64 = 0.0;
        for c in 0..8 {
            let p = Point3::new(
                if c & 1 == 0 { lo.x } else { hi.x },
                if c & 2 == 0 { lo.y } else { hi.y },
                if c & 4 == 0 { lo.z } else { hi.z },
            );
            let px = cam
                .project(&p, w, h)
                .expect("corner in front of the camera");
            let ndc = [2.0 * px[0] / 1280.0 - 1.0, 1.0 - 2.0 * px[1] / 800.0];
            max_ndc = max_ndc.max(ndc[0].abs()).max(ndc[1].abs());
        }
        // Inside the view, and tight: the outermost corner touches the 92 % margin.
        assert!(
            (max_ndc - FILL).abs() < 1e-9,
            "outermost corner at ndc {max_ndc}"
        );
        // The centre projects to the image centre.
        let c = cam.project(&cam.at, w, h).expect("centre visible");
        assert!((c[0] - 640.0).abs() < 1e-6 && (c[1] - 400.0).abs() < 1e-6);
    }

    #[test]
    fn higher_points_project_higher_in_the_image() {
        let cam = frame_bounds(&Point3::origin(), &Point3::new(10.0, 10.0, 10.0), 1.0);
        let low = cam.project(&Point3::new(5.0, 5.0, 0.0), 100, 100).unwrap();
        let high = cam.project(&Point3::new(5.0, 5.0, 10.0), 100, 100).unwrap();
        assert!(high[1] < low[1]);
        // Behind the eye: not projected.
        let behind = cam.eye + (cam.eye - cam.at);
        assert_eq!(cam.project(&behind, 100, 100), None);
    }

    #[test]
    fn degenerate_box_gets_a_usable_camera() {
        let p = Point3::new(1.0, 2.0, 3.0);
        let cam = frame_bounds(&p, &p, 0.0);
        assert!(cam.distance() > 0.1 && cam.znear > 0.0 && cam.zfar > cam.znear);
        assert!(cam.project(&p, 10, 10).is_some());
    }
}
