//! The HTTP contract of `pointpipe serve`: the PostGIS API's POST body, a
//! table of bad inputs and their documented statuses with problem bodies,
//! random query strings and bodies that never get a 500 or a dropped
//! connection, batch answers, readiness, and startup errors.

mod common;
mod serve_common;

use std::io::Write;
use std::process::Command;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serve_common::{Server, enc};

const CITIES: &str = "geo/geonames-cities1000.csv";
const KITTI: &str = "kitti-raw-hdl64-5frames/0000000000.bin";

fn cities_server() -> Option<Server> {
    let cities = common::shared_data(CITIES)?;
    let kitti = common::shared_data(KITTI)?;
    Some(Server::start(&[
        "--layer",
        &format!("cities={}", cities.display()),
        "--layer",
        &format!("frame={}", kitti.display()),
    ]))
}

#[test]
fn post_knn_seed_contract() {
    let Some(server) = cities_server() else {
        return;
    };
    let body = r#"{"point": {"type": "Point", "coordinates": [-122.4194, 37.7749]}, "k": 10, "max_radius_meters": 5000, "category_filter": "US"}"#;
    let reply = server.post_json("/v1/layers/cities/knn", body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type, "application/geo+json");
    let doc = reply.json();
    assert_eq!(doc["type"], "FeatureCollection");
    assert_eq!(doc["generation"], 1);
    assert!(doc["nodes_visited"].as_u64().unwrap() > 0);
    assert!(doc["took_us"].is_u64());
    let features = doc["features"].as_array().unwrap();
    assert!(!features.is_empty() && features.len() <= 10);
    let mut last = 0.0;
    for f in features {
        let p = &f["properties"];
        assert_eq!(p["cc"], "US");
        let d = p["distance_m"].as_f64().unwrap();
        assert!(d <= 5000.0 && d >= last);
        last = d;
        assert_eq!(f["id"], p["id"]);
        assert!(p["name"].is_string() && p["admin1"].is_string());
    }
    // The GET form gives the same features.
    let get = server
        .get("/v1/layers/cities/knn?lon=-122.4194&lat=37.7749&k=10&max_radius_m=5000&category=US");
    assert_eq!(get.json()["features"], doc["features"]);
    // An absent category value matches nothing (not an error).
    let none = server.post_json(
        "/v1/layers/cities/knn",
        r#"{"point": {"type": "Point", "coordinates": [0, 0]}, "k": 3, "category_filter": "ZZ"}"#,
    );
    assert_eq!(none.status, 200);
    assert_eq!(none.json()["features"].as_array().unwrap().len(), 0);
}

#[test]
fn layers_health_and_readiness() {
    let Some(server) = cities_server() else {
        return;
    };
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/readyz").status, 200);
    let layers = server.get("/v1/layers").json();
    let cities = &layers["layers"][0];
    assert_eq!(cities["name"], "cities");
    assert_eq!(cities["kind"], "geographic");
    assert_eq!(cities["points"], 144_563);
    assert_eq!(cities["crs"], "EPSG:4326");
    assert_eq!(cities["generation"], 1);
    let bbox: Vec<f64> = serde_json::from_value(cities["bbox"].clone()).unwrap();
    assert_eq!(bbox.len(), 4);
    assert!(
        bbox[0] < -179.0 && bbox[2] > 179.0,
        "both sides of the antimeridian: {bbox:?}"
    );
    let height = cities["tree_height"].as_u64().unwrap() as f64;
    let log2_n = cities["log2_n"].as_f64().unwrap();
    assert!((log2_n - 144_563f64.log2()).abs() < 1e-9);
    assert!(
        height <= log2_n,
        "balanced tree: height {height} vs log2 n {log2_n}"
    );
    let index_bytes = cities["index_bytes"].as_f64().unwrap();
    assert!(
        index_bytes / 144_563.0 <= 48.0,
        "index memory {:.1} B/point",
        index_bytes / 144_563.0
    );
    let frame = &layers["layers"][1];
    assert_eq!(frame["kind"], "cartesian");
    assert_eq!(frame["bbox"].as_array().unwrap().len(), 6);
}

/// One bad request: method, path, content type, body, expected status and
/// (for 400) the field named.
struct Case {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: String,
    status: u16,
    field: Option<&'static str>,
}

fn get(path: &str, status: u16, field: Option<&'static str>) -> Case {
    Case {
        method: "GET",
        path: path.to_string(),
        content_type: None,
        body: String::new(),
        status,
        field,
    }
}

