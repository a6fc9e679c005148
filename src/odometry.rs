//! odometry (to be written)
