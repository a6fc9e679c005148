//! io (to be written)
