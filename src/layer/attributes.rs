//! Per-point attribute columns of a layer, returned with every answer.

use serde_json::{Number, Value};

/// One attribute column: a value per point.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Text, all values in one arena (`ends[i]` is the end of value `i`).
    Text {
        /// The concatenated values.
        text: String,
        /// End offset of each value in `text`.
        ends: Vec<usize>,
    },
    /// Numbers; NaN stands for a missing value (an empty CSV cell), returned
    /// as JSON `null`.
    Number(Vec<f64>),
    /// Arbitrary JSON values (GeoJSON properties).
    Json(Vec<Value>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::Text { ends, .. } => ends.len(),
            Column::Number(v) => v.len(),
            Column::Json(v) => v.len(),
        }
    }

    /// True when the column holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as JSON: a string, a number (integers without a fraction),
    /// `null` for a missing number, or the stored JSON value.
    ///
    /// # Panics
    /// When `i >= self.len()` (a programming error).
    pub fn json(&self, i: usize) -> Value {
        match self {
            Column::Text { .. } => Value::String(self.text(i).into_owned()),
            Column::Number(v) => number(v[i]),
            Column::Json(v) => v[i].clone(),
        }
    }

    /// Value `i` as text, the form category filters and `stats` compare:
    /// the text itself, a number as JSON prints it, a JSON string's content,
    /// other JSON values serialised; a missing value is the empty string.
    ///
    /// # Panics
    /// When `i >= self.len()` (a programming error).
    pub fn text(&self, i: usize) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Column::Text { text, ends } => {
                let start = if i == 0 { 0 } else { ends[i - 1] };
                Cow::Borrowed(&text[start..ends[i]])
            }
            Column::Number(v) if v[i].is_nan() => Cow::Borrowed(""),
            Column::Number(v) => Cow::Owned(number(v[i]).to_string()),
            Column::Json(v) => match &v[i] {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                Value::Null => Cow::Borrowed(""),
                other => Cow::Owned(other.to_string()),
            },
        }
    }

    /// Writes value `i` as JSON (as [`Column::json`] gives it) to `out`.
    ///
    /// # Errors
    /// When `serde_json` cannot serialise a stored JSON value.
    ///
    /// # Panics
    /// When `i >= self.len()` (a programming error).
    pub(crate) fn write_json(&self, i: usize, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Column::Text { .. } => serde_json::to_writer(out, self.text(i).as_ref()),
            Column::Number(v) => serde_json::to_writer(out, &number(v[i])),
            Column::Json(v) => serde_json::to_writer(out, &v[i]),
        }
    }

    /// An empty column of the same kind.
    pub fn empty_like(&self) -> Column {
        match self {
            Column::Text { .. } => Column::Text {
                text: String::new(),
                ends: Vec::new(),
            },
            Column::Number(_) => Column::Number(Vec::new()),
            Column::Json(_) => Column::Json(Vec::new()),
        }
    }

    /// The values `i` for which `keep(i)` is true, in order.
    pub fn select(&self, keep: impl Fn(usize) -> bool) -> Column {
        self.select_with_room(keep, None)
    }

    /// [`Column::select`] into buffers with room for all of `self` and of
    /// `room` (the values to be appended next): growing a buffer of
    /// megabytes copies it, work a paced rebuild ([`crate::pace`]) cannot
    /// cut.
    pub(crate) fn select_with_room(
        &self,
        keep: impl Fn(usize) -> bool,
        room: Option<&Column>,
    ) -> Column {
        let room_values = room.map_or(0, Column::len);
        let keep = |i: usize| {
            if i % 4096 == 4095 {
                crate::pace::checkpoint();
            }
            keep(i)
        };
        match self {
            Column::Text { text, ends } => {
                let room_bytes = match room {
                    Some(Column::Text { text, .. }) => text.len(),
                    _ => 0,
                };
                let mut b = TextBuilder::default();
                b.reserve(ends.len() + room_values, text.len() + room_bytes);
                for i in (0..self.len()).filter(|&i| keep(i)) {
                    b.push(&self.text(i));
                }
                Column::Text {
                    text: b.text,
                    ends: b.ends,
                }
            }
            Column::Number(v) => Column::Number(select_values(v, keep, room_values)),
            Column::Json(v) => Column::Json(select_values(v, keep, room_values)),
        }
    }

    /// Appends the values of `other`, a column of the same kind.
    ///
    /// # Errors
    /// The kinds when they differ (a programming error upstream).
    pub fn extend(&mut self, other: &Column) -> Result<(), String> {
        match (self, other) {
            (Column::Text { text, ends }, Column::Text { .. }) => {
                for i in 0..other.len() {
                    text.push_str(&other.text(i));
                    ends.push(text.len());
                }
                Ok(())
            }
            (Column::Number(a), Column::Number(b)) => {
                a.extend_from_slice(b);
                Ok(())
            }
            (Column::Json(a), Column::Json(b)) => {
                a.extend(b.iter().cloned());
                Ok(())
            }
            (a, b) => Err(format!(
                "cannot append a {} column to a {} column",
                b.kind(),
                a.kind()
            )),
        }
    }

    /// `"text"`, `"number"` or `"json"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Column::Text { .. } => "text",
            Column::Number(_) => "number",
            Column::Json(_) => "json",
        }
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Column::Text { text, ends } => text.capacity() + ends.capacity() * 8,
            Column::Number(v) => v.capacity() * 8,
            Column::Json(v) => v.capacity() * size_of::<Value>(),
        }
    }
}

