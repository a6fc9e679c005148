//! Test-data generator for sharded batches: cuts a LAS/LAZ file into an
//! uneven grid of tiles (so that the shard plan has something to balance),
//! each point moved by uniform noise first (X/Y ±0.5, Z ±0.1, CRS units,
//! fixed seed), so that tile edges fall between jittered points and halos
//! cross tile (and shard) boundaries. Header, scale, offset and CRS are kept.
//!
//! `cargo run --release --example cut_tiles -- SOURCE OUT_DIR [COPIES]`
//!
//! Writes 8 tiles (4 columns x 2 rows at uneven cuts) `tile_C_R.laz`
//! (LAZ when SOURCE is LAZ, else LAS); COPIES (default 1) jittered copies of
//! every point make the tiles denser.
use std::path::PathBuf;

use nalgebra::{Point3, Vector3};
use pointpipe::batch::las_out::{LasTileOutput, write_las_tile};
use pointpipe::batch::tiles::read_las_tile;
use rand::{Rng, SeedableRng};

/// Column and row cuts as fractions of the source's extent (uneven on purpose).
const X_CUTS: [f64; 5] = [0.0, 0.18, 0.47, 0.69, 1.0];
const Y_CUTS: [f64; 3] = [0.0, 0.41, 1.0];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(source), Some(out)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: cut_tiles SOURCE OUT_DIR [COPIES]");
    };
    let copies: usize = args.get(3).map_or(Ok(1), |c| c.parse())?;
    let (source, out) = (PathBuf::from(source), PathBuf::from(out));
    std::fs::create_dir_all(&out)?;
    let whole = read_las_tile(&source)?;
    let compressed = source
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("laz"));
    let b = whole.header.bounds();
    let cut = |cuts: &[f64], lo: f64, hi: f64| -> Vec<f64> {
        cuts.iter().map(|f| lo + f * (hi - lo)).collect()
    };
    let (xs, ys) = (
        cut(&X_CUTS, b.min.x, b.max.x),
        cut(&Y_CUTS, b.min.y, b.max.y),
    );
    let cell = |v: f64, cuts: &[f64]| cuts[1..cuts.len() - 1].iter().filter(|&&c| v >= c).count();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(25);
    let n = whole.positions.len();
    let mut tiles: Vec<(Vec<usize>, Vec<Point3<f64>>)> = vec![(Vec::new(), Vec::new()); 8];
    for _ in 0..copies {
        for (i, p) in whole.positions.iter().enumerate() {
            let q = Point3::new(
                p.x + rng.random_range(-0.5..0.5),
                p.y + rng.random_range(-0.5..0.5),
                p.z + rng.random_range(-0.1..0.1),
            );
            let t = cell(q.y, &ys) * 4 + cell(q.x, &xs);
            tiles[t].0.push(i);
            tiles[t].1.push(q);
        }
    }
    for (t, (representatives, positions)) in tiles.iter().enumerate() {
        let normals = vec![Vector3::zeros(); positions.len()];
        let curvature = vec![f64::NAN; positions.len()];
        let tile = LasTileOutput {
            header: &whole.header,
            records: &whole.records,
            representatives,
            positions,
            normals: &normals,
            curvature: &curvature,
        };
        let name = format!(
            "tile_{}_{}.{}",
            t % 4,
            t / 4,
            if compressed { "laz" } else { "las" }
        );
        write_las_tile(&out.join(&name), &tile, compressed)?;
        println!("{name} {}", positions.len());
    }
    eprintln!(
        "{} points x {copies} copies -> 8 tiles in {}",
        n,
        out.display()
    );
    Ok(())
}
