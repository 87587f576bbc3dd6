#![no_main]
//! The state file loader (current and legacy layouts, with the legacy key decoding) on any input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = serde_json::from_slice::<tinytracker::state::StateFile>(data) {
        let _ = tinytracker::state::from_file(file);
    }
    let text = String::from_utf8_lossy(data);
    let _ = tinytracker::legacy::werkzeug_candidates(&text);
    let _ = tinytracker::legacy::cform_candidates(&text);
});
