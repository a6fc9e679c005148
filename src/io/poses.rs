//! Pose files: KITTI trajectories, TUM trajectories and single 4×4 matrices.
//!
//! - KITTI (odometry devkit, `readme.txt`): one pose per line, the 12 values
//!   of the 3×4 matrix `[R | t]` row-major, separated by whitespace;
//!   `p_world = R·p + t` (the pose is `world_from_sensor`).
//! - TUM RGB-D benchmark (Sturm et al., IROS 2012): one pose per line,
//!   `timestamp tx ty tz qx qy qz qw` (seconds, metres, unit quaternion);
//!   lines starting with `#` are comments.
//! - 4×4 matrix text (e.g. small_gicp's `T_target_source.txt`): four rows of
//!   four numbers; the last row must be `0 0 0 1`.
//!
//! Rotations read from matrices are re-orthonormalised (nearest rotation in
//! the Frobenius norm, `R = U·Vᵀ` from the SVD, Horn 1988) because text files
//! round the entries to a few digits; a matrix further than
//! [`RIGID_TOLERANCE`] from a rotation, or a reflection, is rejected.
//!
//! Values are written with Rust's shortest round-trip formatting, so writing
//! and reading back gives the same `f64` entries.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use nalgebra::{Isometry3, Matrix3, Matrix4, Quaternion, Translation3, UnitQuaternion, Vector3};

use super::atomic;
use crate::error::{Error, Result};

/// Largest accepted ‖MᵀM − I‖_F of a rotation block before it is rejected as
/// non-rigid (text files with 6 decimals stay around 1e-5).
pub const RIGID_TOLERANCE: f64 = 1e-3;

/// Reads a KITTI trajectory: one `world_from_sensor` pose per non-empty line.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming the
/// line for a line without exactly 12 numbers or a non-rigid rotation.
pub fn read_kitti_poses(path: impl AsRef<Path>) -> Result<Vec<Isometry3<f64>>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut poses = Vec::new();
    for (line_no, line) in data_lines(&text) {
        let v = numbers(line, path, line_no)?;
        if v.len() != 12 {
            return Err(line_error(
                path,
                line_no,
                format!("{} values, expected 12 (3×4 row-major)", v.len()),
            ));
        }
        let rotation = Matrix3::new(v[0], v[1], v[2], v[4], v[5], v[6], v[8], v[9], v[10]);
        let translation = Vector3::new(v[3], v[7], v[11]);
        let rotation =
            nearest_rotation(&rotation).map_err(|reason| line_error(path, line_no, reason))?;
        poses.push(Isometry3::from_parts(translation.into(), rotation));
    }
    Ok(poses)
}

/// Writes a KITTI trajectory (12 values per pose, row-major `[R | t]`),
/// atomically.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_kitti_poses(path: impl AsRef<Path>, poses: &[Isometry3<f64>]) -> Result<()> {
    let path = path.as_ref();
    let mut text = String::new();
    for pose in poses {
        let m = pose.to_homogeneous();
        let row: Vec<String> = (0..3)
            .flat_map(|r| (0..4).map(move |c| (r, c)))
            .map(|(r, c)| format!("{}", m[(r, c)]))
            .collect();
        let _ = writeln!(text, "{}", row.join(" "));
    }
    write_text(path, &text)
}

/// Reads a TUM trajectory: `(timestamp in seconds, world_from_sensor)` per
/// non-comment line. The quaternion is normalised.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming the
/// line for a line without exactly 8 numbers or a zero quaternion.
pub fn read_tum_poses(path: impl AsRef<Path>) -> Result<Vec<(f64, Isometry3<f64>)>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut poses = Vec::new();
    for (line_no, line) in data_lines(&text) {
        let v = numbers(line, path, line_no)?;
        let [t, tx, ty, tz, qx, qy, qz, qw] = v[..] else {
            return Err(line_error(
                path,
                line_no,
                format!("{} values, expected 8 (t tx ty tz qx qy qz qw)", v.len()),
            ));
        };
        let q = Quaternion::new(qw, qx, qy, qz);
        let norm = q.norm();
        if !(norm > 1e-9 && norm.is_finite()) {
            return Err(line_error(
                path,
                line_no,
                "quaternion has zero length".into(),
            ));
        }
        let rotation = UnitQuaternion::from_quaternion(q);
        poses.push((
            t,
            Isometry3::from_parts(Translation3::new(tx, ty, tz), rotation),
        ));
    }
    Ok(poses)
}

/// Writes a TUM trajectory (`t tx ty tz qx qy qz qw` per line), atomically.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_tum_poses(path: impl AsRef<Path>, poses: &[(f64, Isometry3<f64>)]) -> Result<()> {
    let path = path.as_ref();
    let mut text = String::from("# timestamp tx ty tz qx qy qz qw\n");
    for (t, pose) in poses {
        let p = pose.translation.vector;
        let q = pose.rotation.quaternion();
        let _ = writeln!(
            text,
            "{t} {} {} {} {} {} {} {}",
            p.x, p.y, p.z, q.i, q.j, q.k, q.w
        );
    }
    write_text(path, &text)
}

