//! Voxel-grid downsampling: one output point per occupied voxel.
//!
//! # Voxel convention
//! Voxels are axis-aligned cubes of edge `voxel_size` metres **anchored at the
//! coordinate origin**: the voxel of a point `p` is
//! `key = floor(p / voxel_size)` per axis ([`voxel_key`]), an `i64` triple, and
//! holds the half-open box `[key·s, (key+1)·s)`. This is the convention of PCL,
//! small_gicp and KISS-ICP (with `floor`, not truncation toward zero). Open3D
//! anchors its grid at the minimum corner of the cloud instead, so its voxel
//! counts differ slightly (18,573 vs 18,592 on the KITTI frame at 0.25 m).
//!
//! 64-bit keys never overflow or collide for `|p / voxel_size| < 2^40`
//! (±1e7 m with 1 mm voxels is 1e10 ≪ 2^40 ≈ 1.1e12); beyond that
//! [`voxel_downsample`] returns [`Error::InvalidParameter`] instead of silently
//! merging voxels.
//!
//! # Output order and determinism
//! Output voxels come in **order of first occurrence**: voxel `j` is the voxel
//! of the `j`-th point (in input order) that opened a new voxel. Centroids are
//! sums accumulated per voxel in input order, so the output is bit-identical at
//! any rayon thread count.

use std::sync::atomic::{AtomicU32, Ordering};

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// Largest `|p / voxel_size|` accepted: keys stay in ±2^40, so three of them
/// pack into 123 bits without collision.
const MAX_ABS_KEY: f64 = (1u64 << 40) as f64;

/// Points per parallel work item when computing keys.
const KEY_CHUNK: usize = 8192;

/// How the points of one voxel become its output point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VoxelMode {
    /// Mean position, mean intensity and mean time of the voxel's points;
    /// normals (if present) summed and renormalised (zero if they cancel or no
    /// point had one). Curvature and LAS attributes come from the voxel's
    /// first point. Default.
    #[default]
    Centroid,
    /// The first point of the voxel in input order, unchanged, with all its
    /// attributes (KISS-ICP's choice: output points are real measurements).
    First,
}

/// Parameters of [`voxel_downsample`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoxelConfig {
    /// Edge length of a voxel in metres (cloud units). Must be finite and
    /// `> 0`. Default: 0.25 m (a common choice for 64-beam LiDAR frames;
    /// turns a 122k-point HDL-64 frame into about 18.6k points).
    pub voxel_size: f64,
    /// How a voxel's points are merged. Default: [`VoxelMode::Centroid`].
    pub mode: VoxelMode,
}

impl Default for VoxelConfig {
    fn default() -> Self {
        VoxelConfig {
            voxel_size: 0.25,
            mode: VoxelMode::Centroid,
        }
    }
}

