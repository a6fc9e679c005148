//! Geographic layers from CSV files with a header row (`csv` crate).

use std::path::Path;

use rayon::prelude::*;

use super::LayerSpec;
use super::attributes::{Attributes, TextBuilder};
use crate::error::{Error, Result};

/// Header names recognised as latitude, compared case-insensitively.
const LAT_NAMES: [&str; 2] = ["lat", "latitude"];
/// Header names recognised as longitude, compared case-insensitively.
const LON_NAMES: [&str; 4] = ["lon", "lng", "long", "longitude"];

/// What a CSV layer file holds: `[lon, lat]` per data row and the other
/// columns as attributes.
pub(super) struct CsvContent {
    pub(super) lon_lat: Vec<[f64; 2]>,
    pub(super) attributes: Attributes,
}

/// Reads a CSV layer (see [`super::Layer::load`]). CRLF or LF line ends, an
/// optional UTF-8 byte-order mark, RFC 4180 quoting.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming the
/// file and line for a row whose number of fields differs from the header
/// (a file cut in its last row included), an unparsable or out-of-range
/// coordinate, invalid UTF-8, or a header without latitude/longitude columns.
pub(super) fn read(path: &Path, spec: &LayerSpec) -> Result<CsvContent> {
    let bytes = crate::pace::read_file(path).map_err(|e| Error::io(path, e))?;
    let raw = parse(&bytes, spec).map_err(|reason| Error::format(path, reason))?;
    Ok(CsvContent {
        lon_lat: raw.lon_lat,
        attributes: Attributes {
            names: raw.names,
            columns: raw
                .columns
                .into_iter()
                .map(|c| {
                    crate::pace::checkpoint();
                    c.finish()
                })
                .collect(),
        },
    })
}

/// A CSV table before its attribute columns are typed: `[lon, lat]` per
/// data row and the other columns' raw text.
pub(crate) struct CsvRaw {
    pub(crate) lon_lat: Vec<[f64; 2]>,
    pub(crate) names: Vec<String>,
    pub(crate) columns: Vec<TextBuilder>,
}

/// Parses CSV text (see [`read`]); the error is a message naming the line.
///
/// Large inputs are split at record boundaries and parsed in parallel (the
/// current rayon pool); the result and the first error are those of a
/// serial parse.
pub(crate) fn parse(bytes: &[u8], spec: &LayerSpec) -> std::result::Result<CsvRaw, String> {
    parse_in_chunks(bytes, spec, rayon::current_num_threads(), MIN_CHUNK_BYTES)
}

/// [`parse`] in chunks for `threads` threads, of at least `min_chunk_bytes`.
fn parse_in_chunks(
    bytes: &[u8],
    spec: &LayerSpec,
    threads: usize,
    min_chunk_bytes: usize,
) -> std::result::Result<CsvRaw, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(e, 1))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect::<Vec<_>>();
    let data_start = (reader.position().byte() as usize).min(bytes.len());
    let find = |given: &Option<String>,
                names: &[&str],
                what: &str|
     -> std::result::Result<usize, String> {
        let found = match given {
            Some(name) => headers.iter().position(|h| h == name),
            None => headers
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n))),
        };
        found.ok_or_else(|| {
            format!(
                "line 1: no {what} column (header: {}); name it with \
                 --layer NAME=PATH,lat=COL,lon=COL",
                headers.join(",")
            )
        })
    };
    let table = Table {
        lat_col: find(&spec.lat_column, &LAT_NAMES, "latitude")?,
        lon_col: find(&spec.lon_column, &LON_NAMES, "longitude")?,
        headers: &headers,
    };
    let attribute_cols: Vec<usize> = (0..headers.len())
        .filter(|&c| c != table.lat_col && c != table.lon_col)
        .collect();
    let data = &bytes[data_start..];
    let chunks: Vec<Chunk> = chunk_bounds(data, threads, min_chunk_bytes)
        .into_par_iter()
        .map(|range| table.parse_chunk(&data[range], &attribute_cols))
        .collect();
    // One chunk: its points are moved, not copied.
    let single = chunks.len() == 1;
    let mut lon_lat = if single {
        Vec::new()
    } else {
        Vec::with_capacity(chunks.iter().map(|c| c.lon_lat.len()).sum())
    };
    let mut columns: Vec<TextBuilder> = attribute_cols
        .iter()
        .map(|_| TextBuilder::default())
        .collect();
    // Lines before each chunk: the header, then 1 + the newlines inside
    // quoted fields per record.
    let mut line: u64 = 2;
    for chunk in chunks {
        if let Some((local, message)) = chunk.error {
            return Err(message(line + local));
        }
        line += chunk.lines;
        if single {
            lon_lat = chunk.lon_lat;
        } else {
            lon_lat.extend_from_slice(&chunk.lon_lat);
        }
        for (all, part) in columns.iter_mut().zip(chunk.columns) {
            all.append(part);
        }
        crate::pace::checkpoint();
    }
    Ok(CsvRaw {
        lon_lat,
        names: attribute_cols.iter().map(|&c| headers[c].clone()).collect(),
        columns,
    })
}

