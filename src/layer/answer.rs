//! Answers of layer queries and their JSON / GeoJSON documents.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Value, json};

use super::attributes::{Attributes, Column};
use super::{Layer, LayerIndex};

/// One point of an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The point's position in the layer: its 0-based index in the file for
    /// a layer loaded from one; documents report its stable id,
    /// [`Layer::point_id`].
    pub id: usize,
    /// Distance from the query: geodesic metres on WGS84 (geographic
    /// layers) or Euclidean in the layer's unit (cartesian layers).
    pub distance: f64,
}

/// The answer of a kNN or radius query, ascending by `(distance, id)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The points found.
    pub hits: Vec<Hit>,
    /// k-d tree nodes entered (pruning health).
    pub nodes_visited: u64,
    /// True when a radius query's `limit` cut the answer.
    pub truncated: bool,
}

/// Counts of the points within a radius, per value of a column.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsAnswer {
    /// Points within the radius.
    pub count: u64,
    /// The column counted by.
    pub by: String,
    /// Count per value (the empty string for missing values), sorted by value.
    pub counts: BTreeMap<String, u64>,
    /// k-d tree nodes entered.
    pub nodes_visited: u64,
}

/// A JSON document answering one query, serialised straight from the layer
/// (no intermediate JSON tree): a GeoJSON FeatureCollection for geographic
/// layers (RFC 7946; it parses as a `geojson::FeatureCollection`), a plain
/// object for cartesian layers and `stats`. Serialise it with `serde_json`.
#[derive(Debug, Clone)]
pub enum AnswerDocument<'a> {
    /// kNN / radius answer on a geographic layer (`application/geo+json`).
    Geo(Document<'a>),
    /// kNN / radius answer on a cartesian layer (`application/json`).
    Cartesian(Document<'a>),
    /// `stats` answer, or any other plain JSON (`application/json`).
    Json(Value),
}

/// The parts of a kNN / radius answer document.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    layer: &'a Layer,
    answer: &'a Answer,
    took_us: u64,
    with_truncated: bool,
}

impl AnswerDocument<'_> {
    /// The media type of the document.
    pub fn content_type(&self) -> &'static str {
        match self {
            AnswerDocument::Geo(_) => "application/geo+json",
            _ => "application/json",
        }
    }
}

impl Serialize for AnswerDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AnswerDocument::Geo(d) => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("type", "FeatureCollection")?;
                map.serialize_entry("features", &GeoFeatures(d))?;
                d.serialize_meta(&mut map)?;
                map.end()
            }
            AnswerDocument::Cartesian(d) => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("neighbors", &CartesianHits(d))?;
                d.serialize_meta(&mut map)?;
                map.end()
            }
            AnswerDocument::Json(v) => v.serialize(serializer),
        }
    }
}

impl Document<'_> {
    fn serialize_meta<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("generation", &self.layer.generation)?;
        map.serialize_entry("nodes_visited", &self.answer.nodes_visited)?;
        map.serialize_entry("took_us", &self.took_us)?;
        if self.with_truncated {
            map.serialize_entry("truncated", &self.answer.truncated)?;
        }
        Ok(())
    }
}

/// The features of a geographic answer.
struct GeoFeatures<'a>(&'a Document<'a>);

impl Serialize for GeoFeatures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let LayerIndex::Geographic(index) = &d.layer.index else {
            return serializer.collect_seq(std::iter::empty::<()>());
        };
        serializer.collect_seq(d.answer.hits.iter().map(|hit| GeoFeature {
            layer: d.layer,
            lon_lat: index.lon_lat(hit.id),
            hit: *hit,
        }))
    }
}

/// One GeoJSON Feature: id, Point geometry, properties.
struct GeoFeature<'a> {
    layer: &'a Layer,
    lon_lat: [f64; 2],
    hit: Hit,
}

impl Serialize for GeoFeature<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("type", "Feature")?;
        let id = self.layer.point_id(self.hit.id);
        map.serialize_entry("id", &id)?;
        map.serialize_entry("geometry", &PointGeometry(self.lon_lat))?;
        map.serialize_entry(
            "properties",
            &Properties {
                attributes: &self.layer.attributes,
                hit: self.hit,
                id,
                distance_name: "distance_m",
                id_name: "id",
            },
        )?;
        map.end()
    }
}