/// Reads a rigid transform, e.g. `target_from_source`: a 4×4 homogeneous
/// matrix (16 numbers, row-major) or its upper 3×4 block `[R | t]` (12
/// numbers, row-major, as one line of a KITTI pose file).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it does
/// not hold exactly 16 or 12 numbers, the last row of a 4×4 is not
/// `0 0 0 1` (within 1e-6), or the rotation block is not rigid (see
/// [`RIGID_TOLERANCE`]).
pub fn read_matrix4(path: impl AsRef<Path>) -> Result<Isometry3<f64>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut v = Vec::with_capacity(16);
    for (line_no, line) in data_lines(&text) {
        v.extend(numbers(line, path, line_no)?);
    }
    if v.len() == 12 {
        v.extend([0.0, 0.0, 0.0, 1.0]);
    }
    if v.len() != 16 {
        return Err(Error::format(
            path,
            format!(
                "{} numbers, expected 16 (a 4×4 matrix) or 12 (its 3×4 block [R | t])",
                v.len()
            ),
        ));
    }
    let m = Matrix4::from_row_slice(&v);
    let last = m.row(3);
    let expected = nalgebra::RowVector4::new(0.0, 0.0, 0.0, 1.0);
    if (last - expected).abs().max() > 1e-6 {
        return Err(Error::format(
            path,
            format!("last row is {last}, expected 0 0 0 1: not a rigid transform"),
        ));
    }
    let rotation = nearest_rotation(&m.fixed_view::<3, 3>(0, 0).into_owned())
        .map_err(|reason| Error::format(path, reason))?;
    let translation = Vector3::new(m[(0, 3)], m[(1, 3)], m[(2, 3)]);
    Ok(Isometry3::from_parts(translation.into(), rotation))
}

/// The rotation nearest to `m` (`U·Vᵀ` of its SVD), or why `m` is not one.
fn nearest_rotation(m: &Matrix3<f64>) -> std::result::Result<UnitQuaternion<f64>, String> {
    if !m.iter().all(|v| v.is_finite()) {
        return Err("rotation has non-finite entries".to_string());
    }
    let deviation = (m.transpose() * m - Matrix3::identity()).norm();
    if deviation > RIGID_TOLERANCE {
        return Err(format!(
            "rotation block is not orthonormal (‖RᵀR − I‖ = {deviation:.2e} > {RIGID_TOLERANCE:e}): \
             not a rigid transform"
        ));
    }
    if m.determinant() <= 0.0 {
        return Err("rotation block has determinant ≤ 0 (a reflection)".to_string());
    }
    let svd = m.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err("SVD of the rotation block failed".to_string());
    };
    let r = u * v_t;
    Ok(UnitQuaternion::from_rotation_matrix(
        &nalgebra::Rotation3::from_matrix_unchecked(r),
    ))
}

fn read_text(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(atomic::io_err(path))?;
    if text.trim().is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    Ok(text)
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    atomic::write_atomic(path, |out| {
        out.write_all(text.as_bytes()).map_err(atomic::io_err(path))
    })
}

/// Non-empty, non-comment lines with their 1-based numbers.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn numbers(line: &str, path: &Path, line_no: usize) -> Result<Vec<f64>> {
    line.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<f64>()
                .map_err(|_| line_error(path, line_no, format!("'{s}' is not a number")))
        })
        .collect()
}

fn line_error(path: &Path, line_no: usize, reason: String) -> Error {
    Error::format(path, format!("line {line_no}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_rigid_and_reflection_matrices_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.txt");
        std::fs::write(&p, "2 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n").unwrap();
        assert!(read_matrix4(&p).is_err());
        std::fs::write(&p, "-1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n").unwrap();
        assert!(read_matrix4(&p).is_err());
        std::fs::write(&p, "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 1 1\n").unwrap();
        assert!(read_matrix4(&p).is_err());
        std::fs::write(&p, "1 0 0 5\n0 1 0 6\n0 0 1 7\n0 0 0 1\n").unwrap();
        let t = read_matrix4(&p).unwrap();
        assert_eq!(t.translation.vector, Vector3::new(5.0, 6.0, 7.0));
        assert_eq!(t.rotation.angle(), 0.0);
    }

    /// Issue 26, item 9: a 3×4 `[R | t]` (a KITTI pose line) is accepted
    /// as `--init`; other counts are refused.
    #[test]
    fn three_by_four_matrix_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.txt");
        std::fs::write(&p, "0 -1 0 5\n1 0 0 6\n0 0 1 7\n").unwrap();
        let t = read_matrix4(&p).unwrap();
        assert_eq!(t.translation.vector, Vector3::new(5.0, 6.0, 7.0));
        assert!((t.rotation.angle() - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        std::fs::write(&p, "0 -1 0 5 1 0 0 6 0 0 1 7 0 0 0 1 2\n").unwrap();
        assert!(read_matrix4(&p).is_err());
    }

    #[test]
    fn tum_zero_quaternion_and_short_lines_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, "0 1 2 3 0 0 0 0\n").unwrap();
        assert!(read_tum_poses(&p).is_err());
        std::fs::write(&p, "0 1 2 3 0 0 0\n").unwrap();
        assert!(read_tum_poses(&p).is_err());
    }
}
