//! Atomic file output: write to a temporary file in the target folder, then
//! rename it over the target.
//!
//! The rename happens only after the writer closure succeeded and the data
//! was flushed, so readers of the target never see a half-written file and a
//! failed write leaves any previous file untouched (the temporary file is
//! removed when dropped).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Buffer size for file output (1 MiB).
const BUFFER_BYTES: usize = 1 << 20;

/// Writes `path` atomically: `write_body` fills a buffered temporary file in
/// `path`'s folder, which is then flushed, synced and renamed to `path`.
///
/// # Errors
/// [`Error::Io`] (naming `path`) when the temporary file cannot be created,
/// written or renamed; any error returned by `write_body`.
pub fn write_atomic(
    path: &Path,
    write_body: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".pointpipe-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    let file = tmp.as_file().try_clone().map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, file);
    write_body(&mut out)?;
    out.flush().map_err(|e| Error::io(path, e))?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Like [`write_atomic`], for writers that must own their output (the `las`
/// crate's `Writer` needs a `'static` stream): `write_body` gets a handle to
/// the temporary file, must flush everything it buffers, and returns the
/// handle when done.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_owned(
    path: &Path,
    write_body: impl FnOnce(File) -> Result<File>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".pointpipe-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    let file = tmp.as_file().try_clone().map_err(|e| Error::io(path, e))?;
    let file = write_body(file)?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Maps a `std::io::Error` on `path` to [`Error::Io`]; for `map_err`.
pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        std::fs::write(&target, b"old").unwrap();
        let r = write_atomic(&target, |w| {
            w.write_all(b"partial").map_err(io_err(&target))?;
            Err(Error::format(&target, "simulated failure"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn successful_write_replaces_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        write_atomic(&target, |w| w.write_all(b"new").map_err(io_err(&target))).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
