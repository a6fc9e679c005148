//! `pointpipe view --screenshot` on real data under `xvfb-run` (feature `viewer`).
//!
//! Needs `xvfb-run` and a Vulkan adapter (Debian: `xvfb mesa-vulkan-drivers
//! libvulkan1`). Without `xvfb-run` the test fails in CI (`CI=true`) and is
//! skipped elsewhere.
#![cfg(feature = "viewer")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use nalgebra::Point3;
use pointpipe::viewer::{self, Layer, Scene};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 400;
/// A pixel belongs to the cloud when a channel differs from the background by more.
const BACKGROUND_TOLERANCE: i32 = 30;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `xvfb-run` on PATH, or `None` (skip) outside CI.
///
/// # Panics
/// In CI when it is missing.
fn xvfb_run() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("xvfb-run"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !in_ci(),
            "xvfb-run missing in CI: apt-get install -y xvfb mesa-vulkan-drivers libvulkan1"
        );
        eprintln!(
            "skipped: xvfb-run not found (apt-get install xvfb mesa-vulkan-drivers libvulkan1)"
        );
    }
    found
}

/// Runs `pointpipe view FILE --screenshot OUT` under xvfb-run and returns the image.
fn screenshot(xvfb: &Path, file: &Path, out: &Path, extra: &[&str]) -> image::RgbImage {
    let size = format!("{WIDTH}x{HEIGHT}");
    let output = Command::new(xvfb)
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_pointpipe"))
        .arg("view")
        .arg(file)
        .args(["--size", &size, "--screenshot"])
        .arg(out)
        .args(extra)
        .output()
        .expect("xvfb-run starts");
    assert!(
        output.status.success(),
        "pointpipe view failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    image::open(out).expect("screenshot is a PNG").to_rgb8()
}

/// The most frequent colour on the image border.
fn background(img: &image::RgbImage) -> [u8; 3] {
    let (w, h) = img.dimensions();
    let mut counts = std::collections::HashMap::new();
    for x in 0..w {
        for y in [0, h - 1] {
            *counts.entry(img.get_pixel(x, y).0).or_insert(0usize) += 1;
        }
    }
    for y in 0..h {
        for x in [0, w - 1] {
            *counts.entry(img.get_pixel(x, y).0).or_insert(0usize) += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(c, n)| (n, c))
        .map(|(c, _)| c)
        .expect("image has pixels")
}

/// Number of non-background pixels and their bounding box `[x0, y0, x1, y1]`.
fn foreground(img: &image::RgbImage) -> (usize, [f64; 4]) {
    let bg = background(img);
    let mut count = 0;
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for (x, y, p) in img.enumerate_pixels() {
        let differs =
            (0..3).any(|k| (i32::from(p.0[k]) - i32::from(bg[k])).abs() > BACKGROUND_TOLERANCE);
        if differs {
            count += 1;
            bbox = [
                bbox[0].min(f64::from(x)),
                bbox[1].min(f64::from(y)),
                bbox[2].max(f64::from(x)),
                bbox[3].max(f64::from(y)),
            ];
        }
    }
    (count, bbox)
}

/// Bounding box of the projections of `points` through the viewer's camera framing `scene`.
fn projected_bbox(scene: &Scene, points: &[Point3<f64>]) -> [f64; 4] {
    let (lo, hi) = scene.bounds().expect("scene has points");
    let camera = viewer::frame_bounds(&lo, &hi, f64::from(WIDTH) / f64::from(HEIGHT));
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for p in points {
        let [x, y] = camera.project(p, WIDTH, HEIGHT).expect("point in view");
        bbox = [
            bbox[0].min(x),
            bbox[1].min(y),
            bbox[2].max(x),
            bbox[3].max(y),
        ];
    }
    bbox
}

#[test]
fn las_screenshot_draws_the_cloud_where_it_projects() {
    let Some(las) = common::shared_data("las/pdal/autzen_trim.las") else {
        return;
    };
    let Some(xvfb) = xvfb_run() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("autzen.png");
    let img = screenshot(&xvfb, &las, &out, &["--color", "height"]);
    assert_eq!(img.dimensions(), (WIDTH, HEIGHT));

    let (count, drawn) = foreground(&img);
    let total = (WIDTH * HEIGHT) as usize;
    assert!(
        count * 20 > total,
        "only {count} of {total} pixels differ from the background"
    );

    // Where the cloud must be: the viewer's own decimation and framing, projected in f64.
    let cloud = pointpipe::io::read(&las).expect("autzen_trim.las reads");
    let layer = Layer::from_cloud(
        "autzen",
        &cloud,
        viewer::color::palette(0),
        viewer::DEFAULT_MAX_POINTS,
    );
    let mut scene = Scene::new();
    let points = layer.points.clone();
    scene.add_layer(layer);
    let expected = projected_bbox(&scene, &points);
    // Points are 2 px squares, edges may be anti-aliased / dim: allow 4 px.
    let tolerance = 4.0;
    for (k, (d, e)) in drawn.iter().zip(&expected).enumerate() {
        assert!(
            (d - e).abs() <= tolerance,
            "drawn bbox {drawn:?} vs projected {expected:?} (edge {k})"
        );
    }
}
