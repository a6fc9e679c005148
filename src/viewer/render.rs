//! Drawing a [`Scene`] with kiss3d 0.47 (wgpu): interactive windows, live
//! updates and one-shot screenshots.
//!
//! kiss3d works in `f32` (glam); positions are shifted by a fixed `f64`
//! origin (the centre of the data when first framed) before conversion, so
//! georeferenced LAS coordinates (10⁵–10⁶ m) keep millimetre precision.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use kiss3d::camera::OrbitCamera3d;
use kiss3d::color::Color;
use kiss3d::event::{Action, Key, WindowEvent};
use kiss3d::glamx::Vec3;
use kiss3d::post_processing::Tonemap;
use kiss3d::renderer::Polyline3d;
use kiss3d::scene::SceneNode3d;
use kiss3d::window::{OffscreenSurface, Window};
use nalgebra::Point3;

use super::camera::{CameraFrame, frame_bounds};
use super::live::{LiveScene, ViewerUpdate};
use super::scene::Scene;
use crate::{Error, Result};

/// How to get a picture without a display or GPU; part of every viewer error.
pub const HEADLESS_HINT: &str = "the viewer needs a display and a GPU (Vulkan) adapter. \
Headless, install a virtual display and Mesa's software Vulkan driver \
(Debian/Ubuntu: `apt-get install xvfb mesa-vulkan-drivers libvulkan1`) and run \
`xvfb-run -a -s '-screen 0 1280x800x24' pointpipe view FILE... --screenshot OUT.png`";

/// Keys of the interactive viewer, for help texts.
pub const KEY_HELP: &str = "1-9: toggle layer, C: switch colouring, B: before/after, \
R: reset camera, S: save screenshot, left drag: orbit, right drag: pan, scroll: zoom, \
Esc: close";

/// Size of interactive windows and screenshots when not given, pixels.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 800);

/// Renders `scene` once, framed on its bounds, into a `width` × `height` PNG
/// at `path`, without opening a window (kiss3d's off-screen surface: needs a
/// Vulkan/Metal/DX12 adapter, e.g. Mesa's software `lavapipe`, but no display).
///
/// Returns the camera used, so that callers can project points into the image.
///
/// Errors: [`Error::EmptyCloud`] when no drawn layer or line has a point;
/// [`Error::Viewer`] when no GPU adapter is found (the message says how to run
/// headless) or the PNG cannot be written.
pub fn render_screenshot(
    scene: &Scene,
    width: u32,
    height: u32,
    path: &Path,
) -> Result<CameraFrame> {
    let (lo, hi) = scene.bounds().ok_or_else(|| Error::EmptyCloud {
        what: "viewer scene".into(),
    })?;
    let frame = frame_bounds(&lo, &hi, f64::from(width) / f64::from(height.max(1)));
    let path = path.to_path_buf();
    run_guarded("off-screen rendering", || {
        pollster::block_on(async {
            let mut surface = OffscreenSurface::new(width, height).await;
            surface.set_background_color(rgba(scene.background));
            surface.set_tonemap(Tonemap::None);
            let origin = frame.at;
            let mut camera = orbit_camera(&frame, &origin);
            let mut root = SceneNode3d::empty();
            let drawable = Drawable::new(scene, &origin);
            drawable.draw(scene, surface.window_mut());
            surface.render_3d(&mut root, &mut camera).await;
            save_png(&surface.snap_image(), &path)
        })
    })?;
    Ok(frame)
}

/// Opens a `width` × `height` window on `scene` and blocks until it is closed
/// (keys: [`KEY_HELP`]). Must run on the main thread (winit). Screenshots
/// taken with `S` go to `pointpipe-screenshot-N.png` in the working directory.
///
/// Returns the scene as left by the user (visibility, colour mode).
///
/// Errors: [`Error::EmptyCloud`] for a scene without points;
/// [`Error::Viewer`] without a display or GPU adapter.
pub fn show(scene: Scene, width: u32, height: u32) -> Result<Scene> {
    if scene.bounds().is_none() {
        return Err(Error::EmptyCloud {
            what: "viewer scene".into(),
        });
    }
    let mut live = LiveScene::new(scene.title.clone());
    live.scene = scene;
    // No live layers in a static scene: point the indices past the end.
    live.map_layer = usize::MAX;
    live.frame_layer = usize::MAX;
    live.trajectory = usize::MAX;
    run_window(live, None, width, height).map(|l| l.scene)
}

