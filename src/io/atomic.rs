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
    let tmp = temporary_beside(path, dir)?;
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
    let tmp = temporary_beside(path, dir)?;
    let file = tmp.as_file().try_clone().map_err(|e| Error::io(path, e))?;
    let file = write_body(file)?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Mode requested for new files before the umask applies: `0666`, what
/// `File::create` (and every Unix tool) asks for, so outputs end up `0644`
/// under the usual umask `022` instead of the temporary file's `0600`.
#[cfg(unix)]
const NEW_FILE_MODE: u32 = 0o666;

/// The temporary file for `path` in `dir`, created with the umask's mode.
/// Errors name `path`, not the temporary file, and say the OS reason once.
fn temporary_beside(path: &Path, dir: &Path) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".pointpipe-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(NEW_FILE_MODE));
    }
    builder
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, without_temporary_path(e)))
}

/// `tempfile` appends ` at path "<temporary file>"` to its errors: a name
/// the user never gave. Keeps the OS reason and its kind only.
fn without_temporary_path(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.split_once(" at path ") {
        Some((reason, _)) => std::io::Error::new(e.kind(), reason.to_string()),
        None => e,
    }
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

    /// Issue 26, item 4: the output gets `0666 & !umask`, like a file from
    /// `File::create`, not the temporary file's `0600`.
    #[cfg(unix)]
    #[test]
    fn output_mode_follows_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let reference = dir.path().join("reference.bin");
        File::create(&reference).unwrap();
        let target = dir.path().join("out.bin");
        write_atomic(&target, |w| w.write_all(b"new").map_err(io_err(&target))).unwrap();
        let owned = dir.path().join("owned.bin");
        write_atomic_owned(&owned, Ok).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), mode(&reference));
        assert_eq!(mode(&owned), mode(&reference));
    }

    /// A missing folder: one OS reason, no temporary file name.
    #[test]
    fn missing_folder_error_names_the_target_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("no/such/out.bin");
        let e = write_atomic(&target, |_| Ok(())).unwrap_err().to_string();
        assert!(!e.contains(".pointpipe-"), "{e}");
        assert!(e.contains("out.bin"), "{e}");
    }

    #[test]
    fn successful_write_replaces_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        write_atomic(&target, |w| w.write_all(b"new").map_err(io_err(&target))).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
