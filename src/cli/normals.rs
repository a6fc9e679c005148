//! `pointpipe normals IN OUT [--voxel-size V] (--radius R [--max-nn N] | --knn K)
//! [--viewpoint X,Y,Z] [--json]`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use nalgebra::Point3;
use pointpipe::io;
use pointpipe::normals::{NeighborSearch, NormalConfig};
use pointpipe::prepare::IndexedCloud;
use pointpipe::voxel::{VoxelConfig, voxel_downsample};

use super::{Context, ms_since};

/// Surface normals and curvature (PCA of each point's neighbourhood),
/// written as `nx ny nz curvature` (PLY/PCD) or, for LAS/LAZ, as the
/// extra-bytes fields `NormalX NormalY NormalZ Curvature` that `batch` writes.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("search").required(true).args(["radius", "knn"])))]
pub struct Args {
    /// Input cloud (LAS, LAZ, PLY, PCD or KITTI .bin).
    input: PathBuf,
    /// Output cloud; PLY, PCD and LAS/LAZ (extra-bytes fields NormalX, NormalY,
    /// NormalZ, Curvature) keep normals and curvature; KITTI .bin cannot.
    output: PathBuf,
    /// Voxel-downsample (centroid, metres) before estimating normals.
    #[arg(long, value_name = "METRES", allow_hyphen_values = true)]
    voxel_size: Option<f64>,
    /// Radius search in metres (all neighbours within R, or the --max-nn
    /// nearest of them).
    #[arg(long, value_name = "METRES", allow_hyphen_values = true)]
    radius: Option<f64>,
    /// Cap on the neighbourhood size with --radius (hybrid search).
    #[arg(long, value_name = "N", requires = "radius", conflicts_with = "knn")]
    max_nn: Option<usize>,
    /// kNN search with K neighbours (the point included; at most the number
    /// of points).
    #[arg(long, value_name = "K")]
    knn: Option<usize>,
    /// Fewest neighbours for a normal (>= 3).
    #[arg(long, value_name = "N", default_value_t = 3)]
    min_neighbors: usize,
    /// Point the normals face, metres, as X,Y,Z. Default: for LAS/LAZ input
    /// (airborne, georeferenced tiles) straight up, as `batch` orients them
    /// (a viewpoint 1e12 above the CRS origin); for other formats the origin
    /// (a LiDAR frame's sensor).
    #[arg(long, value_name = "X,Y,Z", value_parser = parse_point, allow_hyphen_values = true)]
    viewpoint: Option<Point3<f64>>,
    /// Print a JSON report on stdout instead of a text summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pcd: super::PcdArgs,
}

/// Parses `X,Y,Z` into a point.
fn parse_point(s: &str) -> Result<Point3<f64>, String> {
    let values: Vec<f64> = s
        .split(',')
        .map(|v| v.trim().parse::<f64>().map_err(|e| format!("'{v}': {e}")))
        .collect::<Result<_, _>>()?;
    match values[..] {
        [x, y, z] => Ok(Point3::new(x, y, z)),
        _ => Err(format!("expected X,Y,Z (three numbers), got '{s}'")),
    }
}

/// What `normals` reports.
#[derive(Debug, serde::Serialize)]
struct Report {
    points_in: usize,
    points: usize,
    with_normal: usize,
    without_normal: usize,
    read_ms: f64,
    voxel_ms: Option<f64>,
    tree_ms: f64,
    normals_ms: f64,
    write_ms: f64,
}

pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let search = match (args.radius, args.knn) {
        (Some(radius), None) => NeighborSearch::Radius {
            radius,
            max_nn: args.max_nn,
        },
        (None, Some(k)) => NeighborSearch::Knn { k },
        _ => anyhow::bail!("give exactly one of --radius and --knn"),
    };
    let aerial = matches!(
        io::Format::from_path(&args.input),
        Ok(io::Format::Las | io::Format::Laz)
    );
    let config = NormalConfig {
        search,
        min_neighbors: args.min_neighbors,
        viewpoint: args
            .viewpoint
            .or_else(|| aerial.then(pointpipe::normals::aerial_viewpoint)),
    };
    config.validate()?;
    let voxel = args.voxel_size.map(VoxelConfig::new);
    if let Some(v) = &voxel {
        v.validate()?;
    }
    io::ensure_not_input(&args.output, &[&args.input])?;

    let start = Instant::now();
    let mut cloud = io::read(&args.input)?;
    let read_ms = ms_since(start);
    let points_in = cloud.len();

    let mut voxel_ms = None;
    if let Some(v) = &voxel {
        let start = Instant::now();
        cloud = voxel_downsample(&cloud, v)?;
        voxel_ms = Some(ms_since(start));
    }

    if let NeighborSearch::Knn { k } = search
        && k > cloud.len()
    {
        anyhow::bail!(
            "--knn {k} exceeds the {} points of the cloud: a normal is a local fit, \
             choose k well below the point count (10-50 is usual)",
            cloud.len()
        );
    }

    let start = Instant::now();
    let mut indexed = IndexedCloud::build(cloud)?;
    let tree_ms = ms_since(start);

    let start = Instant::now();
    let normals = indexed.estimate_normals(&config)?;
    let normals_ms = ms_since(start);
    let (cloud, _) = indexed.into_parts();

    if normals.with_normal == 0 && !cloud.is_empty() {
        anyhow::bail!(
            "no point got a normal: no neighbourhood held {} points ({}); \
             increase the search (e.g. a larger --radius; the cloud spans {})",
            config.min_neighbors,
            describe(&search),
            extent(&cloud),
        );
    }
    // (the library warns when most points get no normal)

    let start = Instant::now();
    io::write_with_pcd_options(&args.output, &cloud, &args.pcd.options())
        .with_context(|| format!("writing {}", args.output.display()))?;
    let write_ms = ms_since(start);

    let report = Report {
        points_in,
        points: cloud.len(),
        with_normal: normals.with_normal,
        without_normal: normals.without_normal,
        read_ms,
        voxel_ms,
        tree_ms,
        normals_ms,
        write_ms,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.quiet {
        println!(
            "{} points: {} with a normal, {} without; tree {:.2} ms, normals {:.2} ms",
            report.points, report.with_normal, report.without_normal, tree_ms, normals_ms
        );
    }
    Ok(())
}

/// The search in the words of the command line.
fn describe(search: &NeighborSearch) -> String {
    match search {
        NeighborSearch::Radius {
            radius,
            max_nn: Some(n),
        } => format!("--radius {radius} --max-nn {n}"),
        NeighborSearch::Radius { radius, .. } => format!("--radius {radius}"),
        NeighborSearch::Knn { k } => format!("--knn {k}"),
    }
}

/// The cloud's bounding-box size, e.g. `0.9 x 0.9 x 0`.
fn extent(cloud: &pointpipe::PointCloud) -> String {
    match cloud.bounds() {
        Some((min, max)) => {
            let d = max - min;
            format!("{:.3} x {:.3} x {:.3}", d.x, d.y, d.z)
        }
        None => "nothing".into(),
    }
}
