//! normals (to be written)
