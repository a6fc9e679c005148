//! Issue 26, item 17: kNN and hybrid search stay near-linear on massively
//! duplicated points (organised scans store "no return" as (0, 0, 0)).
//! The work is bounded by counted distance evaluations ([`QueryStats`]),
//! never by a timing; the results still equal a brute-force scan sorted by
//! `(distance_sq, index)`.

use nalgebra::Point3;
use pointpipe::kdtree::{KdTree, Neighbor, Queries, QueryStats, Search};

/// `n` copies of one point, then `extra` points on a line beside it.
fn duplicated_cloud(n: usize, extra: usize) -> Vec<Point3<f64>> {
    let mut points = vec![Point3::new(1.5, -2.0, 0.25); n];
    points.extend((0..extra).map(|i| Point3::new(2.0 + i as f64 * 0.01, -2.0, 0.25)));
    points
}

fn brute_force(points: &[Point3<f64>], q: &Point3<f64>, k: usize, radius: f64) -> Vec<Neighbor> {
    let mut all: Vec<Neighbor> = points
        .iter()
        .enumerate()
        .map(|(index, p)| Neighbor {
            index,
            distance_sq: (p - q).norm_squared(),
        })
        .filter(|n| n.distance_sq <= radius * radius)
        .collect();
    all.sort_by(|a, b| {
        a.distance_sq
            .total_cmp(&b.distance_sq)
            .then(a.index.cmp(&b.index))
    });
    all.truncate(k);
    all
}

/// On 100,000 copies of one point a kNN query evaluated every point (the
/// tie-break by index could prune nothing): now a few leaves per query.
#[test]
fn knn_on_duplicates_is_bounded_and_exact() {
    let n = 100_000;
    let points = duplicated_cloud(n, 50);
    let tree = KdTree::build(&points).unwrap();
    let mut stats = QueryStats::ZERO;
    let mut out = Vec::new();
    let queries = [
        points[0],
        points[n / 2],
        Point3::new(1.5, -2.0, 0.3),
        points[n + 10],
        Point3::new(-40.0, 3.0, 0.0),
    ];
    for q in &queries {
        for k in [1, 10, 30] {
            tree.knn(q, k, &mut out);
            let one = Queries::Points(std::slice::from_ref(q));
            stats = stats.combine(tree.query_stats(one, Search::Knn { k }));
            assert_eq!(
                out,
                brute_force(&points, q, k, f64::INFINITY),
                "q {q} k {k}"
            );
        }
    }
    let per_query = stats.distance_evaluations_per_query();
    eprintln!(
        "{per_query:.0} distance evaluations, {:.1} nodes per query",
        stats.nodes_visited_per_query()
    );
    // Before: about n per query (100,000). A leaf holds at most 32 points.
    assert!(
        per_query < 10_000.0,
        "{per_query} distance evaluations per query"
    );
}

/// The per-point searches over the whole tree (kNN of every point, hybrid
/// of every point) give the k lowest indices among the copies, with bounded
/// work.
#[test]
fn all_points_on_duplicates_are_bounded_and_exact() {
    let n = 100_000;
    let points = duplicated_cloud(n, 0);
    let tree = KdTree::build(&points).unwrap();
    let stats = tree.query_stats(Queries::All, Search::Knn { k: 10 });
    let per_query = stats.distance_evaluations_per_query();
    assert!(
        per_query < 10_000.0,
        "{per_query} distance evaluations per query"
    );
    let expected: Vec<usize> = (0..10).collect();
    let knn = tree.search_batch(Queries::All, Search::Knn { k: 10 });
    let hybrid = tree.search_batch(
        Queries::All,
        Search::Hybrid {
            radius: 0.5,
            max_nn: 30,
        },
    );
    for i in [0, 1, 777, n / 2, n - 1] {
        let got: Vec<usize> = knn.get(i).iter().map(|nb| nb.index).collect();
        assert_eq!(got, expected, "knn of point {i}");
        let got: Vec<usize> = hybrid.get(i).iter().map(|nb| nb.index).collect();
        assert_eq!(got, (0..30).collect::<Vec<_>>(), "hybrid of point {i}");
    }
    // Hybrid searches from outside the copies: ties by index, within radius.
    let mut out = Vec::new();
    let q = Point3::new(1.5, -2.0, 0.45);
    tree.hybrid(&q, 0.5, 7, &mut out);
    assert_eq!(out, brute_force(&points, &q, 7, 0.5));
}