/// Opens a window on `live` and applies the [`ViewerUpdate`]s arriving on
/// `updates` once per drawn frame, until the window is closed. The camera
/// follows the growing data until the user orbits, pans or zooms (`R`
/// re-frames and follows again). When the sender hangs up the last state
/// stays on screen. Closing the window drops `updates`, so the producer's
/// next `send` fails: its signal to stop. Must run on the main thread.
///
/// Returns the final scene (e.g. to save a screenshot with
/// [`render_screenshot`]).
///
/// Errors: [`Error::Viewer`] without a display or GPU adapter.
pub fn show_live(
    live: LiveScene,
    updates: Receiver<ViewerUpdate>,
    width: u32,
    height: u32,
) -> Result<LiveScene> {
    run_window(live, Some(updates), width, height)
}

/// The interactive loop shared by [`show`] and [`show_live`].
fn run_window(
    live: LiveScene,
    updates: Option<Receiver<ViewerUpdate>>,
    width: u32,
    height: u32,
) -> Result<LiveScene> {
    check_display()?;
    run_guarded("opening the viewer window", move || {
        pollster::block_on(interact(live, updates, width, height))
    })
}

async fn interact(
    mut live: LiveScene,
    mut updates: Option<Receiver<ViewerUpdate>>,
    width: u32,
    height: u32,
) -> Result<LiveScene> {
    let mut window = Window::new_with_size(&live.title_text(), width, height).await;
    window.set_background_color(rgba(live.scene.background));
    window.set_tonemap(Tonemap::None);
    window.rebind_close_key(Some(Key::Escape));
    let mut root = SceneNode3d::empty();
    let aspect = f64::from(width) / f64::from(height.max(1));

    let mut framed_bounds = live.scene.bounds();
    let mut origin =
        framed_bounds.map_or_else(Point3::origin, |(lo, hi)| nalgebra::center(&lo, &hi));
    let mut camera = match framed_bounds {
        Some((lo, hi)) => orbit_camera(&frame_bounds(&lo, &hi, aspect), &origin),
        None => orbit_camera(
            &frame_bounds(
                &Point3::new(-10.0, -10.0, -2.0),
                &Point3::new(10.0, 10.0, 2.0),
                aspect,
            ),
            &origin,
        ),
    };
    let mut follow = true;
    let mut drawable = Drawable::new(&live.scene, &origin);
    let mut want_screenshot = false;
    let mut title = live.title_text();

    while window.render_3d(&mut root, &mut camera).await {
        if want_screenshot {
            want_screenshot = false;
            let path = free_screenshot_path();
            match save_png(&window.snap_image(), &path) {
                Ok(()) => log::info!("screenshot saved to {}", path.display()),
                Err(e) => log::error!("{e}"),
            }
        }
        let mut changed = false;
        let mut reframe = false;
        for event in window.events().iter() {
            match event.value {
                WindowEvent::Key(key, Action::Press, _) => match key {
                    Key::C => {
                        live.scene.color_mode = live.scene.color_mode.next();
                        changed = true;
                    }
                    Key::B => {
                        live.scene.show_after = !live.scene.show_after;
                        changed = true;
                    }
                    Key::R => {
                        follow = true;
                        reframe = true;
                    }
                    Key::S => want_screenshot = true,
                    _ => {
                        if let Some(layer) =
                            layer_key(key).and_then(|i| live.scene.layers.get_mut(i))
                        {
                            layer.visible = !layer.visible;
                            changed = true;
                        }
                    }
                },
                WindowEvent::MouseButton(_, Action::Press, _) | WindowEvent::Scroll(..) => {
                    follow = false;
                }
                _ => {}
            }
        }
        if let Some(rx) = &updates {
            loop {
                match rx.try_recv() {
                    Ok(update) => {
                        live.apply(update);
                        changed = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        updates = None;
                        live.status = format!("{} (finished)", live.status);
                        changed = true;
                        break;
                    }
                }
            }
        }
        if changed || reframe {
            let bounds = live.scene.bounds();
            if follow
                && (reframe || grew(framed_bounds, bounds))
                && let Some((lo, hi)) = bounds
            {
                if framed_bounds.is_none() {
                    origin = nalgebra::center(&lo, &hi);
                }
                camera = orbit_camera(&frame_bounds(&lo, &hi, aspect), &origin);
                framed_bounds = bounds;
            }
            drawable = Drawable::new(&live.scene, &origin);
            let new_title = live.title_text();
            if new_title != title {
                window.set_title(&new_title);
                title = new_title;
            }
        }
        drawable.draw(&live.scene, &mut window);
    }
    Ok(live)
}

