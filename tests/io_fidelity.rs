//! Issue 26, I/O half: nothing lost, nothing misleading. LAS/LAZ round
//! trips keep every byte of every point record, headers are checked before
//! the `las` crate allocates from them, CRS units are read, and the other
//! formats keep what they can hold. Crafted files are made here, in a
//! tempdir; real files come from `../shared/data/las`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pointpipe::io::{self, LinearUnit};

fn pointpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pointpipe"))
}

/// Header and raw (decompressed) point records as the `las` crate reads
/// them: an independent view of the file.
fn raw(path: &Path) -> (las::Header, Vec<u8>) {
    let mut r = las::Reader::from_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let h = r.header().clone();
    let d = r.read_all().unwrap();
    (h, d.raw_bytes().to_vec())
}

/// Content VLRs (every VLR and EVLR but the LASzip one) as comparable tuples.
fn content_vlrs(h: &las::Header) -> Vec<(String, u16, Vec<u8>)> {
    h.all_vlrs()
        .filter(|v| v.user_id != "laszip encoded")
        .map(|v| (v.user_id.clone(), v.record_id, v.data.clone()))
        .collect()
}

/// A deterministic byte stream (64-bit LCG).
struct Bytes(u64);
impl Bytes {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
}

/// Writes a LAS/LAZ file with the given header and raw records through the
/// `las` crate.
fn write_raw(path: &Path, builder: las::Builder, records: Vec<u8>) {
    let header = builder.into_header().unwrap();
    let data = las::PointDataBuilder::new()
        .for_header(&header)
        .build_from_bytes(records)
        .unwrap();
    let mut w = las::Writer::from_path(path, header).unwrap();
    w.write_points(&data).unwrap();
    w.close().unwrap();
}

/// A crafted file of point format `format` (LAS 1.4, or 1.2 for 0–3 and 1.3
/// for 4–5) with 3 extra bytes per point, every record byte random except
/// GPS time (finite values).
fn crafted(dir: &Path, format: u8, n: usize) -> PathBuf {
    let version = match format {
        0..=3 => (1, 2),
        4 | 5 => (1, 3),
        _ => (1, 4),
    };
    let mut b = las::Builder::from(version);
    b.point_format = las::point::Format::new(format).unwrap();
    b.point_format.extra_bytes = 3;
    b.transforms = las::Vector {
        x: las::Transform {
            scale: 0.01,
            offset: 1000.0,
        },
        y: las::Transform {
            scale: 0.001,
            offset: -50.0,
        },
        z: las::Transform {
            scale: 0.1,
            offset: 0.0,
        },
    };
    let len = usize::from(b.point_format.len());
    let time_at = if b.point_format.is_extended { 22 } else { 20 };
    let mut bytes = Bytes(u64::from(format) + 7);
    let mut records = vec![0u8; n * len];
    for (i, rec) in records.chunks_exact_mut(len).enumerate() {
        rec.iter_mut().for_each(|x| *x = bytes.next());
        // Return numbers the version allows (1–5 before LAS 1.4); the flag
        // bits of the byte stay random.
        if !b.point_format.is_extended {
            rec[14] = (rec[14] & 0xc0) | (rec[14] % 6) | ((rec[14] >> 3) % 6) << 3;
        }
        if b.point_format.has_gps_time {
            rec[time_at..time_at + 8].copy_from_slice(&(i as f64 * 0.25).to_le_bytes());
        }
    }
    let path = dir.join(format!("crafted{format}.las"));
    write_raw(&path, b, records);
    path
}

/// Item 1 and 20 (crafted): every point format 0–10 with random flag bits,
/// classification 0–255 (with and without the overlap bit), scanner channel,
/// NIR, wave packets and extra bytes comes back byte for byte from LAS and
/// LAZ output.
#[test]
fn every_point_format_round_trips_every_record_byte() {
    let dir = tempfile::tempdir().unwrap();
    for format in 0..=10u8 {
        let input = crafted(dir.path(), format, 300);
        let (h_in, r_in) = raw(&input);
        let cloud = io::read(&input).unwrap();
        for ext in ["las", "laz"] {
            let out = dir.path().join(format!("out{format}.{ext}"));
            io::write(&out, &cloud).unwrap_or_else(|e| panic!("format {format} {ext}: {e}"));
            let (h_out, r_out) = raw(&out);
            let mut pf = *h_out.point_format();
            pf.is_compressed = false;
            assert_eq!(&pf, h_in.point_format(), "format {format} {ext}");
            assert_eq!(h_out.version(), h_in.version(), "format {format} {ext}");
            assert!(r_out == r_in, "format {format} -> {ext}: records differ");
        }
    }
}

