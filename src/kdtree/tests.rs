//! Property tests (unit tests: they reach the crate-internal hinted searches) of the k-d tree against brute force on random, clustered,
//! duplicate-heavy and degenerate clouds, tree invariants, and determinism at
//! 1 vs 2 threads.

use super::{KdTree, KdTreeConfig, Neighbor, Queries, Search, SearchHint};
use nalgebra::Point3;
use proptest::prelude::*;

/// Brute force: every point with `(dx² + dy²) + dz² <= bound_sq`, sorted by
/// `(distance_sq, index)`, the first `max_nn`.
fn brute(points: &[Point3<f64>], q: &Point3<f64>, bound_sq: f64, max_nn: usize) -> Vec<Neighbor> {
    let mut v: Vec<Neighbor> = points
        .iter()
        .enumerate()
        .filter_map(|(index, p)| {
            let (dx, dy, dz) = (p.x - q.x, p.y - q.y, p.z - q.z);
            let distance_sq = dx * dx + dy * dy + dz * dz;
            (distance_sq <= bound_sq).then_some(Neighbor { index, distance_sq })
        })
        .collect();
    v.sort_by(|a, b| {
        a.distance_sq
            .total_cmp(&b.distance_sq)
            .then(a.index.cmp(&b.index))
    });
    v.truncate(max_nn);
    v
}

fn sorted(mut v: Vec<Neighbor>) -> Vec<Neighbor> {
    v.sort_by(|a, b| {
        a.distance_sq
            .total_cmp(&b.distance_sq)
            .then(a.index.cmp(&b.index))
    });
    v
}

fn coord() -> impl Strategy<Value = f64> {
    -50.0..50.0f64
}

fn random_cloud() -> impl Strategy<Value = Vec<Point3<f64>>> {
    prop::collection::vec((coord(), coord(), coord()), 0..400).prop_map(|v| {
        v.into_iter()
            .map(|(x, y, z)| Point3::new(x, y, z))
            .collect()
    })
}

fn clustered_cloud() -> impl Strategy<Value = Vec<Point3<f64>>> {
    (
        prop::collection::vec((coord(), coord(), coord()), 1..5),
        prop::collection::vec(
            (0usize..5, -0.5..0.5f64, -0.5..0.5f64, -0.5..0.5f64),
            1..400,
        ),
    )
        .prop_map(|(centres, offsets)| {
            offsets
                .into_iter()
                .map(|(c, dx, dy, dz)| {
                    let (x, y, z) = centres[c % centres.len()];
                    Point3::new(x + dx, y + dy, z + dz)
                })
                .collect()
        })
}

/// Many exact duplicates of a handful of points (some on a 1 cm grid, so
/// distance ties are common).
fn duplicate_cloud() -> impl Strategy<Value = Vec<Point3<f64>>> {
    (
        prop::collection::vec((-3i32..3, -3i32..3, -3i32..3), 1..6),
        prop::collection::vec(0usize..6, 1..600),
    )
        .prop_map(|(base, picks)| {
            picks
                .into_iter()
                .map(|i| {
                    let (x, y, z) = base[i % base.len()];
                    Point3::new(f64::from(x) * 0.01, f64::from(y), f64::from(z))
                })
                .collect()
        })
}

/// Collinear, coplanar or all-identical clouds, integer coordinates (ties).
fn degenerate_cloud() -> impl Strategy<Value = Vec<Point3<f64>>> {
    (
        0u8..3,
        prop::collection::vec((-20i32..20, -20i32..20), 1..400),
    )
        .prop_map(|(kind, v)| {
            v.into_iter()
                .map(|(a, b)| {
                    let (a, b) = (f64::from(a), f64::from(b));
                    match kind {
                        0 => Point3::new(a, 2.0 * a, -a),   // collinear
                        1 => Point3::new(a, b, 7.0),        // coplanar
                        _ => Point3::new(1.5, -2.0, 100.0), // identical
                    }
                })
                .collect()
        })
}

fn any_cloud() -> impl Strategy<Value = Vec<Point3<f64>>> {
    prop_oneof![
        random_cloud(),
        clustered_cloud(),
        duplicate_cloud(),
        degenerate_cloud()
    ]
}

/// Queries: cloud points, random points and far points.
fn queries(points: &[Point3<f64>], extra: &[(f64, f64, f64)]) -> Vec<Point3<f64>> {
    let mut qs: Vec<Point3<f64>> = points.iter().step_by(7).copied().collect();
    qs.extend(extra.iter().map(|&(x, y, z)| Point3::new(x, y, z)));
    qs.push(Point3::new(1e4, -1e4, 3e3));
    qs
}

