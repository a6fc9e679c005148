//! Voxel-grid downsampling: one output point per occupied voxel.
//!
//! # Voxel convention
//! Voxels are axis-aligned cubes of edge `voxel_size` metres **anchored at the
//! coordinate origin**: the voxel of a point `p` is
//! `key = floor(p / voxel_size)` per axis ([`VoxelGrid::key`]), an `i64` triple, and
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
//! the voxel's minimum corner plus the mean offset from it; the offsets are
//! summed per run of consecutive points in one voxel (runs never cross a
//! span of 64 points), as differences of the span's prefix sums, and the
//! runs are added to their voxels in input order. Spans and blocks have a
//! fixed size, so the output is bit-identical at any rayon thread count.
//!
//! # Implementation
//! A branch-free scan finds the runs of consecutive points in one voxel; each
//! run is merged into one open-addressing table (sized for `n / 6` voxels,
//! grown once after the first block when the data is sparse), prefetching a
//! fixed distance ahead. Measurements and rejected alternatives:
//! `docs/performance.md`, "Voxel grid".

use nalgebra::{Point3, Vector3};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::cloud::PointCloud;
use crate::error::{Error, Result};
use crate::prefetch::prefetch;

/// Largest `|p / voxel_size|` accepted: keys stay in ±2^40, so three of them
/// pack into 123 bits without collision.
const MAX_ABS_KEY: f64 = (1u64 << 40) as f64;

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

/// The integer coordinates of a voxel: `floor(p / voxel_size)` per axis
/// (see the [module docs](self) for the convention).
pub type VoxelKey = [i64; 3];

/// A hash map keyed by voxel: the one map type of the crate's sparse voxel
/// structures (the odometry's local and merged maps, the viewer's
/// decimation, the batch halo). FxHash has no random seed, so behaviour is
/// reproducible, and hashes a key in a few multiplications.
pub(crate) type VoxelMap<V> = rustc_hash::FxHashMap<VoxelKey, V>;

/// A grid of cubic voxels of `voxel_size` metres anchored at the origin:
/// metres in, [`VoxelKey`]s out.
///
/// Every voxel structure of the crate keys points through this type, so
/// they agree on which voxel a point is in (downsampling, the odometry's
/// maps, the batch halo, the viewer).
///
/// # Example
/// ```
/// use nalgebra::Point3;
/// use pointpipe::voxel::VoxelGrid;
/// let grid = VoxelGrid::new(0.25).unwrap();
/// assert_eq!(grid.key(&Point3::new(0.3, -0.1, 0.25)), [1, -1, 1]);
/// assert!(VoxelGrid::new(0.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoxelGrid {
    voxel_size: f64,
    inv_voxel_size: f64,
}

impl VoxelGrid {
    /// A grid of `voxel_size` metres.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] as [`VoxelConfig::validate`]: `voxel_size`
    /// not finite and `> 0`, or too small for its inverse to be finite.
    pub fn new(voxel_size: f64) -> Result<Self> {
        VoxelConfig::new(voxel_size).validate()?;
        Ok(VoxelGrid {
            voxel_size,
            inv_voxel_size: 1.0 / voxel_size,
        })
    }

    /// The voxel edge in metres.
    pub fn voxel_size(&self) -> f64 {
        self.voxel_size
    }

    /// `1 / voxel_size`, in 1/metres.
    pub fn inv_voxel_size(&self) -> f64 {
        self.inv_voxel_size
    }

    /// The voxel of `p` (metres): `floor(p · (1 / voxel_size))` per axis.
    ///
    /// Uses `floor`, so `-0.1` m in a 0.25 m grid lands in voxel −1, not 0
    /// (truncation toward zero would merge the two voxels around each axis
    /// plane). Values outside the `i64` range saturate; [`voxel_downsample`]
    /// rejects clouds where that could happen. O(1).
    #[inline]
    pub fn key(&self, p: &Point3<f64>) -> VoxelKey {
        voxel_key(p, self.inv_voxel_size)
    }
}

/// The voxel of point `p`: `floor(p · inv_voxel_size)` per axis, as
/// [`VoxelGrid::key`] (which is the public way to key a point).
#[inline]
pub(crate) fn voxel_key(p: &Point3<f64>, inv_voxel_size: f64) -> VoxelKey {
    [
        floor_to_i64(p.x * inv_voxel_size),
        floor_to_i64(p.y * inv_voxel_size),
        floor_to_i64(p.z * inv_voxel_size),
    ]
}

/// `x.floor() as i64` without a libm call (baseline x86-64 has no SSE4.1
/// `roundsd`, so `f64::floor` is a function call): truncate, then step down
/// for negative non-integers. Exact for `|x| < 2^63`; saturates beyond.
#[inline(always)]
fn floor_to_i64(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) > x {
        t.saturating_sub(1)
    } else {
        t
    }
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
/// 1. Key packing without a bounds pass: 21 bits per axis, centred on the
///    key of the first point (±2^20 voxels, e.g. ±262 km at 0.25 m), into one
///    `u64`. If any point falls outside (or is not finite), fall back to a
///    parallel bounds pass (finiteness and ±2^40 checks) and pack the keys
///    relative to the minimum key with the bits each axis needs (`u64`, or
///    `u128` beyond 64 bits), then redo steps 2–3.
/// 2. The points are cut into blocks of a fixed size (4,096 points,
///    independent of the thread count). One pass per block without
///    data-dependent branches finds the **runs** (maximal sequences of
///    consecutive points with the same key, cut at every 64th point) and
///    the prefix sums of `p − corner of p's voxel` and of the intensities
///    over each 64-point span (`Centroid` only).
/// 3. The blocks' runs are merged **in block order** into one global table,
///    one lookup per run: a voxel not seen yet gets the next id (so ids
///    follow first occurrence), and every run adds its sums (a difference of
///    two prefix sums) and point count to its voxel. Time and normals are
///    then added per point, in input order. With one thread each block is
///    merged right after its scan; with more, all threads claim blocks from
///    a shared counter and the calling thread merges each as soon as it and
///    its predecessors are scanned.
/// 4. `First`: the first points. `Centroid`: corner + offset sum / count,
///    intensity and time means, renormalised normal sums.
///
/// Complexity: O(n) expected time, one pass over the points (two for clouds
/// that need the fallback); O(v) memory for `v` voxels plus, per block
/// being scanned or waiting for the merge, O(block size).
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
    cloud.warn_if_geographic("voxel downsampling");
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
    let request = match config.mode {
        VoxelMode::First => Request::default(),
        VoxelMode::Centroid => Request {
            positions: true,
            intensity: cloud.intensity.as_deref(),
            time: cloud.time.as_deref(),
            normals: cloud.normals.as_deref(),
        },
    };
    // Time and normals are added per point by the merge, by voxel id.
    let mut local_ids = if request.time.is_some() || request.normals.is_some() {
        vec![0u32; cloud.len()]
    } else {
        Vec::new()
    };
    let inv_voxel_size = 1.0 / config.voxel_size;
    let merged = group_points(&cloud.points, inv_voxel_size, &request, &mut local_ids)?;
    let down = match config.mode {
        VoxelMode::First => cloud.select(&merged.representatives),
        VoxelMode::Centroid => centroid_cloud(cloud, &request, &merged, inv_voxel_size),
    };
    Ok((down, merged.representatives))
}

