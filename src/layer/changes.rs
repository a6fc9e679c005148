//! Incremental layers: points appended, deleted or replaced while the layer
//! is served, batched and applied by the next rebuild; tombstones hide
//! deleted points from the served snapshot until then.
//!
//! # Point ids
//! Every point of a geographic layer has a stable `id` (a `u64`):
//! - a layer loaded from its file (at start-up or by a reload), or replaced
//!   by a body ([`ChangeLog::replace`]), numbers its points `0..n` in
//!   file/body order (the data row of a CSV, the feature of a GeoJSON);
//! - appended points ([`ChangeLog::append`]) get the next ids, `next_id`,
//!   `next_id + 1`, ...; an id is never given twice until the next reload
//!   or replacement renumbers the layer;
//! - a deleted id stays deleted; it is not reused.
//!
//! Ids ascend with the points' positions in a [`Layer`] (deletions keep the
//! order, appended ids are larger than every earlier one), so ties in
//! distance broken by position are broken by id.
//!
//! # Batches and generations
//! Accepted changes gather in one pending [`Batch`]. A rebuild takes it
//! ([`ChangeLog::take`]), builds the next layer from the current one
//! ([`Batch::build`], O(n log n), off the query path) and publishes it; the
//! caller then calls [`ChangeLog::published`]. A replacement or a reload
//! discards the pending appends and deletions (they are relative to the old
//! content). A reload's ids are unknown until its file is read, so appends
//! and deletions are refused ([`Error::Conflict`]) from the reload's request
//! until it is published or has failed; a failed reload restores the batch it
//! displaced.
//!
//! # Tombstones
//! A deletion marks the point in the served snapshot at once
//! ([`Tombstones`], one bit per point), when the snapshot numbers its points
//! as the change log does; every query of that snapshot skips it, and the
//! next rebuild leaves it out. kNN stays exact and returns `k` points: the
//! tombstones are a filter of [`crate::geo::GeoIndex::knn`], which gathers
//! more candidates when some fail it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde_json::Value;

use super::attributes::{Attributes, Column, TextBuilder, parse_plain_number};
use super::{Layer, LayerIndex, LayerKind, LayerSpec, csv_layer, geojson_layer};
use crate::error::{Error, Result};

/// One bit per point of a layer snapshot: the points deleted since it was
/// built. Shared by concurrent queries; set without locks.
#[derive(Debug, Default)]
pub struct Tombstones {
    words: Vec<AtomicU64>,
    count: AtomicUsize,
}

impl Tombstones {
    /// No tombstone, room for `n` points.
    pub fn new(n: usize) -> Tombstones {
        Tombstones {
            words: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicUsize::new(0),
        }
    }

    /// Marks position `pos` deleted; false when it already was or is out of
    /// range.
    pub fn insert(&self, pos: usize) -> bool {
        let Some(word) = self.words.get(pos / 64) else {
            return false;
        };
        let bit = 1u64 << (pos % 64);
        let fresh = word.fetch_or(bit, Ordering::AcqRel) & bit == 0;
        if fresh {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        fresh
    }

    /// True when position `pos` is deleted.
    pub fn contains(&self, pos: usize) -> bool {
        self.words
            .get(pos / 64)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1u64 << (pos % 64)) != 0)
    }

    /// Number of deleted positions.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// True when nothing is deleted (the queries' fast path).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The format of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// A GeoJSON Feature or FeatureCollection of Points (RFC 7946).
    GeoJson,
    /// CSV with a header row, as a layer file.
    Csv,
}

/// Points read from a body, not yet checked against a layer's columns.
#[derive(Debug, Clone)]
pub struct ParsedPoints {
    /// `[lon, lat]`, degrees, checked to be in range.
    pub lon_lat: Vec<[f64; 2]>,
    /// The other fields: raw text columns for CSV, JSON columns for GeoJSON.
    pub attributes: Attributes,
    format: BodyFormat,
}

