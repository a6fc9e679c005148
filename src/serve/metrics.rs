//! Prometheus metrics of the service (`metrics` facade, rendered by
//! `metrics-exporter-prometheus` at `GET /metrics`).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `pointpipe_http_requests_total` | counter | `route` (`knn`, `radius`, `stats`, `batch`, `reload`, `layer` (PUT), `points`, `layers`, `healthz`, `readyz`, `metrics`, `other`), `status` |
//! | `pointpipe_query_duration_seconds` | histogram | `layer`, `route` |
//! | `pointpipe_nodes_visited_per_query` | histogram | `layer` |
//! | `pointpipe_points` | gauge | `layer` |
//! | `pointpipe_tree_height` | gauge | `layer` |
//! | `pointpipe_tree_height_over_log2_n` | gauge | `layer` |
//! | `pointpipe_generation` | gauge | `layer` |
//! | `pointpipe_last_rebuild_duration_seconds` | gauge | `layer` |
//! | `pointpipe_rebuilds_total` | counter | `layer` |
//! | `pointpipe_reload_failures_total` | counter | `layer` |

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::layer::Layer;

/// Installs the process-wide recorder and returns the handle that renders it.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] when a recorder is already installed.
pub(crate) fn install() -> crate::Result<PrometheusHandle> {
    let seconds = [
        5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1, 1.0,
    ];
    let nodes = [
        8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0, 65536.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("pointpipe_query_duration_seconds".into()),
            &seconds,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("pointpipe_nodes_visited_per_query".into()),
                &nodes,
            )
        })
        .and_then(|b| b.install_recorder())
        .map_err(|e| crate::Error::invalid("metrics", "prometheus", e.to_string()))
}

/// The `route` labels of `pointpipe_http_requests_total`.
pub(crate) const ROUTES: [&str; 12] = [
    "knn", "radius", "stats", "batch", "reload", "layer", "points", "layers", "healthz", "readyz",
    "metrics", "other",
];

/// Handles of the per-request metrics, registered once.
///
/// Why: a lookup by labels allocates and hashes on every request.
pub(crate) struct Handles {
    /// `pointpipe_http_requests_total{status="200"}`, one per [`ROUTES`].
    ok: Vec<Counter>,
}

impl Handles {
    /// Registers the handles in the installed recorder (no-ops without one).
    pub(crate) fn new() -> Handles {
        Handles {
            ok: ROUTES
                .iter()
                .map(|&route| metrics::counter!("pointpipe_http_requests_total", "route" => route, "status" => "200"))
                .collect(),
        }
    }

    /// Records one HTTP answer.
    pub(crate) fn request(&self, route: &'static str, status: u16) {
        match ROUTES.iter().position(|&r| r == route) {
            Some(i) if status == 200 => self.ok[i].increment(1),
            _ => metrics::counter!("pointpipe_http_requests_total", "route" => route, "status" => status.to_string()).increment(1),
        }
    }
}

/// Handles of one layer's query metrics, registered once (see [`Handles`]).
pub(crate) struct QueryHandles {
    knn_seconds: Histogram,
    radius_seconds: Histogram,
    nodes: Histogram,
}

impl QueryHandles {
    /// Registers the handles of layer `layer` (no-ops without a recorder).
    pub(crate) fn new(layer: &str) -> QueryHandles {
        let seconds = |route: &'static str| metrics::histogram!("pointpipe_query_duration_seconds", "layer" => layer.to_string(), "route" => route);
        QueryHandles {
            knn_seconds: seconds("knn"),
            radius_seconds: seconds("radius"),
            nodes: metrics::histogram!("pointpipe_nodes_visited_per_query", "layer" => layer.to_string()),
        }
    }

    /// Records one query's duration and work; `route` is `knn` or `radius`.
    pub(crate) fn query(&self, route: &'static str, seconds: f64, nodes_visited: u64) {
        match route {
            "knn" => self.knn_seconds.record(seconds),
            _ => self.radius_seconds.record(seconds),
        }
        self.nodes.record(nodes_visited as f64);
    }
}

/// Records a (re)loaded layer's gauges and one more rebuild.
pub(crate) fn layer_loaded(layer: &Layer, seconds: f64) {
    let name = layer.name.clone();
    let n = layer.len();
    let height = layer.tree().tree_height() as f64;
    metrics::gauge!("pointpipe_points", "layer" => name.clone()).set(n as f64);
    metrics::gauge!("pointpipe_tree_height", "layer" => name.clone()).set(height);
    let ratio = if n > 1 {
        height / (n as f64).log2()
    } else {
        0.0
    };
    metrics::gauge!("pointpipe_tree_height_over_log2_n", "layer" => name.clone()).set(ratio);
    metrics::gauge!("pointpipe_generation", "layer" => name.clone()).set(layer.generation as f64);
    metrics::gauge!("pointpipe_last_rebuild_duration_seconds", "layer" => name.clone())
        .set(seconds);
    metrics::counter!("pointpipe_rebuilds_total", "layer" => name.clone()).increment(1);
    metrics::counter!("pointpipe_reload_failures_total", "layer" => name).increment(0);
}

/// Records a failed rebuild (a reload whose file could not be read).
pub(crate) fn reload_failed(layer: &str) {
    metrics::counter!("pointpipe_reload_failures_total", "layer" => layer.to_string()).increment(1);
}
