//! Incremental layers of `pointpipe serve`, against a real server with a
//! real HTTP client: `PUT /v1/layers/{name}`, `POST .../points` and
//! `DELETE .../points/{id}` are visible in the generation their 202 names
//! and not before; deleted points never appear once their tombstone is
//! accepted; the admin token is required; bad bodies are 400 problems.

mod serve_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use serve_common::Server;

const TOKEN: &str = "t0ken-for-tests";

/// The expected content of the layer: id → [lon, lat].
type Points = BTreeMap<u64, [f64; 2]>;

fn places(n: usize, seed: u64) -> Vec<[f64; 2]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| [rng.random_range(5.0..15.0), rng.random_range(40.0..50.0)])
        .collect()
}

fn write_csv(path: &Path, places: &[[f64; 2]]) {
    let mut text = String::from("lat,lon,name\n");
    for (i, [lon, lat]) in places.iter().enumerate() {
        text.push_str(&format!("{lat},{lon},f{i}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn feature_collection(places: &[[f64; 2]], prefix: &str) -> String {
    let features: Vec<Value> = places
        .iter()
        .enumerate()
        .map(|(i, &[lon, lat])| {
            serde_json::json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"name": format!("{prefix}{i}")}
            })
        })
        .collect();
    serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
}

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

/// An admin call with an optional bearer token.
fn admin(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let url = format!("{}{path}", server.base);
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match method {
        "DELETE" => {
            let mut req = agent.delete(&url);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.call()
        }
        "PUT" | "POST" => {
            let mut req = if method == "PUT" {
                agent.put(&url)
            } else {
                agent.post(&url)
            };
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            req.send(body)
        }
        other => panic!("method {other}"),
    };
    let mut r = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        body,
    }
}

