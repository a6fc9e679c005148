//! `pointpipe serve` on the GeoNames layer (144,563 places): every kNN and
//! radius answer equals a brute-force ranking by WGS84 geodesic distance
//! (ties by id), through a real server on a loopback port.

mod common;
mod serve_common;

use std::path::Path;

use geographiclib_rs::{Geodesic, InverseGeodesic};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serve_common::Server;

const CITIES: &str = "geo/geonames-cities1000.csv";

/// A deliberately lower constant than the library's `a(1 − e²)` =
/// 6,335,439 m: the brute force trusts only `s ≥ 6,300,000 m · θ`.
const R_LOWER_M: f64 = 6_300_000.0;

struct Places {
    lon_lat: Vec<[f64; 2]>,
    unit: Vec<[f64; 3]>,
    cc: Vec<String>,
}

fn unit(lon: f64, lat: f64) -> [f64; 3] {
    let (sl, cl) = lat.to_radians().sin_cos();
    let (so, co) = lon.to_radians().sin_cos();
    [cl * co, cl * so, sl]
}

fn read_places(path: &Path) -> Places {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let mut places = Places {
        lon_lat: Vec::new(),
        unit: Vec::new(),
        cc: Vec::new(),
    };
    for record in reader.records() {
        let r = record.unwrap();
        let lat: f64 = r[0].trim().parse().unwrap();
        let lon: f64 = r[1].trim().parse().unwrap();
        places.lon_lat.push([lon, lat]);
        places.unit.push(unit(lon, lat));
        places.cc.push(r[5].to_string());
    }
    places
}

/// Angle between two unit vectors, radians (atan2 form, accurate everywhere).
fn angle(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let cross = [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ];
    let sin = (cross[0] * cross[0] + cross[1] * cross[1] + cross[2] * cross[2]).sqrt();
    let cos = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    sin.atan2(cos)
}

/// The exact top-`k` by (geodesic distance, id): every point is scanned;
/// geodesics are computed for all points whose lower bound `R_LOWER_M · θ`
/// does not exceed the k-th best geodesic distance among the `k + 50`
/// nearest by angle.
fn brute_knn(
    g: &Geodesic,
    places: &Places,
    lon: f64,
    lat: f64,
    k: usize,
    keep: &dyn Fn(usize) -> bool,
) -> Vec<(usize, f64)> {
    let q = unit(lon, lat);
    let mut by_angle: Vec<(f64, usize)> = (0..places.unit.len())
        .filter(|&i| keep(i))
        .map(|i| (angle(&q, &places.unit[i]), i))
        .collect();
    let m = (k + 50).min(by_angle.len());
    if m == 0 {
        return Vec::new();
    }
    by_angle.select_nth_unstable_by(m - 1, |a, b| a.0.total_cmp(&b.0));
    let mut first: Vec<f64> = by_angle[..m]
        .iter()
        .map(|&(_, i)| g.inverse(lat, lon, places.lon_lat[i][1], places.lon_lat[i][0]))
        .collect();
    first.sort_by(f64::total_cmp);
    let kth = first[k.min(first.len()) - 1];
    let mut ranked: Vec<(usize, f64)> = by_angle
        .iter()
        .filter(|&&(theta, _)| R_LOWER_M * theta <= kth)
        .map(|&(_, i)| {
            (
                i,
                g.inverse(lat, lon, places.lon_lat[i][1], places.lon_lat[i][0]),
            )
        })
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

/// Every point within `r` metres, by (distance, id).
fn brute_radius(g: &Geodesic, places: &Places, lon: f64, lat: f64, r: f64) -> Vec<(usize, f64)> {
    let q = unit(lon, lat);
    let mut v: Vec<(usize, f64)> = (0..places.unit.len())
        .filter(|&i| R_LOWER_M * angle(&q, &places.unit[i]) <= r)
        .map(|i| {
            (
                i,
                g.inverse(lat, lon, places.lon_lat[i][1], places.lon_lat[i][0]),
            )
        })
        .filter(|&(_, s)| s <= r)
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v
}

/// 2,000 seeded query points: near real places, uniform on the sphere,
/// within 1° of both poles, on and near the antimeridian, at lat ±89.9.
fn queries(places: &Places, n: usize) -> Vec<(f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    (0..n)
        .map(|i| match i % 10 {
            0..=3 => {
                let [lon, lat] = places.lon_lat[rng.random_range(0..places.lon_lat.len())];
                (
                    (lon + rng.random_range(-0.2..0.2)).clamp(-180.0, 180.0),
                    (lat + rng.random_range(-0.2..0.2)).clamp(-90.0, 90.0),
                )
            }
            4 => (
                rng.random_range(-180.0..=180.0),
                (rng.random_range(-1.0f64..=1.0)).asin().to_degrees(),
            ),
            5 => (
                rng.random_range(-180.0..=180.0),
                rng.random_range(89.0..=90.0),
            ),
            6 => (
                rng.random_range(-180.0..=180.0),
                rng.random_range(-90.0..=-89.0),
            ),
            7 => (
                if rng.random_bool(0.5) { 180.0 } else { -180.0 },
                rng.random_range(-70.0..=70.0),
            ),
            8 => (
                if rng.random_bool(0.5) {
                    rng.random_range(179.0..=180.0)
                } else {
                    rng.random_range(-180.0..=-179.0)
                },
                rng.random_range(-50.0..=10.0),
            ),
            _ => (
                rng.random_range(-180.0..=180.0),
                if rng.random_bool(0.5) { 89.9 } else { -89.9 },
            ),
        })
        .collect()
}

/// `(id, distance_m)` of each feature, checking the GeoJSON shape.
fn features(reply: &serve_common::Reply, places: &Places) -> Vec<(usize, f64)> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type, "application/geo+json");
    let fc: geojson::FeatureCollection =
        serde_json::from_str(&reply.body).expect("a GeoJSON FeatureCollection");
    fc.features
        .iter()
        .map(|f| {
            let props = f.properties.as_ref().expect("properties");
            let id = props["id"].as_u64().expect("id") as usize;
            assert_eq!(f.id, Some(geojson::feature::Id::Number(id.into())));
            let geojson::GeometryValue::Point { coordinates } =
                &f.geometry.as_ref().expect("geometry").value
            else {
                panic!("not a point");
            };
            assert_eq!(
                coordinates.as_slice(),
                &places.lon_lat[id][..],
                "geometry is [lon, lat]"
            );
            (id, props["distance_m"].as_f64().expect("distance_m"))
        })
        .collect()
}

