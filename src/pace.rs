//! Cooperative pacing of long background work next to a latency-sensitive
//! one: a layer rebuilt while the same cores answer queries.
//!
//! The work calls [`checkpoint`] between pieces of a few hundred
//! microseconds or less (every few thousand points in the loops of the
//! layer load and of the k-d tree build). Outside [`paced`] a checkpoint
//! costs one thread-local read. Inside it, a checkpoint that finds the
//! current stretch of work longer than [`Pace::slice`] sleeps in proportion,
//! so that the thread uses at most [`Pace::cpu_share`] of one core, and
//! never for more than about a slice at a time.
//!
//! Stretches are wall time: time the thread spent preempted counts as work,
//! so on a saturated machine the work backs off further (figures in
//! docs/performance.md, "p99 while rebuilding: paced rebuilds").
//!
//! Why sleep rather than lower the thread's priority: on a saturated
//! machine the scheduler still lets a nice or `SCHED_IDLE` thread run for
//! milliseconds, and a query that waits behind it sees its latency
//! multiplied; short voluntary pauses keep every wait short
//! (docs/performance.md, "p99 while rebuilding").
//!
//! ```
//! use std::time::Duration;
//! use pointpipe::pace::{self, Pace};
//!
//! let pace = Pace { cpu_share: 0.5, slice: Duration::from_micros(200) };
//! let (sum, report) = pace::paced(&pace, || {
//!     let mut sum = 0u64;
//!     for chunk in 0..200u64 {
//!         sum += (0..10_000u64).map(|i| i ^ chunk).sum::<u64>();
//!         pace::checkpoint();
//!     }
//!     sum
//! });
//! assert!(sum > 0);
//! assert!(report.paused >= Duration::ZERO);
//! # Ok::<(), pointpipe::Error>(())
//! ```

use std::cell::Cell;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How much of one core paced work may use, and in which pieces. Checked
/// by [`Pace::validate`]; [`paced`] runs work unpaced under an invalid pace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Largest share of one core, in (0, 1]; 1 never pauses.
    pub cpu_share: f64,
    /// Work between two pauses (the longest a waiting query is held up by
    /// this thread, checkpoints permitting).
    pub slice: Duration,
}

impl Default for Pace {
    /// Half a core, in slices of 250 µs.
    fn default() -> Pace {
        Pace {
            cpu_share: 0.5,
            slice: Duration::from_micros(250),
        }
    }
}

impl Pace {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a `cpu_share` outside (0, 1] and for
    /// a `slice` of zero or over one second.
    pub fn validate(&self) -> Result<()> {
        if !(self.cpu_share > 0.0 && self.cpu_share <= 1.0) {
            return Err(Error::invalid(
                "cpu_share",
                self.cpu_share,
                "must be in (0, 1]",
            ));
        }
        if self.slice.is_zero() || self.slice > Duration::from_secs(1) {
            return Err(Error::invalid(
                "slice",
                format!("{:?}", self.slice),
                "must be in (0, 1] s",
            ));
        }
        Ok(())
    }
}

/// What pacing did to one piece of work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PaceReport {
    /// Pauses taken.
    pub pauses: u64,
    /// Time spent in them.
    pub paused: Duration,
    /// Longest work between two checkpoints (or the start and the end): the
    /// longest the pacing could not cut.
    pub longest_stretch: Duration,
    /// The checkpoint that ended the longest stretch (`None`: the end of
    /// the work).
    pub longest_stretch_end: Option<&'static Location<'static>>,
}

#[derive(Clone, Copy)]
struct State {
    pace: Pace,
    stretch_start: Instant,
    /// Sleep beyond the pauses asked for so far, taken off the next one.
    overslept: Duration,
    report: PaceReport,
}

thread_local! {
    static STATE: Cell<Option<State>> = const { Cell::new(None) };
}

/// Runs `work` on the calling thread with its [`checkpoint`]s paced by
/// `pace`, and reports the pauses. Checkpoints reached on other threads
/// (work handed to a multi-thread rayon pool) are not paced: run the work
/// in a one-thread pool (`pool.install(|| paced(..))`) to pace all of it.
/// Nested calls pace with the innermost `pace`.
///
/// An invalid `pace` (see [`Pace::validate`]) runs `work` unpaced.
pub fn paced<R>(pace: &Pace, work: impl FnOnce() -> R) -> (R, PaceReport) {
    if pace.validate().is_err() || pace.cpu_share >= 1.0 {
        return (work(), PaceReport::default());
    }
    let outer = STATE.with(|s| {
        s.replace(Some(State {
            pace: *pace,
            stretch_start: Instant::now(),
            overslept: Duration::ZERO,
            report: PaceReport::default(),
        }))
    });
    // Restores the outer state even if `work` unwinds.
    struct Restore(Option<State>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STATE.with(|s| s.set(self.0));
        }
    }
    let restore = Restore(outer);
    let result = work();
    let report = STATE.with(|s| {
        s.get().map_or_else(PaceReport::default, |st| {
            let mut report = st.report;
            let last = st.stretch_start.elapsed();
            if last > report.longest_stretch {
                report.longest_stretch = last;
                report.longest_stretch_end = None;
            }
            report
        })
    });
    drop(restore);
    (result, report)
}

