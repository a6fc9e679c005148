//! Proximity layers: one file loaded into memory and indexed by our k-d tree,
//! queried by kNN, radius and per-category counts. What `pointpipe serve`
//! serves and `pointpipe query` answers; no HTTP here.
//!
//! # Kinds
//! - **Geographic** (WGS84 lon/lat, degrees): a CSV with a header row
//!   (latitude/longitude columns found by the names `lat`/`latitude` and
//!   `lon`/`lng`/`long`/`longitude`, case-insensitive, or named in the
//!   [`LayerSpec`]), a GeoJSON FeatureCollection of Points, or a LAS/LAZ file
//!   whose CRS is geographic WGS84 (EPSG:4326; x = lon, y = lat, z kept as the
//!   attribute `z`). Distances are geodesic on the WGS84 ellipsoid, metres
//!   ([`crate::geo`]).
//! - **Cartesian**: any other point cloud `pointpipe` reads (PLY, PCD,
//!   KITTI `.bin`, projected LAS/LAZ). Distances are Euclidean in the cloud's
//!   unit.
//!
//! Every other column, property or point attribute is kept and returned with
//! the point. A point's `id` is its 0-based index in the file (the data row of
//! a CSV, header excluded; the feature of a GeoJSON file); geographic layers
//! changed incrementally keep stable ids (see [`ChangeLog`]: appended points
//! get new ids, deleted ones leave gaps). Attributes named
//! `id` or `distance_m` (or `distance` in cartesian layers) are returned as
//! `source_id` / `source_distance_m`, so they never hide the answer's own.
//!
//! The category column (category filters and the default of `stats`) is the
//! one named `category=COL` in the spec, else the first column called
//! `category`, `cc` or `country_code` (case-insensitive), else none.

mod answer;
mod attributes;
mod changes;
mod csv_layer;
mod geojson_layer;
mod spec;

use std::path::{Path, PathBuf};
use std::time::Instant;

use nalgebra::Point3;

pub use answer::{Answer, AnswerDocument, Hit, StatsAnswer};
pub use attributes::{Attributes, Column};
pub use changes::{
    Batch, BodyFormat, ChangeLog, NewPoints, ParsedPoints, Tombstones, parse_points,
};
pub use spec::{LayerSpec, QueryLimits};

use crate::error::{Error, Result};
use crate::geo::{GeoIndex, GeoNeighbor};
use crate::io::Format;
use crate::kdtree::{KdTree, QueryStats};

/// What the coordinates of a layer mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// WGS84 longitude/latitude in degrees; geodesic distances in metres.
    Geographic,
    /// x, y, z in a projected CRS or a sensor frame; Euclidean distances in
    /// the same unit.
    Cartesian,
}

/// The spatial index of a layer.
#[derive(Debug)]
pub enum LayerIndex {
    /// Geodesic kNN/radius over lon/lat.
    Geographic(Box<GeoIndex>),
    /// Euclidean kNN/radius over x, y, z.
    Cartesian {
        /// The positions, in file order.
        points: Vec<Point3<f64>>,
        /// The k-d tree over `points`.
        tree: Box<KdTree>,
    },
}

/// A query position: lon/lat for geographic layers, x/y/z for cartesian ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Position {
    /// Longitude and latitude, degrees (RFC 7946 order).
    LonLat(f64, f64),
    /// A point in the layer's frame and unit.
    Xyz(f64, f64, f64),
}

/// A layer in memory: index, attributes and what `GET /v1/layers` reports.
#[derive(Debug)]
pub struct Layer {
    /// The layer's name (URL segment).
    pub name: String,
    /// The file it was loaded from.
    pub source: PathBuf,
    /// Geographic or cartesian.
    pub kind: LayerKind,
    /// CRS: `"EPSG:4326"` for geographic layers, the LAS CRS summary or
    /// `None` for cartesian ones.
    pub crs: Option<String>,
    /// The spatial index.
    pub index: LayerIndex,
    /// Per-point attributes, returned with each answer.
    attributes: Attributes,
    /// The attributes rendered row-major for answers (geographic layers).
    rows: Option<attributes::Rows>,
    /// Index into `attributes` of the category column, if any.
    pub category: Option<usize>,
    /// Bounding box: `[min lon, min lat, max lon, max lat]` (geographic) or
    /// `[min x, min y, min z, max x, max y, max z]` (cartesian); empty for an
    /// empty layer.
    pub bbox: Vec<f64>,
    /// Version counter, 1 for the first load; bumped by every reload.
    pub generation: u64,
    /// Wall time of reading the file, milliseconds.
    pub load_ms: f64,
    /// Wall time of building the index, milliseconds.
    pub build_ms: f64,
    /// Stable id per position, ascending; `None` when id = position.
    ids: Option<Vec<u64>>,
    /// The id numbering this layer belongs to (see [`ChangeLog`]).
    epoch: u64,
    /// The first id never given in this numbering.
    next_id: u64,
    /// Points deleted since this snapshot was built.
    tombstones: Tombstones,
}