/// The header's facts a chunk parser needs.
struct Table<'a> {
    headers: &'a [String],
    lat_col: usize,
    lon_col: usize,
}

/// What a chunk of records gives: its points and columns, the lines it
/// spans, and its first error (lines counted from the chunk's first line,
/// and the message for the absolute line).
struct Chunk {
    lon_lat: Vec<[f64; 2]>,
    columns: Vec<TextBuilder>,
    lines: u64,
    error: Option<(u64, ChunkError)>,
}

type ChunkError = Box<dyn FnOnce(u64) -> String + Send>;

/// Rows after which a chunk reserves its buffers for the whole chunk.
const SIZE_SAMPLE_ROWS: usize = 256;

impl Chunk {
    /// Reserves the points and columns of a chunk of `total_bytes` from
    /// the sizes of the rows so far (`bytes_so_far` of input), plus 10 %:
    /// growing multi-megabyte buffers by doubling copies them, work a paced
    /// rebuild ([`crate::pace`]) cannot cut.
    fn reserve_like_sample(&mut self, bytes_so_far: u64, total_bytes: usize) {
        let rows = self.lon_lat.len();
        if rows == 0 || bytes_so_far == 0 {
            return;
        }
        let scale = total_bytes as f64 / bytes_so_far as f64 * 1.1;
        let more = |have: usize| ((have as f64 * scale) as usize).saturating_sub(have);
        self.lon_lat.reserve(more(rows));
        for c in &mut self.columns {
            c.reserve(more(rows), more(c.text_len()));
        }
    }
}

impl Table<'_> {
    fn parse_chunk(&self, data: &[u8], attribute_cols: &[usize]) -> Chunk {
        let mut chunk = Chunk {
            lon_lat: Vec::new(),
            columns: attribute_cols
                .iter()
                .map(|_| TextBuilder::default())
                .collect(),
            lines: 0,
            error: None,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(data);
        let mut record = csv::StringRecord::new();
        let expected = self.headers.len();
        // Only quoted fields hold newlines.
        let quoted = memchr::memchr(b'"', data).is_some();
        loop {
            let line = chunk.lines;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    chunk.error = Some((line, Box::new(move |at| csv_error(e, at))));
                    break;
                }
            }
            if record.len() != expected {
                let len = record.len();
                chunk.error = Some((
                    line,
                    Box::new(move |at| unequal_lengths(at, len as u64, expected as u64)),
                ));
                break;
            }
            chunk.lines += 1;
            if chunk.lines.is_multiple_of(256) {
                crate::pace::checkpoint();
            }
            if chunk.lon_lat.len() == SIZE_SAMPLE_ROWS {
                chunk.reserve_like_sample(reader.position().byte(), data.len());
            }
            if quoted {
                chunk.lines += record
                    .iter()
                    .map(|f| memchr::memchr_iter(b'\n', f.as_bytes()).count() as u64)
                    .sum::<u64>();
            }
            let lat = self.coordinate(&record, self.lat_col, -90.0, 90.0);
            let lon = self.coordinate(&record, self.lon_col, -180.0, 180.0);
            match (lat, lon) {
                (Ok(lat), Ok(lon)) => chunk.lon_lat.push([lon, lat]),
                (Err(message), _) | (_, Err(message)) => {
                    chunk.error = Some((line, message));
                    break;
                }
            }
            for (b, &c) in chunk.columns.iter_mut().zip(attribute_cols) {
                b.push(&record[c]);
            }
        }
        chunk
    }

    fn coordinate(
        &self,
        record: &csv::StringRecord,
        col: usize,
        lo: f64,
        hi: f64,
    ) -> std::result::Result<f64, ChunkError> {
        let text = record[col].trim();
        match text.parse::<f64>() {
            Ok(x) if (lo..=hi).contains(&x) => Ok(x),
            Ok(_) => {
                let (name, text) = (self.headers[col].clone(), text.to_string());
                Err(Box::new(move |line| {
                    format!("line {line}: {name} = {text} is outside [{lo}, {hi}]")
                }))
            }
            Err(_) => {
                let (name, text) = (self.headers[col].clone(), text.to_string());
                Err(Box::new(move |line| {
                    format!("line {line}: {name} = '{text}' is not a number")
                }))
            }
        }
    }
}

/// Inputs below this many bytes are parsed in one piece.
const MIN_CHUNK_BYTES: usize = 1 << 20;