/// Parses a body of `format`: a GeoJSON Feature or FeatureCollection of
/// Points, or CSV with a header (latitude/longitude columns found as in a
/// layer file, or by the names in `spec`).
///
/// # Errors
/// [`Error::InvalidParameter`] naming `body` and what is wrong (the feature
/// or line).
pub fn parse_points(bytes: &[u8], format: BodyFormat, spec: &LayerSpec) -> Result<ParsedPoints> {
    match format {
        BodyFormat::GeoJson => {
            let bad = |reason: String| Error::invalid("body", "GeoJSON", reason);
            let geojson: geojson::GeoJson = serde_json::from_slice(bytes)
                .map_err(|e| bad(format!("not a GeoJSON Feature or FeatureCollection: {e}")))?;
            let features = match geojson {
                geojson::GeoJson::Feature(f) => vec![f],
                geojson::GeoJson::FeatureCollection(c) => c.features,
                geojson::GeoJson::Geometry(_) => {
                    return Err(bad(
                        "a bare geometry: send a Feature or a FeatureCollection".into(),
                    ));
                }
            };
            let content = geojson_layer::from_features(features).map_err(bad)?;
            Ok(ParsedPoints {
                lon_lat: content.lon_lat,
                attributes: content.attributes,
                format,
            })
        }
        BodyFormat::Csv => {
            let raw = csv_layer::parse(bytes, spec)
                .map_err(|reason| Error::invalid("body", "CSV", reason))?;
            Ok(ParsedPoints {
                lon_lat: raw.lon_lat,
                attributes: Attributes {
                    names: raw.names,
                    columns: raw.columns.into_iter().map(TextBuilder::into_raw).collect(),
                },
                format,
            })
        }
    }
}

/// Points with ids, their columns those of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoints {
    /// Ascending ids.
    pub ids: Vec<u64>,
    /// `[lon, lat]`, degrees.
    pub lon_lat: Vec<[f64; 2]>,
    /// One column per layer column.
    pub attributes: Attributes,
}

impl NewPoints {
    fn empty(schema: &Attributes) -> NewPoints {
        NewPoints {
            ids: Vec::new(),
            lon_lat: Vec::new(),
            attributes: schema.empty_like(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there is no point.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn extend(&mut self, other: &NewPoints) -> Result<()> {
        self.ids.extend_from_slice(&other.ids);
        self.lon_lat.extend_from_slice(&other.lon_lat);
        for (a, b) in self
            .attributes
            .columns
            .iter_mut()
            .zip(&other.attributes.columns)
        {
            a.extend(b)
                .map_err(|reason| Error::invalid("attributes", "columns", reason))?;
        }
        Ok(())
    }

    /// Removes point `id`; false when it is not here.
    fn remove(&mut self, id: u64) -> bool {
        let Ok(pos) = self.ids.binary_search(&id) else {
            return false;
        };
        self.ids.remove(pos);
        self.lon_lat.remove(pos);
        for c in &mut self.attributes.columns {
            *c = c.select(|i| i != pos);
        }
        true
    }
}

/// The names an attribute may not keep in a geographic layer (they are the
/// answer's own); [`Layer`] prefixes them with `source_`.
pub(super) const RESERVED_GEOGRAPHIC: [&str; 2] = ["id", "distance_m"];

fn unreserved(name: &str) -> String {
    if RESERVED_GEOGRAPHIC.contains(&name) {
        format!("source_{name}")
    } else {
        name.to_string()
    }
}

/// `parsed`'s attributes as columns of `schema` (same names, kinds and
/// order). A field missing from a point is null (an empty text, a NaN
/// number); a field the layer does not have is an error.
///
/// Conversions: into a text column a string (JSON `null`: empty); into a
/// number column a JSON number, a plain decimal string (CSV) or empty/`null`
/// (missing); into a JSON column anything.
fn conform(parsed: &ParsedPoints, schema: &Attributes) -> Result<Attributes> {
    let n = parsed.lon_lat.len();
    let names: Vec<String> = parsed
        .attributes
        .names
        .iter()
        .map(|s| unreserved(s))
        .collect();
    if let Some(unknown) = names.iter().find(|name| schema.find(name).is_none()) {
        return Err(Error::invalid(
            "body",
            unknown,
            format!(
                "'{unknown}' is not a column of the layer (columns: {})",
                schema.names.join(", ")
            ),
        ));
    }
    let mut columns = Vec::with_capacity(schema.columns.len());
    for (name, kind) in schema.names.iter().zip(&schema.columns) {
        let given = names
            .iter()
            .position(|n| n == name)
            .map(|c| &parsed.attributes.columns[c]);
        let cell = |i: usize| -> Option<Value> {
            given.map(|c| match c {
                Column::Json(v) => v[i].clone(),
                other => Value::String(other.text(i).into_owned()),
            })
        };
        let wrong = |i: usize, want: &str, got: &Value| {
            Error::invalid(
                "body",
                format!("{name} = {got}"),
                format!("point {i}: column '{name}' holds {want}"),
            )
        };
        let column = match kind {
            Column::Text { .. } => {
                let mut b = TextBuilder::default();
                for i in 0..n {
                    match cell(i) {
                        None | Some(Value::Null) => b.push(""),
                        Some(Value::String(s)) => b.push(&s),
                        Some(other) => return Err(wrong(i, "text (a JSON string)", &other)),
                    }
                }
                b.into_raw()
            }
            Column::Number(_) => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    let x = match cell(i) {
                        None | Some(Value::Null) => f64::NAN,
                        Some(Value::Number(x)) => x.as_f64().unwrap_or(f64::NAN),
                        Some(Value::String(s)) if s.trim().is_empty() => f64::NAN,
                        Some(Value::String(s)) => match parse_plain_number(s.trim()) {
                            Some(x) => x,
                            None => return Err(wrong(i, "numbers", &Value::String(s))),
                        },
                        Some(other) => return Err(wrong(i, "numbers", &other)),
                    };
                    v.push(x);
                }
                Column::Number(v)
            }
            Column::Json(_) => {
                Column::Json((0..n).map(|i| cell(i).unwrap_or(Value::Null)).collect())
            }
        };
        columns.push(column);
    }
    Ok(Attributes {
        names: schema.names.clone(),
        columns,
    })
}

/// What a batch is applied to.
#[derive(Debug, Clone)]
enum Base {
    /// The layer being served when the batch is built.
    Current,
    /// New content with ids `0..m` (a replacement).
    Replace(NewPoints),
    /// The layer's file, read again; `stash` is the batch it displaced,
    /// restored if the reload fails.
    Reload { stash: Option<Box<Batch>> },
}

/// Changes applied together by one rebuild.
#[derive(Debug, Clone)]
pub struct Batch {
    base: Base,
    appended: Option<NewPoints>,
    deleted: BTreeSet<u64>,
    /// Numbering the batch's ids belong to.
    seq: u64,
    /// The first id not given when the batch was taken.
    next_id: u64,
}

impl Batch {
    fn new(seq: u64) -> Batch {
        Batch {
            base: Base::Current,
            appended: None,
            deleted: BTreeSet::new(),
            seq,
            next_id: 0,
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self.base, Base::Current)
            && self.appended.as_ref().is_none_or(NewPoints::is_empty)
            && self.deleted.is_empty()
    }

