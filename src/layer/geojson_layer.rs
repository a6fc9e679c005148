//! Geographic layers from GeoJSON FeatureCollections of Points (`geojson` crate).

use std::path::Path;

use geojson::{FeatureCollection, GeometryValue};
use serde_json::Value;

use super::attributes::{Attributes, Column};
use crate::error::{Error, Result};

/// What a GeoJSON layer holds: `[lon, lat]` per feature and the features'
/// properties as attributes (the union of their names, in first-seen order;
/// `null` where a feature lacks one). A feature's own `id` is kept as the
/// property `feature_id` when it has one.
pub(crate) struct GeoJsonContent {
    pub(crate) lon_lat: Vec<[f64; 2]>,
    pub(crate) attributes: Attributes,
}

/// Reads a GeoJSON layer file.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming the
/// file (and the feature) for text that is not a FeatureCollection, a
/// feature without a Point geometry, or a coordinate out of range.
pub(super) fn read(path: &Path) -> Result<GeoJsonContent> {
    let bytes = crate::pace::read_file(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(|reason| Error::format(path, reason))
}

/// Parses a GeoJSON FeatureCollection of Points; the error is a message.
pub(crate) fn parse(bytes: &[u8]) -> std::result::Result<GeoJsonContent, String> {
    let collection: FeatureCollection = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a GeoJSON FeatureCollection: {e}"))?;
    from_features(collection.features)
}

/// `[lon, lat]` and properties of Point features; the error is a message
/// naming the feature.
pub(crate) fn from_features(
    features: Vec<geojson::Feature>,
) -> std::result::Result<GeoJsonContent, String> {
    let mut names: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    let mut columns: Vec<Vec<Value>> = Vec::new();
    let mut lon_lat = Vec::with_capacity(features.len());
    for (i, feature) in features.into_iter().enumerate() {
        if i % 1024 == 1023 {
            crate::pace::checkpoint();
        }
        let Some(geometry) = feature.geometry else {
            return Err(format!("feature {i}: no geometry (a Point is required)"));
        };
        let GeometryValue::Point { coordinates } = &geometry.value else {
            return Err(format!(
                "feature {i}: geometry is a {}, not a Point",
                geometry.value.type_name()
            ));
        };
        let (lon, lat) = match coordinates.as_slice() {
            [lon, lat, ..] => (*lon, *lat),
            _ => return Err(format!("feature {i}: a Point needs [lon, lat]")),
        };
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            // NaN fails both ranges too.
            return Err(format!(
                "feature {i}: [lon, lat] = [{lon}, {lat}] is outside [-180, 180] × [-90, 90]"
            ));
        }
        lon_lat.push([lon, lat]);
        let mut props = feature.properties.unwrap_or_default();
        if let Some(id) = feature.id {
            let id = match id {
                geojson::feature::Id::String(s) => Value::String(s),
                geojson::feature::Id::Number(x) => Value::Number(x),
            };
            props.insert("feature_id".to_string(), id);
        }
        for (name, value) in props {
            let c = *index.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                columns.push(vec![Value::Null; i]);
                columns.len() - 1
            });
            columns[c].push(value);
        }
        for column in &mut columns {
            if column.len() == i {
                column.push(Value::Null);
            }
        }
    }
    Ok(GeoJsonContent {
        lon_lat,
        attributes: Attributes {
            names,
            columns: columns.into_iter().map(Column::Json).collect(),
        },
    })
}
