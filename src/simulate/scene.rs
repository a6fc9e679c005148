//! Scene geometry for the simulator: analytic primitives, a uniform 2D grid
//! for culling, and ray casting.
//!
//! All primitives stand upright (their only rotation is a yaw about the
//! world z axis), which keeps every intersection closed-form and lets a 2D
//! grid over x–y cull them. The ground is the plane `z = ground_z`.

use nalgebra::{Point3, Vector2, Vector3};

/// Smallest ray parameter accepted as a hit, metres (avoids self-hits at
/// the origin).
const MIN_HIT_DISTANCE: f64 = 1e-6;

/// One solid of the scene. Distances in metres, angles in radians, world
/// frame (z up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Primitive {
    /// A box rotated by `yaw` about the vertical axis through `center`.
    Box {
        /// Centre of the box.
        center: Point3<f64>,
        /// Half extents along the box's own x, y, z axes (all > 0).
        half_extents: Vector3<f64>,
        /// Rotation about world z, radians.
        yaw: f64,
        /// Reflectivity in [0, 1] (scales the simulated intensity).
        reflectivity: f64,
    },
    /// A vertical cylinder with a top cap (its bottom is assumed to stand on
    /// the ground and is never hit from above).
    Cylinder {
        /// Centre of the base circle in x–y.
        center: Vector2<f64>,
        /// Height of the bottom face.
        z_min: f64,
        /// Height of the top face.
        z_max: f64,
        /// Radius (> 0).
        radius: f64,
        /// Reflectivity in [0, 1].
        reflectivity: f64,
    },
    /// A sphere.
    Sphere {
        /// Centre.
        center: Point3<f64>,
        /// Radius (> 0).
        radius: f64,
        /// Reflectivity in [0, 1].
        reflectivity: f64,
    },
}

/// The first surface a ray meets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Distance from the ray origin along the unit direction, metres.
    pub range: f64,
    /// Unit surface normal at the hit (facing either way).
    pub normal: Vector3<f64>,
    /// Reflectivity of the surface in [0, 1].
    pub reflectivity: f64,
}

/// Reflectivity of the ground plane.
const GROUND_REFLECTIVITY: f64 = 0.25;

impl Primitive {
    /// Axis-aligned x–y bounds `(min, max)` of the primitive.
    fn bounds_xy(&self) -> (Vector2<f64>, Vector2<f64>) {
        match *self {
            Primitive::Box {
                center,
                half_extents,
                yaw,
                ..
            } => {
                let (s, c) = yaw.sin_cos();
                let ex = c.abs() * half_extents.x + s.abs() * half_extents.y;
                let ey = s.abs() * half_extents.x + c.abs() * half_extents.y;
                let e = Vector2::new(ex, ey);
                (center.xy().coords - e, center.xy().coords + e)
            }
            Primitive::Cylinder { center, radius, .. } => {
                let e = Vector2::repeat(radius);
                (center - e, center + e)
            }
            Primitive::Sphere { center, radius, .. } => {
                let e = Vector2::repeat(radius);
                (center.xy().coords - e, center.xy().coords + e)
            }
        }
    }

    /// Nearest intersection with `t > MIN_HIT_DISTANCE` of the ray
    /// `origin + t · dir` (`dir` unit), or `None`.
    pub fn intersect(&self, origin: &Point3<f64>, dir: &Vector3<f64>) -> Option<Hit> {
        Prepared::new(self).intersect(origin, dir)
    }

    /// Vertical extent `(z_min, z_max)`.
    fn bounds_z(&self) -> (f64, f64) {
        match *self {
            Primitive::Box {
                center,
                half_extents,
                ..
            } => (center.z - half_extents.z, center.z + half_extents.z),
            Primitive::Cylinder { z_min, z_max, .. } => (z_min, z_max),
            Primitive::Sphere { center, radius, .. } => (center.z - radius, center.z + radius),
        }
    }

