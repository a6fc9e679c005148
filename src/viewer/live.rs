//! Live updates: a pipeline thread feeds the viewer through a channel.
//!
//! The producer (odometry, registration) runs in its own thread and sends
//! [`ViewerUpdate`]s over a `std::sync::mpsc` channel; the viewer, on the main
//! thread, applies whatever has arrived once per drawn frame. When the window
//! is closed the receiver is dropped, so the producer's next `send` returns
//! `Err` — its cue to stop cleanly and write what it has.

use nalgebra::{Isometry3, Point3};

use super::color;
use super::decimate::decimate_indices;
use super::scene::{DEFAULT_MAX_POINTS, Layer, Polyline, Scene};

/// One message from a pipeline to the live viewer. Points are in the world
/// frame (metres) and should already be decimated by the sender (e.g. with
/// [`decimate_points`]) so that the channel carries little data.
#[derive(Debug, Clone)]
pub enum ViewerUpdate {
    /// Replace the map layer (e.g. the odometry's local map).
    Map(Vec<Point3<f64>>),
    /// Replace the highlighted current frame (already in the world frame).
    Frame(Vec<Point3<f64>>),
    /// Append a `world_from_sensor` pose to the trajectory line.
    Pose(Isometry3<f64>),
    /// Status text appended to the title (e.g. "frame 120/4541").
    Status(String),
}

/// At most `max_points` of `points`, one per display voxel (see
/// [`decimate_indices`]); for senders of [`ViewerUpdate`].
pub fn decimate_points(points: &[Point3<f64>], max_points: usize) -> Vec<Point3<f64>> {
    decimate_indices(points, max_points)
        .indices
        .iter()
        .map(|&i| points[i])
        .collect()
}

/// A [`Scene`] with a map layer, a current-frame layer and a trajectory line
/// that [`ViewerUpdate`]s modify.
#[derive(Debug, Clone)]
pub struct LiveScene {
    /// The scene drawn; other layers may be added before showing it.
    pub scene: Scene,
    /// Index of the map layer in `scene.layers`.
    pub map_layer: usize,
    /// Index of the current-frame layer in `scene.layers`.
    pub frame_layer: usize,
    /// Index of the trajectory in `scene.polylines`.
    pub trajectory: usize,
    /// Display budget for each replaced layer (points).
    pub max_points: usize,
    /// The last [`ViewerUpdate::Status`] received.
    pub status: String,
}

impl LiveScene {
    /// Empty map (palette blue), current frame (yellow) and trajectory
    /// (orange), `title` as window title prefix.
    pub fn new(title: impl Into<String>) -> LiveScene {
        let mut scene = Scene {
            title: title.into(),
            ..Scene::default()
        };
        let map_layer = scene.add_layer(Layer {
            name: "map".into(),
            color: color::palette(0),
            visible: true,
            ..Layer::default()
        });
        let frame_layer = scene.add_layer(Layer {
            name: "current frame".into(),
            color: color::YELLOW,
            visible: true,
            ..Layer::default()
        });
        scene.polylines.push(Polyline {
            name: "trajectory".into(),
            color: color::palette(1),
            width: 3.0,
            ..Polyline::default()
        });
        LiveScene {
            scene,
            map_layer,
            frame_layer,
            trajectory: 0,
            max_points: DEFAULT_MAX_POINTS,
            status: String::new(),
        }
    }

    /// Applies one update. Replaced layers are decimated to `max_points` if
    /// the sender sent more.
    pub fn apply(&mut self, update: ViewerUpdate) {
        match update {
            ViewerUpdate::Map(points) => self.replace_layer(self.map_layer, points),
            ViewerUpdate::Frame(points) => self.replace_layer(self.frame_layer, points),
            ViewerUpdate::Pose(pose) => {
                if let Some(line) = self.scene.polylines.get_mut(self.trajectory) {
                    line.vertices.push(pose.translation.vector.into());
                }
            }
            ViewerUpdate::Status(text) => self.status = text,
        }
    }

    /// Title: the scene's title plus the last status.
    pub fn title_text(&self) -> String {
        if self.status.is_empty() {
            self.scene.title_text()
        } else {
            format!("{} | {}", self.scene.title_text(), self.status)
        }
    }

    fn replace_layer(&mut self, index: usize, points: Vec<Point3<f64>>) {
        let max_points = self.max_points;
        if let Some(layer) = self.scene.layers.get_mut(index) {
            layer.source_len = points.len();
            layer.points = if points.len() > max_points {
                decimate_points(&points, max_points)
            } else {
                points
            };
            layer.intensity = None;
            layer.normals = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_replace_layers_and_grow_the_trajectory() {
        let mut live = LiveScene::new("odometry");
        live.max_points = 10;
        let pts: Vec<_> = (0..100).map(|i| Point3::new(i as f64, 0.0, 0.0)).collect();
        live.apply(ViewerUpdate::Map(pts.clone()));
        live.apply(ViewerUpdate::Frame(pts[..5].to_vec()));
        live.apply(ViewerUpdate::Pose(Isometry3::translation(1.0, 2.0, 3.0)));
        live.apply(ViewerUpdate::Pose(Isometry3::translation(2.0, 2.0, 3.0)));
        live.apply(ViewerUpdate::Status("frame 2/10".into()));
        let s = &live.scene;
        assert!(s.layers[live.map_layer].points.len() <= 10);
        assert_eq!(s.layers[live.map_layer].source_len, 100);
        assert_eq!(s.layers[live.frame_layer].points, pts[..5].to_vec());
        assert_eq!(
            s.polylines[live.trajectory].vertices,
            vec![Point3::new(1.0, 2.0, 3.0), Point3::new(2.0, 2.0, 3.0)]
        );
        assert!(live.title_text().ends_with("| frame 2/10"));
        live.apply(ViewerUpdate::Map(Vec::new()));
        assert!(live.scene.layers[live.map_layer].points.is_empty());
    }

    #[test]
    fn channel_closes_when_viewer_drops_receiver() {
        let (tx, rx) = std::sync::mpsc::channel::<ViewerUpdate>();
        drop(rx);
        assert!(tx.send(ViewerUpdate::Status("x".into())).is_err());
    }
}
