//! A generated corpus of bad input: truncations at many offsets, flipped
//! header bytes, lying point counts, unsupported versions, zero-length files
//! and wrong extensions. Every case must return an error, and no case may
//! panic (checked with `catch_unwind`).

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use nalgebra::{Point3, Vector3};
use pointpipe::io::{self, kitti, las, pcd, ply};
use pointpipe::{PointCloud, Result};

/// Reads `bytes` as format `ext` without touching the disk; panics are caught
/// and turned into a test failure naming the case.
fn read_bytes(ext: &str, bytes: &[u8], case: &str) -> Result<usize> {
    let path = Path::new("corpus").with_extension(ext);
    let outcome = catch_unwind(AssertUnwindSafe(|| match ext {
        "las" | "laz" => las::read_from_bytes(bytes, &path),
        "ply" => ply::read_from_bytes(bytes, &path),
        "pcd" => pcd::read_from_bytes(bytes, &path),
        "bin" => kitti::read_from_bytes(bytes, &path),
        _ => unreachable!(),
    }));
    match outcome {
        Ok(r) => r.map(|(cloud, _)| cloud.len()),
        Err(_) => panic!("reader panicked on {case}"),
    }
}

fn small_cloud() -> PointCloud {
    let n = 200;
    let mut c = PointCloud::from_points(
        (0..n)
            .map(|i| Point3::new(i as f64 * 0.1, (i as f64).sin(), 1.0))
            .collect(),
    );
    c.intensity = Some((0..n).map(|i| i as f32).collect());
    c.normals = Some(vec![Vector3::new(0.0, 0.0, 1.0); n]);
    c
}

/// The bytes of [`small_cloud`] written by pointpipe's writer for `ext`.
fn written_bytes(ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(format!("s.{ext}"));
    io::write(&p, &small_cloud()).unwrap();
    std::fs::read(p).unwrap()
}

/// The LASzip VLR, the chunk table's byte offset and the chunk table of a
/// LAZ file in memory.
fn laz_chunk_table(bytes: &[u8]) -> (laz::LazVlr, usize, laz::laszip::ChunkTable) {
    use std::io::Cursor;
    let vlr = ::las::Header::new(Cursor::new(bytes.to_vec()))
        .unwrap()
        .laz_vlr()
        .unwrap();
    let data_start = u32::from_le_bytes(bytes[96..100].try_into().unwrap()) as usize;
    let table_at = i64::from_le_bytes(bytes[data_start..data_start + 8].try_into().unwrap());
    let mut cursor = Cursor::new(bytes);
    cursor.set_position(data_start as u64);
    let table = laz::laszip::ChunkTable::read_from(&mut cursor, &vlr).unwrap();
    (vlr, table_at as usize, table)
}

/// (extension, bytes, is_ascii) samples: real small LAS/LAZ files and files
/// written by pointpipe's writers, plus hand-written ASCII PLY/PCD.
fn samples() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut out = Vec::new();
    for rel in [
        "las/laz-rs/point-time-color.las",
        "las/laz-rs/point-time-color.laz",
        "las/pdal/test1_4.las",
    ] {
        if let Some(p) = common::shared_data(rel) {
            let ext = if rel.ends_with("laz") { "laz" } else { "las" };
            out.push((ext, std::fs::read(p).unwrap(), false));
        }
    }
    for ext in ["ply", "pcd", "bin", "laz"] {
        out.push((ext, written_bytes(ext), false));
    }
    let mut ascii_ply = String::from(
        "ply\nformat ascii 1.0\nelement vertex 50\nproperty float x\nproperty float y\n\
         property float z\nelement range_grid 60\nproperty list uchar int vertex_indices\nend_header\n",
    );
    for i in 0..50 {
        ascii_ply += &format!("{i}.5 {i}.25 0.125\n");
    }
    for i in 0..60 {
        ascii_ply += if i % 2 == 0 { "0\n" } else { "1 7\n" };
    }
    out.push(("ply", ascii_ply.into_bytes(), true));
    let mut ascii_pcd = String::from(
        "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\n\
         COUNT 1 1 1 1\nWIDTH 50\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 50\nDATA ascii\n",
    );
    for i in 0..50 {
        ascii_pcd += &format!("{i}.5 {i}.25 0.125 7\n");
    }
    out.push(("pcd", ascii_pcd.into_bytes(), true));
    out
}

/// Truncation offsets: every byte of the first 700, then 60 spread over the
/// rest of the file.
fn truncation_offsets(len: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len.min(700)).collect();
    v.extend((0..60).map(|k| 700 + (len.saturating_sub(700)) * k / 60));
    v.retain(|&o| o < len);
    v.dedup();
    v
}

