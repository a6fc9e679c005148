//! What the viewer shows: layers of points, polylines, colouring.

use nalgebra::{Isometry3, Point3, Vector3};

use super::color::{self, ColorMode};
use super::decimate::{decimate_indices, finite_bounds};
use crate::PointCloud;

/// Default display budget per layer (points).
pub const DEFAULT_MAX_POINTS: usize = 200_000;
/// Default point size, pixels.
pub const DEFAULT_POINT_SIZE: f32 = 2.0;

/// When a layer is drawn with respect to the before/after toggle (key `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerRole {
    /// Always drawn (when visible).
    #[default]
    Always,
    /// Drawn while the scene shows "before" (e.g. the source before ICP).
    Before,
    /// Drawn while the scene shows "after" (e.g. the source after ICP).
    After,
}

/// One cloud on screen, already decimated for display.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// Name shown in the title and log (usually the file name).
    pub name: String,
    /// Display points, world frame, metres (finite).
    pub points: Vec<Point3<f64>>,
    /// Intensity per display point, if the source had it.
    pub intensity: Option<Vec<f32>>,
    /// Unit normal per display point (zero = none), if the source had them.
    pub normals: Option<Vec<Vector3<f64>>>,
    /// Fixed colour for [`ColorMode::File`], sRGB in [0, 1].
    pub color: [f32; 3],
    /// Drawn at all (key `1`–`9` toggles).
    pub visible: bool,
    /// Before/after behaviour.
    pub role: LayerRole,
    /// Number of points in the source cloud before display decimation.
    pub source_len: usize,
    /// Display voxel size (metres) when the layer was decimated.
    pub display_voxel_size: Option<f64>,
}

impl Layer {
    /// A layer from a cloud, decimated to at most `max_points` with
    /// [`decimate_indices`] (intensity and normals carried along).
    pub fn from_cloud(
        name: impl Into<String>,
        cloud: &PointCloud,
        color: [f32; 3],
        max_points: usize,
    ) -> Layer {
        let decimation = decimate_indices(&cloud.points, max_points);
        let intensity = cloud
            .intensity
            .as_ref()
            .filter(|v| v.len() == cloud.points.len())
            .map(|v| decimation.indices.iter().map(|&i| v[i]).collect());
        let normals = cloud
            .normals
            .as_ref()
            .filter(|v| v.len() == cloud.points.len())
            .map(|v| decimation.indices.iter().map(|&i| v[i]).collect());
        Layer {
            name: name.into(),
            points: decimation
                .indices
                .iter()
                .map(|&i| cloud.points[i])
                .collect(),
            intensity,
            normals,
            color,
            visible: true,
            role: LayerRole::Always,
            source_len: cloud.points.len(),
            display_voxel_size: decimation.voxel_size,
        }
    }

    /// A layer from bare positions, decimated to at most `max_points`.
    pub fn from_points(
        name: impl Into<String>,
        points: &[Point3<f64>],
        color: [f32; 3],
        max_points: usize,
    ) -> Layer {
        let decimation = decimate_indices(points, max_points);
        Layer {
            name: name.into(),
            points: decimation.indices.iter().map(|&i| points[i]).collect(),
            color,
            visible: true,
            source_len: points.len(),
            display_voxel_size: decimation.voxel_size,
            ..Layer::default()
        }
    }

    /// The same layer with `role`.
    pub fn with_role(mut self, role: LayerRole) -> Layer {
        self.role = role;
        self
    }

    /// True when the layer was thinned for display.
    pub fn is_decimated(&self) -> bool {
        self.points.len() < self.source_len
    }
}

/// A line through 3D points (e.g. an odometry trajectory).
#[derive(Debug, Clone, Default)]
pub struct Polyline {
    /// Name for the log.
    pub name: String,
    /// Vertices, world frame, metres.
    pub vertices: Vec<Point3<f64>>,
    /// Linear RGB colour in [0, 1].
    pub color: [f32; 3],
    /// Width in pixels.
    pub width: f32,
}

