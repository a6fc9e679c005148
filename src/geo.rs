//! Exact proximity search on the WGS84 ellipsoid: geodesic kNN and radius
//! search over (lon, lat) points, pruned by our k-d tree.
//!
//! # Algorithm
//! Each point (geodetic latitude φ, longitude λ, degrees) is put on the unit
//! sphere as its ellipsoid surface normal `n = (cos φ cos λ, cos φ sin λ,
//! sin φ)` and indexed by a [`KdTree`]. The chord `|n1 - n2| = 2 sin(θ/2)` is
//! monotonic in the angle θ between the normals, so the 3-D tree prunes
//! correctly everywhere, poles and antimeridian included.
//!
//! The answers are ranked by the geodesic distance `s` on the WGS84 ellipsoid
//! (Karney 2013, "Algorithms for geodesics", through `geographiclib-rs`).
//! The bound that links the two (proved in the docs of [`MIN_RADIUS_OF_CURVATURE_M`]):
//!
//! `R_min · θ ≤ s ≤ R_max · θ`, with `R_min = a(1 − e²)` and `R_max = a / √(1 − e²)`.
//!
//! - **kNN**: take the `k` nearest points on the sphere, compute their
//!   geodesic distances, let `D` be the largest. At least `k` points lie
//!   within `D`, so every point of the true geodesic top-`k` has `s ≤ D`,
//!   hence `θ ≤ D / R_min`. A sphere radius search with that angle (plus a
//!   relative slack of 1e-9 for rounding) gathers a superset of the answer;
//!   ranking it by `(s, index)` gives the exact top-`k`.
//! - **radius** `r`: gather `θ ≤ r / R_min` on the sphere, keep `s ≤ r`.
//!
//! Ties in distance are broken by the lower index, so answers are
//! deterministic and equal a brute-force ranking by `(s, index)`.
//!
//! Complexity: a kNN query costs one sphere kNN (O(log n + k) node visits on
//! spread data) plus one radius search whose ball holds about
//! `k · (R_max / R_min)² ≈ 1.02 k` points, each costing one geodesic inverse
//! (about a microsecond). With a category filter, the sphere kNN is repeated
//! with 4× larger `k` until `k` matching points are found (O(n) when the
//! category is rare).
//!
//! # Example
//! ```
//! use pointpipe::geo::GeoIndex;
//!
//! // Paris, London, New York as [lon, lat] (RFC 7946 order).
//! let index = GeoIndex::build(vec![[2.3522, 48.8566], [-0.1276, 51.5072], [-74.006, 40.7128]])?;
//! let mut out = Vec::new();
//! index.knn(-0.1, 51.5, 2, None, None, &mut out);
//! assert_eq!(out[0].index, 1); // London first
//! assert_eq!(out[1].index, 0); // then Paris
//! assert!((out[1].distance_m - 342_000.0).abs() < 5_000.0);
//! # Ok::<(), pointpipe::Error>(())
//! ```

use geographiclib_rs::{Geodesic, InverseGeodesic};
use nalgebra::Point3;

use crate::error::{Error, Result};
use crate::kdtree::{Gathered, KdTree, KdTreeConfig, QueryStats};

/// WGS84 semi-major axis `a`, metres.
pub const WGS84_A: f64 = 6_378_137.0;
/// WGS84 flattening `f`.
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;
const WGS84_E2: f64 = WGS84_F * (2.0 - WGS84_F);

/// The smallest radius of curvature of the WGS84 ellipsoid, `a(1 − e²)`
/// (the meridional radius at the equator), ≈ 6,335,439 m.
///
/// **Bound.** For any two points with surface normals at angle θ and
/// geodesic distance `s`: `R_min θ ≤ s ≤ R_max θ`. Proof: along any curve on
/// the surface, the normal turns at a rate `|dn/ds|` of at most the largest
/// principal curvature `1 / R_min`, so the normal's path on the unit sphere,
/// which is at least θ long, is at most `s / R_min` long. Conversely the
/// ellipsoid is strictly convex, so the inverse of the normal (Gauss) map
/// takes the great-circle arc from `n1` to `n2` (length θ) to a curve
/// joining the two points of length at most `R_max θ`, which bounds the
/// geodesic. Tested on random pairs, poles and antimeridian included
/// (`tests/geo_bound.rs`).
pub const MIN_RADIUS_OF_CURVATURE_M: f64 = WGS84_A * (1.0 - WGS84_E2);

/// The largest radius of curvature of the WGS84 ellipsoid, `a / √(1 − e²)`
/// (at the poles), ≈ 6,399,594 m. See [`MIN_RADIUS_OF_CURVATURE_M`].
pub fn max_radius_of_curvature_m() -> f64 {
    WGS84_A / (1.0 - WGS84_E2).sqrt()
}

