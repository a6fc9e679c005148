//! Memory of a batch: the per-file estimate from a tile's header, the
//! `max_memory` admission of files into the job loop, byte sizes with
//! suffixes (`4G`), and the allocator settings that keep a run's resident
//! memory from growing file after file.
//!
//! # Admission
//! With `jobs = N`, up to `N` files are in flight. With a memory limit, the
//! next file (in input order, never overtaken) starts only when the
//! estimates of the files in flight plus its own fit under the limit
//! ([`may_start`]); a file whose estimate alone exceeds the limit starts
//! when nothing else is in flight, and runs alone (with a warning). The
//! order in which files start does not change any output.

use std::sync::{Condvar, Mutex};

use crate::error::{Error, Result};

/// Estimated peak bytes per input point of a file on the streaming path
/// (voxel grid on, no outlier removal, LAS/LAZ output), with every point
/// in its own voxel (the worst case): its first record (34 bytes for point
/// format 3, up to 67 for format 10 with the normals' 16 extra bytes), 28
/// bytes of sums and 16–32 of hash table per voxel, with margin. The voxel
/// grid's merging only lowers it (`docs/performance.md`, "Batch memory").
pub const STREAMING_BYTES_PER_POINT: u64 = 100;

/// Estimated peak bytes per input point of a file read whole (outlier
/// removal, no voxel grid or PLY output): its records and positions, the
/// cloud copy, the k-d tree, the normals and the output records.
pub const WHOLE_TILE_BYTES_PER_POINT: u64 = 200;

/// Fixed part of a file's estimate: one read chunk and one write slab.
pub const FILE_OVERHEAD_BYTES: u64 = 64 << 20;

/// The estimated peak memory of processing a tile of `points` points (from
/// its header): `points` × the per-point figure of its path plus
/// [`FILE_OVERHEAD_BYTES`]. Halo points are not counted (they are
/// downsampled and usually far fewer than the tile's).
pub fn estimated_file_bytes(points: u64, streaming: bool) -> u64 {
    let per_point = if streaming {
        STREAMING_BYTES_PER_POINT
    } else {
        WHOLE_TILE_BYTES_PER_POINT
    };
    points
        .saturating_mul(per_point)
        .saturating_add(FILE_OVERHEAD_BYTES)
}

/// Whether a file estimated at `bytes` may start now, with `in_flight`
/// files estimated at `in_flight_bytes` running and a limit of
/// `max_memory` bytes (`None`: no limit): it fits, or nothing else runs.
///
/// ```
/// use pointpipe::batch::memory::may_start;
/// assert!(may_start(3, 1, 5, Some(8)));
/// assert!(!may_start(4, 1, 5, Some(8)));
/// assert!(may_start(100, 0, 0, Some(8))); // too big: runs alone
/// assert!(may_start(100, 3, 300, None));
/// ```
pub fn may_start(
    bytes: u64,
    in_flight: usize,
    in_flight_bytes: u64,
    max_memory: Option<u64>,
) -> bool {
    match max_memory {
        None => true,
        Some(max) => in_flight == 0 || in_flight_bytes.saturating_add(bytes) <= max,
    }
}

/// A byte count with an optional binary suffix: `K`, `M`, `G`, `T` (powers
/// of 1024, with or without a trailing `B` or `iB`, any case), e.g. `4G`,
/// `512MiB`, `1073741824`.
///
/// # Errors
/// [`Error::InvalidParameter`] (`max_memory`) for an empty, negative,
/// fractional-byte, unknown-suffix or overflowing value.
///
/// ```
/// use pointpipe::batch::memory::parse_byte_size;
/// assert_eq!(parse_byte_size("4G").unwrap(), 4 << 30);
/// assert_eq!(parse_byte_size("1.5k").unwrap(), 1536);
/// assert_eq!(parse_byte_size("512MiB").unwrap(), 512 << 20);
/// assert!(parse_byte_size("4X").is_err());
/// ```
pub fn parse_byte_size(text: &str) -> Result<u64> {
    let bad = |why: &str| Error::invalid("max_memory", text, why.to_string());
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, suffix) = lower.split_at(digits_end);
    let shift = match suffix.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(bad(
                "expected a number of bytes with an optional K, M, G or T suffix",
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| bad("expected a number of bytes with an optional K, M, G or T suffix"))?;
    let bytes = value * 2f64.powi(shift);
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(bad("must be at least 1 byte and fit in 64 bits"));
    }
    Ok(bytes as u64)
}

/// The admission of files into the job loop under a memory limit (see the
/// [module docs](self)): files are claimed in input order and start in
/// that order, each when [`may_start`] allows it.
#[derive(Debug)]
pub(crate) struct Admission {
    max_memory: Option<u64>,
    state: Mutex<AdmissionState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct AdmissionState {
    /// The next file to hand to a worker.
    next_claim: usize,
    /// The next file allowed to start (files start in order).
    next_start: usize,
    in_flight: usize,
    in_flight_bytes: u64,
}

impl Admission {
    pub(crate) fn new(max_memory: Option<u64>) -> Self {
        Admission {
            max_memory,
            state: Mutex::new(AdmissionState::default()),
            changed: Condvar::new(),
        }
    }