#[test]
fn intact_samples_read() {
    for (ext, bytes, _) in samples() {
        assert!(read_bytes(ext, &bytes, "intact").unwrap() > 0, "{ext}");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let mut cases = 0;
    for (ext, bytes, ascii) in samples() {
        // In ASCII, a cut inside the last line still leaves a valid number.
        let last_line = if ascii {
            bytes[..bytes.len() - 1]
                .iter()
                .rev()
                .position(|&b| b == b'\n')
                .unwrap_or(0)
                + 1
        } else {
            0
        };
        for offset in truncation_offsets(bytes.len() - last_line) {
            if ext == "bin" && offset % 16 == 0 && offset > 0 {
                continue; // a shorter KITTI scan is still a valid scan
            }
            let case = format!("{ext} truncated to {offset} of {} bytes", bytes.len());
            let r = read_bytes(ext, &bytes[..offset], &case);
            assert!(r.is_err(), "{case} was accepted: {r:?}");
            cases += 1;
        }
    }
    eprintln!("{cases} truncation cases, all errors");
    assert!(cases > 3000);
}

#[test]
fn flipped_header_bytes_never_panic_and_magic_flips_are_errors() {
    let mut errors = 0;
    let mut cases = 0;
    for (ext, bytes, _) in samples() {
        let header_len = match ext {
            "bin" => 64,
            // The public header block of LAS 1.2 (1.4 adds 148 bytes of counts).
            "las" | "laz" => 227.min(bytes.len()),
            _ => bytes
                .windows(4)
                .position(|w| w == b"DATA" || w == b"end_")
                .map_or(200, |p| p + 20)
                .min(bytes.len()),
        };
        for i in 0..header_len {
            for mask in [0x01u8, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= mask;
                let case = format!("{ext} byte {i} ^ {mask:#x}");
                if read_bytes(ext, &b, &case).is_err() {
                    errors += 1;
                }
                cases += 1;
            }
        }
        if ext != "bin" {
            let mut b = bytes.clone();
            b[0] ^= 0x20;
            assert!(
                read_bytes(ext, &b, "magic").is_err(),
                "{ext}: magic flip accepted"
            );
        }
    }
    eprintln!("{cases} flipped-byte cases: {errors} errors, none panicked");
}

#[test]
fn headers_promising_more_points_are_errors() {
    for (ext, bytes, _) in samples() {
        let bigger: Vec<u8> = match ext {
            "las" | "laz" => {
                let mut b = bytes.clone();
                // Legacy point count (u32 at 107) and, for 1.4, the u64 at 247.
                let n = u32::from_le_bytes(b[107..111].try_into().unwrap());
                if n > 0 {
                    b[107..111].copy_from_slice(&(n + 1000).to_le_bytes());
                }
                if b[25] >= 4 {
                    let n = u64::from_le_bytes(b[247..255].try_into().unwrap());
                    b[247..255].copy_from_slice(&(n + 1000).to_le_bytes());
                }
                b
            }
            "ply" | "pcd" => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let key = if ext == "ply" {
                    "element vertex "
                } else {
                    "POINTS "
                };
                let at = text.find(key).unwrap() + key.len();
                let end = at + text[at..].find('\n').unwrap();
                let n: usize = text[at..end].parse().unwrap();
                let mut b = bytes[..at].to_vec();
                b.extend(format!("{}", n + 1000).bytes());
                b.extend(&bytes[end..]);
                if ext == "pcd" {
                    // Keep WIDTH consistent so that only the data is short.
                    let t = String::from_utf8_lossy(&b)
                        .replace(&format!("WIDTH {n}\n"), &format!("WIDTH {}\n", n + 1000));
                    b = t.into_bytes();
                }
                b
            }
            _ => continue,
        };
        let r = read_bytes(ext, &bigger, "count + 1000");
        let e = r.expect_err(&format!("{ext}: inflated count accepted"));
        eprintln!("{ext}: {e}");
    }
}

/// Found by `cargo fuzz` (read_las): a 7.7 kB file whose header claims
/// 3.8 billion records of 31,488 bytes made the reader allocate one 33 GB
/// chunk and abort. Such headers must be a clear error, found before any
/// record buffer is allocated.
#[test]
fn huge_record_length_and_count_are_errors_not_allocations() {
    let bytes = written_bytes("las");
    let point_format = bytes[104] & 0x3f;
    let record_len = u16::from_le_bytes(bytes[105..107].try_into().unwrap());
    for (new_record_len, count) in [
        (31_488u16, u32::MAX - 1),
        (65_535, 2_000_000),
        (record_len, u32::MAX),
    ] {
        let mut b = bytes.clone();
        b[105..107].copy_from_slice(&new_record_len.to_le_bytes());
        b[107..111].copy_from_slice(&count.to_le_bytes());
        if b[25] >= 4 {
            b[247..255].copy_from_slice(&u64::from(count).to_le_bytes());
        }
        let case = format!("format {point_format}, {count} records of {new_record_len} bytes");
        let e = read_bytes("las", &b, &case).expect_err(&case);
        let message = e.to_string();
        assert!(
            message.contains("truncated or its header is corrupt"),
            "{case}: {message}"
        );
    }
}

