#![no_main]
//! The announce and scrape query parsers on any input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = tinytracker::protocol::parse_announce(&text, std::net::IpAddr::from([10, 0, 0, 1]));
    let _ = tinytracker::protocol::parse_scrape(&text);
});