/// The values `v[i]` for which `keep(i)` is true, in order, in a vector
/// with room for `room` more.
fn select_values<T: Clone>(v: &[T], keep: impl Fn(usize) -> bool, room: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len() + room);
    out.extend(
        v.iter()
            .enumerate()
            .filter(|&(i, _)| keep(i))
            .map(|(_, x)| x.clone()),
    );
    out
}

/// A JSON number for `x`: an integer when `x` is integral and within ±2^53,
/// `null` when `x` is NaN or infinite.
pub(super) fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_992.0 {
        Value::Number(Number::from(x as i64))
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// Builds a text column value by value.
#[derive(Debug, Default)]
pub(crate) struct TextBuilder {
    text: String,
    ends: Vec<usize>,
}

impl TextBuilder {
    /// The values as a text column, untyped.
    pub(crate) fn into_raw(self) -> Column {
        Column::Text {
            text: self.text,
            ends: self.ends,
        }
    }

    /// Appends the values of `other`.
    pub(crate) fn append(&mut self, other: TextBuilder) {
        let base = self.text.len();
        if self.ends.is_empty() {
            *self = other;
            return;
        }
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|&e| base + e));
    }

    /// Reserves room for `values` more values of `bytes` more text.
    pub(crate) fn reserve(&mut self, values: usize, bytes: usize) {
        self.ends.reserve(values);
        self.text.reserve(bytes);
    }

    /// Bytes of text so far.
    pub(crate) fn text_len(&self) -> usize {
        self.text.len()
    }

    pub(crate) fn push(&mut self, value: &str) {
        self.text.push_str(value);
        self.ends.push(self.text.len());
    }

    /// The column: numbers when every non-empty value is a finite decimal
    /// number without a leading zero (so codes like "007" stay text) and at
    /// least one value is non-empty; text otherwise.
    pub(crate) fn finish(mut self) -> Column {
        let mut numbers = Vec::with_capacity(self.ends.len());
        let mut any = false;
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            if i % 4096 == 4095 {
                crate::pace::checkpoint();
            }
            let s = &self.text[start..end];
            start = end;
            if s.is_empty() {
                numbers.push(f64::NAN);
                continue;
            }
            match parse_plain_number(s) {
                Some(x) => {
                    any = true;
                    numbers.push(x);
                }
                None => {
                    self.text.shrink_to_fit();
                    self.ends.shrink_to_fit();
                    return Column::Text {
                        text: self.text,
                        ends: self.ends,
                    };
                }
            }
        }
        if any {
            Column::Number(numbers)
        } else {
            self.text.shrink_to_fit();
            Column::Text {
                text: self.text,
                ends: self.ends,
            }
        }
    }
}

/// A text column typed as a file's column is ([`TextBuilder::finish`]:
/// numbers when every non-empty value is one); other columns unchanged.
pub(crate) fn retype(column: Column) -> Column {
    match column {
        Column::Text { text, ends } => TextBuilder { text, ends }.finish(),
        other => other,
    }
}

/// A finite number written plainly (`-12`, `3.5`, `1e3`), not `nan`, `inf`,
/// `+5`, `.5`, nor with a leading zero before other digits (`007`).
pub(crate) fn parse_plain_number(s: &str) -> Option<f64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let first = digits.as_bytes().first()?;
    if !first.is_ascii_digit() {
        return None;
    }
    if digits.len() > 1 && *first == b'0' && digits.as_bytes()[1].is_ascii_digit() {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The attribute columns of a layer: names and one [`Column`] each, all of
/// the layer's length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    /// Column names, in file order.
    pub names: Vec<String>,
    /// The columns, parallel to `names`.
    pub columns: Vec<Column>,
}

impl Attributes {
    /// The index of the column called `name` (exact match), if any.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The attributes of point `i` as a JSON object, columns in file order.
    pub fn object(&self, i: usize) -> serde_json::Map<String, Value> {
        self.names
            .iter()
            .zip(&self.columns)
            .map(|(name, column)| (name.clone(), column.json(i)))
            .collect()
    }

