//! The LAS 1.4 "extra bytes" VLR: named, typed per-point fields after the
//! standard point record.
//!
//! Source: ASPRS LAS Specification 1.4 R15, section 2.5 ("Extra Bytes",
//! user id `LASF_Spec`, record id 4). The VLR payload is an array of 192-byte
//! descriptors, one per field, in the order the fields follow the standard
//! record. laspy, PDAL and CloudCompare read the fields by name from it (they
//! accept it in files of any LAS version).
//!
//! Descriptor layout (little endian, 192 bytes):
//!
//! | bytes   | field                                   |
//! |---------|-----------------------------------------|
//! | 0–1     | reserved                                |
//! | 2       | data_type (0 = opaque, 9 = f32, 10 = f64, ...) |
//! | 3       | options (bit 0 no_data, 1 min, 2 max, 3 scale, 4 offset); for type 0 the byte count |
//! | 4–35    | name, NUL padded                        |
//! | 36–39   | unused                                  |
//! | 40–47   | no_data                                 |
//! | 48–63   | deprecated                              |
//! | 64–71   | min                                     |
//! | 72–87   | deprecated                              |
//! | 88–95   | max                                     |
//! | 96–111  | deprecated                              |
//! | 112–119 | scale (f64)                             |
//! | 120–135 | deprecated                              |
//! | 136–143 | offset (f64)                            |
//! | 144–159 | deprecated                              |
//! | 160–191 | description, NUL padded                 |

use crate::error::{Error, Result};

/// User id of the extra-bytes VLR.
pub const EXTRA_BYTES_USER_ID: &str = "LASF_Spec";
/// Record id of the extra-bytes VLR.
pub const EXTRA_BYTES_RECORD_ID: u16 = 4;
/// Size of one descriptor, bytes.
pub const DESCRIPTOR_LEN: usize = 192;

/// The storage type of one extra-bytes field (LAS 1.4 table 24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraBytesType {
    /// Undocumented bytes (`data_type` 0); the count is stored in `options`.
    Opaque(u8),
    /// `u8` (1).
    U8,
    /// `i8` (2).
    I8,
    /// `u16` (3).
    U16,
    /// `i16` (4).
    I16,
    /// `u32` (5).
    U32,
    /// `i32` (6).
    I32,
    /// `u64` (7).
    U64,
    /// `i64` (8).
    I64,
    /// `f32` (9).
    F32,
    /// `f64` (10).
    F64,
}

impl ExtraBytesType {
    /// The `data_type` code of the descriptor.
    pub fn code(self) -> u8 {
        match self {
            ExtraBytesType::Opaque(_) => 0,
            ExtraBytesType::U8 => 1,
            ExtraBytesType::I8 => 2,
            ExtraBytesType::U16 => 3,
            ExtraBytesType::I16 => 4,
            ExtraBytesType::U32 => 5,
            ExtraBytesType::I32 => 6,
            ExtraBytesType::U64 => 7,
            ExtraBytesType::I64 => 8,
            ExtraBytesType::F32 => 9,
            ExtraBytesType::F64 => 10,
        }
    }

    /// Bytes per point of this field.
    pub fn size(self) -> usize {
        match self {
            ExtraBytesType::Opaque(n) => usize::from(n),
            ExtraBytesType::U8 | ExtraBytesType::I8 => 1,
            ExtraBytesType::U16 | ExtraBytesType::I16 => 2,
            ExtraBytesType::U32 | ExtraBytesType::I32 | ExtraBytesType::F32 => 4,
            ExtraBytesType::U64 | ExtraBytesType::I64 | ExtraBytesType::F64 => 8,
        }
    }

