//! `pointpipe serve`: the layers of [`crate::layer`] behind an HTTP API
//! (axum on tokio). Handlers only parse, call the layer and format.
//!
//! # Endpoints
//! - `GET /v1/layers`: per layer its name, kind, point count, bbox, CRS,
//!   generation, load and build time, tree height and log2 n.
//! - `GET /v1/layers/{name}/knn?lon=..&lat=..&k=10[&max_radius_m=..][&category=..]`
//!   (cartesian: `x`, `y`, `z`, `max_radius`); `POST /v1/layers/{name}/knn`
//!   with `{"point": {"type": "Point", "coordinates": [lon, lat]}, "k": 10,
//!   "max_radius_meters": 5000, "category_filter": "US"}`.
//! - `GET /v1/layers/{name}/radius?lon=..&lat=..&radius_m=..[&limit=1000]`.
//! - `GET /v1/layers/{name}/stats?lon=..&lat=..&radius_m=..[&by=COL]`.
//! - `POST /v1/layers/{name}/batch`: a JSON array of kNN / radius queries,
//!   answered in parallel, in order.
//! - `GET /healthz` (the process is up), `GET /readyz` (200 once every layer
//!   is loaded and indexed, 503 before and during the shutdown delay).
//! - `POST /v1/layers/{name}/reload` (bearer token): reload in the
//!   background; also on SIGHUP and, with [`ServeConfig::watch`], when the
//!   file changes. The new layer replaces the old with one atomic swap; a
//!   failed reload keeps the old one and is reported (`last_reload_error`).
//!   Rebuilds run on one thread, paced by [`ServeConfig::rebuild_pace`]
//!   ([`crate::pace`]: short stretches of work, then sleeps) so that
//!   queries never wait long behind them.
//! - `GET /metrics`: Prometheus text (names in the `metrics` module docs).
//! - Incremental layers (bearer token, geographic layers only; see below):
//!   `PUT /v1/layers/{name}`, `POST /v1/layers/{name}/points`,
//!   `DELETE /v1/layers/{name}/points/{id}`.
//!
//! # Incremental layers
//! The contract (the logic is [`crate::layer::ChangeLog`]):
//! - **Bodies.** GeoJSON (`Content-Type: application/geo+json` or
//!   `application/json`): a FeatureCollection of Points for `PUT`, a Feature
//!   or a FeatureCollection for `POST .../points`; or CSV (`text/csv`) with a
//!   header row, latitude/longitude columns found as in a layer file. `PUT`
//!   sets the layer's columns anew (as loading a file would); appended
//!   points must use the layer's columns (a missing field is null; an
//!   unknown one, or a value of the wrong kind, is a 400).
//! - **Ids.** A point's `id` is stable: the 0-based row/feature index for a
//!   layer loaded from its file or replaced by `PUT`; appended points get the
//!   next ids (listed in the 202 as `ids`); ids of deleted points are not
//!   reused. Ties in distance are still broken by id.
//! - **When.** Each change is accepted with `202 {"layer", "generation",
//!   "next_generation", ...}`: `generation` is the one served now,
//!   `next_generation` the one that will hold the change. Changes are
//!   batched; the batch is applied by one background rebuild started at most
//!   `--rebuild-interval` (default 1 s) after the first change, published
//!   with the same atomic swap as a reload. Until then answers come from the
//!   old generation, except that a **deleted point is hidden from every
//!   answer as soon as its 202 is sent** (tombstones; kNN gathers more
//!   candidates and stays exact, returning `k` points). If a file reload
//!   ahead of the batch fails, the batch lands one generation earlier than
//!   announced.
//! - **Persistence.** Changes live in memory only. A file reload (`POST
//!   .../reload`, SIGHUP, `--watch`) replaces the layer with its file,
//!   discarding earlier changes; while a reload is pending, appends and
//!   deletes answer 409 (its ids are unknown until the file is read; retry
//!   once it is published). A failed reload keeps the changes it displaced.
//! - **Errors.** 401/403 as for reload; 404 for an unknown layer or a point
//!   id that is not alive; 400 problems for bad bodies, coordinates or ids;
//!   413 over `--max-body-bytes`; 415 for another body type; 409 for a
//!   cartesian layer (point cloud files change only by reload) and during a
//!   pending reload.
//!
//! Rebuilds run on one thread (`pointpipe-rebuild`) at a lower priority
//! (nice +10 on Linux), so queries keep the cores; the replaced snapshot is
//! freed off the query path.
//!
//! Geographic answers are GeoJSON FeatureCollections (`application/geo+json`);
//! see [`crate::layer::Layer::answer_document`]. Every error is an RFC 9457
//! `application/problem+json` body ([`Problem`]): 400 for a parameter
//! outside its rule (naming the field and the rule), 404 for an unknown
//! layer or route, 405 for a wrong method, 413 for a body over the limit,
//! 415 for a body that is not JSON, 503 while loading or past the deadline,
//! 409 for a change that cannot be accepted (see above).