fn assert_same(what: &str, got: &[(usize, f64)], want: &[(usize, f64)]) {
    let got_ids: Vec<usize> = got.iter().map(|g| g.0).collect();
    let want_ids: Vec<usize> = want.iter().map(|w| w.0).collect();
    assert_eq!(got_ids, want_ids, "{what}: ids differ from the brute force");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.1 - w.1).abs() <= 1e-3,
            "{what}: distance {} vs {}",
            g.1,
            w.1
        );
    }
}

#[test]
fn knn_and_radius_are_exact_on_geonames() {
    let Some(path) = common::shared_data(CITIES) else {
        return;
    };
    let places = read_places(&path);
    assert_eq!(places.lon_lat.len(), 144_563);
    let g = Geodesic::wgs84();
    let server = Server::start(&["--layer", &format!("cities={}", path.display())]);
    let qs = queries(&places, 2000);

    // Brute force, in parallel, once per query for k = 100 (k = 1 and 10 are its prefixes).
    let want: Vec<Vec<(usize, f64)>> = qs
        .par_iter()
        .map(|&(lon, lat)| brute_knn(&g, &places, lon, lat, 100, &|_| true))
        .collect();
    for (q, &(lon, lat)) in qs.iter().enumerate() {
        for k in [1usize, 10, 100] {
            let reply = server.get(&format!("/v1/layers/cities/knn?lon={lon}&lat={lat}&k={k}"));
            let got = features(&reply, &places);
            assert_same(
                &format!("query {q} ({lon}, {lat}) k = {k}"),
                &got,
                &want[q][..k],
            );
        }
    }

    // The first 20 queries against an exhaustive scan of every point.
    for &(lon, lat) in &qs[..20] {
        let mut all: Vec<(usize, f64)> = (0..places.lon_lat.len())
            .into_par_iter()
            .map(|i| {
                (
                    i,
                    g.inverse(lat, lon, places.lon_lat[i][1], places.lon_lat[i][0]),
                )
            })
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let reply = server.get(&format!("/v1/layers/cities/knn?lon={lon}&lat={lat}&k=100"));
        assert_same("exhaustive", &features(&reply, &places), &all[..100]);
    }

    // Radius queries: the exact set, ascending.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let radius_cases: Vec<(f64, f64, f64)> = qs[..400]
        .iter()
        .map(|&(lon, lat)| (lon, lat, rng.random_range(100.0..50_000.0)))
        .collect();
    let want: Vec<Vec<(usize, f64)>> = radius_cases
        .par_iter()
        .map(|&(lon, lat, r)| brute_radius(&g, &places, lon, lat, r))
        .collect();
    for (c, &(lon, lat, r)) in radius_cases.iter().enumerate() {
        let reply = server.get(&format!(
            "/v1/layers/cities/radius?lon={lon}&lat={lat}&radius_m={r}&limit=100000"
        ));
        let body = reply.json();
        assert_eq!(body["truncated"], false);
        assert_same(
            &format!("radius case {c}"),
            &features(&reply, &places),
            &want[c],
        );
    }
}

