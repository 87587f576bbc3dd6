#![no_main]
//! Bencode decoding and .torrent parsing on any input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tinytracker::bencode::decode(data);
    let _ = tinytracker::metainfo::parse(data);
});