/// Voxel downsampling fed a chunk of points at a time: the same voxels,
/// representatives and (bit for bit) the same centroids as
/// [`voxel_downsample_with_representatives`] on the concatenated chunks,
/// without holding the points. Memory: per voxel 24 + 4 bytes of sums
/// (`Centroid`) and 16–32 bytes of hash table; the representatives of the
/// voxels a chunk opens are handed out after each chunk
/// ([`VoxelStream::new_representatives`]) and not kept.
///
/// Every chunk but the last must hold a multiple of
/// [`VoxelStream::CHUNK_MULTIPLE`] points (the scan's fixed blocks then fall
/// where they fall in one call). The grid keys are packed relative to the
/// first point (±2^20 voxels per axis around it); a chunk with a point
/// outside that window (or not finite) makes [`VoxelStream::push`] return
/// `false`, after which the stream is unusable: redo the whole cloud with
/// [`voxel_downsample_with_representatives`], which handles any extent.
///
/// ```
/// use nalgebra::Point3;
/// use pointpipe::voxel::{VoxelConfig, VoxelStream};
/// let points: Vec<_> = (0..10_000).map(|i| Point3::new(i as f64 * 0.01, 0.0, 0.0)).collect();
/// let mut stream = VoxelStream::new(&VoxelConfig::new(1.0), points.len()).unwrap();
/// let mut reps = Vec::new();
/// for chunk in points.chunks(VoxelStream::CHUNK_MULTIPLE) {
///     assert!(stream.push(chunk).unwrap());
///     reps.extend_from_slice(stream.new_representatives());
/// }
/// let centroids = stream.finish(|v| points[reps[v]]);
/// assert_eq!(centroids.len(), 100);
/// assert!((centroids[0].x - 0.495).abs() < 1e-12);
/// ```
pub struct VoxelStream {
    mode: VoxelMode,
    inv_voxel_size: f64,
    packer: Option<NearPacker>,
    merger: Merger<u64>,
    /// Points pushed so far.
    pushed: usize,
    /// False once a chunk was not a multiple of [`BLOCK`] (it must be the last).
    open: bool,
}

impl VoxelStream {
    /// Every chunk but the last holds a multiple of this many points.
    pub const CHUNK_MULTIPLE: usize = BLOCK;

    /// A stream for about `expected_points` points (sizes the table; any
    /// number of points may follow).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a bad voxel size.
    pub fn new(config: &VoxelConfig, expected_points: usize) -> Result<Self> {
        config.validate()?;
        let inv_voxel_size = 1.0 / config.voxel_size;
        Ok(VoxelStream {
            mode: config.mode,
            inv_voxel_size,
            packer: None,
            merger: Merger::new(expected_points),
            pushed: 0,
            open: true,
        })
    }

    /// Adds the next chunk of points (indices `pushed..pushed + len` of the
    /// whole cloud). Returns false when a point is outside the packing
    /// window or not finite (see the [type docs](Self)).
    ///
    /// O(chunk) expected time, parallel over blocks like [`voxel_downsample`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when a chunk follows one whose length was
    /// not a multiple of [`Self::CHUNK_MULTIPLE`], or past 2^32 − 1 points.
    pub fn push(&mut self, points: &[Point3<f64>]) -> Result<bool> {
        self.merger.merged.representatives.clear();
        let Some(first) = points.first() else {
            return Ok(true);
        };
        if !self.open {
            return Err(Error::invalid(
                "chunk",
                self.pushed,
                "only the last chunk may hold a number of points that is not a multiple of 4096",
            ));
        }
        if self.pushed + points.len() >= u32::MAX as usize {
            return Err(Error::invalid(
                "points",
                self.pushed + points.len(),
                "voxel grid supports fewer than 2^32 - 1 points",
            ));
        }
        if self.packer.is_none() {
            self.packer = NearPacker::new(first, self.inv_voxel_size);
        }
        let Some(packer) = &self.packer else {
            return Ok(false);
        };
        let request = Request {
            positions: self.mode == VoxelMode::Centroid,
            ..Request::default()
        };
        let ok = scan_into(
            points,
            self.pushed,
            packer,
            &request,
            &mut [],
            &mut self.merger,
        );
        self.pushed += points.len();
        self.open = points.len().is_multiple_of(BLOCK);
        Ok(ok)
    }

    /// The representatives (indices in the whole cloud, increasing) of the
    /// voxels the last [`push`](Self::push) opened, in voxel order: voxel
    /// ids `voxel_count() - new_representatives().len()..voxel_count()`.
    pub fn new_representatives(&self) -> &[usize] {
        &self.merger.merged.representatives
    }

    /// Voxels so far.
    pub fn voxel_count(&self) -> usize {
        self.merger.table.len()
    }

    /// Bytes of the stream's table and sums in use (the table's every slot,
    /// the sums' lengths; vectors grown by doubling reserve more address
    /// space, whose untouched pages take no memory): for memory estimates.
    pub fn heap_bytes(&self) -> usize {
        let m = &self.merger.merged;
        self.merger.table.slots.len() * size_of::<Slot<u64>>()
            + m.offsets.len() * size_of::<Vector3<f64>>()
            + m.counts.len() * size_of::<u32>()
            + m.representatives.len() * size_of::<usize>()
    }

    /// The output position of every voxel, in voxel order: the centroid
    /// (`Centroid`: corner + mean offset, or the point itself for a voxel of
    /// one point) or the first point (`First`). `representative(v)` is the
    /// position of voxel `v`'s representative (its first point), exactly as
    /// pushed. The table is freed first and the sums are turned into the
    /// positions in place, so the peak is the sums, not sums + positions.
    ///
    /// O(voxels).
    pub fn finish(self, representative: impl Fn(usize) -> Point3<f64>) -> Vec<Point3<f64>> {
        let VoxelStream {
            mode,
            inv_voxel_size,
            merger,
            ..
        } = self;
        let Merger { table, merged, .. } = merger;
        let voxels = table.len();
        drop(table);
        let Merged {
            offsets, counts, ..
        } = merged;
        match mode {
            VoxelMode::First => (0..voxels).map(representative).collect(),
            // Vector3 and Point3 have the same layout: the collect reuses
            // the offsets' allocation.
            VoxelMode::Centroid => offsets
                .into_iter()
                .enumerate()
                .map(|(v, offset)| centroid(&representative(v), &offset, counts[v], inv_voxel_size))
                .collect(),
        }
    }
}