/// Layer index for keys `1`–`9`.
fn layer_key(key: Key) -> Option<usize> {
    const KEYS: [Key; 9] = [
        Key::Key1,
        Key::Key2,
        Key::Key3,
        Key::Key4,
        Key::Key5,
        Key::Key6,
        Key::Key7,
        Key::Key8,
        Key::Key9,
    ];
    KEYS.iter().position(|&k| k == key)
}

/// True when `now` reaches more than 10 % (of the old diagonal) beyond `framed`.
fn grew(
    framed: Option<(Point3<f64>, Point3<f64>)>,
    now: Option<(Point3<f64>, Point3<f64>)>,
) -> bool {
    match (framed, now) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some((lo, hi)), Some((a, b))) => {
            let slack = (hi - lo).norm() * 0.1;
            (lo - a).max() > slack || (b - hi).max() > slack
        }
    }
}

/// The scene converted once to kiss3d's `f32` types, relative to `origin`.
struct Drawable {
    /// Per layer: positions and colours (empty for hidden layers).
    layers: Vec<(Vec<Vec3>, Vec<Color>)>,
    polylines: Vec<Polyline3d>,
}

impl Drawable {
    fn new(scene: &Scene, origin: &Point3<f64>) -> Drawable {
        let colors = scene.layer_colors();
        let layers = scene
            .layers
            .iter()
            .zip(colors)
            .enumerate()
            .map(|(i, (layer, layer_colors))| {
                if !scene.is_drawn(i) {
                    return (Vec::new(), Vec::new());
                }
                let positions = layer.points.iter().map(|p| to_vec3(p, origin)).collect();
                let colors = layer_colors.into_iter().map(rgba).collect();
                (positions, colors)
            })
            .collect();
        let polylines = scene
            .polylines
            .iter()
            .filter(|l| l.vertices.len() >= 2)
            .map(|l| {
                Polyline3d::new(l.vertices.iter().map(|p| to_vec3(p, origin)).collect())
                    .with_color(rgba(l.color))
                    .with_width(l.width)
            })
            .collect();
        Drawable { layers, polylines }
    }

    /// Queues every point and line for the next frame of `window`.
    fn draw(&self, scene: &Scene, window: &mut Window) {
        for (positions, colors) in &self.layers {
            for (p, c) in positions.iter().zip(colors) {
                window.draw_point(*p, *c, scene.point_size);
            }
        }
        for line in &self.polylines {
            window.draw_polyline(line);
        }
    }
}

fn to_vec3(p: &Point3<f64>, origin: &Point3<f64>) -> Vec3 {
    let d = p - origin;
    Vec3::new(d.x as f32, d.y as f32, d.z as f32)
}