/// Item 20: classification 12 in formats 6–10 is class 12, not class 1 with
/// the overlap bit; class 200 stays 200; the overlap bit stays a bit.
#[test]
fn extended_classification_is_not_the_overlap_bit() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = las::Builder::from((1, 4));
    b.point_format = las::point::Format::new(6).unwrap();
    let len = usize::from(b.point_format.len());
    let mut records = vec![0u8; 3 * len];
    for (rec, (class, flags)) in
        records
            .chunks_exact_mut(len)
            .zip([(12u8, 0u8), (200, 0), (2, 0b1000)])
    {
        rec[14] = 0x11;
        rec[15] = flags;
        rec[16] = class;
    }
    let input = dir.path().join("classes.las");
    write_raw(&input, b, records);
    let out = dir.path().join("out.las");
    let status = pointpipe()
        .args(["convert".as_ref(), input.as_os_str(), out.as_os_str()])
        .status()
        .unwrap();
    assert!(status.success());
    let back = io::read(&out).unwrap();
    let a = back.extras.las_attributes.unwrap();
    assert_eq!(a.classification, [12, 200, 2]);
    assert_eq!(a.flags, [0, 0, 0b1000]);
    assert_eq!(raw(&out).1, raw(&input).1);
}

/// A LAS 1.4 file with the given EVLRs (written by the `las` crate).
fn with_evlrs(dir: &Path, name: &str, evlrs: Vec<las::Vlr>) -> PathBuf {
    let mut b = las::Builder::from((1, 4));
    b.point_format = las::point::Format::new(6).unwrap();
    b.evlrs = evlrs;
    let len = usize::from(b.point_format.len());
    let mut records = vec![0u8; 2 * len];
    records[len] = 7;
    let path = dir.join(name);
    write_raw(&path, b, records);
    path
}

const OREGON_FT: &str = r#"PROJCS["NAD83(HARN) / Oregon GIC Lambert (ft)",GEOGCS["NAD83(HARN)",DATUM["NAD83_High_Accuracy_Reference_Network",SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic_2SP"],PARAMETER["false_easting",1312335.958],UNIT["foot",0.3048],AUTHORITY["EPSG","2992"]]"#;

fn wkt_evlr(wkt: &str) -> las::Vlr {
    las::Vlr {
        user_id: "LASF_Projection".into(),
        record_id: 2112,
        description: "OGC WKT".into(),
        data: wkt.as_bytes().to_vec(),
    }
}

/// Item 20: a CRS in the second EVLR is read, reported and written back,
/// with the first EVLR.
#[test]
fn crs_in_a_later_evlr_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = las::Vlr {
        user_id: "pointpipe".into(),
        record_id: 1,
        description: "first".into(),
        data: vec![1, 2, 3],
    };
    let input = with_evlrs(dir.path(), "evlrs.las", vec![first, wkt_evlr(OREGON_FT)]);
    let (cloud, report) = io::read_with_report(&input).unwrap();
    assert_eq!(
        report.crs.as_deref(),
        Some("WKT: NAD83(HARN) / Oregon GIC Lambert (ft)")
    );
    assert_eq!(report.unit, Some(LinearUnit::InternationalFoot));
    for ext in ["las", "laz"] {
        let out = dir.path().join(format!("out.{ext}"));
        io::write(&out, &cloud).unwrap();
        let h = io::las::read_header(&out).unwrap();
        let ids: Vec<_> = h.evlrs().iter().map(|v| v.user_id.as_str()).collect();
        assert_eq!(ids, ["pointpipe", "LASF_Projection"], "{ext}");
        assert_eq!(io::read_with_report(&out).unwrap().1.crs, report.crs);
    }
}

/// Offset of the first EVLR's 64-bit length field in [`with_evlrs`] files
/// (375-byte header, no VLRs, 2 × 30-byte records, then the EVLR whose
/// length sits 20 bytes into its header).
const EVLR_LENGTH_AT: usize = 375 + 60 + 20;

/// Item 16: an EVLR whose length says 2^62 (or 2^63, or 4.5 GiB) is a clear
/// error in the reader, the batch tile reader and `info`, not an abort.
#[test]
fn huge_evlr_length_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let good = with_evlrs(dir.path(), "good.las", vec![wkt_evlr(OREGON_FT)]);
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(
        u64::from_le_bytes(
            bytes[EVLR_LENGTH_AT..EVLR_LENGTH_AT + 8]
                .try_into()
                .unwrap()
        ),
        OREGON_FT.len() as u64
    );
    for length in [1u64 << 62, 1 << 63, 4_831_838_208] {
        let mut b = bytes.clone();
        b[EVLR_LENGTH_AT..EVLR_LENGTH_AT + 8].copy_from_slice(&length.to_le_bytes());
        let path = dir.path().join("huge.las");
        std::fs::write(&path, &b).unwrap();
        let err = io::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("EVLR 0") && err.contains(&length.to_string()),
            "{err}"
        );
        let err = io::las::records::read_las_tile(&path).unwrap_err();
        assert!(err.to_string().contains("EVLR"), "{err}");
        assert!(pointpipe::batch::tiles::read_tile_info(&path).is_err());
        let out = pointpipe().arg("info").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
    }
}

