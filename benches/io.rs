//! Read throughput of every reader on real files from `../shared/data`.
//!
//! Targets (issue 2): binary PCD and KITTI `.bin` ≥ 1 GB/s (a 2.7 MB BALM
//! scan in ≤ 3 ms), LAS ≥ 30 M points/s, LAZ at the `las` crate's decoder
//! speed. Run: `cargo bench --bench io -- --warm-up-time 1 --measurement-time 3`.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pointpipe::io;

fn bench_reads(c: &mut Criterion) {
    let files = [
        ("pcd_binary_balm_full20", "balm-realworld-lidar/full20.pcd"),
        ("kitti_bin_hdl64", "kitti-raw-hdl64-5frames/0000000000.bin"),
        ("ply_binary_hdl32", "hdl32-pair-small_gicp/source.ply"),
        ("ply_ascii_bunny", "stanford-bunny-range-scans/bun000.ply"),
        ("las_autzen_trim", "las/pdal/autzen_trim.las"),
        ("laz_autzen_trim", "las/pdal/autzen_trim.laz"),
    ];
    let mut group = c.benchmark_group("io_read");
    for (name, rel) in files {
        let path = common::shared_data_required(rel);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let points = io::read(&path).map(|c| c.len()).unwrap_or(0) as u64;
        // Bytes for the byte-oriented formats, points for LAS/LAZ.
        if name.starts_with("la") {
            group.throughput(Throughput::Elements(points));
        } else {
            group.throughput(Throughput::Bytes(bytes));
        }
        group.bench_function(name, |b| b.iter(|| io::read(&path)));
    }
    group.finish();
}

/// Splits a read into its file read and its parse from memory, and gives a
/// memcpy-like baseline, so that ratios stay meaningful on a loaded machine.
fn bench_parse_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("io_parse");
    for (name, rel) in [
        ("pcd", "balm-realworld-lidar/full20.pcd"),
        ("kitti", "kitti-raw-hdl64-5frames/0000000000.bin"),
    ] {
        let path = common::shared_data_required(rel);
        let bytes = std::fs::read(&path).unwrap_or_default();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{name}_fs_read_only"), |b| {
            b.iter(|| std::fs::read(&path))
        });
        group.bench_function(format!("{name}_copy_to_new_vec"), |b| {
            b.iter(|| bytes.to_vec())
        });
        group.bench_function(format!("{name}_parse_from_memory"), |b| {
            b.iter(|| match name {
                "pcd" => io::pcd::read_from_bytes(&bytes, &path),
                _ => io::kitti::read_from_bytes(&bytes, &path),
            })
        });
    }
    group.finish();
}

fn bench_writes(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("pointpipe-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let src = common::shared_data_required("las/pdal/autzen_trim.las");
    let cloud = io::read(&src).unwrap_or_default();
    let mut group = c.benchmark_group("io_write_autzen");
    group.throughput(Throughput::Elements(cloud.len() as u64));
    for ext in ["pcd", "ply", "bin", "las", "laz"] {
        let out = dir.join(format!("out.{ext}"));
        group.bench_function(ext, |b| b.iter(|| io::write(&out, &cloud)));
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_reads, bench_parse_only, bench_writes);
criterion_main!(benches);
