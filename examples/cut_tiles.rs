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

use pointpipe::io::las::records::read_las_tile;

#[path = "../tests/tiles_common/mod.rs"]
mod tiles_common;

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
    let tiles = tiles_common::jitter_into_grid(&whole.positions, &xs, &ys, 25, copies);
    for (t, (representatives, positions)) in tiles.iter().enumerate() {
        let name = format!(
            "tile_{}_{}.{}",
            t % 4,
            t / 4,
            if compressed { "laz" } else { "las" }
        );
        tiles_common::write_tile(
            &out.join(&name),
            &whole,
            representatives,
            positions,
            compressed,
        )?;
        println!("{name} {}", positions.len());
    }
    eprintln!(
        "{} points x {copies} copies -> 8 tiles in {}",
        whole.positions.len(),
        out.display()
    );
    Ok(())
}
