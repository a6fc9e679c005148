//! Sharding a batch over many machines: a deterministic plan that splits the
//! tiles of a folder into `N` shards balanced by point count, the choice of
//! this process's shard (`--shard I/N`, Slurm or Kubernetes environment
//! variables), and the check that finds tiles overlapping far beyond a halo.
//!
//! # Determinism
//! Every shard of an array job computes the plan on its own, from the same
//! folder: the plan depends only on the tiles' names (paths relative to the
//! input folder, `/`-separated) and their headers' point counts, never on
//! listing order, timing or the machine. Its [`ShardPlan::fingerprint`]
//! lets [`super::report`] check that all shards worked from the same plan.
//!
//! # Identical outputs
//! A shard processes only its own tiles but reads halos from **every**
//! neighbouring tile of the folder (the tile index holds all of them), so the
//! union of the shards' outputs is byte-identical to a single-machine run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::tiles::Aabb;
use crate::error::{Error, Result};

/// One shard of a plan: 0-based `index` among `count` shards.
///
/// Text form `I/N` (e.g. `2/8`), parsed by [`FromStr`] and printed by
/// [`fmt::Display`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// This shard, `0 ≤ index < count`.
    pub index: usize,
    /// Number of shards, ≥ 1.
    pub count: usize,
}

impl ShardSpec {
    /// The whole folder on one machine: shard 0 of 1.
    pub const SINGLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    /// A checked shard.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (named `shard`) when `count` is 0 or
    /// `index ≥ count`.
    pub fn new(index: usize, count: usize) -> Result<ShardSpec> {
        let spec = ShardSpec { index, count };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks `count ≥ 1` and `index < count`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] named `shard`.
    pub fn validate(&self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::invalid(
                "shard",
                self,
                "the shard count must be at least 1",
            ));
        }
        if self.index >= self.count {
            return Err(Error::invalid(
                "shard",
                self,
                format!("the index is 0-based: expected 0..={}", self.count - 1),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for ShardSpec {
    type Err = Error;

    /// Parses `I/N` (0-based `I`, whitespace around the numbers allowed).
    fn from_str(s: &str) -> Result<ShardSpec> {
        let bad = |reason: &str| Error::invalid("shard", s, reason.to_string());
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected I/N, e.g. 0/4 (0-based index / shard count)"))?;
        let index = i
            .trim()
            .parse()
            .map_err(|_| bad("the index I of I/N is not a non-negative integer"))?;
        let count = n
            .trim()
            .parse()
            .map_err(|_| bad("the count N of I/N is not a positive integer"))?;
        ShardSpec::new(index, count)
    }
}

/// Where a process's shard came from (see [`resolve_shard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardSource {
    /// `--shard I/N` on the command line.
    Flag,
    /// `SLURM_ARRAY_TASK_ID` (minus `SLURM_ARRAY_TASK_MIN`) and
    /// `SLURM_ARRAY_TASK_COUNT` (or `--shards N`).
    Slurm,
    /// `JOB_COMPLETION_INDEX` of a Kubernetes Indexed Job, with `--shards N`.
    Kubernetes,
    /// Nothing set: the whole folder, shard 0 of 1.
    Single,
}

/// The environment variables [`resolve_shard`] looks at (unset or empty =
/// `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardEnv {
    /// `SLURM_ARRAY_TASK_ID`: this task's array index.
    pub slurm_array_task_id: Option<String>,
    /// `SLURM_ARRAY_TASK_COUNT`: number of tasks in the array.
    pub slurm_array_task_count: Option<String>,
    /// `SLURM_ARRAY_TASK_MIN`: the array's first index (1 for `--array=1-4`).
    pub slurm_array_task_min: Option<String>,
    /// `JOB_COMPLETION_INDEX`: the pod's index in a Kubernetes Indexed Job.
    pub job_completion_index: Option<String>,
}

impl ShardEnv {
    /// The variables of this process.
    pub fn from_process() -> ShardEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        ShardEnv {
            slurm_array_task_id: var("SLURM_ARRAY_TASK_ID"),
            slurm_array_task_count: var("SLURM_ARRAY_TASK_COUNT"),
            slurm_array_task_min: var("SLURM_ARRAY_TASK_MIN"),
            job_completion_index: var("JOB_COMPLETION_INDEX"),
        }
    }
}