/// The first point of every occupied voxel (its *representative*), as
/// strictly increasing indices into `points`: [`VoxelMode::First`] on bare
/// positions, without building a cloud (the odometry's frame downsampling).
///
/// `inv_voxel_size` is `1 / voxel_size` (1/metres), finite and `> 0`.
///
/// # Errors
/// As [`assign_voxels`].
///
/// ```
/// use nalgebra::Point3;
/// use pointpipe::voxel::voxel_representatives;
/// let points = [Point3::new(0.1, 0.0, 0.0), Point3::new(0.2, 0.0, 0.0), Point3::new(1.5, 0.0, 0.0)];
/// assert_eq!(voxel_representatives(&points, 1.0).unwrap(), vec![0, 2]);
/// ```
pub fn voxel_representatives(points: &[Point3<f64>], inv_voxel_size: f64) -> Result<Vec<usize>> {
    let merged = group_points(points, inv_voxel_size, &Request::default(), &mut [])?;
    Ok(merged.representatives)
}

/// The voxel of every point, voxels numbered by first occurrence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoxelAssignment {
    /// For each input point, the id of its voxel (`0..representatives.len()`).
    pub voxel_of_point: Vec<u32>,
    /// For each voxel, the index of its first input point (increasing).
    pub representatives: Vec<usize>,
}

/// Groups points by voxel (steps 1–3 of [`voxel_downsample`] without sums;
/// each block records the run of each of its points, which the merge turns
/// into voxel ids).
///
/// `inv_voxel_size` is `1 / voxel_size` (1/metres), finite and `> 0`.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite point; [`Error::InvalidParameter`]
/// when a key would leave ±2^40 or the cloud has `u32::MAX` points or more.
pub fn assign_voxels(points: &[Point3<f64>], inv_voxel_size: f64) -> Result<VoxelAssignment> {
    let mut voxel_of_point = vec![0u32; points.len()];
    let merged = group_points(
        points,
        inv_voxel_size,
        &Request::default(),
        &mut voxel_of_point,
    )?;
    Ok(VoxelAssignment {
        voxel_of_point,
        representatives: merged.representatives,
    })
}

/// What the block scans accumulate besides the voxel ids.
#[derive(Default)]
struct Request<'a> {
    /// Offset sums and counts of positions (and intensity sums, if given).
    positions: bool,
    intensity: Option<&'a [f32]>,
    /// Added per point by the merge (needs per-point ids).
    time: Option<&'a [f64]>,
    /// Added per point by the merge (needs per-point ids).
    normals: Option<&'a [Vector3<f64>]>,
}

/// Smallest and largest key per axis.
struct KeyRange {
    min: [i64; 3],
    max: [i64; 3],
}

