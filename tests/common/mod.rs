//! Helpers shared by the integration tests and benchmarks.
//!
//! Real data lives in `../shared/data` beside the repository and is never
//! copied into it. In CI (`CI=true`) a missing file is a failure; elsewhere the
//! test prints that it was skipped and passes.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of `rel` under `../shared/data`, or `None` (with a "skipped" note on
/// stderr) when it is missing outside CI.
///
/// # Panics
/// When the file is missing and the environment variable `CI` is `true`.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("shared data file missing in CI: {}", path.display());
    }
    eprintln!("skipped: shared data file {} not found", path.display());
    None
}

/// Like [`shared_data`], for use in benchmarks: missing data is always fatal
/// there because a benchmark without data measures nothing.
pub fn shared_data_required(rel: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    assert!(path.exists(), "benchmark data missing: {}", path.display());
    path
}

/// Best (minimum) wall time in ms of `runs` calls of `f`, for the
/// benchmarks' interleaved summaries: on a shared machine the minimum is the
/// run least disturbed by other processes.
pub fn best_ms<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let s = std::time::Instant::now();
            std::hint::black_box(f());
            s.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}