/// A point where paced work may pause (see the [module docs](self)): a
/// no-op outside [`paced`] and while the current stretch is shorter than
/// the slice.
#[inline]
#[track_caller]
pub fn checkpoint() {
    let at = Location::caller();
    STATE.with(|s| {
        if let Some(st) = s.get() {
            pause_if_due(s, st, at);
        }
    });
}

#[inline(never)]
fn pause_if_due(cell: &Cell<Option<State>>, mut st: State, at: &'static Location<'static>) {
    let ran = st.stretch_start.elapsed();
    if ran < st.pace.slice {
        return;
    }
    if ran > st.report.longest_stretch {
        st.report.longest_stretch = ran;
        st.report.longest_stretch_end = Some(at);
    }
    // A sleep lasts longer than asked (timer slack, wake-up): the excess is
    // taken off the next pause, so the share holds on average.
    let owed = ran.mul_f64((1.0 - st.pace.cpu_share) / st.pace.cpu_share);
    let pause = owed.saturating_sub(st.overslept).max(owed / 4);
    let before = Instant::now();
    std::thread::sleep(pause);
    let after = Instant::now();
    let slept = after - before;
    st.overslept = (st.overslept + slept).saturating_sub(owed);
    st.report.pauses += 1;
    st.report.paused += slept;
    st.stretch_start = after;
    cell.set(Some(st));
}

/// Reads a whole file, like [`std::fs::read`], in pieces of 512 KiB with a
/// [`checkpoint`] after each (copying a large file from the page cache is
/// milliseconds of work).
///
/// # Errors
/// The I/O error of opening or reading the file.
pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const PIECE: usize = 512 << 10;
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut bytes = Vec::with_capacity(size);
    loop {
        let before = bytes.len();
        let read = (&mut file).take(PIECE as u64).read_to_end(&mut bytes)?;
        debug_assert_eq!(bytes.len(), before + read);
        if read == 0 {
            return Ok(bytes);
        }
        checkpoint();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let t = Instant::now();
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn paced_work_pauses_in_proportion_and_reports_it() {
        let pace = Pace {
            cpu_share: 0.5,
            slice: Duration::from_micros(500),
        };
        let started = Instant::now();
        let (v, report) = paced(&pace, || {
            for _ in 0..40 {
                spin(Duration::from_micros(600));
                checkpoint();
            }
            7
        });
        let wall = started.elapsed();
        assert_eq!(v, 7);
        assert_eq!(report.pauses, 40);
        // Each pause is at least as long as the stretch before it.
        assert!(
            report.paused >= Duration::from_micros(40 * 600),
            "{report:?}"
        );
        assert!(wall >= Duration::from_micros(2 * 40 * 600));
        assert!(report.longest_stretch >= Duration::from_micros(600));
    }

    #[test]
    fn checkpoints_outside_paced_or_at_full_share_never_pause() {
        for _ in 0..1000 {
            checkpoint();
        }
        let full = Pace {
            cpu_share: 1.0,
            ..Pace::default()
        };
        let (_, report) = paced(&full, || {
            spin(Duration::from_millis(2));
            checkpoint();
        });
        assert_eq!(report, PaceReport::default());
        // The state is gone after `paced`.
        let pace = Pace::default();
        let (_, inside) = paced(&pace, || {
            spin(Duration::from_millis(1));
            checkpoint();
        });
        assert_eq!(inside.pauses, 1);
        STATE.with(|s| assert!(s.get().is_none()));
    }

    #[test]
    fn read_file_equals_std_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let bytes: Vec<u8> = (0..1_300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let (read, _) = paced(&Pace::default(), || read_file(&path));
        assert_eq!(read.unwrap(), bytes);
        std::fs::write(&path, b"").unwrap();
        assert!(read_file(&path).unwrap().is_empty());
        assert!(read_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn invalid_paces_are_refused() {
        for share in [0.0, -0.5, 1.5, f64::NAN] {
            let p = Pace {
                cpu_share: share,
                ..Pace::default()
            };
            assert!(p.validate().is_err(), "{share}");
        }
        let p = Pace {
            slice: Duration::ZERO,
            ..Pace::default()
        };
        assert!(p.validate().is_err());
        assert!(Pace::default().validate().is_ok());
    }
}
