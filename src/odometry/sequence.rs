//! Finding the frames of a sequence on disk and their times.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Extensions of frame files, lower-case.
pub const FRAME_EXTENSIONS: [&str; 5] = ["bin", "pcd", "ply", "las", "laz"];

/// The frame files of `input`, in sequence order.
///
/// - A directory: its files with a frame extension ([`FRAME_EXTENSIONS`]),
///   sorted by the last number in the file name (`full9.pcd` before
///   `full10.pcd`), ties by name. A KITTI layout (`input/velodyne/*.bin`) is
///   recognised: the frames are then those of `velodyne/`.
/// - A text file: one frame path per line (relative paths are relative to
///   the list's folder); empty lines and lines starting with `#` are skipped.
///
/// # Errors
/// [`Error::Io`] when `input` cannot be read, [`Error::Format`] when it holds
/// no frame.
pub fn list_frames(input: &Path) -> Result<Vec<PathBuf>> {
    let frames = if input.is_dir() {
        let dir = frame_dir(input);
        let mut frames: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && has_frame_extension(p))
            .collect();
        frames.sort_by(|a, b| {
            frame_number(a)
                .cmp(&frame_number(b))
                .then_with(|| a.file_name().cmp(&b.file_name()))
        });
        frames
    } else {
        let text = std::fs::read_to_string(input).map_err(|e| Error::io(input, e))?;
        let base = input.parent().unwrap_or(Path::new("."));
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| base.join(l))
            .collect()
    };
    if frames.is_empty() {
        return Err(Error::format(
            input,
            format!(
                "no frames found (expected files ending in .{})",
                FRAME_EXTENSIONS.join(", .")
            ),
        ));
    }
    Ok(frames)
}

/// `input/velodyne` when it exists (KITTI layout), else `input`.
fn frame_dir(input: &Path) -> PathBuf {
    let velodyne = input.join("velodyne");
    if velodyne.is_dir() {
        velodyne
    } else {
        input.to_path_buf()
    }
}

fn has_frame_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| FRAME_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The last run of digits in the file stem, if any.
fn frame_number(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    let end = stem.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = stem[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    stem[start..end].parse().ok()
}

/// Frame times in seconds from `times.txt` (one number per line, KITTI
/// layout) in `input` (or beside the frames), when it exists and has one line
/// per frame; `None` otherwise (callers then use the frame index).
///
/// # Errors
/// [`Error::Format`] when `times.txt` exists but a line is not a number.
pub fn read_times(input: &Path, frames: usize) -> Result<Option<Vec<f64>>> {
    let dir = if input.is_dir() {
        input
    } else {
        input.parent().unwrap_or(Path::new("."))
    };
    let path = dir.join("times.txt");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let times = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            l.parse::<f64>().map_err(|_| {
                Error::format(
                    &path,
                    format!("line {}: '{l}' is not a time in seconds", i + 1),
                )
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok((times.len() == frames).then_some(times))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_numerically() {
        assert_eq!(frame_number(Path::new("full20.pcd")), Some(20));
        assert_eq!(frame_number(Path::new("000123.bin")), Some(123));
        assert_eq!(frame_number(Path::new("scan_v2_0007.ply")), Some(7));
        assert_eq!(frame_number(Path::new("frame.ply")), None);
    }

    #[test]
    fn directory_listing_is_numeric_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["full10.pcd", "full9.pcd", "notes.txt", "full100.pcd"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let frames = list_frames(dir.path()).unwrap();
        let names: Vec<_> = frames
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["full9.pcd", "full10.pcd", "full100.pcd"]);
    }

    #[test]
    fn empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_frames(dir.path()).is_err());
    }
}
