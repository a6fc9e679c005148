//! batch (to be written)