/// Item 19: a scale of 0, NaN, ±Inf or 1e300, or an offset of NaN, Inf or
/// 1e300, is refused with an error naming the field.
#[test]
fn unusable_scale_or_offset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = with_evlrs(dir.path(), "good.las", Vec::new());
    let bytes = std::fs::read(&good).unwrap();
    assert!(io::read(&good).is_ok());
    let cases = [
        (131, 0.0, "x scale"),
        (139, f64::NAN, "y scale"),
        (147, f64::INFINITY, "z scale"),
        (131, f64::NEG_INFINITY, "x scale"),
        (131, 1e300, "x scale"),
        (155, f64::NAN, "x offset"),
        (163, f64::INFINITY, "y offset"),
        (171, 1e300, "z offset"),
    ];
    for (at, value, field) in cases {
        let mut b = bytes.clone();
        b[at..at + 8].copy_from_slice(&f64::to_le_bytes(value));
        let path = dir.path().join("bad.las");
        std::fs::write(&path, &b).unwrap();
        let err = io::read(&path).unwrap_err().to_string();
        assert!(err.contains(field), "{field} = {value}: {err}");
        assert!(io::las::records::read_las_tile(&path).is_err());
    }
}

/// Rewrites a single-chunk LAZ file (LASzip compressor 2) as the point-wise
/// compressor 1 writes it: no chunk-table offset before the points, no chunk
/// table after them, compressor field 1 in the LASzip VLR. A single chunk's
/// arithmetic-coded stream is what the point-wise compressor writes.
fn as_pointwise(chunked: &[u8]) -> Vec<u8> {
    let u16_at = |at: usize| u16::from_le_bytes(chunked[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(chunked[at..at + 4].try_into().unwrap());
    let header_size = usize::from(u16_at(94));
    let data_start = u32_at(96) as usize;
    let mut out = chunked[..data_start].to_vec();
    let mut at = header_size;
    for _ in 0..u32_at(100) {
        if &chunked[at + 2..at + 16] == b"laszip encoded" {
            assert_eq!(u16_at(at + 54), 2, "expected the chunked compressor");
            out[at + 54..at + 56].copy_from_slice(&1u16.to_le_bytes());
        }
        at += 54 + usize::from(u16_at(at + 20));
    }
    let table =
        i64::from_le_bytes(chunked[data_start..data_start + 8].try_into().unwrap()) as usize;
    out.extend_from_slice(&chunked[data_start + 8..table]);
    out
}

/// Item 18: LAZ from LASzip's point-wise compressor (no chunk table) is
/// decoded sequentially and gives the points of the same data as LAS.
#[test]
fn pointwise_laz_without_chunk_table_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let input = crafted(dir.path(), 3, 2000);
    let cloud = io::read(&input).unwrap();
    let laz = dir.path().join("chunked.laz");
    io::write(&laz, &cloud).unwrap();
    let pointwise = dir.path().join("pointwise.laz");
    std::fs::write(&pointwise, as_pointwise(&std::fs::read(&laz).unwrap())).unwrap();
    let (back, report) =
        io::read_with_report(&pointwise).unwrap_or_else(|e| panic!("point-wise LAZ refused: {e}"));
    assert_eq!(report.points_in_file, 2000);
    assert_eq!(back.points, cloud.points);
    assert_eq!(back.extras.las_attributes, cloud.extras.las_attributes);
    assert_eq!(back.time, cloud.time);
}

/// Item 8: linear units from WKT1, WKT2 and GeoTIFF keys, and from the
/// shared files (Autzen: international feet; epsg_4326: degrees).
#[test]
fn crs_linear_units_are_read() {
    use pointpipe::io::las::wkt_linear_unit;
    assert_eq!(
        wkt_linear_unit(OREGON_FT),
        Some(LinearUnit::InternationalFoot)
    );
    let us_ft = r#"PROJCS["NAD83 / Texas North (ftUS)",GEOGCS["NAD83",UNIT["degree",0.0174532925199433]],UNIT["US survey foot",0.304800609601219]]"#;
    assert_eq!(wkt_linear_unit(us_ft), Some(LinearUnit::UsSurveyFoot));
    let utm = r#"COMPD_CS["WGS 84 / UTM 32N + EGM96",PROJCS["WGS 84 / UTM zone 32N",GEOGCS["WGS 84",UNIT["degree",0.0174532925199433]],UNIT["metre",1]],VERT_CS["EGM96 height",UNIT["metre",1]]]"#;
    assert_eq!(wkt_linear_unit(utm), Some(LinearUnit::Metre));
    let wkt2 = r#"PROJCRS["WGS 84 / UTM zone 33N",BASEGEOGCRS["WGS 84",ANGLEUNIT["degree",0.0174532925199433]],CONVERSION["UTM zone 33N",PARAMETER["False easting",500000,LENGTHUNIT["metre",1]]],CS[Cartesian,2],AXIS["(E)",east],AXIS["(N)",north],LENGTHUNIT["metre",1]]"#;
    assert_eq!(wkt_linear_unit(wkt2), Some(LinearUnit::Metre));
    let geo = r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],UNIT["degree",0.0174532925199433]]"#;
    assert_eq!(wkt_linear_unit(geo), Some(LinearUnit::Degree));
    assert_eq!(wkt_linear_unit("LOCAL_CS[\"x\"]"), None);

    if let Some(p) = common::shared_data("las/pdal/autzen_trim.las") {
        let (cloud, report) = io::read_with_report(&p).unwrap();
        assert_eq!(report.unit, Some(LinearUnit::InternationalFoot));
        assert_eq!(cloud.linear_unit(), Some(LinearUnit::InternationalFoot));
        let out = pointpipe().arg("info").arg(&p).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("unit:        international foot"), "{text}");
    }
    if let Some(p) = common::shared_data("las/pdal/epsg_4326.las") {
        let (cloud, report) = io::read_with_report(&p).unwrap();
        assert_eq!(report.unit, Some(LinearUnit::Degree));
        assert!(cloud.linear_unit().is_some_and(|u| u.is_angular()));
        let out = pointpipe()
            .args(["info", "--json"])
            .arg(&p)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["unit"], "deg");
    }
}