impl Polyline {
    /// A trajectory: the translation of each `world_from_sensor` pose.
    pub fn from_poses(name: impl Into<String>, poses: &[Isometry3<f64>], color: [f32; 3]) -> Self {
        Polyline {
            name: name.into(),
            vertices: poses.iter().map(|p| p.translation.vector.into()).collect(),
            color,
            width: 3.0,
        }
    }
}

/// Everything the viewer draws, plus the display settings.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Point layers, drawn in order; keys `1`–`9` toggle the first nine.
    pub layers: Vec<Layer>,
    /// Lines (trajectories).
    pub polylines: Vec<Polyline>,
    /// Current colouring (key `C` cycles).
    pub color_mode: ColorMode,
    /// Point size, pixels.
    pub point_size: f32,
    /// Show [`LayerRole::After`] layers instead of [`LayerRole::Before`] ones.
    pub show_after: bool,
    /// Window title prefix.
    pub title: String,
    /// Background, sRGB in [0, 1].
    pub background: [f32; 3],
}

impl Default for Scene {
    fn default() -> Self {
        Scene {
            layers: Vec::new(),
            polylines: Vec::new(),
            color_mode: ColorMode::File,
            point_size: DEFAULT_POINT_SIZE,
            show_after: true,
            title: "pointpipe".to_string(),
            background: [0.08, 0.08, 0.1],
        }
    }
}

impl Scene {
    /// An empty scene with default settings.
    pub fn new() -> Scene {
        Scene::default()
    }

    /// Appends a layer and returns its index.
    pub fn add_layer(&mut self, layer: Layer) -> usize {
        self.layers.push(layer);
        self.layers.len() - 1
    }

    /// True when layer `i` is drawn now (visible and matching before/after).
    pub fn is_drawn(&self, i: usize) -> bool {
        self.layers.get(i).is_some_and(|l| {
            l.visible
                && match l.role {
                    LayerRole::Always => true,
                    LayerRole::Before => !self.show_after,
                    LayerRole::After => self.show_after,
                }
        })
    }

    /// Bounds `(min, max)` of everything in the scene (all layers, drawn or
    /// not, and polylines), metres; `None` for an empty scene.
    pub fn bounds(&self) -> Option<(Point3<f64>, Point3<f64>)> {
        let layer_bounds = self.layers.iter().filter_map(|l| finite_bounds(&l.points));
        let line_bounds = self
            .polylines
            .iter()
            .filter_map(|l| finite_bounds(&l.vertices));
        layer_bounds
            .chain(line_bounds)
            .reduce(|(lo, hi), (a, b)| (lo.inf(&a), hi.sup(&b)))
    }

    /// The window title: prefix, colour mode, and a note per decimated layer.
    pub fn title_text(&self) -> String {
        let mut title = format!("{} [color: {}]", self.title, self.color_mode.name());
        for l in self.layers.iter().filter(|l| l.is_decimated()) {
            title.push_str(&format!(
                " | {}: {} of {} points shown (display voxel {:.3})",
                l.name,
                l.points.len(),
                l.source_len,
                l.display_voxel_size.unwrap_or(0.0)
            ));
        }
        if self.layers.iter().any(|l| l.role != LayerRole::Always) {
            title.push_str(if self.show_after {
                " | after"
            } else {
                " | before"
            });
        }
        title
    }

    /// Colours of every layer's points for the current [`ColorMode`]; one
    /// `Vec` per layer, same length as its points.
    pub fn layer_colors(&self) -> Vec<Vec<[f32; 3]>> {
        let height_range = (self.color_mode == ColorMode::Height)
            .then(|| self.height_range())
            .flatten()
            .unwrap_or((0.0, 1.0));
        self.layers
            .iter()
            .map(|layer| {
                let mut out = Vec::with_capacity(layer.points.len());
                match (self.color_mode, &layer.intensity, &layer.normals) {
                    (ColorMode::Height, _, _) => {
                        color::height_colors(&layer.points, height_range, &mut out)
                    }
                    (ColorMode::Intensity, Some(intensity), _) => {
                        color::intensity_colors(intensity, &mut out)
                    }
                    (ColorMode::Normal, _, Some(normals)) => {
                        color::normal_colors(normals, &mut out)
                    }
                    _ => out.resize(layer.points.len(), layer.color),
                }
                out
            })
            .collect()
    }

