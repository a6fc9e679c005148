//! Development aid: BALM 31 -> 32 pairwise ICP and a k-d tree spot check.
use nalgebra::Point3;
use pointpipe::icp::{self, IcpConfig};
use pointpipe::io::{self, poses};
use pointpipe::kdtree::KdTree;
use pointpipe::voxel::{VoxelConfig, VoxelMode, voxel_downsample};

fn main() -> anyhow::Result<()> {
    let d = "../shared/data/balm-realworld-lidar";
    let vc = VoxelConfig {
        voxel_size: 0.25,
        mode: VoxelMode::Centroid,
    };
    let source = voxel_downsample(&io::read(format!("{d}/full32.pcd"))?, &vc)?;
    let mut target = voxel_downsample(&io::read(format!("{d}/full31.pcd"))?, &vc)?;
    let gt = poses::read_kitti_poses(format!("{d}/poses_kitti.txt"))?;
    let reference = gt[11].inverse() * gt[12];
    let tree = KdTree::build(&target.points)?;
    // spot check nearest_within vs brute force
    let mut bad = 0;
    for (i, q) in source.points.iter().enumerate().step_by(37) {
        let q = Point3::from(q.coords + nalgebra::Vector3::new(0.03, -0.02, 0.01) * (i % 7) as f64);
        let brute = target
            .points
            .iter()
            .enumerate()
            .map(|(j, p)| ((p - q).norm_squared(), j))
            .filter(|(d, _)| *d <= 1.0)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let t = tree.nearest_within(&q, 1.0);
        if brute.map(|b| b.0) != t.map(|n| n.distance_sq) {
            bad += 1;
        }
    }
    println!("nearest_within mismatches: {bad}");
    let mut buf = Vec::new();
    let normals: Vec<_> = target
        .points
        .iter()
        .map(|p| {
            tree.hybrid(p, 1.0, 30, &mut buf);
            let pts: Vec<_> = buf.iter().map(|n| target.points[n.index]).collect();
            let mean = pts
                .iter()
                .fold(nalgebra::Vector3::zeros(), |a, p| a + p.coords)
                / pts.len() as f64;
            let cov = pts.iter().fold(nalgebra::Matrix3::zeros(), |a, p| {
                let d = p.coords - mean;
                a + d * d.transpose()
            });
            if pts.len() < 3 {
                return nalgebra::Vector3::zeros();
            }
            let e = cov.symmetric_eigen();
            let k = e.eigenvalues.imin();
            e.eigenvectors.column(k).into_owned()
        })
        .collect();
    target.normals = Some(normals);
    let config = IcpConfig {
        max_correspondence_distance: 1.0,
        ..Default::default()
    };
    let r = icp::register(
        &source.points,
        &target,
        &tree,
        &nalgebra::Isometry3::identity(),
        &config,
    )?;
    let err = reference.inverse() * r.target_from_source;
    println!(
        "it {} conv {} fit {:.3} rot err {:.4} deg trans err {:.4} m",
        r.iterations,
        r.converged,
        r.fitness,
        err.rotation.angle().to_degrees(),
        err.translation.vector.norm()
    );
    for offset in [0.0, 43.0, 200.0] {
        let w = nalgebra::Isometry3::translation(offset, 0.0, 0.0);
        let mut t2 = target.clone();
        t2.transform(&w);
        let tree2 = KdTree::build(&t2.points)?;
        let init = w
            * reference
            * nalgebra::Isometry3::new(
                nalgebra::Vector3::new(0.2, 0.1, 0.0),
                nalgebra::Vector3::new(0.0, 0.0, 0.05),
            );
        let config = IcpConfig {
            max_correspondence_distance: 2.0,
            kernel: icp::RobustKernel::GemanMcClure,
            kernel_scale: 0.5,
            ..Default::default()
        };
        let r = icp::register(&source.points, &t2, &tree2, &init, &config)?;
        let err = (w * reference).inverse() * r.target_from_source;
        println!(
            "offset {offset} it {} conv {} fit {:.3} rot err {:.4} deg trans err {:.4} m",
            r.iterations,
            r.converged,
            r.fitness,
            err.rotation.angle().to_degrees(),
            err.translation.vector.norm()
        );
    }
    for kernel in [icp::RobustKernel::None, icp::RobustKernel::GemanMcClure] {
        let config = IcpConfig {
            method: icp::IcpMethod::PointToPoint,
            max_correspondence_distance: 1.0,
            kernel,
            kernel_scale: 0.3,
            max_iterations: 100,
            ..Default::default()
        };
        let init = reference
            * nalgebra::Isometry3::new(
                nalgebra::Vector3::new(0.1, 0.05, 0.0),
                nalgebra::Vector3::new(0.0, 0.0, 0.02),
            );
        let r = icp::register(&source.points, &target, &tree, &init, &config)?;
        let err = reference.inverse() * r.target_from_source;
        println!(
            "p2p {kernel:?} it {} conv {} fit {:.3} rot err {:.4} deg trans err {:.4} m",
            r.iterations,
            r.converged,
            r.fitness,
            err.rotation.angle().to_degrees(),
            err.translation.vector.norm()
        );
    }
    Ok(())
}
