//! The frame loop: a sequence through the odometry, the merged map beside it.

use std::ops::ControlFlow;
use std::time::Instant;

use nalgebra::Point3;

use super::{FrameResult, MapBuilder, Odometry, Stage};
use crate::cloud::PointCloud;
use crate::error::{Error, Result};

/// What [`run_sequence`] does beside the odometry. Validated by
/// [`SequenceConfig::validate`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceConfig {
    /// Skip frames that cannot be read (flagged
    /// [`FrameStatus::Unreadable`](super::FrameStatus::Unreadable), pose
    /// predicted) instead of stopping with the read error. Default: stop.
    pub skip_bad: bool,
    /// Voxel size of the merged map, metres (finite, > 0); `None` (default):
    /// no merged map.
    pub map_voxel_size: Option<f64>,
}

impl SequenceConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a `map_voxel_size` that is not finite and > 0.
    pub fn validate(&self) -> Result<()> {
        match self.map_voxel_size {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(Error::invalid(
                "map_voxel_size",
                v,
                "must be finite and > 0",
            )),
            _ => Ok(()),
        }
    }
}

/// What [`run_sequence`] hands to its `on_frame` callback after each frame.
#[derive(Debug)]
pub struct FrameView<'a> {
    /// The frame's result (pose, status, timings).
    pub result: &'a FrameResult,
    /// The frame after the range crop, sensor frame, metres (empty for an
    /// unreadable frame).
    pub points: &'a [Point3<f64>],
    /// The merged map including this frame, when one is built.
    pub map: Option<&'a MapBuilder>,
}

/// What [`run_sequence`] produced.
#[derive(Debug)]
pub struct SequenceOutput {
    /// One result per frame processed, in order (fewer than the input when
    /// `on_frame` stopped the loop).
    pub results: Vec<FrameResult>,
    /// The merged map of every frame's cropped points at its estimated pose,
    /// voxelised at [`SequenceConfig::map_voxel_size`] (`None` without one).
    pub map: Option<MapBuilder>,
    /// Odometry time without reading, seconds.
    pub process_seconds: f64,
    /// Time spent pulling frames from the input (reading or simulating), seconds.
    pub read_seconds: f64,
}