    /// Claims the next file among `files` and waits until it may start;
    /// `bytes(i)` is file `i`'s estimate. Returns the file's index and
    /// whether it runs alone because its estimate exceeds the limit;
    /// `None` when every file is claimed.
    pub(crate) fn start_next(
        &self,
        files: usize,
        bytes: impl Fn(usize) -> u64,
    ) -> Option<(usize, bool)> {
        let mut state = self.lock();
        let i = state.next_claim;
        if i >= files {
            return None;
        }
        state.next_claim += 1;
        let need = bytes(i);
        while !(state.next_start == i
            && may_start(
                need,
                state.in_flight,
                state.in_flight_bytes,
                self.max_memory,
            ))
        {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.next_start += 1;
        state.in_flight += 1;
        state.in_flight_bytes = state.in_flight_bytes.saturating_add(need);
        drop(state);
        self.changed.notify_all();
        Some((i, self.max_memory.is_some_and(|max| need > max)))
    }

    /// A file estimated at `bytes` is finished.
    pub(crate) fn finish(&self, bytes: u64) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.in_flight_bytes = state.in_flight_bytes.saturating_sub(bytes);
        drop(state);
        self.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AdmissionState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keeps freed memory from piling up file after file (glibc only; a no-op
/// elsewhere), process-wide, once: a fixed mmap threshold of 4 MiB, so the
/// chunk, slab and codec buffers of a few MiB are mapped and unmapped
/// instead of being served from per-thread arenas that glibc's dynamic
/// threshold would otherwise grow into and keep, so that files in a row
/// peak as one file does (`docs/performance.md`, "Four tiles in a row").
pub(crate) fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt changes a tuning parameter of glibc's
            // allocator; it takes no pointer and is thread-safe.
            let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20) };
            if ok != 1 {
                log::debug!("mallopt(M_MMAP_THRESHOLD) refused");
            }
        });
    }
}

/// Hands the memory freed by a finished file back to the system (glibc's
/// `malloc_trim`; a no-op elsewhere), so that the next file's peak does not
/// come on top of it.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's own
    // arenas to the system; it takes no pointer and touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[test]
    fn admission_decision() {
        // No limit: always.
        assert!(may_start(u64::MAX, 7, u64::MAX, None));
        // Fits exactly, one byte over.
        assert!(may_start(4, 2, 6, Some(10)));
        assert!(!may_start(5, 2, 6, Some(10)));
        // Bigger than the limit: only alone.
        assert!(may_start(11, 0, 0, Some(10)));
        assert!(!may_start(11, 1, 1, Some(10)));
        // No overflow near u64::MAX.
        assert!(!may_start(u64::MAX, 1, 1, Some(u64::MAX - 1)));
    }

    #[test]
    fn estimates() {
        assert_eq!(
            estimated_file_bytes(10_010_000, true),
            10_010_000 * STREAMING_BYTES_PER_POINT + FILE_OVERHEAD_BYTES
        );
        assert!(estimated_file_bytes(1, false) > estimated_file_bytes(1, true));
        assert_eq!(estimated_file_bytes(u64::MAX, false), u64::MAX);
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("1").unwrap(), 1);
        assert_eq!(parse_byte_size(" 4G ").unwrap(), 4 << 30);
        assert_eq!(parse_byte_size("4gb").unwrap(), 4 << 30);
        assert_eq!(parse_byte_size("2T").unwrap(), 2 << 40);
        assert_eq!(parse_byte_size("0.5M").unwrap(), 512 << 10);
        for bad in ["", "G", "-1G", "0", "4X", "1.2.3", "99999999999T"] {
            assert!(parse_byte_size(bad).is_err(), "{bad}");
        }
    }

    /// Runs `files` (estimates in bytes) through `jobs` workers under
    /// `max`, each holding its file for a moment; returns the largest sum of
    /// estimates in flight and the largest number of files in flight.
    fn simulate(files: &[u64], jobs: usize, max: Option<u64>) -> (u64, usize, Vec<usize>) {
        let admission = Admission::new(max);
        let bytes_now = AtomicU64::new(0);
        let files_now = AtomicUsize::new(0);
        let peak_bytes = AtomicU64::new(0);
        let peak_files = AtomicUsize::new(0);
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    while let Some((i, _alone)) = admission.start_next(files.len(), |i| files[i]) {
                        order.lock().unwrap().push(i);
                        let b = bytes_now.fetch_add(files[i], Ordering::SeqCst) + files[i];
                        let f = files_now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak_bytes.fetch_max(b, Ordering::SeqCst);
                        peak_files.fetch_max(f, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        bytes_now.fetch_sub(files[i], Ordering::SeqCst);
                        files_now.fetch_sub(1, Ordering::SeqCst);
                        admission.finish(files[i]);
                    }
                });
            }
        });
        (
            peak_bytes.into_inner(),
            peak_files.into_inner(),
            order.into_inner().unwrap(),
        )
    }

    #[test]
    fn limit_lowers_parallelism_and_files_start_in_order() {
        let files = [4, 4, 4, 9, 4, 4, 20, 1, 1];
        let (peak, _, mut order) = simulate(&files, 4, Some(10));
        // Never more than the limit in flight, except the 20-byte file,
        // which runs alone; every file runs once.
        assert!(peak <= 20);
        order.sort_unstable();
        assert_eq!(order, (0..files.len()).collect::<Vec<_>>());
        let (peak, in_flight, _) = simulate(&files[..6], 4, Some(10));
        assert!(peak <= 10, "{peak}");
        assert!(in_flight <= 2);
        // Without a limit, the jobs bound.
        let (_, in_flight, _) = simulate(&[1; 16], 3, None);
        assert!(in_flight <= 3);
    }

    #[test]
    fn oversized_file_runs_alone() {
        let (peak, in_flight, _) = simulate(&[50, 50, 50], 3, Some(10));
        assert_eq!(peak, 50);
        assert_eq!(in_flight, 1);
    }
}
