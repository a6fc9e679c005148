//! Double-buffered live reload: a layer is reloaded and re-indexed on a
//! background thread while queries keep reading the current snapshot, then
//! published with one atomic pointer swap. The rebuild runs on one thread,
//! paced ([`crate::pace`]) by `--rebuild-cpu-share`. One rebuild per layer at a time;
//! requests that arrive meanwhile are coalesced into one more rebuild. A
//! failed reload keeps the current layer serving and is reported.
//!
//! Every rebuild applies the slot's pending [`crate::layer::Batch`]: a file
//! reload, a replacement, appended and deleted points. Reloads start at once;
//! incremental changes wait up to the rebuild interval ([`schedule`]) so
//! that the changes accepted meanwhile share one rebuild.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use super::{AppState, Changes, Slot, metrics};

/// Wakes the rebuild thread of layer `slot` (started if idle): it applies
/// the pending batch, if any.
pub(crate) fn request(state: &Arc<AppState>, slot: usize) {
    let s = &state.slots[slot];
    s.pending.store(true, Ordering::Release);
    if s.reloading.swap(true, Ordering::AcqRel) {
        return; // the running rebuild will see `pending`
    }
    let state = state.clone();
    std::thread::spawn(move || rebuild_until_idle(&state, slot));
}

/// The generation that will hold a change accepted now: the one after the
/// generation being built, or after the current one.
pub(crate) fn next_generation(s: &Slot, changes: &Changes) -> u64 {
    changes
        .building
        .unwrap_or_else(|| s.generation.load(Ordering::Acquire))
        + 1
}

/// Asks for a reload of layer `slot` from its file and returns the
/// generation that will hold it if it succeeds.
pub(crate) fn request_reload(state: &Arc<AppState>, slot: usize) -> u64 {
    let s = &state.slots[slot];
    let next = {
        let mut changes = lock(&s.changes);
        let next = next_generation(s, &changes);
        match changes.log.as_mut() {
            Some(log) => log.reload(),
            // Still loading: the file is being read anyway.
            None => return next,
        }
        next
    };
    request(state, slot);
    next
}

/// Starts a rebuild `rebuild_interval` from now unless one is already
/// scheduled: changes accepted meanwhile are batched into it.
pub(crate) fn schedule(state: &Arc<AppState>, slot: usize) {
    if state.slots[slot].scheduled.swap(true, Ordering::AcqRel) {
        return;
    }
    let state = state.clone();
    std::thread::spawn(move || {
        std::thread::sleep(state.rebuild_interval);
        state.slots[slot].scheduled.store(false, Ordering::Release);
        request(&state, slot);
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Rebuilds while requests are pending, then releases the slot.
fn rebuild_until_idle(state: &AppState, slot: usize) {
    let s = &state.slots[slot];
    lower_priority(); // the fallback build of `rebuild` runs here
    loop {
        while s.pending.swap(false, Ordering::AcqRel) {
            rebuild(state, slot);
        }
        s.reloading.store(false, Ordering::Release);
        // A request that came after the last check and found `reloading`
        // still set is ours to serve.
        if !s.pending.load(Ordering::Acquire) || s.reloading.swap(true, Ordering::AcqRel) {
            return;
        }
    }
}

/// Takes the pending batch, builds the next layer from it off the lock and
/// publishes it with one atomic swap, or records why it could not.
fn rebuild(state: &AppState, slot: usize) {
    let s = &state.slots[slot];
    let started = Instant::now();
    let (batch, current, generation) = {
        let mut changes = lock(&s.changes);
        let Some(current) = s.current.load_full() else {
            return;
        };
        let Some(batch) = changes.log.as_mut().and_then(|log| log.take()) else {
            return;
        };
        let generation = s.generation.load(Ordering::Acquire) + 1;
        changes.building = Some(generation);
        (batch, current, generation)
    };
    // One thread for the build: queries keep the other cores (the k-d tree
    // build would otherwise take every core of the global rayon pool).
    // Its worker, which runs the build, is the thread whose priority counts.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "pointpipe-rebuild".to_owned())
        .start_handler(|_| lower_priority())
        .build();
    let build = || {
        crate::pace::paced(&state.rebuild_pace, || {
            batch.build(&current, &s.spec, generation)
        })
    };
    let (built, paced) = match pool {
        Ok(pool) => pool.install(build),
        Err(_) => build(),
    };
    log::debug!(
        "rebuild of layer '{}': {} pauses, {:.1} ms paused, longest stretch {:.0} µs (ended at {})",
        s.spec.name,
        paced.pauses,
        paced.paused.as_secs_f64() * 1e3,
        paced.longest_stretch.as_secs_f64() * 1e6,
        paced
            .longest_stretch_end
            .map_or_else(|| "the end".to_owned(), ToString::to_string)
    );
    let mut changes = lock(&s.changes);
    changes.building = None;
    match built {
        Ok(layer) => {
            let seconds = started.elapsed().as_secs_f64();
            metrics::layer_loaded(&layer, seconds);
            log::info!(
                "layer '{}' generation {generation}: {} points in {:.0} ms{}",
                layer.name,
                layer.len(),
                seconds * 1e3,
                if batch.is_reload() {
                    " (file reload)"
                } else {
                    ""
                }
            );
            let layer = Arc::new(layer);
            let old = s.current.swap(Some(layer.clone()));
            s.generation.store(generation, Ordering::Release);
            if let Some(log) = changes.log.as_mut() {
                log.published(&layer, &batch);
            }
            *lock(&s.last_reload_error) = None;
            drop(changes);
            drop(current);
            drop_off_the_query_path(old);
        }
        Err(e) => {
            log::error!(
                "rebuild of layer '{}' failed, still serving generation {}: {e}",
                s.spec.name,
                generation - 1
            );
            metrics::reload_failed(&s.spec.name);
            *lock(&s.last_reload_error) = Some(e.to_string());
            if let Some(log) = changes.log.as_mut()
                && log.failed(batch, &current)
            {
                // The changes a failed reload displaced wait again.
                s.pending.store(true, Ordering::Release);
            }
        }
    }
}

/// Gives the calling (rebuild) thread a lower scheduling priority (nice
/// +10, Linux) so that queries keep the cores while a layer is rebuilt,
/// and a 1 ns timer slack for the short sleeps of its pacing.
/// (`SCHED_IDLE` kept the same p99 and stretched rebuilds under load:
/// docs/performance.md.)
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id; no memory is
    // passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 10) != 0 {
            log::debug!("could not lower the rebuild thread's priority");
        }
        // The paced rebuild's short sleeps end on time (default slack 50 µs).
        if libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) != 0 {
            log::debug!("could not set the rebuild thread's timer slack");
        }
    }
}

