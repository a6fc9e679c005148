//! Validation of query strings and JSON bodies into typed queries. Every rule
//! lives here; a failure is a 400 problem naming the field and the rule.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::problem::Problem;
use crate::layer::{LayerKind, Position, QueryLimits};

/// Default `k` when a kNN query gives none (the PostGIS API's default).
pub(crate) const DEFAULT_K: usize = 10;
/// Default `limit` of a radius query.
pub(crate) const DEFAULT_LIMIT: usize = 1000;

/// A validated kNN query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KnnParams {
    pub(crate) at: Position,
    pub(crate) k: usize,
    pub(crate) max_radius: Option<f64>,
    pub(crate) category: Option<String>,
}

/// A validated radius query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RadiusParams {
    pub(crate) at: Position,
    pub(crate) radius: f64,
    pub(crate) limit: usize,
}

/// A validated stats query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatsParams {
    pub(crate) at: Position,
    pub(crate) radius: f64,
    pub(crate) by: Option<String>,
}

/// Named values from a query string or a JSON object, read once each.
pub(crate) trait Fields {
    /// The full name of `name` for messages (`k`, or `queries[3].k`).
    fn label(&self, name: &str) -> String;
    /// The names present, for the unknown-field check.
    fn names(&self) -> Vec<&str>;
    /// A number, if present.
    fn number(&self, name: &str) -> Result<Option<f64>, Problem>;
    /// A non-negative integer, if present.
    fn integer(&self, name: &str) -> Result<Option<u64>, Problem>;
    /// A string, if present.
    fn string(&self, name: &str) -> Result<Option<String>, Problem>;
}

/// The pairs of a query string, duplicates refused.
pub(crate) struct QueryFields<'a> {
    values: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> QueryFields<'a> {
    /// Parses `raw` (`a=1&b=2`, percent-decoded).
    ///
    /// # Errors
    /// A 400 naming a parameter given twice.
    pub(crate) fn parse(raw: Option<&'a str>) -> Result<QueryFields<'a>, Problem> {
        let values: Vec<(Cow<'a, str>, Cow<'a, str>)> =
            form_urlencoded::parse(raw.unwrap_or("").as_bytes()).collect();
        let mut seen = HashSet::new();
        for (i, (key, _)) in values.iter().enumerate() {
            let repeated = if values.len() <= 16 {
                values[..i].iter().any(|(k, _)| k == key)
            } else {
                !seen.insert(key)
            };
            if repeated {
                return Err(Problem::invalid(
                    key.to_string(),
                    "given at most once",
                    format!("parameter '{key}' is given more than once"),
                ));
            }
        }
        Ok(QueryFields { values })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl Fields for QueryFields<'_> {
    fn label(&self, name: &str) -> String {
        name.to_string()
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.values.iter().map(|(k, _)| k.as_ref()).collect();
        names.sort_unstable();
        names
    }

    fn number(&self, name: &str) -> Result<Option<f64>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(Problem::invalid(
                name,
                "a finite number",
                format!("{name} = '{text}' is not a finite number"),
            )),
        }
    }

    fn integer(&self, name: &str) -> Result<Option<u64>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        text.trim().parse::<u64>().map(Some).map_err(|_| {
            Problem::invalid(
                name,
                "a non-negative integer",
                format!("{name} = '{text}' is not a non-negative integer"),
            )
        })
    }

    fn string(&self, name: &str) -> Result<Option<String>, Problem> {
        Ok(self.get(name).map(str::to_string))
    }
}

/// The members of a JSON object, named with a prefix in messages.
pub(crate) struct JsonFields<'a> {
    prefix: String,
    object: &'a Map<String, Value>,
}