    /// True when the batch reloads the layer's file.
    pub fn is_reload(&self) -> bool {
        matches!(self.base, Base::Reload { .. })
    }

    /// Builds the next layer: the base (the `current` layer without its
    /// tombstoned and deleted points, the replacement, or the file) plus the
    /// appended points, numbered `generation`.
    ///
    /// Complexity: O(n) to copy the points and attributes, O(n log n) for
    /// the index.
    ///
    /// # Errors
    /// The file's error for a reload; [`Error::InvalidParameter`] when the
    /// content cannot be indexed (not expected: changes are checked when
    /// accepted).
    pub fn build(&self, current: &Layer, spec: &LayerSpec, generation: u64) -> Result<Layer> {
        let started = std::time::Instant::now();
        let mut content = match &self.base {
            Base::Reload { .. } => {
                let mut layer = Layer::load(spec, generation)?;
                layer.epoch = self.seq;
                return Ok(layer);
            }
            Base::Replace(points) => points.clone(),
            Base::Current => {
                let LayerIndex::Geographic(index) = &current.index else {
                    return Err(Error::invalid(
                        "layer",
                        &current.name,
                        "cartesian layers cannot change incrementally",
                    ));
                };
                // Decided once: a DELETE may tombstone `current` meanwhile, and
                // the points and every column must keep the same positions.
                let kept_mask: Vec<bool> = (0..current.len())
                    .map(|pos| {
                        if pos % 4096 == 4095 {
                            crate::pace::checkpoint();
                        }
                        !current.tombstones.contains(pos)
                            && !self.deleted.contains(&current.point_id(pos))
                    })
                    .collect();
                let keep = |pos: usize| kept_mask[pos];
                let mut kept: Vec<usize> = Vec::with_capacity(current.len());
                kept.extend((0..current.len()).filter(|&p| keep(p)));
                crate::pace::checkpoint();
                // Room for the appended points: no buffer is copied to grow.
                let appended = self.appended.as_ref();
                let room = kept.len() + appended.map_or(0, NewPoints::len);
                let mut ids = Vec::with_capacity(room);
                let mut lon_lat = Vec::with_capacity(room);
                for part in kept.chunks(4096) {
                    ids.extend(part.iter().map(|&p| current.point_id(p)));
                    lon_lat.extend(part.iter().map(|&p| index.lon_lat(p)));
                    crate::pace::checkpoint();
                }
                NewPoints {
                    ids,
                    lon_lat,
                    attributes: Attributes {
                        names: current.attributes.names.clone(),
                        columns: current
                            .attributes
                            .columns
                            .iter()
                            .enumerate()
                            .map(|(c, column)| {
                                let room = appended.and_then(|a| a.attributes.columns.get(c));
                                column.select_with_room(keep, room)
                            })
                            .collect(),
                    },
                }
            }
        };
        if let Some(appended) = &self.appended {
            content.extend(appended)?;
        }
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut layer = Layer::from_parts(
            spec,
            content.lon_lat,
            content.attributes,
            content.ids,
            generation,
            load_ms,
        )?;
        layer.epoch = self.seq;
        layer.next_id = layer.next_id.max(self.next_id);
        Ok(layer)
    }
}

/// The accepted changes of one geographic layer and the ids they leave
/// alive: what `PUT`, `POST .../points` and `DELETE .../points/{id}` of
/// `pointpipe serve` call (see the module docs of `layer::changes`). Not thread-safe by
/// itself: the service keeps it behind a mutex, with the snapshot swap.
#[derive(Debug, Clone)]
pub struct ChangeLog {
    /// Numbering of the latest accepted content (bumped by replacements and
    /// reloads); a [`Layer`] whose `epoch` equals it numbers points alike.
    seq: u64,
    /// Bit `id` set: the id is alive once every accepted change is applied.
    live: Vec<u64>,
    next_id: u64,
    schema: Attributes,
    awaiting_reload: bool,
    pending: Batch,
}

impl ChangeLog {
    /// The change log of a freshly loaded or built `layer`: its points alive
    /// (without its tombstones), nothing pending.
    pub fn new(layer: &Layer) -> ChangeLog {
        let mut log = ChangeLog {
            seq: layer.epoch,
            live: Vec::new(),
            next_id: 0,
            schema: layer.attributes.empty_like(),
            awaiting_reload: false,
            pending: Batch::new(layer.epoch),
        };
        log.renumber_from(layer);
        log
    }