impl Layer {
    /// Loads the file of `spec` and builds its index (see the
    /// [module docs](self) for what each format gives).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Format`] naming
    /// the file and line/record for malformed content,
    /// [`Error::UnsupportedFormat`] for an unknown extension,
    /// [`Error::InvalidParameter`] for a category column that does not exist.
    pub fn load(spec: &LayerSpec, generation: u64) -> Result<Layer> {
        let started = Instant::now();
        let path = spec.path.as_path();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let (content, crs) = match extension.as_str() {
            "csv" | "txt" => {
                let c = csv_layer::read(path, spec)?;
                (Content::Geographic(c.lon_lat, c.attributes), None)
            }
            "geojson" | "json" => {
                let c = geojson_layer::read(path)?;
                (Content::Geographic(c.lon_lat, c.attributes), None)
            }
            _ => {
                Format::from_path(path)?;
                let (cloud, report) = crate::io::read_with_report(path)?;
                cloud_content(path, cloud, report.crs)?
            }
        };
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        Layer::build(spec, content, crs, generation, load_ms)
    }

    /// Builds a geographic layer from points already in memory (`[lon, lat]`
    /// degrees) and their attributes; `spec.path` is only reported.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an out-of-range coordinate, a missing
    /// category column, or attribute columns of another length.
    pub fn from_lon_lat(
        spec: &LayerSpec,
        lon_lat: Vec<[f64; 2]>,
        attributes: Attributes,
        generation: u64,
    ) -> Result<Layer> {
        Layer::build(
            spec,
            Content::Geographic(lon_lat, attributes),
            None,
            generation,
            0.0,
        )
    }

    fn build(
        spec: &LayerSpec,
        content: Content,
        crs: Option<String>,
        generation: u64,
        load_ms: f64,
    ) -> Result<Layer> {
        let started = Instant::now();
        let (kind, index, mut attributes, bbox, crs) = match content {
            Content::Geographic(lon_lat, attributes) => {
                let bbox = bbox_of(lon_lat.iter().map(|p| p.as_slice()), 2);
                crate::pace::checkpoint();
                let index = GeoIndex::build(lon_lat)?;
                (
                    LayerKind::Geographic,
                    LayerIndex::Geographic(Box::new(index)),
                    attributes,
                    bbox,
                    Some("EPSG:4326".to_string()),
                )
            }
            Content::Cartesian(points, attributes) => {
                let bbox = bbox_of(points.iter().map(|p| p.coords.as_slice()), 3);
                let tree = Box::new(KdTree::build(&points)?);
                (
                    LayerKind::Cartesian,
                    LayerIndex::Cartesian { points, tree },
                    attributes,
                    bbox,
                    crs,
                )
            }
        };
        let n = match &index {
            LayerIndex::Geographic(g) => g.len(),
            LayerIndex::Cartesian { points, .. } => points.len(),
        };
        if let Some(c) = attributes.columns.iter().position(|c| c.len() != n) {
            return Err(Error::invalid(
                "attributes",
                &attributes.names[c],
                format!(
                    "column has {} values for {n} points",
                    attributes.columns[c].len()
                ),
            ));
        }
        let reserved: &[&str] = match kind {
            LayerKind::Geographic => &changes::RESERVED_GEOGRAPHIC,
            LayerKind::Cartesian => &["index", "x", "y", "z", "distance"],
        };
        for name in &mut attributes.names {
            if reserved.contains(&name.as_str()) {
                *name = format!("source_{name}");
            }
        }
        crate::pace::checkpoint();
        let rows = match kind {
            LayerKind::Geographic => attributes::Rows::render(&attributes, n),
            LayerKind::Cartesian => None,
        };
        let category = match &spec.category_column {
            Some(col) => Some(attributes.find(col).ok_or_else(|| {
                Error::invalid(
                    "category",
                    col,
                    format!(
                        "no such column in {} (columns: {})",
                        spec.path.display(),
                        attributes.names.join(", ")
                    ),
                )
            })?),
            None => attributes.names.iter().position(|n| {
                ["category", "cc", "country_code"]
                    .iter()
                    .any(|c| n.eq_ignore_ascii_case(c))
            }),
        };
        Ok(Layer {
            name: spec.name.clone(),
            source: spec.path.clone(),
            kind,
            crs,
            index,
            attributes,
            rows,
            category,
            bbox,
            generation,
            load_ms,
            build_ms: started.elapsed().as_secs_f64() * 1e3,
            ids: None,
            epoch: 0,
            next_id: n as u64,
            tombstones: Tombstones::new(n),
        })
    }

