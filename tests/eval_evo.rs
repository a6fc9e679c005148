//! The metrics of `pointpipe::eval` against `evo` 1.38.1 and a Python port of
//! the KITTI devkit's `evaluate_odometry.cpp`, on a deterministic sample.
//!
//! The trajectories are generated here by closed-form formulas (no RNG, no
//! data files). The reference numbers were produced once from the same
//! formulas (a Python copy writing KITTI pose files) with:
//! ```text
//! evo_ape kitti ref.txt est.txt --align
//! evo_rpe kitti ref.txt est.txt --delta 1 --delta_unit f            (-r angle_deg)
//! evo_rpe kitti ref.txt est.txt --delta 5 --delta_unit f --all_pairs (-r angle_deg)
//! python kitti_devkit.py ref.txt est.txt   # port of calcSequenceErrors + saveStats
//! ```

use std::f64::consts::FRAC_PI_2;

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use pointpipe::eval::{ate, evaluate, kitti_relative_error, rpe};

const N: usize = 300;

fn pose(yaw: f64, roll: f64, t: Vector3<f64>) -> Isometry3<f64> {
    let rotation = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw)
        * UnitQuaternion::from_axis_angle(&Vector3::x_axis(), roll);
    Isometry3::from_parts(Translation3::from(t), rotation)
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Reference: 100 m straight, a 90° bend over 60 m, straight again; 1 m per
/// frame, slight roll and height undulation. Estimate: the reference's
/// relative motions each perturbed by a small smooth "error" motion, starting
/// from an arbitrary world offset (so ATE needs the alignment).
fn sample() -> (Vec<Isometry3<f64>>, Vec<Isometry3<f64>>) {
    let mut reference = Vec::with_capacity(N);
    let mut p = Vector3::zeros();
    for i in 0..N {
        let f = i as f64;
        let yaw = FRAC_PI_2 * smoothstep((f - 100.0) / 60.0);
        let roll = 0.01 * (0.1 * f).sin();
        reference.push(pose(
            yaw,
            roll,
            Vector3::new(p.x, p.y, 0.5 * (0.02 * f).sin()),
        ));
        p += Vector3::new(yaw.cos(), yaw.sin(), 0.0);
    }
    let offset = pose(0.7, 0.1, Vector3::new(10.0, -3.0, 1.0));
    let mut estimated = vec![offset * reference[0]];
    for i in 0..N - 1 {
        let f = i as f64;
        let relative = reference[i].inverse() * reference[i + 1];
        let error = pose(
            0.002 * (0.37 * f).sin(),
            0.001 * (0.23 * f).cos(),
            Vector3::new(
                0.01 + 0.02 * (0.51 * f).sin(),
                0.01 * (0.77 * f).cos(),
                0.005 * (1.3 * f).sin(),
            ),
        );
        let last = estimated[i];
        estimated.push(last * relative * error);
    }
    (estimated, reference)
}

fn close(ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
        "ours {ours} vs reference {theirs}"
    );
}

#[test]
fn ate_matches_evo_ape_align() {
    let (est, reference) = sample();
    let a = ate(&est, &reference).unwrap();
    close(a.rmse_m, 0.7232872697559133);
    close(a.mean_m, 0.6722480815089849);
    close(a.median_m, 0.6002582353061277);
    close(a.max_m, 1.2716683663348203);
}

#[test]
fn rpe_delta_1_matches_evo_rpe() {
    let (est, reference) = sample();
    let r = rpe(&est, &reference, 1).unwrap();
    assert_eq!(r.pairs, N - 1);
    close(r.trans_rmse_m, 0.019088490068356875);
    close(r.trans_mean_m, 0.017325733348954653);
    close(r.rot_rmse_deg, 0.0903549191768645);
    close(r.rot_mean_deg, 0.08517980457051458);
}

#[test]
fn rpe_delta_5_matches_evo_rpe_all_pairs() {
    let (est, reference) = sample();
    let r = rpe(&est, &reference, 5).unwrap();
    assert_eq!(r.pairs, N - 5);
    close(r.trans_rmse_m, 0.07653292553515066);
    close(r.trans_mean_m, 0.06552557897116539);
    close(r.rot_rmse_deg, 0.401222984876162);
    close(r.rot_mean_deg, 0.37961223714190034);
}

#[test]
fn kitti_matches_devkit_port() {
    let (est, reference) = sample();
    let k = kitti_relative_error(&est, &reference).unwrap().unwrap();
    assert_eq!(k.segments, 30);
    // devkit stats.txt: t_err 0.00967598873007416 (fraction),
    // r_err 4.5740270179209625e-05 rad/m -> x 180/pi x 100 deg/100 m.
    close(k.t_err_pct, 0.967598873007416);
    close(k.r_err_deg_per_100m, 0.262072443506);
}

#[test]
fn evaluate_bundles_the_three() {
    let (est, reference) = sample();
    let e = evaluate(&est, &reference).unwrap();
    assert_eq!(e.rpe, rpe(&est, &reference, 1).unwrap());
    assert_eq!(e.ate, ate(&est, &reference).unwrap());
    assert_eq!(e.kitti, kitti_relative_error(&est, &reference).unwrap());
}