mod metrics;
mod params;
mod problem;
mod reload;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;

pub use problem::Problem;

use crate::error::{Error, Result};
use crate::layer::{ChangeLog, Layer, LayerSpec, QueryLimits};

/// Everything `pointpipe serve` needs, validated by [`ServeConfig::validate`].
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on. Default `127.0.0.1:8080`; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The layers to load (at least one, distinct names).
    pub layers: Vec<LayerSpec>,
    /// Query limits (k, radius, limit, batch size).
    pub limits: QueryLimits,
    /// Deadline of each request; past it the answer is a 503. Default 2 s.
    pub timeout: Duration,
    /// Largest request body, bytes (413 beyond). Default 4 MiB.
    pub max_body_bytes: usize,
    /// Async worker threads (default: the number of cores).
    pub workers: Option<usize>,
    /// Reload a layer when its file changes (debounced file-system events).
    pub watch: bool,
    /// Bearer token of the admin routes (`POST /v1/layers/{name}/reload` and
    /// the incremental routes); `None` disables them (403).
    pub admin_token: Option<String>,
    /// After SIGTERM / Ctrl-C, how long `/readyz` answers 503 while queries
    /// are still served (so a load balancer stops sending), before in-flight
    /// requests are drained and the process exits. Default 0.
    pub shutdown_delay: Duration,
    /// Longest wait between an accepted change (`PUT`, `POST .../points`,
    /// `DELETE .../points/{id}`) and the start of the rebuild that applies
    /// it; changes within it are batched. Default 1 s; in (0, 1 h].
    pub rebuild_interval: Duration,
    /// How a background rebuild shares the cores with queries: at most
    /// `cpu_share` of one core, in pauses every `slice` of work. Default
    /// half a core in 250 µs slices; `cpu_share` 1 rebuilds at full speed.
    pub rebuild_pace: crate::pace::Pace,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            layers: Vec::new(),
            limits: QueryLimits::default(),
            timeout: Duration::from_secs(2),
            max_body_bytes: 4 << 20,
            workers: None,
            watch: false,
            admin_token: None,
            shutdown_delay: Duration::ZERO,
            rebuild_interval: Duration::from_secs(1),
            rebuild_pace: crate::pace::Pace::default(),
        }
    }
}

impl ServeConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for no layer, a repeated layer name, a
    /// zero timeout, body limit or worker count, a rebuild interval outside
    /// (0, 1 h], or invalid limits.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::invalid(
                "layer",
                "none",
                "give at least one --layer NAME=PATH",
            ));
        }
        for (i, spec) in self.layers.iter().enumerate() {
            if self.layers[..i].iter().any(|s| s.name == spec.name) {
                return Err(Error::invalid(
                    "layer",
                    &spec.name,
                    "layer names must be distinct",
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid("timeout", "0", "must be positive"));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::invalid("max_body_bytes", 0, "must be positive"));
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(Error::invalid("admin_token", "''", "must not be empty"));
        }
        if self.rebuild_interval.is_zero() || self.rebuild_interval > Duration::from_secs(3600) {
            return Err(Error::invalid(
                "rebuild_interval",
                format!("{:?}", self.rebuild_interval),
                "must be in (0, 3600] seconds",
            ));
        }
        self.rebuild_pace.validate()?;
        if self.workers == Some(0) {
            return Err(Error::invalid("workers", 0, "must be at least 1"));
        }
        self.limits.validate()
    }
}

/// One named layer: the snapshot queries read, swapped atomically, and the
/// state of its background rebuilds.
pub(crate) struct Slot {
    pub(crate) spec: LayerSpec,
    pub(crate) current: ArcSwapOption<Layer>,
    /// Generation of `current` (0 before the first load).
    pub(crate) generation: AtomicU64,
    /// A rebuild thread is running.
    pub(crate) reloading: AtomicBool,
    /// A reload was asked for since the running rebuild started.
    pub(crate) pending: AtomicBool,
    /// Why the last reload failed, until one succeeds.
    pub(crate) last_reload_error: Mutex<Option<String>>,
    /// Accepted changes and the generation being built; the snapshot swap
    /// happens under this lock too.
    pub(crate) changes: Mutex<Changes>,
    /// A delayed rebuild (for accepted changes) is scheduled.
    pub(crate) scheduled: AtomicBool,
    /// The layer's query metrics.
    pub(crate) metrics: Arc<metrics::QueryHandles>,
}

/// The change log of a slot (none before the first load) and the
/// generation a running rebuild will publish.
#[derive(Default)]
pub(crate) struct Changes {
    pub(crate) log: Option<ChangeLog>,
    pub(crate) building: Option<u64>,
}

/// What every handler shares (behind an `Arc`).
pub(crate) struct AppState {
    pub(crate) slots: Vec<Slot>,
    pub(crate) limits: QueryLimits,
    pub(crate) ready: AtomicBool,
    pub(crate) admin_token: Option<String>,
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Per-request metric handles (registered after the recorder).
    pub(crate) metrics_handles: metrics::Handles,
    pub(crate) rebuild_interval: Duration,
    pub(crate) rebuild_pace: crate::pace::Pace,
}

