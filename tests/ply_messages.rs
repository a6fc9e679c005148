//! Issue 26, item 21 (PLY part): a corrupted PLY file gets one line that
//! names the problem and, where there is one, the file's line (header and
//! ASCII data) or the entry and byte where binary data ends, never the
//! parser crate's multi-line debug structures (`ParseError { location:
//! LineCol {..}, expected: ExpectedSet {..} }`). The corrupted files are made
//! by the tests in temporary folders.

use std::path::Path;
use std::process::Command;

/// A valid ASCII PLY: 10 header lines (`ply` is line 1, `end_header` line
/// 10), three vertices on lines 11-13, two faces on lines 14-15.
const ASCII: &str = "ply\nformat ascii 1.0\ncomment made by a test\nelement vertex 3\n\
                     property float x\nproperty float y\nproperty float z\n\
                     element face 2\nproperty list uchar int vertex_indices\nend_header\n\
                     1 2 3\n4 5 6\n7 8 9\n3 0 1 2\n3 2 1 0\n";

/// A valid binary little-endian PLY with a face list after the vertices.
fn binary() -> Vec<u8> {
    let mut b = b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n\
                  property float y\nproperty float z\nelement face 1\n\
                  property list uchar int vertex_indices\nend_header\n"
        .to_vec();
    for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0] {
        b.extend(v.to_le_bytes());
    }
    b.push(3);
    for i in [0i32, 1, 2] {
        b.extend(i.to_le_bytes());
    }
    b
}

/// Reads `bytes` as a `.ply` file written into a temporary folder and
/// returns the error message (panics if the read succeeds).
fn message(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.ply");
    std::fs::write(&path, bytes).unwrap();
    match pointpipe::io::read(&path) {
        Ok(c) => panic!(
            "{:?} was read ({} points)",
            String::from_utf8_lossy(bytes),
            c.len()
        ),
        Err(e) => e.to_string(),
    }
}

/// No debug structure, one line.
fn assert_plain(msg: &str, file: &[u8]) {
    assert!(
        !msg.contains('\n') && !msg.contains('\t'),
        "multi-line message {msg:?} for {:?}",
        String::from_utf8_lossy(file)
    );
    for marker in [
        "{",
        "ParseError",
        "LineCol",
        "ExpectedSet",
        "Scalar(",
        "List(",
        "Couldn't",
    ] {
        assert!(
            !msg.contains(marker),
            "debug text {marker:?} in {msg:?} for {:?}",
            String::from_utf8_lossy(file)
        );
    }
}

/// The line number a message names (`line N`), if any.
fn named_line(msg: &str) -> Option<usize> {
    let at = msg.find("line ")?;
    msg[at + 5..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_valid_files_read() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("a.ply", ASCII.as_bytes().to_vec()), ("b.ply", binary())] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let cloud = pointpipe::io::read(&path).unwrap();
        assert_eq!(cloud.len(), 3, "{name}");
        assert_eq!(cloud.points[2], nalgebra::Point3::new(7.0, 8.0, 9.0));
    }
}

/// A crafted file: what is wrong, its bytes, words the message must hold,
/// the line it must name (`None`: no line, e.g. binary data).
type Case<'a> = (&'a str, Vec<u8>, Vec<&'a str>, Option<usize>);