/// Relative slack added to the candidate angle, far above the rounding of
/// the geodesic (nanometres) and of the chord (1e-16).
const SLACK: f64 = 1e-9;

/// The surface normal of the WGS84 ellipsoid at geodetic (`lon`, `lat`)
/// degrees, a unit vector: `(cos φ cos λ, cos φ sin λ, sin φ)`.
pub fn unit_vector(lon: f64, lat: f64) -> Point3<f64> {
    let (sin_lat, cos_lat) = lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = lon.to_radians().sin_cos();
    Point3::new(cos_lat * cos_lon, cos_lat * sin_lon, sin_lat)
}

/// Geodesic distance on WGS84 between (`lon1`, `lat1`) and (`lon2`, `lat2`)
/// (degrees), metres: Karney's algorithm via `geographiclib-rs`, accurate to
/// about 15 nm. The argument order is that of every query here (query
/// first), so results are bit-identical to [`GeoIndex`]'s.
pub fn geodesic_distance_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    static WGS84: std::sync::LazyLock<Geodesic> = std::sync::LazyLock::new(Geodesic::wgs84);
    WGS84.inverse(lat1, lon1, lat2, lon2)
}

/// Checks that `lon` is in [-180, 180] and `lat` in [-90, 90] (degrees).
///
/// # Errors
/// [`Error::InvalidParameter`] naming `lon` or `lat` when out of range or
/// not finite.
pub fn check_lon_lat(lon: f64, lat: f64) -> Result<()> {
    if !(-180.0..=180.0).contains(&lon) {
        return Err(Error::invalid("lon", lon, "must be in [-180, 180] degrees"));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(Error::invalid("lat", lat, "must be in [-90, 90] degrees"));
    }
    Ok(())
}

/// The chord on the unit sphere that covers every point within `distance_m`
/// metres of geodesic distance (the bound of [`MIN_RADIUS_OF_CURVATURE_M`]).
fn chord_covering(distance_m: f64) -> f64 {
    let theta = distance_m / MIN_RADIUS_OF_CURVATURE_M * (1.0 + SLACK) + SLACK;
    if theta >= std::f64::consts::PI {
        2.0 + SLACK
    } else {
        2.0 * (theta / 2.0).sin() * (1.0 + SLACK)
    }
}

/// Leaf size of the k-d tree of a [`GeoIndex`]: twice the default, which
/// halves the nodes (the index's memory bound) while a kNN query's cost is
/// dominated by its geodesics (`docs/performance.md`, "Index memory").
pub const LEAF_SIZE: usize = 64;

/// One answer of a geographic query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoNeighbor {
    /// Index of the point in the slice the index was built from.
    pub index: usize,
    /// Geodesic distance on WGS84 from the query, metres.
    pub distance_m: f64,
}

/// Work done by one geographic query: the index's health figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeoQueryStats {
    /// k-d tree nodes entered, all passes together.
    pub nodes_visited: u64,
    /// Geodesic distances computed (the candidates ranked exactly).
    pub geodesics: u64,
}

/// A geographic point index: (lon, lat) in degrees on WGS84, exact geodesic
/// kNN and radius search. See the [module docs](self).
///
/// Memory: 16 bytes per point for the coordinates plus the k-d tree over
/// the unit vectors (28 bytes per point and 60 per node, [`LEAF_SIZE`]
/// points per leaf at most, so fewer than `4 ⌈n / 64⌉` nodes): under 48 bytes
/// per point plus a fixed 192 bytes of padding for large `n`.
#[derive(Debug)]
pub struct GeoIndex {
    lon_lat: Vec<[f64; 2]>,
    tree: KdTree,
    geodesic: Geodesic,
}