impl AppState {
    /// The index of layer `name`'s slot.
    pub(crate) fn slot(&self, name: &str) -> std::result::Result<usize, Problem> {
        self.slots
            .iter()
            .position(|s| s.spec.name == name)
            .ok_or_else(|| Problem::unknown_layer(name))
    }

    /// The current snapshot of layer `name`.
    pub(crate) fn layer(&self, name: &str) -> std::result::Result<Arc<Layer>, Problem> {
        let slot = &self.slots[self.slot(name)?];
        slot.current.load_full().ok_or_else(|| {
            Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("layer '{name}' is still loading"),
            )
        })
    }
}

/// Runs the service until Ctrl-C or SIGTERM: binds `config.addr`, calls
/// `on_bound` with the bound address (the port when 0 was asked), loads and
/// indexes the layers in the background (`/readyz` says when), then serves;
/// in-flight requests finish before it returns.
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid config; [`Error::Io`] when the
/// address cannot be bound; the loading error of the first layer that fails
/// (the service stops: a layer that cannot be read is a startup error).
pub fn run(config: ServeConfig, on_bound: impl FnOnce(SocketAddr) + Send) -> Result<()> {
    config.validate()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = config.workers {
        runtime.worker_threads(n);
    }
    let runtime = runtime.build().map_err(|e| Error::io("tokio runtime", e))?;
    runtime.block_on(serve(config, on_bound))
}

async fn serve(config: ServeConfig, on_bound: impl FnOnce(SocketAddr) + Send) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::io(config.addr.to_string(), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io(config.addr.to_string(), e))?;
    let prometheus = metrics::install()
        .map_err(|e| log::warn!("no /metrics: {e}"))
        .ok();
    let state = Arc::new(AppState {
        slots: config
            .layers
            .iter()
            .map(|spec| Slot {
                spec: spec.clone(),
                current: ArcSwapOption::empty(),
                generation: AtomicU64::new(0),
                reloading: AtomicBool::new(false),
                pending: AtomicBool::new(false),
                last_reload_error: Mutex::new(None),
                changes: Mutex::new(Changes::default()),
                scheduled: AtomicBool::new(false),
                metrics: Arc::new(metrics::QueryHandles::new(&spec.name)),
            })
            .collect(),
        limits: config.limits,
        ready: AtomicBool::new(false),
        admin_token: config.admin_token.clone(),
        metrics: prometheus,
        metrics_handles: metrics::Handles::new(),
        rebuild_interval: config.rebuild_interval,
        rebuild_pace: config.rebuild_pace,
    });
    if let Some(handle) = state.metrics.clone() {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        });
    }
    let app = routes::router(state.clone(), config.timeout, config.max_body_bytes);
    on_bound(bound);
    log::info!("listening on http://{bound}");

    let (failed_tx, mut failed_rx) = tokio::sync::oneshot::channel::<Error>();
    let loader = state.clone();
    tokio::task::spawn_blocking(move || {
        for slot in &loader.slots {
            let started = std::time::Instant::now();
            match Layer::load(&slot.spec, 1) {
                Ok(layer) => {
                    metrics::layer_loaded(&layer, started.elapsed().as_secs_f64());
                    log::info!(
                        "layer '{}': {} points from {} (load {:.0} ms, index {:.0} ms)",
                        layer.name,
                        layer.len(),
                        layer.source.display(),
                        layer.load_ms,
                        layer.build_ms
                    );
                    let mut changes = slot.changes.lock().unwrap_or_else(|e| e.into_inner());
                    changes.log = Some(ChangeLog::new(&layer));
                    slot.current.store(Some(Arc::new(layer)));
                    slot.generation.store(1, Ordering::Release);
                }
                Err(e) => {
                    let _ = failed_tx.send(e);
                    return;
                }
            }
        }
        loader.ready.store(true, Ordering::Release);
    });

    tokio::spawn(reload::on_sighup(state.clone()));
    let _watcher = if config.watch {
        Some(reload::watch(state.clone())?)
    } else {
        None
    };

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(async move { server.await });
    let outcome = tokio::select! {
        failed = &mut failed_rx => match failed {
            Ok(e) => Err(e),
            Err(_) => { wait_for_signal().await; Ok(()) }
        },
        () = wait_for_signal() => Ok(()),
    };
    state.ready.store(false, Ordering::Release);
    if outcome.is_ok() && !config.shutdown_delay.is_zero() {
        log::info!("not ready; draining in {:?}", config.shutdown_delay);
        tokio::time::sleep(config.shutdown_delay).await;
    }
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::io(bound.to_string(), e)),
        Err(e) => return Err(Error::io(bound.to_string(), std::io::Error::other(e))),
    }
    outcome
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