    /// Per-point attributes, returned with each answer.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The stable id of the point at position `pos` (its index in the file
    /// unless the layer changed incrementally).
    ///
    /// # Panics
    /// When `pos >= self.len()` and ids are stored (a programming error).
    pub fn point_id(&self, pos: usize) -> u64 {
        self.ids.as_ref().map_or(pos as u64, |ids| ids[pos])
    }

    /// The position of the point with stable id `id`, if the layer has it
    /// (deleted or not). O(log n).
    pub fn position_of(&self, id: u64) -> Option<usize> {
        match &self.ids {
            Some(ids) => ids.binary_search(&id).ok(),
            None => (id < self.len() as u64).then_some(id as usize),
        }
    }

    /// The points deleted since this snapshot was built (hidden from every
    /// answer).
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        match &self.index {
            LayerIndex::Geographic(g) => g.len(),
            LayerIndex::Cartesian { points, .. } => points.len(),
        }
    }

    /// True when the layer holds no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The k-d tree of the layer (for its height).
    pub fn tree(&self) -> &KdTree {
        match &self.index {
            LayerIndex::Geographic(g) => g.tree(),
            LayerIndex::Cartesian { tree, .. } => tree,
        }
    }

    /// Heap bytes of the index (allocated capacity of the coordinates and
    /// the tree), without the attributes.
    pub fn index_bytes(&self) -> usize {
        match &self.index {
            LayerIndex::Geographic(g) => g.heap_bytes(),
            LayerIndex::Cartesian { points, tree } => {
                points.capacity() * size_of::<Point3<f64>>() + tree.heap_bytes()
            }
        }
    }

    /// Approximate heap bytes of the stored attributes: the columns and
    /// their row-major rendering for answers.
    pub fn attribute_bytes(&self) -> usize {
        self.attributes.heap_bytes() + self.rows.as_ref().map_or(0, |r| r.heap_bytes())
    }

    /// The category column's name, if the layer has one.
    pub fn category_name(&self) -> Option<&str> {
        self.category.map(|c| self.attributes.names[c].as_str())
    }

    /// The `k` nearest points to `at`, ascending by `(distance, id)`.
    ///
    /// Parameters: `max_radius` (metres for geographic layers, the layer's
    /// unit otherwise) drops farther answers; `category` keeps only points
    /// whose category value equals it.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `at` is not of the layer's kind, or a
    /// category is given and the layer has no category column.
    pub fn knn(
        &self,
        at: Position,
        k: usize,
        max_radius: Option<f64>,
        category: Option<&str>,
    ) -> Result<Answer> {
        let filter = self.category_filter(category)?;
        let deleted = !self.tombstones.is_empty();
        let alive_and_in_category = |i: usize| {
            !(deleted && self.tombstones.contains(i)) && filter.as_ref().is_none_or(|f| f(i))
        };
        let filter_ref = (deleted || filter.is_some())
            .then_some(&alive_and_in_category as &dyn Fn(usize) -> bool);
        match (&self.index, at) {
            (LayerIndex::Geographic(g), Position::LonLat(lon, lat)) => {
                let mut out = Vec::with_capacity(k);
                let stats = g.knn(lon, lat, k, max_radius, filter_ref, &mut out);
                Ok(Answer::from_geo(out, stats.nodes_visited, false))
            }
            (LayerIndex::Cartesian { tree, .. }, Position::Xyz(x, y, z)) => {
                let q = Point3::new(x, y, z);
                let mut stats = QueryStats::ZERO;
                let keep = |i: usize| filter_ref.is_none_or(|f| f(i));
                let found = tree.gather_where(&q, k, 0, &keep, &mut stats).neighbors;
                let hits = found
                    .iter()
                    .filter(|n| keep(n.index))
                    .map(|n| Hit {
                        id: n.index,
                        distance: n.distance_sq.sqrt(),
                    })
                    .filter(|h| max_radius.is_none_or(|r| h.distance <= r))
                    .take(k)
                    .collect();
                Ok(Answer {
                    hits,
                    nodes_visited: stats.nodes_visited,
                    truncated: false,
                })
            }
            _ => Err(self.wrong_position()),
        }
    }

    /// Every point within `radius` of `at` (inclusive), ascending by
    /// `(distance, id)`, at most `limit` of them (`truncated` says when the
    /// limit cut the answer).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `at` is not of the layer's kind.
    pub fn radius(&self, at: Position, radius: f64, limit: usize) -> Result<Answer> {
        let mut answer = self.within(at, radius)?;
        answer.truncated = answer.hits.len() > limit;
        answer.hits.truncate(limit);
        Ok(answer)
    }

    /// The number of points within `radius` of `at` and their counts per
    /// value of the attribute column `by` (the category column when `None`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `at` is not of the layer's kind or
    /// the column does not exist.
    pub fn stats(&self, at: Position, radius: f64, by: Option<&str>) -> Result<StatsAnswer> {
        let column = match by {
            Some(name) => self.attributes.find(name).ok_or_else(|| {
                Error::invalid(
                    "by",
                    name,
                    format!(
                        "no such column (columns: {})",
                        self.attributes.names.join(", ")
                    ),
                )
            })?,
            None => self.category.ok_or_else(|| {
                Error::invalid(
                    "by",
                    "",
                    "the layer has no category column: name one with by=COL",
                )
            })?,
        };
        let within = self.within(at, radius)?;
        let col = &self.attributes.columns[column];
        let mut counts = std::collections::BTreeMap::new();
        for hit in &within.hits {
            *counts.entry(col.text(hit.id).into_owned()).or_insert(0u64) += 1;
        }
        Ok(StatsAnswer {
            count: within.hits.len() as u64,
            by: self.attributes.names[column].clone(),
            counts,
            nodes_visited: within.nodes_visited,
        })
    }

    fn within(&self, at: Position, radius: f64) -> Result<Answer> {
        let mut answer = self.within_all(at, radius)?;
        if !self.tombstones.is_empty() {
            answer.hits.retain(|h| !self.tombstones.contains(h.id));
        }
        Ok(answer)
    }

    fn within_all(&self, at: Position, radius: f64) -> Result<Answer> {
        match (&self.index, at) {
            (LayerIndex::Geographic(g), Position::LonLat(lon, lat)) => {
                let mut out = Vec::new();
                let stats = g.radius(lon, lat, radius, &mut out);
                Ok(Answer::from_geo(out, stats.nodes_visited, false))
            }
            (LayerIndex::Cartesian { tree, .. }, Position::Xyz(x, y, z)) => {
                let mut stats = QueryStats::ZERO;
                let mut found = Vec::new();
                tree.radius_with_stats(&Point3::new(x, y, z), radius, &mut found, &mut stats);
                found.sort_unstable_by(|a, b| {
                    a.distance_sq
                        .total_cmp(&b.distance_sq)
                        .then(a.index.cmp(&b.index))
                });
                Ok(Answer {
                    hits: found
                        .iter()
                        .map(|n| Hit {
                            id: n.index,
                            distance: n.distance_sq.sqrt(),
                        })
                        .collect(),
                    nodes_visited: stats.nodes_visited,
                    truncated: false,
                })
            }
            _ => Err(self.wrong_position()),
        }
    }

    fn category_filter(&self, category: Option<&str>) -> Result<Option<impl Fn(usize) -> bool>> {
        let Some(value) = category else {
            return Ok(None);
        };
        let column = self.category.ok_or_else(|| {
            Error::invalid(
                "category",
                value,
                format!("layer '{}' has no category column", self.name),
            )
        })?;
        let column = &self.attributes.columns[column];
        let value = value.to_string();
        Ok(Some(move |i: usize| column.text(i) == value.as_str()))
    }

    fn wrong_position(&self) -> Error {
        match self.kind {
            LayerKind::Geographic => Error::invalid(
                "position",
                &self.name,
                "a geographic layer is queried with lon and lat",
            ),
            LayerKind::Cartesian => Error::invalid(
                "position",
                &self.name,
                "a cartesian layer is queried with x, y and z",
            ),
        }
    }
}