    /// 2nd–98th percentile of z over the drawn layers (all layers if none is
    /// drawn).
    fn height_range(&self) -> Option<(f64, f64)> {
        let drawn: Vec<usize> = (0..self.layers.len())
            .filter(|&i| self.is_drawn(i))
            .collect();
        let chosen: Vec<usize> = if drawn.is_empty() {
            (0..self.layers.len()).collect()
        } else {
            drawn
        };
        let mut z: Vec<f64> = chosen
            .iter()
            .flat_map(|&i| self.layers[i].points.iter().map(|p| p.z))
            .filter(|z| z.is_finite())
            .collect();
        color::percentile_range(&mut z, 0.02, 0.98)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(n: usize) -> PointCloud {
        let mut c = PointCloud::from_points(
            (0..n)
                .map(|i| Point3::new(i as f64, 0.0, i as f64 * 0.5))
                .collect(),
        );
        c.intensity = Some((0..n).map(|i| i as f32).collect());
        c
    }

    #[test]
    fn layer_from_cloud_decimates_and_keeps_attributes_aligned() {
        let l = Layer::from_cloud("a", &cloud(1000), color::RED, 100);
        assert!(l.points.len() <= 100 && l.is_decimated());
        let intensity = l.intensity.as_ref().unwrap();
        assert_eq!(intensity.len(), l.points.len());
        for (p, i) in l.points.iter().zip(intensity) {
            assert_eq!(p.x as f32, *i);
        }
        let scene = Scene {
            layers: vec![l],
            ..Scene::default()
        };
        assert!(scene.title_text().contains("of 1000 points shown"));
    }

    #[test]
    fn before_after_toggle_and_bounds() {
        let mut s = Scene::new();
        s.add_layer(Layer::from_points(
            "t",
            &[Point3::origin()],
            color::GREY,
            10,
        ));
        s.add_layer(
            Layer::from_points("b", &[Point3::new(-1.0, 0.0, 0.0)], color::RED, 10)
                .with_role(LayerRole::Before),
        );
        s.add_layer(
            Layer::from_points("a", &[Point3::new(0.0, 2.0, 0.0)], color::GREEN, 10)
                .with_role(LayerRole::After),
        );
        s.polylines.push(Polyline::from_poses(
            "traj",
            &[Isometry3::translation(0.0, 0.0, 5.0)],
            color::YELLOW,
        ));
        assert!(s.is_drawn(0) && !s.is_drawn(1) && s.is_drawn(2));
        s.show_after = false;
        assert!(s.is_drawn(0) && s.is_drawn(1) && !s.is_drawn(2));
        assert!(!s.is_drawn(7));
        let (lo, hi) = s.bounds().unwrap();
        assert_eq!(lo, Point3::new(-1.0, 0.0, 0.0));
        assert_eq!(hi, Point3::new(0.0, 2.0, 5.0));
        assert_eq!(Scene::new().bounds(), None);
    }

    #[test]
    fn colors_per_mode() {
        let mut s = Scene::new();
        s.add_layer(Layer::from_cloud("a", &cloud(101), color::RED, 1000));
        s.add_layer(Layer::from_points(
            "b",
            &[Point3::origin()],
            color::GREEN,
            10,
        ));
        assert_eq!(s.layer_colors()[0][5], color::RED);
        s.color_mode = ColorMode::Height;
        let c = s.layer_colors();
        assert_eq!(c[0].len(), 101);
        assert_eq!(c[0][100], color::colormap(1.0));
        s.color_mode = ColorMode::Intensity;
        let c = s.layer_colors();
        assert_ne!(c[0][0], c[0][100]);
        assert_eq!(c[1][0], color::GREEN, "no intensity: file colour");
        s.color_mode = ColorMode::Normal;
        assert_eq!(
            s.layer_colors()[0][0],
            color::RED,
            "no normals: file colour"
        );
    }
}
