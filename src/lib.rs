//! pointpipe: LiDAR frames in, registered and analysed point clouds out.

pub mod batch;
pub mod cloud;
pub mod error;
pub mod eval;
pub mod icp;
pub mod io;
pub mod kdtree;
pub mod normals;
pub mod odometry;
pub mod simulate;
#[cfg(feature = "viewer")]
pub mod viewer;
pub mod voxel;

pub use cloud::PointCloud;
pub use error::{Error, Result};
