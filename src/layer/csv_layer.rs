//! Geographic layers from CSV files with a header row (`csv` crate).

use std::path::Path;

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
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let raw = parse(&bytes, spec).map_err(|reason| Error::format(path, reason))?;
    Ok(CsvContent {
        lon_lat: raw.lon_lat,
        attributes: Attributes {
            names: raw.names,
            columns: raw.columns.into_iter().map(TextBuilder::finish).collect(),
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
pub(crate) fn parse(bytes: &[u8], spec: &LayerSpec) -> std::result::Result<CsvRaw, String> {
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
    let lat_col = find(&spec.lat_column, &LAT_NAMES, "latitude")?;
    let lon_col = find(&spec.lon_column, &LON_NAMES, "longitude")?;
    let attribute_cols: Vec<usize> = (0..headers.len())
        .filter(|&c| c != lat_col && c != lon_col)
        .collect();
    let mut builders: Vec<TextBuilder> = attribute_cols
        .iter()
        .map(|_| TextBuilder::default())
        .collect();
    let mut lon_lat = Vec::new();
    let mut record = csv::StringRecord::new();
    // The csv crate's own line numbers are off by one after CRLF line ends:
    // count lines here (1 + newlines inside quoted fields per record).
    let mut next_line: u64 = 2;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e, next_line)),
        }
        let line = next_line;
        next_line += 1 + record
            .iter()
            .map(|f| f.matches('\n').count() as u64)
            .sum::<u64>();
        let coordinate = |col: usize, lo: f64, hi: f64| -> std::result::Result<f64, String> {
            let text = record[col].trim();
            match text.parse::<f64>() {
                Ok(x) if (lo..=hi).contains(&x) => Ok(x),
                Ok(_) => Err(format!(
                    "line {line}: {} = {text} is outside [{lo}, {hi}]",
                    headers[col]
                )),
                Err(_) => Err(format!(
                    "line {line}: {} = '{text}' is not a number",
                    headers[col]
                )),
            }
        };
        let lat = coordinate(lat_col, -90.0, 90.0)?;
        let lon = coordinate(lon_col, -180.0, 180.0)?;
        lon_lat.push([lon, lat]);
        for (b, &c) in builders.iter_mut().zip(&attribute_cols) {
            b.push(&record[c]);
        }
    }
    Ok(CsvRaw {
        lon_lat,
        names: attribute_cols.iter().map(|&c| headers[c].clone()).collect(),
        columns: builders,
    })
}

/// A `csv` error met at `line`, as a message naming the line.
fn csv_error(e: csv::Error, line: u64) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "line {line}: {len} fields where the header has {expected_len} \
             (a row with another number of fields, or a file cut short)"
        ),
        csv::ErrorKind::Utf8 { err, .. } => format!("line {line}: invalid UTF-8 ({err})"),
        _ => format!("line {line}: {e}"),
    }
}
