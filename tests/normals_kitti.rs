//! Normals on a real KITTI HDL-64 frame downsampled to 0.25 m: every normal
//! is a unit vector facing the sensor, the ground is horizontal, and the
//! counts add up.

mod common;

use nalgebra::Vector3;
use pointpipe::kdtree::KdTree;
use pointpipe::normals::{NeighborSearch, NormalConfig, estimate_normals};
use pointpipe::voxel::{VoxelConfig, voxel_downsample};

#[test]
fn kitti_normals_face_the_sensor_and_ground_is_level() {
    let Some(path) = common::shared_data("kitti-raw-hdl64-5frames/0000000000.bin") else {
        return;
    };
    let frame = pointpipe::io::read(&path).unwrap();
    let mut cloud = voxel_downsample(&frame, &VoxelConfig::new(0.25)).unwrap();
    assert_eq!(cloud.len(), 18_592);
    for search in [
        NeighborSearch::Radius {
            radius: 1.0,
            max_nn: Some(30),
        },
        NeighborSearch::Knn { k: 20 },
    ] {
        let config = NormalConfig {
            search,
            ..Default::default()
        };
        let tree = KdTree::build(&cloud.points).unwrap();
        let report = estimate_normals(&mut cloud, &tree, &config).unwrap();
        assert_eq!(report.with_normal + report.without_normal, cloud.len());
        // Sparse far points may lack neighbours within 1 m, but few.
        assert!(
            report.with_normal as f64 > 0.99 * cloud.len() as f64,
            "{report:?}"
        );
        let normals = cloud.normals.as_ref().unwrap();
        let curvature = cloud.curvature.as_ref().unwrap();
        let mut ground_tilt_deg = Vec::new();
        for ((p, n), c) in cloud.points.iter().zip(normals).zip(curvature) {
            if *n == Vector3::zeros() {
                assert!(c.is_nan());
                continue;
            }
            assert!((n.norm() - 1.0).abs() < 1e-9);
            assert!((0.0..=1.0 / 3.0).contains(c));
            assert!(n.dot(&(-p.coords)) >= 0.0, "normal at {p} faces away");
            // Road surface near the car: the sensor is about 1.73 m above it.
            if p.z < -1.5 && p.z > -1.9 && p.coords.xy().norm() < 12.0 {
                ground_tilt_deg.push(n.z.clamp(-1.0, 1.0).acos().to_degrees());
            }
        }
        // The band also holds curbs, car bodies and vegetation; the road
        // dominates it.
        assert!(
            ground_tilt_deg.len() > 500,
            "{} ground points",
            ground_tilt_deg.len()
        );
        ground_tilt_deg.sort_by(f64::total_cmp);
        let median = ground_tilt_deg[ground_tilt_deg.len() / 2];
        let p70 = ground_tilt_deg[ground_tilt_deg.len() * 7 / 10];
        assert!(
            median < 5.0 && p70 < 10.0,
            "median {median}°, 70th percentile {p70}°"
        );
    }
}
