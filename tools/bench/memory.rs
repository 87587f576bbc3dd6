//! Memory per torrent and per peer, through the tracker's own swarm code (no sockets):
//! registers T torrents, then announces P distinct peers (address, port) spread evenly over them,
//! and reports the growth of the process's resident memory at each step.
//!
//!     cargo run --release --example bench_memory -- [TORRENTS] [PEERS]     (defaults 100000 1000000)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tinytracker::ids::{InfoHash, PeerId};
use tinytracker::info::InfoUpdate;
use tinytracker::protocol::{AnnounceRequest, Event, PeerStyle};
use tinytracker::swarm::{Swarm, SwarmConfig};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

fn hash(n: u64) -> InfoHash {
    let mut raw = [0u8; 20];
    raw[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    raw[8..16].copy_from_slice(&n.to_le_bytes());
    InfoHash(raw)
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("a number"));
    let torrents = args.next().unwrap_or(100_000);
    let peers = args.next().unwrap_or(1_000_000);
    let swarm = Swarm::new(SwarmConfig::default());
    let now = 1_700_000_000;
    let start = rss_bytes();
    for t in 0..torrents {
        swarm.register(hash(t), InfoUpdate::default(), now);
    }
    let after_torrents = rss_bytes();
    for p in 0..peers {
        let ip = Ipv4Addr::from(0x0A00_0000u32 + (p / 50_000) as u32);
        let port = 1024 + (p % 50_000) as u16;
        let mut peer_id = *b"-BM0001-000000000000";
        peer_id[8..].copy_from_slice(format!("{p:012}").as_bytes());
        let req = AnnounceRequest {
            info_hash: hash(p % torrents),
            peer_id: PeerId(peer_id),
            addr: SocketAddr::new(IpAddr::V4(ip), port),
            uploaded: p,
            downloaded: p / 2,
            left: if p % 4 == 0 { 0 } else { 1 << 20 },
            event: Event::Started,
            numwant: Some(0),
            style: PeerStyle::Compact,
        };
        swarm.announce(&req, 0, now).expect("open swarm");
    }
    let after_peers = rss_bytes();
    assert_eq!(swarm.totals(), (torrents as usize, peers as usize));
    let per_torrent = (after_torrents - start) as f64 / torrents as f64;
    let per_peer = (after_peers - after_torrents) as f64 / peers as f64;
    println!("torrents {torrents}, peers {peers}");
    println!(
        "rss start {:.1} MiB, after torrents {:.1} MiB, after peers {:.1} MiB",
        start as f64 / 1048576.0,
        after_torrents as f64 / 1048576.0,
        after_peers as f64 / 1048576.0
    );
    println!("bytes per torrent {per_torrent:.0}");
    println!("bytes per peer {per_peer:.0}");
}
