#![no_main]
//! The HTTP request reader on any input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tinytracker::http::parse(data, 64 * 1024);
});