/// Found by `cargo fuzz` (read_las): a LAZ chunk table listing more
/// compressed bytes than the file holds made the `laz` crate's parallel
/// decoder size one buffer from their sum (a capacity-overflow panic, or an
/// allocation abort for large but finite sums). It must be a clear error.
#[test]
fn laz_chunk_table_larger_than_the_file_is_an_error() {
    let bytes = written_bytes("laz");
    let (vlr, table_at, table) = laz_chunk_table(&bytes);
    for byte_count in [u64::MAX, 3_000_000_000] {
        let mut corrupt = laz::laszip::ChunkTable::with_capacity(table.len());
        for (i, entry) in table.as_ref().iter().enumerate() {
            let mut entry = *entry;
            if i == 0 {
                entry.byte_count = byte_count;
            }
            corrupt.push(entry);
        }
        let mut b = bytes[..table_at].to_vec();
        corrupt.write_to(&mut b, &vlr).unwrap();
        let case = format!("first LAZ chunk of {byte_count} bytes");
        let e = read_bytes("laz", &b, &case).expect_err(&case);
        assert!(e.to_string().contains("chunk table lists"), "{case}: {e}");
    }
}

/// A variable-size LAZ chunk claiming more points than the whole file: the
/// `laz` decoder reserves the largest chunk's point count up front, so it
/// must be refused before decoding. Built from a valid file by declaring its
/// chunks variable-size (LASzip VLR `chunk_size = u32::MAX`) and rewriting
/// the chunk table with explicit point counts.
#[test]
fn laz_variable_chunk_with_more_points_than_the_file_is_an_error() {
    let cloud = small_cloud();
    let mut bytes = written_bytes("laz");
    let vlr_at = bytes
        .windows(14)
        .position(|w| w == b"laszip encoded")
        .expect("LASzip VLR")
        - 2;
    let chunk_size_at = vlr_at + 54 + 12;
    let (_, table_at, table) = laz_chunk_table(&bytes);
    assert_eq!(table.len(), 1, "one chunk for {} points", cloud.len());
    bytes[chunk_size_at..chunk_size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let variable = ::las::Header::new(std::io::Cursor::new(bytes.clone()))
        .unwrap()
        .laz_vlr()
        .unwrap();
    assert!(variable.uses_variable_size_chunks());
    for (points, ok) in [(cloud.len() as u64, true), (3_000_000_000, false)] {
        let mut rewritten = laz::laszip::ChunkTable::with_capacity(1);
        let mut entry = table.as_ref()[0];
        entry.point_count = points;
        rewritten.push(entry);
        let mut b = bytes[..table_at].to_vec();
        rewritten.write_to(&mut b, &variable).unwrap();
        let case = format!("variable-size chunk of {points} points");
        match read_bytes("laz", &b, &case) {
            Ok(n) => assert!(ok && n == cloud.len(), "{case}: read {n} points"),
            Err(e) => assert!(
                !ok && e.to_string().contains("header promises 200 in all"),
                "{case}: {e}"
            ),
        }
    }
}

#[test]
fn unsupported_versions_are_errors() {
    for (ext, bytes, _) in samples() {
        let b = match ext {
            "las" | "laz" => {
                let mut b = bytes.clone();
                b[24] = 2; // LAS 2.x does not exist
                b
            }
            "ply" => String::from_utf8_lossy(&bytes)
                .replacen("format ", "format binary_middle_endian 1.0\nformat ", 1)
                .replacen(
                    "format binary_middle_endian 1.0\nformat ascii 1.0",
                    "format zip 1.0",
                    1,
                )
                .into_bytes(),
            "pcd" => String::from_utf8_lossy(&bytes)
                .replacen("VERSION 0.7", "VERSION 0.9", 1)
                .into_bytes(),
            _ => continue,
        };
        assert!(read_bytes(ext, &b, "version").is_err(), "{ext}");
    }
}

#[test]
fn zero_length_and_wrong_extensions_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let exts = ["las", "laz", "ply", "pcd", "bin"];
    for ext in exts {
        let p = dir.path().join(format!("empty.{ext}"));
        std::fs::write(&p, b"").unwrap();
        let e = io::read(&p).expect_err(ext).to_string();
        assert!(e.contains("empty") && e.contains("empty."), "{e}");
    }
    for (ext, bytes, _) in samples() {
        for other in exts {
            let family = |a: &'static str| if a == "laz" { "las" } else { a };
            if family(other) == family(ext) {
                continue;
            }
            let p = dir.path().join(format!("wrong.{other}"));
            std::fs::write(&p, &bytes).unwrap();
            let r = catch_unwind(|| io::read(&p)).expect("no panic");
            let e = r.expect_err(&format!("{ext} content named .{other} accepted"));
            assert!(
                e.to_string().contains("wrong."),
                "error names the file: {e}"
            );
        }
    }
    for name in ["x.xyz", "noext", "x.txt"] {
        let p = dir.path().join(name);
        std::fs::write(&p, b"1 2 3\n").unwrap();
        assert!(io::read(&p).is_err());
    }
    assert!(io::read(dir.path().join("missing.pcd")).is_err());
    assert!(io::read(dir.path()).is_err());
}
