//! `pointpipe serve`: the proximity-search service (see `pointpipe::serve`).

use std::net::SocketAddr;
use std::time::Duration;

use pointpipe::layer::{LayerSpec, QueryLimits};
use pointpipe::serve::{self, ServeConfig};

use super::Context;

/// Arguments of `pointpipe serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A layer: NAME=PATH[,lat=COL][,lon=COL][,category=COL]. CSV, GeoJSON and
    /// EPSG:4326 LAS/LAZ are geographic (WGS84 lon/lat); other point clouds are
    /// cartesian. Repeat for several layers.
    #[arg(long = "layer", value_name = "NAME=PATH", required = true, value_parser = parse_layer)]
    layers: Vec<LayerSpec>,
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Deadline of each request, seconds (503 past it).
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    timeout: f64,
    /// Largest k of a kNN query.
    #[arg(long, default_value_t = 100)]
    max_k: usize,
    /// Largest radius: metres on geographic layers, the layer's unit on cartesian ones.
    #[arg(long, default_value_t = 50_000.0)]
    max_radius: f64,
    /// Largest request body, bytes (413 beyond).
    #[arg(long, default_value_t = 4 << 20)]
    max_body_bytes: usize,
    /// Async worker threads. Default: the number of cores.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

fn parse_layer(s: &str) -> Result<LayerSpec, String> {
    s.parse::<LayerSpec>().map_err(|e| e.to_string())
}

/// Runs the service until Ctrl-C / SIGTERM.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<()> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        anyhow::bail!("--timeout {}: must be in (0, 86400] seconds", args.timeout);
    }
    let config = ServeConfig {
        addr: args.addr,
        layers: args.layers,
        limits: QueryLimits {
            max_k: args.max_k,
            max_radius: args.max_radius,
            ..Default::default()
        },
        timeout: Duration::from_secs_f64(args.timeout),
        max_body_bytes: args.max_body_bytes,
        workers: args.workers,
    };
    serve::run(config, |addr| {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    })?;
    Ok(())
}
