//! Optional 3D viewer (cargo feature `viewer`, kiss3d 0.47 on wgpu).
//!
//! Shows point clouds as [`Layer`]s of coloured points, trajectories as
//! [`Polyline`]s, in an orbit camera framed on the data's bounds. Three ways to
//! use it:
//!
//! - [`show`]: an interactive window on a static [`Scene`] (keys in
//!   [`KEY_HELP`]): `pointpipe view`, `pointpipe register --view`;
//! - [`show_live`]: a window fed by a pipeline thread through a
//!   `std::sync::mpsc` channel of [`ViewerUpdate`]s: `pointpipe odometry --view`;
//! - [`render_screenshot`]: one frame to a PNG, no window (needs a GPU
//!   adapter such as Mesa's software Vulkan driver, no display): `--screenshot`.
//!
//! Large clouds are thinned for display with [`decimate_indices`] (one point
//! per voxel, budget `max_points`, default [`DEFAULT_MAX_POINTS`]); the window
//! title says so. Without a display or GPU every entry point returns
//! [`crate::Error::Viewer`] with instructions for headless use
//! ([`HEADLESS_HINT`]) instead of panicking.
//!
//! The algorithm modules never depend on this module.
//!
//! ```
//! use nalgebra::Point3;
//! use pointpipe::viewer::{Layer, Scene, color, frame_bounds};
//!
//! let points: Vec<Point3<f64>> = (0..1000)
//!     .map(|i| Point3::new((i % 10) as f64, (i / 10 % 10) as f64, (i / 100) as f64))
//!     .collect();
//! let mut scene = Scene::new();
//! scene.add_layer(Layer::from_points("grid", &points, color::palette(0), 200));
//! assert!(scene.layers[0].points.len() <= 200);
//! let (lo, hi) = scene.bounds().unwrap();
//! let camera = frame_bounds(&lo, &hi, 1280.0 / 800.0);
//! // The centre of the data lands in the centre of a 1280 x 800 picture.
//! let px = camera.project(&nalgebra::center(&lo, &hi), 1280, 800).unwrap();
//! assert!((px[0] - 640.0).abs() < 1e-6 && (px[1] - 400.0).abs() < 1e-6);
//! // `pointpipe::viewer::render_screenshot(&scene, 1280, 800, path)` would draw it.
//! ```

pub mod camera;
pub mod color;
pub mod decimate;
pub mod live;
pub mod render;
pub mod scene;

pub use camera::{CameraFrame, frame_bounds};
pub use color::ColorMode;
pub use decimate::{Decimation, decimate_indices};
pub use live::{LiveScene, ViewerUpdate, decimate_points};
pub use render::{
    DEFAULT_SIZE, HEADLESS_HINT, KEY_HELP, check_display, render_screenshot, show, show_live,
};
pub use scene::{DEFAULT_MAX_POINTS, DEFAULT_POINT_SIZE, Layer, LayerRole, Polyline, Scene};
