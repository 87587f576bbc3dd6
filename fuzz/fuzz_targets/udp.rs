#![no_main]
//! The BEP 15 datagram reader (with BEP 41 URL data) on any input, and the answers it leads to:
//! an error answer is never larger than the limit given, a connection id from anything is checked
//! without panicking.
use libfuzzer_sys::fuzz_target;
use tinytracker::protocol::udp::{self, ConnectionIds, Request};

fuzz_target!(|data: &[u8]| {
    let ids = ConnectionIds::new((7, 9));
    let mut out = Vec::new();
    match udp::parse(data) {
        Ok(Request::Announce(a)) => {
            let (_passkey, _query) = a.url_data.passkey_and_query();
            assert!(a.url_data.as_bytes().len() <= udp::MAX_URL_DATA);
            let _ = ids.valid(a.connection, "127.0.0.1".parse().unwrap(), 1_000_000);
        }
        Ok(Request::Scrape { hashes, .. }) => {
            assert!(!hashes.is_empty() && hashes.len() % 20 == 0);
            assert!(hashes.len() / 20 <= udp::MAX_SCRAPE_HASHES);
        }
        Ok(Request::Connect { .. }) => {}
        Err(bad) => {
            let message = String::from_utf8_lossy(data);
            udp::write_error(&mut out, bad.transaction, &message, data.len());
            assert!(out.len() <= data.len().max(8));
            udp::write_error(&mut out, bad.transaction, bad.why.message(), 512);
        }
    }
});
