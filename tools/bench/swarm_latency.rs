//! Announce cost in the swarm code alone (no HTTP, no scheduling noise): one torrent with PEERS
//! peers and one with 10, announces from 10 fixed peers to each (numwant=50), every call timed.
//!
//!     cargo run --release --example bench_swarm_latency -- [PEERS] [CALLS]   (defaults 100000 200000)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use tinytracker::ids::{InfoHash, PeerId};
use tinytracker::protocol::{AnnounceRequest, Event, PeerStyle};
use tinytracker::swarm::{Swarm, SwarmConfig};

fn request(torrent: u8, n: u32, left: u64) -> AnnounceRequest {
    let mut peer_id = *b"-BL0001-000000000000";
    peer_id[8..].copy_from_slice(format!("{n:012}").as_bytes());
    AnnounceRequest {
        info_hash: InfoHash([torrent; 20]),
        peer_id: PeerId(peer_id),
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n)), 6881),
        uploaded: 0,
        downloaded: 0,
        left,
        event: Event::Periodic,
        numwant: Some(50),
        style: PeerStyle::Compact,
    }
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u32>().expect("a number"));
    let peers = args.next().unwrap_or(100_000);
    let calls = args.next().unwrap_or(200_000);
    let swarm = Swarm::new(SwarmConfig::default());
    let now = 1_700_000_000;
    for n in 0..peers {
        swarm
            .announce(&request(1, 1000 + n, u64::from(n % 4)), 0, now)
            .expect("open");
    }
    for n in 0..10 {
        swarm
            .announce(&request(2, 1000 + n, u64::from(n % 4)), 0, now)
            .expect("open");
    }
    let mut times: [Vec<u128>; 2] = [Vec::new(), Vec::new()];
    for call in 0..calls {
        let which = (call % 2) as usize;
        let req = request(which as u8 + 1, call % 10, 1);
        let started = Instant::now();
        let answer = swarm.announce(&req, 0, now).expect("open");
        times[which].push(started.elapsed().as_nanos());
        std::hint::black_box(answer);
    }
    for (which, name) in [(0, "big"), (1, "small")] {
        let sorted = &mut times[which];
        sorted.sort_unstable();
        println!(
            "{name}: {} calls, p50 {} ns, p99 {} ns, p99.9 {} ns",
            sorted.len(),
            percentile(sorted, 0.5),
            percentile(sorted, 0.99),
            percentile(sorted, 0.999)
        );
    }
}
