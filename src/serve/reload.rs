//! Double-buffered live reload: a layer is reloaded and re-indexed on a
//! background thread while queries keep reading the current snapshot, then
//! published with one atomic pointer swap. One rebuild per layer at a time;
//! requests that arrive meanwhile are coalesced into one more rebuild. A
//! failed reload keeps the current layer serving and is reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{AppState, metrics};
use crate::layer::Layer;

/// Asks for a reload of layer `slot` and returns the generation that will
/// hold the reloaded content if it succeeds (the current one + 1).
pub(crate) fn request(state: &Arc<AppState>, slot: usize) -> u64 {
    let s = &state.slots[slot];
    let next = s.generation.load(Ordering::Acquire) + 1;
    s.pending.store(true, Ordering::Release);
    if s.reloading.swap(true, Ordering::AcqRel) {
        return next; // the running rebuild will see `pending`
    }
    let state = state.clone();
    std::thread::spawn(move || rebuild_until_idle(&state, slot));
    next
}

/// Rebuilds while requests are pending, then releases the slot.
fn rebuild_until_idle(state: &AppState, slot: usize) {
    let s = &state.slots[slot];
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

/// Loads the file again and publishes it, or records why it could not.
fn rebuild(state: &AppState, slot: usize) {
    let s = &state.slots[slot];
    let started = Instant::now();
    let generation = s.generation.load(Ordering::Acquire) + 1;
    match Layer::load(&s.spec, generation) {
        Ok(layer) => {
            let seconds = started.elapsed().as_secs_f64();
            metrics::layer_loaded(&layer, seconds);
            log::info!(
                "layer '{}' generation {generation}: {} points in {:.0} ms",
                layer.name,
                layer.len(),
                seconds * 1e3
            );
            s.current.store(Some(Arc::new(layer)));
            s.generation.store(generation, Ordering::Release);
            *s.last_reload_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
        Err(e) => {
            log::error!(
                "reload of layer '{}' failed, still serving generation {}: {e}",
                s.spec.name,
                generation - 1
            );
            metrics::reload_failed(&s.spec.name);
            *s.last_reload_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        }
    }
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
                request(&state, slot);
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
                request(state, slot);
            }
        }
    }
}

/// `path` made absolute against the current directory (not resolving links).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