    /// Unsigned distance from `p` to the primitive's surface, metres
    /// (exact for spheres, boxes and cylinders).
    pub fn surface_distance(&self, p: &Point3<f64>) -> f64 {
        match *self {
            Primitive::Box {
                center,
                half_extents,
                yaw,
                ..
            } => {
                let local = to_box_frame(&(p - center), yaw);
                let q = local.abs() - half_extents;
                let outside = q.sup(&Vector3::zeros()).norm();
                let inside = q.max().min(0.0);
                (outside + inside).abs()
            }
            Primitive::Cylinder {
                center,
                z_min,
                z_max,
                radius,
                ..
            } => {
                let radial = (p.xy().coords - center).norm() - radius;
                let half_height = 0.5 * (z_max - z_min);
                let axial = (p.z - 0.5 * (z_min + z_max)).abs() - half_height;
                let outside = Vector2::new(radial.max(0.0), axial.max(0.0)).norm();
                let inside = radial.max(axial).min(0.0);
                (outside + inside).abs()
            }
            Primitive::Sphere { center, radius, .. } => ((p - center).norm() - radius).abs(),
        }
    }
}

/// Rotates a world-frame offset into the frame of a box with `yaw`.
fn to_box_frame(v: &Vector3<f64>, yaw: f64) -> Vector3<f64> {
    let (s, c) = yaw.sin_cos();
    rotate_into(v, c, s)
}

/// Rotates `v` by `−yaw` about z, given `cos yaw` and `sin yaw`.
fn rotate_into(v: &Vector3<f64>, cos: f64, sin: f64) -> Vector3<f64> {
    Vector3::new(cos * v.x + sin * v.y, -sin * v.x + cos * v.y, v.z)
}

/// A primitive prepared for ray casting: the box's yaw as cosine and sine,
/// and the vertical extent for culling.
#[derive(Debug, Clone, Copy)]
struct Prepared {
    primitive: Primitive,
    cos_yaw: f64,
    sin_yaw: f64,
    z_min: f64,
    z_max: f64,
}

impl Prepared {
    fn new(primitive: &Primitive) -> Prepared {
        let (sin_yaw, cos_yaw) = match *primitive {
            Primitive::Box { yaw, .. } => yaw.sin_cos(),
            _ => (0.0, 1.0),
        };
        let (z_min, z_max) = primitive.bounds_z();
        Prepared {
            primitive: *primitive,
            cos_yaw,
            sin_yaw,
            z_min,
            z_max,
        }
    }

    fn intersect(&self, origin: &Point3<f64>, dir: &Vector3<f64>) -> Option<Hit> {
        let (range, normal, reflectivity) = match self.primitive {
            Primitive::Box {
                center,
                half_extents,
                reflectivity,
                ..
            } => {
                let (t, n) = intersect_box(
                    origin,
                    dir,
                    &center,
                    &half_extents,
                    self.cos_yaw,
                    self.sin_yaw,
                )?;
                (t, n, reflectivity)
            }
            Primitive::Cylinder {
                center,
                z_min,
                z_max,
                radius,
                reflectivity,
            } => {
                let (t, n) = intersect_cylinder(origin, dir, &center, z_min, z_max, radius)?;
                (t, n, reflectivity)
            }
            Primitive::Sphere {
                center,
                radius,
                reflectivity,
            } => {
                let (t, n) = intersect_sphere(origin, dir, &center, radius)?;
                (t, n, reflectivity)
            }
        };
        Some(Hit {
            range,
            normal,
            reflectivity,
        })
    }
}

/// Slab test in the box frame (Kay & Kajiya 1986).
fn intersect_box(
    origin: &Point3<f64>,
    dir: &Vector3<f64>,
    center: &Point3<f64>,
    half: &Vector3<f64>,
    c: f64,
    s: f64,
) -> Option<(f64, Vector3<f64>)> {
    let o = rotate_into(&(origin - center), c, s);
    let d = rotate_into(dir, c, s);
    let mut t_enter = f64::NEG_INFINITY;
    let mut t_exit = f64::INFINITY;
    let mut enter_axis = 0;
    for axis in 0..3 {
        if d[axis].abs() < 1e-12 {
            if o[axis].abs() > half[axis] {
                return None;
            }
            continue;
        }
        let inv = 1.0 / d[axis];
        let (mut t0, mut t1) = ((-half[axis] - o[axis]) * inv, (half[axis] - o[axis]) * inv);
        if t0 > t1 {
            std::mem::swap(&mut t0, &mut t1);
        }
        if t0 > t_enter {
            t_enter = t0;
            enter_axis = axis;
        }
        t_exit = t_exit.min(t1);
    }
    if t_enter > t_exit || t_enter <= MIN_HIT_DISTANCE {
        // A miss, or the origin is inside the box (the sensor never is).
        return None;
    }
    let normal = match enter_axis {
        0 => Vector3::new(c, s, 0.0),
        1 => Vector3::new(-s, c, 0.0),
        _ => Vector3::z(),
    };
    Some((t_enter, normal))
}

