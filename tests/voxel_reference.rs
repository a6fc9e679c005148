//! The voxel grid against a straightforward `BTreeMap` reference, on
//! synthetic clouds and on a real KITTI frame; determinism across thread
//! counts.

mod common;

use std::collections::BTreeMap;

use nalgebra::{Point3, Vector3};
use pointpipe::PointCloud;
use pointpipe::voxel::{
    VoxelConfig, VoxelGrid, VoxelMode, voxel_downsample, voxel_downsample_with_representatives,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Reference: voxels ordered by first occurrence, with the input indices of
/// their points (input order).
fn reference_groups(points: &[Point3<f64>], voxel_size: f64) -> Vec<Vec<usize>> {
    let grid = VoxelGrid::new(voxel_size).unwrap();
    let mut by_key: BTreeMap<[i64; 3], Vec<usize>> = BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        by_key.entry(grid.key(p)).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = by_key.into_values().collect();
    groups.sort_by_key(|g| g[0]);
    groups
}

/// Checks both modes against the reference (centroids to 1e-9 relative to the
/// voxel size).
fn check_against_reference(cloud: &PointCloud, voxel_size: f64) {
    let groups = reference_groups(&cloud.points, voxel_size);
    let grid = VoxelGrid::new(voxel_size).unwrap();
    let first = VoxelConfig {
        voxel_size,
        mode: VoxelMode::First,
    };
    let (down, reps) = voxel_downsample_with_representatives(cloud, &first).unwrap();
    let expected_reps: Vec<usize> = groups.iter().map(|g| g[0]).collect();
    assert_eq!(reps, expected_reps);
    let expected_points: Vec<Point3<f64>> = reps.iter().map(|&i| cloud.points[i]).collect();
    assert_eq!(down.points, expected_points);

    let (down, reps) =
        voxel_downsample_with_representatives(cloud, &VoxelConfig::new(voxel_size)).unwrap();
    assert_eq!(reps, expected_reps);
    for (g, p) in groups.iter().zip(&down.points) {
        let mean = g
            .iter()
            .map(|&i| cloud.points[i].coords)
            .sum::<Vector3<f64>>()
            / g.len() as f64;
        let tol = 1e-9 * voxel_size.max(mean.abs().max() * 1e-7);
        assert!(
            (p.coords - mean).abs().max() <= tol,
            "centroid {p} vs {mean}"
        );
        // The centroid stays inside its voxel.
        assert_eq!(grid.key(p), grid.key(&cloud.points[g[0]]));
    }
}

fn random_cloud(n: usize, half_extent: f64, center: [f64; 3], seed: u64) -> PointCloud {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    PointCloud::from_points(
        (0..n)
            .map(|_| {
                Point3::new(
                    center[0] + rng.random_range(-half_extent..half_extent),
                    center[1] + rng.random_range(-half_extent..half_extent),
                    center[2] + rng.random_range(-half_extent..half_extent),
                )
            })
            .collect(),
    )
}

#[test]
fn random_cloud_matches_reference() {
    check_against_reference(&random_cloud(20_000, 10.0, [0.0; 3], 1), 0.5);
    check_against_reference(&random_cloud(20_000, 10.0, [0.0; 3], 2), 0.05);
}

#[test]
fn clustered_cloud_matches_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut points = Vec::new();
    for _ in 0..40 {
        let c = Point3::new(
            rng.random_range(-50.0..50.0),
            rng.random_range(-50.0..50.0),
            rng.random_range(-5.0..5.0),
        );
        for _ in 0..500 {
            points.push(
                c + Vector3::new(
                    rng.random_range(-0.3..0.3),
                    rng.random_range(-0.3..0.3),
                    rng.random_range(-0.3..0.3),
                ),
            );
        }
    }
    check_against_reference(&PointCloud::from_points(points), 0.1);
}