impl VoxelConfig {
    /// A config with the given voxel size (metres) and the default mode.
    pub fn new(voxel_size: f64) -> Self {
        VoxelConfig {
            voxel_size,
            ..Default::default()
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `voxel_size` is not finite and `> 0`,
    /// or when its inverse is not finite (subnormal sizes).
    pub fn validate(&self) -> Result<()> {
        if !(self.voxel_size.is_finite() && self.voxel_size > 0.0) {
            return Err(Error::invalid(
                "voxel_size",
                self.voxel_size,
                "must be finite and > 0 (metres)",
            ));
        }
        if !(1.0 / self.voxel_size).is_finite() {
            return Err(Error::invalid(
                "voxel_size",
                self.voxel_size,
                "is too small (its inverse overflows)",
            ));
        }
        Ok(())
    }
}

/// The voxel of point `p`: `floor(p · inv_voxel_size)` per axis.
///
/// `inv_voxel_size` is `1 / voxel_size` in 1/metres. Uses `floor`, so
/// `-0.1 / 0.25` lands in voxel −1, not 0 (truncation toward zero would merge
/// the two voxels around each axis plane). Values outside the `i64` range
/// saturate; [`voxel_downsample`] rejects clouds where that could happen.
///
/// ```
/// use nalgebra::Point3;
/// use pointpipe::voxel::voxel_key;
/// assert_eq!(voxel_key(&Point3::new(0.3, -0.1, 0.25), 4.0), [1, -1, 1]);
/// ```
#[inline]
pub fn voxel_key(p: &Point3<f64>, inv_voxel_size: f64) -> [i64; 3] {
    [
        (p.x * inv_voxel_size).floor() as i64,
        (p.y * inv_voxel_size).floor() as i64,
        (p.z * inv_voxel_size).floor() as i64,
    ]
}

/// Voxel-grid downsampling: one point per occupied voxel.
///
/// # Parameters
/// - `cloud`: input points (finite) with any attributes.
/// - `config`: voxel size (metres) and mode; see [`VoxelConfig`].
///
/// # Returns
/// A cloud with one point per occupied voxel, in order of first occurrence
/// (see the [module docs](self)), with the same attributes as the input.
/// An empty input gives an empty output.
///
/// # Errors
/// - [`Error::InvalidParameter`] for a bad `voxel_size` or a cloud so far from
///   the origin that `|p / voxel_size| ≥ 2^40`.
/// - [`Error::NonFinite`] if a position is NaN or infinite.
///
/// # Algorithm
/// 1. Bounds of the cloud (parallel min/max) give the key range; the three
///    key components are packed into one `u64` (or `u128` when the range
///    needs more than 64 bits), relative to the minimum key.
/// 2. Keys of all points (parallel).
/// 3. Voxel ids by first occurrence: the key space is split into one hash
///    shard per rayon thread; each shard scans the keys in input order and
///    inserts its keys into an open-addressing table. The shards' voxel lists
///    are merged by first point index.
/// 4. `First`: the first points. `Centroid`: per-voxel sums in input order
///    (parallel over voxel ranges), divided by counts.
///
/// Complexity: O(n) expected time, O(n) memory.
///
/// ```
/// use nalgebra::Point3;
/// use pointpipe::PointCloud;
/// use pointpipe::voxel::{voxel_downsample, VoxelConfig};
/// let cloud = PointCloud::from_points(vec![
///     Point3::new(0.1, 0.1, 0.1),
///     Point3::new(0.2, 0.2, 0.2),
///     Point3::new(-0.1, 0.1, 0.1),
/// ]);
/// let down = voxel_downsample(&cloud, &VoxelConfig::new(0.25)).unwrap();
/// assert_eq!(down.len(), 2);
/// assert!((down.points[0] - Point3::new(0.15, 0.15, 0.15)).norm() < 1e-12);
/// assert_eq!(down.points[1], Point3::new(-0.1, 0.1, 0.1));
/// ```
pub fn voxel_downsample(cloud: &PointCloud, config: &VoxelConfig) -> Result<PointCloud> {
    voxel_downsample_with_representatives(cloud, config).map(|(down, _)| down)
}

/// Like [`voxel_downsample`], also returning for each output point the index
/// of the first input point of its voxel (its *representative*), e.g. to carry
/// attributes the cloud type does not hold. Representatives are strictly
/// increasing.
///
/// # Errors
/// As [`voxel_downsample`].
pub fn voxel_downsample_with_representatives(
    cloud: &PointCloud,
    config: &VoxelConfig,
) -> Result<(PointCloud, Vec<usize>)> {
    config.validate()?;
    let assignment = assign_voxels(&cloud.points, 1.0 / config.voxel_size)?;
    let mut down = cloud.select(&assignment.representatives);
    if config.mode == VoxelMode::Centroid {
        average_attributes(cloud, &assignment, &mut down);
    }
    Ok((down, assignment.representatives))
}

/// The voxel of every point, voxels numbered by first occurrence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoxelAssignment {
    /// For each input point, the id of its voxel (`0..representatives.len()`).
    pub voxel_of_point: Vec<u32>,
    /// For each voxel, the index of its first input point (increasing).
    pub representatives: Vec<usize>,
}

/// Groups points by voxel (steps 1–3 of [`voxel_downsample`]).
///
/// `inv_voxel_size` is `1 / voxel_size` (1/metres), finite and `> 0`.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite point; [`Error::InvalidParameter`]
/// when a key would leave ±2^40 or the cloud has `u32::MAX` points or more.
pub fn assign_voxels(points: &[Point3<f64>], inv_voxel_size: f64) -> Result<VoxelAssignment> {
    if points.is_empty() {
        return Ok(VoxelAssignment::default());
    }
    if points.len() >= u32::MAX as usize {
        return Err(Error::invalid(
            "points",
            points.len(),
            "voxel grid supports fewer than 2^32 - 1 points",
        ));
    }
    let range = key_range(points, inv_voxel_size)?;
    let bits: [u32; 3] =
        std::array::from_fn(|a| u64::BITS - ((range.max[a] - range.min[a]) as u64).leading_zeros());
    let total_bits = bits.iter().sum::<u32>();
    if total_bits <= 64 {
        let packer = Packer::new(range.min, bits);
        let keys = compute_keys(points, inv_voxel_size, |k| packer.pack_u64(k));
        Ok(group_by_key(&keys))
    } else {
        let packer = Packer::new(range.min, bits);
        let keys = compute_keys(points, inv_voxel_size, |k| packer.pack_u128(k));
        Ok(group_by_key(&keys))
    }
}

/// Smallest and largest key per axis.
struct KeyRange {
    min: [i64; 3],
    max: [i64; 3],
}

/// Step 1: key range from the bounds (floor is monotone, so the keys of the
/// bounds bound the keys), with finiteness and magnitude checks.
fn key_range(points: &[Point3<f64>], inv_voxel_size: f64) -> Result<KeyRange> {
    // Min/max ignore NaN, so finiteness is tracked alongside.
    type Bounds = (Point3<f64>, Point3<f64>, bool);
    let zero = || -> Bounds {
        (
            Point3::from([f64::INFINITY; 3]),
            Point3::from([f64::NEG_INFINITY; 3]),
            true,
        )
    };
    let combine = |(lo, hi, finite): Bounds, (lo2, hi2, finite2): Bounds| -> Bounds {
        (lo.inf(&lo2), hi.sup(&hi2), finite && finite2)
    };
    let (lo, hi, finite) = points
        .par_chunks(KEY_CHUNK)
        .map(|chunk| {
            chunk.iter().fold(zero(), |(lo, hi, finite), p| {
                let ok = p.x.is_finite() & p.y.is_finite() & p.z.is_finite();
                (lo.inf(p), hi.sup(p), finite & ok)
            })
        })
        .reduce(zero, combine);
    if !finite
        && let Some(index) = points
            .iter()
            .position(|p| !p.coords.iter().all(|c| c.is_finite()))
    {
        return Err(Error::NonFinite {
            what: "voxel grid input".into(),
            index,
        });
    }
    let too_far = |c: f64| (c * inv_voxel_size).abs() >= MAX_ABS_KEY;
    if lo
        .coords
        .iter()
        .chain(hi.coords.iter())
        .any(|&c| too_far(c))
    {
        return Err(Error::invalid(
            "voxel_size",
            1.0 / inv_voxel_size,
            format!(
                "too small for coordinates spanning {lo} to {hi}: |p / voxel_size| must stay below 2^40"
            ),
        ));
    }
    Ok(KeyRange {
        min: voxel_key(&lo, inv_voxel_size),
        max: voxel_key(&hi, inv_voxel_size),
    })
}

/// Packs a key triple, relative to the minimum key, into one integer.
struct Packer {
    min: [i64; 3],
    shift_y: u32,
    shift_z: u32,
}

impl Packer {
    fn new(min: [i64; 3], bits: [u32; 3]) -> Self {
        Packer {
            min,
            shift_y: bits[0],
            shift_z: bits[0] + bits[1],
        }
    }