/// Each crafted fault gives one plain line with the expected words and line.
#[test]
fn each_corruption_names_its_problem_and_line() {
    let bin = binary();
    let header_len = bin.windows(11).position(|w| w == b"end_header\n").unwrap() + 11;
    let binary_end = format!("ends at byte {}", header_len + 18);
    let cases: Vec<Case> = vec![
        (
            "bad format",
            ASCII.replace("format ascii", "format asci").into_bytes(),
            vec!["unknown format 'asci'", "ascii, binary_little_endian"],
            Some(2),
        ),
        (
            "bad version",
            ASCII.replace("ascii 1.0", "ascii one").into_bytes(),
            vec!["version 'one'", "MAJOR.MINOR"],
            Some(2),
        ),
        (
            "format line without a version",
            ASCII.replace("ascii 1.0", "ascii").into_bytes(),
            vec!["expected 'format ENCODING VERSION'"],
            Some(2),
        ),
        (
            "unknown type",
            ASCII
                .replace("property float y", "property flaot y")
                .into_bytes(),
            vec!["unknown property type 'flaot'"],
            Some(6),
        ),
        (
            "unknown list type",
            ASCII
                .replace("list uchar int", "list uchar integer")
                .into_bytes(),
            vec!["unknown property type 'integer'"],
            Some(9),
        ),
        (
            "property without a name",
            ASCII
                .replace("property float z", "property float")
                .into_bytes(),
            vec!["expected 'property TYPE NAME'"],
            Some(7),
        ),
        (
            "unknown keyword",
            ASCII.replace("comment made", "commment made").into_bytes(),
            vec!["unknown header keyword 'commment'"],
            Some(3),
        ),
        (
            "element count not a number",
            ASCII
                .replace("element vertex 3", "element vertex three")
                .into_bytes(),
            vec!["element 'vertex' count 'three' is not a whole number"],
            Some(4),
        ),
        (
            "property before any element",
            ASCII
                .replace("comment made by a test", "property float w")
                .into_bytes(),
            vec!["'property' before any 'element'"],
            Some(3),
        ),
        (
            "no format line",
            ASCII.replace("format ascii 1.0\n", "").into_bytes(),
            vec!["'end_header' before any 'format' line"],
            Some(9),
        ),
        (
            "contradicting format lines",
            ASCII
                .replace("comment made by a test", "format binary_big_endian 1.0")
                .into_bytes(),
            vec!["contradicts line 2"],
            Some(3),
        ),
        (
            "truncated header",
            ASCII.as_bytes()[..ASCII.find("property float z").unwrap()].to_vec(),
            vec!["without 'end_header'", "truncated"],
            Some(6),
        ),
        (
            "header not text",
            ASCII
                .replace("made by", "made \u{1} by")
                .bytes()
                .map(|b| if b == 1 { 0xff } else { b })
                .collect(),
            vec!["not text"],
            Some(3),
        ),
        (
            "bad ascii value",
            ASCII.replace("4 5 6", "4 five 6").into_bytes(),
            vec![
                "'five' is not a valid float",
                "property 'y'",
                "'vertex' entry 2 of 3",
            ],
            Some(12),
        ),
        (
            "wrong property count",
            ASCII.replace("7 8 9", "7 8").into_bytes(),
            vec!["ends before property 'z'", "'vertex' entry 3 of 3"],
            Some(13),
        ),
        (
            "short list",
            // (a list in the vertex element: other elements' ASCII lines are
            // skipped unread)
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n\
              property float z\nproperty list uchar float extra\nend_header\n1 2 3 3 0.5 0.5\n"
                .to_vec(),
            vec![
                "list 'extra' promises 3 values, the line has 2",
                "'vertex' entry 1 of 1",
            ],
            Some(9),
        ),
        (
            "truncated ascii vertices",
            ASCII.as_bytes()[..ASCII.find("7 8 9").unwrap()].to_vec(),
            vec!["after 2 of the 3 'vertex' entries", "truncated"],
            Some(13),
        ),
        (
            "truncated ascii faces",
            ASCII.as_bytes()[..ASCII.find("3 2 1 0").unwrap()].to_vec(),
            vec!["after 1 of the 2 'face' entries", "truncated"],
            Some(15),
        ),
        (
            "truncated binary vertices",
            bin[..header_len + 12 + 6].to_vec(),
            vec![
                binary_end.as_str(),
                "'vertex' entry 2 of 3, property 'y'",
                "truncated",
            ],
            None,
        ),
        (
            "truncated binary list",
            bin[..bin.len() - 2].to_vec(),
            vec![
                "'face' entry 1 of 1, property 'vertex_indices'",
                "truncated",
            ],
            None,
        ),
    ];
    for (what, bytes, expected, line) in &cases {
        let msg = message(bytes);
        assert_plain(&msg, bytes);
        assert!(msg.contains("bad.ply: PLY"), "{what}: {msg}");
        for e in expected {
            assert!(msg.contains(e), "{what}: {e:?} not in {msg:?}");
        }
        assert_eq!(named_line(&msg), *line, "{what}: line in {msg:?}");
    }
    // Bad magic: the file does not start with `ply`.
    let msg = message(&ASCII.replacen("ply", "plx", 1).into_bytes());
    assert_plain(&msg, b"plx");
    assert!(msg.contains("not a PLY file"), "{msg}");
}

