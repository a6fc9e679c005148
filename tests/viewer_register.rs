//! `pointpipe register --view --screenshot` on the BALM pair under `xvfb-run`
//! (feature `viewer`): the before half must show the red source, the after
//! half the green one. Without `xvfb-run` the test fails in CI (`CI=true`)
//! and is skipped elsewhere.
#![cfg(feature = "viewer")]

mod common;

use std::process::Command;

/// Counts pixels close to `rgb` (each channel within 60 of the 0–255 value).
fn count_near(img: &image::RgbImage, x_range: std::ops::Range<u32>, rgb: [f32; 3]) -> usize {
    let target = rgb.map(|c| (c * 255.0) as i32);
    img.enumerate_pixels()
        .filter(|(x, _, p)| {
            x_range.contains(x) && (0..3).all(|k| (i32::from(p.0[k]) - target[k]).abs() <= 60)
        })
        .count()
}

fn xvfb_run() -> Option<std::path::PathBuf> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("xvfb-run"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !in_ci,
            "xvfb-run missing in CI: apt-get install -y xvfb mesa-vulkan-drivers libvulkan1"
        );
        eprintln!("skipped: xvfb-run not found");
    }
    found
}

#[test]
fn register_screenshot_shows_red_before_and_green_after() {
    let (Some(source), Some(target)) = (
        common::shared_data("balm-realworld-lidar/full32.pcd"),
        common::shared_data("balm-realworld-lidar/full31.pcd"),
    ) else {
        return;
    };
    let Some(xvfb) = xvfb_run() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("register.png");
    let output = Command::new(xvfb)
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_pointpipe"))
        .args(["-q", "register"])
        .arg(&source)
        .arg(&target)
        .args(["--voxel-size", "0.25", "--view", "--screenshot"])
        .arg(&out)
        .output()
        .expect("xvfb-run starts");
    assert!(
        output.status.success(),
        "register --view --screenshot failed: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let img = image::open(&out).expect("a PNG").to_rgb8();
    assert_eq!(img.dimensions(), (1280, 800));
    let (red, green) = (
        pointpipe::viewer::color::RED,
        pointpipe::viewer::color::GREEN,
    );
    let grey = pointpipe::viewer::color::GREY;
    // Left half: before ICP (red source), no green; right half: after (green), no red.
    let red_left = count_near(&img, 0..640, red);
    let green_right = count_near(&img, 641..1280, green);
    assert!(red_left > 2000, "{red_left} red pixels in the before half");
    assert!(
        green_right > 2000,
        "{green_right} green pixels in the after half"
    );
    assert!(count_near(&img, 0..640, green) < red_left / 20);
    assert!(count_near(&img, 641..1280, red) < green_right / 20);
    // The grey target is drawn in both halves.
    assert!(count_near(&img, 0..640, grey) > 2000);
    assert!(count_near(&img, 641..1280, grey) > 2000);
}
