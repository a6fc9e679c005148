//! Normals on synthetic surfaces with known normals, against a brute-force
//! PCA reference, and determinism across thread counts.

mod common;

use nalgebra::{Matrix3, Point3, Rotation3, SymmetricEigen, Vector3};
use pointpipe::PointCloud;
use pointpipe::kdtree::KdTree;
use pointpipe::normals::{NeighborSearch, NormalConfig, estimate_normals};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn degrees(a: &Vector3<f64>, b: &Vector3<f64>) -> f64 {
    (a.dot(b) / (a.norm() * b.norm()))
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// `n` random points on a tilted plane through `center` with unit normal
/// `normal`, spread over ±`half` metres, with Gaussian-ish noise `noise`.
fn plane_cloud(
    n: usize,
    center: Point3<f64>,
    normal: Vector3<f64>,
    half: f64,
    noise: f64,
    seed: u64,
) -> PointCloud {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rot = Rotation3::rotation_between(&Vector3::z(), &normal).unwrap();
    PointCloud::from_points(
        (0..n)
            .map(|_| {
                let local = Vector3::new(
                    rng.random_range(-half..half),
                    rng.random_range(-half..half),
                    // Sum of uniforms: roughly Gaussian with std `noise`.
                    (0..3).map(|_| rng.random_range(-1.0..1.0)).sum::<f64>() * noise,
                );
                center + rot * local
            })
            .collect(),
    )
}

fn estimate(cloud: &mut PointCloud, config: &NormalConfig) -> pointpipe::normals::NormalReport {
    let tree = KdTree::build(&cloud.points).unwrap();
    estimate_normals(cloud, &tree, config).unwrap()
}

#[test]
fn plane_normals_within_half_degree_and_flat() {
    let normal = Vector3::new(0.3, -0.2, 1.0).normalize();
    // The plane is above the origin, so normals must face down toward it.
    let mut cloud = plane_cloud(3000, Point3::new(1.0, 2.0, 10.0), normal, 5.0, 0.0, 1);
    for search in [
        NeighborSearch::Radius {
            radius: 1.0,
            max_nn: Some(30),
        },
        NeighborSearch::Radius {
            radius: 0.8,
            max_nn: None,
        },
        NeighborSearch::Knn { k: 20 },
    ] {
        let config = NormalConfig {
            search,
            ..Default::default()
        };
        let report = estimate(&mut cloud, &config);
        assert_eq!(report.with_normal, 3000);
        let normals = cloud.normals.as_ref().unwrap();
        let curvature = cloud.curvature.as_ref().unwrap();
        for (n, c) in normals.iter().zip(curvature) {
            assert!(degrees(n, &-normal) < 0.5, "{n} vs {}", -normal);
            assert!((n.norm() - 1.0).abs() < 1e-12);
            assert!(*c < 1e-10);
        }
    }
}

#[test]
fn noisy_plane_normals_close() {
    let normal = Vector3::new(-0.5, 0.1, 1.0).normalize();
    let mut cloud = plane_cloud(5000, Point3::new(-3.0, 0.0, -8.0), normal, 6.0, 0.005, 2);
    let report = estimate(&mut cloud, &NormalConfig::default());
    assert_eq!(report.with_normal, 5000);
    let normals = cloud.normals.as_ref().unwrap();
    // The plane is below the origin: normals face up (+normal).
    let mean_error = normals.iter().map(|n| degrees(n, &normal)).sum::<f64>() / 5000.0;
    let max_error = normals
        .iter()
        .map(|n| degrees(n, &normal))
        .fold(0.0, f64::max);
    assert!(mean_error < 1.0, "mean {mean_error}°");
    assert!(max_error < 5.0, "max {max_error}°");
    let curvature = cloud.curvature.as_ref().unwrap();
    assert!(curvature.iter().all(|&c| c > 0.0 && c < 0.01));
}

#[test]
fn sphere_normals_radial_and_facing_the_centre() {
    // Fibonacci lattice: evenly spread points (random sampling leaves
    // lopsided neighbourhoods whose PCA plane tilts by up to ~offset / radius).
    let center = Point3::new(5.0, -2.0, 1.0);
    let r = 3.0;
    let n = 8000;
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let points = (0..n)
        .map(|i| {
            let z = 1.0 - 2.0 * (i as f64 + 0.5) / n as f64;
            let ring = (1.0 - z * z).sqrt();
            let phi = golden * i as f64;
            center + Vector3::new(ring * phi.cos(), ring * phi.sin(), z) * r
        })
        .collect();
    let mut cloud = PointCloud::from_points(points);
    let config = NormalConfig {
        search: NeighborSearch::Radius {
            radius: 0.5,
            max_nn: Some(30),
        },
        viewpoint: Some(center),
        ..Default::default()
    };
    let report = estimate(&mut cloud, &config);
    assert_eq!(report.with_normal, 8000);
    for (p, n) in cloud.points.iter().zip(cloud.normals.as_ref().unwrap()) {
        let inward = center - p;
        assert!(degrees(n, &inward) < 2.0, "{p}: {n}");
    }
}

#[test]
fn isolated_points_get_no_normal() {
    let normal = Vector3::z();
    let mut cloud = plane_cloud(500, Point3::origin(), normal, 2.0, 0.0, 4);
    cloud.points.push(Point3::new(100.0, 0.0, 0.0));
    cloud.points.push(Point3::new(-100.0, 0.0, 0.0));
    cloud.points.push(Point3::new(-100.0, 0.1, 0.0)); // only 2 points
    let report = estimate(&mut cloud, &NormalConfig::default());
    assert_eq!(report.with_normal, 500);
    assert_eq!(report.without_normal, 3);
    for i in 500..503 {
        assert!(!cloud.has_normal(i));
        assert!(cloud.curvature.as_ref().unwrap()[i].is_nan());
    }
}

/// Brute force: neighbours by exhaustive search, covariance by the textbook
/// two-pass formula, eigenvector by nalgebra's iterative `SymmetricEigen`.
fn reference_normal(
    points: &[Point3<f64>],
    i: usize,
    radius: f64,
    max_nn: usize,
) -> (Vector3<f64>, f64) {
    let p = points[i];
    let mut near: Vec<(f64, usize)> = points
        .iter()
        .enumerate()
        .map(|(j, q)| ((q - p).norm_squared(), j))
        .filter(|&(d, _)| d <= radius * radius)
        .collect();
    near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    near.truncate(max_nn);
    let n = near.len() as f64;
    let mean = near
        .iter()
        .map(|&(_, j)| points[j].coords)
        .sum::<Vector3<f64>>()
        / n;
    let cov = near.iter().fold(Matrix3::zeros(), |acc, &(_, j)| {
        let d = points[j].coords - mean;
        acc + d * d.transpose()
    }) / n;
    let eig = SymmetricEigen::new(cov);
    let imin = eig.eigenvalues.imin();
    let mut normal = eig.eigenvectors.column(imin).into_owned();
    if normal.dot(&(-p.coords)) < 0.0 {
        normal = -normal;
    }
    (normal, eig.eigenvalues[imin] / eig.eigenvalues.sum())
}

#[test]
fn agrees_with_brute_force_pca() {
    // A bumpy surface: z = sin(x) cos(y) with noise, so curvature varies.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let points: Vec<Point3<f64>> = (0..3000)
        .map(|_| {
            let x: f64 = rng.random_range(-4.0..4.0);
            let y: f64 = rng.random_range(-4.0..4.0);
            Point3::new(
                x,
                y,
                5.0 + x.sin() * y.cos() + rng.random_range(-0.01..0.01),
            )
        })
        .collect();
    let mut cloud = PointCloud::from_points(points);
    estimate(&mut cloud, &NormalConfig::default());
    let normals = cloud.normals.as_ref().unwrap();
    let curvature = cloud.curvature.as_ref().unwrap();
    for i in (0..3000).step_by(7) {
        let (n_ref, c_ref) = reference_normal(&cloud.points, i, 1.0, 30);
        assert!(
            degrees(&normals[i], &n_ref) < 1e-4,
            "{i}: {} vs {n_ref}",
            normals[i]
        );
        assert!(
            (curvature[i] - c_ref).abs() < 1e-8,
            "{i}: {} vs {c_ref}",
            curvature[i]
        );
    }
}

#[test]
fn identical_at_one_and_two_threads() {
    let normal = Vector3::new(0.2, 0.4, 1.0).normalize();
    let cloud = plane_cloud(6000, Point3::new(0.0, 0.0, -2.0), normal, 8.0, 0.02, 6);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut c = cloud.clone();
                let report = estimate(&mut c, &NormalConfig::default());
                (report, c.normals.unwrap(), c.curvature.unwrap())
            })
    };
    let (r1, n1, c1) = run(1);
    let (r2, n2, c2) = run(2);
    assert_eq!(r1, r2);
    assert_eq!(n1, n2);
    let bits = |c: &[f64]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&c1), bits(&c2));
}