/// Steps 1–3: key packing, fused block scans, merge in block order.
fn group_points(
    points: &[Point3<f64>],
    inv_voxel_size: f64,
    request: &Request,
    local_ids: &mut [u32],
) -> Result<Merged> {
    let Some(first) = points.first() else {
        return Ok(Merged::default());
    };
    if points.len() >= u32::MAX as usize {
        return Err(Error::invalid(
            "points",
            points.len(),
            "voxel grid supports fewer than 2^32 - 1 points",
        ));
    }
    if let Some(packer) = NearPacker::new(first, inv_voxel_size)
        && let Some(merged) = scan_and_merge(points, &packer, request, local_ids)
    {
        return Ok(merged);
    }
    // Far-flung, huge or non-finite input: bounds pass, then exact packing.
    let range = key_range(points, inv_voxel_size)?;
    let bits: [u32; 3] =
        std::array::from_fn(|a| u64::BITS - ((range.max[a] - range.min[a]) as u64).leading_zeros());
    let merged = if bits.iter().sum::<u32>() <= 64 {
        let packer = RangePacker::<u64>::new(&range, bits, inv_voxel_size);
        scan_and_merge(points, &packer, request, local_ids)
    } else {
        let packer = RangePacker::<u128>::new(&range, bits, inv_voxel_size);
        scan_and_merge(points, &packer, request, local_ids)
    };
    merged.ok_or_else(|| Error::invalid("points", points.len(), "voxel keys out of range"))
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
        .par_chunks(BLOCK)
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

/// `floor(x)` for `|x| < 2^51` without the range and NaN checks of a
/// saturating `as i64`: adding `1.5·2^52` rounds `x` to an integer held in
/// the low mantissa bits, then one step down where it rounded up. Larger or
/// non-finite `x` give values beyond ±2^50, which the packers' range checks
/// reject.
#[inline(always)]
fn floor_small(x: f64) -> i64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    let y = x + MAGIC;
    let nearest = (y.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    nearest - i64::from(y - MAGIC > x)
}

/// `floor_small(p / voxel_size)` per axis, `inv_voxel_size = 1 / voxel_size`.
#[inline(always)]
fn voxel_floors(p: &Point3<f64>, inv_voxel_size: f64) -> [i64; 3] {
    [p.x, p.y, p.z].map(|c| floor_small(c * inv_voxel_size))
}

/// The minimum corner of the voxel `floors`, `floors · voxel_size` (metres).
#[inline(always)]
fn corner_of_floors(floors: [i64; 3], voxel_size: f64) -> Vector3<f64> {
    Vector3::from(floors.map(|k| k as f64 * voxel_size))
}

/// The minimum corner of the voxel of `p`, as the block scans compute it
/// (`voxel_size = 1 / inv_voxel_size`): the reference point of the voxel's
/// offset sums, so the same value for every point of the voxel.
fn voxel_corner(p: &Point3<f64>, inv_voxel_size: f64) -> Point3<f64> {
    Point3::from(corner_of_floors(
        voxel_floors(p, inv_voxel_size),
        1.0 / inv_voxel_size,
    ))
}

/// Packs the voxel key of a point into one integer.
trait KeyPacker: Sync {
    type Key: PackedKey;
    /// The packed key of the voxel `floors` (`floor_small(p / voxel_size)`
    /// per axis), and a value that is non-zero when the voxel is out of this
    /// packer's range (then the key is meaningless).
    fn pack(&self, floors: [i64; 3]) -> (Self::Key, u64);
    /// `1 / voxel_size` in 1/metres.
    fn inv_voxel_size(&self) -> f64;
}

/// Bits per axis of [`NearPacker`].
const NEAR_BITS: u32 = 21;

/// The common case, without a bounds pass: 21 bits per axis, centred on the
/// key of the first point (±2^20 voxels: ±262 km at 0.25 m, ±1 km at 1 mm).
/// Points outside (and non-finite ones) are reported, and the caller falls
/// back to [`RangePacker`].
struct NearPacker {
    inv_voxel_size: f64,
    min: [i64; 3],
}

impl NearPacker {
    /// `None` when the first point is not finite or so far out that keys in
    /// its window could leave ±2^40.
    fn new(first: &Point3<f64>, inv_voxel_size: f64) -> Option<Self> {
        let limit = MAX_ABS_KEY - f64::from(1u32 << (NEAR_BITS + 1));
        let scaled = first.coords * inv_voxel_size;
        if !scaled.iter().all(|c| c.abs() < limit) {
            return None;
        }
        let half = 1i64 << (NEAR_BITS - 1);
        Some(NearPacker {
            inv_voxel_size,
            min: voxel_key(first, inv_voxel_size).map(|k| k - half),
        })
    }
}

impl KeyPacker for NearPacker {
    type Key = u64;

    #[inline(always)]
    fn pack(&self, floors: [i64; 3]) -> (u64, u64) {
        let [x, y, z] = std::array::from_fn(|a| floors[a].wrapping_sub(self.min[a]) as u64);
        (
            x | (y << NEAR_BITS) | (z << (2 * NEAR_BITS)),
            (x | y | z) >> NEAR_BITS,
        )
    }

    fn inv_voxel_size(&self) -> f64 {
        self.inv_voxel_size
    }
}

/// The general case: each axis gets the bits its key range (from a bounds
/// pass) needs, relative to the minimum key; `u64` keys when the three fit
/// in 64 bits, else `u128`.
struct RangePacker<K> {
    inv_voxel_size: f64,
    min: [i64; 3],
    shift_y: u32,
    shift_z: u32,
    key: std::marker::PhantomData<K>,
}

impl<K> RangePacker<K> {
    fn new(range: &KeyRange, bits: [u32; 3], inv_voxel_size: f64) -> Self {
        RangePacker {
            inv_voxel_size,
            min: range.min,
            shift_y: bits[0],
            shift_z: bits[0] + bits[1],
            key: std::marker::PhantomData,
        }
    }

    /// Key components relative to the minimum key (all `≥ 0`).
    #[inline(always)]
    fn offsets(&self, floors: [i64; 3]) -> [u64; 3] {
        std::array::from_fn(|a| (floors[a] - self.min[a]) as u64)
    }
}

impl KeyPacker for RangePacker<u64> {
    type Key = u64;

    #[inline(always)]
    fn pack(&self, floors: [i64; 3]) -> (u64, u64) {
        let [x, y, z] = self.offsets(floors);
        // A shift of 64 only occurs when the shifted components are all 0.
        (
            x | y.wrapping_shl(self.shift_y) | z.wrapping_shl(self.shift_z),
            0,
        )
    }

    fn inv_voxel_size(&self) -> f64 {
        self.inv_voxel_size
    }
}

impl KeyPacker for RangePacker<u128> {
    type Key = u128;

    #[inline(always)]
    fn pack(&self, floors: [i64; 3]) -> (u128, u64) {
        let [x, y, z] = self.offsets(floors).map(u128::from);
        (x | (y << self.shift_y) | (z << self.shift_z), 0)
    }

    fn inv_voxel_size(&self) -> f64 {
        self.inv_voxel_size
    }
}

/// A packed voxel key that can be hashed.
trait PackedKey: Copy + Eq + Default + Send + Sync {
    /// A hash whose high bits depend on every key bit.
    fn hash(self) -> u64;
}

/// 2^64 / golden ratio (Fibonacci hashing, Knuth TAOCP vol. 3 §6.4).
const FIBONACCI: u64 = 0x9e37_79b9_7f4a_7c15;

impl PackedKey for u64 {
    #[inline(always)]
    fn hash(self) -> u64 {
        self.wrapping_mul(FIBONACCI)
    }
}

impl PackedKey for u128 {
    #[inline(always)]
    fn hash(self) -> u64 {
        ((self as u64)
            ^ ((self >> 64) as u64)
                .wrapping_mul(FIBONACCI)
                .rotate_left(29))
        .wrapping_mul(FIBONACCI)
    }
}

/// One slot of a [`KeyTable`]: a key and its id `+ 1` (0: empty).
#[derive(Clone, Copy)]
struct Slot<K> {
    key: K,
    id1: u32,
}

/// Open-addressing (linear probing) map from packed key to voxel id; the
/// slot of a key is the top bits of its hash. Ids are stored `+ 1` so that an
/// all-zero slot is empty.
struct KeyTable<K> {
    slots: Vec<Slot<K>>,
    /// `64 − log2(slots.len())`.
    shift: u32,
    /// Keys held.
    len: usize,
}

impl<K: PackedKey> KeyTable<K> {
    /// A table holding `expected` keys at load ≤ 3/4 without growing.
    fn with_capacity(expected: usize) -> Self {
        let slots = (expected * 4 / 3 + 1).next_power_of_two().max(64);
        KeyTable {
            slots: Self::empty_slots(slots),
            shift: 64 - slots.trailing_zeros(),
            len: 0,
        }
    }

    fn empty_slots(n: usize) -> Vec<Slot<K>> {
        vec![
            Slot {
                key: K::default(),
                id1: 0
            };
            n
        ]
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The id of `key`, inserting it with id `self.len()` when absent;
    /// returns `(id, inserted)`.
    #[inline(always)]
    fn get_or_insert(&mut self, key: K) -> (u32, bool) {
        let mask = self.slots.len() - 1;
        let mut slot = (key.hash() >> self.shift) as usize;
        loop {
            let Slot { key: k, id1 } = self.slots[slot];
            if id1 == 0 {
                let id = self.len as u32;
                self.slots[slot] = Slot { key, id1: id + 1 };
                self.len += 1;
                if self.len * 4 > self.slots.len() * 3 {
                    self.grow();
                }
                return (id, true);
            }
            if k == key {
                return (id1 - 1, false);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Grows the table (if needed) to hold `expected` keys at load ≤ 3/4,
    /// rehashing its keys once.
    fn reserve(&mut self, expected: usize) {
        let slots = (expected * 4 / 3 + 1).next_power_of_two();
        if slots > self.slots.len() {
            self.rehash(slots);
        }
    }

    fn grow(&mut self) {
        self.rehash(self.slots.len() * 2);
    }

    /// Moves the keys into a table of `slots` slots (a power of two larger
    /// than the current one). Where a key lands depends on the order of
    /// insertion, its id does not.
    fn rehash(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, Self::empty_slots(slots));
        self.shift = 64 - slots.trailing_zeros();
        let mask = slots - 1;
        for entry in old.into_iter().filter(|e| e.id1 != 0) {
            let key = entry.key;
            let mut slot = (key.hash() >> self.shift) as usize;
            while self.slots[slot].id1 != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = entry;
        }
    }

    /// Prefetches the home slot of `key`, so that the cache line is on its
    /// way when the key's own probe comes.
    #[inline(always)]
    fn touch(&self, key: K) {
        let slot = (key.hash() >> self.shift) as usize;
        if let Some(s) = self.slots.get(slot) {
            prefetch(s);
        }
    }
}

/// Points per block of the run scan (step 2). Fixed, so the runs – and thus
/// the summation order and the output bits – do not depend on the thread
/// count.
const BLOCK: usize = 4_096;

/// Sums of the time and normals of one voxel.
#[derive(Clone, Copy, Default)]
struct AttributeSum {
    /// Sum of `t − t(first point)`.
    time: f64,
    normal: Vector3<f64>,
}

/// The runs of one block (step 2's output, step 3's input): maximal
/// sequences of consecutive points with the same voxel key, in input order.
/// Buffers of the block's length, reused from block to block.
#[derive(Default)]
struct BlockRuns<K> {
    /// Index in the cloud of the block's first point.
    start: usize,
    /// Voxel key of each run (the run count is its length).
    keys: Vec<K>,
    /// Offset in the block of each run's first point; after the last run,
    /// the block's length.
    starts: Vec<u32>,
    /// Prefix sums over the run's span ([`RUN_SPAN`] points) of
    /// `p − corner of p's voxel` (x, y, z) and of the intensities (0 without
    /// them), up to the end of each run (`Centroid` only).
    sums: Vec<[f64; 4]>,
}

/// The voxels of the whole cloud, by first occurrence. The sums are kept in
/// separate arrays (24 + 4 bytes per voxel, plus 8 with intensity): a survey
/// tile at a fine voxel size has about one voxel per point, so every byte
/// per voxel counts. A voxel's minimum corner (the reference of its offset
/// sums) is not stored: it is recomputed from its representative
/// ([`voxel_corner`]), which gives the same value as for any of its points.
#[derive(Default)]
struct Merged {
    representatives: Vec<usize>,
    /// Per voxel: sum of `p − corner` over its points (`Centroid` only).
    offsets: Vec<Vector3<f64>>,
    /// Per voxel: its number of points (`Centroid` only).
    counts: Vec<u32>,
    /// Per voxel: sum of the intensities (with intensity only).
    intensity: Vec<f64>,
    attributes: Vec<AttributeSum>,
}

/// A monomorphised [`scan_into_with`].
type ScanFn<P> =
    fn(&[Point3<f64>], usize, &P, &Request, &mut [u32], &mut Merger<<P as KeyPacker>::Key>) -> bool;

/// Steps 2–3 for one packer; `None` if a point was out of its range.
/// `local_ids` is empty or one id per point (then it ends up holding the
/// global voxel ids).
fn scan_and_merge<P: KeyPacker>(
    points: &[Point3<f64>],
    packer: &P,
    request: &Request,
    local_ids: &mut [u32],
) -> Option<Merged> {
    let mut merger = Merger::new(points.len());
    scan_into(points, 0, packer, request, local_ids, &mut merger).then_some(merger.merged)
}

/// Steps 2–3 of the points `offset..offset + points.len()` of a cloud into
/// `merger` (which holds the voxels of the points before `offset`; `offset`
/// is a multiple of [`BLOCK`], so blocks and spans fall where they fall in
/// one call over the whole cloud); false if a point was out of the packer's
/// range (the merger is then incomplete).
fn scan_into<P: KeyPacker>(
    points: &[Point3<f64>],
    offset: usize,
    packer: &P,
    request: &Request,
    local_ids: &mut [u32],
    merger: &mut Merger<P::Key>,
) -> bool {
    let ids = !local_ids.is_empty();
    let intensity = request.intensity.is_some();
    let scan: ScanFn<P> = match (request.positions, intensity, ids) {
        (false, _, false) => scan_into_with::<P, false, false, false>,
        (false, _, true) => scan_into_with::<P, false, false, true>,
        (true, false, false) => scan_into_with::<P, true, false, false>,
        (true, false, true) => scan_into_with::<P, true, false, true>,
        (true, true, false) => scan_into_with::<P, true, true, false>,
        (true, true, true) => scan_into_with::<P, true, true, true>,
    };
    scan(points, offset, packer, request, local_ids, merger)
}

/// [`scan_into`] with position sums (`SUMS`), intensity sums
/// (`INTENSITY`) and per-point ids (`IDS`) switched at compile time.
///
/// One thread scans and merges block after block. More threads claim the
/// blocks in order from a shared counter: the helpers scan, and the calling
/// thread merges the next block as soon as it is scanned, claiming and
/// scanning one itself whenever the next is not ready. The merge order is
/// always the block order and blocks have a fixed size, so the result does
/// not depend on the thread count or on who scanned what.
fn scan_into_with<P: KeyPacker, const SUMS: bool, const INTENSITY: bool, const IDS: bool>(
    points: &[Point3<f64>],
    offset: usize,
    packer: &P,
    request: &Request,
    local_ids: &mut [u32],
    merger: &mut Merger<P::Key>,
) -> bool {
    let blocks = points.len().div_ceil(BLOCK);
    let range_of = |b: usize| b * BLOCK..((b + 1) * BLOCK).min(points.len());
    let threads = rayon::current_num_threads().max(1);
    if threads == 1 {
        // Scan and merge block after block, one set of buffers.
        let mut runs = BlockRuns::default();
        let mut id_blocks = local_ids.chunks_mut(BLOCK);
        for b in 0..blocks {
            let ids = id_blocks.next().unwrap_or_default();
            let ok = scan_block::<P, SUMS, INTENSITY, IDS>(
                points,
                offset,
                range_of(b),
                packer,
                request,
                &mut runs,
                ids,
            );
            if !ok {
                return false;
            }
            merger.merge::<SUMS, INTENSITY, IDS>(&runs, request, ids);
        }
        return true;
    }
    // Per block: its slice of ids (taken by the thread that scans it) and
    // its result (taken by the merge).
    let mut id_blocks: Vec<&mut [u32]> = local_ids.chunks_mut(BLOCK).collect();
    id_blocks.resize_with(blocks, Default::default);
    let id_slots: Vec<Mutex<Option<&mut [u32]>>> = id_blocks
        .into_iter()
        .map(|ids| Mutex::new(Some(ids)))
        .collect();
    type Scanned<'a, K> = Option<(BlockRuns<K>, &'a mut [u32])>;
    let results: Vec<Mutex<Option<Scanned<'_, P::Key>>>> =
        (0..blocks).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    // Merged blocks' buffers, reused by the next scans (no reallocation).
    let spare: Mutex<Vec<BlockRuns<P::Key>>> = Mutex::new(Vec::new());
    // Claims the next unscanned block, scans it and publishes the result;
    // false when every block is claimed.
    let scan_next = || -> bool {
        let b = next.fetch_add(1, Ordering::Relaxed);
        if b >= blocks {
            return false;
        }
        let ids = lock(&id_slots[b]).take().unwrap_or_default();
        let mut runs = lock(&spare).pop().unwrap_or_default();
        let ok = scan_block::<P, SUMS, INTENSITY, IDS>(
            points,
            offset,
            range_of(b),
            packer,
            request,
            &mut runs,
            ids,
        );
        *lock(&results[b]) = Some(ok.then_some((runs, &mut *ids)));
        true
    };
    let (merged, ()) = rayon::join(
        || {
            // The calling thread merges the blocks in order as soon as each
            // is scanned, and scans the next unclaimed block whenever the
            // next one to merge is not ready.
            let mut b = 0;
            while b < blocks {
                let ready = lock(&results[b]).take();
                let Some(scanned) = ready else {
                    if !scan_next() {
                        // Claimed by a helper that is scanning it now.
                        std::thread::yield_now();
                    }
                    continue;
                };
                let Some((runs, ids)) = scanned else {
                    return false;
                };
                merger.merge::<SUMS, INTENSITY, IDS>(&runs, request, ids);
                lock(&spare).push(runs);
                b += 1;
            }
            true
        },
        || {
            (1..threads)
                .into_par_iter()
                .for_each(|_| while scan_next() {});
        },
    );
    merged
}

/// Locks a mutex that no panic can poison here (the guarded data is
/// replaced whole).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Step 2: the runs of `points[range]` into `runs`; `false` if a point is
/// out of the packer's range. With `IDS`, `ids` gets the run of each point
/// (its index in the block's runs).
///
/// One pass without data-dependent branches: every point gets its packed
/// key, and a key unlike the previous point's (or the first point of a
/// [`RUN_SPAN`]) starts a new run. The run index, its start, its key and the
/// span's prefix sums of `p − corner of p's voxel` (and of the intensities)
/// are stored at the run's index unconditionally, so the last write holds
/// the run's end, and the 27 % of points of a KITTI frame at 0.25 m that
/// start a run cost no mispredicted branch. The only loop-carried
/// dependencies are one add per sum and the run counter.
///
/// The offsets from the corner are below `voxel_size` per axis, so a span's
/// prefix sums stay below 64 · `voxel_size` and a run's sum (a difference
/// of two of them) is exact to about 1e-14 `voxel_size` at any distance
/// from the origin, and exact for quantised records (see [`RUN_SPAN`]).
#[allow(clippy::too_many_arguments)]
fn scan_block<P: KeyPacker, const SUMS: bool, const INTENSITY: bool, const IDS: bool>(
    points: &[Point3<f64>],
    offset: usize,
    range: std::ops::Range<usize>,
    packer: &P,
    request: &Request,
    runs: &mut BlockRuns<P::Key>,
    ids: &mut [u32],
) -> bool {
    runs.start = offset + range.start;
    runs.keys.clear();
    let intensities = request
        .intensity
        .and_then(|v| v.get(range.clone()))
        .unwrap_or(&[]);
    let block = &points[range];
    let Some(p0) = block.first() else {
        return true;
    };
    let len = block.len();
    let inv_voxel_size = packer.inv_voxel_size();
    let voxel_size = 1.0 / inv_voxel_size;
    runs.keys.resize(len, P::Key::default());
    runs.starts.resize(len + 1, 0);
    if SUMS {
        runs.sums.resize(len, [0.0; 4]);
    }
    let (mut previous, mut out_of_range) = packer.pack(voxel_floors(p0, inv_voxel_size));
    // The first point of every span forces a new run: `run` wraps to 0 there.
    let mut run = usize::MAX;
    let mut run_start = 0u32;
    for (span, points) in block.chunks(RUN_SPAN).enumerate() {
        let mut force = true;
        let mut sum = [0.0; 4];
        for (i, p) in points.iter().enumerate() {
            let j = span * RUN_SPAN + i;
            let floors = voxel_floors(p, inv_voxel_size);
            let (key, outside) = packer.pack(floors);
            out_of_range |= outside;
            let new_run = (key != previous) | force;
            force = false;
            previous = key;
            run = run.wrapping_add(usize::from(new_run));
            run_start = if new_run { j as u32 } else { run_start };
            if let (Some(k), Some(s)) = (runs.keys.get_mut(run), runs.starts.get_mut(run)) {
                *k = key;
                *s = run_start;
            }
            if SUMS {
                let corner = corner_of_floors(floors, voxel_size);
                sum[0] += p.x - corner.x;
                sum[1] += p.y - corner.y;
                sum[2] += p.z - corner.z;
                if INTENSITY {
                    sum[3] += intensities.get(j).map_or(0.0, |&x| f64::from(x));
                }
                if let Some(s) = runs.sums.get_mut(run) {
                    *s = sum;
                }
            }
            if IDS && let Some(id) = ids.get_mut(j) {
                *id = run as u32;
            }
        }
    }
    runs.keys.truncate(run + 1);
    runs.starts[run + 1] = len as u32;
    out_of_range == 0
}

/// Points per span of the run scan: runs never cross a span, and the prefix
/// sums restart at each span, so they stay below `RUN_SPAN · voxel_size` per
/// axis. Offsets of points quantised to a grid (LAS records: multiples of
/// the granularity of the coordinates' magnitude) then sum exactly unless
/// `RUN_SPAN · voxel_size / granularity ≥ 2^53`, and a run's sum equals the
/// sum of its points' offsets however the points are split into blocks or
/// files (a tile and its uncut source give the same centroids). With spans
/// of a whole block (4,096 points) the sums of Autzen's elevations (about
/// 400 ft, granularity 2^-44) were no longer exact, and centroids on a
/// rounding tie of the LAS scale came out one unit apart in cut and uncut
/// tiles.
const RUN_SPAN: usize = 64;

/// How many runs ahead the merge prefetches the global table's home slot (a
/// survey tile's table outgrows L2; figures in `docs/performance.md`).
const MERGE_LOOKAHEAD: usize = 24;

/// Step 3: the global table and sums, filled block by block.
struct Merger<K> {
    table: KeyTable<K>,
    merged: Merged,
    /// Points of the whole cloud (to size the table from the first block).
    points: usize,
    /// Global voxel of each run of the block being merged.
    global_of_run: Vec<u32>,
}

impl<K: PackedKey> Merger<K> {
    /// Sized for `points / 6` voxels (LiDAR frames at the usual voxel sizes:
    /// 122k points give 18.6k voxels at 0.25 m); after the first block, the
    /// table is grown at once to that block's voxels per point (see
    /// [`Merger::merge`]).
    fn new(points: usize) -> Self {
        let expected = points / 6;
        Merger {
            table: KeyTable::with_capacity(expected),
            merged: Merged {
                representatives: Vec::with_capacity(expected),
                ..Merged::default()
            },
            points,
            global_of_run: Vec::with_capacity(BLOCK),
        }
    }

    /// Merges the next block's runs, one table lookup per run (the home slot
    /// of the run 24 ahead prefetched first): a voxel not seen yet takes the
    /// next global id (so ids follow first occurrence) and its first point
    /// becomes its representative; the run's sums (a difference of the
    /// block's prefix sums) and point count are added to its voxel. With
    /// `IDS`, turns the block's run indices into global voxel ids, then adds
    /// the block's time and normals to their voxels in input order.
    ///
    /// After the first block the table is grown once to the voxels that
    /// block's voxels per point extrapolate to, which saves the repeated
    /// growth (rehash of every key) of clouds with about one point per
    /// voxel, such as a survey tile at a fine voxel size.
    fn merge<const SUMS: bool, const INTENSITY: bool, const IDS: bool>(
        &mut self,
        runs: &BlockRuns<K>,
        request: &Request,
        ids: &mut [u32],
    ) {
        let merged = &mut self.merged;
        self.global_of_run.clear();
        for (r, &key) in runs.keys.iter().enumerate() {
            if let Some(&ahead) = runs.keys.get(r + MERGE_LOOKAHEAD) {
                self.table.touch(ahead);
            }
            let (global, inserted) = self.table.get_or_insert(key);
            if IDS {
                self.global_of_run.push(global);
            }
            let first = runs.start + runs.starts[r] as usize;
            if inserted {
                merged.representatives.push(first);
                if SUMS {
                    merged.offsets.push(Vector3::zeros());
                    merged.counts.push(0);
                    if INTENSITY {
                        merged.intensity.push(0.0);
                    }
                }
            }
            if SUMS {
                // The span's prefix sums at the run's end, minus those just
                // before it (zero for a run that starts its span).
                let end = runs.sums[r];
                let begin = match r.checked_sub(1) {
                    Some(q) if !(runs.starts[r] as usize).is_multiple_of(RUN_SPAN) => runs.sums[q],
                    _ => [0.0; 4],
                };
                let v = global as usize;
                merged.offsets[v] +=
                    Vector3::new(end[0] - begin[0], end[1] - begin[1], end[2] - begin[2]);
                if INTENSITY {
                    merged.intensity[v] += end[3] - begin[3];
                }
                merged.counts[v] += runs.starts[r + 1] - runs.starts[r];
            }
        }
        if runs.start == 0 {
            let block_points = runs.starts[runs.keys.len()].max(1) as usize;
            let extrapolated =
                merged.representatives.len().saturating_mul(self.points) / block_points;
            if extrapolated > self.points / 2 {
                self.table.reserve(extrapolated.min(self.points));
            }
        }
        if IDS {
            for id in ids.iter_mut() {
                *id = self.global_of_run[*id as usize];
            }
            if request.time.is_some() || request.normals.is_some() {
                add_attributes(request, runs.start, ids, merged);
            }
        }
    }
}

/// Adds the time (relative to the voxel's first point) and normals of the
/// points `start..start + ids.len()` to the sums of their voxels `ids`, in
/// input order.
fn add_attributes(request: &Request, start: usize, ids: &[u32], merged: &mut Merged) {
    let sums = &mut merged.attributes;
    sums.resize(merged.representatives.len(), AttributeSum::default());
    let indices = start..start + ids.len();
    if let Some(values) = request.time {
        for (&v, t) in ids.iter().zip(&values[indices.clone()]) {
            sums[v as usize].time += t - values[merged.representatives[v as usize]];
        }
    }
    if let Some(values) = request.normals {
        for (&v, n) in ids.iter().zip(&values[indices]) {
            sums[v as usize].normal += n;
        }
    }
}

/// The output position of a voxel from its sums: its representative `first`
/// (its first point) unchanged when it holds one point (corner + (p − corner)
/// can differ from p in the last bit, and so can a run's sum taken as a
/// difference of prefix sums), else the voxel's minimum corner plus the mean
/// offset from it.
#[inline]
fn centroid(
    first: &Point3<f64>,
    offset: &Vector3<f64>,
    count: u32,
    inv_voxel_size: f64,
) -> Point3<f64> {
    match count {
        1 => *first,
        n => voxel_corner(first, inv_voxel_size) + offset / f64::from(n),
    }
}

/// Step 4 for [`VoxelMode::Centroid`]: the output cloud built from the sums.
/// Positions, intensity, time and normals are computed as means directly (no
/// gather of the representatives' values that the means would overwrite);
/// curvature and LAS attributes come from the representatives.
fn centroid_cloud(
    cloud: &PointCloud,
    request: &Request,
    merged: &Merged,
    inv_voxel_size: f64,
) -> PointCloud {
    let reps = &merged.representatives;
    let pick = |v: &Option<Vec<f64>>| v.as_ref().map(|v| reps.iter().map(|&i| v[i]).collect());
    let points = merged
        .offsets
        .iter()
        .zip(&merged.counts)
        .zip(reps)
        .map(|((offset, &count), &r)| centroid(&cloud.points[r], offset, count, inv_voxel_size))
        .collect();
    let intensity = cloud.intensity.as_ref().map(|_| {
        merged
            .intensity
            .iter()
            .zip(&merged.counts)
            .map(|(&sum, &count)| (sum / f64::from(count)) as f32)
            .collect()
    });
    let time = request.time.map(|values| {
        merged
            .attributes
            .iter()
            .zip(&merged.counts)
            .zip(reps)
            .map(|((a, &count), &r)| values[r] + a.time / f64::from(count))
            .collect()
    });
    let normals = request.normals.map(|_| {
        merged
            .attributes
            .iter()
            .map(|a| {
                let norm = a.normal.norm();
                if norm > 0.0 && norm.is_finite() {
                    a.normal / norm
                } else {
                    Vector3::zeros()
                }
            })
            .collect()
    });
    PointCloud {
        points,
        intensity,
        normals,
        curvature: pick(&cloud.curvature),
        time,
        extras: cloud.extras.select(reps),
    }
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
    fn non_finite_anywhere_is_an_error() {
        for (n, bad) in [(3, 0), (40_000, 20_000), (40_000, 39_999)] {
            let mut points = vec![[0.5, 0.5, 0.5]; n];
            points[bad] = [0.0, f64::INFINITY, 0.0];
            let r = voxel_downsample(&cloud(&points), &VoxelConfig::default());
            assert!(
                matches!(r, Err(Error::NonFinite { index, .. }) if index == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn far_apart_points_take_the_exact_packing() {
        // 1 mm voxels 10 km apart: 1e7 voxels, beyond the ±2^20 window around
        // the first point, but within 64 bits (u64 range packing).
        let points: Vec<[f64; 3]> = (0..30_000)
            .map(|i| {
                let far = if i % 3 == 0 { 1e4 } else { 0.0 };
                [far + (i % 50) as f64 * 1e-3 + 5e-4, -far, 0.2]
            })
            .collect();
        let c = cloud(&points);
        let a = assign_voxels(&c.points, 1e3).unwrap();
        let down = voxel_downsample(&c, &VoxelConfig::new(1e-3)).unwrap();
        assert_eq!(down.len(), a.representatives.len());
        let mut seen = std::collections::HashMap::new();
        let mut reps = Vec::new();
        for (i, p) in c.points.iter().enumerate() {
            let id = *seen.entry(voxel_key(p, 1e3)).or_insert_with(|| {
                reps.push(i);
                reps.len() - 1
            });
            assert_eq!(a.voxel_of_point[i] as usize, id, "{i}");
        }
        assert_eq!(a.representatives, reps);
        for (p, &r) in down.points.iter().zip(&reps) {
            assert!((p - c.points[r]).norm() < 1e-9, "{p} vs {}", c.points[r]);
        }
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
    fn floor_to_i64_matches_floor() {
        for x in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.999,
            -2.999,
            1e10 + 0.5,
            -1e10 - 0.5,
            4.0e15,
            -4.0e15 - 1.0,
            2.5,
            3.5,
            -2.5,
            -3.5,
            1e15 + 0.5,
            -1e15 - 0.5,
            (1u64 << 50) as f64 - 0.5,
            -((1u64 << 50) as f64) + 0.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            1.0 - f64::EPSILON / 2.0,
            -1.0 + f64::EPSILON / 2.0,
            1e19,
            -1e19,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert_eq!(floor_to_i64(x), x.floor() as i64, "{x}");
            if x.abs() < 2f64.powi(51) {
                assert_eq!(floor_small(x), x.floor() as i64, "{x}");
            }
        }
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
    fn voxels_spanning_blocks_merge_in_order() {
        // Three blocks; voxel ids cycle so that every voxel has points in
        // every block, and voxel 7 first appears in the last block.
        let n = 2 * BLOCK + 100;
        let points: Vec<Point3<f64>> = (0..n)
            .map(|i| {
                let v = if i < 2 * BLOCK { i % 7 } else { 7 };
                Point3::new(v as f64 + 0.25 + (i % 3) as f64 * 0.25, 0.5, 0.5)
            })
            .collect();
        let c = PointCloud::from_points(points.clone());
        let a = assign_voxels(&c.points, 1.0).unwrap();
        assert_eq!(a.representatives, vec![0, 1, 2, 3, 4, 5, 6, 2 * BLOCK]);
        for (i, &v) in a.voxel_of_point.iter().enumerate() {
            assert_eq!(v as usize, if i < 2 * BLOCK { i % 7 } else { 7 }, "{i}");
        }
        let down = voxel_downsample(&c, &VoxelConfig::new(1.0)).unwrap();
        for (v, p) in down.points.iter().enumerate() {
            let members: Vec<&Point3<f64>> = a
                .voxel_of_point
                .iter()
                .zip(&points)
                .filter(|(w, _)| **w as usize == v)
                .map(|(_, p)| p)
                .collect();
            let mean = members.iter().map(|p| p.x).sum::<f64>() / members.len() as f64;
            assert!((p.x - mean).abs() < 1e-12, "{v}: {} vs {mean}", p.x);
        }
    }

    /// Chunks of any multiple of the block size, then a short last one, give
    /// the whole-cloud voxels bit for bit; a point out of the window is
    /// reported, and a chunk after a short one refused.
    #[test]
    fn stream_equals_whole_cloud() {
        let points: Vec<Point3<f64>> = (0..3 * BLOCK + 777)
            .map(|i| {
                let t = i as f64;
                Point3::new(
                    5e5 + (t * 0.37).sin() * 3.0,
                    4e6 + (t * 0.11).cos() * 2.0,
                    (t * 0.013).sin() + 100.0,
                )
            })
            .collect();
        let cloud = PointCloud::from_points(points.clone());
        for mode in [VoxelMode::Centroid, VoxelMode::First] {
            let config = VoxelConfig {
                voxel_size: 0.3,
                mode,
            };
            let (down, reps) = voxel_downsample_with_representatives(&cloud, &config).unwrap();
            for chunk in [BLOCK, 2 * BLOCK, 8 * BLOCK] {
                let mut stream = VoxelStream::new(&config, 10).unwrap();
                let mut got = Vec::new();
                for part in points.chunks(chunk) {
                    assert!(stream.push(part).unwrap());
                    got.extend_from_slice(stream.new_representatives());
                }
                assert_eq!(got, reps, "{chunk}");
                assert_eq!(stream.voxel_count(), reps.len());
                let positions = stream.finish(|v| points[got[v]]);
                assert_eq!(positions, down.points, "{mode:?} {chunk}");
            }
        }
        let config = VoxelConfig::new(0.001);
        let mut stream = VoxelStream::new(&config, 10).unwrap();
        assert!(stream.push(&points[..100]).unwrap());
        assert!(stream.push(&[Point3::new(1e4, 0.0, 0.0)]).is_err());
        let mut stream = VoxelStream::new(&config, 10).unwrap();
        assert!(
            !stream
                .push(&[Point3::origin(), Point3::new(1e4, 0.0, 0.0)])
                .unwrap()
        );
    }

    #[test]
    fn table_grows_and_finds() {
        for reserve in [None, Some(100_000)] {
            let mut t = KeyTable::<u64>::with_capacity(1);
            for k in 0..1000u64 {
                assert_eq!(t.get_or_insert(k * 7), (k as u32, true));
                if k == 500
                    && let Some(expected) = reserve
                {
                    t.reserve(expected);
                    assert!(t.slots.len() * 3 >= expected * 4);
                }
            }
            for k in 0..1000u64 {
                assert_eq!(t.get_or_insert(k * 7), (k as u32, false));
            }
            assert_eq!(t.len(), 1000, "{reserve:?}");
        }
    }
}
