//! Time to simulate one default LiDAR frame (64 × 1800 rays) of the street
//! scene, and to build the scene.
//!
//! `cargo bench --bench simulate -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, criterion_group, criterion_main};
use pointpipe::simulate::{Scene, SimulationConfig, StreetPath, frame_seed, simulate_frame};

fn bench_simulate(c: &mut Criterion) {
    let config = SimulationConfig::default();
    let scene = Scene::street(config.seed, config.drive_length);
    let path = StreetPath::new(config.drive_length);
    let mut group = c.benchmark_group("simulate");
    group.sample_size(20);
    for (name, index) in [("frame_straight", 20usize), ("frame_bend", 100)] {
        let pose = config.world_from_sensor(&path, index as f64 * config.frame_period);
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            group.bench_function(format!("{name}_{threads}t"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        simulate_frame(&scene, &pose, &config.lidar, frame_seed(config.seed, index))
                    })
                })
            });
        }
    }
    group.bench_function("street_scene", |b| {
        b.iter(|| Scene::street(config.seed, config.drive_length))
    });
    group.finish();
}

criterion_group!(benches, bench_simulate);
criterion_main!(benches);