impl<'a> JsonFields<'a> {
    /// The members of `value`, which must be an object.
    ///
    /// # Errors
    /// A 400 when `value` is not an object.
    pub(crate) fn new(value: &'a Value, prefix: String) -> Result<JsonFields<'a>, Problem> {
        match value {
            Value::Object(object) => Ok(JsonFields { prefix, object }),
            _ => Err(Problem::invalid(
                if prefix.is_empty() {
                    "body".to_string()
                } else {
                    prefix.trim_end_matches('.').to_string()
                },
                "a JSON object",
                "expected a JSON object",
            )),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }
}

impl Fields for JsonFields<'_> {
    fn label(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn names(&self) -> Vec<&str> {
        self.object.keys().map(String::as_str).collect()
    }

    fn number(&self, name: &str) -> Result<Option<f64>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    let label = self.label(name);
                    Problem::invalid(
                        &label,
                        "a finite number",
                        format!("{label} = {v} is not a number"),
                    )
                }),
        }
    }

    fn integer(&self, name: &str) -> Result<Option<u64>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                let label = self.label(name);
                Problem::invalid(
                    &label,
                    "a non-negative integer",
                    format!("{label} = {v} is not a non-negative integer"),
                )
            }),
        }
    }

    fn string(&self, name: &str) -> Result<Option<String>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => {
                let label = self.label(name);
                Err(Problem::invalid(
                    &label,
                    "a string",
                    format!("{label} = {v} is not a string"),
                ))
            }
        }
    }
}

/// Refuses any field not in `allowed`.
pub(crate) fn check_known(fields: &dyn Fields, allowed: &[&str]) -> Result<(), Problem> {
    for name in fields.names() {
        if !allowed.contains(&name) {
            let label = fields.label(name);
            return Err(Problem::invalid(
                &label,
                format!("one of: {}", allowed.join(", ")),
                format!("unknown parameter '{label}'"),
            ));
        }
    }
    Ok(())
}

fn required(fields: &dyn Fields, name: &str) -> Result<f64, Problem> {
    fields.number(name)?.ok_or_else(|| {
        let label = fields.label(name);
        Problem::invalid(&label, "required", format!("missing parameter '{label}'"))
    })
}

/// Checks a position already read as numbers.
pub(crate) fn check_position(at: Position, labels: [String; 2]) -> Result<Position, Problem> {
    if let Position::LonLat(lon, lat) = at {
        if !(-180.0..=180.0).contains(&lon) {
            return Err(Problem::invalid(
                &labels[0],
                "a longitude in [-180, 180] degrees",
                format!(
                    "{} = {lon} is outside [-180, 180] (coordinates are [lon, lat], RFC 7946)",
                    labels[0]
                ),
            ));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(Problem::invalid(
                &labels[1],
                "a latitude in [-90, 90] degrees",
                format!(
                    "{} = {lat} is outside [-90, 90] (coordinates are [lon, lat], RFC 7946)",
                    labels[1]
                ),
            ));
        }
    }
    Ok(at)
}

/// The position fields of a layer kind.
fn position_names(kind: LayerKind) -> &'static [&'static str] {
    match kind {
        LayerKind::Geographic => &["lon", "lat"],
        LayerKind::Cartesian => &["x", "y", "z"],
    }
}

fn position(fields: &dyn Fields, kind: LayerKind) -> Result<Position, Problem> {
    match kind {
        LayerKind::Geographic => check_position(
            Position::LonLat(required(fields, "lon")?, required(fields, "lat")?),
            [fields.label("lon"), fields.label("lat")],
        ),
        LayerKind::Cartesian => Ok(Position::Xyz(
            required(fields, "x")?,
            required(fields, "y")?,
            required(fields, "z")?,
        )),
    }
}

/// The radius field's name for a layer kind and query.
fn radius_name(kind: LayerKind, max: bool) -> &'static str {
    match (kind, max) {
        (LayerKind::Geographic, false) => "radius_m",
        (LayerKind::Geographic, true) => "max_radius_m",
        (LayerKind::Cartesian, false) => "radius",
        (LayerKind::Cartesian, true) => "max_radius",
    }
}

pub(crate) fn check_k(k: u64, label: &str, limits: &QueryLimits) -> Result<usize, Problem> {
    let k_ok = usize::try_from(k).ok().filter(|&k| limits.k_ok(k));
    k_ok.ok_or_else(|| {
        Problem::invalid(
            label,
            limits.k_rule(),
            format!("{label} = {k} is not {}", limits.k_rule()),
        )
    })
}

pub(crate) fn check_radius(r: f64, label: &str, limits: &QueryLimits) -> Result<f64, Problem> {
    if limits.radius_ok(r) {
        Ok(r)
    } else {
        Err(Problem::invalid(
            label,
            limits.radius_rule(),
            format!("{label} = {r} is not {}", limits.radius_rule()),
        ))
    }
}

