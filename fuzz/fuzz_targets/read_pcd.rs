//! Fuzz target: pointpipe's PCD reader must return Ok or Err on any bytes,
//! never panic, abort or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pointpipe::io::pcd::read_from_bytes(data, std::path::Path::new("fuzz.pcd"));
});