/// 'nan' / 'inf' are accepted in float properties (the point is dropped) but
/// named when they stand in an integer property, on the original line.
#[test]
fn non_finite_tokens_in_integer_properties_are_named_on_their_line() {
    let text = "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n\
                property float z\nproperty uchar red\nend_header\n1 nan 3 4\n4 5 6 inf\n";
    let msg = message(text.as_bytes());
    assert_plain(&msg, text.as_bytes());
    assert!(
        msg.contains("line 10 ('vertex' entry 2 of 2): 'inf' is not a valid uchar"),
        "{msg}"
    );
}

/// The sweep of the issue: every truncation and many single-byte changes of
/// an ASCII and a binary file. Whatever fails, fails with one plain line
/// whose line number (if any) lies inside the file.
#[test]
fn every_mutation_gives_one_plain_line() {
    let mut failures = 0usize;
    for original in [ASCII.as_bytes().to_vec(), binary()] {
        let lines = original.iter().filter(|&&b| b == b'\n').count() + 1;
        let mut variants: Vec<Vec<u8>> = (4..original.len())
            .map(|n| original[..n].to_vec())
            .collect();
        for at in 4..original.len() {
            for b in [b'x', b' ', b'\n', b'9', b'-', b'.', 0u8, 0xff] {
                let mut v = original.clone();
                v[at] = b;
                variants.push(v);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ply");
        for v in &variants {
            std::fs::write(&path, v).unwrap();
            if let Err(e) = pointpipe::io::read(&path) {
                failures += 1;
                let msg = e.to_string();
                assert_plain(&msg, v);
                if let Some(line) = named_line(&msg) {
                    assert!(
                        (1..=lines + 1).contains(&line),
                        "line {line} of a {lines}-line file: {msg}"
                    );
                }
            }
        }
    }
    // The sweep exercised the error paths, not only the happy one.
    assert!(failures > 500, "only {failures} variants failed");
}

/// The CLI prints the message as one `error:` line.
#[test]
fn info_prints_one_line_per_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.ply");
    std::fs::write(&path, ASCII.replace("format ascii", "format asci")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
        .args([Path::new("info"), &path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].ends_with("bad.ply: PLY header line 2: unknown format 'asci' (expected ascii, binary_little_endian or binary_big_endian)"),
        "{stderr}"
    );
    assert_eq!(lines[1], "error: 1 of 1 files could not be read");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Random multi-byte damage and truncation of either file never panics,
    /// and whatever fails, fails with one plain line.
    #[test]
    fn random_damage_gives_one_plain_line(
        which in 0usize..2,
        edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..8),
        keep in 0.0f64..1.2,
    ) {
        let mut bytes = if which == 0 { ASCII.as_bytes().to_vec() } else { binary() };
        for (at, b) in edits {
            let at = 4 + at % (bytes.len() - 4);
            bytes[at] = b;
        }
        let keep = ((bytes.len() as f64 * keep) as usize).clamp(4, bytes.len());
        bytes.truncate(keep);
        if let Err(e) = pointpipe::io::ply::read_from_bytes(&bytes, Path::new("r.ply")) {
            let msg = e.to_string();
            proptest::prop_assert!(!msg.contains('\n'), "{msg:?}");
            for marker in ["ParseError", "LineCol", "ExpectedSet", "Scalar(", "Couldn't"] {
                proptest::prop_assert!(!msg.contains(marker), "{msg:?}");
            }
        }
    }
}
