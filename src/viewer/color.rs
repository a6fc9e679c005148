//! Point colours: per-layer palette, height / intensity colour maps, normals.
//!
//! Colours are display (sRGB) triples in [0, 1], as they appear in a
//! screenshot; the renderer converts them for kiss3d and adds alpha.

use nalgebra::{Point3, Vector3};

/// How points are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// Each layer (file) in its own fixed colour.
    #[default]
    File,
    /// Height `z` through a colour map, 2nd–98th percentile over all visible
    /// layers mapped to the ends of the map.
    Height,
    /// Intensity through a grey-to-white ramp, 2nd–98th percentile per layer;
    /// layers without intensity keep their file colour.
    Intensity,
    /// Unit normal `|n|` as RGB (x red, y green, z blue); points without a
    /// normal are grey, layers without normals keep their file colour.
    Normal,
}

impl ColorMode {
    /// The mode after this one, for the "switch colouring" key.
    pub fn next(self) -> Self {
        match self {
            ColorMode::File => ColorMode::Height,
            ColorMode::Height => ColorMode::Intensity,
            ColorMode::Intensity => ColorMode::Normal,
            ColorMode::Normal => ColorMode::File,
        }
    }

    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ColorMode::File => "file",
            ColorMode::Height => "height",
            ColorMode::Intensity => "intensity",
            ColorMode::Normal => "normal",
        }
    }
}

/// Distinct layer colours (Tableau 10, minus grey), cycled by layer index.
pub const PALETTE: [[f32; 3]; 9] = [
    [0.12, 0.47, 0.71], // blue
    [1.00, 0.50, 0.05], // orange
    [0.17, 0.63, 0.17], // green
    [0.84, 0.15, 0.16], // red
    [0.58, 0.40, 0.74], // purple
    [0.55, 0.34, 0.29], // brown
    [0.89, 0.47, 0.76], // pink
    [0.74, 0.74, 0.13], // olive
    [0.09, 0.75, 0.81], // cyan
];

/// Grey for registration targets and points without a normal.
pub const GREY: [f32; 3] = [0.6, 0.6, 0.6];
/// Red for a registration source before alignment.
pub const RED: [f32; 3] = [0.9, 0.15, 0.15];
/// Green for a registration source after alignment.
pub const GREEN: [f32; 3] = [0.15, 0.85, 0.2];
/// Yellow for trajectories and the current odometry frame.
pub const YELLOW: [f32; 3] = [1.0, 0.85, 0.1];

/// The palette colour of layer `index`.
pub fn palette(index: usize) -> [f32; 3] {
    PALETTE[index % PALETTE.len()]
}

/// Viridis-like colour map sampled at 5 stops, `t` clamped to [0, 1].
pub fn colormap(t: f64) -> [f32; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [0.27, 0.00, 0.33],
        [0.23, 0.32, 0.55],
        [0.13, 0.57, 0.55],
        [0.37, 0.79, 0.38],
        [0.99, 0.91, 0.14],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = (x - i as f64) as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    [
        a[0] + (b[0] - a[0]) * f,
        a[1] + (b[1] - a[1]) * f,
        a[2] + (b[2] - a[2]) * f,
    ]
}

/// The `lo`–`hi` percentiles (in [0, 1]) of the finite `values`, or `None`
/// when there is none. O(n) with two selections.
pub fn percentile_range(values: &mut [f64], lo: f64, hi: f64) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let last = values.len() - 1;
    let rank = |q: f64| ((q.clamp(0.0, 1.0) * last as f64).round() as usize).min(last);
    let (i_lo, i_hi) = (rank(lo), rank(hi));
    let a = *values.select_nth_unstable_by(i_lo, f64::total_cmp).1;
    let b = *values.select_nth_unstable_by(i_hi, f64::total_cmp).1;
    Some((a, b))
}

/// Maps `value` linearly from `range` to [0, 1] (0.5 for a degenerate range).
pub fn normalize(value: f64, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        (value - lo) / (hi - lo)
    } else {
        0.5
    }
}

/// Height colours of `points` for the z `range`.
pub fn height_colors(points: &[Point3<f64>], range: (f64, f64), out: &mut Vec<[f32; 3]>) {
    out.clear();
    out.extend(points.iter().map(|p| colormap(normalize(p.z, range))));
}

/// Intensity colours: a dark-blue-to-white ramp over the layer's 2nd–98th
/// percentile.
pub fn intensity_colors(intensity: &[f32], out: &mut Vec<[f32; 3]>) {
    let mut values: Vec<f64> = intensity
        .iter()
        .map(|&v| f64::from(v))
        .filter(|v| v.is_finite())
        .collect();
    let range = percentile_range(&mut values, 0.02, 0.98).unwrap_or((0.0, 1.0));
    out.clear();
    out.extend(intensity.iter().map(|&v| {
        let t = normalize(f64::from(v), range).clamp(0.0, 1.0) as f32;
        [0.15 + 0.85 * t, 0.15 + 0.85 * t, 0.35 + 0.65 * t]
    }));
}

/// Normal colours `|n|` per component; zero (missing) normals are grey.
pub fn normal_colors(normals: &[Vector3<f64>], out: &mut Vec<[f32; 3]>) {
    out.clear();
    out.extend(normals.iter().map(|n| {
        let len = n.norm();
        if len > 0.0 && len.is_finite() {
            [
                (n.x / len).abs() as f32,
                (n.y / len).abs() as f32,
                (n.z / len).abs() as f32,
            ]
        } else {
            GREY
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_ends_and_clamping() {
        assert_eq!(colormap(0.0), [0.27, 0.00, 0.33]);
        assert_eq!(colormap(1.0), [0.99, 0.91, 0.14]);
        assert_eq!(colormap(-3.0), colormap(0.0));
        assert_eq!(colormap(7.0), colormap(1.0));
        assert_eq!(colormap(f64::NAN), colormap(0.0));
    }

    #[test]
    fn percentiles_of_ramp() {
        let mut v: Vec<f64> = (0..=100).map(f64::from).collect();
        v.reverse();
        assert_eq!(percentile_range(&mut v, 0.02, 0.98), Some((2.0, 98.0)));
        assert_eq!(percentile_range(&mut [], 0.02, 0.98), None);
        assert_eq!(normalize(5.0, (5.0, 5.0)), 0.5);
    }

    #[test]
    fn normals_map_to_abs_components() {
        let mut out = Vec::new();
        normal_colors(&[Vector3::new(0.0, 0.0, -2.0), Vector3::zeros()], &mut out);
        assert_eq!(out, vec![[0.0, 0.0, 1.0], GREY]);
    }

    #[test]
    fn mode_cycle_visits_all() {
        let mut m = ColorMode::File;
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(m.name());
            m = m.next();
        }
        assert_eq!(m, ColorMode::File);
        assert_eq!(names, ["file", "height", "intensity", "normal"]);
    }
}
