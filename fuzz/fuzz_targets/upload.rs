#![no_main]
//! The upload path on any input: a form is read part by part (never a panic, parts inside the
//! body), its file parsed as a torrent, and the same bytes as a PATCH body checked field by field.
use libfuzzer_sys::fuzz_target;
use tinytracker::multipart;

fuzz_target!(|data: &[u8]| {
    if let Ok(parts) = multipart::parse(data, "XyZ") {
        for part in parts {
            let start = part.body.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start + part.body.len() <= data.len());
            if part.name == "torrent" {
                let _ = tinytracker::metainfo::parse(part.body);
            }
        }
    }
    if let Ok(update) = tinytracker::api::metadata::patch(data) {
        for text in [&update.title, &update.artist].into_iter().flatten() {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
});