fn limit(fields: &dyn Fields, limits: &QueryLimits) -> Result<usize, Problem> {
    let Some(limit) = fields.integer("limit")? else {
        return Ok(DEFAULT_LIMIT.min(limits.max_limit));
    };
    let label = fields.label("limit");
    usize::try_from(limit)
        .ok()
        .filter(|&l| limits.limit_ok(l))
        .ok_or_else(|| {
            Problem::invalid(
                &label,
                limits.limit_rule(),
                format!("{label} = {limit} is not {}", limits.limit_rule()),
            )
        })
}

/// A kNN query from `fields` (`lon`, `lat` or `x`, `y`, `z`; `k`, default
/// 10; `max_radius_m` or `max_radius`; `category`).
pub(crate) fn knn(
    fields: &dyn Fields,
    kind: LayerKind,
    limits: &QueryLimits,
) -> Result<KnnParams, Problem> {
    let max_name = radius_name(kind, true);
    let mut allowed = position_names(kind).to_vec();
    allowed.extend(["k", max_name, "category"]);
    check_known(fields, &allowed)?;
    knn_fields(fields, kind, limits, max_name, "category")
}

fn knn_fields(
    fields: &dyn Fields,
    kind: LayerKind,
    limits: &QueryLimits,
    max_name: &str,
    category_name: &str,
) -> Result<KnnParams, Problem> {
    let at = position(fields, kind)?;
    let k = match fields.integer("k")? {
        Some(k) => check_k(k, &fields.label("k"), limits)?,
        None => DEFAULT_K.min(limits.max_k),
    };
    let max_radius = fields
        .number(max_name)?
        .map(|r| check_radius(r, &fields.label(max_name), limits))
        .transpose()?;
    Ok(KnnParams {
        at,
        k,
        max_radius,
        category: fields.string(category_name)?,
    })
}

/// A radius query from `fields` (position; `radius_m` or `radius`; `limit`,
/// default 1000).
pub(crate) fn radius(
    fields: &dyn Fields,
    kind: LayerKind,
    limits: &QueryLimits,
) -> Result<RadiusParams, Problem> {
    let name = radius_name(kind, false);
    let mut allowed = position_names(kind).to_vec();
    allowed.extend([name, "limit"]);
    check_known(fields, &allowed)?;
    radius_fields(fields, kind, limits)
}

fn radius_fields(
    fields: &dyn Fields,
    kind: LayerKind,
    limits: &QueryLimits,
) -> Result<RadiusParams, Problem> {
    let name = radius_name(kind, false);
    let at = position(fields, kind)?;
    let radius = check_radius(required(fields, name)?, &fields.label(name), limits)?;
    Ok(RadiusParams {
        at,
        radius,
        limit: limit(fields, limits)?,
    })
}

/// A stats query from `fields` (position; `radius_m` or `radius`; `by`).
pub(crate) fn stats(
    fields: &dyn Fields,
    kind: LayerKind,
    limits: &QueryLimits,
) -> Result<StatsParams, Problem> {
    let name = radius_name(kind, false);
    let mut allowed = position_names(kind).to_vec();
    allowed.extend([name, "by"]);
    check_known(fields, &allowed)?;
    let at = position(fields, kind)?;
    let radius = check_radius(required(fields, name)?, &fields.label(name), limits)?;
    Ok(StatsParams {
        at,
        radius,
        by: fields.string("by")?,
    })
}

/// The POST kNN body: `{"point": {"type": "Point", "coordinates": [lon, lat]},
/// "k": 10, "max_radius_meters": 5000, "category_filter": "US"}` (cartesian
/// layers: coordinates `[x, y, z]` and `max_radius`).
pub(crate) fn knn_body(
    body: &Value,
    kind: LayerKind,
    limits: &QueryLimits,
) -> Result<KnnParams, Problem> {
    let fields = JsonFields::new(body, String::new())?;
    let max_name = match kind {
        LayerKind::Geographic => "max_radius_meters",
        LayerKind::Cartesian => "max_radius",
    };
    check_known(&fields, &["point", "k", max_name, "category_filter"])?;
    let point = fields.get("point").ok_or_else(|| {
        Problem::invalid(
            "point",
            "required",
            "missing member 'point' (a GeoJSON Point)",
        )
    })?;
    let at = geojson_point(point, kind)?;
    let k = match fields.integer("k")? {
        Some(k) => check_k(k, "k", limits)?,
        None => DEFAULT_K.min(limits.max_k),
    };
    let max_radius = fields
        .number(max_name)?
        .map(|r| check_radius(r, max_name, limits))
        .transpose()?;
    Ok(KnnParams {
        at,
        k,
        max_radius,
        category: fields.string("category_filter")?,
    })
}