impl GeoIndex {
    /// Builds the index over `lon_lat` (`[lon, lat]` degrees, RFC 7946 order).
    ///
    /// Complexity: O(n log n), the k-d tree build, in parallel.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first point whose longitude is
    /// outside [-180, 180] or latitude outside [-90, 90] (or not finite).
    pub fn build(mut lon_lat: Vec<[f64; 2]>) -> Result<GeoIndex> {
        let bad = lon_lat
            .iter()
            .position(|&[lon, lat]| check_lon_lat(lon, lat).is_err());
        if let Some(i) = bad {
            let [lon, lat] = lon_lat[i];
            check_lon_lat(lon, lat).map_err(|e| e.in_context(format_args!("point {i}")))?;
        }
        crate::pace::checkpoint();
        let mut on_sphere: Vec<Point3<f64>> = Vec::with_capacity(lon_lat.len());
        for chunk in lon_lat.chunks(4096) {
            on_sphere.extend(chunk.iter().map(|&[lon, lat]| unit_vector(lon, lat)));
            crate::pace::checkpoint();
        }
        let config = KdTreeConfig {
            leaf_size: LEAF_SIZE,
            ..KdTreeConfig::default()
        };
        let tree = KdTree::build_with(&on_sphere, &config)?;
        crate::pace::checkpoint();
        lon_lat.shrink_to_fit();
        Ok(GeoIndex {
            lon_lat,
            tree,
            geodesic: Geodesic::wgs84(),
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.lon_lat.len()
    }

    /// True when the index holds no points.
    pub fn is_empty(&self) -> bool {
        self.lon_lat.is_empty()
    }

    /// The `[lon, lat]` of point `i`, degrees, exactly as given to
    /// [`GeoIndex::build`].
    ///
    /// # Panics
    /// When `i >= self.len()` (a programming error).
    pub fn lon_lat(&self, i: usize) -> [f64; 2] {
        self.lon_lat[i]
    }

    /// Heap bytes held by the index (coordinates and tree, allocated
    /// capacity).
    pub fn heap_bytes(&self) -> usize {
        self.lon_lat.capacity() * size_of::<[f64; 2]>() + self.tree.heap_bytes()
    }

    /// The k-d tree over the unit-sphere points (for its height and size).
    pub fn tree(&self) -> &KdTree {
        &self.tree
    }

    /// Geodesic distance on WGS84 from (`lon`, `lat`) to point `i`, metres.
    pub fn distance_m(&self, lon: f64, lat: f64, i: usize) -> f64 {
        let [plon, plat] = self.lon_lat[i];
        self.geodesic.inverse(lat, lon, plat, plon)
    }

    /// The `k` points nearest to (`lon`, `lat`) by geodesic distance on
    /// WGS84, ascending by `(distance_m, index)`, into `out` (cleared first).
    ///
    /// Parameters: `max_radius_m` drops answers farther than that (inclusive
    /// bound); `filter` keeps only the points for which it returns true (a
    /// category). Fewer than `k` answers when fewer points qualify; none for
    /// `k = 0` or an invalid query position.
    ///
    /// Returns the work done. Complexity: see the [module docs](self).
    pub fn knn(
        &self,
        lon: f64,
        lat: f64,
        k: usize,
        max_radius_m: Option<f64>,
        filter: Option<&dyn Fn(usize) -> bool>,
        out: &mut Vec<GeoNeighbor>,
    ) -> GeoQueryStats {
        out.clear();
        let mut stats = GeoQueryStats::default();
        if k == 0 || self.is_empty() || check_lon_lat(lon, lat).is_err() {
            return stats;
        }
        let q = unit_vector(lon, lat);
        let keep = |i: usize| filter.is_none_or(|f| f(i));
        // 1. The k nearest qualifying points on the sphere, and a few more:
        //    the covering cap of step 3 is usually among them.
        let mut tree_stats = QueryStats::ZERO;
        let Gathered {
            neighbors: mut sphere,
            covered_sq,
        } = self
            .tree
            .gather_where(&q, k, k / 4 + 4, &keep, &mut tree_stats);
        // 2. Their geodesic distances bound the answer: D = the largest.
        let mut known: Vec<GeoNeighbor> = sphere
            .iter()
            .map(|n| n.index)
            .filter(|&i| keep(i))
            .take(k)
            .map(|i| GeoNeighbor {
                index: i,
                distance_m: self.distance_m(lon, lat, i),
            })
            .collect();
        if known.is_empty() {
            stats.nodes_visited = tree_stats.nodes_visited;
            return stats;
        }
        stats.geodesics += known.len() as u64;
        let mut bound = known.iter().fold(0.0f64, |m, n| m.max(n.distance_m));
        if let Some(r) = max_radius_m {
            bound = bound.min(r);
        }
        // 3. Every point within D on the ellipsoid lies within D / R_min on
        //    the sphere: the points gathered in step 1 when the farthest of
        //    them lies beyond that cap, else a radius search.
        let chord = chord_covering(bound);
        if chord * chord >= covered_sq {
            self.tree
                .radius_with_stats(&q, chord, &mut sphere, &mut tree_stats);
        }
        known.sort_unstable_by_key(|n| n.index);
        for n in &sphere {
            if n.distance_sq > chord * chord || !keep(n.index) {
                continue;
            }
            let distance_m = match known.binary_search_by_key(&n.index, |g| g.index) {
                Ok(j) => known[j].distance_m,
                Err(_) => {
                    stats.geodesics += 1;
                    self.distance_m(lon, lat, n.index)
                }
            };
            if distance_m <= bound {
                out.push(GeoNeighbor {
                    index: n.index,
                    distance_m,
                });
            }
        }
        // 4. Rank exactly by (geodesic distance, index).
        sort_geo(out);
        out.truncate(k);
        stats.nodes_visited = tree_stats.nodes_visited;
        stats
    }

    /// Every point within `radius_m` metres (inclusive) of geodesic distance
    /// from (`lon`, `lat`), ascending by `(distance_m, index)`, into `out`
    /// (cleared first). Nothing for a negative or NaN radius or an invalid
    /// query position.
    ///
    /// Returns the work done. Complexity: one sphere radius search plus one
    /// geodesic per point in the covering cap (about 1.02× the answer).
    pub fn radius(
        &self,
        lon: f64,
        lat: f64,
        radius_m: f64,
        out: &mut Vec<GeoNeighbor>,
    ) -> GeoQueryStats {
        out.clear();
        let mut stats = GeoQueryStats::default();
        if radius_m.is_nan() || radius_m < 0.0 || check_lon_lat(lon, lat).is_err() {
            return stats;
        }
        let q = unit_vector(lon, lat);
        let mut tree_stats = QueryStats::ZERO;
        let mut sphere = Vec::new();
        self.tree
            .radius_with_stats(&q, chord_covering(radius_m), &mut sphere, &mut tree_stats);
        stats.geodesics = sphere.len() as u64;
        out.extend(sphere.iter().filter_map(|n| {
            let distance_m = self.distance_m(lon, lat, n.index);
            (distance_m <= radius_m).then_some(GeoNeighbor {
                index: n.index,
                distance_m,
            })
        }));
        sort_geo(out);
        stats.nodes_visited = tree_stats.nodes_visited;
        stats
    }
}

/// Sorts by `(distance_m, index)`.
fn sort_geo(v: &mut [GeoNeighbor]) {
    v.sort_unstable_by(|a, b| {
        a.distance_m
            .total_cmp(&b.distance_m)
            .then(a.index.cmp(&b.index))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radii_of_curvature_match_wgs84() {
        assert!((MIN_RADIUS_OF_CURVATURE_M - 6_335_439.327).abs() < 1e-3);
        assert!((max_radius_of_curvature_m() - 6_399_593.626).abs() < 1e-3);
    }

    #[test]
    fn unit_vector_is_unit_and_poles_are_axes() {
        let n = unit_vector(123.0, -45.0);
        assert!((n.coords.norm() - 1.0).abs() < 1e-15);
        let p = unit_vector(77.0, 90.0);
        assert!((p.z - 1.0).abs() < 1e-15 && p.x.abs() < 1e-15);
    }

    #[test]
    fn antimeridian_neighbours_are_found_across_it() {
        let index = GeoIndex::build(vec![[179.99, 0.0], [-179.99, 0.0], [170.0, 0.0]]).unwrap();
        let mut out = Vec::new();
        index.knn(180.0, 0.0, 2, None, None, &mut out);
        let ids: Vec<usize> = out.iter().map(|n| n.index).collect();
        assert_eq!(ids, [0, 1]); // equal distances: ties by index
        assert_eq!(out[0].distance_m, out[1].distance_m);
    }

    #[test]
    fn filter_and_max_radius() {
        let pts: Vec<[f64; 2]> = (0..100).map(|i| [i as f64 * 0.01, 0.0]).collect();
        let index = GeoIndex::build(pts).unwrap();
        let mut out = Vec::new();
        let odd = |i: usize| i % 2 == 1;
        index.knn(0.0, 0.0, 3, None, Some(&odd), &mut out);
        assert_eq!(out.iter().map(|n| n.index).collect::<Vec<_>>(), [1, 3, 5]);
        index.knn(0.0, 0.0, 10, Some(2_500.0), None, &mut out);
        // 0.01° of longitude at the equator is about 1,113 m.
        assert_eq!(out.iter().map(|n| n.index).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn index_memory_stays_under_48_bytes_per_point() {
        // 65,537 points is the worst case of the leaf count: 2,049 → 4,096 leaves.
        for n in [65_537usize, 100_000, 144_563] {
            let mut state = 0x2545_f491_4f6c_dd1d_u64;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut lon_lat = Vec::new();
            for _ in 0..n {
                lon_lat.push([360.0 * next() - 180.0, 180.0 * next() - 90.0]);
            }
            let index = GeoIndex::build(lon_lat).unwrap();
            let per_point = index.heap_bytes() as f64 / n as f64;
            assert!(per_point <= 48.0, "{n} points: {per_point:.2} B/point");
        }
    }

    #[test]
    fn bad_points_are_refused() {
        assert!(GeoIndex::build(vec![[0.0, 91.0]]).is_err());
        assert!(GeoIndex::build(vec![[f64::NAN, 0.0]]).is_err());
    }
}