    /// The type of a `data_type` code (and the `options` byte, which holds
    /// the size of opaque fields). `None` for the deprecated array types
    /// 11–30 and unknown codes.
    pub fn from_code(code: u8, options: u8) -> Option<Self> {
        Some(match code {
            0 => ExtraBytesType::Opaque(options),
            1 => ExtraBytesType::U8,
            2 => ExtraBytesType::I8,
            3 => ExtraBytesType::U16,
            4 => ExtraBytesType::I16,
            5 => ExtraBytesType::U32,
            6 => ExtraBytesType::I32,
            7 => ExtraBytesType::U64,
            8 => ExtraBytesType::I64,
            9 => ExtraBytesType::F32,
            10 => ExtraBytesType::F64,
            _ => return None,
        })
    }
}

/// One extra-bytes field: a 192-byte descriptor in the VLR.
///
/// Only name, type and description are interpreted; the other descriptor
/// bytes (no_data, min, max, scale, offset and the options bits) are kept
/// verbatim in `raw` when the descriptor was parsed, so that an input file's
/// descriptors are written back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraBytesField {
    /// Field name (at most 32 bytes of ASCII), e.g. `NormalX`.
    pub name: String,
    /// Storage type.
    pub data_type: ExtraBytesType,
    /// Free text (at most 32 bytes of ASCII).
    pub description: String,
    raw: [u8; DESCRIPTOR_LEN],
}

impl ExtraBytesField {
    /// A new field with no no_data/min/max/scale/offset.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when the name or description is longer than
    /// 32 bytes or not ASCII, or the name is empty.
    pub fn new(name: &str, data_type: ExtraBytesType, description: &str) -> Result<Self> {
        let mut raw = [0u8; DESCRIPTOR_LEN];
        raw[2] = data_type.code();
        raw[3] = match data_type {
            ExtraBytesType::Opaque(n) => n,
            _ => 0,
        };
        put_text(&mut raw[4..36], "extra-bytes name", name, false)?;
        put_text(
            &mut raw[160..192],
            "extra-bytes description",
            description,
            true,
        )?;
        Ok(ExtraBytesField {
            name: name.to_string(),
            data_type,
            description: description.to_string(),
            raw,
        })
    }

    /// The 192 descriptor bytes.
    pub fn to_bytes(&self) -> [u8; DESCRIPTOR_LEN] {
        self.raw
    }

    /// Parses one descriptor. `None` for a type pointpipe does not know
    /// (deprecated array types).
    pub fn from_bytes(bytes: &[u8; DESCRIPTOR_LEN]) -> Option<Self> {
        let data_type = ExtraBytesType::from_code(bytes[2], bytes[3])?;
        Some(ExtraBytesField {
            name: get_text(&bytes[4..36]),
            data_type,
            description: get_text(&bytes[160..192]),
            raw: *bytes,
        })
    }
}

fn put_text(dst: &mut [u8], name: &'static str, text: &str, allow_empty: bool) -> Result<()> {
    if !text.is_ascii() || text.len() > dst.len() || (!allow_empty && text.is_empty()) {
        return Err(Error::invalid(
            name,
            text,
            format!("must be 1 to {} ASCII bytes", dst.len()),
        ));
    }
    dst[..text.len()].copy_from_slice(text.as_bytes());
    Ok(())
}

fn get_text(src: &[u8]) -> String {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    String::from_utf8_lossy(&src[..end]).into_owned()
}

/// The extra-bytes VLR holding `fields` in order.
pub fn extra_bytes_vlr(fields: &[ExtraBytesField]) -> las::Vlr {
    las::Vlr {
        user_id: EXTRA_BYTES_USER_ID.to_string(),
        record_id: EXTRA_BYTES_RECORD_ID,
        description: "Extra Bytes Record".to_string(),
        data: fields.iter().flat_map(|f| f.to_bytes()).collect(),
    }
}

/// True when `vlr` is an extra-bytes VLR.
pub fn is_extra_bytes_vlr(vlr: &las::Vlr) -> bool {
    vlr.user_id == EXTRA_BYTES_USER_ID && vlr.record_id == EXTRA_BYTES_RECORD_ID
}

