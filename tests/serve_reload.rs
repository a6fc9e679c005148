//! Live reload of `pointpipe serve`: a layer file replaced 20 times under
//! load (write, then rename) while 4 clients query; failed reloads keep the
//! old layer; the admin route's token; SIGHUP; `/metrics` as Prometheus text.

mod serve_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serve_common::Server;

/// Version `v` of the layer: `200 + 60 v` places in a 10° box, seeded by v.
fn version(v: u64) -> Vec<[f64; 2]> {
    let mut rng = ChaCha8Rng::seed_from_u64(1000 + v);
    (0..200 + 60 * v)
        .map(|_| [rng.random_range(5.0..15.0), rng.random_range(40.0..50.0)])
        .collect()
}

/// Writes version `v` next to `path`, then renames it over `path`.
fn publish(path: &Path, v: u64, places: &[[f64; 2]]) {
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    writeln!(f, "lat,lon,name,version").unwrap();
    for (i, [lon, lat]) in places.iter().enumerate() {
        writeln!(f, "{lat},{lon},p{v}_{i},{v}").unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn brute(places: &[[f64; 2]], lon: f64, lat: f64, k: usize) -> Vec<(usize, f64)> {
    let mut v: Vec<(usize, f64)> = places
        .iter()
        .enumerate()
        .map(|(i, p)| (i, pointpipe::geo::geodesic_distance_m(lon, lat, p[0], p[1])))
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

struct Seen {
    generation: u64,
    version: u64,
    lon: f64,
    lat: f64,
    hits: Vec<(usize, f64)>,
}

fn layer_file(dir: &Path) -> PathBuf {
    dir.join("fleet.csv")
}

#[test]
fn reload_under_load_is_exact_per_generation_and_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = layer_file(dir.path());
    let versions: Vec<Vec<[f64; 2]>> = (0..=20).map(version).collect();
    publish(&path, 0, &versions[0]);
    let server = Arc::new(Server::start(&[
        "--watch",
        "--layer",
        &format!("fleet={}", path.display()),
    ]));
    let done = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4u64)
        .map(|c| {
            let server = server.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(c);
                let mut seen = Vec::new();
                let mut failures = 0;
                while !done.load(Ordering::Acquire) {
                    let (lon, lat) = (rng.random_range(5.0..15.0), rng.random_range(40.0..50.0));
                    let reply =
                        server.get(&format!("/v1/layers/fleet/knn?lon={lon}&lat={lat}&k=5"));
                    if reply.status != 200 {
                        failures += 1;
                        continue;
                    }
                    let doc = reply.json();
                    let features = doc["features"].as_array().unwrap();
                    let versions: Vec<u64> = features
                        .iter()
                        .map(|f| f["properties"]["version"].as_u64().unwrap())
                        .collect();
                    assert!(
                        versions.windows(2).all(|w| w[0] == w[1]),
                        "one answer mixes versions: {versions:?}"
                    );
                    seen.push(Seen {
                        generation: doc["generation"].as_u64().unwrap(),
                        version: versions[0],
                        lon,
                        lat,
                        hits: features
                            .iter()
                            .map(|f| {
                                (
                                    f["properties"]["id"].as_u64().unwrap() as usize,
                                    f["properties"]["distance_m"].as_f64().unwrap(),
                                )
                            })
                            .collect(),
                    });
                    std::thread::sleep(Duration::from_millis(2));
                }
                (seen, failures)
            })
        })
        .collect();
    for v in 1..=20u64 {
        std::thread::sleep(Duration::from_millis(150));
        publish(&path, v, &versions[v as usize]);
    }
    // Wait until the last version is served.
    let start = Instant::now();
    loop {
        let doc = server.get("/v1/layers/fleet/knn?lon=10&lat=45&k=1").json();
        if doc["features"][0]["properties"]["version"] == 20 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "version 20 never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Release);
    let mut generation_of_version = BTreeMap::new();
    let mut all = Vec::new();
    for client in clients {
        let (seen, failures) = client.join().unwrap();
        assert_eq!(failures, 0, "failed requests during reloads");
        assert!(
            seen.windows(2).all(|w| w[0].generation <= w[1].generation),
            "generations went backwards"
        );
        all.extend(seen);
    }
    assert!(all.len() > 200, "only {} answers", all.len());
    for s in &all {
        let previous = generation_of_version.insert(s.generation, s.version);
        assert!(
            previous.is_none_or(|v| v == s.version),
            "generation {} served two versions",
            s.generation
        );
    }
    let versions_by_generation: Vec<u64> = generation_of_version.values().copied().collect();
    assert!(
        versions_by_generation.windows(2).all(|w| w[0] < w[1]),
        "{generation_of_version:?}"
    );
    assert!(
        generation_of_version.len() >= 3,
        "too few generations seen: {generation_of_version:?}"
    );
    // Every answer is exactly the brute force of the version it names.
    all.par_iter().for_each(|s| {
        let want = brute(&versions[s.version as usize], s.lon, s.lat, 5);
        let ids: Vec<usize> = s.hits.iter().map(|h| h.0).collect();
        let want_ids: Vec<usize> = want.iter().map(|h| h.0).collect();
        assert_eq!(
            ids, want_ids,
            "generation {} version {}",
            s.generation, s.version
        );
        for (h, w) in s.hits.iter().zip(&want) {
            assert!((h.1 - w.1).abs() <= 1e-3);
        }
    });
    let layers = server.get("/v1/layers").json();
    assert_eq!(
        layers["layers"][0]["last_reload_error"],
        serde_json::Value::Null
    );
}

fn wait_idle(server: &Server) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let layers = server.get("/v1/layers").json();
        if layers["layers"][0]["reloading"] == false {
            return layers["layers"][0].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(server: &Server, name: &str, layer: &str) -> f64 {
    let text = server.get("/metrics").body;
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("layer") == Some(layer))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or_else(|| panic!("no sample {name}{{layer={layer}}}"))
}