/// A layer's content before indexing.
enum Content {
    Geographic(Vec<[f64; 2]>, Attributes),
    Cartesian(Vec<Point3<f64>>, Attributes),
}

/// Geographic content for a LAS/LAZ cloud in geographic WGS84, cartesian
/// content for everything else.
fn cloud_content(
    path: &Path,
    cloud: crate::PointCloud,
    crs: Option<String>,
) -> Result<(Content, Option<String>)> {
    let geographic = cloud
        .extras
        .las_header
        .as_ref()
        .is_some_and(is_wgs84_geographic);
    let mut attributes = Attributes::default();
    let mut push = |name: &str, values: Vec<f64>| {
        attributes.names.push(name.to_string());
        attributes.columns.push(Column::Number(values));
    };
    if geographic {
        push("z", cloud.points.iter().map(|p| p.z).collect());
    }
    if let Some(v) = &cloud.intensity {
        push("intensity", v.iter().map(|&x| f64::from(x)).collect());
    }
    if let Some(v) = &cloud.time {
        push("time", v.clone());
    }
    if let Some(a) = &cloud.extras.las_attributes {
        push(
            "classification",
            a.classification.iter().map(|&x| f64::from(x)).collect(),
        );
        push(
            "return_number",
            a.return_number.iter().map(|&x| f64::from(x)).collect(),
        );
        push(
            "number_of_returns",
            a.number_of_returns.iter().map(|&x| f64::from(x)).collect(),
        );
        push(
            "scan_angle",
            a.scan_angle.iter().map(|&x| f64::from(x)).collect(),
        );
        push(
            "user_data",
            a.user_data.iter().map(|&x| f64::from(x)).collect(),
        );
        push(
            "point_source_id",
            a.point_source_id.iter().map(|&x| f64::from(x)).collect(),
        );
        if let Some(c) = &a.color {
            for (ch, name) in ["red", "green", "blue"].iter().enumerate() {
                push(name, c.iter().map(|rgb| f64::from(rgb[ch])).collect());
            }
        }
    }
    if let Some(normals) = &cloud.normals {
        for (axis, name) in ["normal_x", "normal_y", "normal_z"].iter().enumerate() {
            push(name, normals.iter().map(|n| n[axis]).collect());
        }
    }
    if let Some(v) = &cloud.curvature {
        push("curvature", v.clone());
    }
    if geographic {
        let lon_lat: Vec<[f64; 2]> = cloud.points.iter().map(|p| [p.x, p.y]).collect();
        if let Some(i) = lon_lat
            .iter()
            .position(|&[lon, lat]| crate::geo::check_lon_lat(lon, lat).is_err())
        {
            return Err(Error::format(
                path,
                format!(
                    "point {i}: [lon, lat] = {:?} is outside [-180, 180] × [-90, 90] \
                     although the CRS is geographic WGS84",
                    lon_lat[i]
                ),
            ));
        }
        Ok((Content::Geographic(lon_lat, attributes), None))
    } else {
        Ok((Content::Cartesian(cloud.points, attributes), crs))
    }
}

