//! voxel (to be written)