    #[inline]
    fn pack_u64(&self, k: [i64; 3]) -> u64 {
        let x = (k[0] - self.min[0]) as u64;
        let y = (k[1] - self.min[1]) as u64;
        let z = (k[2] - self.min[2]) as u64;
        x | y.unbounded_shl(self.shift_y) | z.unbounded_shl(self.shift_z)
    }

    #[inline]
    fn pack_u128(&self, k: [i64; 3]) -> u128 {
        let x = (k[0] - self.min[0]) as u128;
        let y = (k[1] - self.min[1]) as u128;
        let z = (k[2] - self.min[2]) as u128;
        x | (y << self.shift_y) | (z << self.shift_z)
    }
}

/// Step 2: packed key of every point (parallel, in input order).
fn compute_keys<K: Send>(
    points: &[Point3<f64>],
    inv_voxel_size: f64,
    pack: impl Fn([i64; 3]) -> K + Sync,
) -> Vec<K> {
    let mut keys = Vec::with_capacity(points.len());
    points
        .par_iter()
        .with_min_len(KEY_CHUNK)
        .map(|p| pack(voxel_key(p, inv_voxel_size)))
        .collect_into_vec(&mut keys);
    keys
}

/// A packed voxel key that can be hashed.
trait PackedKey: Copy + Eq + Default + Send + Sync {
    fn hash(self) -> u64;
}

impl PackedKey for u64 {
    #[inline]
    fn hash(self) -> u64 {
        mix64(self)
    }
}

impl PackedKey for u128 {
    #[inline]
    fn hash(self) -> u64 {
        mix64((self as u64) ^ mix64((self >> 64) as u64))
    }
}

/// A 64-bit mixer (the finaliser of MurmurHash3's `fmix64`): every output bit
/// depends on every input bit.
#[inline]
fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Marks an empty slot of a [`VoxelTable`].
const EMPTY: u32 = u32::MAX;

/// Open-addressing (linear probing) map from packed key to voxel id.
struct VoxelTable<K> {
    keys: Vec<K>,
    ids: Vec<u32>,
    mask: usize,
    len: usize,
}

impl<K: PackedKey> VoxelTable<K> {
    fn with_capacity(expected: usize) -> Self {
        let slots = (expected * 2).next_power_of_two().max(16);
        VoxelTable {
            keys: vec![K::default(); slots],
            ids: vec![EMPTY; slots],
            mask: slots - 1,
            len: 0,
        }
    }