/// Runs a sequence of frames through `odometry`, one after the other, and
/// builds the merged map.
///
/// Per frame:
/// 1. read the next frame from `frames` (an unreadable frame stops the run, or
///    is flagged and predicted with [`SequenceConfig::skip_bad`]);
/// 2. estimate its pose with [`Odometry::process`];
/// 3. add its cropped points ([`Odometry::frame_points`]) to the merged map at
///    that pose;
/// 4. call `on_frame`; [`ControlFlow::Break`] stops the loop (the results so
///    far are returned).
///
/// # Parameters
/// - `frames`: the frames in order, points in the sensor frame (metres), each
///   the result of reading it.
/// - `odometry`: the state; it may already hold frames (the sequence continues).
///
/// # Errors
/// [`Error::InvalidParameter`] from [`SequenceConfig::validate`];
/// [`Error::Frame`] with the read error of the first unreadable frame when
/// `skip_bad` is off.
///
/// # Complexity
/// That of [`Odometry::process`] per frame, plus O(points) for the map.
pub fn run_sequence<I>(
    frames: I,
    odometry: &mut Odometry,
    config: &SequenceConfig,
    mut on_frame: impl FnMut(&FrameView<'_>) -> ControlFlow<()>,
) -> Result<SequenceOutput>
where
    I: IntoIterator<Item = Result<PointCloud>>,
{
    config.validate()?;
    let mut output = SequenceOutput {
        results: Vec::new(),
        map: config.map_voxel_size.map(MapBuilder::new).transpose()?,
        process_seconds: 0.0,
        read_seconds: 0.0,
    };
    let mut frames = frames.into_iter();
    loop {
        // 1. Read the next frame.
        let start = Instant::now();
        let Some(frame) = frames.next() else { break };
        let read_ms = ms_since(start);
        output.read_seconds += read_ms / 1e3;
        let mut result = match frame {
            // 2. Estimate its pose.
            Ok(frame) => odometry.process(&frame),
            Err(e) if config.skip_bad => odometry.skip_frame(e.to_string()),
            Err(e) => {
                return Err(Error::Frame {
                    index: output.results.len(),
                    source: Box::new(e),
                });
            }
        };
        result.timings.set(Stage::Read, read_ms);
        output.process_seconds += (result.timings.total() - read_ms) / 1e3;
        // 3. Add its cropped points to the merged map.
        if let Some(map) = output.map.as_mut() {
            let start = Instant::now();
            map.add(odometry.frame_points(), &result.world_from_sensor);
            let map_ms = result.timings.get(Stage::MapUpdate) + ms_since(start);
            result.timings.set(Stage::MapUpdate, map_ms);
        }
        if result.status.is_flagged() {
            log::warn!("frame {}: {:?}", result.index, result.status);
        }
        // 4. Report it.
        let flow = on_frame(&FrameView {
            result: &result,
            points: odometry.frame_points(),
            map: output.map.as_ref(),
        });
        output.results.push(result);
        if flow.is_break() {
            log::info!("stopped after {} frames", output.results.len());
            break;
        }
    }
    Ok(output)
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odometry::{FrameStatus, OdometryConfig};
    use crate::simulate::{SimulationConfig, Simulator};

    fn simulated(frames: usize) -> (Simulator, Vec<PointCloud>) {
        let config = SimulationConfig {
            frames,
            ..SimulationConfig::default()
        };
        let simulator = Simulator::new(&config).unwrap();
        let clouds = (0..frames).map(|i| simulator.frame(i)).collect();
        (simulator, clouds)
    }

    /// The loop gives the poses of calling `process` frame by frame, and its
    /// map holds every frame's cropped points at those poses.
    #[test]
    fn run_sequence_equals_frame_by_frame_and_builds_the_map() {
        let (_, clouds) = simulated(4);
        let mut by_hand = Odometry::new(OdometryConfig::default()).unwrap();
        let mut map = MapBuilder::new(0.2).unwrap();
        for c in &clouds {
            let r = by_hand.process(c);
            map.add(by_hand.frame_points(), &r.world_from_sensor);
        }
        let mut odometry = Odometry::new(OdometryConfig::default()).unwrap();
        let config = SequenceConfig {
            skip_bad: false,
            map_voxel_size: Some(0.2),
        };
        let mut seen = 0;
        let out = run_sequence(clouds.into_iter().map(Ok), &mut odometry, &config, |v| {
            assert_eq!(v.result.index, seen);
            assert!(!v.points.is_empty());
            seen += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(odometry.poses(), by_hand.poses());
        assert_eq!(out.results.len(), 4);
        assert_eq!(out.map.unwrap().to_cloud().points, map.to_cloud().points);
    }

    /// An unreadable frame stops the run with its index, or with `skip_bad`
    /// is flagged with the reason and predicted; `Break` stops early.
    #[test]
    fn unreadable_frames_stop_or_are_flagged() {
        let (_, clouds) = simulated(3);
        let bad = || Error::format("frame1.bin", "truncated");
        let frames = || vec![Ok(clouds[0].clone()), Err(bad()), Ok(clouds[2].clone())];
        let mut odometry = Odometry::new(OdometryConfig::default()).unwrap();
        let stop = run_sequence(frames(), &mut odometry, &SequenceConfig::default(), |_| {
            ControlFlow::Continue(())
        });
        assert!(
            matches!(stop, Err(Error::Frame { index: 1, .. })),
            "{stop:?}"
        );

        let mut odometry = Odometry::new(OdometryConfig::default()).unwrap();
        let config = SequenceConfig {
            skip_bad: true,
            map_voxel_size: None,
        };
        let out = run_sequence(frames(), &mut odometry, &config, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(out.results.len(), 3);
        assert_eq!(
            out.results[1].status,
            FrameStatus::Unreadable {
                reason: bad().to_string()
            }
        );
        assert!(out.map.is_none());

        let mut odometry = Odometry::new(OdometryConfig::default()).unwrap();
        let out = run_sequence(frames(), &mut odometry, &config, |v| {
            if v.result.index == 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(out.results.len(), 1);
    }

    #[test]
    fn invalid_map_voxel_size_is_an_error() {
        let mut odometry = Odometry::new(OdometryConfig::default()).unwrap();
        let config = SequenceConfig {
            skip_bad: false,
            map_voxel_size: Some(-1.0),
        };
        let r = run_sequence(Vec::new(), &mut odometry, &config, |_| {
            ControlFlow::Continue(())
        });
        assert!(matches!(
            r,
            Err(Error::InvalidParameter {
                name: "map_voxel_size",
                ..
            })
        ));
    }
}
