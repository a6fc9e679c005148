//! Per-stage wall-clock timings of the odometry and their summary.

use std::time::Instant;

use serde::Serialize;

/// The stages timed per frame. `Read` is timed by the caller that reads files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the frame from disk.
    Read,
    /// Range crop and non-finite removal.
    Crop,
    /// Voxel downsampling.
    Voxel,
    /// k-d tree rebuild on the local map.
    Tree,
    /// Normals of the local map.
    Normals,
    /// Point-to-plane ICP.
    Icp,
    /// Local-map update.
    MapUpdate,
}

impl Stage {
    /// All stages in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::Read,
        Stage::Crop,
        Stage::Voxel,
        Stage::Tree,
        Stage::Normals,
        Stage::Icp,
        Stage::MapUpdate,
    ];

    /// snake_case name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Crop => "crop",
            Stage::Voxel => "voxel",
            Stage::Tree => "tree",
            Stage::Normals => "normals",
            Stage::Icp => "icp",
            Stage::MapUpdate => "map_update",
        }
    }
}

/// Milliseconds spent in each stage of one frame.
#[derive(Debug, Clone, Copy)]
pub struct StageTimings {
    ms: [f64; 7],
    last: Instant,
}

impl StageTimings {
    /// Starts the clock.
    pub fn start() -> Self {
        StageTimings {
            ms: [0.0; 7],
            last: Instant::now(),
        }
    }

    /// Charges the time since the previous lap to `stage`.
    pub fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        self.ms[stage as usize] += (now - self.last).as_secs_f64() * 1e3;
        self.last = now;
    }

    /// Sets a stage's time directly (e.g. `Read`, timed outside), milliseconds.
    pub fn set(&mut self, stage: Stage, ms: f64) {
        self.ms[stage as usize] = ms;
    }

    /// Milliseconds of `stage`.
    pub fn get(&self, stage: Stage) -> f64 {
        self.ms[stage as usize]
    }

    /// Sum over all stages, milliseconds.
    pub fn total(&self) -> f64 {
        self.ms.iter().sum()
    }
}

/// Median and 95th percentile per stage over a run, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct TimingSummary {
    /// `(stage name, median ms, p95 ms)` in pipeline order.
    pub stages: Vec<(&'static str, f64, f64)>,
    /// Median of the per-frame totals, milliseconds.
    pub total_median_ms: f64,
}

impl TimingSummary {
    /// Summarises the timings of every frame (nearest-rank percentiles).
    pub fn from_frames(frames: &[StageTimings]) -> Self {
        let percentile = |mut v: Vec<f64>, p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            v.sort_by(f64::total_cmp);
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1]
        };
        let stages = Stage::ALL
            .iter()
            .map(|&s| {
                let v: Vec<f64> = frames.iter().map(|t| t.get(s)).collect();
                (s.name(), percentile(v.clone(), 0.5), percentile(v, 0.95))
            })
            .collect();
        let totals = frames.iter().map(StageTimings::total).collect();
        TimingSummary {
            stages,
            total_median_ms: percentile(totals, 0.5),
        }
    }
}
