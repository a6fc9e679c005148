//! The tree-ordered points as a structure of arrays (the tree's only copy of
//! them).
//!
//! The leaf scans compute the distances of a block of [`LANES`] consecutive
//! tree positions at once (`x`, `y` and `z` each contiguous, so the loop
//! vectorises), then filter them with one bit mask. The arrays are padded by
//! [`LANES`] entries so that the last block of the last leaf can be read
//! whole; lanes past a leaf's end are masked off.

// Loops over the lanes index several arrays at once.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

/// Positions per rayon task when new positions are zeroed.
const ZERO_MIN_LEN: usize = 16_384;

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
    /// Resizes the arrays to `n` positions (allocations reused), lets
    /// `fill` write every position through `(x, y, z)`, then appends the
    /// padding. `fill` must write every position: the ones kept from the
    /// previous contents still hold its values (an in-place rebuild then
    /// writes its 24 bytes per point once, not twice); only positions new
    /// to the allocation are zeroed first, in parallel (so both threads fault
    /// in a fresh build's pages).
    pub(super) fn fill_with(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut [f64], &mut [f64], &mut [f64]),
    ) {
        let LeafLayout { x, y, z } = self;
        for v in [&mut *x, &mut *y, &mut *z] {
            v.truncate(n);
            v.reserve(n + LANES - v.len());
            let missing = n - v.len();
            v.par_extend(rayon::iter::repeat_n(0.0, missing).with_min_len(ZERO_MIN_LEN));
            crate::pace::checkpoint();
        }
        fill(x, y, z);
        for v in [x, y, z] {
            v.extend([f64::INFINITY; LANES]);
        }
    }

    /// Heap bytes held by the three arrays (their capacity).
    pub(super) fn heap_bytes(&self) -> usize {
        (self.x.capacity() + self.y.capacity() + self.z.capacity()) * size_of::<f64>()
    }

    /// The point at tree position `position`, metres.
    ///
    /// # Panics
    /// When `position` is beyond the tree (a programming error).
    #[inline(always)]
    pub(super) fn point(&self, position: usize) -> [f64; 3] {
        [self.x[position], self.y[position], self.z[position]]
    }

    /// The coordinates of tree positions `start..end`, metres.
    #[inline]
    pub(super) fn range(&self, start: usize, end: usize) -> (&[f64], &[f64], &[f64]) {
        (
            &self.x[start..end],
            &self.y[start..end],
            &self.z[start..end],
        )
    }

    /// Number of points at tree positions `start..end` within `r_sq` m² of
    /// `q` (a plain scalar loop: faster than the blocked scan when nothing
    /// is collected).
    #[inline]
    pub(super) fn count_within(&self, start: usize, end: usize, q: &[f64; 3], r_sq: f64) -> usize {
        let (x, y, z) = (
            &self.x[start..end],
            &self.y[start..end],
            &self.z[start..end],
        );
        x.iter()
            .zip(y)
            .zip(z)
            .filter(|((x, y), z)| {
                let (dx, dy, dz) = (*x - q[0], *y - q[1], *z - q[2]);
                dx * dx + dy * dy + dz * dz <= r_sq
            })
            .count()
    }

    /// Squared distances `(dx² + dy²) + dz²` (m², the same bits as
    /// [`super::query::distance_sq`]) from `q` to the points at tree
    /// positions `base..base + LANES`; `base` must be below the tree's length.
    #[inline(always)]
    pub(super) fn distances_sq(&self, base: usize, q: &[f64; 3]) -> [f64; LANES] {
        block_distances_sq(
            block(&self.x, base),
            block(&self.y, base),
            block(&self.z, base),
            q,
        )
    }
}

impl LeafLayout {
    /// The blocked leaf scan shared by every collector: for each point at
    /// tree positions `start..end` whose squared distance `d` (m²) to `q` is
    /// within `bound(state)` — read once per block of [`LANES`] points, so a
    /// bound that shrinks inside a block is rechecked by `visit` where it
    /// matters — calls `visit(state, position, d)`, in position order.
    #[inline(always)]
    pub(super) fn scan_within<S>(
        &self,
        start: usize,
        end: usize,
        q: &[f64; 3],
        state: &mut S,
        bound: impl Fn(&S) -> f64,
        mut visit: impl FnMut(&mut S, usize, f64),
    ) {
        for base in (start..end).step_by(LANES) {
            let d = self.distances_sq(base, q);
            let mut mask = within_mask(&d, bound(state), end - base);
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                visit(state, base + j, d[j]);
            }
        }
    }
}

/// Squared distances `(dx² + dy²) + dz²` (m², the same bits as
/// [`super::query::distance_sq`]) from `q` to the [`LANES`] points
/// `(x[j], y[j], z[j])`: fixed-size arrays, so the loop vectorises.
#[inline(always)]
pub(super) fn block_distances_sq(
    x: &[f64; LANES],
    y: &[f64; LANES],
    z: &[f64; LANES],
    q: &[f64; 3],
) -> [f64; LANES] {
    let mut d = [0.0; LANES];
    for j in 0..LANES {
        let dx = x[j] - q[0];
        let dy = y[j] - q[1];
        let dz = z[j] - q[2];
        d[j] = dx * dx + dy * dy + dz * dz;
    }
    d
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