fn check_against_brute(
    points: &[Point3<f64>],
    extra: &[(f64, f64, f64)],
    leaf_size: usize,
    k: usize,
    radius: f64,
    max_nn: usize,
) -> Result<(), TestCaseError> {
    let config = KdTreeConfig {
        leaf_size,
        parallel_min_points: 64,
    };
    let tree =
        KdTree::build_with(points, &config).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(tree.len(), points.len());
    let qs = queries(points, extra);
    let mut out = Vec::new();
    for q in &qs {
        let want_knn = brute(points, q, f64::INFINITY, k);
        tree.knn(q, k, &mut out);
        prop_assert_eq!(&out, &want_knn, "knn k={} q={:?}", k, q);

        let want_radius = brute(points, q, radius * radius, usize::MAX);
        tree.radius(q, radius, &mut out);
        prop_assert_eq!(&out, &want_radius, "radius r={} q={:?}", radius, q);
        tree.radius_unsorted(q, radius, &mut out);
        prop_assert_eq!(sorted(out.clone()), want_radius.clone());
        prop_assert_eq!(tree.radius_count(q, radius), want_radius.len());

        let want_hybrid = brute(points, q, radius * radius, max_nn);
        tree.hybrid(q, radius, max_nn, &mut out);
        prop_assert_eq!(&out, &want_hybrid, "hybrid r={} max_nn={}", radius, max_nn);

        prop_assert_eq!(
            tree.nearest(q),
            brute(points, q, f64::INFINITY, 1).first().copied()
        );
        prop_assert_eq!(
            tree.nearest_within(q, radius),
            brute(points, q, radius * radius, 1).first().copied()
        );
    }

    // Hinted nearest search equals the plain one whatever the hint: none,
    // the answer of a neighbouring query (the ICP case), or a stale one.
    let mut hint = SearchHint::default();
    for q in qs.iter().chain(qs.iter().rev()) {
        let want = brute(points, q, radius * radius, 1).first().copied();
        let before = hint;
        prop_assert_eq!(tree.nearest_within_hinted(q, radius, &mut hint), want);
        if want.is_none() {
            prop_assert_eq!(hint, before, "a miss leaves the hint unchanged");
        }
        let mut fresh = SearchHint::default();
        prop_assert_eq!(tree.nearest_within_hinted(q, radius, &mut fresh), want);
    }

    // Searches started in a leaf equal brute force, whatever the leaf: the
    // query's own (the *_all and normals case), another one, or none.
    let order: Vec<usize> = tree.tree_order().collect();
    let n = points.len();
    for (position, &i) in order.iter().enumerate() {
        let q = &points[i];
        let want_hybrid = brute(points, q, radius * radius, max_nn);
        let want_radius = brute(points, q, radius * radius, usize::MAX);
        for hint in [
            tree.hint_at(position),
            tree.hint_at((position * 7 + 3) % n),
            tree.hint_at(n),
        ] {
            tree.hybrid_hinted(q, radius, max_nn, &hint, &mut out);
            prop_assert_eq!(&out, &want_hybrid, "hinted hybrid at {}", position);
            tree.radius_unsorted_hinted(q, radius, &hint, &mut out);
            prop_assert_eq!(sorted(out.clone()), want_radius.clone());
        }
    }
    for q in &qs {
        let hint = tree.hint_at(n / 2);
        tree.hybrid_hinted(q, f64::INFINITY, k, &hint, &mut out);
        prop_assert_eq!(&out, &brute(points, q, f64::INFINITY, k), "hinted knn");
    }

    // Batches equal the single queries, in query order.
    let knn = tree.knn_batch(&qs, k);
    let radius_b = tree.radius_batch(&qs, radius);
    let hybrid = tree.hybrid_batch(&qs, radius, max_nn);
    prop_assert_eq!(knn.len(), qs.len());
    for (i, q) in qs.iter().enumerate() {
        prop_assert_eq!(knn.get(i), &brute(points, q, f64::INFINITY, k)[..]);
        prop_assert_eq!(
            radius_b.get(i),
            &brute(points, q, radius * radius, usize::MAX)[..]
        );
        prop_assert_eq!(
            hybrid.get(i),
            &brute(points, q, radius * radius, max_nn)[..]
        );
    }

    // The *_all variants equal the batches over the input points.
    prop_assert_eq!(tree.knn_all(k), tree.knn_batch(points, k));
    prop_assert_eq!(tree.radius_all(radius), tree.radius_batch(points, radius));
    prop_assert_eq!(
        tree.hybrid_all(radius, max_nn),
        tree.hybrid_batch(points, radius, max_nn)
    );
    let counts = tree.radius_counts_all(radius);
    let radius_all = tree.radius_all(radius);
    for (i, &c) in counts.iter().enumerate() {
        prop_assert_eq!(c, radius_all.get(i).len());
    }

    // search_batch_into hands over the rows of search_batch.
    for queries in [Queries::All, Queries::Points(&qs)] {
        for search in [
            Search::Knn { k },
            Search::Radius { radius },
            Search::Hybrid { radius, max_nn },
        ] {
            let want = tree.search_batch(queries, search);
            let mut rows = vec![Vec::new(); want.len()];
            let handles: Vec<&mut Vec<Neighbor>> = rows.iter_mut().collect();
            tree.search_batch_into(queries, search, handles, |row, out| **out = row.to_vec())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (i, row) in rows.iter().enumerate() {
                prop_assert_eq!(&row[..], want.get(i), "{:?} query {}", search, i);
            }
        }
    }
    let wrong_len = vec![0usize; qs.len() + 1];
    let refused = tree.search_batch_into(
        Queries::Points(&qs),
        Search::Knn { k },
        wrong_len,
        |_, _| (),
    );
    prop_assert!(
        refused.is_err(),
        "a row count other than the query count is refused"
    );
    Ok(())
}

