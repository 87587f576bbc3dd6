#![no_main]
//! The admin JSON bodies on any input.
use libfuzzer_sys::fuzz_target;
use tinytracker::swarm::{Swarm, SwarmConfig};

fuzz_target!(|data: &[u8]| {
    let swarm = Swarm::new(SwarmConfig::default());
    let users = tinytracker::users::Users::default();
    let _ = tinytracker::admin::add_torrent_info(&swarm, data, 1_700_000_000);
    let base = tinytracker::admin::AnnounceBase {
        url: "http://t".into(),
        guessed: false,
    };
    let _ = tinytracker::admin::create_user(&users, data, &base, 1_700_000_000);
});
