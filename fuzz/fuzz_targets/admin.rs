#![no_main]
//! The admin JSON bodies on any input.
use libfuzzer_sys::fuzz_target;
use tinytracker::swarm::{Swarm, SwarmConfig};

fuzz_target!(|data: &[u8]| {
    let swarm = Swarm::new(SwarmConfig {
        interval_secs: 1800,
        min_interval_secs: 900,
        peer_timeout_secs: 3600,
        default_numwant: 50,
        max_numwant: 200,
        registered_only: false,
    });
    let users = tinytracker::users::Users::default();
    let _ = tinytracker::admin::add_torrent_info(&swarm, data, 1_700_000_000);
    let _ = tinytracker::admin::create_user(&users, data, "http://t", 1_700_000_000);
});
