//! `pointpipe query LAYER_FILE`: one kNN, radius or stats query on a layer
//! file without a server; prints the same JSON document the service answers.

use std::path::PathBuf;
use std::time::Instant;

use pointpipe::layer::{Layer, LayerKind, LayerSpec, Position, QueryLimits};

use super::Context;

/// Arguments of `pointpipe query`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// Layer file (CSV, GeoJSON, LAS/LAZ, PLY, PCD, KITTI .bin).
    file: PathBuf,
    /// CSV latitude column (default: lat/latitude).
    #[arg(long, value_name = "COL")]
    lat_column: Option<String>,
    /// CSV longitude column (default: lon/lng/long/longitude).
    #[arg(long, value_name = "COL")]
    lon_column: Option<String>,
    /// Category column (default: category, cc or country_code).
    #[arg(long, value_name = "COL")]
    category_column: Option<String>,
    /// Query longitude, degrees (geographic layers).
    #[arg(long)]
    lon: Option<f64>,
    /// Query latitude, degrees (geographic layers).
    #[arg(long)]
    lat: Option<f64>,
    /// Query x (cartesian layers, the layer's unit).
    #[arg(long)]
    x: Option<f64>,
    /// Query y (cartesian layers).
    #[arg(long)]
    y: Option<f64>,
    /// Query z (cartesian layers).
    #[arg(long)]
    z: Option<f64>,
    /// kNN: number of neighbours (default 10 when no --radius is given).
    #[arg(long)]
    k: Option<usize>,
    /// kNN: drop answers farther than this (metres / layer unit).
    #[arg(long, value_name = "R")]
    max_radius: Option<f64>,
    /// kNN: only points whose category equals this.
    #[arg(long)]
    category: Option<String>,
    /// Radius query (metres on geographic layers, the layer's unit otherwise).
    #[arg(long, value_name = "R", conflicts_with = "k")]
    radius: Option<f64>,
    /// Radius query: most points returned.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// With --radius: count per value of this column instead of listing points.
    #[arg(long, value_name = "COL", requires = "radius")]
    by: Option<String>,
}

/// Loads the layer, runs the query, prints the JSON answer on stdout.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<()> {
    let spec = LayerSpec {
        name: "query".into(),
        path: args.file.clone(),
        lat_column: args.lat_column.clone(),
        lon_column: args.lon_column.clone(),
        category_column: args.category_column.clone(),
    };
    let limits = QueryLimits::default();
    let layer = Layer::load(&spec, 1)?;
    let at = match (layer.kind, args.lon, args.lat, args.x, args.y, args.z) {
        (LayerKind::Geographic, Some(lon), Some(lat), None, None, None) => {
            pointpipe::geo::check_lon_lat(lon, lat)?;
            Position::LonLat(lon, lat)
        }
        (LayerKind::Cartesian, None, None, Some(x), Some(y), Some(z)) => Position::Xyz(x, y, z),
        (LayerKind::Geographic, ..) => {
            anyhow::bail!("a geographic layer is queried with --lon and --lat")
        }
        (LayerKind::Cartesian, ..) => {
            anyhow::bail!("a cartesian layer is queried with --x, --y and --z")
        }
    };
    let check_radius = |name: &str, r: f64| -> anyhow::Result<f64> {
        anyhow::ensure!(
            limits.radius_ok(r),
            "--{name} {r}: must be {}",
            limits.radius_rule()
        );
        Ok(r)
    };
    let started = Instant::now();
    let took = |s: Instant| s.elapsed().as_micros() as u64;
    let json = if let Some(radius) = args.radius {
        let radius = check_radius("radius", radius)?;
        if args.by.is_some() {
            let stats = layer.stats(at, radius, args.by.as_deref())?;
            serde_json::to_string(&layer.stats_document(&stats, took(started)))?
        } else {
            anyhow::ensure!(
                limits.limit_ok(args.limit),
                "--limit {}: must be {}",
                args.limit,
                limits.limit_rule()
            );
            let answer = layer.radius(at, radius, args.limit)?;
            serde_json::to_string(&layer.answer_document(&answer, took(started), true))?
        }
    } else {
        let k = args.k.unwrap_or(10);
        anyhow::ensure!(limits.k_ok(k), "--k {k}: must be {}", limits.k_rule());
        let max_radius = args
            .max_radius
            .map(|r| check_radius("max-radius", r))
            .transpose()?;
        let answer = layer.knn(at, k, max_radius, args.category.as_deref())?;
        serde_json::to_string(&layer.answer_document(&answer, took(started), false))?
    };
    println!("{json}");
    Ok(())
}