/// Splits CSV records into about `4 × threads` byte ranges of at least
/// `min_bytes` that start and end at record boundaries: newlines outside
/// quoted fields. One range for one thread, when the input is small, or when a quote stands where RFC 4180 does not put
/// one (the boundaries could not be told without parsing).
fn chunk_bounds(data: &[u8], threads: usize, min_bytes: usize) -> Vec<std::ops::Range<usize>> {
    if threads < 2 {
        return std::iter::once(0..data.len()).collect();
    }
    let pieces = (4 * threads).min(data.len() / min_bytes.max(1));
    if pieces < 2 {
        return std::iter::once(0..data.len()).collect();
    }
    let Some(quoted) = quoted_spans(data) else {
        return std::iter::once(0..data.len()).collect();
    };
    let mut bounds = vec![0];
    let mut spans = quoted.iter().peekable();
    // Where the previous search ended: spans before it are consumed.
    let mut searched = 0;
    for p in 1..pieces {
        let mut at = (data.len() * p / pieces).max(searched);
        loop {
            let Some(nl) = memchr::memchr(b'\n', &data[at..]).map(|i| at + i) else {
                at = data.len();
                break;
            };
            while spans.next_if(|s| s.end <= nl).is_some() {}
            match spans.peek() {
                Some(s) if s.start < nl => at = s.end,
                _ => {
                    at = nl + 1;
                    break;
                }
            }
        }
        searched = at;
        if at > *bounds.last().unwrap_or(&0) && at < data.len() {
            bounds.push(at);
        }
    }
    bounds.push(data.len());
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

/// The byte ranges of the quoted fields (opening to closing quote), or
/// `None` when a quote is not where RFC 4180 puts one: at the start of a
/// field, doubled inside a quoted field, closing it before a delimiter or a
/// line end.
fn quoted_spans(data: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let mut spans = Vec::new();
    let mut quotes = memchr::memchr_iter(b'"', data);
    while let Some(open) = quotes.next() {
        if open > 0 && !matches!(data[open - 1], b',' | b'\n' | b'\r') {
            return None;
        }
        loop {
            let close = quotes.next()?;
            if data.get(close + 1) == Some(&b'"') {
                quotes.next();
                continue;
            }
            if !matches!(data.get(close + 1), None | Some(b',' | b'\n' | b'\r')) {
                return None;
            }
            spans.push(open..close + 1);
            break;
        }
    }
    Some(spans)
}

/// A `csv` error met at `line`, as a message naming the line.
fn csv_error(e: csv::Error, line: u64) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => unequal_lengths(line, *len, *expected_len),
        csv::ErrorKind::Utf8 { err, .. } => format!("line {line}: invalid UTF-8 ({err})"),
        _ => format!("line {line}: {e}"),
    }
}

/// The message for a record of `len` fields where the header has `expected`.
fn unequal_lengths(line: u64, len: u64, expected: u64) -> String {
    format!(
        "line {line}: {len} fields where the header has {expected} \
         (a row with another number of fields, or a file cut short)"
    )
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    type Parsed = (Vec<[f64; 2]>, Vec<super::super::Column>);

    /// The parse of `text` in one piece and in many: points, columns, or
    /// the error message.
    fn both(text: &str) -> [std::result::Result<Parsed, String>; 2] {
        let spec: LayerSpec = "t=t.csv".parse().unwrap();
        [usize::MAX, 1].map(|min| {
            parse_in_chunks(text.as_bytes(), &spec, 8, min).map(|raw| {
                (
                    raw.lon_lat,
                    raw.columns.into_iter().map(TextBuilder::into_raw).collect(),
                )
            })
        })
    }

    #[test]
    fn chunked_parse_equals_the_serial_one() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let cells = [
            "plain",
            "",
            "\"quoted, comma\"",
            "\"two\nlines\"",
            "\"\"\"x\"\"\"",
            "a\"b",
            " \"c\"",
            "\"cr\r\nlf\"",
            "ü",
        ];
        for case in 0..300 {
            let mut text = String::from("lat,lon,name,note\n");
            let rows = rng.random_range(0..40);
            for row in 0..rows {
                let lat = if case % 50 == 7 && row == rows / 2 {
                    95.0
                } else {
                    rng.random_range(-90.0..90.0)
                };
                let end = if rng.random_bool(0.3) { "\r\n" } else { "\n" };
                let extra = if case % 60 == 11 && row == rows / 3 {
                    ",x"
                } else {
                    ""
                };
                let name = cells[rng.random_range(0..cells.len())];
                let note = cells[rng.random_range(0..cells.len())];
                text.push_str(&format!(
                    "{lat:.4},{:.4},{name},{note}{extra}{end}",
                    rng.random_range(-180.0..180.0)
                ));
                if rng.random_bool(0.05) {
                    text.push('\n');
                }
            }
            let [serial, chunked] = both(&text);
            assert_eq!(serial, chunked, "{text:?}");
        }
    }

    #[test]
    fn boundaries_skip_newlines_inside_quotes() {
        let data = b"1,2,\"a\nb\"\n3,4,x\n5,6,\"\"\"\n\"\n7,8,y\n";
        for bounds in (1..data.len()).map(|_| chunk_bounds(data, 8, 1)) {
            for r in &bounds {
                assert!(r.start == 0 || data[r.start - 1] == b'\n');
            }
            assert!(bounds.iter().all(|r| ![5, 30].contains(&r.start)));
        }
        // A quote inside an unquoted field: one piece.
        assert_eq!(chunk_bounds(b"1,2,a\"b\n3,4,c\n", 8, 1).len(), 1);
    }
}