#[test]
fn huge_coordinates_with_millimetre_voxels_match_reference() {
    // ±1e7 m with 1 mm voxels: keys up to 1e10 need more than 32 bits each
    // (u128 packing path).
    let mut cloud = random_cloud(5_000, 0.05, [9.9e6, -9.9e6, 1e7 - 1.0], 4);
    let far = random_cloud(5_000, 0.05, [-9.9e6, 9.9e6, -1e7 + 1.0], 5);
    cloud.points.extend(far.points);
    check_against_reference(&cloud, 1e-3);
    // Two points in neighbouring millimetre voxels at 1e7 m stay apart.
    let pair = PointCloud::from_points(vec![
        Point3::new(1e7 - 0.0015, 0.0, 0.0),
        Point3::new(1e7 - 0.0005, 0.0, 0.0),
    ]);
    assert_eq!(
        voxel_downsample(&pair, &VoxelConfig::new(1e-3))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn all_points_in_one_voxel() {
    let cloud = random_cloud(1000, 0.1, [0.5, 0.5, 0.5], 6);
    let down = voxel_downsample(&cloud, &VoxelConfig::new(1.0)).unwrap();
    assert_eq!(down.len(), 1);
    let mean = cloud.points.iter().map(|p| p.coords).sum::<Vector3<f64>>() / 1000.0;
    assert!((down.points[0].coords - mean).norm() < 1e-12);
}

#[test]
fn points_on_voxel_boundaries() {
    // Multiples of the voxel size (exact in binary) belong to the voxel above.
    let s = 0.25;
    let coords = [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0];
    let points: Vec<Point3<f64>> = coords
        .iter()
        .flat_map(|&x| coords.iter().map(move |&y| Point3::new(x, y, -x)))
        .collect();
    let cloud = PointCloud::from_points(points);
    let down = voxel_downsample(&cloud, &VoxelConfig::new(s)).unwrap();
    assert_eq!(down.len(), 81, "every boundary point opens its own voxel");
    for p in &cloud.points {
        let k = VoxelGrid::new(s).unwrap().key(p);
        assert_eq!(k[0] as f64 * s, p.x);
    }
    check_against_reference(&cloud, s);
}

#[test]
fn negative_coordinates_use_floor() {
    // Points at ±0.1 on each axis: 8 octants, 8 voxels (truncation would give 1).
    let mut points = Vec::new();
    for sx in [-0.1, 0.1] {
        for sy in [-0.1, 0.1] {
            for sz in [-0.1, 0.1] {
                points.push(Point3::new(sx, sy, sz));
            }
        }
    }
    let cloud = PointCloud::from_points(points);
    assert_eq!(
        voxel_downsample(&cloud, &VoxelConfig::new(1.0))
            .unwrap()
            .len(),
        8
    );
    check_against_reference(&random_cloud(10_000, 3.0, [-2.0, -2.0, -2.0], 7), 0.3);
}

fn run_in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn identical_at_one_two_and_three_threads() {
    let mut cloud = random_cloud(50_000, 20.0, [3.0, -4.0, 1.0], 8);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    cloud.intensity = Some((0..cloud.len()).map(|_| rng.random()).collect());
    cloud.time = Some((0..cloud.len()).map(|i| i as f64 * 1e-6).collect());
    for mode in [VoxelMode::Centroid, VoxelMode::First] {
        let config = VoxelConfig {
            voxel_size: 0.7,
            mode,
        };
        let results: Vec<_> = [1, 2, 3]
            .into_iter()
            .map(|t| run_in_pool(t, || voxel_downsample_with_representatives(&cloud, &config)))
            .map(Result::unwrap)
            .collect();
        for r in &results[1..] {
            assert_eq!(r.1, results[0].1);
            // Bit-identical positions and attributes.
            let bits = |c: &PointCloud| -> Vec<u64> {
                c.points
                    .iter()
                    .flat_map(|p| p.coords.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                    .chain(c.time.iter().flatten().map(|t| t.to_bits()))
                    .chain(
                        c.intensity
                            .iter()
                            .flatten()
                            .map(|&i| u64::from(i.to_bits())),
                    )
                    .collect()
            };
            assert_eq!(bits(&r.0), bits(&results[0].0));
        }
    }
}

#[test]
fn kitti_frame_gives_reference_voxel_count() {
    let Some(path) = common::shared_data("kitti-raw-hdl64-5frames/0000000000.bin") else {
        return;
    };
    let cloud = pointpipe::io::read(&path).unwrap();
    let down = voxel_downsample(&cloud, &VoxelConfig::new(0.25)).unwrap();
    assert_eq!(down.len(), 18_592);
    check_against_reference(&cloud, 0.25);
    let two = run_in_pool(2, || voxel_downsample(&cloud, &VoxelConfig::new(0.25))).unwrap();
    assert_eq!(two.points, down.points);
    assert_eq!(two.intensity, down.intensity);
}

/// A survey tile's records are quantised (here 0.01 ft steps at
/// 637,000 / 850,000 / 400 ft, as Autzen): the centroid of a voxel must not
/// depend on which other points share its file, so a tile cut out of a
/// cloud gives bit for bit the centroids of the uncut cloud (a LAS writer
/// quantises them again, and a last-bit difference on a rounding tie moves
/// a point by one unit).
#[test]
fn centroids_of_quantised_points_do_not_depend_on_the_other_points() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let quantised = |offset: f64, steps: i64| offset + steps as f64 * 0.01;
    // Scan-line order: sweeps across the whole extent, so the points of a
    // voxel are spread over many blocks and interleaved with other tiles'.
    let points: Vec<Point3<f64>> = (0..60_000)
        .map(|i| {
            let along = (i % 3_000) as i64 * 2 + rng.random_range(0..2);
            let across = (i / 3_000) as i64 * 30 + rng.random_range(0..30);
            Point3::new(
                quantised(637_000.0, along),
                quantised(850_000.0, across),
                quantised(400.0, rng.random_range(0..2_000)),
            )
        })
        .collect();
    let voxel = VoxelConfig::new(0.5);
    let whole = voxel_downsample(&PointCloud::from_points(points.clone()), &voxel).unwrap();
    let grid = VoxelGrid::new(0.5).unwrap();
    // The west half of the cloud, cut on a voxel boundary.
    let cut_key = grid.key(&Point3::new(637_030.0, 0.0, 0.0))[0];
    let west: Vec<Point3<f64>> = points
        .iter()
        .copied()
        .filter(|p| grid.key(p)[0] < cut_key)
        .collect();
    let tile = voxel_downsample(&PointCloud::from_points(west), &voxel).unwrap();
    let whole_by_key: BTreeMap<[i64; 3], Point3<f64>> =
        whole.points.iter().map(|p| (grid.key(p), *p)).collect();
    assert!(tile.len() > 1_000 && tile.len() < whole.len());
    for p in &tile.points {
        let q = whole_by_key[&grid.key(p)];
        assert_eq!(
            p.coords.map(f64::to_bits),
            q.coords.map(f64::to_bits),
            "{p} vs {q}"
        );
    }
}