/// Every LAS/LAZ file under `../shared/data/las`.
fn shared_las_files() -> Vec<PathBuf> {
    let Some(root) = common::shared_data("las") else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "las" || e == "laz") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 16, "the manifest lists 16 LAS/LAZ files");
    files
}

/// Items 1 and 20 (round-trip property on real data): every shared LAS/LAZ
/// file through `pointpipe convert` to LAS and to LAZ keeps version, point
/// format, scale, offset, point count, every content VLR and EVLR, GPS time
/// type and every point record byte for byte (compared through the `las`
/// crate's raw records, not pointpipe's decoding). LAS 1.3 internal
/// waveform data (simple1_3.las) is kept after the points.
#[test]
fn every_shared_las_file_converts_to_las_and_laz_without_changing_a_field() {
    let dir = tempfile::tempdir().unwrap();
    for input in shared_las_files() {
        let (h_in, r_in) = raw(&input);
        for ext in ["las", "laz"] {
            let out = dir.path().join(format!("out.{ext}"));
            let status = pointpipe()
                .args(["--quiet", "convert"])
                .arg(&input)
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "{input:?} -> {ext}");
            let (h_out, r_out) = raw(&out);
            let name = format!("{} -> {ext}", input.display());
            let mut pf = *h_out.point_format();
            pf.is_compressed = false;
            let mut pf_in = *h_in.point_format();
            pf_in.is_compressed = false;
            assert_eq!(pf, pf_in, "{name}");
            assert_eq!(h_out.version(), h_in.version(), "{name}");
            assert_eq!(h_out.transforms(), h_in.transforms(), "{name}");
            assert_eq!(h_out.number_of_points(), h_in.number_of_points(), "{name}");
            assert_eq!(h_out.gps_time_type(), h_in.gps_time_type(), "{name}");
            assert_eq!(content_vlrs(&h_out), content_vlrs(&h_in), "{name}");
            assert!(r_out == r_in, "{name}: point records differ");
            let (a, b) = (io::read(&input).unwrap(), io::read(&out).unwrap());
            assert_eq!(a.extras.las_attributes, b.extras.las_attributes, "{name}");
        }
    }
}