fn parse_env(name: &'static str, value: &str) -> Result<usize> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(name, value, "expected a non-negative integer"))
}

/// This process's shard, by precedence:
/// 1. `flag` (`--shard I/N`): the environment is ignored; `shards`, when
///    given, must equal `N`;
/// 2. `SLURM_ARRAY_TASK_ID`: index = ID − `SLURM_ARRAY_TASK_MIN` (0 when
///    unset, so `--array=0-3` and `--array=1-4` both work; the array must be
///    contiguous), count = `SLURM_ARRAY_TASK_COUNT` or `shards` (equal when
///    both are set);
/// 3. `JOB_COMPLETION_INDEX`: index = its value, count = `shards`
///    (required: the Job's `completions`);
/// 4. nothing: [`ShardSpec::SINGLE`].
///
/// # Errors
/// [`Error::InvalidParameter`] naming the flag or variable when a value is
/// not a number, the index is out of range, the counts disagree, a count is
/// missing, or `shards` is given with neither `flag` nor a variable.
pub fn resolve_shard(
    flag: Option<ShardSpec>,
    shards: Option<usize>,
    env: &ShardEnv,
) -> Result<(ShardSpec, ShardSource)> {
    if shards == Some(0) {
        return Err(Error::invalid("shards", 0, "must be at least 1"));
    }
    if let Some(spec) = flag {
        spec.validate()?;
        if let Some(n) = shards
            && n != spec.count
        {
            return Err(Error::invalid(
                "shards",
                n,
                format!("disagrees with --shard {spec}"),
            ));
        }
        return Ok((spec, ShardSource::Flag));
    }
    if let Some(id) = &env.slurm_array_task_id {
        let id = parse_env("SLURM_ARRAY_TASK_ID", id)?;
        let min = match &env.slurm_array_task_min {
            Some(m) => parse_env("SLURM_ARRAY_TASK_MIN", m)?,
            None => 0,
        };
        let index = id.checked_sub(min).ok_or_else(|| {
            Error::invalid(
                "SLURM_ARRAY_TASK_ID",
                id,
                format!("is below SLURM_ARRAY_TASK_MIN = {min}"),
            )
        })?;
        let env_count = match &env.slurm_array_task_count {
            Some(c) => Some(parse_env("SLURM_ARRAY_TASK_COUNT", c)?),
            None => None,
        };
        let count = match (env_count, shards) {
            (Some(c), Some(n)) if c != n => {
                return Err(Error::invalid(
                    "shards",
                    n,
                    format!("disagrees with SLURM_ARRAY_TASK_COUNT = {c}"),
                ));
            }
            (Some(c), _) | (None, Some(c)) => c,
            (None, None) => {
                return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_COUNT",
                    "(unset)",
                    "SLURM_ARRAY_TASK_ID is set but the shard count is unknown: \
                     set SLURM_ARRAY_TASK_COUNT or give --shards N",
                ));
            }
        };
        let spec = ShardSpec { index, count };
        if count == 0 || index >= count {
            return Err(Error::invalid(
                "SLURM_ARRAY_TASK_ID",
                id,
                format!(
                    "shard index {index} (ID - SLURM_ARRAY_TASK_MIN {min}) is not below the \
                     shard count {count}: submit a contiguous array, e.g. --array=0-{}",
                    count.max(1) - 1
                ),
            ));
        }
        return Ok((spec, ShardSource::Slurm));
    }
    if let Some(i) = &env.job_completion_index {
        let index = parse_env("JOB_COMPLETION_INDEX", i)?;
        let Some(count) = shards else {
            return Err(Error::invalid(
                "shards",
                "(unset)",
                "JOB_COMPLETION_INDEX is set: give --shards N (the Job's completions)",
            ));
        };
        if index >= count {
            return Err(Error::invalid(
                "JOB_COMPLETION_INDEX",
                index,
                format!("is not below --shards {count}"),
            ));
        }
        return Ok((ShardSpec { index, count }, ShardSource::Kubernetes));
    }
    if let Some(n) = shards {
        return Err(Error::invalid(
            "shards",
            n,
            "neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set: give --shard I/N",
        ));
    }
    Ok((ShardSpec::SINGLE, ShardSource::Single))
}