#[test]
fn category_knn_and_stats_equal_brute_force() {
    let Some(path) = common::shared_data(CITIES) else {
        return;
    };
    let places = read_places(&path);
    let g = Geodesic::wgs84();
    let server = Server::start(&["--layer", &format!("cities={}", path.display())]);
    let qs = queries(&places, 200);
    for (q, &(lon, lat)) in qs.iter().enumerate() {
        // kNN restricted to a category (US: common; MC: one place far from most queries).
        for cc in ["US", "MC"] {
            let want = brute_knn(&g, &places, lon, lat, 10, &|i| places.cc[i] == cc);
            let body = format!(
                r#"{{"point": {{"type": "Point", "coordinates": [{lon}, {lat}]}}, "k": 10, "category_filter": "{cc}"}}"#
            );
            let reply = server.post_json("/v1/layers/cities/knn", &body);
            assert_same(
                &format!("query {q} category {cc}"),
                &features(&reply, &places),
                &want,
            );
        }
        // Counts per country within 50 km.
        let within = brute_radius(&g, &places, lon, lat, 50_000.0);
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for &(i, _) in &within {
            *counts.entry(places.cc[i].clone()).or_default() += 1;
        }
        let reply = server.get(&format!(
            "/v1/layers/cities/stats?lon={lon}&lat={lat}&radius_m=50000&by=cc"
        ));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["count"].as_u64(), Some(within.len() as u64));
        let got: std::collections::BTreeMap<String, u64> =
            serde_json::from_value(body["counts"].clone()).unwrap();
        assert_eq!(got, counts, "stats at query {q}");
    }
}

#[test]
fn geodesic_known_answers_from_geographiclib() {
    // GeographicLib's published test cases (GeodSolve0, 76, 78), WGS84.
    let d = pointpipe::geo::geodesic_distance_m(-73.8, 40.6, 2.55, 49.01666667);
    assert!((d - 5_853_226.0).abs() < 0.5, "{d}");
    let wellington_salamanca = pointpipe::geo::geodesic_distance_m(
        174.0 + 49.0 / 60.0,
        -(41.0 + 19.0 / 60.0),
        -(5.0 + 30.0 / 60.0),
        40.0 + 58.0 / 60.0,
    );
    assert!(
        (wellington_salamanca - 19_960_543.857_179).abs() < 0.5e-6,
        "{wellington_salamanca}"
    );
    let near_antipodal = pointpipe::geo::geodesic_distance_m(0.0, 27.2, 179.5, -27.1);
    assert!(
        (near_antipodal - 19_974_354.765_767).abs() < 0.5e-6,
        "{near_antipodal}"
    );
}

#[test]
fn sphere_ellipsoid_bound_holds_on_random_pairs() {
    // R_min θ ≤ s ≤ R_max θ (docs of pointpipe::geo::MIN_RADIUS_OF_CURVATURE_M),
    // on pairs at every distance, near the poles and across the antimeridian.
    let r_min = pointpipe::geo::MIN_RADIUS_OF_CURVATURE_M;
    let r_max = pointpipe::geo::max_radius_of_curvature_m();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut worst_low: f64 = f64::INFINITY;
    for i in 0..200_000 {
        let lat1: f64 = match i % 4 {
            0 => rng.random_range(89.0..=90.0),
            1 => rng.random_range(-90.0..=-89.0),
            _ => (rng.random_range(-1.0f64..=1.0)).asin().to_degrees(),
        };
        let lon1: f64 = if i % 3 == 0 {
            180.0
        } else {
            rng.random_range(-180.0..=180.0)
        };
        let scale = [1e-6, 1e-3, 0.1, 1.0, 10.0, 90.0, 180.0][i % 7];
        let lat2 = (lat1 + rng.random_range(-scale..=scale)).clamp(-90.0, 90.0);
        let mut lon2 = lon1 + rng.random_range(-scale..=scale) * 2.0;
        if lon2 > 180.0 {
            lon2 -= 360.0;
        }
        if lon2 < -180.0 {
            lon2 += 360.0;
        }
        let s = pointpipe::geo::geodesic_distance_m(lon1, lat1, lon2, lat2);
        // θ from f64 unit vectors is off by ~1e-16 rad: a micrometre of slack.
        let theta = angle(&unit(lon1, lat1), &unit(lon2, lat2));
        assert!(
            r_min * theta <= s * (1.0 + 1e-12) + 1e-6,
            "lower bound: {lon1},{lat1} → {lon2},{lat2}: s = {s}, θ = {theta}"
        );
        assert!(
            s <= r_max * theta * (1.0 + 1e-12) + 1e-6,
            "upper bound: {lon1},{lat1} → {lon2},{lat2}: s = {s}, θ = {theta}"
        );
        if theta > 1e-6 {
            worst_low = worst_low.min(s / theta);
        }
    }
    // The lower constant is attained near the equator's meridians, not loose by much.
    assert!(worst_low < r_min * 1.0001, "{worst_low}");
}
