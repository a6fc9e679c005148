//! What to load (`NAME=PATH[,key=value...]`) and the limits every query obeys.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A layer to load: `NAME=PATH[,lat=COL][,lon=COL][,category=COL]`, as given
/// to `pointpipe serve --layer`.
///
/// `NAME` is 1–64 characters of `[A-Za-z0-9_.-]` (it is a URL segment);
/// `lat`/`lon` name the coordinate columns of a CSV file; `category` names
/// the column that category filters and `stats` use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerSpec {
    /// Layer name.
    pub name: String,
    /// File to load.
    pub path: PathBuf,
    /// CSV latitude column (default: found by name).
    pub lat_column: Option<String>,
    /// CSV longitude column (default: found by name).
    pub lon_column: Option<String>,
    /// Category column (default: `category`, `cc` or `country_code`).
    pub category_column: Option<String>,
}

impl FromStr for LayerSpec {
    type Err = Error;

    /// Parses `NAME=PATH[,key=value...]`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `layer` for a missing `=`, an
    /// invalid name, an empty path or an unknown or repeated key.
    fn from_str(s: &str) -> Result<LayerSpec> {
        let bad = |reason: &str| Error::invalid("layer", s, reason.to_string());
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=PATH[,lat=COL][,lon=COL][,category=COL]"))?;
        check_name(name).map_err(|reason| bad(&reason))?;
        let mut parts = rest.split(',');
        let path = parts.next().unwrap_or_default();
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        let mut spec = LayerSpec {
            name: name.to_string(),
            path: PathBuf::from(path),
            ..Default::default()
        };
        for option in parts {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| bad(&format!("option '{option}' is not key=value")))?;
            let slot = match key {
                "lat" => &mut spec.lat_column,
                "lon" => &mut spec.lon_column,
                "category" => &mut spec.category_column,
                _ => return Err(bad(&format!("unknown option '{key}' (lat, lon, category)"))),
            };
            if slot.replace(value.to_string()).is_some() {
                return Err(bad(&format!("option '{key}' given twice")));
            }
        }
        Ok(spec)
    }
}

/// Checks a layer name: 1–64 characters of `[A-Za-z0-9_.-]`.
///
/// # Errors
/// The reason, in words.
pub(super) fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("the name must have 1 to 64 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(format!("name '{name}' may only hold A-Z a-z 0-9 _ . -"));
    }
    Ok(())
}

/// Limits every query obeys, validated in one place ([`QueryLimits::k_ok`]
/// and friends) for the HTTP service and the `query` command alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryLimits {
    /// Largest `k` of a kNN query (≥ 1). Default 100.
    pub max_k: usize,
    /// Largest radius, metres for geographic layers and the layer's unit for
    /// cartesian ones. Default 50,000.
    pub max_radius: f64,
    /// Largest `limit` of a radius query. Default 100,000.
    pub max_limit: usize,
    /// Most queries in one batch request. Default 10,000.
    pub max_batch: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_k: 100,
            max_radius: 50_000.0,
            max_limit: 100_000,
            max_batch: 10_000,
        }
    }
}

impl QueryLimits {
    /// Checks the limits themselves.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero count or a radius that is not
    /// finite and positive.
    pub fn validate(&self) -> Result<()> {
        if self.max_k == 0 {
            return Err(Error::invalid("max_k", 0, "must be at least 1"));
        }
        if !(self.max_radius.is_finite() && self.max_radius > 0.0) {
            return Err(Error::invalid(
                "max_radius",
                self.max_radius,
                "must be finite and > 0",
            ));
        }
        if self.max_limit == 0 {
            return Err(Error::invalid("max_limit", 0, "must be at least 1"));
        }
        if self.max_batch == 0 {
            return Err(Error::invalid("max_batch", 0, "must be at least 1"));
        }
        Ok(())
    }

    /// The rule `k` obeys, in words (for error messages).
    pub fn k_rule(&self) -> String {
        format!("an integer in 1..={}", self.max_k)
    }

    /// The rule a radius obeys, in words.
    pub fn radius_rule(&self) -> String {
        format!("a number in (0, {}]", self.max_radius)
    }

    /// The rule `limit` obeys, in words.
    pub fn limit_rule(&self) -> String {
        format!("an integer in 1..={}", self.max_limit)
    }

    /// True when `k` is allowed.
    pub fn k_ok(&self, k: usize) -> bool {
        (1..=self.max_k).contains(&k)
    }

    /// True when `radius` is allowed (finite, > 0, ≤ the maximum).
    pub fn radius_ok(&self, radius: f64) -> bool {
        radius > 0.0 && radius <= self.max_radius
    }

    /// True when `limit` is allowed.
    pub fn limit_ok(&self, limit: usize) -> bool {
        (1..=self.max_limit).contains(&limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let s: LayerSpec = "cities=a/b.csv,lat=Y,lon=X,category=cc".parse().unwrap();
        assert_eq!(s.name, "cities");
        assert_eq!(s.path, PathBuf::from("a/b.csv"));
        assert_eq!(s.lat_column.as_deref(), Some("Y"));
        assert_eq!(s.category_column.as_deref(), Some("cc"));
        for bad in [
            "nopath",
            "=x.csv",
            "a b=x.csv",
            "a=",
            "a=x.csv,foo=1",
            "a=x.csv,lat=1,lat=2",
            "a=x.csv,lat",
        ] {
            assert!(bad.parse::<LayerSpec>().is_err(), "{bad}");
        }
    }
}
