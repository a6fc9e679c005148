//! `pointpipe view` error handling (feature `viewer`).
#![cfg(feature = "viewer")]

mod common;

use std::process::Command;

#[test]
fn view_without_display_fails_with_headless_instructions() {
    let Some(las) = common::shared_data("las/laspy-2.7.0-sdist/simple1_3.las") else {
        return;
    };
    let output = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
        .arg("view")
        .arg(&las)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("pointpipe starts");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("xvfb-run -a"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}