/// Side (quadratic in x–y) and top cap of a vertical cylinder.
fn intersect_cylinder(
    origin: &Point3<f64>,
    dir: &Vector3<f64>,
    center: &Vector2<f64>,
    z_min: f64,
    z_max: f64,
    radius: f64,
) -> Option<(f64, Vector3<f64>)> {
    let o = origin.xy().coords - center;
    let d = dir.xy();
    let a = d.norm_squared();
    let mut best: Option<(f64, Vector3<f64>)> = None;
    if a > 1e-18 {
        let b = o.dot(&d);
        let c = o.norm_squared() - radius * radius;
        let discriminant = b * b - a * c;
        if discriminant >= 0.0 {
            let t = (-b - discriminant.sqrt()) / a;
            let z = origin.z + t * dir.z;
            if t > MIN_HIT_DISTANCE && z >= z_min && z <= z_max {
                let radial = (o + t * d) / radius;
                best = Some((t, Vector3::new(radial.x, radial.y, 0.0)));
            }
        }
    }
    if dir.z.abs() > 1e-12 {
        let t = (z_max - origin.z) / dir.z;
        let inside = (o + t * d).norm_squared() <= radius * radius;
        if t > MIN_HIT_DISTANCE && inside && best.is_none_or(|(t_side, _)| t < t_side) {
            best = Some((t, Vector3::z()));
        }
    }
    best
}

fn intersect_sphere(
    origin: &Point3<f64>,
    dir: &Vector3<f64>,
    center: &Point3<f64>,
    radius: f64,
) -> Option<(f64, Vector3<f64>)> {
    let o = origin - center;
    let b = o.dot(dir);
    let c = o.norm_squared() - radius * radius;
    let discriminant = b * b - c;
    if discriminant < 0.0 {
        return None;
    }
    let t = -b - discriminant.sqrt();
    (t > MIN_HIT_DISTANCE).then(|| (t, (o + t * dir) / radius))
}

/// A uniform 2D grid over x–y: cell `(i, j)` lists the primitives whose x–y
/// bounds overlap it (CSR layout).
#[derive(Debug, Clone)]
struct Grid {
    origin: Vector2<f64>,
    cell_size: f64,
    nx: usize,
    ny: usize,
    /// `cell_start[k]..cell_start[k + 1]` indexes `items` for cell `k = j·nx + i`.
    cell_start: Vec<u32>,
    items: Vec<u32>,
}

impl Grid {
    fn build(primitives: &[Primitive], cell_size: f64) -> Grid {
        let bounds: Vec<_> = primitives.iter().map(Primitive::bounds_xy).collect();
        let (lo, hi) = bounds.iter().fold(
            (
                Vector2::repeat(f64::INFINITY),
                Vector2::repeat(f64::NEG_INFINITY),
            ),
            |(lo, hi), (a, b)| (lo.inf(a), hi.sup(b)),
        );
        if bounds.is_empty() {
            return Grid {
                origin: Vector2::zeros(),
                cell_size,
                nx: 0,
                ny: 0,
                cell_start: vec![0],
                items: Vec::new(),
            };
        }
        let origin = lo - Vector2::repeat(cell_size);
        let nx = ((hi.x - origin.x) / cell_size).ceil() as usize + 1;
        let ny = ((hi.y - origin.y) / cell_size).ceil() as usize + 1;
        let cell_range = |a: &Vector2<f64>, b: &Vector2<f64>| {
            let i0 = ((a.x - origin.x) / cell_size).floor() as usize;
            let j0 = ((a.y - origin.y) / cell_size).floor() as usize;
            let i1 = (((b.x - origin.x) / cell_size).floor() as usize).min(nx - 1);
            let j1 = (((b.y - origin.y) / cell_size).floor() as usize).min(ny - 1);
            (i0, j0, i1, j1)
        };
        // Counting pass, then fill (CSR).
        let mut counts = vec![0u32; nx * ny + 1];
        for (a, b) in &bounds {
            let (i0, j0, i1, j1) = cell_range(a, b);
            for j in j0..=j1 {
                for i in i0..=i1 {
                    counts[j * nx + i + 1] += 1;
                }
            }
        }
        for k in 1..counts.len() {
            counts[k] += counts[k - 1];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[nx * ny] as usize];
        for (index, (a, b)) in bounds.iter().enumerate() {
            let (i0, j0, i1, j1) = cell_range(a, b);
            for j in j0..=j1 {
                for i in i0..=i1 {
                    let k = j * nx + i;
                    items[fill[k] as usize] = index as u32;
                    fill[k] += 1;
                }
            }
        }
        Grid {
            origin,
            cell_size,
            nx,
            ny,
            cell_start: counts,
            items,
        }
    }