    /// The same names and column kinds, no values (a layer's schema).
    pub fn empty_like(&self) -> Attributes {
        Attributes {
            names: self.names.clone(),
            columns: self.columns.iter().map(Column::empty_like).collect(),
        }
    }

    /// Approximate heap bytes held by all columns.
    pub fn heap_bytes(&self) -> usize {
        self.columns.iter().map(Column::heap_bytes).sum()
    }
}

/// Every point's attributes rendered once as the members of a JSON object
/// (`"name":value,...`, columns in order), row-major.
///
/// Why: an answer copies one slice per point instead of reading each column
/// (one cache miss per point instead of one per cell).
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows {
    /// [`ROWS_PER_BLOCK`] points each (the last one fewer).
    blocks: Vec<RowBlock>,
}

/// The rendered rows of consecutive points: their bytes and where each ends.
#[derive(Debug, Clone, Default)]
struct RowBlock {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

/// Points per block (and per parallel task).
const ROWS_PER_BLOCK: usize = 1 << 14;

impl Rows {
    /// Renders the `n` points of `attributes`; `None` when a value does not
    /// serialise (answers then read the columns). Parallel in the current
    /// rayon pool.
    pub(crate) fn render(attributes: &Attributes, n: usize) -> Option<Rows> {
        use rayon::prelude::*;
        let prefixes: Vec<Vec<u8>> = attributes
            .names
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let mut p = if c == 0 { Vec::new() } else { vec![b','] };
                serde_json::to_writer(&mut p, name).ok()?;
                p.push(b':');
                Some(p)
            })
            .collect::<Option<_>>()?;
        if prefixes.is_empty() {
            return Some(Rows::default());
        }
        let blocks = (0..n.div_ceil(ROWS_PER_BLOCK))
            .into_par_iter()
            .map(|b| {
                let rows = b * ROWS_PER_BLOCK..n.min((b + 1) * ROWS_PER_BLOCK);
                let mut block = RowBlock {
                    bytes: Vec::new(),
                    ends: Vec::with_capacity(rows.len()),
                };
                let first = rows.start;
                let count = rows.len();
                for i in rows {
                    if i % 256 == 255 {
                        crate::pace::checkpoint();
                    }
                    if i - first == 256 {
                        // Doubling a block of megabytes copies it: reserve
                        // from the first rows' sizes, plus 10 %.
                        let more = (block.bytes.len() * count / 256) * 11 / 10;
                        block.bytes.reserve(more.saturating_sub(block.bytes.len()));
                    }
                    for (prefix, column) in prefixes.iter().zip(&attributes.columns) {
                        block.bytes.extend_from_slice(prefix);
                        column.write_json(i, &mut block.bytes).ok()?;
                    }
                    block.ends.push(u32::try_from(block.bytes.len()).ok()?);
                }
                block.bytes.shrink_to_fit();
                Some(block)
            })
            .collect::<Option<_>>()?;
        Some(Rows { blocks })
    }

    /// The members of point `i` (empty when the layer has no attributes).
    ///
    /// # Panics
    /// When `i` is not a rendered point (a programming error).
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        if self.blocks.is_empty() {
            return &[];
        }
        let block = &self.blocks[i / ROWS_PER_BLOCK];
        let j = i % ROWS_PER_BLOCK;
        let start = if j == 0 {
            0
        } else {
            block.ends[j - 1] as usize
        };
        &block.bytes[start..block.ends[j] as usize]
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.bytes.capacity() + b.ends.capacity() * 4)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(values: &[&str]) -> Column {
        let mut b = TextBuilder::default();
        for v in values {
            b.push(v);
        }
        b.finish()
    }

    #[test]
    fn numbers_and_text_are_told_apart() {
        let c = column(&["1", "", "2.5"]);
        assert!(matches!(c, Column::Number(_)));
        assert_eq!(
            (0..3).map(|i| c.json(i)).collect::<Vec<_>>(),
            [serde_json::json!(1), Value::Null, serde_json::json!(2.5)]
        );
        let c = column(&["007", "12"]);
        assert!(matches!(c, Column::Text { .. }));
        assert_eq!(c.text(0), "007");
        assert_eq!(c.json(1), Value::String("12".into()));
        assert!(matches!(column(&["nan", "1"]), Column::Text { .. }));
        assert!(matches!(column(&["", ""]), Column::Text { .. }));
        let n = column(&["3", "-4.5", ""]);
        assert_eq!(n.json(0), serde_json::json!(3));
        assert_eq!(n.json(1), serde_json::json!(-4.5));
        assert_eq!(n.json(2), Value::Null);
        assert_eq!(n.text(0), "3");
        assert_eq!(n.text(2), "");
    }
}
