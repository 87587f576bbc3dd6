//! A BEP 15 load generator that sends BEP 41 URL data, so a private tracker's passkey check is
//! measured too (aquatic_udp_load_test sends none). One thread, SOCKETS sockets from 127.0.0.1,
//! each keeping WINDOW announces in flight; every answer is read and checked (an announce answer
//! for the transaction sent, or an error, counted apart).
//!
//!   cargo run --release --example bench_udp_load -- ADDR SECS TORRENTS URL_PATH
//!
//! TORRENTS: info hashes 0..TORRENTS as in `hash_of` (register them first for a private tracker);
//! URL_PATH: e.g. `/announce` or `/<passkey>/announce`. Prints `answers/s errors/s`.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const SOCKETS: usize = 8;
const WINDOW: usize = 32;
const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// The info hash of torrent `n`: its number in the first 8 bytes, then 0xab.
fn hash_of(n: u64) -> [u8; 20] {
    let mut hash = [0xab; 20];
    hash[..8].copy_from_slice(&n.to_be_bytes());
    hash
}

struct Client {
    socket: UdpSocket,
    connection: u64,
    /// Transaction ids in flight.
    pending: HashMap<u32, ()>,
    next: u32,
}

fn connect(socket: &UdpSocket) -> u64 {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut packet = PROTOCOL_ID.to_be_bytes().to_vec();
    packet.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    socket.send(&packet).unwrap();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("a connect answer");
    assert_eq!(n, 16, "connect answer");
    socket.set_nonblocking(true).unwrap();
    u64::from_be_bytes(buf[8..16].try_into().unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, secs, torrents, path] = &args[..] else {
        eprintln!("usage: bench_udp_load ADDR SECS TORRENTS URL_PATH");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR");
    let secs: u64 = secs.parse().expect("SECS");
    let torrents: u64 = torrents.parse().expect("TORRENTS");
    let mut url_data = Vec::new();
    for piece in path.as_bytes().chunks(255) {
        url_data.extend_from_slice(&[2, piece.len() as u8]);
        url_data.extend_from_slice(piece);
    }
    let mut clients: Vec<Client> = (0..SOCKETS)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(addr).unwrap();
            let connection = connect(&socket);
            Client {
                socket,
                connection,
                pending: HashMap::new(),
                next: 1,
            }
        })
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut answers, mut errors) = (0u64, 0u64);
    let mut packet = Vec::with_capacity(256);
    let mut buf = [0u8; 2048];
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        for client in &mut clients {
            loop {
                match client.socket.recv(&mut buf) {
                    Ok(n) if n >= 8 => {
                        let transaction = u32::from_be_bytes(buf[4..8].try_into().unwrap());
                        if client.pending.remove(&transaction).is_some() {
                            match u32::from_be_bytes(buf[..4].try_into().unwrap()) {
                                1 if n >= 20 => answers += 1,
                                _ => errors += 1,
                            }
                        }
                    }
                    Ok(_) => errors += 1,
                    Err(_) => break,
                }
            }
            while client.pending.len() < WINDOW {
                let transaction = client.next;
                client.next = client.next.wrapping_add(1);
                let r = random();
                packet.clear();
                packet.extend_from_slice(&client.connection.to_be_bytes());
                packet.extend_from_slice(&1u32.to_be_bytes());
                packet.extend_from_slice(&transaction.to_be_bytes());
                packet.extend_from_slice(&hash_of(r % torrents));
                packet.extend_from_slice(&r.to_be_bytes()); // peer id: 8 random bytes, then 12
                packet.extend_from_slice(&[b'-'; 12]);
                packet.extend_from_slice(&0u64.to_be_bytes()); // downloaded
                packet.extend_from_slice(&((r >> 8) % 2 * 1000).to_be_bytes()); // left: seeders and leechers
                packet.extend_from_slice(&0u64.to_be_bytes()); // uploaded
                packet.extend_from_slice(&0u32.to_be_bytes()); // event
                packet.extend_from_slice(&0u32.to_be_bytes()); // ip
                packet.extend_from_slice(&0u32.to_be_bytes()); // key
                packet.extend_from_slice(&30i32.to_be_bytes()); // numwant
                packet.extend_from_slice(&((r >> 16) as u16 | 1).to_be_bytes());
                packet.extend_from_slice(&url_data);
                packet.push(0);
                match client.socket.send(&packet) {
                    Ok(_) => {
                        client.pending.insert(transaction, ());
                    }
                    Err(_) => break,
                }
            }
            // Answers lost to a full socket buffer would stall the window: forget old ones.
            if client.pending.len() >= WINDOW {
                let oldest = client.next.wrapping_sub(WINDOW as u32 * 4);
                client
                    .pending
                    .retain(|&t, _| t.wrapping_sub(oldest) < WINDOW as u32 * 4);
            }
        }
    }
    println!(
        "{:.0} {:.0}",
        answers as f64 / secs as f64,
        errors as f64 / secs as f64
    );
}