/// `{"type": "Point", "coordinates": [lon, lat]}`.
struct PointGeometry([f64; 2]);

impl Serialize for PointGeometry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", "Point")?;
        map.serialize_entry("coordinates", &self.0)?;
        map.end()
    }
}

/// The stored attributes of a point, then its id and distance.
struct Properties<'a> {
    attributes: &'a Attributes,
    hit: Hit,
    /// The id reported (the stable id of the hit's position).
    id: u64,
    distance_name: &'static str,
    id_name: &'static str,
}

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.serialize_into(&mut map)?;
        map.end()
    }
}

impl Properties<'_> {
    fn serialize_into<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        for (name, column) in self.attributes.names.iter().zip(&self.attributes.columns) {
            map.serialize_entry(name, &CellRef(column, self.hit.id))?;
        }
        map.serialize_entry(self.id_name, &self.id)?;
        map.serialize_entry(self.distance_name, &self.hit.distance)
    }
}

/// One attribute value, serialised as [`Column::json`] gives it.
struct CellRef<'a>(&'a Column, usize);

impl Serialize for CellRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (column, i) = (self.0, self.1);
        match column {
            Column::Text { .. } => serializer.serialize_str(&column.text(i)),
            Column::Number(v) => super::attributes::number(v[i]).serialize(serializer),
            Column::Json(v) => v[i].serialize(serializer),
        }
    }
}

/// The neighbours of a cartesian answer.
struct CartesianHits<'a>(&'a Document<'a>);

impl Serialize for CartesianHits<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let LayerIndex::Cartesian { points, .. } = &d.layer.index else {
            return serializer.collect_seq(std::iter::empty::<()>());
        };
        serializer.collect_seq(d.answer.hits.iter().map(|&hit| CartesianHit {
            id: d.layer.point_id(hit.id),
            attributes: &d.layer.attributes,
            xyz: [points[hit.id].x, points[hit.id].y, points[hit.id].z],
            hit,
        }))
    }
}

/// `{"index", "x", "y", "z", "distance", attributes...}`.
struct CartesianHit<'a> {
    id: u64,
    attributes: &'a Attributes,
    xyz: [f64; 3],
    hit: Hit,
}

impl Serialize for CartesianHit<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("x", &self.xyz[0])?;
        map.serialize_entry("y", &self.xyz[1])?;
        map.serialize_entry("z", &self.xyz[2])?;
        Properties {
            attributes: self.attributes,
            hit: self.hit,
            id: self.id,
            distance_name: "distance",
            id_name: "index",
        }
        .serialize_into(&mut map)?;
        map.end()
    }
}