#[test]
fn failed_reloads_keep_the_old_layer_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = layer_file(dir.path());
    publish(&path, 3, &version(3));
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let server = Server::start(&[
        "--layer",
        &format!("fleet={}", path.display()),
        "--admin-token-file",
        token.to_str().unwrap(),
    ]);
    let reload = |auth: Option<&str>| {
        let url = format!("{}/v1/layers/fleet/reload", server.base);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.post(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send_empty().unwrap().status().as_u16()
    };
    assert_eq!(reload(None), 401);
    assert_eq!(reload(Some("Bearer wrong")), 401);
    let before = server.get("/v1/layers/fleet/knn?lon=10&lat=45&k=3").json();
    // A file cut in its last row, then garbage: both refused, the old layer serves.
    let cut = "lat,lon,name,version\n45,10,a,9\n46,11,b,9\n47,12";
    for (i, content) in [
        cut.as_bytes(),
        b"\x00\xff\xfe garbage \x01\n\x02".as_slice(),
    ]
    .iter()
    .enumerate()
    {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(reload(Some("Bearer s3cret")), 202);
        let layer = wait_idle(&server);
        let error = layer["last_reload_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains("fleet.csv"), "{error}");
        if i == 0 {
            assert!(error.contains("line 4"), "{error}");
        }
        assert_eq!(layer["generation"], 1);
        let now = server.get("/v1/layers/fleet/knn?lon=10&lat=45&k=3").json();
        assert_eq!(now["features"], before["features"]);
        assert_eq!(
            metric(&server, "pointpipe_reload_failures_total", "fleet"),
            (i + 1) as f64
        );
    }
    // A good file: the next generation, and the error is cleared.
    publish(&path, 4, &version(4));
    assert_eq!(reload(Some("Bearer s3cret")), 202);
    let layer = wait_idle(&server);
    assert_eq!(layer["generation"], 2);
    assert_eq!(layer["last_reload_error"], serde_json::Value::Null);
    assert_eq!(layer["points"], 440);
    assert_eq!(metric(&server, "pointpipe_generation", "fleet"), 2.0);
    assert_eq!(metric(&server, "pointpipe_rebuilds_total", "fleet"), 2.0);
    assert_eq!(metric(&server, "pointpipe_points", "fleet"), 440.0);
}

#[test]
fn admin_routes_are_disabled_without_a_token_and_sighup_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = layer_file(dir.path());
    publish(&path, 1, &version(1));
    let server = Server::start(&["--layer", &format!("fleet={}", path.display())]);
    let r = server.send("POST", "/v1/layers/fleet/reload", None, "");
    assert_eq!(r.status, 403);
    assert_eq!(r.content_type, "application/problem+json");
    publish(&path, 2, &version(2));
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    while server.get("/v1/layers").json()["layers"][0]["generation"] != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.get("/v1/layers").json()["layers"][0]["points"], 320);
}

#[test]
fn metrics_parse_and_count_the_requests_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = layer_file(dir.path());
    publish(&path, 2, &version(2));
    let server = Server::start(&["--layer", &format!("fleet={}", path.display())]);
    for i in 0..25 {
        assert_eq!(
            server
                .get(&format!(
                    "/v1/layers/fleet/knn?lon=10&lat=45&k={}",
                    1 + i % 5
                ))
                .status,
            200
        );
    }
    for _ in 0..7 {
        assert_eq!(server.get("/v1/layers/fleet/knn?lon=10&lat=95").status, 400);
    }
    for _ in 0..3 {
        assert_eq!(
            server
                .get("/v1/layers/fleet/radius?lon=10&lat=45&radius_m=20000")
                .status,
            200
        );
    }
    let text = server.get("/metrics").body;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text");
    let count = |route: &str, status: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric == "pointpipe_http_requests_total"
                    && s.labels.get("route") == Some(route)
                    && s.labels.get("status") == Some(status)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .sum()
    };
    assert_eq!(count("knn", "200"), 25.0);
    assert_eq!(count("knn", "400"), 7.0);
    assert_eq!(count("radius", "200"), 3.0);
    // A histogram's count is its `+Inf` bucket (the parser names the sample
    // after the `_bucket` series).
    let histogram_count = |name: &str, route: Option<&str>| -> f64 {
        let found: Vec<f64> = scrape
            .samples
            .iter()
            .filter(|s| {
                (s.metric == name || s.metric == format!("{name}_bucket"))
                    && route.is_none_or(|r| s.labels.get("route") == Some(r))
            })
            .filter_map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map(|b| b.count),
                _ => None,
            })
            .collect();
        assert!(
            !found.is_empty(),
            "no histogram {name}: {:?}",
            scrape.samples.iter().map(|s| &s.metric).collect::<Vec<_>>()
        );
        found.iter().sum()
    };
    assert_eq!(
        histogram_count("pointpipe_query_duration_seconds", Some("knn")),
        25.0
    );
    assert_eq!(
        histogram_count("pointpipe_nodes_visited_per_query", None),
        28.0
    );
    for gauge in [
        "pointpipe_points",
        "pointpipe_tree_height",
        "pointpipe_tree_height_over_log2_n",
        "pointpipe_generation",
        "pointpipe_last_rebuild_duration_seconds",
    ] {
        let v = metric(&server, gauge, "fleet");
        assert!(v.is_finite() && v >= 0.0, "{gauge} = {v}");
    }
    assert_eq!(metric(&server, "pointpipe_points", "fleet"), 320.0);
    assert_eq!(
        metric(&server, "pointpipe_reload_failures_total", "fleet"),
        0.0
    );
}
