//! Finding the frames of a sequence on disk and their times.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Extensions of frame files, lower-case.
pub const FRAME_EXTENSIONS: [&str; 5] = ["bin", "pcd", "ply", "las", "laz"];

/// The frame files of `input`, in sequence order.
///
/// - A directory: its entries with a frame extension ([`FRAME_EXTENSIONS`]),
///   sorted by the last number in the file name (`full9.pcd` before
///   `full10.pcd`), ties by name. Every such entry is a frame, also a
///   sub-folder or a dangling symlink with such a name: reading it then
///   fails and the frame is reported (or flagged with `--skip-bad`) instead
///   of silently dropped, which would shift every later pose. The KITTI
///   layouts are recognised: odometry (`input/velodyne/*.bin`) and raw
///   (`input/velodyne_points/data/*.bin`); the frames are then those of that
///   folder.
/// - A text file: one frame path per line (relative paths are relative to
///   the list's folder); empty lines and lines starting with `#` are skipped.
///
/// # Errors
/// [`Error::Io`] when `input` cannot be read; [`Error::Format`] when it holds
/// no frame (naming the sub-folders that hold frames, if any), or when it is
/// a single frame file rather than a folder or a list.
pub fn list_frames(input: &Path) -> Result<Vec<PathBuf>> {
    if !input.is_dir() && has_frame_extension(input) {
        return Err(Error::format(
            input,
            "this is a single frame; give the directory that holds the frames \
             (or a text file listing them, one path per line)",
        ));
    }
    let frames = if input.is_dir() {
        let dir = frame_dir(input);
        let mut frames: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| has_frame_extension(p))
            .collect();
        frames.sort_by(|a, b| {
            frame_number(a)
                .cmp(&frame_number(b))
                .then_with(|| a.file_name().cmp(&b.file_name()))
        });
        frames
    } else {
        let bytes = std::fs::read(input).map_err(|e| Error::io(input, e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::format(
                input,
                "not a text file listing frames (give a directory of frames, \
                 or a text file with one frame path per line)",
            )
        })?;
        let base = input.parent().unwrap_or(Path::new("."));
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| base.join(l))
            .collect()
    };
    if frames.is_empty() {
        let hint = if input.is_dir() {
            let nested = folders_with_frames(input);
            if nested.is_empty() {
                String::new()
            } else {
                format!(
                    "; frames are in the sub-folder(s) {}: give that folder",
                    nested.join(", ")
                )
            }
        } else {
            String::new()
        };
        return Err(Error::format(
            input,
            format!(
                "no frames found (expected files ending in .{}){hint}",
                FRAME_EXTENSIONS.join(", .")
            ),
        ));
    }
    Ok(frames)
}

/// The frame folder of a KITTI layout under `input` (odometry:
/// `velodyne/`; raw: `velodyne_points/data/`) when it exists, else `input`.
fn frame_dir(input: &Path) -> PathBuf {
    ["velodyne", "velodyne_points/data"]
        .into_iter()
        .map(|sub| input.join(sub))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| input.to_path_buf())
}

/// The names of the sub-folders of `dir` (one and two levels down) that hold
/// frame files, for the "no frames found" hint.
fn folders_with_frames(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((folder, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut has_frames = false;
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.is_dir() {
                if depth < 2 {
                    stack.push((path, depth + 1));
                }
            } else if has_frame_extension(&path) {
                has_frames = true;
            }
        }
        if has_frames && depth > 0 {
            found.push(folder.display().to_string());
        }
    }
    found.sort();
    found
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

    /// Issue 26, items 14 and 21: the KITTI raw layout is found, a folder of
    /// frames one level down is named, a sub-folder or dangling symlink
    /// named like a frame is listed (and fails when read, not silently
    /// skipped), a single frame is refused with a hint.
    #[test]
    fn layouts_hints_and_odd_entries() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("velodyne_points/data");
        std::fs::create_dir_all(&raw).unwrap();
        std::fs::write(raw.join("0000000000.bin"), b"x").unwrap();
        assert_eq!(
            list_frames(dir.path()).unwrap(),
            [raw.join("0000000000.bin")]
        );

        let nested = tempfile::tempdir().unwrap();
        std::fs::create_dir(nested.path().join("scans")).unwrap();
        std::fs::write(nested.path().join("scans/1.pcd"), b"x").unwrap();
        let e = list_frames(nested.path()).unwrap_err().to_string();
        assert!(e.contains("scans"), "{e}");

        let odd = tempfile::tempdir().unwrap();
        std::fs::write(odd.path().join("1.pcd"), b"x").unwrap();
        std::fs::create_dir(odd.path().join("2.pcd")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(odd.path().join("gone"), odd.path().join("3.pcd")).unwrap();
        let frames = list_frames(odd.path()).unwrap();
        assert_eq!(frames.len(), if cfg!(unix) { 3 } else { 2 });

        let e = list_frames(&odd.path().join("1.pcd"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("single frame"), "{e}");
    }

    #[test]
    fn empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_frames(dir.path()).is_err());
    }
}