impl Layer {
    /// The document of `answer`, with the top-level members `generation`,
    /// `nodes_visited`, `took_us` (and `truncated` when `with_truncated`).
    ///
    /// Geographic: a FeatureCollection whose features are in answer order,
    /// each with `id` = the point's stable id ([`Layer::point_id`]), geometry `Point [lon, lat]` (RFC 7946
    /// order) and properties = the stored attributes + `id` + `distance_m`
    /// (metres, geodesic on WGS84). Cartesian: `{"neighbors": [{"x", "y",
    /// "z", attributes..., "index", "distance"}], ...}`.
    pub fn answer_document<'a>(
        &'a self,
        answer: &'a Answer,
        took_us: u64,
        with_truncated: bool,
    ) -> AnswerDocument<'a> {
        let document = Document {
            layer: self,
            answer,
            took_us,
            with_truncated,
        };
        match self.index {
            LayerIndex::Geographic(_) => AnswerDocument::Geo(document),
            LayerIndex::Cartesian { .. } => AnswerDocument::Cartesian(document),
        }
    }

    /// Writes the document of `answer` ([`Layer::answer_document`]) to
    /// `out`, byte for byte what `serde_json` makes of it.
    ///
    /// # Errors
    /// When `serde_json` cannot serialise a stored JSON attribute.
    pub fn write_answer(
        &self,
        answer: &Answer,
        took_us: u64,
        with_truncated: bool,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let (LayerIndex::Geographic(index), Some(rows)) = (&self.index, &self.rows) else {
            let doc = self.answer_document(answer, took_us, with_truncated);
            return serde_json::to_writer(out, &doc);
        };
        // Why: the attributes were rendered at build time, so a feature is
        // mostly a copy of its row.
        let rows_len: usize = answer.hits.iter().map(|h| rows.get(h.id).len()).sum();
        out.reserve(128 + answer.hits.len() * 192 + rows_len);
        out.extend_from_slice(br#"{"type":"FeatureCollection","features":["#);
        for (j, hit) in answer.hits.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let id = self.point_id(hit.id);
            let [lon, lat] = index.lon_lat(hit.id);
            out.extend_from_slice(br#"{"type":"Feature","id":"#);
            serde_json::to_writer(&mut *out, &id)?;
            out.extend_from_slice(br#","geometry":{"type":"Point","coordinates":["#);
            serde_json::to_writer(&mut *out, &lon)?;
            out.push(b',');
            serde_json::to_writer(&mut *out, &lat)?;
            out.extend_from_slice(br#"]},"properties":{"#);
            let row = rows.get(hit.id);
            out.extend_from_slice(row);
            if !row.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""id":"#);
            serde_json::to_writer(&mut *out, &id)?;
            out.extend_from_slice(br#","distance_m":"#);
            serde_json::to_writer(&mut *out, &hit.distance)?;
            out.extend_from_slice(b"}}");
        }
        out.extend_from_slice(br#"],"generation":"#);
        serde_json::to_writer(&mut *out, &self.generation)?;
        out.extend_from_slice(br#","nodes_visited":"#);
        serde_json::to_writer(&mut *out, &answer.nodes_visited)?;
        out.extend_from_slice(br#","took_us":"#);
        serde_json::to_writer(&mut *out, &took_us)?;
        if with_truncated {
            out.extend_from_slice(br#","truncated":"#);
            serde_json::to_writer(&mut *out, &answer.truncated)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// The document of a `stats` answer: `{"count", "by", "counts",
    /// "generation", "nodes_visited", "took_us"}`.
    pub fn stats_document(&self, stats: &StatsAnswer, took_us: u64) -> AnswerDocument<'static> {
        AnswerDocument::Json(json!({
            "count": stats.count,
            "by": stats.by,
            "counts": stats.counts,
            "generation": self.generation,
            "nodes_visited": stats.nodes_visited,
            "took_us": took_us,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layer::{LayerSpec, Position};

    fn layer(attributes: Attributes, n: usize) -> Layer {
        let spec: LayerSpec = "t=t.csv".parse().unwrap();
        let lon_lat = (0..n)
            .map(|i| [-179.5 + i as f64 * 0.37, -60.0 + i as f64 * 0.11])
            .collect();
        Layer::from_lon_lat(&spec, lon_lat, attributes, 7).unwrap()
    }

    fn same_bytes(layer: &Layer) {
        for (k, trunc) in [(1, false), (5, true), (40, false)] {
            let answer = layer
                .knn(Position::LonLat(-170.0, -58.0), k, None, None)
                .unwrap();
            let mut fast = Vec::new();
            layer.write_answer(&answer, 42, trunc, &mut fast).unwrap();
            let doc = serde_json::to_vec(&layer.answer_document(&answer, 42, trunc)).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(doc).unwrap()
            );
        }
    }

    #[test]
    fn written_answers_equal_the_serialised_documents() {
        let n = 40;
        let text = |i: usize| match i % 4 {
            0 => "plain".to_string(),
            1 => "quote \" backslash \\ tab \t ctrl \u{1}".to_string(),
            2 => "ünïcødé ✓ 東京".to_string(),
            _ => String::new(),
        };
        let mut t = super::super::attributes::TextBuilder::default();
        for i in 0..n {
            t.push(&text(i));
        }
        let numbers = (0..n)
            .map(|i| match i % 6 {
                0 => f64::NAN,
                1 => -0.0,
                2 => 1e300,
                3 => 2.5,
                4 => 3.0,
                _ => -1.25e-7,
            })
            .collect();
        let values = (0..n)
            .map(|i| match i % 3 {
                0 => json!({"a": [1, 2.5, null], "b\"": "x"}),
                1 => Value::Null,
                _ => json!(i),
            })
            .collect();
        let attributes = Attributes {
            names: vec!["na\"me".into(), "id".into(), "value".into(), "props".into()],
            columns: vec![
                t.into_raw(),
                Column::Number((0..n).map(|i| i as f64).collect()),
                Column::Number(numbers),
                Column::Json(values),
            ],
        };
        same_bytes(&layer(attributes, n));
        same_bytes(&layer(Attributes::default(), n));
    }
}
