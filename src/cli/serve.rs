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
    /// Reload a layer when its file changes (write a temporary file, then rename it over the layer).
    #[arg(long)]
    watch: bool,
    /// File holding the bearer token of the admin routes (POST /v1/layers/NAME/reload,
    /// PUT /v1/layers/NAME, POST .../points, DELETE .../points/ID).
    /// Without it the admin routes answer 403.
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<std::path::PathBuf>,
    /// After SIGTERM, seconds during which /readyz answers 503 while queries are
    /// still served (for a load balancer to notice), before draining and exiting.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    shutdown_delay: f64,
    /// Longest wait, seconds, between an accepted change (PUT /v1/layers/NAME,
    /// POST .../points, DELETE .../points/ID) and the rebuild that applies it;
    /// changes within it share one rebuild. In (0, 3600].
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    rebuild_interval: f64,
    /// Largest share of one core a background rebuild takes, in (0, 1]: it pauses
    /// every 250 µs of work so queries never wait long behind it. 1: full speed.
    #[arg(long, default_value_t = 0.5, value_name = "SHARE")]
    rebuild_cpu_share: f64,
}

fn parse_layer(s: &str) -> Result<LayerSpec, String> {
    s.parse::<LayerSpec>().map_err(|e| e.to_string())
}

/// Runs the service until Ctrl-C / SIGTERM.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<()> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        anyhow::bail!("--timeout {}: must be in (0, 86400] seconds", args.timeout);
    }
    if !(args.shutdown_delay.is_finite() && (0.0..=3600.0).contains(&args.shutdown_delay)) {
        anyhow::bail!(
            "--shutdown-delay {}: must be in [0, 3600] seconds",
            args.shutdown_delay
        );
    }
    if !(args.rebuild_interval.is_finite()
        && args.rebuild_interval > 0.0
        && args.rebuild_interval <= 3600.0)
    {
        anyhow::bail!(
            "--rebuild-interval {}: must be in (0, 3600] seconds",
            args.rebuild_interval
        );
    }
    if !(args.rebuild_cpu_share > 0.0 && args.rebuild_cpu_share <= 1.0) {
        anyhow::bail!(
            "--rebuild-cpu-share {}: must be in (0, 1]",
            args.rebuild_cpu_share
        );
    }
    let admin_token = match &args.admin_token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let token = token.trim().to_string();
            anyhow::ensure!(
                !token.is_empty(),
                "{}: the admin token file is empty",
                path.display()
            );
            Some(token)
        }
        None => None,
    };
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
        watch: args.watch,
        admin_token,
        shutdown_delay: Duration::from_secs_f64(args.shutdown_delay),
        rebuild_interval: Duration::from_secs_f64(args.rebuild_interval),
        rebuild_pace: pointpipe::pace::Pace {
            cpu_share: args.rebuild_cpu_share,
            ..Default::default()
        },
    };
    serve::run(config, |addr| {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    })?;
    Ok(())
}
