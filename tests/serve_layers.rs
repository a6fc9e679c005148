//! Cartesian layers (KITTI frame, autzen LAS) equal brute force through the
//! server; GeoJSON and EPSG:4326 LAS layers are geographic; `pointpipe query`
//! answers with the server's JSON.

mod common;
mod serve_common;

use std::process::Command;

use nalgebra::Point3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serve_common::Server;

fn brute(points: &[Point3<f64>], q: [f64; 3]) -> Vec<(usize, f64)> {
    let mut v: Vec<(usize, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (dx, dy, dz) = (p.x - q[0], p.y - q[1], p.z - q[2]);
            (i, (dx * dx + dy * dy) + dz * dz)
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v
}

fn neighbors(doc: &serde_json::Value) -> Vec<(usize, f64)> {
    doc["neighbors"]
        .as_array()
        .expect("neighbors")
        .iter()
        .map(|n| {
            (
                n["index"].as_u64().unwrap() as usize,
                n["distance"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn check_cartesian(rel: &str, radius: f64) {
    let Some(path) = common::shared_data(rel) else {
        return;
    };
    let cloud = pointpipe::io::read(&path).unwrap();
    let server = Server::start(&["--layer", &format!("c={}", path.display())]);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for case in 0..150 {
        let p = cloud.points[rng.random_range(0..cloud.len())];
        let q = [
            p.x + rng.random_range(-1.0..1.0),
            p.y + rng.random_range(-1.0..1.0),
            p.z + rng.random_range(-1.0..1.0),
        ];
        let all = brute(&cloud.points, q);
        let reply = server.get(&format!(
            "/v1/layers/c/knn?x={}&y={}&z={}&k=10",
            q[0], q[1], q[2]
        ));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.content_type, "application/json");
        let got = neighbors(&reply.json());
        let want: Vec<(usize, f64)> = all[..10].iter().map(|&(i, d)| (i, d.sqrt())).collect();
        assert_eq!(got, want, "{rel} knn case {case}");
        let reply = server.get(&format!(
            "/v1/layers/c/radius?x={}&y={}&z={}&radius={radius}&limit=100000",
            q[0], q[1], q[2]
        ));
        let got = neighbors(&reply.json());
        let want: Vec<(usize, f64)> = all
            .iter()
            .filter(|&&(_, d)| d <= radius * radius)
            .map(|&(i, d)| (i, d.sqrt()))
            .collect();
        assert_eq!(got, want, "{rel} radius case {case}");
    }
    // Attributes come back with the point.
    let p = cloud.points[0];
    let doc = server
        .get(&format!(
            "/v1/layers/c/knn?x={}&y={}&z={}&k=1",
            p.x, p.y, p.z
        ))
        .json();
    let first = &doc["neighbors"][0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["x"].as_f64(), Some(p.x));
    if let Some(intensity) = &cloud.intensity {
        assert_eq!(first["intensity"].as_f64(), Some(f64::from(intensity[0])));
    }
}

#[test]
fn kitti_frame_layer_equals_brute_force() {
    check_cartesian("kitti-raw-hdl64-5frames/0000000000.bin", 1.0);
}

#[test]
fn autzen_las_layer_equals_brute_force() {
    check_cartesian("las/pdal/autzen_trim.las", 5.0);
}

#[test]
fn geojson_and_epsg4326_las_layers_are_geographic() {
    let Some(las) = common::shared_data("las/pdal/epsg_4326.las") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let geojson = dir.path().join("assets.geojson");
    std::fs::write(
        &geojson,
        r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "a1", "geometry": {"type": "Point", "coordinates": [179.9, -16.5]}, "properties": {"kind": "buoy", "depth": 12.5}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-179.9, -16.5]}, "properties": {"kind": "ship", "id": 77}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [170.0, -16.5, 3.0]}, "properties": null}
        ]}"#,
    )
    .unwrap();
    let server = Server::start(&[
        "--layer",
        &format!("assets={},category=kind", geojson.display()),
        "--layer",
        &format!("lidar={}", las.display()),
    ]);
    let layers = server.get("/v1/layers").json();
    assert_eq!(layers["layers"][0]["kind"], "geographic");
    assert_eq!(layers["layers"][0]["category"], "kind");
    assert_eq!(layers["layers"][1]["kind"], "geographic");
    // Across the antimeridian: both points at equal distance, ties by id.
    let doc = server
        .get("/v1/layers/assets/knn?lon=180&lat=-16.5&k=3")
        .json();
    let f = doc["features"].as_array().unwrap();
    assert_eq!(f.len(), 3);
    assert_eq!(f[0]["id"], 0);
    assert_eq!(f[1]["id"], 1);
    assert_eq!(
        f[0]["properties"]["distance_m"],
        f[1]["properties"]["distance_m"]
    );
    assert_eq!(f[0]["properties"]["feature_id"], "a1");
    assert_eq!(f[0]["properties"]["depth"], 12.5);
    assert_eq!(f[1]["properties"]["source_id"], 77);
    assert_eq!(f[1]["properties"]["id"], 1);
    let ship = server
        .get("/v1/layers/assets/knn?lon=180&lat=-16.5&k=3&category=ship")
        .json();
    assert_eq!(ship["features"].as_array().unwrap().len(), 1);

    // The EPSG:4326 LAS: x = lon, y = lat; the nearest point to a point is itself.
    let cloud = pointpipe::io::read(&las).unwrap();
    let p = cloud.points[cloud.len() / 2];
    let doc = server
        .get(&format!("/v1/layers/lidar/knn?lon={}&lat={}&k=5", p.x, p.y))
        .json();
    let first = &doc["features"][0];
    assert_eq!(first["geometry"]["coordinates"][0].as_f64(), Some(p.x));
    assert_eq!(first["geometry"]["coordinates"][1].as_f64(), Some(p.y));
    assert_eq!(first["properties"]["distance_m"].as_f64(), Some(0.0));
    assert_eq!(first["properties"]["z"].as_f64(), Some(p.z));
}

#[test]
fn query_command_answers_like_the_server() {
    let (Some(cities), Some(kitti)) = (
        common::shared_data("geo/geonames-cities1000.csv"),
        common::shared_data("kitti-raw-hdl64-5frames/0000000000.bin"),
    ) else {
        return;
    };
    let server = Server::start(&[
        "--layer",
        &format!("cities={}", cities.display()),
        "--layer",
        &format!("frame={}", kitti.display()),
    ]);
    let run = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
            .arg("query")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let strip = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("took_us");
        v
    };
    let cli = run(&[
        cities.to_str().unwrap(),
        "--lon",
        "-0.1276",
        "--lat",
        "51.5072",
        "--k",
        "7",
    ]);
    let http = server
        .get("/v1/layers/cities/knn?lon=-0.1276&lat=51.5072&k=7")
        .json();
    assert_eq!(strip(cli), strip(http));
    let cli = run(&[
        cities.to_str().unwrap(),
        "--lon",
        "151.2",
        "--lat",
        "-33.87",
        "--radius",
        "3000",
        "--by",
        "admin1",
    ]);
    let http = server
        .get("/v1/layers/cities/stats?lon=151.2&lat=-33.87&radius_m=3000&by=admin1")
        .json();
    assert_eq!(strip(cli), strip(http));
    let cli = run(&[
        kitti.to_str().unwrap(),
        "--x",
        "5",
        "--y",
        "-2",
        "--z",
        "0",
        "--k",
        "4",
    ]);
    let http = server.get("/v1/layers/frame/knn?x=5&y=-2&z=0&k=4").json();
    assert_eq!(strip(cli), strip(http));
}
