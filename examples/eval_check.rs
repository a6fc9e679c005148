//! Development aid: evaluate a KITTI pose file against another.
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let est = pointpipe::io::poses::read_kitti_poses(&a[1])?;
    let gt = pointpipe::io::poses::read_kitti_poses(&a[2])?;
    let e = pointpipe::eval::evaluate(&est, &gt)?;
    println!(
        "ATE {:.5} RPE {:.5} m {:.5} deg",
        e.ate.rmse_m, e.rpe.trans_rmse_m, e.rpe.rot_rmse_deg
    );
    for i in 1..est.len().min(60) {
        let d = (gt[i - 1].inverse() * gt[i]).inverse() * (est[i - 1].inverse() * est[i]);
        if d.rotation.angle() > 0.01 {
            println!("{i} {:.4}", d.rotation.angle().to_degrees());
        }
    }
    Ok(())
}