fn post(path: &str, body: &str, status: u16, field: Option<&'static str>) -> Case {
    Case {
        method: "POST",
        path: path.to_string(),
        content_type: Some("application/json"),
        body: body.to_string(),
        status,
        field,
    }
}

#[test]
fn bad_inputs_get_documented_status_and_problem_body() {
    let Some(server) = cities_server() else {
        return;
    };
    let knn = "/v1/layers/cities/knn";
    let q = |s: &str| format!("{knn}?{s}");
    let pt = |coords: &str, rest: &str| {
        format!(r#"{{"point": {{"type": "Point", "coordinates": {coords}}}{rest}}}"#)
    };
    let many: Vec<String> = (0..10_001)
        .map(|_| r#"{"lon":0,"lat":0,"k":1}"#.to_string())
        .collect();
    let many = format!("[{}]", many.join(","));
    let cases = vec![
        get(&q("lon=0&lat=0&k=0"), 400, Some("k")),
        get(&q("lon=0&lat=0&k=101"), 400, Some("k")),
        get(&q("lon=0&lat=0&k=-1"), 400, Some("k")),
        get(&q("lon=0&lat=0&k=abc"), 400, Some("k")),
        get(&q("lon=0&lat=0&k=1.5"), 400, Some("k")),
        get(&q("lon=0&lat=91&k=1"), 400, Some("lat")),
        get(&q("lon=0&lat=-90.0001&k=1"), 400, Some("lat")),
        get(&q("lon=180.5&lat=0&k=1"), 400, Some("lon")),
        get(&q("lon=-181&lat=0&k=1"), 400, Some("lon")),
        get(&q("lon=0&lat=NaN&k=1"), 400, Some("lat")),
        get(&q("lon=inf&lat=0&k=1"), 400, Some("lon")),
        get(&q("lon=0&k=1"), 400, Some("lat")),
        get(&q("lat=0&k=1"), 400, Some("lon")),
        get(&q("lon=0&lat=0&lat=1&k=1"), 400, Some("lat")),
        get(&q("lon=0&lat=0&k=1&foo=1"), 400, Some("foo")),
        get(&q("lon=0&lat=0&k=1&x=1"), 400, Some("x")),
        get(&q("lon=0&lat=0&max_radius_m=0"), 400, Some("max_radius_m")),
        get(&q("lon=0&lat=0&max_radius_m=-5"), 400, Some("max_radius_m")),
        get(
            &q("lon=0&lat=0&max_radius_m=50001"),
            400,
            Some("max_radius_m"),
        ),
        get(
            &q("lon=0&lat=0&max_radius_m=nan"),
            400,
            Some("max_radius_m"),
        ),
        get(&q("lon=&lat=0"), 400, Some("lon")),
        get(
            "/v1/layers/cities/radius?lon=0&lat=0",
            400,
            Some("radius_m"),
        ),
        get(
            "/v1/layers/cities/radius?lon=0&lat=0&radius_m=0",
            400,
            Some("radius_m"),
        ),
        get(
            "/v1/layers/cities/radius?lon=0&lat=0&radius_m=1e9",
            400,
            Some("radius_m"),
        ),
        get(
            "/v1/layers/cities/radius?lon=0&lat=0&radius_m=10&limit=0",
            400,
            Some("limit"),
        ),
        get(
            "/v1/layers/cities/radius?lon=0&lat=0&radius_m=10&limit=x",
            400,
            Some("limit"),
        ),
        get(
            "/v1/layers/cities/stats?lon=0&lat=0&radius_m=10&by=nosuch",
            400,
            Some("by"),
        ),
        get(
            "/v1/layers/cities/stats?lon=0&lat=0&radius_m=-1&by=cc",
            400,
            Some("radius_m"),
        ),
        get("/v1/layers/frame/knn?lon=0&lat=0", 400, Some("lat")),
        get("/v1/layers/frame/knn?x=0&y=0", 400, Some("z")),
        get(
            "/v1/layers/frame/knn?x=0&y=0&z=0&category=a",
            400,
            Some("category"),
        ),
        post(knn, r#"{"point":"#, 400, Some("body")),
        post(knn, r#"[1, 2]"#, 400, Some("body")),
        post(knn, r#"{"k": 3}"#, 400, Some("point")),
        post(
            knn,
            r#"{"point": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}"#,
            400,
            Some("point"),
        ),
        post(knn, r#"{"point": {"type": "Feature"}}"#, 400, Some("point")),
        post(knn, &pt("[200, 10]", ""), 400, Some("point.coordinates[0]")),
        post(knn, &pt("[10, -95]", ""), 400, Some("point.coordinates[1]")),
        post(knn, &pt("[10]", ""), 400, Some("point")),
        post(knn, &pt("[0, 0]", r#", "k": 0"#), 400, Some("k")),
        post(knn, &pt("[0, 0]", r#", "k": 101"#), 400, Some("k")),
        post(knn, &pt("[0, 0]", r#", "k": "10""#), 400, Some("k")),
        post(
            knn,
            &pt("[0, 0]", r#", "max_radius_meters": 0"#),
            400,
            Some("max_radius_meters"),
        ),
        post(
            knn,
            &pt("[0, 0]", r#", "max_radius_meters": 50001"#),
            400,
            Some("max_radius_meters"),
        ),
        post(
            knn,
            &pt("[0, 0]", r#", "category_filter": 5"#),
            400,
            Some("category_filter"),
        ),
        post(
            knn,
            &pt("[0, 0]", r#", "colour": "red""#),
            400,
            Some("colour"),
        ),
        post("/v1/layers/cities/batch", "[]", 400, Some("queries")),
        post("/v1/layers/cities/batch", &many, 400, Some("queries")),
        post(
            "/v1/layers/cities/batch",
            r#"[{"lon": 0, "lat": 0}, {"lon": 0, "lat": 99}]"#,
            400,
            Some("queries[1].lat"),
        ),
        post(
            "/v1/layers/cities/batch",
            r#"[{"lon": 0, "lat": 0, "radius_m": 10, "k": 3}]"#,
            400,
            Some("queries[0].k"),
        ),
        Case {
            content_type: Some("text/plain"),
            ..post(knn, &pt("[0, 0]", ""), 415, None)
        },
        Case {
            content_type: None,
            ..post(knn, &pt("[0, 0]", ""), 415, None)
        },
        get("/v1/layers/nope/knn?lon=0&lat=0", 404, None),
        get("/nope", 404, None),
        get("/v1/layers/cities", 404, None),
        Case {
            method: "DELETE",
            ..get(&q("lon=0&lat=0"), 405, None)
        },
        post("/v1/layers/cities/radius", "{}", 405, None),
        get("/v1/layers/cities/batch", 405, None),
    ];
    assert!(cases.len() >= 30);
    // A body over the 4 MiB limit: 413 with a problem body.
    let (status, raw) = server.post_oversized(knn, 5 << 20);
    assert_eq!(status, 413, "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{raw}"
    );
    for case in &cases {
        let reply = server.send(case.method, &case.path, case.content_type, &case.body);
        let shown = if case.path.len() > 120 {
            &case.path[..120]
        } else {
            &case.path
        };
        assert_eq!(
            reply.status, case.status,
            "{} {shown}: {}",
            case.method, reply.body
        );
        assert_eq!(
            reply.content_type, "application/problem+json",
            "{} {shown}",
            case.method
        );
        let problem = reply.json();
        assert_eq!(problem["status"], case.status);
        assert!(problem["title"].is_string() && problem["detail"].is_string());
        if let Some(field) = case.field {
            assert_eq!(
                problem["field"], field,
                "{} {shown}: {}",
                case.method, reply.body
            );
            assert!(problem["rule"].is_string());
        }
    }
}

#[test]
fn batch_answers_in_order() {
    let Some(server) = cities_server() else {
        return;
    };
    let queries = [
        (2.35, 48.85, "\"k\": 3"),
        (-74.0, 40.7, "\"radius_m\": 2000, \"limit\": 5"),
        (139.7, 35.7, "\"k\": 1, \"category\": \"JP\""),
    ];
    let body: Vec<String> = queries
        .iter()
        .map(|(lon, lat, rest)| format!("{{\"lon\": {lon}, \"lat\": {lat}, {rest}}}"))
        .collect();
    let reply = server.post_json("/v1/layers/cities/batch", &format!("[{}]", body.join(",")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answers = reply.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    let single = [
        server.get("/v1/layers/cities/knn?lon=2.35&lat=48.85&k=3"),
        server.get("/v1/layers/cities/radius?lon=-74&lat=40.7&radius_m=2000&limit=5"),
        server.get("/v1/layers/cities/knn?lon=139.7&lat=35.7&k=1&category=JP"),
    ];
    for (a, s) in answers.iter().zip(&single) {
        assert_eq!(a["features"], s.json()["features"]);
    }
    assert!(answers[1]["truncated"].is_boolean());
}

#[test]
fn random_requests_never_get_a_500_or_a_dropped_connection() {
    let Some(server) = cities_server() else {
        return;
    };
    let keys = prop::sample::select(vec![
        "lon",
        "lat",
        "k",
        "max_radius_m",
        "category",
        "radius_m",
        "limit",
        "by",
        "x",
        "y",
        "z",
        "",
        "k[]",
        "%",
    ]);
    let values = prop::sample::select(vec![
        "0",
        "-0",
        "1",
        "10",
        "100",
        "101",
        "-1",
        "1e308",
        "-1e308",
        "1e-320",
        "nan",
        "inf",
        "NaN",
        "180",
        "-180",
        "90",
        "-90",
        "90.0000001",
        "",
        " ",
        "%",
        "%zz",
        "abc",
        "US",
        "cc",
        "name",
        "0x10",
        "1,2",
        "99999999999999999999",
    ]);
    let paths = prop::sample::select(vec![
        "knn", "radius", "stats", "batch", "", "knn/", "../knn",
    ]);
    let pairs = prop::collection::vec((keys, values.clone(), any::<u8>()), 0..8);
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(paths.clone(), pairs), |(path, pairs)| {
            let query: Vec<String> = pairs
                .iter()
                .map(|(k, v, b)| {
                    if b % 7 == 0 {
                        format!("{k}={}", enc(&format!("{v}{}", *b as char)))
                    } else {
                        format!("{}={}", enc(k), enc(v))
                    }
                })
                .collect();
            let reply = server.get(&format!("/v1/layers/cities/{path}?{}", query.join("&")));
            prop_assert!(reply.status < 500, "{} {}", reply.status, reply.body);
            Ok(())
        })
        .unwrap();
    let bodies = prop_oneof![
        any::<String>(),
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "point",
                    "k",
                    "max_radius_meters",
                    "category_filter",
                    "type",
                    "coordinates"
                ]),
                values
            ),
            0..6
        )
        .prop_map(|members| {
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }),
        (any::<f64>(), any::<f64>(), any::<i64>()).prop_map(|(lon, lat, k)| format!(
            r#"{{"point": {{"type": "Point", "coordinates": [{lon:e}, {lat:e}]}}, "k": {k}}}"#
        )),
    ];
    runner
        .run(&(paths, bodies), |(path, body)| {
            let reply = server.post_json(&format!("/v1/layers/cities/{path}"), &body);
            prop_assert!(reply.status < 500, "{} {}", reply.status, reply.body);
            Ok(())
        })
        .unwrap();
}

#[test]
fn readyz_is_503_while_loading_then_200() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "lat,lon,name").unwrap();
    for i in 0..1_500_000u64 {
        let lat = (i % 1799) as f64 * 0.1 - 89.9;
        let lon = (i % 3599) as f64 * 0.1 - 179.9;
        writeln!(f, "{lat},{lon},p{i}").unwrap();
    }
    drop(f);
    let server = Server::spawn(&["--layer", &format!("big={}", path.display())]);
    let first = server.get("/readyz");
    assert_eq!(
        first.status, 503,
        "the layer cannot be loaded that fast: {}",
        first.body
    );
    assert_eq!(first.content_type, "application/problem+json");
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/v1/layers/big/knn?lon=0&lat=0").status, 503);
    server.wait_ready();
    assert_eq!(server.get("/v1/layers/big/knn?lon=0&lat=0&k=1").status, 200);
}

#[test]
fn unreadable_layers_stop_startup_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("short.csv", "lat,lon,name\r\n1,2,a\r\n3,4\r\n", "line 3"),
        (
            "cut.csv",
            "lat,lon,name,cc\n1,2,a,US\n3,4,b,US\n5,6,c",
            "line 4",
        ),
        ("range.csv", "lat,lon\n1,2\n95,4\n", "line 3"),
        ("nan.csv", "latitude,longitude\n1,2\nx,4\n", "line 3"),
        ("nolat.csv", "a,b\n1,2\n", "no latitude column"),
        (
            "line.geojson",
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]},"properties":{}}]}"#,
            "feature 0",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--layer",
                &format!("l={}", path.display()),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(name) && stderr.contains(expected),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
        .args(["serve", "--layer", "l=/nonexistent/file.csv"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.csv"));
}