/// A tile as the planner sees it: its name and its header's point count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTile {
    /// Path relative to the input folder, `/`-separated; unique.
    pub name: String,
    /// Point count from the header (0 for a tile whose header is unreadable).
    pub points: u64,
}

/// A tile of a [`ShardPlan`] and the shard it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTile {
    /// Path relative to the input folder, `/`-separated.
    pub name: String,
    /// Point count from the header.
    pub points: u64,
    /// 0-based shard index.
    pub shard: usize,
}

/// The load of one shard of a [`ShardPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLoad {
    /// 0-based shard index.
    pub index: usize,
    /// Number of tiles.
    pub tiles: usize,
    /// Sum of the tiles' header point counts.
    pub points: u64,
}

/// Tiles split into shards (see [`plan_shards`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// Number of shards, ≥ 1 (shards may be empty when tiles are fewer).
    pub shard_count: usize,
    /// 16 hex digits (FNV-1a, 64 bits) of the shard count and every tile's
    /// name, point count and shard: equal plans have equal fingerprints.
    pub fingerprint: String,
    /// Every tile, in name order (byte order of the UTF-8 names).
    pub tiles: Vec<PlannedTile>,
    /// Every shard, by index.
    pub shards: Vec<ShardLoad>,
}

impl ShardPlan {
    /// The tiles of `shard`, in name order (empty for an unknown shard).
    pub fn tiles_of(&self, shard: usize) -> impl Iterator<Item = &PlannedTile> + '_ {
        self.tiles.iter().filter(move |t| t.shard == shard)
    }

    /// The largest shard's points over the mean shard's (1 = perfectly
    /// balanced; 1 also when there are no points).
    pub fn imbalance(&self) -> f64 {
        let total: u64 = self.shards.iter().map(|s| s.points).sum();
        let max = self.shards.iter().map(|s| s.points).max().unwrap_or(0);
        if total == 0 {
            1.0
        } else {
            max as f64 * self.shard_count as f64 / total as f64
        }
    }
}

/// FNV-1a, 64 bits: a stable hash (the same on every machine and version),
/// for fingerprints.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Splits `tiles` into `shard_count` shards balanced by point count.
///
/// # Algorithm
/// Longest processing time first: tiles are sorted by name, then taken by
/// decreasing point count (equal counts in name order) and each goes to the
/// shard with the fewest points so far (equal loads: the lowest index). The
/// largest shard holds at most 4/3 of the optimum's points (Graham's bound).
/// The result depends only on the names and counts, not on the order of
/// `tiles`.
///
/// # Complexity
/// O(T log T + T log N) time, O(T + N) memory for T tiles and N shards.
///
/// # Errors
/// [`Error::InvalidParameter`] when `shard_count` is 0 (`shards`) or two
/// tiles have the same name (`tiles`).
pub fn plan_shards(tiles: &[PlanTile], shard_count: usize) -> Result<ShardPlan> {
    if shard_count == 0 {
        return Err(Error::invalid("shards", 0, "must be at least 1"));
    }
    let mut sorted: Vec<&PlanTile> = tiles.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = sorted.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::invalid(
            "tiles",
            &w[0].name,
            "tile names must be unique",
        ));
    }
    let mut lpt: Vec<usize> = (0..sorted.len()).collect();
    lpt.sort_by_key(|&i| (Reverse(sorted[i].points), i));
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> =
        (0..shard_count).map(|s| Reverse((0, s))).collect();
    let mut shard_of = vec![0; sorted.len()];
    for i in lpt {
        if let Some(Reverse((load, s))) = heap.pop() {
            shard_of[i] = s;
            heap.push(Reverse((load.saturating_add(sorted[i].points), s)));
        }
    }
    let planned: Vec<PlannedTile> = sorted
        .iter()
        .zip(&shard_of)
        .map(|(t, &shard)| PlannedTile {
            name: t.name.clone(),
            points: t.points,
            shard,
        })
        .collect();
    let mut shards: Vec<ShardLoad> = (0..shard_count)
        .map(|index| ShardLoad {
            index,
            tiles: 0,
            points: 0,
        })
        .collect();
    for t in &planned {
        shards[t.shard].tiles += 1;
        shards[t.shard].points = shards[t.shard].points.saturating_add(t.points);
    }
    let mut text = format!("pointpipe shard plan v1\n{shard_count}\n");
    for t in &planned {
        text.push_str(&format!("{}\t{}\t{}\n", t.name, t.points, t.shard));
    }
    Ok(ShardPlan {
        shard_count,
        fingerprint: format!("{:016x}", fnv1a64(text.as_bytes())),
        tiles: planned,
        shards,
    })
}