/// kiss3d colour from a display (sRGB) colour: kiss3d treats colours as
/// linear and gamma-encodes its output, so decode first to get `c` on screen.
fn rgba(c: [f32; 3]) -> Color {
    let linear = |v: f32| {
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    Color::new(linear(c[0]), linear(c[1]), linear(c[2]), 1.0)
}

/// A kiss3d orbit camera (z up) placed as `frame`, relative to `origin`.
fn orbit_camera(frame: &CameraFrame, origin: &Point3<f64>) -> OrbitCamera3d {
    let mut camera = OrbitCamera3d::new_with_frustum(
        frame.fov_y as f32,
        frame.znear as f32,
        frame.zfar as f32,
        to_vec3(&frame.eye, origin),
        to_vec3(&frame.at, origin),
    );
    camera.set_up_axis_dir(Vec3::Z);
    let distance = frame.distance() as f32;
    camera.set_max_dist(distance * 3.0);
    camera.set_min_dist(distance * 1e-3);
    camera.rebind_reset_key(None);
    camera
}

fn save_png(image: &image::RgbImage, path: &Path) -> Result<()> {
    image.save(path).map_err(|e| Error::Viewer {
        reason: format!("cannot write screenshot {}: {e}", path.display()),
    })
}

/// `pointpipe-screenshot-N.png` with the first N not yet taken.
fn free_screenshot_path() -> PathBuf {
    (1u32..)
        .map(|n| PathBuf::from(format!("pointpipe-screenshot-{n}.png")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from("pointpipe-screenshot.png"))
}

/// Fails early, with [`HEADLESS_HINT`], when no display server is configured
/// (Linux/BSD: neither `DISPLAY` nor `WAYLAND_DISPLAY` set). Interactive
/// entry points call it; callers may call it before loading large inputs.
///
/// Errors: [`Error::Viewer`].
pub fn check_display() -> Result<()> {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Err(Error::Viewer {
                reason: format!(
                    "no display (neither DISPLAY nor WAYLAND_DISPLAY is set): {HEADLESS_HINT}"
                ),
            });
        }
    }
    Ok(())
}

/// Runs `f`, turning a panic inside kiss3d/wgpu/winit (no adapter, no event
/// loop) into [`Error::Viewer`]. The panic message is captured instead of
/// printed for this thread; panics of other threads go to the previous hook.
fn run_guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let message: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let previous: Arc<dyn Fn(&panic::PanicHookInfo<'_>) + Send + Sync> =
        Arc::from(panic::take_hook());
    let guarded_thread = std::thread::current().id();
    {
        let message = Arc::clone(&message);
        let previous = Arc::clone(&previous);
        panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() == guarded_thread {
                if let Ok(mut slot) = message.lock() {
                    *slot = Some(panic_text(info));
                }
            } else {
                previous(info);
            }
        }));
    }
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    drop(panic::take_hook()); // our hook
    panic::set_hook(Box::new(move |info| previous(info)));
    match result {
        Ok(r) => r,
        Err(_) => {
            let detail = message
                .lock()
                .ok()
                .and_then(|mut m| m.take())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::Viewer {
                reason: format!("{what} failed ({detail}); {HEADLESS_HINT}"),
            })
        }
    }
}

fn panic_text(info: &panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    match info.location() {
        Some(loc) => format!("{text} at {}:{}", loc.file(), loc.line()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_panic_becomes_viewer_error_with_hint() {
        let r: Result<()> = run_guarded("test", || panic!("Failed to find an appropriate adapter"));
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("appropriate adapter"), "{msg}");
        assert!(msg.contains("xvfb-run -a"), "{msg}");
        assert_eq!(run_guarded("ok", || Ok(5)).unwrap(), 5);
    }

    #[test]
    fn growth_detection() {
        let a = (Point3::origin(), Point3::new(10.0, 10.0, 0.0));
        let small = (Point3::origin(), Point3::new(10.5, 10.0, 0.0));
        let big = (Point3::origin(), Point3::new(20.0, 10.0, 0.0));
        assert!(!grew(Some(a), Some(small)));
        assert!(grew(Some(a), Some(big)));
        assert!(grew(None, Some(a)));
        assert!(!grew(Some(a), None));
        assert_eq!(layer_key(Key::Key3), Some(2));
        assert_eq!(layer_key(Key::A), None);
    }
}