    /// The id of `key`, inserting it with id `self.len` when absent; returns
    /// `(id, inserted)`.
    #[inline]
    fn get_or_insert(&mut self, key: K, hash: u64) -> (u32, bool) {
        let mut slot = hash as usize & self.mask;
        loop {
            let id = self.ids[slot];
            if id == EMPTY {
                let id = self.len as u32;
                self.keys[slot] = key;
                self.ids[slot] = id;
                self.len += 1;
                if self.len * 4 > self.ids.len() * 3 {
                    self.grow();
                }
                return (id, true);
            }
            if self.keys[slot] == key {
                return (id, false);
            }
            slot = (slot + 1) & self.mask;
        }
    }

    fn grow(&mut self) {
        let slots = self.ids.len() * 2;
        let old_keys = std::mem::replace(&mut self.keys, vec![K::default(); slots]);
        let old_ids = std::mem::replace(&mut self.ids, vec![EMPTY; slots]);
        self.mask = slots - 1;
        for (key, id) in old_keys.into_iter().zip(old_ids) {
            if id != EMPTY {
                let mut slot = key.hash() as usize & self.mask;
                while self.ids[slot] != EMPTY {
                    slot = (slot + 1) & self.mask;
                }
                self.keys[slot] = key;
                self.ids[slot] = id;
            }
        }
    }
}

/// The voxels of one hash shard.
struct Shard {
    /// First point index of each of the shard's voxels, increasing.
    representatives: Vec<u32>,
}

/// Step 3: voxel ids by first occurrence, sharded by hash over the rayon
/// threads. The result does not depend on the shard count.
fn group_by_key<K: PackedKey>(keys: &[K]) -> VoxelAssignment {
    let n = keys.len();
    let shard_count = rayon::current_num_threads().clamp(1, 64);
    if shard_count == 1 {
        let mut voxel_of_point = vec![0u32; n];
        let shard = scan_shard(keys, |_| true, |i, id| voxel_of_point[i] = id);
        return VoxelAssignment {
            voxel_of_point,
            representatives: shard.representatives.iter().map(|&i| i as usize).collect(),
        };
    }
    let shard_of = |hash: u64| ((hash >> 32) as usize * shard_count) >> 32;
    // Each shard writes the local ids of its own points only: the points are
    // split by shard, so the writes are disjoint (atomics only to share the
    // vector between tasks; relaxed stores are plain stores).
    let local_id: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
    let shards: Vec<Shard> = (0..shard_count)
        .into_par_iter()
        .map(|s| {
            scan_shard(
                keys,
                |hash| shard_of(hash) == s,
                |i, id| local_id[i].store(id, Ordering::Relaxed),
            )
        })
        .collect();
    let (representatives, global_of_local) = merge_shards(&shards);
    let voxel_of_point = keys
        .par_iter()
        .zip(local_id.par_iter())
        .with_min_len(KEY_CHUNK)
        .map(|(key, local)| {
            global_of_local[shard_of(key.hash())][local.load(Ordering::Relaxed) as usize]
        })
        .collect();
    VoxelAssignment {
        voxel_of_point,
        representatives,
    }
}

/// Scans `keys` in input order, numbering the distinct keys whose hash is
/// accepted by `in_shard` by first occurrence; calls `store(point, id)` for
/// every accepted point. A point with the same key as the previous accepted
/// point (common in scan order) skips the hash table.
fn scan_shard<K: PackedKey>(
    keys: &[K],
    in_shard: impl Fn(u64) -> bool,
    mut store: impl FnMut(usize, u32),
) -> Shard {
    let mut table = VoxelTable::with_capacity(keys.len() / 8);
    let mut representatives = Vec::new();
    let mut previous: Option<(K, u32)> = None;
    for (i, &key) in keys.iter().enumerate() {
        let id = match previous {
            Some((prev_key, prev_id)) if prev_key == key => prev_id,
            _ => {
                let hash = key.hash();
                if !in_shard(hash) {
                    continue;
                }
                let (id, inserted) = table.get_or_insert(key, hash);
                if inserted {
                    representatives.push(i as u32);
                }
                id
            }
        };
        previous = Some((key, id));
        store(i, id);
    }
    Shard { representatives }
}

/// Merges the shards' voxel lists by first point index: returns the global
/// representatives and, per shard, the global id of each local voxel.
fn merge_shards(shards: &[Shard]) -> (Vec<usize>, Vec<Vec<u32>>) {
    let total: usize = shards.iter().map(|s| s.representatives.len()).sum();
    let mut representatives = Vec::with_capacity(total);
    let mut global_of_local: Vec<Vec<u32>> = shards
        .iter()
        .map(|s| Vec::with_capacity(s.representatives.len()))
        .collect();
    let mut heads = vec![0usize; shards.len()];
    for global in 0..total as u32 {
        let mut best: Option<(usize, u32)> = None;
        for (s, shard) in shards.iter().enumerate() {
            if let Some(&first) = shard.representatives.get(heads[s])
                && best.is_none_or(|(_, b)| first < b)
            {
                best = Some((s, first));
            }
        }
        let Some((s, first)) = best else { break };
        heads[s] += 1;
        representatives.push(first as usize);
        global_of_local[s].push(global);
    }
    (representatives, global_of_local)
}

/// Step 4 (centroid): replaces position, intensity, time and normal of each
/// output point with the mean over its voxel.
fn average_attributes(cloud: &PointCloud, assignment: &VoxelAssignment, down: &mut PointCloud) {
    let voxels = assignment.representatives.len();
    let vid = &assignment.voxel_of_point;
    let reps = &assignment.representatives;
    let points = &cloud.points;
    // Positions relative to the representative keep full precision far
    // from the origin.
    let sums = sum_per_voxel::<4>(vid, voxels, |i| {
        let d = points[i] - points[reps[vid[i] as usize]];
        [d.x, d.y, d.z, 1.0]
    });
    for ((p, s), &r) in down.points.iter_mut().zip(&sums).zip(reps) {
        let count = s[3];
        *p = points[r] + Vector3::new(s[0], s[1], s[2]) / count;
    }
    let counts = || sums.iter().map(|s| s[3]);
    if let (Some(out), Some(values)) = (down.intensity.as_mut(), cloud.intensity.as_ref()) {
        let sum = sum_per_voxel::<1>(vid, voxels, |i| [f64::from(values[i])]);
        for ((o, s), c) in out.iter_mut().zip(&sum).zip(counts()) {
            *o = (s[0] / c) as f32;
        }
    }
    if let (Some(out), Some(values)) = (down.time.as_mut(), cloud.time.as_ref()) {
        // Relative to the representative's time, like positions.
        let sum = sum_per_voxel::<1>(vid, voxels, |i| [values[i] - values[reps[vid[i] as usize]]]);
        for (((o, s), c), &r) in out.iter_mut().zip(&sum).zip(counts()).zip(reps) {
            *o = values[r] + s[0] / c;
        }
    }
    if let (Some(out), Some(values)) = (down.normals.as_mut(), cloud.normals.as_ref()) {
        let sum = sum_per_voxel::<3>(vid, voxels, |i| values[i].into());
        for (o, s) in out.iter_mut().zip(&sum) {
            let n = Vector3::from(*s);
            let norm = n.norm();
            *o = if norm > 0.0 && norm.is_finite() {
                n / norm
            } else {
                Vector3::zeros()
            };
        }
    }
}

/// Sums `value(i)` per voxel, each voxel in input order. Parallel over
/// contiguous voxel ranges (each task scans all points and keeps its range),
/// so the result is bit-identical at any thread count.
fn sum_per_voxel<const D: usize>(
    voxel_of_point: &[u32],
    voxels: usize,
    value: impl Fn(usize) -> [f64; D] + Sync,
) -> Vec<[f64; D]> {
    let mut sums = vec![[0.0; D]; voxels];
    let tasks = rayon::current_num_threads().max(1);
    let block = voxels.div_ceil(tasks).max(1);
    sums.par_chunks_mut(block).enumerate().for_each(|(b, out)| {
        let start = b * block;
        for (i, &v) in voxel_of_point.iter().enumerate() {
            let local = (v as usize).wrapping_sub(start);
            if let Some(acc) = out.get_mut(local) {
                let x = value(i);
                for (a, x) in acc.iter_mut().zip(x) {
                    *a += x;
                }
            }
        }
    });
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(points: &[[f64; 3]]) -> PointCloud {
        PointCloud::from_points(points.iter().map(|&p| Point3::from(p)).collect())
    }

    #[test]
    fn rejects_bad_voxel_sizes() {
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::MIN_POSITIVE / 4.0] {
            let r = voxel_downsample(&cloud(&[[0.0; 3]]), &VoxelConfig::new(s));
            assert!(matches!(r, Err(Error::InvalidParameter { .. })), "{s}");
        }
    }

