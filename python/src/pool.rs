//! Thread pools for the `workers` argument (scipy's convention: 1 = this
//! thread only, -1 = all cores, n = n threads). Pools are made once per
//! thread count and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::ThreadPool;

/// The number of threads `workers` asks for.
pub(crate) fn threads(workers: i64) -> PyResult<usize> {
    match workers {
        -1 => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        n if n >= 1 => Ok(n as usize),
        n => Err(PyValueError::new_err(format!(
            "workers must be -1 (all cores) or >= 1, got {n}"
        ))),
    }
}

/// The pool with `threads` threads.
pub(crate) fn pool(threads: usize) -> PyResult<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| PyValueError::new_err(format!("cannot start {threads} threads: {e}")))?,
    );
    pools.insert(threads, p.clone());
    Ok(p)
}

/// Runs `f` in the pool `workers` asks for, with the GIL released.
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    workers: i64,
    f: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    let p = pool(threads(workers)?)?;
    Ok(py.detach(|| p.install(f)))
}
