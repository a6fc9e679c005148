//! Structure-of-arrays copy of the tree-ordered points for the leaf scans.
//!
//! The leaf scans compute the distances of a block of [`LANES`] consecutive
//! tree positions at once (`x`, `y` and `z` each contiguous, so the loop
//! vectorises), then filter them with one bit mask. The arrays are padded by
//! [`LANES`] entries so that the last block of the last leaf can be read
//! whole; lanes past a leaf's end are masked off.

// Loops over the lanes index several arrays at once.
#![allow(clippy::needless_range_loop)]

/// Points per distance block (one bit each in the mask of a block).
pub(super) const LANES: usize = 8;

/// The tree-ordered points as three coordinate arrays, metres, each followed
/// by [`LANES`] padding entries (`+inf`, never within a finite bound, and
/// masked off anyway).
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct LeafLayout {
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
}

impl LeafLayout {
    /// The layout of `points` (already in tree order). O(n).
    pub(super) fn from_tree_points(points: &[[f64; 3]]) -> LeafLayout {
        let axis = |a: usize| -> Vec<f64> {
            let mut v = Vec::with_capacity(points.len() + LANES);
            v.extend(points.iter().map(|p| p[a]));
            v.extend([f64::INFINITY; LANES]);
            v
        };
        LeafLayout {
            x: axis(0),
            y: axis(1),
            z: axis(2),
        }
    }

    /// Squared distances `(dx² + dy²) + dz²` (m², the same bits as
    /// [`super::query::distance_sq`]) from `q` to the points at tree
    /// positions `base..base + LANES`; `base` must be below the tree's length.
    #[inline(always)]
    pub(super) fn distances_sq(&self, base: usize, q: &[f64; 3]) -> [f64; LANES] {
        let (x, y, z) = (
            block(&self.x, base),
            block(&self.y, base),
            block(&self.z, base),
        );
        let mut d = [0.0; LANES];
        for j in 0..LANES {
            let dx = x[j] - q[0];
            let dy = y[j] - q[1];
            let dz = z[j] - q[2];
            d[j] = dx * dx + dy * dy + dz * dz;
        }
        d
    }
}

/// The `LANES` entries of `v` from `base` (within the padding by
/// construction; an out-of-range `base` is a programming error and panics).
#[inline(always)]
fn block(v: &[f64], base: usize) -> &[f64; LANES] {
    v[base..]
        .first_chunk::<LANES>()
        .expect("leaf layout padded by LANES")
}

/// Bit `j` set when `d[j] <= bound_sq` and `j < live` (the number of
/// points of the block that belong to the leaf; any `live ≥ LANES` means all).
#[inline(always)]
pub(super) fn within_mask(d: &[f64; LANES], bound_sq: f64, live: usize) -> u32 {
    let mut mask = 0u32;
    for (j, &dj) in d.iter().enumerate() {
        mask |= u32::from(dj <= bound_sq) << j;
    }
    mask & ((1u32 << live.min(LANES)) - 1)
}