    #[test]
    fn empty_gives_empty() {
        let (down, reps) =
            voxel_downsample_with_representatives(&PointCloud::default(), &VoxelConfig::default())
                .unwrap();
        assert!(down.is_empty() && reps.is_empty());
    }

    #[test]
    fn non_finite_is_an_error() {
        let c = cloud(&[[0.0; 3], [f64::NAN, 0.0, 0.0]]);
        assert!(matches!(
            voxel_downsample(&c, &VoxelConfig::default()),
            Err(Error::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn too_far_is_an_error() {
        let c = cloud(&[[1e9, 0.0, 0.0]]);
        assert!(matches!(
            voxel_downsample(&c, &VoxelConfig::new(1e-4)),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn floor_not_truncation() {
        let c = cloud(&[[-0.1, 0.0, 0.0], [0.1, 0.0, 0.0], [-0.0, 0.0, 0.0]]);
        let (down, reps) =
            voxel_downsample_with_representatives(&c, &VoxelConfig::new(1.0)).unwrap();
        assert_eq!(down.len(), 2);
        assert_eq!(reps, vec![0, 1]);
    }

    #[test]
    fn centroid_averages_attributes() {
        let mut c = cloud(&[[0.1, 0.1, 0.1], [5.0, 5.0, 5.0], [0.3, 0.1, 0.1]]);
        c.intensity = Some(vec![1.0, 7.0, 3.0]);
        c.time = Some(vec![10.0, 20.0, 12.0]);
        c.normals = Some(vec![Vector3::x(), Vector3::z(), Vector3::y()]);
        c.curvature = Some(vec![0.1, 0.2, 0.3]);
        let down = voxel_downsample(&c, &VoxelConfig::new(1.0)).unwrap();
        assert_eq!(down.len(), 2);
        assert!((down.points[0] - Point3::new(0.2, 0.1, 0.1)).norm() < 1e-15);
        assert_eq!(down.intensity, Some(vec![2.0, 7.0]));
        assert_eq!(down.time, Some(vec![11.0, 20.0]));
        let n = down.normals.unwrap();
        assert!((n[0] - Vector3::new(1.0, 1.0, 0.0).normalize()).norm() < 1e-15);
        assert_eq!(n[1], Vector3::z());
        assert_eq!(down.curvature, Some(vec![0.1, 0.2]));
    }

    #[test]
    fn first_mode_keeps_first_point() {
        let c = cloud(&[[0.1, 0.1, 0.1], [5.0, 5.0, 5.0], [0.3, 0.1, 0.1]]);
        let down = voxel_downsample(
            &c,
            &VoxelConfig {
                voxel_size: 1.0,
                mode: VoxelMode::First,
            },
        )
        .unwrap();
        assert_eq!(down.points, vec![c.points[0], c.points[1]]);
    }

    #[test]
    fn merge_orders_by_first_occurrence() {
        let shards = [
            Shard {
                representatives: vec![0, 3, 4],
            },
            Shard {
                representatives: vec![1, 2, 7],
            },
        ];
        let (reps, map) = merge_shards(&shards);
        assert_eq!(reps, vec![0, 1, 2, 3, 4, 7]);
        assert_eq!(map, vec![vec![0, 3, 4], vec![1, 2, 5]]);
    }

    #[test]
    fn table_grows_and_finds() {
        let mut t = VoxelTable::<u64>::with_capacity(1);
        for k in 0..1000u64 {
            assert_eq!(t.get_or_insert(k * 7, (k * 7).hash()), (k as u32, true));
        }
        for k in 0..1000u64 {
            assert_eq!(t.get_or_insert(k * 7, (k * 7).hash()), (k as u32, false));
        }
    }
}