fn check_invariants(points: &[Point3<f64>], leaf_size: usize) -> Result<(), TestCaseError> {
    let config = KdTreeConfig {
        leaf_size,
        parallel_min_points: 64,
    };
    let tree =
        KdTree::build_with(points, &config).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut seen = vec![0u32; points.len()];
    for leaf in tree.leaves() {
        prop_assert!(leaf.indices.len() <= leaf_size);
        for &i in leaf.indices {
            let p = points[i as usize];
            seen[i as usize] += 1;
            for a in 0..3 {
                prop_assert!(leaf.lo[a] <= p[a] && p[a] <= leaf.hi[a]);
            }
        }
    }
    prop_assert!(
        seen.iter().all(|&c| c == 1),
        "every point in exactly one leaf"
    );
    let order: Vec<usize> = tree.tree_order().collect();
    let mut check = order.clone();
    check.sort_unstable();
    prop_assert_eq!(check, (0..points.len()).collect::<Vec<_>>());
    if !points.is_empty() {
        let n = points.len();
        let leaves_needed = n.div_ceil(leaf_size);
        prop_assert_eq!(
            tree.tree_height(),
            1 + leaves_needed.next_power_of_two().trailing_zeros() as usize
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn queries_equal_brute_force(
        points in any_cloud(),
        extra in prop::collection::vec((coord(), coord(), coord()), 0..6),
        leaf_size in 1usize..20,
        k in 0usize..25,
        radius in prop_oneof![Just(0.0), 0.0..3.0f64, 0.0..30.0f64, Just(1.0)],
        max_nn in 0usize..30,
    ) {
        check_against_brute(&points, &extra, leaf_size, k, radius, max_nn)?;
    }

    #[test]
    fn knn_larger_than_cloud_returns_everything(
        points in prop::collection::vec((coord(), coord(), coord()), 0..60)
            .prop_map(|v| v.into_iter().map(|(x, y, z)| Point3::new(x, y, z)).collect::<Vec<_>>()),
        leaf_size in 1usize..10,
    ) {
        check_against_brute(&points, &[], leaf_size, points.len() + 5, 1e9, points.len() + 1)?;
    }

    #[test]
    fn tree_invariants_hold(points in any_cloud(), leaf_size in 1usize..20) {
        check_invariants(&points, leaf_size)?;
    }

    #[test]
    fn tree_is_identical_at_one_and_two_threads(points in any_cloud(), leaf_size in 1usize..12) {
        let config = KdTreeConfig { leaf_size, parallel_min_points: 2 };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let tree = KdTree::build_with(&points, &config).unwrap();
                let knn = tree.knn_all(5);
                let hybrid = tree.hybrid_all(2.0, 7);
                (tree, knn, hybrid)
            })
        };
        let one = run(1);
        let two = run(2);
        prop_assert!(one == two);
    }
}

#[test]
fn thousands_of_duplicates_do_not_blow_up() {
    let mut points = vec![Point3::new(1.0, 2.0, 3.0); 20_000];
    points.push(Point3::new(1.0, 2.0, 4.0));
    let tree = KdTree::build_with(
        &points,
        &KdTreeConfig {
            leaf_size: 4,
            parallel_min_points: 1024,
        },
    )
    .unwrap();
    assert_eq!(tree.tree_height(), 14);
    let mut out = Vec::new();
    tree.knn(&Point3::new(1.0, 2.0, 3.0), 3, &mut out);
    assert_eq!(
        out.iter().map(|n| n.index).collect::<Vec<_>>(),
        [0, 1, 2],
        "ties by index"
    );
    assert_eq!(tree.radius_count(&Point3::new(1.0, 2.0, 3.0), 0.0), 20_000);
    assert_eq!(
        tree.nearest(&Point3::new(1.0, 2.0, 5.0)).unwrap().index,
        20_000
    );
}

