//! Batch throughput against the floor set by LAS/LAZ decoding: the same
//! tiles only decoded and re-encoded with the `las` crate (raw records, no
//! per-point structs), then the full batch (voxel 0.1, normals r = 0.5) with
//! 1 and 2 jobs.
//!
//! Tiles: jittered copies of Autzen (generated into a temporary folder), or
//! the `.las`/`.laz` files of `$POINTPIPE_BATCH_BENCH_DIR` when set.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use pointpipe::batch::{BatchConfig, NoProgress, run_batch};
use pointpipe::io::las::records::read_las_tile;
use pointpipe::normals::NormalConfig;
use pointpipe::voxel::VoxelConfig;

/// Tiles of `copies` jittered Autzen copies (330k points for 3), as LAZ with
/// Autzen's records (point format 3, no extra bytes, like a survey tile):
/// each record a copy of its Autzen point's with the jittered X/Y/Z.
fn generate_tiles(dir: &Path, tiles: usize, copies: usize) {
    use rand::{Rng, SeedableRng};
    let autzen = read_las_tile(&common::shared_data_required("las/pdal/autzen_trim.laz")).unwrap();
    let n = autzen.positions.len();
    let len = autzen.records.record_len();
    let raw = autzen.records.raw_bytes();
    let transforms = *autzen.header.transforms();
    let mut builder = las::Builder::from(autzen.header.clone());
    builder.vlrs.retain(|v| v.user_id != "laszip encoded");
    builder.point_format.is_compressed = true;
    let header = builder.into_header().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for t in 0..tiles {
        let mut bytes = Vec::with_capacity(copies * n * len);
        for i in (0..copies * n).map(|i| i % n) {
            let p = autzen.positions[i];
            let jittered = [
                p.x + 2000.0 * t as f64 + rng.random_range(-0.5..0.5),
                p.y + rng.random_range(-0.5..0.5),
                p.z + rng.random_range(-0.1..0.1),
            ];
            let at = bytes.len();
            bytes.extend_from_slice(&raw[i * len..(i + 1) * len]);
            for (axis, (value, transform)) in jittered
                .into_iter()
                .zip([transforms.x, transforms.y, transforms.z])
                .enumerate()
            {
                let q = transform.inverse(value).unwrap();
                bytes[at + 4 * axis..at + 4 * axis + 4].copy_from_slice(&q.to_le_bytes());
            }
        }
        let records = las::PointDataBuilder::new()
            .for_header(&header)
            .build_from_bytes(bytes)
            .unwrap();
        let file = std::io::BufWriter::new(
            std::fs::File::create(dir.join(format!("tile_{t}.laz"))).unwrap(),
        );
        let mut writer = las::Writer::new(file, header.clone()).unwrap();
        writer.write_points(&records).unwrap();
        writer.close().unwrap();
    }
}

/// Decodes every tile and re-encodes its records unchanged (same container).
fn decode_reencode(tiles: &[PathBuf], out: &Path) {
    for path in tiles {
        let mut reader = las::Reader::from_path(path).unwrap();
        let header = reader.header().clone();
        let records = reader.read_all().unwrap();
        let target = out.join(path.file_name().unwrap());
        let mut builder = las::Builder::from(header);
        builder.vlrs.retain(|v| v.user_id != "laszip encoded");
        let header = builder.into_header().unwrap();
        let file = std::io::BufWriter::new(std::fs::File::create(target).unwrap());
        let mut writer = las::Writer::new(file, header).unwrap();
        writer.write_points(&records).unwrap();
        writer.close().unwrap();
    }
}

fn bench_batch(c: &mut Criterion) {
    let generated = tempfile::tempdir().unwrap();
    let input: PathBuf = match std::env::var_os("POINTPIPE_BATCH_BENCH_DIR") {
        Some(d) => d.into(),
        None => {
            generate_tiles(generated.path(), 4, 3);
            generated.path().to_path_buf()
        }
    };
    let mut tiles: Vec<PathBuf> = std::fs::read_dir(&input)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "las" || e == "laz"))
        .collect();
    tiles.sort();
    let out = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    group.bench_function("decode_reencode_las_crate", |b| {
        b.iter(|| decode_reencode(&tiles, out.path()))
    });
    for jobs in [1, 2] {
        let config = BatchConfig {
            voxel: Some(VoxelConfig::new(0.1)),
            normals: NormalConfig::aerial(0.5, 30),
            jobs,
            force: true,
            ..Default::default()
        };
        group.bench_function(format!("batch_voxel0.1_r0.5_jobs{jobs}"), |b| {
            b.iter(|| run_batch(&input, out.path(), &config, &NoProgress).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_batch);
criterion_main!(benches);