/// The waveform data packet record of `simple1_3.las` (LAS 1.3, internal
/// waveforms) is written after the points and the header points at it.
#[test]
fn las_1_3_internal_waveform_data_is_kept() {
    let Some(input) = common::shared_data("las/laspy-2.7.0-sdist/simple1_3.las") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wave.las");
    io::write(&out, &io::read(&input).unwrap()).unwrap();
    let (a, b) = (std::fs::read(&input).unwrap(), std::fs::read(&out).unwrap());
    let start = |b: &[u8]| u64::from_le_bytes(b[227..235].try_into().unwrap()) as usize;
    assert!(start(&a) > 0 && start(&b) > 0);
    assert_eq!(&b[start(&b)..], &a[start(&a)..], "waveform data record");
    let encoding = u16::from_le_bytes([b[6], b[7]]);
    assert_eq!(encoding & 0b110, 0b010, "internal waveform bit");
}

/// Item 5 (LAS output): `normals IN.las OUT.las` stores the normals as the
/// extra-bytes fields batch writes, next to every input field, and they read
/// back equal to the PLY output of the same command.
#[test]
fn normals_to_las_writes_the_normal_fields() {
    let Some(input) = common::shared_data("las/laz-rs/point-time-color.las") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (las_out, ply_out) = (dir.path().join("n.las"), dir.path().join("n.ply"));
    for out in [&las_out, &ply_out] {
        let status = pointpipe()
            .args(["--quiet", "normals", "--knn", "10"])
            .arg(&input)
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let header = io::las::read_header(&las_out).unwrap();
    let names: Vec<String> = io::las::extra_bytes::read_extra_bytes_fields(&header, &las_out)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["NormalX", "NormalY", "NormalZ", "Curvature"]);
    let (las, ply) = (io::read(&las_out).unwrap(), io::read(&ply_out).unwrap());
    let (a, b) = (las.normals.unwrap(), ply.normals.unwrap());
    assert_eq!(a.len(), 1065);
    assert!(a.iter().filter(|n| n.norm() > 0.5).count() > 1000);
    assert_eq!(a, b);
    // Every input field is still there, byte for byte, before the normals.
    let (_, r_in) = raw(&input);
    let (_, r_out) = raw(&las_out);
    for (i, o) in r_in.chunks_exact(34).zip(r_out.chunks_exact(34 + 16)) {
        assert_eq!(i, &o[..34]);
    }
    // LAS -> LAS again replaces the fields instead of adding a second set.
    let again = dir.path().join("again.las");
    io::write(&again, &io::read(&las_out).unwrap()).unwrap();
    assert_eq!(raw(&again).1, r_out);
}

/// The non-waveform point format PLY/PCD keep (wave packets have no field
/// there).
fn without_waveform(format: u8) -> u8 {
    match format {
        4 => 1,
        5 => 3,
        9 => 6,
        10 => 8,
        f => f,
    }
}

/// Item 2: every shared LAS/LAZ file through PLY (and PCD) and back to LAS
/// keeps LAS version, point format (less wave packets), scale, offset, CRS,
/// positions (quantised back to the same integers), intensity, GPS time,
/// classification, returns, flags, scan angle, user data, point source id,
/// RGB (8-bit in PCD) and NIR. `epsg_4326.las` (degrees, scale 1e-7) was
/// 55 m off after a PLY round trip.
#[test]
fn las_through_ply_and_pcd_and_back_keeps_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    for input in shared_las_files() {
        let (cloud, report) = io::read_with_report(&input).unwrap();
        let h_in = cloud.extras.las_header.as_ref().unwrap();
        for ext in ["ply", "pcd"] {
            let mid = dir.path().join(format!("mid.{ext}"));
            let out = dir.path().join(format!("back_{ext}.las"));
            for (a, b) in [(&input, &mid), (&mid, &out)] {
                let status = pointpipe()
                    .args(["--quiet", "convert"])
                    .arg(a)
                    .arg(b)
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            let name = format!("{} via {ext}", input.display());
            let (back, back_report) = io::read_with_report(&out).unwrap();
            let h = back.extras.las_header.as_ref().unwrap();
            assert_eq!(h.version(), h_in.version(), "{name}");
            assert_eq!(
                h.point_format().to_u8().unwrap(),
                without_waveform(h_in.point_format().to_u8().unwrap()),
                "{name}"
            );
            assert_eq!(h.transforms(), h_in.transforms(), "{name}");
            assert_eq!(back_report.crs, report.crs, "{name}");
            assert_eq!(back_report.unit, report.unit, "{name}");
            // PCD: f32 around a local origin; exact unless the file's
            // precision is finer than f32 can hold there (test1_4.las,
            // scale 1.2e-6 at 1.7e6: a warning says so).
            let t = h_in.transforms();
            let fine = t.x.scale.min(t.y.scale).min(t.z.scale) < 1e-5;
            if ext == "ply" || !fine {
                assert_eq!(back.points, cloud.points, "{name}");
            }
            assert_eq!(back.intensity, cloud.intensity, "{name}");
            assert_eq!(back.time, cloud.time, "{name}");
            let (a, b) = (
                cloud.extras.las_attributes.as_ref().unwrap(),
                back.extras.las_attributes.as_ref().unwrap(),
            );
            assert_eq!(b.classification, a.classification, "{name}");
            assert_eq!(b.return_number, a.return_number, "{name}");
            assert_eq!(b.number_of_returns, a.number_of_returns, "{name}");
            assert_eq!(b.flags, a.flags, "{name}");
            assert_eq!(b.scan_angle, a.scan_angle, "{name}");
            assert_eq!(b.user_data, a.user_data, "{name}");
            assert_eq!(b.point_source_id, a.point_source_id, "{name}");
            assert_eq!(b.nir, a.nir, "{name}");
            match ext {
                "ply" => assert_eq!(b.color, a.color, "{name}"),
                _ => {
                    let eight = |c: &[[u16; 3]]| -> Vec<[u16; 3]> {
                        let wide = c.iter().flatten().any(|&v| v > 255);
                        c.iter()
                            .map(|p| p.map(|v| if wide { v >> 8 } else { v }))
                            .collect()
                    };
                    assert_eq!(
                        b.color.as_deref().map(eight),
                        a.color.as_deref().map(eight),
                        "{name}"
                    );
                }
            }
        }
    }
}