#[test]
fn non_finite_input_is_rejected() {
    let points = [Point3::new(0.0, 0.0, 0.0), Point3::new(f64::NAN, 0.0, 0.0)];
    match KdTree::build(&points) {
        Err(crate::Error::NonFinite { index, .. }) => assert_eq!(index, 1),
        other => panic!("expected NonFinite, got {other:?}"),
    }
    let points = [Point3::new(0.0, f64::INFINITY, 0.0)];
    assert!(matches!(
        KdTree::build(&points),
        Err(crate::Error::NonFinite { index: 0, .. })
    ));
}

#[test]
fn zero_leaf_size_is_rejected() {
    let config = KdTreeConfig {
        leaf_size: 0,
        ..Default::default()
    };
    assert!(matches!(
        KdTree::build_with(&[Point3::origin()], &config),
        Err(crate::Error::InvalidParameter {
            name: "leaf_size",
            ..
        })
    ));
}

#[test]
fn empty_tree_finds_nothing() {
    let tree = KdTree::build(&[]).unwrap();
    assert!(tree.is_empty());
    assert_eq!(tree.tree_height(), 0);
    let q = Point3::new(1.0, 2.0, 3.0);
    let mut out = vec![Neighbor {
        index: 7,
        distance_sq: 1.0,
    }];
    assert_eq!(tree.nearest(&q), None);
    tree.knn(&q, 3, &mut out);
    assert!(out.is_empty());
    tree.radius(&q, 10.0, &mut out);
    assert!(out.is_empty());
    assert_eq!(tree.radius_count(&q, 10.0), 0);
    let batch = tree.knn_batch(&[q, q], 4);
    assert_eq!(batch.len(), 2);
    assert!(batch.get(1).is_empty());
    assert!(tree.knn_all(3).is_empty());
    assert!(tree.radius_counts_all(1.0).is_empty());
    assert_eq!(tree.leaves().count(), 0);
}

#[test]
fn negative_nan_and_zero_radius() {
    let points = [Point3::new(0.0, 0.0, 0.0), Point3::new(1.0, 0.0, 0.0)];
    let tree = KdTree::build(&points).unwrap();
    let mut out = Vec::new();
    tree.radius(&Point3::origin(), -1.0, &mut out);
    assert!(out.is_empty());
    tree.radius(&Point3::origin(), f64::NAN, &mut out);
    assert!(out.is_empty());
    tree.radius(&Point3::origin(), 0.0, &mut out);
    assert_eq!(out.len(), 1);
    tree.hybrid(&Point3::origin(), 1.0, 1, &mut out);
    assert_eq!(out[0].index, 0);
    assert_eq!(tree.nearest_within(&Point3::new(5.0, 0.0, 0.0), 3.9), None);
    assert_eq!(
        tree.nearest_within(&Point3::new(5.0, 0.0, 0.0), 4.0),
        Some(Neighbor {
            index: 1,
            distance_sq: 16.0
        })
    );
    let nan = Point3::new(f64::NAN, 0.0, 0.0);
    tree.knn(&nan, 2, &mut out);
    assert!(out.is_empty(), "a NaN query finds nothing");
    assert_eq!(tree.nearest(&nan), None);
    let batch = tree.knn_batch(&[Point3::origin(), nan, Point3::origin()], 1);
    assert_eq!(batch.offsets, [0, 1, 1, 2]);
    assert_eq!(batch.get(2)[0].index, 0);
}

#[test]
fn distance_matches_nalgebra_norm_squared() {
    let points: Vec<Point3<f64>> = (0..500)
        .map(|i| {
            let t = f64::from(i);
            Point3::new((t * 0.37).sin() * 31.3, (t * 1.3).cos() * 7.1, t * 0.013)
        })
        .collect();
    let tree = KdTree::build(&points).unwrap();
    let q = Point3::new(0.123, -4.56, 2.5);
    let mut out = Vec::new();
    tree.radius(&q, 1e9, &mut out);
    for n in out {
        assert_eq!(n.distance_sq, (points[n.index] - q).norm_squared());
    }
}

#[test]
fn gather_in_place_equals_a_gather_into_a_new_buffer() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for n in [0usize, 1, 2, 3, 64, 65, 1000] {
        for round in 0..4 {
            let mut order: Vec<u32> = (0..n as u32).collect();
            if round > 0 {
                for i in (1..n).rev() {
                    order.swap(i, (next() % (i as u64 + 1)) as usize);
                }
            }
            let items: Vec<String> = (0..n).map(|i| format!("item {i}")).collect();
            let expected: Vec<String> = order.iter().map(|&i| items[i as usize].clone()).collect();
            let mut got = items;
            super::batch::gather_in_place(&mut got, &order);
            assert_eq!(got, expected, "n {n} round {round}");
        }
    }
}