/// True when a LAS header's CRS is geographic WGS84 (EPSG:4326): a WKT CRS
/// that is a `GEOGCS`/`GEOGCRS` on WGS 84 and not projected, or GeoTIFF keys
/// with geodetic EPSG:4326 and no projected CRS.
fn is_wgs84_geographic(header: &las::Header) -> bool {
    if let Some(wkt) = header.get_wkt_crs_bytes() {
        let text = String::from_utf8_lossy(wkt).to_ascii_uppercase();
        let geographic =
            text.trim_start().starts_with("GEOGCS") || text.trim_start().starts_with("GEOGCRS");
        return geographic
            && (text.contains("WGS 84") || text.contains("WGS84") || text.contains("4326"));
    }
    match header.get_geotiff_crs() {
        Ok(Some(geotiff)) => {
            geotiff.get_projected_crs_geo_key_value().is_none()
                && geotiff.get_geodetic_crs_geo_key_value() == Some(4326)
        }
        _ => false,
    }
}

/// `[min..., max...]` over points of `dims` coordinates; empty when there
/// are none.
fn bbox_of<'a>(points: impl Iterator<Item = &'a [f64]>, dims: usize) -> Vec<f64> {
    let mut lo = vec![f64::INFINITY; dims];
    let mut hi = vec![f64::NEG_INFINITY; dims];
    let mut any = false;
    for (i, p) in points.enumerate() {
        if i % 8192 == 8191 {
            crate::pace::checkpoint();
        }
        any = true;
        for d in 0..dims {
            lo[d] = lo[d].min(p[d]);
            hi[d] = hi[d].max(p[d]);
        }
    }
    if !any {
        return Vec::new();
    }
    lo.extend(hi);
    lo
}

impl Answer {
    fn from_geo(found: Vec<GeoNeighbor>, nodes_visited: u64, truncated: bool) -> Answer {
        Answer {
            hits: found
                .into_iter()
                .map(|n| Hit {
                    id: n.index,
                    distance: n.distance_m,
                })
                .collect(),
            nodes_visited,
            truncated,
        }
    }
}
