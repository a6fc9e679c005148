//! Normals on the KITTI frame (placeholder until written).
use criterion::{Criterion, criterion_group, criterion_main};
fn bench_normals(_c: &mut Criterion) {}
criterion_group!(benches, bench_normals);
criterion_main!(benches);
