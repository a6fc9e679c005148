//! Sharded batch through the CLI: the plan (deterministic, balanced), shards
//! chosen by `--shard`, Slurm and Kubernetes variables, the union of the
//! shards byte-identical to a single run, `batch-report` exit codes, the
//! overlap warning; and the deployment artefacts parsed.

mod common;
mod tiles_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pointpipe::batch::shard::{PlanTile, plan_shards};
use pointpipe::io::las::records::read_las_tile;

/// Autzen is in international feet: 1 ft voxels, 4 ft normals and halo.
const OPTIONS: [&str; 6] = ["--voxel-size", "1", "--normal-radius", "4", "--jobs", "1"];
const SHARD_VARS: [&str; 4] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "JOB_COMPLETION_INDEX",
];

/// `pointpipe` with no shard variables inherited.
fn pointpipe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pointpipe"));
    for var in SHARD_VARS {
        cmd.env_remove(var);
    }
    cmd.arg("-q");
    cmd
}

fn batch(input: &Path, output: &Path) -> Command {
    let mut cmd = pointpipe();
    cmd.arg("batch").arg(input).arg(output).args(OPTIONS);
    cmd
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "status {:?}\nstdout {}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Autzen jittered (X/Y ±0.5 ft, Z ±0.1 ft, fixed seed) and cut into an
/// uneven 3×2 grid: 6 tiles of different sizes whose halos cross edges.
fn write_tiles(dir: &Path) -> Vec<(String, usize)> {
    let source = common::shared_data("las/pdal/autzen_trim.las").expect("checked by caller");
    let whole = read_las_tile(&source).unwrap();
    let b = whole.header.bounds();
    let xs = [0.0, 0.25, 0.6, 1.0].map(|f| b.min.x + f * (b.max.x - b.min.x));
    let ys = [0.0, 0.35, 1.0].map(|f| b.min.y + f * (b.max.y - b.min.y));
    tiles_common::jitter_into_grid(&whole.positions, &xs, &ys, 7, 1)
        .iter()
        .enumerate()
        .map(|(t, (reps, positions))| {
            let name = format!("tile_{}_{}.las", t % 3, t / 3);
            tiles_common::write_tile(&dir.join(&name), &whole, reps, positions, false).unwrap();
            (name, positions.len())
        })
        .collect()
}

/// Every file under `dir` but the reports, by relative path.
fn outputs(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_file() {
            all.insert(
                path.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&path).unwrap(),
            );
        }
    }
    all
}