    fn renumber_from(&mut self, layer: &Layer) {
        self.next_id = layer.next_id;
        self.live = vec![0; (self.next_id as usize).div_ceil(64)];
        for pos in (0..layer.len()).filter(|&p| !layer.tombstones.contains(p)) {
            self.set_live(layer.point_id(pos), true);
        }
        self.schema = layer.attributes.empty_like();
    }

    fn is_live(&self, id: u64) -> bool {
        id < self.next_id && self.live[(id / 64) as usize] & (1 << (id % 64)) != 0
    }

    fn set_live(&mut self, id: u64, alive: bool) {
        let word = (id / 64) as usize;
        if word >= self.live.len() {
            self.live.resize(word + 1, 0);
        }
        if alive {
            self.live[word] |= 1 << (id % 64);
        } else {
            self.live[word] &= !(1 << (id % 64));
        }
    }

    fn refuse_while_reloading(&self) -> Result<()> {
        if self.awaiting_reload {
            return Err(Error::Conflict {
                reason: "a reload of the layer's file is pending and will renumber its \
                         points: retry once it is published"
                    .into(),
            });
        }
        Ok(())
    }

    /// The next id an appended point gets.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// True when changes wait for a rebuild.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Appends `parsed` (columns conformed to the layer's, see `conform`) to
    /// the pending batch; returns the ids given, ascending.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for no point, a field that is not a
    /// column of the layer or a value of the wrong kind;
    /// [`Error::Conflict`] while a reload is pending.
    pub fn append(&mut self, parsed: &ParsedPoints) -> Result<Vec<u64>> {
        self.refuse_while_reloading()?;
        if parsed.lon_lat.is_empty() {
            return Err(Error::invalid(
                "body",
                "no point",
                "the body holds no point",
            ));
        }
        let attributes = conform(parsed, &self.schema)?;
        let first = self.next_id;
        let ids: Vec<u64> = (first..first + parsed.lon_lat.len() as u64).collect();
        let points = NewPoints {
            ids: ids.clone(),
            lon_lat: parsed.lon_lat.clone(),
            attributes,
        };
        let schema = &self.schema;
        self.pending
            .appended
            .get_or_insert_with(|| NewPoints::empty(schema))
            .extend(&points)?;
        self.next_id += ids.len() as u64;
        for &id in &ids {
            self.set_live(id, true);
        }
        Ok(ids)
    }