/// Item 2: KITTI reflectance survives `.bin` → LAS → `.bin` in [0, 1]
/// (0.99 came back as 64,880).
#[test]
fn kitti_reflectance_round_trips_through_las() {
    let dir = tempfile::tempdir().unwrap();
    let reflectance = [0.0f32, 0.99, 0.5, 1.0, 0.123];
    let mut bytes = Vec::new();
    for (i, r) in reflectance.iter().enumerate() {
        for v in [i as f32, 2.0 * i as f32, 0.5, *r] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let bin = dir.path().join("scan.bin");
    std::fs::write(&bin, &bytes).unwrap();
    let (las, back) = (dir.path().join("scan.las"), dir.path().join("back.bin"));
    for (a, b) in [(&bin, &las), (&las, &back)] {
        let status = pointpipe()
            .args(["--quiet", "convert"])
            .arg(a)
            .arg(b)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let cloud = io::read(&back).unwrap();
    for (got, want) in cloud.intensity.unwrap().iter().zip(reflectance) {
        assert!((got - want).abs() <= 1.0 / 65535.0, "{got} vs {want}");
    }
}

/// The `FIELDS`, `SIZE` and `TYPE` lines and the pointpipe comments of a PCD.
fn pcd_header(path: &Path) -> (String, String, String, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    let end = bytes
        .windows(12)
        .position(|w| w == b"DATA binary\n")
        .unwrap();
    let text = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .to_string()
    };
    let comments = text
        .lines()
        .filter(|l| l.starts_with("# pointpipe"))
        .map(str::to_string)
        .collect();
    (line("FIELDS "), line("SIZE "), line("TYPE "), comments)
}

/// Item 3: a PCD written from georeferenced LAS (Autzen, State Plane feet)
/// has float32 x/y/z that PCL and Open3D read, relative to a local origin
/// recorded in the header; pointpipe adds it back to the last 0.01 ft.
#[test]
fn pcd_from_las_is_float32_around_a_recorded_origin() {
    let Some(input) = common::shared_data("las/pdal/autzen_trim.las") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcd = dir.path().join("autzen.pcd");
    let status = pointpipe()
        .args(["--quiet", "convert"])
        .arg(&input)
        .arg(&pcd)
        .status()
        .unwrap();
    assert!(status.success());
    let (fields, sizes, types, comments) = pcd_header(&pcd);
    assert!(
        fields.starts_with("x y z intensity time rgb classification"),
        "{fields}"
    );
    assert!(sizes.starts_with("4 4 4 "), "{sizes}");
    assert!(types.starts_with("F F F "), "{types}");
    let origin: Vec<f64> = comments
        .iter()
        .find_map(|c| c.strip_prefix("# pointpipe origin "))
        .expect("origin comment")
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    let cloud = io::read(&input).unwrap();
    // The first record's float32 x y z are local coordinates, as a PCL or
    // Open3D user sees them: small and non-zero.
    let bytes = std::fs::read(&pcd).unwrap();
    let data = bytes
        .windows(12)
        .position(|w| w == b"DATA binary\n")
        .unwrap()
        + 12;
    let record = 4 + 4 + 4 + 4 + 8 + 4 + 1 + 1 + 1 + 4 + 1 + 2 + 1;
    assert_eq!(bytes.len() - data, cloud.len() * record);
    let f = |at: usize| f32::from_le_bytes(bytes[data + at..data + at + 4].try_into().unwrap());
    let p = cloud.points[0];
    for (k, c) in [p.x, p.y, p.z].into_iter().enumerate() {
        let local = f64::from(f(4 * k));
        assert!(local.abs() < 10_000.0, "{local}");
        assert!(
            (local + origin[k] - c).abs() < 1e-3,
            "{local} + {} vs {c}",
            origin[k]
        );
    }
    let back = io::read(&pcd).unwrap();
    for (a, b) in cloud.points.iter().zip(&back.points) {
        assert!((a - b).abs().max() < 0.005, "{a} vs {b}");
    }
}

/// Item 18: an ASCII PLY with `nan` / `inf` tokens (as `pcl_pcd2ply` writes
/// for organised clouds) reads, with those points dropped and counted.
#[test]
fn ascii_ply_with_nan_and_inf_tokens_drops_those_points() {
    let text = "ply\nformat ascii 1.0\nelement vertex 6\nproperty float x\nproperty float y\n\
                property float z\nproperty float intensity\nend_header\n\
                1 2 3 0.5\nnan nan nan 0\n4 5 6 nan\n-inf 0 0 1\n0 Infinity 0 1\n7 8 -9 1\n";
    let (cloud, report) =
        io::ply::read_from_bytes(text.as_bytes(), Path::new("organised.ply")).unwrap();
    assert_eq!(report.points_in_file, 6);
    assert_eq!(report.dropped_non_finite, 3);
    assert_eq!(
        cloud.points,
        [
            nalgebra::Point3::new(1.0, 2.0, 3.0),
            nalgebra::Point3::new(4.0, 5.0, 6.0),
            nalgebra::Point3::new(7.0, 8.0, -9.0)
        ]
    );
    let i = cloud.intensity.unwrap();
    assert!(i[0] == 0.5 && !i[1].is_finite() && i[2] == 1.0);
}

/// Fuzz seeds (issue 26 item 16: the corpus had no LAS 1.4 file with EVLRs):
/// with `POINTPIPE_FUZZ_SEEDS=DIR`, writes LAS 1.4 files with one and two
/// EVLRs (LAS and LAZ), every point format with extra bytes, a point-wise
/// LAZ, and the crafted EVLR-length and scale cases into `DIR` (see
/// `fuzz/README.md`). Without the variable it only checks that the seeds
/// are made.
#[test]
fn fuzz_seeds_for_las_with_evlrs() {
    let dir = tempfile::tempdir().unwrap();
    let target = std::env::var_os("POINTPIPE_FUZZ_SEEDS").map(PathBuf::from);
    let first = las::Vlr {
        user_id: "pointpipe".into(),
        record_id: 1,
        description: "first".into(),
        data: vec![1, 2, 3],
    };
    let mut seeds = vec![
        with_evlrs(dir.path(), "evlr1.las", vec![wkt_evlr(OREGON_FT)]),
        with_evlrs(dir.path(), "evlr2.las", vec![first, wkt_evlr(OREGON_FT)]),
    ];
    for f in [0u8, 3, 5, 8, 10] {
        seeds.push(crafted(dir.path(), f, 20));
    }
    let laz = dir.path().join("evlr2.laz");
    io::write(&laz, &io::read(&seeds[1]).unwrap()).unwrap();
    seeds.push(laz.clone());
    let pointwise = dir.path().join("pointwise.laz");
    let chunked = dir.path().join("chunked.laz");
    io::write(&chunked, &io::read(&seeds[3]).unwrap()).unwrap();
    std::fs::write(&pointwise, as_pointwise(&std::fs::read(&chunked).unwrap())).unwrap();
    seeds.push(pointwise);
    let mut huge = std::fs::read(&seeds[0]).unwrap();
    huge[EVLR_LENGTH_AT..EVLR_LENGTH_AT + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let huge_path = dir.path().join("evlr_2_62.las");
    std::fs::write(&huge_path, huge).unwrap();
    seeds.push(huge_path);
    for s in &seeds {
        assert!(s.exists());
    }
    if let Some(target) = target {
        std::fs::create_dir_all(&target).unwrap();
        for s in &seeds {
            std::fs::copy(s, target.join(s.file_name().unwrap())).unwrap();
        }
    }
}

/// laspy (the independent reader of the issue's round-trip property) on
/// `(input, output)` pairs: same version, point format, dimension names,
/// scales, offsets, point count, VLR and EVLR ids and every dimension's
/// values byte for byte (X Y Z as stored integers, extra bytes included).
/// Returns the number of pairs checked, or `None` when python3 or laspy
/// (with a LAZ backend) is not installed (optional, as in `batch_real`).
fn laspy_compare(pairs: &[(PathBuf, PathBuf)]) -> Option<usize> {
    let script = r#"
import sys, laspy, numpy as np
args = sys.argv[1:]
checked = 0
for a, b in zip(args[::2], args[1::2]):
    A, B = laspy.read(a), laspy.read(b)
    ha, hb = A.header, B.header
    what = a + ' -> ' + b
    assert (ha.version.major, ha.version.minor) == (hb.version.major, hb.version.minor), what
    assert ha.point_format.id == hb.point_format.id, what
    names = list(ha.point_format.dimension_names)
    assert names == list(hb.point_format.dimension_names), (what, names)
    assert np.array_equal(ha.scales, hb.scales) and np.array_equal(ha.offsets, hb.offsets), what
    assert ha.point_count == hb.point_count, what
    ids = lambda vlrs: [(v.user_id, v.record_id) for v in (vlrs or []) if v.user_id != 'laszip encoded']
    assert ids(ha.vlrs) == ids(hb.vlrs), (what, ids(ha.vlrs), ids(hb.vlrs))
    assert ids(ha.evlrs) == ids(hb.evlrs), (what, ids(ha.evlrs), ids(hb.evlrs))
    for name in names:
        x, y = np.asarray(A[name]), np.asarray(B[name])
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (what, name)
    checked += 1
print(checked)
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script);
    for (a, b) in pairs {
        cmd.arg(a).arg(b);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => {
            Some(String::from_utf8_lossy(&o.stdout).trim().parse().unwrap())
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            assert!(
                std::env::var("POINTPIPE_REQUIRE_LASPY").is_err(),
                "laspy required: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            eprintln!("skipped: laspy not installed");
            None
        }
        Ok(o) => panic!(
            "laspy comparison failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            eprintln!("skipped: python3 not available ({e})");
            None
        }
    }
}

/// Items 1, 2 and 20, the issue's round-trip property with laspy as the
/// independent reader: every shared LAS/LAZ file through `pointpipe
/// convert` to LAS and to LAZ reads back in laspy equal to the input, field
/// by field.
#[test]
fn laspy_sees_every_shared_las_file_unchanged_after_convert() {
    let files = shared_las_files();
    if files.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for (i, input) in files.iter().enumerate() {
        for ext in ["las", "laz"] {
            let out = dir.path().join(format!("{i}.{ext}"));
            let status = pointpipe()
                .args(["--quiet", "convert"])
                .arg(input)
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "{input:?} -> {ext}");
            pairs.push((input.clone(), out));
        }
    }
    if let Some(checked) = laspy_compare(&pairs) {
        assert_eq!(checked, 2 * files.len());
    }
}

/// Item 2 (KITTI `.bin`, the format that holds least): every shared LAS/LAZ
/// file through `.bin` and back keeps the point count, x y z within float32
/// rounding (half an ulp of each coordinate's magnitude, the format's
/// declared precision, plus the LAS scale on the way back) and intensity
/// exactly (reflectance = intensity / 65535 in [0, 1]).
#[test]
fn every_shared_las_file_through_kitti_bin_keeps_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    for input in shared_las_files() {
        let cloud = io::read(&input).unwrap();
        let mid = dir.path().join("mid.bin");
        let back_path = dir.path().join("back.las");
        for (a, b) in [(&input, &mid), (&mid, &back_path)] {
            let status = pointpipe()
                .args(["--quiet", "convert"])
                .arg(a)
                .arg(b)
                .status()
                .unwrap();
            assert!(status.success(), "{a:?} -> {b:?}");
        }
        let name = input.display().to_string();
        let back = io::read(&back_path).unwrap();
        assert_eq!(back.len(), cloud.len(), "{name}");
        let scale = back.extras.las_header.as_ref().map_or(0.0, |h| {
            let t = h.transforms();
            t.x.scale.max(t.y.scale).max(t.z.scale)
        });
        for (p, q) in cloud.points.iter().zip(&back.points) {
            for k in 0..3 {
                let tolerance = p[k].abs() * f64::powi(2.0, -24) + scale * 0.5 + 1e-12;
                assert!((p[k] - q[k]).abs() <= tolerance, "{name}: {p} vs {q}");
            }
        }
        match (&cloud.intensity, &back.intensity) {
            (Some(a), Some(b)) => assert_eq!(a, b, "{name}"),
            (None, Some(b)) => assert!(b.iter().all(|&v| v == 0.0), "{name}"),
            (a, b) => panic!("{name}: intensity {:?} -> {:?}", a.is_some(), b.is_some()),
        }
    }
}
