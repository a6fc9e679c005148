//! Makes the dense benchmark tile of issue 25: `COPIES` copies of a LAS/LAZ
//! file stacked on its own extent, each copy's X/Y moved by uniform noise of
//! ±`XY` and Z by ±`Z` (CRS units) from a fixed seed, keeping the input's
//! header (version, point format, scale, offset, VLRs and so the CRS).
//!
//! ```text
//! cargo run --release --example dense_tile -- IN OUT [COPIES] [XY] [Z] [SEED]
//! ```
//!
//! Defaults: 91 copies, ±0.5, ±0.1, seed 25; on `autzen_trim.laz`
//! (110,000 points) that is the 10,010,000-point tile of
//! `benches/batch_dense_tile.sh`. The output container follows OUT's
//! extension (`.laz` compressed). Copy `c` of point `i` is record
//! `c · n + i`; the noise is drawn per record in that order from a ChaCha8
//! stream, so the same arguments give the same bytes.
use std::path::PathBuf;

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        bail!("usage: dense_tile IN OUT [COPIES] [XY] [Z] [SEED]");
    }
    let input = PathBuf::from(&args[0]);
    let output = PathBuf::from(&args[1]);
    let copies: usize = args.get(2).map_or(Ok(91), |s| s.parse())?;
    let xy: f64 = args.get(3).map_or(Ok(0.5), |s| s.parse())?;
    let z: f64 = args.get(4).map_or(Ok(0.1), |s| s.parse())?;
    let seed: u64 = args.get(5).map_or(Ok(25), |s| s.parse())?;

    let mut reader = las::Reader::from_path(&input).with_context(|| input.display().to_string())?;
    let records = reader.read_all()?;
    let header = reader.header().clone();
    let transforms = *header.transforms();
    let len = records.record_len();
    let raw = records.raw_bytes();

    let mut builder = las::Builder::from(header);
    builder.point_format.is_compressed = output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("laz"));
    // The input's LAZ layout VLR is rewritten by the writer.
    builder
        .vlrs
        .retain(|v| !v.user_id.eq_ignore_ascii_case("laszip encoded"));
    let header = builder.into_header()?;
    let file = std::fs::File::create(&output).with_context(|| output.display().to_string())?;
    let mut writer = las::Writer::new(std::io::BufWriter::new(file), header)?;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut bytes = vec![0u8; raw.len()];
    for _ in 0..copies {
        bytes.copy_from_slice(raw);
        for record in bytes.chunks_exact_mut(len) {
            let noise = [
                rng.random_range(-xy..=xy),
                rng.random_range(-xy..=xy),
                rng.random_range(-z..=z),
            ];
            let t = [transforms.x, transforms.y, transforms.z];
            for axis in 0..3 {
                let at = 4 * axis;
                let value = i32::from_le_bytes(record[at..at + 4].try_into()?);
                let moved = t[axis].inverse(t[axis].direct(value) + noise[axis])?;
                record[at..at + 4].copy_from_slice(&moved.to_le_bytes());
            }
        }
        let chunk = las::PointDataBuilder::new()
            .for_header(writer.header())
            .build_from_bytes(bytes.clone())?;
        writer.write_points(&chunk)?;
    }
    writer.close()?;
    println!(
        "{}: {} points ({copies} copies of {}, noise ±{xy} / ±{z}, seed {seed})",
        output.display(),
        copies * records.len(),
        input.display()
    );
    Ok(())
}
