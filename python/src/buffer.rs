//! Output buffers of the batch queries: 2 MiB-aligned, advised to use
//! transparent huge pages, and recycled once numpy frees them.
//!
//! The kNN rows of [`crate::tree`] are written in the tree's order, so a
//! fresh output array is first touched at random rows: one page fault per
//! 4 KiB page without huge pages. Even with them, the kernel zeroes every
//! fresh page (docs/performance.md, "Python kNN: output buffers
//! recycled"). A buffer whose array numpy frees is kept (at most
//! [`KEEP_BUFFERS`] of them, [`KEEP_BYTES`] in all) for the next query of a
//! similar size, which then writes into memory already mapped.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Mutex;

use numpy::ndarray::ArrayView2;
use numpy::{Element, PyArray2};
use pyo3::prelude::*;

/// Transparent huge pages are 2 MiB on x86-64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// Freed buffers kept for reuse: at most this many bytes in all...
const KEEP_BYTES: usize = 256 << 20;

/// ...and at most this many buffers.
const KEEP_BUFFERS: usize = 4;

/// Element types whose every bit pattern is a valid value (a recycled
/// buffer holds an earlier query's values until they are overwritten).
pub(crate) trait Plain: Copy + Element {}
impl Plain for f64 {}
impl Plain for i64 {}

/// An owned allocation of `layout` (never zero-sized), always initialised
/// (zeroed when fresh).
struct Raw {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: `Raw` owns its allocation exclusively; nothing else points to it
// once the array borrowing it is gone.
unsafe impl Send for Raw {}
// SAFETY: a shared `Raw` gives no access to its memory.
unsafe impl Sync for Raw {}

impl Raw {
    /// A zeroed allocation of at least `bytes`, 2 MiB-aligned from 1 MiB on.
    fn zeroed(bytes: usize) -> PyResult<Raw> {
        let bytes = bytes.max(8);
        let align = if bytes >= HUGE_PAGE / 2 { HUGE_PAGE } else { 8 };
        let layout = Layout::from_size_align(bytes.next_multiple_of(align), align)
            .map_err(|e| pyo3::exceptions::PyMemoryError::new_err(e.to_string()))?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            pyo3::exceptions::PyMemoryError::new_err(format!(
                "cannot allocate {} bytes",
                layout.size()
            ))
        })?;
        if align == HUGE_PAGE {
            advise_huge_pages(ptr.as_ptr(), layout.size());
        }
        Ok(Raw { ptr, layout })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: allocated by `Raw::zeroed` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Freed buffers, oldest first.
static KEPT: Mutex<Vec<Raw>> = Mutex::new(Vec::new());

/// A kept buffer of at least `bytes` and at most twice that, or a fresh one.
fn take(bytes: usize) -> PyResult<Raw> {
    if bytes >= HUGE_PAGE / 2 {
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        let fits = kept
            .iter()
            .rposition(|r| r.layout.size() >= bytes && r.layout.size() <= 2 * bytes);
        if let Some(i) = fits {
            return Ok(kept.remove(i));
        }
    }
    Raw::zeroed(bytes)
}

/// Keeps a freed buffer for reuse (large ones only), dropping the oldest
/// beyond the limits.
fn give_back(raw: Raw) {
    if raw.layout.size() < HUGE_PAGE / 2 || raw.layout.size() > KEEP_BYTES {
        return;
    }
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    kept.push(raw);
    while kept.len() > KEEP_BUFFERS
        || kept.iter().map(|r| r.layout.size()).sum::<usize>() > KEEP_BYTES
    {
        drop(kept.remove(0));
    }
}

/// `len` values of `T` for a query to write (zeros or an earlier query's
/// values: every slot must be written before the array is handed out).
pub(crate) struct OutBuf<T: Plain> {
    raw: Raw,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: Plain> OutBuf<T> {
    /// A buffer of `len` values.
    ///
    /// # Errors
    /// `MemoryError` when the allocation fails or its size overflows.
    pub(crate) fn new(len: usize) -> PyResult<OutBuf<T>> {
        let bytes = len.checked_mul(size_of::<T>()).ok_or_else(|| {
            pyo3::exceptions::PyMemoryError::new_err(format!("{len} values overflow"))
        })?;
        Ok(OutBuf {
            raw: take(bytes)?,
            len,
            _t: std::marker::PhantomData,
        })
    }

    /// The values, to write.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: the allocation holds at least `len` initialised `T`s (zeroed
        // or written by an earlier query; every bit pattern is a `T`), is
        // aligned for `T` (8 bytes or more), and `&mut self` makes this the
        // only access.
        unsafe { std::slice::from_raw_parts_mut(self.raw.ptr.as_ptr().cast::<T>(), self.len) }
    }

    /// The buffer as a `(len / cols, cols)` C-order numpy array that owns
    /// it: when numpy frees the array, the buffer is kept for reuse.
    pub(crate) fn into_pyarray(
        self,
        py: Python<'_>,
        cols: usize,
    ) -> PyResult<Bound<'_, PyArray2<T>>> {
        let rows = self.len.checked_div(cols).unwrap_or(0);
        let ptr = self.raw.ptr.as_ptr().cast::<T>();
        // SAFETY: `rows * cols <= len` initialised `T`s at `ptr`, which stay
        // valid and unmoved while `owner` (the array's base) lives.
        let view = unsafe { ArrayView2::from_shape_ptr((rows, cols), ptr) };
        let owner = Bound::new(
            py,
            BufferOwner {
                raw: Some(self.raw),
            },
        )?;
        // SAFETY: `owner` keeps the memory of `view` alive and is never
        // reallocated; it becomes the array's base object.
        Ok(unsafe { PyArray2::borrow_from_array(&view, owner.into_any()) })
    }
}

/// The base object of an output array: frees (keeps) its buffer when numpy
/// lets go of the array.
#[pyclass(frozen, module = "pointpipe._pointpipe")]
struct BufferOwner {
    raw: Option<Raw>,
}

impl Drop for BufferOwner {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            give_back(raw);
        }
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, bytes: usize) {
    // SAFETY: the range is the caller's live allocation (2 MiB-aligned);
    // the advice changes how its pages are backed, never their contents.
    unsafe {
        libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut u8, _bytes: usize) {}