/// When two tiles overlap "far beyond a halo" (see [`find_overlaps`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlapConfig {
    /// Smallest reported overlap: the XY intersection area over the smaller
    /// tile's XY area, in (0, 1]. Default 0.25.
    pub min_fraction: f64,
}

impl Default for OverlapConfig {
    fn default() -> Self {
        OverlapConfig { min_fraction: 0.25 }
    }
}

impl OverlapConfig {
    /// Checks `min_fraction`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when it is not in (0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.min_fraction > 0.0 && self.min_fraction <= 1.0) {
            return Err(Error::invalid(
                "overlap_min_fraction",
                self.min_fraction,
                "must be in (0, 1]",
            ));
        }
        Ok(())
    }
}

/// Two tiles whose header bounds overlap far beyond a halo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileOverlap {
    /// The first tile (name order).
    pub a: String,
    /// The second tile.
    pub b: String,
    /// XY intersection area over the smaller tile's XY area, in (0, 1].
    pub fraction: f64,
}

/// Pairs of tiles whose XY header bounds overlap by at least
/// `config.min_fraction` of the smaller tile's area, with an intersection
/// wider than `halo` on both axes. Such tiles (e.g. jittered copies of one
/// area) pull each other in whole as halo, which costs time and memory
/// without being wrong.
///
/// `tiles` are (name, bounds) pairs; tiles without bounds or with zero XY
/// area are never reported. The result is sorted by the pair's positions
/// in `tiles`.
///
/// # Complexity
/// Sweep over the tiles sorted by minimum x: O(T log T + P) for T tiles and
/// P pairs whose x ranges intersect.
///
/// # Errors
/// [`Error::InvalidParameter`] from [`OverlapConfig::validate`].
pub fn find_overlaps(
    tiles: &[(String, Option<Aabb>)],
    halo: f64,
    config: &OverlapConfig,
) -> Result<Vec<TileOverlap>> {
    config.validate()?;
    let area = |b: &Aabb| (b.max.x - b.min.x) * (b.max.y - b.min.y);
    let mut boxed: Vec<(usize, Aabb)> = tiles
        .iter()
        .enumerate()
        .filter_map(|(i, (_, b))| b.filter(|b| area(b) > 0.0).map(|b| (i, b)))
        .collect();
    boxed.sort_by(|a, b| a.1.min.x.total_cmp(&b.1.min.x).then(a.0.cmp(&b.0)));
    let mut pairs = Vec::new();
    for (k, (i, a)) in boxed.iter().enumerate() {
        for (j, b) in boxed[k + 1..]
            .iter()
            .take_while(|(_, b)| b.min.x <= a.max.x)
        {
            let wx = a.max.x.min(b.max.x) - a.min.x.max(b.min.x);
            let wy = a.max.y.min(b.max.y) - a.min.y.max(b.min.y);
            if wx <= halo || wy <= halo || wx <= 0.0 || wy <= 0.0 {
                continue;
            }
            let fraction = (wx * wy / area(a).min(area(b))).min(1.0);
            if fraction >= config.min_fraction {
                let (p, q) = if i < j { (*i, *j) } else { (*j, *i) };
                pairs.push((p, q, fraction));
            }
        }
    }
    pairs.sort_by_key(|&(p, q, _)| (p, q));
    Ok(pairs
        .into_iter()
        .map(|(p, q, fraction)| TileOverlap {
            a: tiles[p].0.clone(),
            b: tiles[q].0.clone(),
            fraction,
        })
        .collect())
}