    fn cell(&self, i: usize, j: usize) -> &[u32] {
        let k = j * self.nx + i;
        &self.items[self.cell_start[k] as usize..self.cell_start[k + 1] as usize]
    }
}

/// A procedural scene: a ground plane and upright primitives, with a 2D grid
/// for culling.
#[derive(Debug, Clone)]
pub struct Scene {
    primitives: Vec<Primitive>,
    prepared: Vec<Prepared>,
    ground_z: Option<f64>,
    grid: Grid,
}

/// Grid cell size, metres: a few primitives per cell in a street scene.
const CELL_SIZE_M: f64 = 4.0;

impl Scene {
    /// A scene from primitives and an optional ground plane `z = ground_z`.
    /// Primitives with non-finite or non-positive sizes are dropped (with a
    /// warning).
    pub fn new(primitives: Vec<Primitive>, ground_z: Option<f64>) -> Scene {
        let before = primitives.len();
        let primitives: Vec<Primitive> = primitives.into_iter().filter(is_valid).collect();
        if primitives.len() < before {
            log::warn!(
                "scene: dropped {} primitives with invalid sizes",
                before - primitives.len()
            );
        }
        let grid = Grid::build(&primitives, CELL_SIZE_M);
        Scene {
            prepared: primitives.iter().map(Prepared::new).collect(),
            primitives,
            ground_z: ground_z.filter(|z| z.is_finite()),
            grid,
        }
    }

    /// The primitives (ground excluded).
    pub fn primitives(&self) -> &[Primitive] {
        &self.primitives
    }

    /// Height of the ground plane, if any.
    pub fn ground_z(&self) -> Option<f64> {
        self.ground_z
    }

