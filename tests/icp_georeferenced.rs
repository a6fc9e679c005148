//! Issue 26, item 7: registration works in a local frame whatever the
//! coordinates. Autzen (georeferenced, about 637,000 / 850,000 ft from the
//! CRS origin) shifted by (+2, −1) ft must be recovered as well as the same
//! points moved near the origin; `target_from_source` is reported in the
//! original (georeferenced) frame.

mod common;
mod icp_common;

use icp_common::{downsample, with_tree_and_normals};
use nalgebra::{Isometry3, Point3, Translation3, Vector3};
use pointpipe::icp::{IcpConfig, IcpMethod, register};

fn autzen() -> Option<pointpipe::PointCloud> {
    let path = common::shared_data("las/pdal/autzen_trim.las")?;
    Some(pointpipe::io::read(path).unwrap())
}

/// Registers `target` shifted by `shift` back onto `target` (voxel 3 ft,
/// normals within 10 ft, correspondences within 5 ft).
fn recover(
    target: &pointpipe::PointCloud,
    shift: Vector3<f64>,
    method: IcpMethod,
) -> Isometry3<f64> {
    let down = downsample(target, 3.0);
    let source: Vec<Point3<f64>> = down.points.iter().map(|p| p + shift).collect();
    let (target, tree) = with_tree_and_normals(down, 10.0, 30);
    let config = IcpConfig {
        method,
        max_correspondence_distance: 5.0,
        kernel_scale: 1.0,
        max_iterations: 60,
        ..IcpConfig::default()
    };
    let r = register(&source, &target, &tree, &Isometry3::identity(), &config).unwrap();
    eprintln!(
        "{method:?}: t = {:?}, converged {}, degeneracy {:.2e}",
        r.target_from_source.translation.vector, r.converged, r.degeneracy_ratio
    );
    assert!(r.converged, "{method:?} did not converge");
    assert!(
        !r.degenerate,
        "{method:?} flagged as degenerate: {}",
        r.degeneracy_ratio
    );
    r.target_from_source
}

#[test]
fn georeferenced_autzen_shift_is_recovered() {
    let Some(cloud) = autzen() else {
        return;
    };
    assert!(cloud.points[0].x.abs() > 1e5, "autzen is georeferenced");
    let shift = Vector3::new(2.0, -1.0, 0.0);
    let truth = Translation3::from(-shift);
    // Before: (−0.003, −0.005) ft, not converged, degeneracy 1.5e-15.
    let estimate = recover(&cloud, shift, IcpMethod::PointToPlane);
    let error = estimate * Isometry3::from(truth).inverse();
    assert!(
        error.translation.vector.norm() < 0.05 && error.rotation.angle() < 1e-5,
        "error {:?}, {} rad",
        error.translation.vector,
        error.rotation.angle()
    );
    // The same points near the origin give the same answer.
    let centre = cloud.points[0].coords;
    let mut local = cloud.clone();
    for p in &mut local.points {
        *p -= centre;
    }
    let near = recover(&local, shift, IcpMethod::PointToPlane);
    assert!((near.translation.vector + shift).norm() < 0.05);
}

/// Issue 26, item 21: point-to-point ICP in a corridor (two walls, floor and
/// ceiling, nothing along its axis) is flagged degenerate, as
/// point-to-plane is: the slide along the corridor is unconstrained.
#[test]
fn point_to_point_flags_a_corridor_as_degenerate() {
    let mut points = Vec::new();
    for i in 0..400 {
        for j in 0..20 {
            let (x, s) = (i as f64 * 0.1 - 20.0, j as f64 * 0.1);
            points.push(Point3::new(x, -1.0, s));
            points.push(Point3::new(x, 1.0, s));
            points.push(Point3::new(x, s - 1.0, 0.0));
            points.push(Point3::new(x, s - 1.0, 2.0));
        }
    }
    let (target, tree) = with_tree_and_normals(pointpipe::PointCloud::from_points(points), 0.3, 20);
    let source: Vec<Point3<f64>> = target
        .points
        .iter()
        .map(|p| p + Vector3::new(0.35, 0.02, 0.0))
        .collect();
    for method in [IcpMethod::PointToPlane, IcpMethod::PointToPoint] {
        let config = IcpConfig {
            method,
            ..IcpConfig::default()
        };
        let r = register(&source, &target, &tree, &Isometry3::identity(), &config).unwrap();
        assert!(
            r.degenerate,
            "{method:?}: degeneracy ratio {:.2e}, weakest {:?}",
            r.degeneracy_ratio, r.weakest_direction
        );
        assert!(
            r.weakest_direction[3].abs() > 0.9,
            "{:?}",
            r.weakest_direction
        );
    }
}