/// (id, distance_m) of the `k` nearest by geodesic distance, ties by id.
fn brute(points: &Points, lon: f64, lat: f64, k: usize) -> Vec<(u64, f64)> {
    let mut v: Vec<(u64, f64)> = points
        .iter()
        .map(|(&id, p)| {
            (
                id,
                pointpipe::geo::geodesic_distance_m(lon, lat, p[0], p[1]),
            )
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

/// A kNN answer: its generation and (id, distance_m) per feature.
fn knn(server: &Server, lon: f64, lat: f64, k: usize) -> (u64, Vec<(u64, f64)>) {
    let reply = server.get(&format!("/v1/layers/fleet/knn?lon={lon}&lat={lat}&k={k}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let doc = reply.json();
    let hits = doc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["id"], f["properties"]["id"]);
            (
                f["properties"]["id"].as_u64().unwrap(),
                f["properties"]["distance_m"].as_f64().unwrap(),
            )
        })
        .collect();
    (doc["generation"].as_u64().unwrap(), hits)
}

/// Asserts that kNN answers at `queries` equal brute force over `points`
/// and name `generation`.
fn assert_exact(server: &Server, points: &Points, generation: u64, queries: &[[f64; 2]]) {
    for &[lon, lat] in queries {
        for k in [1, 10] {
            let (g, hits) = knn(server, lon, lat, k);
            assert_eq!(g, generation, "generation at ({lon}, {lat})");
            let want = brute(points, lon, lat, k);
            let got_ids: Vec<u64> = hits.iter().map(|h| h.0).collect();
            let want_ids: Vec<u64> = want.iter().map(|h| h.0).collect();
            assert_eq!(
                got_ids, want_ids,
                "k = {k} at ({lon}, {lat}), generation {g}"
            );
            for (a, b) in hits.iter().zip(&want) {
                assert!((a.1 - b.1).abs() < 1e-3, "{a:?} vs {b:?}");
            }
        }
    }
}

fn generation(server: &Server) -> u64 {
    server.get("/v1/layers").json()["layers"][0]["generation"]
        .as_u64()
        .unwrap()
}

fn wait_generation(server: &Server, g: u64) {
    let start = Instant::now();
    while generation(server) < g {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "generation {g} never published"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(generation(server), g, "went past generation {g}");
}

fn start(dir: &Path, n: usize, interval: &str, extra: &[&str]) -> (Server, Points) {
    let path = dir.join("fleet.csv");
    let initial = places(n, 1);
    write_csv(&path, &initial);
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut args = vec![
        "--layer".to_string(),
        format!("fleet={}", path.display()),
        "--admin-token-file".to_string(),
        token.display().to_string(),
        "--rebuild-interval".to_string(),
        interval.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let points = initial
        .iter()
        .enumerate()
        .map(|(i, &p)| (i as u64, p))
        .collect();
    (Server::start(&args), points)
}

#[test]
fn put_post_delete_are_visible_in_the_named_generation_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut points) = start(dir.path(), 400, "1.5", &[]);
    let queries = places(12, 99);
    assert_exact(&server, &points, 1, &queries);

    // POST three points next to query 0: pending until generation 2.
    let [qlon, qlat] = queries[0];
    let new = [
        [qlon + 0.001, qlat],
        [qlon, qlat + 0.001],
        [qlon - 0.0005, qlat],
    ];
    let r = admin(
        &server,
        "POST",
        "/v1/layers/fleet/points",
        Some(TOKEN),
        Some("application/geo+json"),
        &feature_collection(&new, "new"),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["generation"], 1);
    assert_eq!(r.body["next_generation"], 2);
    assert_eq!(r.body["ids"], serde_json::json!([400, 401, 402]));
    let before = points.clone();
    for (i, p) in new.iter().enumerate() {
        points.insert(400 + i as u64, *p);
    }
    // While pending: the old generation, exactly the old content.
    assert_exact(&server, &before, 1, &queries);
    wait_generation(&server, 2);
    assert_exact(&server, &points, 2, &queries);
    assert_eq!(knn(&server, qlon, qlat, 1).1[0].0, 402);

    // DELETE: hidden at once (the 202 names generation 2, still served),
    // gone from the index in generation 3.
    let victims: Vec<u64> = brute(&points, qlon, qlat, 3).iter().map(|h| h.0).collect();
    for &id in &victims {
        let r = admin(
            &server,
            "DELETE",
            &format!("/v1/layers/fleet/points/{id}"),
            Some(TOKEN),
            None,
            "",
        );
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["next_generation"], 3);
        points.remove(&id);
        assert_exact(&server, &points, 2, &queries);
    }
    let r = admin(
        &server,
        "DELETE",
        &format!("/v1/layers/fleet/points/{}", victims[0]),
        Some(TOKEN),
        None,
        "",
    );
    assert_eq!(r.status, 404, "deleting twice: {}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    for bad in ["100000", "400000000000"] {
        let r = admin(
            &server,
            "DELETE",
            &format!("/v1/layers/fleet/points/{bad}"),
            Some(TOKEN),
            None,
            "",
        );
        assert_eq!(r.status, 404, "{bad}: {}", r.body);
    }
    wait_generation(&server, 3);
    assert_exact(&server, &points, 3, &queries);
    let layers = server.get("/v1/layers").json();
    assert_eq!(layers["layers"][0]["points"], points.len());
    assert_eq!(layers["layers"][0]["deleted_since_build"], 0);

    // PUT a new content: ids 0..m in body order, from generation 4 on.
    let replacement = places(250, 7);
    let r = admin(
        &server,
        "PUT",
        "/v1/layers/fleet",
        Some(TOKEN),
        Some("application/geo+json"),
        &feature_collection(&replacement, "r"),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["next_generation"], 4);
    assert_eq!(r.body["points"], 250);
    assert_exact(&server, &points, 3, &queries);
    // Changes after a PUT apply to the new content (its ids, its columns):
    // CSV rows appended, a replacement point deleted.
    let r = admin(
        &server,
        "POST",
        "/v1/layers/fleet/points",
        Some(TOKEN),
        Some("text/csv"),
        &format!("lat,lon,name\n{},{},csv0\n", qlat + 0.0002, qlon),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["ids"], serde_json::json!([250]));
    assert_eq!(r.body["next_generation"], 4);
    let r = admin(
        &server,
        "DELETE",
        "/v1/layers/fleet/points/5",
        Some(TOKEN),
        None,
        "",
    );
    assert_eq!(r.status, 202, "{}", r.body);
    // The old content is untouched until the swap.
    assert_exact(&server, &points, 3, &queries);
    let mut points: Points = replacement
        .iter()
        .enumerate()
        .map(|(i, &p)| (i as u64, p))
        .collect();
    points.insert(250, [qlon, qlat + 0.0002]);
    points.remove(&5);
    wait_generation(&server, 4);
    assert_exact(&server, &points, 4, &queries);
    let doc = server
        .get(&format!("/v1/layers/fleet/knn?lon={qlon}&lat={qlat}&k=1"))
        .json();
    assert_eq!(doc["features"][0]["properties"]["name"], "csv0");
    assert_eq!(doc["features"][0]["id"], 250);
}

#[test]
fn deleted_points_never_appear_after_their_tombstone_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // Short interval: deletions race with many rebuilds.
    let (server, mut points) = start(dir.path(), 600, "0.03", &[]);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut deleted = BTreeSet::new();
    let mut generations = BTreeSet::new();
    let mut appended = 0u64;
    for round in 0..150 {
        if round % 10 == 0 {
            // Appends keep the rebuilds coming.
            let p = [rng.random_range(5.0..15.0), rng.random_range(40.0..50.0)];
            let r = admin(
                &server,
                "POST",
                "/v1/layers/fleet/points",
                Some(TOKEN),
                Some("application/json"),
                &feature_collection(&[p], "a"),
            );
            assert_eq!(r.status, 202, "{}", r.body);
            let id = r.body["ids"][0].as_u64().unwrap();
            assert_eq!(id, 600 + appended);
            appended += 1;
            points.insert(id, p);
        }
        // Delete the point nearest to a random place (maybe a pending one).
        let (lon, lat) = (rng.random_range(5.0..15.0), rng.random_range(40.0..50.0));
        let id = brute(&points, lon, lat, 1)[0].0;
        let r = admin(
            &server,
            "DELETE",
            &format!("/v1/layers/fleet/points/{id}"),
            Some(TOKEN),
            None,
            "",
        );
        assert_eq!(r.status, 202, "{}", r.body);
        points.remove(&id);
        deleted.insert(id);
        let (g, hits) = knn(&server, lon, lat, 20);
        generations.insert(g);
        assert_eq!(hits.len(), 20);
        for h in &hits {
            assert!(
                !deleted.contains(&h.0),
                "deleted id {} in generation {g}",
                h.0
            );
        }
        let within = server
            .get(&format!(
                "/v1/layers/fleet/radius?lon={lon}&lat={lat}&radius_m=50000"
            ))
            .json();
        for f in within["features"].as_array().unwrap() {
            let id = f["id"].as_u64().unwrap();
            assert!(!deleted.contains(&id), "deleted id {id} in a radius answer");
        }
    }
    assert!(
        generations.len() > 3,
        "the deletions should span rebuilds: {generations:?}"
    );
    // Once idle, the last generation is exact.
    let start = Instant::now();
    loop {
        let layers = server.get("/v1/layers").json();
        let layer = &layers["layers"][0];
        if layer["changes_pending"] == false && layer["reloading"] == false {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    let g = generation(&server);
    assert_exact(&server, &points, g, &places(20, 3));
}

#[test]
fn admin_routes_refuse_a_missing_or_wrong_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.csv");
    write_csv(&path, &places(50, 1));
    let body = feature_collection(&[[10.0, 45.0]], "x");
    let routes = [
        ("PUT", "/v1/layers/fleet"),
        ("POST", "/v1/layers/fleet/points"),
        ("DELETE", "/v1/layers/fleet/points/3"),
    ];
    // No token configured: disabled.
    let open = Server::start(&["--layer", &format!("fleet={}", path.display())]);
    for (method, route) in routes {
        for token in [None, Some(TOKEN)] {
            let r = admin(&open, method, route, token, Some("application/json"), &body);
            assert_eq!(r.status, 403, "{method} {route}");
            assert_eq!(r.content_type, "application/problem+json");
        }
    }
    drop(open);
    let (server, points) = start(dir.path(), 50, "0.05", &[]);
    for (method, route) in routes {
        for token in [None, Some("wrong"), Some("")] {
            let r = admin(
                &server,
                method,
                route,
                token,
                Some("application/json"),
                &body,
            );
            assert_eq!(r.status, 401, "{method} {route} with {token:?}");
            assert_eq!(r.content_type, "application/problem+json");
        }
    }
    // Nothing changed.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(generation(&server), 1);
    assert_exact(&server, &points, 1, &places(5, 4));
}

#[test]
fn malformed_bodies_are_400_problems() {
    let dir = tempfile::tempdir().unwrap();
    // A cartesian layer: a KITTI .bin of four points.
    let cloud = dir.path().join("cloud.bin");
    let bytes: Vec<u8> = (0..4)
        .flat_map(|i| [i as f32, 0.0, 0.0, 0.5])
        .flat_map(f32::to_le_bytes)
        .collect();
    std::fs::write(&cloud, bytes).unwrap();
    let cloud_arg = format!("cloud={}", cloud.display());
    let (server, points) = start(
        dir.path(),
        30,
        "0.05",
        &["--layer", &cloud_arg, "--max-body-bytes", "4000"],
    );
    let fc = |features: &str| format!(r#"{{"type":"FeatureCollection","features":[{features}]}}"#);
    let point = |coords: &str, props: &str| {
        format!(
            r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":{coords}}},"properties":{props}}}"#
        )
    };
    let json = "application/geo+json";
    let csv = "text/csv";
    let bad: Vec<(&str, &str, &str, String, u16)> = vec![
        ("POST", "/v1/layers/fleet/points", json, "{".into(), 400),
        ("POST", "/v1/layers/fleet/points", json, "[]".into(), 400),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            r#"{"type":"Point","coordinates":[1,2]}"#.into(),
            400,
        ),
        ("POST", "/v1/layers/fleet/points", json, fc(""), 400),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(&point("[200, 10]", "{}")),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(&point("[10, -91]", "{}")),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(&point("[10]", "{}")),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(
                r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]},"properties":{}}"#,
            ),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(r#"{"type":"Feature","geometry":null,"properties":{}}"#),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(&point("[10, 45]", r#"{"colour":"red"}"#)),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(&point("[10, 45]", r#"{"name":12}"#)),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            csv,
            "lat,lon,name\n45,10\n".into(),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            csv,
            "name\nx\n".into(),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            csv,
            "lat,lon\n45,abc\n".into(),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            csv,
            "lat,lon,colour\n45,10,red\n".into(),
            400,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            "text/plain",
            "lat,lon\n45,10\n".into(),
            415,
        ),
        (
            "POST",
            "/v1/layers/fleet/points",
            json,
            fc(&" ".repeat(5000)),
            413,
        ),
        ("PUT", "/v1/layers/fleet", json, "nope".into(), 400),
        (
            "PUT",
            "/v1/layers/fleet",
            json,
            fc(&point("[10, 95]", "{}")),
            400,
        ),
        (
            "PUT",
            "/v1/layers/fleet",
            csv,
            "lat,lon\n45,10\n46\n".into(),
            400,
        ),
        (
            "PUT",
            "/v1/layers/fleet",
            "application/xml",
            "<a/>".into(),
            415,
        ),
        (
            "PUT",
            "/v1/layers/nosuch",
            json,
            fc(&point("[10, 45]", "{}")),
            404,
        ),
        (
            "POST",
            "/v1/layers/nosuch/points",
            json,
            fc(&point("[10, 45]", "{}")),
            404,
        ),
        (
            "DELETE",
            "/v1/layers/nosuch/points/1",
            json,
            String::new(),
            404,
        ),
        (
            "DELETE",
            "/v1/layers/fleet/points/abc",
            json,
            String::new(),
            400,
        ),
        (
            "DELETE",
            "/v1/layers/fleet/points/-1",
            json,
            String::new(),
            400,
        ),
        (
            "DELETE",
            "/v1/layers/fleet/points/30",
            json,
            String::new(),
            404,
        ),
        (
            "PUT",
            "/v1/layers/cloud",
            json,
            fc(&point("[10, 45]", "{}")),
            409,
        ),
        (
            "POST",
            "/v1/layers/cloud/points",
            json,
            fc(&point("[10, 45]", "{}")),
            409,
        ),
        (
            "DELETE",
            "/v1/layers/cloud/points/1",
            json,
            String::new(),
            409,
        ),
    ];
    for (method, route, ct, body, status) in &bad {
        let r = admin(&server, method, route, Some(TOKEN), Some(ct), body);
        assert_eq!(
            r.status, *status,
            "{method} {route} {ct} {body:.80}: {}",
            r.body
        );
        assert_eq!(
            r.content_type, "application/problem+json",
            "{method} {route}"
        );
        assert_eq!(r.body["status"], *status);
        if *status == 400 {
            assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
            assert!(r.body["field"].is_string(), "{}", r.body);
        }
    }
    // Nothing was applied.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(generation(&server), 1);
    assert_exact(&server, &points, 1, &places(5, 4));
}
