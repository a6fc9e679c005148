//! icp (to be written)