    /// First hit of the ray `origin + t · dir` with `0 < t ≤ max_range`.
    ///
    /// `dir` must be a unit vector. Intersects the ground plane first (it
    /// bounds the search), then walks the 2D grid cells the ray crosses in
    /// order (Amanatides & Woo 1987), testing the primitives of each cell
    /// whose vertical extent overlaps the ray's height in that cell, each
    /// primitive at most once per ray (a small mailbox), and stops at the
    /// first cell whose exit lies beyond the best hit so far.
    /// O(cells crossed × primitives per cell).
    pub fn cast(&self, origin: &Point3<f64>, dir: &Vector3<f64>, max_range: f64) -> Option<Hit> {
        let mut best: Option<Hit> = None;
        let mut t_limit = max_range;
        if let Some(z) = self.ground_z
            && dir.z.abs() > 1e-12
        {
            let t = (z - origin.z) / dir.z;
            if t > MIN_HIT_DISTANCE && t <= t_limit {
                t_limit = t;
                best = Some(Hit {
                    range: t,
                    normal: Vector3::z(),
                    reflectivity: GROUND_REFLECTIVITY,
                });
            }
        }
        let g = &self.grid;
        let local = (origin.xy().coords - g.origin) / g.cell_size;
        let (mut i, mut j) = (local.x.floor(), local.y.floor());
        let inside = |i: f64, j: f64| i >= 0.0 && j >= 0.0 && i < g.nx as f64 && j < g.ny as f64;
        if !inside(i, j) {
            // The sensor is outside the scene's grid: test everything.
            for prepared in &self.prepared {
                if let Some(hit) = prepared.intersect(origin, dir)
                    && hit.range <= t_limit
                    && best.is_none_or(|b| hit.range < b.range)
                {
                    best = Some(hit);
                }
            }
            return best;
        }
        let axis_setup = |d: f64, cell: f64, o: f64| {
            if d.abs() <= 1e-12 {
                return (0.0, f64::INFINITY, f64::INFINITY);
            }
            let step = d.signum();
            let boundary = if d > 0.0 { cell + 1.0 } else { cell };
            (
                (step),
                (boundary - o) * g.cell_size / d,
                g.cell_size / d.abs(),
            )
        };
        let (step_x, mut t_next_x, t_per_cell_x) = axis_setup(dir.x, i, local.x);
        let (step_y, mut t_next_y, t_per_cell_y) = axis_setup(dir.y, j, local.y);
        let mut mailbox = [u32::MAX; 8];
        let mut mailbox_next = 0usize;
        let mut t_enter = 0.0f64;
        loop {
            let t_exit = t_next_x.min(t_next_y);
            let (za, zb) = (
                origin.z + dir.z * t_enter,
                origin.z + dir.z * t_exit.min(t_limit),
            );
            let (z_lo, z_hi) = (za.min(zb), za.max(zb));
            for &index in g.cell(i as usize, j as usize) {
                let prepared = &self.prepared[index as usize];
                if prepared.z_max < z_lo || prepared.z_min > z_hi || mailbox.contains(&index) {
                    continue;
                }
                mailbox[mailbox_next] = index;
                mailbox_next = (mailbox_next + 1) % mailbox.len();
                if let Some(hit) = prepared.intersect(origin, dir)
                    && hit.range <= t_limit
                    && best.is_none_or(|b| hit.range < b.range)
                {
                    best = Some(hit);
                }
            }
            if best.is_some_and(|b| b.range <= t_exit) || t_exit > t_limit {
                return best;
            }
            t_enter = t_exit;
            if t_next_x < t_next_y {
                i += step_x;
                t_next_x += t_per_cell_x;
            } else {
                j += step_y;
                t_next_y += t_per_cell_y;
            }
            if !inside(i, j) {
                return best;
            }
        }
    }

    /// Unsigned distance from `p` to the nearest surface (ground or
    /// primitive), metres. O(primitives); meant for tests and checks.
    pub fn surface_distance(&self, p: &Point3<f64>) -> f64 {
        let ground = self.ground_z.map_or(f64::INFINITY, |z| (p.z - z).abs());
        self.primitives
            .iter()
            .map(|q| q.surface_distance(p))
            .fold(ground, f64::min)
    }
}

