//! Integration tests of the LiDAR simulator: geometry, ground truth,
//! determinism.

use nalgebra::{Isometry3, Point3, Vector3};
use pointpipe::simulate::{
    LidarModel, Primitive, Scene, SimulationConfig, StreetPath, frame_seed, simulate_frame,
    simulate_sequence,
};

fn street_frame(index: usize) -> (Scene, Isometry3<f64>, pointpipe::PointCloud) {
    let config = SimulationConfig::default();
    let scene = Scene::street(config.seed, config.drive_length);
    let path = StreetPath::new(config.drive_length);
    let pose = config.world_from_sensor(&path, index as f64 * config.frame_period);
    let cloud = simulate_frame(&scene, &pose, &config.lidar, frame_seed(config.seed, index));
    (scene, pose, cloud)
}

#[test]
fn wall_is_seen_at_the_right_range() {
    // A wall whose face is the plane x = 10, sensor at the origin, no noise.
    let wall = Primitive::Box {
        center: Point3::new(10.5, 0.0, 0.0),
        half_extents: Vector3::new(0.5, 50.0, 50.0),
        yaw: 0.0,
        reflectivity: 0.5,
    };
    let scene = Scene::new(vec![wall], None);
    let lidar = LidarModel {
        range_noise_std: 0.0,
        ..Default::default()
    };
    let cloud = simulate_frame(&scene, &Isometry3::identity(), &lidar, 0);
    assert!(!cloud.is_empty());
    // Every return lies on the wall plane.
    assert!(cloud.points.iter().all(|p| (p.x - 10.0).abs() < 1e-9));
    // The first point is azimuth 0, lowest beam: range 10 / cos(24.8°).
    let first = cloud.points[0];
    let expected = 10.0 / 24.8f64.to_radians().cos();
    assert!((first.coords.norm() - expected).abs() < 1e-9);
    // Head-on returns are brighter than grazing ones.
    let intensity = cloud.intensity.as_ref().unwrap();
    assert!(intensity[0] > 0.45);
}

#[test]
fn street_frames_have_plausible_point_counts() {
    for index in [0, 100, 199] {
        let (_, _, cloud) = street_frame(index);
        // 115 200 rays; beams above the horizon and far-away ground are lost.
        assert!(
            (60_000..=115_200).contains(&cloud.len()),
            "frame {index}: {} points",
            cloud.len()
        );
        assert!(cloud.check_lengths());
        cloud.check_finite("simulated frame").unwrap();
        let max_range = cloud
            .points
            .iter()
            .map(|p| p.coords.norm())
            .fold(0.0, f64::max);
        assert!(max_range <= 80.0 + 0.2);
        // Much of the frame is structure, not ground (the sensor is 1.7 m
        // up: z > -1.2 is 0.5 m above the ground), some of it above the sensor.
        let structure = cloud.points.iter().filter(|p| p.z > -1.2).count();
        let above = cloud.points.iter().filter(|p| p.z > 0.0).count();
        eprintln!(
            "frame {index}: {} points, {structure} structure, {above} above",
            cloud.len()
        );
        assert!(structure > 20_000 && above > 2_000, "{structure} {above}");
    }
}

#[test]
fn points_mapped_to_the_world_lie_on_the_scene() {
    let sigma = LidarModel::default().range_noise_std;
    for index in [0, 130] {
        let (scene, world_from_sensor, cloud) = street_frame(index);
        let mut worst: f64 = 0.0;
        let mut sum_sq = 0.0;
        let mut n = 0usize;
        for p in cloud.points.iter().step_by(53) {
            let d = scene.surface_distance(&(world_from_sensor * p));
            worst = worst.max(d);
            sum_sq += d * d;
            n += 1;
        }
        // The distance to the surface is at most the range noise (along the
        // ray); 6 σ bounds the largest of ~2000 Gaussian draws.
        assert!(worst < 6.0 * sigma, "frame {index}: worst {worst}");
        let rms = (sum_sq / n as f64).sqrt();
        assert!(rms < 1.2 * sigma, "frame {index}: rms {rms}");
        // A wrong pose (10 cm off) would be visible.
        let shifted = Isometry3::translation(0.1, 0.0, 0.1) * world_from_sensor;
        let rms_shifted = (cloud
            .points
            .iter()
            .step_by(53)
            .map(|p| scene.surface_distance(&(shifted * p)).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt();
        assert!(
            rms_shifted > 3.0 * rms,
            "frame {index}: {rms_shifted} vs {rms}"
        );
    }
}

#[test]
fn identical_at_one_and_two_threads() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| street_frame(120).2)
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.points, two.points);
    assert_eq!(one.intensity, two.intensity);
}

#[test]
fn sequence_is_reproducible_and_seed_dependent() {
    let config = SimulationConfig {
        frames: 4,
        lidar: LidarModel {
            azimuth_step_deg: 1.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let a = simulate_sequence(&config).unwrap();
    let b = simulate_sequence(&config).unwrap();
    let c = simulate_sequence(&SimulationConfig { seed: 7, ..config }).unwrap();
    assert_eq!(a.times, vec![0.0, 0.1, 0.2, 0.30000000000000004]);
    assert_eq!(a.world_from_sensor, b.world_from_sensor);
    for (fa, fb) in a.frames.iter().zip(&b.frames) {
        assert_eq!(fa.points, fb.points);
    }
    assert_ne!(a.frames[0].points, c.frames[0].points);
    // Ground truth does not depend on the seed; the scene and noise do.
    assert_eq!(a.world_from_sensor, c.world_from_sensor);
}
