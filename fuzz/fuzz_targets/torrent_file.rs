#![no_main]
//! Uploads: a .torrent parsed and served to a user on any input; a served torrent keeps its hash.
use libfuzzer_sys::fuzz_target;
use tinytracker::protocol::torrent_file::{personalize, Personal};

fuzz_target!(|data: &[u8]| {
    let served = personalize(data, &Personal { announce: "http://t/pk/announce", ..Personal::default() });
    if let Ok(stored) = tinytracker::metainfo::parse(data) {
        let served = served.expect("a torrent can always be served");
        let again = tinytracker::metainfo::parse(&served).expect("a served file is a torrent");
        assert_eq!(again.v1, stored.v1);
        assert_eq!(again.v2, stored.v2);
    }
});
