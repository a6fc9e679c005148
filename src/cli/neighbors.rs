//! `pointpipe neighbors FILE`: builds the k-d tree on a (optionally
//! voxel-downsampled) cloud, queries every point of it (kNN, radius counts,
//! optionally hybrid) and prints timings and the index's health metrics.

use std::path::PathBuf;
use std::time::Instant;

use pointpipe::kdtree::{KdTree, KdTreeConfig, Queries, Search};
use pointpipe::voxel::{VoxelConfig, voxel_downsample};
use serde::Serialize;

use super::{Context, ms_since};

/// Arguments of `pointpipe neighbors`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Point-cloud file (LAS, LAZ, PLY, PCD or KITTI .bin).
    file: PathBuf,
    /// Voxel-downsample first (centroid per voxel) with this voxel size, metres.
    #[arg(long, value_name = "V", allow_hyphen_values = true)]
    voxel_size: Option<f64>,
    /// Number of neighbours of the kNN query (the point itself included), >= 1.
    #[arg(long, default_value_t = 10, allow_hyphen_values = true)]
    k: usize,
    /// Radius of the radius search, metres (finite, > 0).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    radius: f64,
    /// Also run a hybrid search: up to N (>= 1) nearest within --radius.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    max_nn: Option<usize>,
    /// Maximum points per leaf. Default: the library default.
    #[arg(long, value_name = "L", allow_hyphen_values = true)]
    leaf_size: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What `neighbors` measures.
#[derive(Debug, Serialize)]
struct Report {
    points: usize,
    threads: usize,
    leaf_size: usize,
    k: usize,
    radius_m: f64,
    build_ms: f64,
    knn_ms: f64,
    mean_kth_distance_m: f64,
    radius_ms: f64,
    mean_radius_neighbors: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_nn: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hybrid_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_hybrid_neighbors: Option<f64>,
    tree_height: usize,
    log2_points: f64,
    nodes_visited_per_query: f64,
    leaves_scanned_per_query: f64,
    distance_evaluations_per_query: f64,
}

/// Refuses parameters that would measure nothing: `k = 0`, a radius that is
/// not finite and > 0, `max_nn = 0` (checked before reading the file).
fn validate(args: &Args) -> anyhow::Result<()> {
    if args.k == 0 {
        anyhow::bail!("--k 0: the kNN query needs k >= 1 (the point itself counts)");
    }
    if !(args.radius.is_finite() && args.radius > 0.0) {
        anyhow::bail!(
            "--radius {}: the radius must be finite and > 0 (metres)",
            args.radius
        );
    }
    if args.max_nn == Some(0) {
        anyhow::bail!("--max-nn 0: the hybrid search needs max_nn >= 1");
    }
    Ok(())
}

pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<()> {
    validate(&args)?;
    if let Some(v) = args.voxel_size {
        VoxelConfig::new(v).validate()?;
    }
    let mut cloud = pointpipe::io::read(&args.file)?;
    if let Some(voxel_size) = args.voxel_size {
        let config = VoxelConfig {
            voxel_size,
            ..Default::default()
        };
        cloud = voxel_downsample(&cloud, &config)?;
    }
    let points = cloud.points;
    let config = KdTreeConfig {
        leaf_size: args.leaf_size.unwrap_or(KdTreeConfig::default().leaf_size),
        ..Default::default()
    };

    let start = Instant::now();
    let tree = KdTree::build_with(&points, &config)?;
    let build_ms = ms_since(start);

    let start = Instant::now();
    let knn = tree.search_batch(Queries::All, Search::Knn { k: args.k });
    let knn_ms = ms_since(start);
    let kth: Vec<f64> = (0..knn.len())
        .filter_map(|i| knn.get(i).last().map(|n| n.distance_sq.sqrt()))
        .collect();
    drop(knn);

    let start = Instant::now();
    let counts = tree.count_batch(Queries::All, args.radius);
    let radius_ms = ms_since(start);

    let (hybrid_ms, mean_hybrid_neighbors) = match args.max_nn {
        Some(max_nn) => {
            let start = Instant::now();
            let hybrid = tree.search_batch(
                Queries::All,
                Search::Hybrid {
                    radius: args.radius,
                    max_nn,
                },
            );
            (
                Some(ms_since(start)),
                Some(mean(hybrid.neighbors.len() as f64, hybrid.len())),
            )
        }
        None => (None, None),
    };

    let stats = tree.query_stats(Queries::All, Search::Knn { k: args.k });
    let report = Report {
        points: points.len(),
        threads: rayon::current_num_threads(),
        leaf_size: tree.leaf_size(),
        k: args.k,
        radius_m: args.radius,
        build_ms,
        knn_ms,
        mean_kth_distance_m: mean(kth.iter().sum(), kth.len()),
        radius_ms,
        mean_radius_neighbors: mean(counts.iter().sum::<usize>() as f64, counts.len()),
        max_nn: args.max_nn,
        hybrid_ms,
        mean_hybrid_neighbors,
        tree_height: tree.tree_height(),
        log2_points: (points.len().max(1) as f64).log2(),
        nodes_visited_per_query: stats.nodes_visited_per_query(),
        leaves_scanned_per_query: stats.leaves_scanned_per_query(),
        distance_evaluations_per_query: stats.distance_evaluations_per_query(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn mean(total: f64, count: usize) -> f64 {
    if count == 0 {
        0.0
    } else {
        total / count as f64
    }
}

fn print_text(r: &Report) {
    println!("points           {}", r.points);
    println!("threads          {}", r.threads);
    println!(
        "leaf_size        {}   tree height {} (log2 n = {:.1})",
        r.leaf_size, r.tree_height, r.log2_points
    );
    println!("build            {:.2} ms", r.build_ms);
    println!(
        "kNN k={:<3}        {:.2} ms   mean k-th distance {:.4} m",
        r.k, r.knn_ms, r.mean_kth_distance_m
    );
    println!(
        "radius {:<6} m   {:.2} ms   mean neighbours {:.1}",
        r.radius_m, r.radius_ms, r.mean_radius_neighbors
    );
    if let (Some(max_nn), Some(ms), Some(m)) = (r.max_nn, r.hybrid_ms, r.mean_hybrid_neighbors) {
        println!("hybrid max_nn={max_nn:<4} {ms:.2} ms   mean neighbours {m:.1}");
    }
    println!(
        "per kNN query    {:.1} nodes visited, {:.1} leaves scanned, {:.1} distance evaluations",
        r.nodes_visited_per_query, r.leaves_scanned_per_query, r.distance_evaluations_per_query
    );
}
