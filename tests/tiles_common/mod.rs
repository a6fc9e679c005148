//! Jittered tiles cut from one LAS/LAZ file, for the batch tests and
//! `examples/cut_tiles.rs` (which includes this file by path).
#![allow(dead_code)]

use std::path::Path;

use nalgebra::{Point3, Vector3};
use pointpipe::io::las::records::LasTile;
use pointpipe::io::las::records::{LasTileOutput, write_las_tile};
use rand::{Rng, SeedableRng};

/// One tile: the source record index and the jittered position of each point.
pub type Tile = (Vec<usize>, Vec<Point3<f64>>);

/// `copies` passes over `positions`, each point moved by uniform noise (X/Y
/// ±0.5, Z ±0.1, CRS units; ChaCha8 seeded with `seed`) and put in the
/// grid cell of the cuts `xs` and `ys` (absolute coordinates, outer bounds
/// included) it lands in; cells row by row (`y` cell × columns + `x` cell).
pub fn jitter_into_grid(
    positions: &[Point3<f64>],
    xs: &[f64],
    ys: &[f64],
    seed: u64,
    copies: usize,
) -> Vec<Tile> {
    let cell = |v: f64, cuts: &[f64]| cuts[1..cuts.len() - 1].iter().filter(|&&c| v >= c).count();
    let columns = xs.len() - 1;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut tiles: Vec<Tile> = vec![(Vec::new(), Vec::new()); columns * (ys.len() - 1)];
    for _ in 0..copies {
        for (i, p) in positions.iter().enumerate() {
            let q = Point3::new(
                p.x + rng.random_range(-0.5..0.5),
                p.y + rng.random_range(-0.5..0.5),
                p.z + rng.random_range(-0.1..0.1),
            );
            let t = cell(q.y, ys) * columns + cell(q.x, xs);
            tiles[t].0.push(i);
            tiles[t].1.push(q);
        }
    }
    tiles
}

/// Writes the records `representatives` of `source` at `positions` to
/// `path`, with no normals.
pub fn write_tile(
    path: &Path,
    source: &LasTile,
    representatives: &[usize],
    positions: &[Point3<f64>],
    compressed: bool,
) -> pointpipe::Result<()> {
    let normals = vec![Vector3::zeros(); positions.len()];
    let curvature = vec![f64::NAN; positions.len()];
    let tile = LasTileOutput {
        header: &source.header,
        records: &source.records,
        representatives,
        positions,
        normals: &normals,
        curvature: &curvature,
    };
    write_las_tile(path, &tile, compressed)
}