    /// Deletes point `id`: from the pending batch when it is there, else
    /// for the next rebuild, and at once from the `current` snapshot (a
    /// tombstone) when it numbers points as this log does.
    ///
    /// # Errors
    /// [`Error::UnknownPoint`] when no live point has this id (never given,
    /// or already deleted); [`Error::Conflict`] while a reload is pending.
    pub fn delete(&mut self, id: u64, current: &Layer) -> Result<()> {
        self.refuse_while_reloading()?;
        if !self.is_live(id) {
            return Err(Error::UnknownPoint {
                layer: current.name.clone(),
                id,
            });
        }
        self.set_live(id, false);
        let removed = self.pending.appended.as_mut().is_some_and(|a| a.remove(id))
            || match &mut self.pending.base {
                Base::Replace(points) => points.remove(id),
                _ => false,
            };
        if !removed {
            self.pending.deleted.insert(id);
        }
        if current.epoch == self.seq
            && let Some(pos) = current.position_of(id)
        {
            current.tombstones.insert(pos);
        }
        Ok(())
    }

    /// Replaces the layer's content with `parsed` (ids `0..m`, columns typed
    /// as a layer file's: CSV text columns holding only numbers become
    /// number columns), discarding the pending batch.
    ///
    /// Returns the number of points.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when the spec's category column is not in
    /// the new content.
    pub fn replace(&mut self, parsed: ParsedPoints, spec: &LayerSpec) -> Result<usize> {
        let mut attributes = parsed.attributes;
        if parsed.format == BodyFormat::Csv {
            attributes.columns = attributes
                .columns
                .into_iter()
                .map(super::attributes::retype)
                .collect();
        }
        for name in &mut attributes.names {
            *name = unreserved(name);
        }
        if let Some(col) = &spec.category_column
            && attributes.find(col).is_none()
        {
            return Err(Error::invalid(
                "body",
                col,
                format!(
                    "the layer's category column '{col}' is missing (columns: {})",
                    attributes.names.join(", ")
                ),
            ));
        }
        let m = parsed.lon_lat.len();
        self.seq += 1;
        self.awaiting_reload = false;
        self.schema = attributes.empty_like();
        self.next_id = m as u64;
        self.live = vec![u64::MAX; m.div_ceil(64)];
        if !m.is_multiple_of(64)
            && let Some(last) = self.live.last_mut()
        {
            *last = (1u64 << (m % 64)) - 1;
        }
        self.pending = Batch::new(self.seq);
        self.pending.base = Base::Replace(NewPoints {
            ids: (0..m as u64).collect(),
            lon_lat: parsed.lon_lat,
            attributes,
        });
        Ok(m)
    }

    /// Asks for a reload of the layer's file; appends and deletions are
    /// refused until it is published or has failed.
    pub fn reload(&mut self) {
        let displaced = std::mem::replace(&mut self.pending, Batch::new(self.seq + 1));
        self.seq += 1;
        self.awaiting_reload = true;
        let stash = match displaced.base {
            // A reload asked while another waits: one reload, the first stash.
            Base::Reload { stash } => {
                self.pending.base = Base::Reload { stash };
                return;
            }
            _ if displaced.is_empty() => None,
            _ => {
                let mut displaced = displaced;
                displaced.next_id = self.next_id;
                Some(Box::new(displaced))
            }
        };
        self.pending.base = Base::Reload { stash };
    }

    /// The pending batch, leaving an empty one; `None` when nothing waits.
    pub fn take(&mut self) -> Option<Batch> {
        if self.pending.is_empty() {
            return None;
        }
        let mut batch = std::mem::replace(&mut self.pending, Batch::new(self.seq));
        batch.seq = self.seq;
        batch.next_id = self.next_id;
        Some(batch)
    }

    /// Call once `layer`, built from `batch`, is the served snapshot (under
    /// the same lock as the swap): deletions accepted during the build are
    /// tombstoned in it, and a reload's numbering becomes the log's.
    pub fn published(&mut self, layer: &Layer, batch: &Batch) {
        if batch.is_reload() && batch.seq == self.seq {
            self.awaiting_reload = false;
            self.renumber_from(layer);
        }
        if layer.epoch == self.seq {
            for &id in &self.pending.deleted {
                if let Some(pos) = layer.position_of(id) {
                    layer.tombstones.insert(pos);
                }
            }
        }
    }