fn report(out: &Path, shard: usize) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join(format!("_reports/shard-{shard}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn plan_is_deterministic_and_balanced() {
    if common::shared_data("las/pdal/autzen_trim.las").is_none() {
        return;
    }
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tiles = write_tiles(input.path());
    let plan = |n: &str| {
        let o = ok(pointpipe()
            .arg("batch")
            .arg(input.path())
            .arg(out.path())
            .args(["--plan", n, "--json"])
            .output()
            .unwrap());
        json(&o)
    };
    let first = plan("3");
    assert_eq!(first, plan("3"), "the plan is deterministic");
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "--plan writes nothing"
    );
    let p = &first["plan"];
    assert_eq!(p["shard_count"], 3);
    let planned = p["tiles"].as_array().unwrap();
    // Every tile once, in name order, with its header point count.
    let names: Vec<&str> = planned
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = tiles.iter().map(|(n, _)| n.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    for (name, count) in &tiles {
        let t = planned.iter().find(|t| t["name"] == name.as_str()).unwrap();
        assert_eq!(t["points"], *count as u64, "{name}");
    }
    // The library's plan is the CLI's.
    let weights: Vec<PlanTile> = tiles
        .iter()
        .map(|(name, n)| PlanTile {
            name: name.clone(),
            points: *n as u64,
        })
        .collect();
    let lib = plan_shards(&weights, 3).unwrap();
    assert_eq!(p["fingerprint"], lib.fingerprint.as_str());
    for (t, l) in planned.iter().zip(&lib.tiles) {
        assert_eq!(t["shard"], l.shard, "{}", l.name);
    }
    // Balance: loads add up and differ by at most the largest tile (LPT).
    let loads: Vec<u64> = p["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["points"].as_u64().unwrap())
        .collect();
    let total: u64 = tiles.iter().map(|(_, n)| *n as u64).sum();
    assert_eq!(loads.iter().sum::<u64>(), total);
    let largest = tiles.iter().map(|(_, n)| *n as u64).max().unwrap();
    assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= largest);
    assert!(loads.iter().all(|&l| l > 0), "{loads:?}");
    // Adjacent tiles overlap by a halo at most: no overlap warning.
    assert_eq!(first["overlaps"].as_array().unwrap().len(), 0);
    // A copy of a tile under another name overlaps it completely.
    std::fs::copy(
        input.path().join("tile_0_0.las"),
        input.path().join("tile_0_0_copy.las"),
    )
    .unwrap();
    let with_copy = plan("3");
    let overlaps = with_copy["overlaps"].as_array().unwrap();
    assert_eq!(overlaps.len(), 1, "{overlaps:?}");
    assert_eq!(overlaps[0]["a"], "tile_0_0.las");
    assert_eq!(overlaps[0]["b"], "tile_0_0_copy.las");
    assert_eq!(overlaps[0]["fraction"], 1.0);
    assert_ne!(with_copy["plan"]["fingerprint"], p["fingerprint"]);
}

#[test]
fn union_of_shards_is_byte_identical_to_single_run() {
    if common::shared_data("las/pdal/autzen_trim.las").is_none() {
        return;
    }
    let input = tempfile::tempdir().unwrap();
    write_tiles(input.path());
    let single = tempfile::tempdir().unwrap();
    let sharded = tempfile::tempdir().unwrap();
    ok(batch(input.path(), single.path()).output().unwrap());

    // Shard 0 by flag, shard 1 as a Slurm array task (1-based array),
    // shard 2 as a Kubernetes Indexed Job pod.
    ok(batch(input.path(), sharded.path())
        .args(["--shard", "0/3"])
        .output()
        .unwrap());
    ok(batch(input.path(), sharded.path())
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap());
    ok(batch(input.path(), sharded.path())
        .env("JOB_COMPLETION_INDEX", "2")
        .args(["--shards", "3"])
        .output()
        .unwrap());

    let (a, b) = (outputs(single.path()), outputs(sharded.path()));
    assert_eq!(
        a.len(),
        12,
        "6 tiles and their parameter files: {:?}",
        a.keys()
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs", path.display());
    }

    // Each shard did exactly its tiles of the plan, with halos from others.
    let plan: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sharded.path().join("_reports/plan.json")).unwrap(),
    )
    .unwrap();
    let mut halo_points = 0;
    for (shard, source) in [(0, "flag"), (1, "slurm"), (2, "kubernetes")] {
        let r = report(sharded.path(), shard);
        assert_eq!(
            (r["shard_index"].as_u64(), r["shard_count"].as_u64()),
            (Some(shard as u64), Some(3))
        );
        assert_eq!(r["source"], source);
        assert_eq!(r["plan_fingerprint"], plan["plan"]["fingerprint"]);
        let mine: Vec<&str> = plan["plan"]["tiles"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["shard"] == shard)
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let done: Vec<&str> = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                assert_eq!(f["status"], "done");
                halo_points += f["halo_points"].as_u64().unwrap();
                f["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(done, mine, "shard {shard}");
        assert_eq!(r["done"], mine.len());
    }
    assert!(halo_points > 1000, "halos cross tile edges: {halo_points}");

    // The single run is shard 0 of 1; both folders merge cleanly.
    assert_eq!(report(single.path(), 0)["shard_count"], 1);
    assert_eq!(report(single.path(), 0)["source"], "single");
    let merged = json(&ok(pointpipe()
        .arg("batch-report")
        .arg(sharded.path())
        .arg("--json")
        .output()
        .unwrap()));
    assert_eq!(
        (merged["tiles"].as_u64(), merged["done"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(
        (merged["failed"].as_u64(), merged["missing"].as_u64()),
        (Some(0), Some(0))
    );
    let single_merged = json(&ok(pointpipe()
        .arg("batch-report")
        .arg(single.path())
        .arg("--json")
        .output()
        .unwrap()));
    assert_eq!(single_merged["points_out"], merged["points_out"]);
    assert_eq!(single_merged["points_in"], merged["points_in"]);

    // A rerun of a shard skips its tiles and still merges cleanly.
    let rerun = ok(batch(input.path(), sharded.path())
        .args(["--shard", "1/3", "--json"])
        .output()
        .unwrap());
    let s = json(&rerun);
    assert_eq!(s["done"], 0);
    assert!(s["skipped"].as_u64().unwrap() > 0);
    assert_eq!(report(sharded.path(), 1)["skipped"], s["skipped"]);
    ok(pointpipe()
        .arg("batch-report")
        .arg(sharded.path())
        .output()
        .unwrap());
    assert_eq!(outputs(sharded.path()), b, "a rerun changes nothing");

    // A temporary file as another shard would be writing it into the shared
    // output folder: a shard leaves recent temporaries alone; a single run
    // removes them (left by a killed run).
    let busy = sharded.path().join(".pointpipe-other-shard.tmp");
    std::fs::write(&busy, b"being written").unwrap();
    ok(batch(input.path(), sharded.path())
        .args(["--shard", "0/3"])
        .output()
        .unwrap());
    assert!(
        busy.exists(),
        "a shard removed another shard's temporary file"
    );
    std::fs::remove_file(&busy).unwrap();
    let single_busy = single.path().join(".pointpipe-killed.tmp");
    std::fs::write(&single_busy, b"left by a killed run").unwrap();
    ok(batch(input.path(), single.path()).output().unwrap());
    assert!(
        !single_busy.exists(),
        "a single run removes stale temporaries"
    );
}

#[test]
fn batch_report_fails_on_missing_and_failed_tiles() {
    if common::shared_data("las/pdal/autzen_trim.las").is_none() {
        return;
    }
    let input = tempfile::tempdir().unwrap();
    write_tiles(input.path());
    std::fs::write(input.path().join("zz_bad.las"), b"LASF this is not a tile").unwrap();
    let out = tempfile::tempdir().unwrap();
    // No run yet: a clear error.
    let none = pointpipe()
        .arg("batch-report")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no plan"));

    let plan = json(&ok(batch(input.path(), out.path())
        .args(["--plan", "2", "--json"])
        .output()
        .unwrap()));
    let tiles = plan["plan"]["tiles"].as_array().unwrap();
    let bad_shard = tiles.iter().find(|t| t["name"] == "zz_bad.las").unwrap()["shard"]
        .as_u64()
        .unwrap();
    let good_shard = 1 - bad_shard;
    let shard_tiles = |s: u64| tiles.iter().filter(|t| t["shard"] == s).count() as u64;

    // Only the shard without the bad tile ran: the others are missing.
    ok(batch(input.path(), out.path())
        .arg("--shard")
        .arg(format!("{good_shard}/2"))
        .output()
        .unwrap());
    let missing = pointpipe()
        .arg("batch-report")
        .arg(out.path())
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let m = json(&missing);
    assert_eq!(m["missing"], shard_tiles(bad_shard));
    assert_eq!(m["done"], shard_tiles(good_shard));
    assert_eq!(m["shards_missing"], serde_json::json!([bad_shard]));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("missing: zz_bad.las"), "{stderr}");

    // The other shard runs: its bad tile fails (the shard exits non-zero).
    let run = batch(input.path(), out.path())
        .arg("--shard")
        .arg(format!("{bad_shard}/2"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let failed = pointpipe()
        .arg("batch-report")
        .arg(out.path())
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let f = json(&failed);
    assert_eq!(
        (f["failed"].as_u64(), f["missing"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(f["done"], 6);
    assert_eq!(f["failed_tiles"][0]["name"], "zz_bad.las");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("zz_bad.las"));

    // The bad tile removed, a single run re-plans (1 shard) and skips the
    // finished tiles; the reports of the 2-shard plan are ignored, noted.
    std::fs::remove_file(input.path().join("zz_bad.las")).unwrap();
    let s = json(&ok(batch(input.path(), out.path())
        .arg("--json")
        .output()
        .unwrap()));
    assert_eq!(
        (s["done"].as_u64(), s["skipped"].as_u64()),
        (Some(0), Some(6))
    );
    let clean = json(&ok(pointpipe()
        .arg("batch-report")
        .arg(out.path())
        .arg("--json")
        .output()
        .unwrap()));
    assert_eq!(
        (clean["tiles"].as_u64(), clean["skipped"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(clean["notes"].as_array().unwrap().len(), 1, "{clean}");
}

/// Environment, arguments, and a part of the expected error message.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    &'static str,
);

#[test]
fn bad_shard_values_are_clear_errors() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cases: [Case; 8] = [
        (&[], &["--shard", "3/3"], "0-based"),
        (&[], &["--shard", "x"], "I/N"),
        (&[], &["--shards", "2"], "neither SLURM_ARRAY_TASK_ID"),
        (
            &[("SLURM_ARRAY_TASK_ID", "abc")],
            &[],
            "SLURM_ARRAY_TASK_ID",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
            &[],
            "--array=0-3",
        ),
        (
            &[("SLURM_ARRAY_TASK_ID", "1")],
            &[],
            "SLURM_ARRAY_TASK_COUNT",
        ),
        (&[("JOB_COMPLETION_INDEX", "1")], &[], "--shards N"),
        (
            &[("JOB_COMPLETION_INDEX", "3")],
            &["--shards", "3"],
            "JOB_COMPLETION_INDEX",
        ),
    ];
    for (env, args, message) in cases {
        let mut cmd = pointpipe();
        cmd.arg("batch")
            .arg(input.path())
            .arg(out.path())
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(1 | 2)),
            "{env:?} {args:?}: {:?} {stderr}",
            o.status
        );
        assert!(stderr.contains(message), "{env:?} {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn reports_folder_is_never_an_input() {
    if common::shared_data("las/pdal/autzen_trim.las").is_none() {
        return;
    }
    let input = tempfile::tempdir().unwrap();
    let tiles = write_tiles(input.path());
    // A `_reports` folder inside the input (e.g. a previous output used as
    // input) is skipped even with --recursive.
    let reports = input.path().join("_reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::copy(input.path().join("tile_0_0.las"), reports.join("x.las")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let s = json(&ok(batch(input.path(), out.path())
        .args(["--recursive", "--json"])
        .output()
        .unwrap()));
    assert_eq!(s["files"].as_array().unwrap().len(), tiles.len());
    assert!(!out.path().join("_reports/x.las").exists());
}

#[test]
fn deployment_artefacts_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/kubernetes/batch-job.yaml")).unwrap();
    let job: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_u64().unwrap();
    let parallelism = spec["parallelism"].as_u64().unwrap();
    assert!(completions >= 1 && (1..=completions).contains(&parallelism));
    let pod = &spec["template"]["spec"];
    assert!(matches!(
        pod["restartPolicy"].as_str(),
        Some("Never" | "OnFailure")
    ));
    let container = &pod["containers"][0];
    let command: Vec<&str> = container["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command[0], "pointpipe");
    let at = command.iter().position(|&a| a == "batch").unwrap();
    let shards = command.iter().position(|&a| a == "--shards").unwrap();
    assert_eq!(
        command[shards + 1],
        completions.to_string(),
        "--shards = completions"
    );
    // The folders are on the mounted volume, which is a declared volume.
    let mount = &container["volumeMounts"][0];
    let mount_path = mount["mountPath"].as_str().unwrap();
    for folder in &command[at + 1..at + 3] {
        assert!(
            folder.starts_with(mount_path),
            "{folder} not under {mount_path}"
        );
    }
    let volumes = pod["volumes"].as_sequence().unwrap();
    assert!(volumes.iter().any(|v| v["name"] == mount["name"]));

    // The sbatch script is an array job using the array variables.
    let sbatch = std::fs::read_to_string(root.join("deploy/slurm/batch.sbatch")).unwrap();
    assert!(sbatch.starts_with("#!/bin/bash"));
    assert!(sbatch.lines().any(|l| l.starts_with("#SBATCH --array=")));
    for var in ["POINTPIPE", "INPUT_DIR", "OUTPUT_DIR"] {
        assert!(sbatch.contains(&format!("${{{var}")), "{var}");
    }
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(root.join("deploy/slurm/batch.sbatch"))
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
}