/// Index of each name in `tiles` (for mapping a plan back to input paths).
pub(crate) fn name_index(names: &[String]) -> HashMap<&str, usize> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Point3;

    fn tiles(points: &[(&str, u64)]) -> Vec<PlanTile> {
        points
            .iter()
            .map(|&(name, points)| PlanTile {
                name: name.into(),
                points,
            })
            .collect()
    }

    #[test]
    fn parses_and_prints_shards() {
        assert_eq!(
            "2/8".parse::<ShardSpec>().unwrap(),
            ShardSpec::new(2, 8).unwrap()
        );
        assert_eq!(" 0 / 1 ".parse::<ShardSpec>().unwrap(), ShardSpec::SINGLE);
        assert_eq!(ShardSpec::new(3, 4).unwrap().to_string(), "3/4");
        for bad in [
            "", "3", "4/4", "1/0", "-1/4", "a/4", "1/b", "1/2/3", "1.5/4",
        ] {
            let e = bad.parse::<ShardSpec>().unwrap_err().to_string();
            assert!(e.contains("shard"), "{bad}: {e}");
        }
    }

    #[test]
    fn shard_precedence() {
        let slurm = ShardEnv {
            slurm_array_task_id: Some("3".into()),
            slurm_array_task_count: Some("4".into()),
            job_completion_index: Some("1".into()),
            ..Default::default()
        };
        let flag = Some(ShardSpec::new(1, 2).unwrap());
        assert_eq!(
            resolve_shard(flag, None, &slurm).unwrap(),
            (ShardSpec::new(1, 2).unwrap(), ShardSource::Flag)
        );
        assert!(resolve_shard(flag, Some(3), &slurm).is_err());
        assert_eq!(
            resolve_shard(None, None, &slurm).unwrap(),
            (ShardSpec::new(3, 4).unwrap(), ShardSource::Slurm)
        );
        assert_eq!(
            resolve_shard(None, Some(4), &slurm).unwrap().1,
            ShardSource::Slurm
        );
        assert!(resolve_shard(None, Some(5), &slurm).is_err());
        let one_based = ShardEnv {
            slurm_array_task_id: Some("4".into()),
            slurm_array_task_min: Some("1".into()),
            slurm_array_task_count: Some("4".into()),
            ..Default::default()
        };
        assert_eq!(resolve_shard(None, None, &one_based).unwrap().0.index, 3);
        let k8s = ShardEnv {
            job_completion_index: Some("2".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve_shard(None, Some(3), &k8s).unwrap(),
            (ShardSpec::new(2, 3).unwrap(), ShardSource::Kubernetes)
        );
        assert!(resolve_shard(None, None, &k8s).is_err());
        assert!(resolve_shard(None, Some(2), &k8s).is_err());
        let none = ShardEnv::default();
        assert_eq!(
            resolve_shard(None, None, &none).unwrap(),
            (ShardSpec::SINGLE, ShardSource::Single)
        );
        assert!(resolve_shard(None, Some(2), &none).is_err());
        assert!(resolve_shard(None, Some(0), &none).is_err());
        for (id, count) in [
            ("x", "4"),
            ("4", "4"),
            ("1", "zero"),
            ("-1", "4"),
            ("0", "0"),
        ] {
            let env = ShardEnv {
                slurm_array_task_id: Some(id.into()),
                slurm_array_task_count: Some(count.into()),
                ..Default::default()
            };
            let e = resolve_shard(None, None, &env).unwrap_err().to_string();
            assert!(e.contains("SLURM_ARRAY_TASK"), "{id} {count}: {e}");
        }
    }

    #[test]
    fn lpt_balances_and_breaks_ties_by_name() {
        let t = tiles(&[("e", 5), ("a", 7), ("b", 7), ("c", 4), ("d", 3), ("f", 3)]);
        let plan = plan_shards(&t, 2).unwrap();
        let names: Vec<&str> = plan.tiles.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
        // LPT order: a7→0, b7→1, e5→0 (12), c4→1 (11), d3→1 (14), f3→0 (15).
        let shards: Vec<usize> = plan.tiles.iter().map(|t| t.shard).collect();
        assert_eq!(shards, [0, 1, 1, 1, 0, 0]);
        assert_eq!(plan.shards[0].points, 15);
        assert_eq!(plan.shards[1].points, 14);
        assert_eq!((plan.shards[0].tiles, plan.shards[1].tiles), (3, 3));
        // Input order does not matter; the fingerprint follows the plan.
        let mut reversed = t.clone();
        reversed.reverse();
        assert_eq!(plan_shards(&reversed, 2).unwrap(), plan);
        assert_ne!(plan_shards(&t, 3).unwrap().fingerprint, plan.fingerprint);
        let mut changed = t.clone();
        changed[0].points = 6;
        assert_ne!(
            plan_shards(&changed, 2).unwrap().fingerprint,
            plan.fingerprint
        );
    }

    #[test]
    fn plan_edges() {
        assert!(plan_shards(&tiles(&[("a", 1)]), 0).is_err());
        assert!(plan_shards(&tiles(&[("a", 1), ("a", 2)]), 2).is_err());
        let plan = plan_shards(&tiles(&[("a", 1)]), 3).unwrap();
        assert_eq!(
            plan.shards.iter().map(|s| s.tiles).collect::<Vec<_>>(),
            [1, 0, 0]
        );
        assert_eq!(plan.tiles_of(1).count(), 0);
        let empty = plan_shards(&[], 2).unwrap();
        assert!(empty.tiles.is_empty());
        assert_eq!(empty.imbalance(), 1.0);
        // Many equal tiles: counts differ by at most one.
        let many: Vec<PlanTile> = (0..101)
            .map(|i| PlanTile {
                name: format!("t{i:03}"),
                points: 1000,
            })
            .collect();
        let plan = plan_shards(&many, 7).unwrap();
        let counts: Vec<usize> = plan.shards.iter().map(|s| s.tiles).collect();
        assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
        assert!(plan.imbalance() < 1.07);
    }

    #[test]
    fn overlaps_far_beyond_the_halo() {
        let b = |x0: f64, y0: f64, w: f64| {
            Some(Aabb {
                min: Point3::new(x0, y0, 0.0),
                max: Point3::new(x0 + w, y0 + w, 1.0),
            })
        };
        let t = vec![
            ("a".to_string(), b(0.0, 0.0, 100.0)),
            ("b".to_string(), b(99.0, 0.0, 100.0)), // 1 m overlap: a halo's
            ("c".to_string(), b(10.0, 10.0, 100.0)), // 81 % of a
            ("d".to_string(), None),
            ("e".to_string(), b(50.0, 50.0, 0.0)), // zero area
        ];
        let o = find_overlaps(&t, 2.0, &OverlapConfig::default()).unwrap();
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!((o[0].a.as_str(), o[0].b.as_str()), ("a", "c"));
        assert!((o[0].fraction - 0.81).abs() < 1e-12);
        // b and c overlap by 11 m x 90 m: 9.9 % of a tile.
        let all = find_overlaps(&t, 0.5, &OverlapConfig { min_fraction: 0.01 }).unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(find_overlaps(&t, 0.5, &OverlapConfig { min_fraction: 0.0 }).is_err());
    }
}