/// A GeoJSON Point (via the `geojson` crate): `[lon, lat]` for geographic
/// layers, `[x, y, z]` for cartesian ones.
fn geojson_point(value: &Value, kind: LayerKind) -> Result<Position, Problem> {
    let rule = match kind {
        LayerKind::Geographic => "a GeoJSON Point with coordinates [lon, lat]",
        LayerKind::Cartesian => "a GeoJSON Point with coordinates [x, y, z]",
    };
    let geometry: geojson::Geometry = serde_json::from_value(value.clone()).map_err(|e| {
        Problem::invalid(
            "point",
            rule,
            format!("point is not a GeoJSON geometry: {e}"),
        )
    })?;
    let geojson::GeometryValue::Point { coordinates } = &geometry.value else {
        return Err(Problem::invalid(
            "point",
            rule,
            format!("point is a {}, not a Point", geometry.value.type_name()),
        ));
    };
    let c = coordinates.as_slice();
    if c.iter().any(|x| !x.is_finite()) {
        return Err(Problem::invalid(
            "point.coordinates",
            rule,
            "coordinates must be finite numbers",
        ));
    }
    match (kind, c) {
        (LayerKind::Geographic, [lon, lat]) | (LayerKind::Geographic, [lon, lat, _]) => {
            check_position(
                Position::LonLat(*lon, *lat),
                ["point.coordinates[0]".into(), "point.coordinates[1]".into()],
            )
        }
        (LayerKind::Cartesian, [x, y, z]) => Ok(Position::Xyz(*x, *y, *z)),
        _ => Err(Problem::invalid(
            "point.coordinates",
            rule,
            format!("{} coordinates given", c.len()),
        )),
    }
}

/// One query of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BatchQuery {
    Knn(KnnParams),
    Radius(RadiusParams),
}

/// A batch body: a JSON array (or `{"queries": [...]}`) of objects, each a
/// kNN query (`lon`/`lat` or `x`/`y`/`z`, `k`, optional `max_radius_m` /
/// `max_radius`, `category`) or a radius query (`radius_m` / `radius`,
/// optional `limit`).
pub(crate) fn batch_body(
    body: &Value,
    kind: LayerKind,
    limits: &QueryLimits,
) -> Result<Vec<BatchQuery>, Problem> {
    let items = match body {
        Value::Array(items) => items,
        Value::Object(o) if o.len() == 1 && o.get("queries").is_some_and(Value::is_array) => {
            o["queries"].as_array().map_or(&[][..], Vec::as_slice)
        }
        _ => {
            return Err(Problem::invalid(
                "body",
                "a JSON array of queries (or {\"queries\": [...]})",
                "expected a JSON array of queries",
            ));
        }
    };
    if items.is_empty() || items.len() > limits.max_batch {
        return Err(Problem::invalid(
            "queries",
            format!("1..={} queries", limits.max_batch),
            format!("{} queries in the batch", items.len()),
        ));
    }
    let radius_key = radius_name(kind, false);
    let max_key = radius_name(kind, true);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let fields = JsonFields::new(item, format!("queries[{i}]."))?;
            let mut allowed = position_names(kind).to_vec();
            if fields.get(radius_key).is_some() {
                allowed.extend([radius_key, "limit"]);
                check_known(&fields, &allowed)?;
                radius_fields(&fields, kind, limits).map(BatchQuery::Radius)
            } else {
                allowed.extend(["k", max_key, "category"]);
                check_known(&fields, &allowed)?;
                knn_fields(&fields, kind, limits, max_key, "category").map(BatchQuery::Knn)
            }
        })
        .collect()
}