/// The fields described by the extra-bytes VLR(s) of a header, in order.
///
/// Files written by some tools carry several extra-bytes VLRs (the sample
/// `append-bug.laz` has two); their descriptors are concatenated.
///
/// # Errors
/// [`Error::Format`] (naming `path`) when a VLR payload is not a multiple of
/// 192 bytes or holds a type pointpipe cannot size.
pub fn read_extra_bytes_fields(
    header: &las::Header,
    path: &std::path::Path,
) -> Result<Vec<ExtraBytesField>> {
    let mut fields = Vec::new();
    for vlr in header.all_vlrs().filter(|v| is_extra_bytes_vlr(v)) {
        if vlr.data.len() % DESCRIPTOR_LEN != 0 {
            return Err(Error::format(
                path,
                format!(
                    "extra-bytes VLR of {} bytes is not a multiple of {DESCRIPTOR_LEN}",
                    vlr.data.len()
                ),
            ));
        }
        for chunk in vlr.data.chunks_exact(DESCRIPTOR_LEN) {
            let mut bytes = [0u8; DESCRIPTOR_LEN];
            bytes.copy_from_slice(chunk);
            let field = ExtraBytesField::from_bytes(&bytes).ok_or_else(|| {
                Error::format(
                    path,
                    format!("extra-bytes field with unsupported data_type {}", chunk[2]),
                )
            })?;
            fields.push(field);
        }
    }
    Ok(fields)
}

/// The fields pointpipe appends: `NormalX`, `NormalY`, `NormalZ`,
/// `Curvature`, all `f32` (16 bytes per point).
///
/// A point without a normal has the zero vector and a NaN curvature.
pub fn normal_fields() -> Vec<ExtraBytesField> {
    [
        ("NormalX", "unit normal x"),
        ("NormalY", "unit normal y"),
        ("NormalZ", "unit normal z"),
        ("Curvature", "surface variation l0/(l0+l1+l2)"),
    ]
    .into_iter()
    .filter_map(|(name, description)| {
        ExtraBytesField::new(name, ExtraBytesType::F32, description).ok()
    })
    .collect()
}

/// Bytes per point of the fields from [`normal_fields`].
pub const NORMAL_FIELDS_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_layout_matches_spec() {
        let f = ExtraBytesField::new("NormalX", ExtraBytesType::F32, "unit normal x").unwrap();
        let b = f.to_bytes();
        assert_eq!(b.len(), 192);
        assert_eq!(b[2], 9);
        assert_eq!(&b[4..11], b"NormalX");
        assert_eq!(b[11], 0);
        assert_eq!(&b[160..173], b"unit normal x");
        assert_eq!(ExtraBytesField::from_bytes(&b), Some(f));
    }

    #[test]
    fn normal_fields_are_four_f32() {
        let fields = normal_fields();
        let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["NormalX", "NormalY", "NormalZ", "Curvature"]);
        let size: usize = fields.iter().map(|f| f.data_type.size()).sum();
        assert_eq!(size, NORMAL_FIELDS_LEN);
        let vlr = extra_bytes_vlr(&fields);
        assert_eq!(vlr.data.len(), 4 * DESCRIPTOR_LEN);
        assert!(is_extra_bytes_vlr(&vlr));
    }

    #[test]
    fn rejects_long_or_empty_names() {
        assert!(ExtraBytesField::new("", ExtraBytesType::U8, "").is_err());
        assert!(ExtraBytesField::new(&"x".repeat(33), ExtraBytesType::U8, "").is_err());
        assert!(ExtraBytesField::new("é", ExtraBytesType::U8, "").is_err());
    }

    #[test]
    fn opaque_type_keeps_its_size() {
        let f = ExtraBytesField::new("pad", ExtraBytesType::Opaque(3), "").unwrap();
        let b = f.to_bytes();
        assert_eq!((b[2], b[3]), (0, 3));
        assert_eq!(ExtraBytesField::from_bytes(&b).unwrap().data_type.size(), 3);
    }
}
