//! Development aid: k-d tree vs brute force on a large merged world-frame cloud.
use nalgebra::{Point3, Vector3};
use pointpipe::io::{self, poses};
use pointpipe::kdtree::KdTree;

fn main() -> anyhow::Result<()> {
    let gt = poses::read_kitti_poses("/tmp/sim200/poses.txt")?;
    let mut pts: Vec<Point3<f64>> = Vec::new();
    for i in 30..43 {
        let f = io::read(format!("/tmp/sim200/velodyne/{i:06}.bin"))?;
        pts.extend(f.points.iter().step_by(3).map(|p| gt[i] * p));
    }
    let tree = KdTree::build(&pts)?;
    let mut bad = 0;
    let mut buf = Vec::new();
    for k in 0..300 {
        let q = pts[(k * 7919) % pts.len()] + Vector3::new(0.13, -0.07, 0.05 * (k % 5) as f64);
        let brute = pts
            .iter()
            .enumerate()
            .map(|(j, p)| ((p - q).norm_squared(), j))
            .filter(|(d, _)| *d <= 1.0)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let t = tree.nearest_within(&q, 1.0);
        if brute.map(|b| b.0) != t.map(|n| n.distance_sq) {
            bad += 1;
        }
        tree.hybrid(&q, 1.0, 20, &mut buf);
        let mut bf: Vec<f64> = pts
            .iter()
            .map(|p| (p - q).norm_squared())
            .filter(|d| *d <= 1.0)
            .collect();
        bf.sort_by(f64::total_cmp);
        bf.truncate(20);
        let got: Vec<f64> = buf.iter().map(|n| n.distance_sq).collect();
        if got != bf {
            bad += 1000;
        }
    }
    println!("{} points, mismatches {bad}", pts.len());
    Ok(())
}