    /// Call when `batch` failed to build while `current` is still served.
    /// A failed reload restores the batch it displaced (returns true when
    /// changes wait again); any other failure (not expected) resets the log
    /// to `current`, dropping the pending changes.
    pub fn failed(&mut self, batch: Batch, current: &Layer) -> bool {
        match batch.base {
            Base::Reload { stash, .. } if batch.seq == self.seq => {
                *self = ChangeLog::new(current);
                if let Some(stash) = stash {
                    self.restore(*stash, current);
                }
                self.has_pending()
            }
            Base::Reload { .. } => self.has_pending(),
            _ => {
                *self = ChangeLog::new(current);
                false
            }
        }
    }

    /// Makes `stash` (a batch a failed reload displaced) pending again, with
    /// the ids it leaves alive; drops it (logged) when it was relative to
    /// another numbering than `current`'s.
    fn restore(&mut self, stash: Batch, current: &Layer) {
        match &stash.base {
            Base::Current if stash.seq == current.epoch => {
                for &id in &stash.deleted {
                    self.set_live(id, false);
                }
            }
            Base::Replace(points) => {
                self.seq = stash.seq;
                self.schema = points.attributes.empty_like();
                self.live.clear();
                for &id in &points.ids {
                    self.set_live(id, true);
                }
            }
            _ => {
                log::warn!(
                    "layer '{}': changes displaced by a failed reload no longer apply; dropped",
                    current.name
                );
                return;
            }
        }
        if let Some(appended) = &stash.appended {
            for &id in &appended.ids {
                self.set_live(id, true);
            }
        }
        self.next_id = self.next_id.max(stash.next_id);
        self.pending = stash;
    }
}

impl Layer {
    /// Builds a geographic layer from points with ids (ascending) already in
    /// memory; see [`Layer::from_lon_lat`].
    ///
    /// # Errors
    /// As [`Layer::from_lon_lat`]; [`Error::InvalidParameter`] when the ids
    /// do not ascend or their number differs from the points'.
    pub fn from_parts(
        spec: &LayerSpec,
        lon_lat: Vec<[f64; 2]>,
        attributes: Attributes,
        ids: Vec<u64>,
        generation: u64,
        load_ms: f64,
    ) -> Result<Layer> {
        if ids.len() != lon_lat.len() || ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "ids",
                ids.len(),
                format!("must ascend, one per point ({} points)", lon_lat.len()),
            ));
        }
        let identity = ids.iter().enumerate().all(|(i, &id)| id == i as u64);
        let mut layer = Layer::build(
            spec,
            super::Content::Geographic(lon_lat, attributes),
            None,
            generation,
            load_ms,
        )?;
        debug_assert_eq!(layer.kind, LayerKind::Geographic);
        layer.next_id = ids.last().map_or(0, |&id| id + 1);
        layer.ids = (!identity).then_some(ids);
        Ok(layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Position;
    use rand::{Rng, SeedableRng};

    fn spec() -> LayerSpec {
        "fleet=fleet.csv".parse().unwrap()
    }

    /// `n` places on a line of longitudes, with a text and a number column.
    fn layer(n: usize) -> Layer {
        let csv: String = std::iter::once("lat,lon,name,pop\n".to_string())
            .chain((0..n).map(|i| format!("45,{},p{i},{i}\n", i as f64 * 0.01)))
            .collect();
        let raw = parse_points(csv.as_bytes(), BodyFormat::Csv, &spec()).unwrap();
        let columns = raw
            .attributes
            .columns
            .into_iter()
            .map(super::super::attributes::retype)
            .collect();
        let attributes = Attributes {
            names: raw.attributes.names,
            columns,
        };
        Layer::from_lon_lat(&spec(), raw.lon_lat, attributes, 1).unwrap()
    }

    fn geojson(points: &[(f64, f64, &str)]) -> ParsedPoints {
        let features: Vec<String> = points
            .iter()
            .map(|(lon, lat, name)| {
                format!(
                    r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon},{lat}]}},"properties":{{"name":"{name}","pop":7}}}}"#
                )
            })
            .collect();
        let body = format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        );
        parse_points(body.as_bytes(), BodyFormat::GeoJson, &spec()).unwrap()
    }

    fn ids(layer: &Layer) -> Vec<u64> {
        (0..layer.len()).map(|p| layer.point_id(p)).collect()
    }

    fn knn_ids(layer: &Layer, lon: f64, lat: f64, k: usize) -> Vec<u64> {
        let answer = layer
            .knn(Position::LonLat(lon, lat), k, None, None)
            .unwrap();
        answer.hits.iter().map(|h| layer.point_id(h.id)).collect()
    }

    #[test]
    fn append_and_delete_apply_in_the_next_build_and_tombstones_hide_at_once() {
        let current = layer(5);
        let mut log = ChangeLog::new(&current);
        let given = log
            .append(&geojson(&[(0.5, 45.0, "a"), (0.6, 45.0, "b")]))
            .unwrap();
        assert_eq!(given, [5, 6]);
        assert_eq!(knn_ids(&current, 0.0, 45.0, 2), [0, 1]);
        log.delete(0, &current).unwrap();
        // Hidden at once; kNN still returns k points.
        assert_eq!(knn_ids(&current, 0.0, 45.0, 2), [1, 2]);
        assert!(matches!(
            log.delete(0, &current),
            Err(Error::UnknownPoint { id: 0, .. })
        ));
        assert!(matches!(
            log.delete(99, &current),
            Err(Error::UnknownPoint { .. })
        ));
        // Deleting a pending appended point drops it from the batch.
        log.delete(6, &current).unwrap();
        let batch = log.take().unwrap();
        assert!(log.take().is_none());
        let next = batch.build(&current, &spec(), 2).unwrap();
        log.published(&next, &batch);
        assert_eq!(ids(&next), [1, 2, 3, 4, 5]);
        assert!(next.tombstones().is_empty());
        let name = next.attributes.find("name").unwrap();
        let pop = next.attributes.find("pop").unwrap();
        assert_eq!(next.attributes.columns[name].text(4), "a");
        assert_eq!(next.attributes.columns[pop].json(4), serde_json::json!(7));
        assert!(matches!(next.attributes.columns[pop], Column::Number(_)));
        assert_eq!(knn_ids(&next, 0.5, 45.0, 1), [5]);
        // Ids are never given twice, even after the largest was deleted.
        log.delete(5, &next).unwrap();
        assert_eq!(log.append(&geojson(&[(1.0, 45.0, "c")])).unwrap(), [7]);
    }

    #[test]
    fn a_deletion_during_a_build_is_tombstoned_in_the_published_layer() {
        let current = layer(3);
        let mut log = ChangeLog::new(&current);
        log.append(&geojson(&[(0.5, 45.0, "a")])).unwrap();
        let batch = log.take().unwrap();
        // The rebuild runs; id 3 is in it but not yet served.
        log.delete(3, &current).unwrap();
        log.delete(1, &current).unwrap();
        let next = batch.build(&current, &spec(), 2).unwrap();
        log.published(&next, &batch);
        // 1 was tombstoned in `current` before the build read it; 3 is
        // tombstoned in `next` at publication.
        assert_eq!(ids(&next), [0, 2, 3]);
        assert!(next.tombstones().contains(2));
        assert_eq!(knn_ids(&next, 0.5, 45.0, 4), [2, 0]);
        let batch = log.take().unwrap();
        let last = batch.build(&next, &spec(), 3).unwrap();
        assert_eq!(ids(&last), [0, 2]);
    }

    #[test]
    fn replace_renumbers_and_later_changes_apply_to_the_new_content() {
        let current = layer(4);
        let mut log = ChangeLog::new(&current);
        log.append(&geojson(&[(0.5, 45.0, "dropped")])).unwrap();
        let csv = "latitude,longitude,name,id\n10,20,x,a7\n11,21,y,b8\n12,22,z,c9\n";
        let parsed = parse_points(csv.as_bytes(), BodyFormat::Csv, &spec()).unwrap();
        assert_eq!(log.replace(parsed, &spec()).unwrap(), 3);
        // Ids now name the replacement's points: deleting 1 does not touch
        // the served layer's point 1.
        log.delete(1, &current).unwrap();
        assert!(current.tombstones().is_empty());
        let csv_row = "lat,lon,name\n13,23,w\n";
        let row = parse_points(csv_row.as_bytes(), BodyFormat::Csv, &spec()).unwrap();
        assert_eq!(log.append(&row).unwrap(), [3]);
        let batch = log.take().unwrap();
        let next = batch.build(&current, &spec(), 2).unwrap();
        log.published(&next, &batch);
        assert_eq!(ids(&next), [0, 2, 3]);
        assert_eq!(next.attributes.names, ["name", "source_id"]);
        assert_eq!(knn_ids(&next, 23.0, 13.0, 1), [3]);
        // The schema is the replacement's.
        let bad = geojson(&[(0.0, 0.0, "q")]); // has `pop`
        assert!(matches!(
            log.append(&bad),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn a_pending_reload_refuses_changes_and_a_failed_one_restores_them() {
        let current = layer(3);
        let mut log = ChangeLog::new(&current);
        log.append(&geojson(&[(0.5, 45.0, "a")])).unwrap();
        log.reload();
        assert!(matches!(
            log.append(&geojson(&[(0.6, 45.0, "b")])),
            Err(Error::Conflict { .. })
        ));
        assert!(matches!(
            log.delete(0, &current),
            Err(Error::Conflict { .. })
        ));
        let batch = log.take().unwrap();
        assert!(batch.is_reload());
        // The file does not exist: the reload fails, the append waits again.
        let failed = batch.build(&current, &spec(), 2);
        assert!(failed.is_err());
        assert!(log.failed(batch, &current));
        log.delete(0, &current).unwrap();
        let batch = log.take().unwrap();
        let next = batch.build(&current, &spec(), 2).unwrap();
        log.published(&next, &batch);
        assert_eq!(ids(&next), [1, 2, 3]);
    }

    #[test]
    fn bodies_and_values_are_checked() {
        let current = layer(2);
        let mut log = ChangeLog::new(&current);
        let s = spec();
        for (body, format) in [
            ("{", BodyFormat::GeoJson),
            (
                r#"{"type":"Point","coordinates":[1,2]}"#,
                BodyFormat::GeoJson,
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]},"properties":{}}"#,
                BodyFormat::GeoJson,
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[200,2]},"properties":{}}"#,
                BodyFormat::GeoJson,
            ),
            ("lat,lon\n1,2,3\n", BodyFormat::Csv),
            ("name\nx\n", BodyFormat::Csv),
            ("lat,lon\n95,2\n", BodyFormat::Csv),
        ] {
            assert!(
                matches!(
                    parse_points(body.as_bytes(), format, &s),
                    Err(Error::InvalidParameter { name: "body", .. })
                ),
                "{body}"
            );
        }
        let point = |props: &str| {
            let body = format!(
                r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[1,2]}},"properties":{props}}}"#
            );
            parse_points(body.as_bytes(), BodyFormat::GeoJson, &s).unwrap()
        };
        for props in [r#"{"colour":"red"}"#, r#"{"pop":"many"}"#, r#"{"name":5}"#] {
            assert!(log.append(&point(props)).is_err(), "{props}");
        }
        let empty = parse_points(b"lat,lon,name,pop\n", BodyFormat::Csv, &s).unwrap();
        assert!(log.append(&empty).is_err());
        // Missing fields are null; CSV numbers fill number columns.
        assert_eq!(log.append(&point("{}")).unwrap(), [2]);
        let row = parse_points(b"lat,lon,pop\n3,4,12.5\n", BodyFormat::Csv, &s).unwrap();
        assert_eq!(log.append(&row).unwrap(), [3]);
    }

    #[test]
    fn knn_and_radius_skip_tombstones_exactly() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let lon_lat: Vec<[f64; 2]> = (0..3000)
            .map(|_| [rng.random_range(-10.0..10.0), rng.random_range(40.0..50.0)])
            .collect();
        let current =
            Layer::from_lon_lat(&spec(), lon_lat.clone(), Attributes::default(), 1).unwrap();
        let mut log = ChangeLog::new(&current);
        let mut deleted = std::collections::HashSet::new();
        for _ in 0..1500 {
            let id = rng.random_range(0..3000u64);
            if deleted.insert(id) {
                log.delete(id, &current).unwrap();
            }
        }
        for _ in 0..50 {
            let (lon, lat) = (rng.random_range(-10.0..10.0), rng.random_range(40.0..50.0));
            let mut brute: Vec<(f64, u64)> = (0..3000u64)
                .filter(|i| !deleted.contains(i))
                .map(|i| {
                    let [plon, plat] = lon_lat[i as usize];
                    (crate::geo::geodesic_distance_m(lon, lat, plon, plat), i)
                })
                .collect();
            brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<u64> = brute.iter().take(20).map(|b| b.1).collect();
            assert_eq!(knn_ids(&current, lon, lat, 20), want);
            let within = current
                .radius(Position::LonLat(lon, lat), 50_000.0, 100_000)
                .unwrap();
            let got: Vec<u64> = within.hits.iter().map(|h| h.id as u64).collect();
            let want: Vec<u64> = brute
                .iter()
                .take_while(|b| b.0 <= 50_000.0)
                .map(|b| b.1)
                .collect();
            assert_eq!(got, want);
        }
    }
}