fn is_valid(p: &Primitive) -> bool {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    match p {
        Primitive::Box {
            center,
            half_extents,
            yaw,
            reflectivity,
        } => {
            center.coords.iter().all(|c| c.is_finite())
                && half_extents.iter().all(|&h| positive(h))
                && yaw.is_finite()
                && reflectivity.is_finite()
        }
        Primitive::Cylinder {
            center,
            z_min,
            z_max,
            radius,
            reflectivity,
        } => {
            center.iter().all(|c| c.is_finite())
                && z_min.is_finite()
                && z_max.is_finite()
                && z_max > z_min
                && positive(*radius)
                && reflectivity.is_finite()
        }
        Primitive::Sphere {
            center,
            radius,
            reflectivity,
        } => {
            center.coords.iter().all(|c| c.is_finite())
                && positive(*radius)
                && reflectivity.is_finite()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall_at_x(x: f64) -> Primitive {
        Primitive::Box {
            center: Point3::new(x + 0.5, 0.0, 5.0),
            half_extents: Vector3::new(0.5, 20.0, 5.0),
            yaw: 0.0,
            reflectivity: 0.5,
        }
    }

    #[test]
    fn ray_hits_ground_at_right_range() {
        let scene = Scene::new(vec![], Some(0.0));
        let elevation = -10f64.to_radians();
        let dir = Vector3::new(elevation.cos(), 0.0, elevation.sin());
        let hit = scene.cast(&Point3::new(0.0, 0.0, 1.7), &dir, 80.0).unwrap();
        assert!((hit.range - 1.7 / 10f64.to_radians().sin()).abs() < 1e-12);
        assert_eq!(hit.normal, Vector3::z());
        // Upward ray: no hit.
        assert!(
            scene
                .cast(&Point3::new(0.0, 0.0, 1.7), &Vector3::z(), 80.0)
                .is_none()
        );
    }

    #[test]
    fn grid_walk_equals_brute_force() {
        let mut prims = vec![wall_at_x(30.0)];
        for k in 0..40 {
            let f = k as f64;
            prims.push(Primitive::Cylinder {
                center: Vector2::new(20.0 * (0.7 * f).cos(), 20.0 * (1.3 * f).sin()),
                z_min: 0.0,
                z_max: 3.0 + (f % 4.0),
                radius: 0.3,
                reflectivity: 0.7,
            });
            prims.push(Primitive::Sphere {
                center: Point3::new(15.0 * (0.3 * f).sin(), 25.0 * (0.9 * f).cos(), 2.0),
                radius: 1.0,
                reflectivity: 0.3,
            });
            prims.push(Primitive::Box {
                center: Point3::new(-10.0 + f, 10.0 * (0.5 * f).sin(), 1.0),
                half_extents: Vector3::new(1.0, 0.5, 1.0),
                yaw: 0.37 * f,
                reflectivity: 0.9,
            });
        }
        let scene = Scene::new(prims.clone(), Some(0.0));
        let origin = Point3::new(0.3, -0.2, 1.7);
        let mut hits = 0;
        for a in 0..720 {
            for e in [-0.3f64, -0.05, 0.0, 0.03] {
                let az = (a as f64 * 0.5).to_radians();
                let dir = Vector3::new(e.cos() * az.cos(), e.cos() * az.sin(), e.sin());
                let fast = scene.cast(&origin, &dir, 80.0).map(|h| h.range);
                let brute = prims
                    .iter()
                    .filter_map(|p| p.intersect(&origin, &dir))
                    .map(|h| h.range)
                    .chain((dir.z < 0.0).then(|| -origin.z / dir.z))
                    .filter(|&t| t <= 80.0)
                    .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))));
                assert_eq!(fast, brute, "azimuth {az} elevation {e}");
                hits += usize::from(fast.is_some());
            }
        }
        assert!(hits > 1000);
    }

    #[test]
    fn box_cylinder_sphere_known_ranges() {
        let o = Point3::new(0.0, 0.0, 1.0);
        let x = Vector3::x();
        let t = wall_at_x(10.0).intersect(&o, &x).unwrap();
        assert!((t.range - 10.0).abs() < 1e-12);
        let c = Primitive::Cylinder {
            center: Vector2::new(5.0, 0.0),
            z_min: 0.0,
            z_max: 4.0,
            radius: 0.5,
            reflectivity: 1.0,
        };
        assert!((c.intersect(&o, &x).unwrap().range - 4.5).abs() < 1e-12);
        let s = Primitive::Sphere {
            center: Point3::new(7.0, 0.0, 1.0),
            radius: 2.0,
            reflectivity: 1.0,
        };
        assert!((s.intersect(&o, &x).unwrap().range - 5.0).abs() < 1e-12);
        // Rotated box: a 45° yawed cube of half-size 1 at x = 5: corner at 5 - √2.
        let b = Primitive::Box {
            center: Point3::new(5.0, 0.0, 1.0),
            half_extents: Vector3::new(1.0, 1.0, 1.0),
            yaw: std::f64::consts::FRAC_PI_4,
            reflectivity: 1.0,
        };
        assert!((b.intersect(&o, &x).unwrap().range - (5.0 - 2f64.sqrt())).abs() < 1e-9);
        assert!((b.surface_distance(&Point3::new(5.0 - 2f64.sqrt(), 0.0, 1.0))).abs() < 1e-9);
    }

    #[test]
    fn invalid_primitives_dropped() {
        let scene = Scene::new(
            vec![
                Primitive::Sphere {
                    center: Point3::origin(),
                    radius: -1.0,
                    reflectivity: 0.5,
                },
                wall_at_x(3.0),
            ],
            Some(f64::NAN),
        );
        assert_eq!(scene.primitives().len(), 1);
        assert_eq!(scene.ground_z(), None);
    }
}
