//! A cache prefetch hint for the random-access passes of the core (the k-d
//! tree's layout gather, the voxel grid's table probes).

/// Asks for the cache line holding the first byte of `value` without
/// waiting for it (`prefetcht0` on x86_64, nothing elsewhere). Unlike a load
/// whose value is discarded, a prefetch retires at once, so many misses can
/// be in flight behind the instructions that come next.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, reads nothing into the
    // program's state and writes nothing; SSE is part of the x86_64
    // baseline. The address is that of a live reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
