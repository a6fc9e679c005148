//! pointpipe: LiDAR frames in, registered and analysed point clouds out.
//!
//! One pipeline, one module per stage, a [`PointCloud`] at the centre:
//!
//! | stage | module | entry point |
//! |---|---|---|
//! | read / write LAS, LAZ, PLY, PCD, KITTI `.bin`; pose files | [`io`] | [`io::read`], [`io::write`], [`io::poses`] |
//! | statistical outlier removal (PCL semantics) | [`filter`] | [`filter::remove_statistical_outliers`] |
//! | voxel downsampling | [`voxel`] | [`voxel::voxel_downsample`] |
//! | k-d tree rebuilt per frame (kNN, radius, hybrid) | [`kdtree`] | [`kdtree::KdTree::build`] |
//! | PCA normals and curvature | [`normals`] | [`normals::estimate_normals`] |
//! | cloud + tree + normals made together | [`prepare`] | [`prepare::preprocess_points`] |
//! | ICP (point-to-point, point-to-plane, robust kernels) | [`icp`] | [`icp::register`] |
//! | LiDAR odometry over a sequence | [`odometry`] | [`odometry::Odometry::process`], [`odometry::run_sequence`] |
//! | trajectory evaluation (ATE, RPE, KITTI) | [`eval`] | [`eval::evaluate`] |
//! | simulated spinning LiDAR for demos and tests | [`simulate`] | [`simulate::Simulator`] |
//! | LAS/LAZ tile batches | [`batch`] | [`batch::run_batch`] |
//! | exact geodesic search on WGS84 (lon/lat) | [`geo`] | [`geo::GeoIndex`] |
//! | proximity layers: kNN, radius, per-category counts | [`layer`] | [`layer::Layer::load`] |
//! | the layers behind an HTTP API | [`serve`] | [`serve::run`] |
//! | background work paced next to queries | [`pace`] | [`pace::paced`] |
//!
//! Units are metres and radians (seconds for time); poses are
//! `nalgebra::Isometry3<f64>` named by frames (`target_from_source`,
//! `world_from_sensor`). Errors are one enum, [`Error`]; the library never
//! prints (it logs through `log`) and never panics on input data.
//!
//! # Example: register two scans
//!
//! ```
//! use nalgebra::{Isometry3, Point3, Vector3};
//! use pointpipe::icp::{self, IcpConfig};
//! use pointpipe::kdtree::KdTree;
//! use pointpipe::normals::{self, NormalConfig};
//! use pointpipe::voxel::{self, VoxelConfig};
//! use pointpipe::PointCloud;
//!
//! // A room corner (floor and two walls) sampled every 5 cm: the target.
//! let mut points = Vec::new();
//! for i in 0..60 {
//!     for j in 0..60 {
//!         let (a, b) = (i as f64 * 0.05, j as f64 * 0.05);
//!         points.push(Point3::new(a, b, 0.0));
//!         points.push(Point3::new(a, 0.0, b));
//!         points.push(Point3::new(0.0, a, b));
//!     }
//! }
//! let target = PointCloud::from_points(points);
//! // The source: the same scene seen from a pose moved by 5 cm and 2 degrees.
//! let truth = Isometry3::new(Vector3::new(0.05, -0.03, 0.02), Vector3::new(0.0, 0.0, 0.035));
//! let source = target.transformed(&truth.inverse());
//!
//! // Downsample, build the target's k-d tree, estimate its normals, register.
//! let config = VoxelConfig { voxel_size: 0.1, ..Default::default() };
//! let source = voxel::voxel_downsample(&source, &config)?;
//! let mut target = voxel::voxel_downsample(&target, &config)?;
//! let tree = KdTree::build(&target.points)?;
//! normals::estimate_normals(&mut target, &tree, &NormalConfig::default())?;
//! let result = icp::register(&source.points, &target, &tree, &Isometry3::identity(), &IcpConfig::default())?;
//!
//! assert!(result.converged);
//! let error = truth.inverse() * result.target_from_source;
//! assert!(error.translation.vector.norm() < 0.01 && error.rotation.angle() < 0.2_f64.to_radians());
//! # Ok::<(), pointpipe::Error>(())
//! ```

#![warn(missing_docs, unreachable_pub)]
// The library reports through `log`, never on the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

// The data and its errors.
pub mod cloud;
pub mod error;

// The pipeline, stage by stage.
pub mod io;

pub mod filter;

pub mod voxel;

pub mod kdtree;

pub mod normals;

pub mod prepare;

pub mod icp;

pub mod odometry;

pub mod eval;

// Around the pipeline: simulated data, tile batches, proximity serving, viewing.
pub mod simulate;

pub mod batch;

pub mod geo;

pub mod layer;

pub mod serve;

// Background work that shares the cores with queries.
pub mod pace;

#[cfg(feature = "viewer")]
pub mod viewer;

mod prefetch;

pub use cloud::PointCloud;
pub use error::{Error, Result};