/// Frees a replaced snapshot here rather than in the query that happens to
/// hold it last (freeing a large layer costs milliseconds): waits, at most
/// a second, for the in-flight queries that still read it.
fn drop_off_the_query_path(old: Option<Arc<crate::layer::Layer>>) {
    let Some(old) = old else { return };
    let started = Instant::now();
    while Arc::strong_count(&old) > 1 && started.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(old);
}

/// Reloads every layer on SIGHUP, until the process ends.
pub(crate) async fn on_sighup(state: Arc<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            log::warn!("cannot listen for SIGHUP; reload with POST /v1/layers/NAME/reload");
            return;
        };
        while hup.recv().await.is_some() {
            log::info!("SIGHUP: reloading every layer");
            for slot in 0..state.slots.len() {
                request_reload(&state, slot);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// Quiet time after the last file-system event before a layer is reloaded.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Watches the folders of the layer files (`notify`) and reloads a layer
/// once its file has been quiet for [`DEBOUNCE`]. Writers are expected to
/// write a temporary file and rename it over the layer; a file caught half
/// written fails to load, is logged and skipped, and the next event retries.
///
/// Returns the watcher, which must be kept alive.
pub(crate) fn watch(state: Arc<AppState>) -> crate::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let targets: Vec<(PathBuf, usize)> = state
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| (absolute(&s.spec.path), i))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let matching = targets.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        for path in &event.paths {
            for (target, slot) in &matching {
                if absolute(path) == *target {
                    let _ = tx.send(*slot);
                }
            }
        }
    })
    .map_err(|e| crate::Error::io("file watcher", std::io::Error::other(e)))?;
    let mut dirs: Vec<PathBuf> = targets
        .iter()
        .map(|(p, _)| {
            p.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        watcher
            .watch(dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| crate::Error::io(dir, std::io::Error::other(e)))?;
    }
    std::thread::spawn(move || debounce(&state, &rx));
    Ok(watcher)
}

/// Turns bursts of events into one reload per layer.
fn debounce(state: &Arc<AppState>, rx: &std::sync::mpsc::Receiver<usize>) {
    let mut due: Vec<Option<Instant>> = vec![None; state.slots.len()];
    loop {
        let wait = due
            .iter()
            .flatten()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(slot) => due[slot] = Some(Instant::now() + DEBOUNCE),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        for (slot, t) in due.iter_mut().enumerate() {
            if t.is_some_and(|t| t <= Instant::now()) {
                *t = None;
                request_reload(state, slot);
            }
        }
    }
}

/// `path` made absolute against the current directory (not resolving links).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
