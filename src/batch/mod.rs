//! Batch processing of LAS/LAZ tiles (to be completed).

pub mod extra_bytes;
pub mod las_out;
pub mod outliers;
pub mod tiles;
