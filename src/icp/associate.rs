//! Data association: nearest target point for every transformed source point.

use nalgebra::{Isometry3, Point3, Vector3};
use rayon::prelude::*;

use super::RobustKernel;
use super::point_to_plane::{LinearSystem, REDUCTION_CHUNK};
use crate::PointCloud;
use crate::kdtree::{KdTree, SearchHint};

/// One source–target match at the current estimate, in the local frame of
/// the registration (the target frame shifted by `origin`, see the module
/// docs of [`super`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Correspondence {
    /// The source point mapped into the target frame by the current
    /// `target_from_source`, minus `origin`, m.
    pub source: Point3<f64>,
    /// Its nearest target point, minus `origin`, m.
    pub target: Point3<f64>,
    /// The target point's unit normal (zero when the target has no normals).
    pub normal: Vector3<f64>,
    /// Squared Euclidean distance `|source − target|²`, m².
    pub distance_sq: f64,
}

/// Matches every source point, mapped by `target_from_source`, to its
/// nearest target point within `max_correspondence_distance` metres
/// ([`KdTree::nearest_within_hinted`]). With `require_normal`, matches whose
/// target point has no normal (zero vector or no normals at all) are dropped.
///
/// `hints` holds one [`SearchHint`] per source point, kept across the ICP
/// iterations: each search starts from the point's previous match, which is
/// a tight first bound once the estimate moves little (same answers, less
/// work).
///
/// # Panics
/// When `hints.len() != source.len()` (a programming error).
///
/// Returns the correspondences in source order (rayon's indexed collect keeps
/// order, so the output is the same at any thread count).
///
/// Cost: one nearest-neighbour query per source point, `O(n log m)`, parallel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn associate(
    source: &[Point3<f64>],
    target_from_source: &Isometry3<f64>,
    origin: &Vector3<f64>,
    target: &PointCloud,
    target_tree: &KdTree,
    max_correspondence_distance: f64,
    require_normal: bool,
    hints: &mut [SearchHint],
) -> Vec<Correspondence> {
    assert_eq!(hints.len(), source.len(), "one hint per source point");
    let normals = target.normals.as_deref();
    source
        .par_iter()
        .zip(hints.par_iter_mut())
        .filter_map(|(p, hint)| {
            let q = target_from_source * p;
            let nearest =
                target_tree.nearest_within_hinted(&q, max_correspondence_distance, hint)?;
            let target_point = *target.points.get(nearest.index)? - origin;
            let normal = match normals {
                Some(n) => *n.get(nearest.index)?,
                None => Vector3::zeros(),
            };
            if require_normal && normal == Vector3::zeros() {
                return None;
            }
            Some(Correspondence {
                source: q - origin,
                target: target_point,
                normal,
                distance_sq: nearest.distance_sq,
            })
        })
        .collect()
}

/// [`associate`] (same frames) fused with the point-to-plane
/// [`build_linear_system`](super::point_to_plane::build_linear_system): each
/// source point's match (nearest target point with a normal, within
/// `max_correspondence_distance` metres) goes straight into the normal
/// equations with its IRLS weight, so no correspondence list is written.
///
/// Returns the system and the number of matches. Fixed chunks of
/// [`REDUCTION_CHUNK`] source points are folded in parallel from
/// [`LinearSystem::zero`] and combined with [`LinearSystem::combine`] in
/// index order: bit-identical at any thread count.
///
/// # Panics
/// When `hints.len() != source.len()` (a programming error).
#[allow(clippy::too_many_arguments)]
pub(crate) fn associate_into_linear_system(
    source: &[Point3<f64>],
    target_from_source: &Isometry3<f64>,
    origin: &Vector3<f64>,
    target: &PointCloud,
    target_tree: &KdTree,
    max_correspondence_distance: f64,
    kernel: RobustKernel,
    kernel_scale: f64,
    hints: &mut [SearchHint],
) -> (LinearSystem, usize) {
    assert_eq!(hints.len(), source.len(), "one hint per source point");
    let Some(normals) = target.normals.as_deref() else {
        return (LinearSystem::zero(), 0);
    };
    let accumulate_chunk = |(points, hints): (&[Point3<f64>], &mut [SearchHint])| {
        let mut system = LinearSystem::zero();
        let mut matches = 0;
        for (p, hint) in points.iter().zip(hints) {
            let q = target_from_source * p;
            let Some(nearest) =
                target_tree.nearest_within_hinted(&q, max_correspondence_distance, hint)
            else {
                continue;
            };
            let (Some(target_point), Some(normal)) =
                (target.points.get(nearest.index), normals.get(nearest.index))
            else {
                continue;
            };
            if *normal == Vector3::zeros() {
                continue;
            }
            let residual = normal.dot(&(q - target_point));
            let weight = kernel.weight(residual, kernel_scale);
            system.add_plane_residual(&(q - origin), normal, residual, weight);
            matches += 1;
        }
        (system, matches)
    };
    source
        .par_chunks(REDUCTION_CHUNK)
        .zip(hints.par_chunks_mut(REDUCTION_CHUNK))
        .map(accumulate_chunk)
        .collect::<Vec<_>>()
        .into_iter()
        .fold((LinearSystem::zero(), 0), |(a, n), (b, m)| {
            (a.combine(b), n + m)
        })
}
