//! Odometry acceptance on real data (BALM, 40 scans with reference poses),
//! determinism across thread counts, and the built-in demo.

mod common;

use nalgebra::Isometry3;
use pointpipe::eval;
use pointpipe::io::{self, poses};
use pointpipe::odometry::{Odometry, OdometryConfig, sequence};

fn run_pipeline(frames: &[pointpipe::PointCloud]) -> Vec<Isometry3<f64>> {
    let mut odometry = Odometry::new(OdometryConfig::default()).unwrap();
    frames
        .iter()
        .map(|f| {
            let r = odometry.process(f);
            assert!(
                !r.status.is_flagged(),
                "frame {} flagged: {:?}",
                r.index,
                r.status
            );
            r.world_from_sensor
        })
        .collect()
}

fn balm_frames() -> Option<(Vec<pointpipe::PointCloud>, Vec<Isometry3<f64>>)> {
    let dir = common::shared_data("balm-realworld-lidar")?;
    let gt_path = common::shared_data("balm-realworld-lidar/poses_kitti.txt")?;
    let paths = sequence::list_frames(&dir).unwrap();
    assert_eq!(paths.len(), 40);
    let frames = paths.iter().map(|p| io::read(p).unwrap()).collect();
    Some((frames, poses::read_kitti_poses(&gt_path).unwrap()))
}

/// KISS-ICP 1.3 on the same 40 scans: ATE 2.6 cm, RPE 3.3 cm and 0.37° per frame.
#[test]
fn balm_sequence_meets_kiss_icp_accuracy() {
    let Some((frames, gt)) = balm_frames() else {
        return;
    };
    let estimated = run_pipeline(&frames);
    let e = eval::evaluate(&estimated, &gt).unwrap();
    eprintln!(
        "BALM: ATE {:.4} m, RPE {:.4} m / {:.3} deg",
        e.ate.rmse_m, e.rpe.trans_rmse_m, e.rpe.rot_rmse_deg
    );
    assert!(e.ate.rmse_m <= 0.026, "ATE {} m", e.ate.rmse_m);
    assert!(e.rpe.trans_rmse_m <= 0.033, "RPE {} m", e.rpe.trans_rmse_m);
    assert!(e.rpe.rot_rmse_deg <= 0.37, "RPE {} deg", e.rpe.rot_rmse_deg);
}

#[test]
fn poses_identical_at_one_and_two_threads() {
    let Some((frames, _)) = balm_frames() else {
        return;
    };
    let frames = &frames[..12];
    let run_with = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run_pipeline(frames))
    };
    let one = run_with(1);
    let two = run_with(2);
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(a.to_homogeneous(), b.to_homogeneous());
    }
}
