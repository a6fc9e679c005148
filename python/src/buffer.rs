//! Output buffers of the batch queries.

/// Transparent huge pages are 2 MiB on x86-64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// `len` zeros (`T::default()`) in a new buffer, advised to use transparent
/// huge pages on Linux (`madvise(MADV_HUGEPAGE)` on its 2 MiB-aligned
/// part) before anything is written to it.
///
/// The kNN rows of [`crate::tree`] are written in the tree's order, so the
/// output arrays are first touched at random rows: one page fault per 4 KiB
/// page, about a tenth of `KDTree.query(data, k=10)` otherwise
/// (docs/performance.md). The zeros come from `calloc` (untouched pages);
/// the advice is a hint, ignored where unsupported.
pub(crate) fn zeroed<T: Copy + Default>(len: usize) -> Vec<T> {
    let mut v = vec![T::default(); len];
    advise_huge_pages(v.as_mut_ptr().cast(), len * size_of::<T>());
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, bytes: usize) {
    let first = (start as usize).next_multiple_of(HUGE_PAGE);
    let end = (start as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > first {
        // SAFETY: the range lies inside the caller's live allocation; the
        // advice changes how its pages are backed, never their contents.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut u8, _bytes: usize) {}
