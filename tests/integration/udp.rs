//! The UDP tracker (BEP 15, BEP 41) against the real binary: the same swarms, passkeys, failure
//! texts and accounting as HTTP, and what it does with packets that are not requests.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// A BEP 15 client on its own socket.
struct Client {
    socket: UdpSocket,
    transaction: u32,
}

/// What the tracker sent back.
#[derive(Debug)]
enum Answer {
    Announce {
        interval: u32,
        leechers: u32,
        seeders: u32,
        peers: Vec<SocketAddr>,
    },
    Scrape(Vec<(u32, u32, u32)>),
    Error(String),
}

impl Client {
    fn new(tracker: SocketAddr) -> Client {
        let local = if tracker.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let socket = UdpSocket::bind(local).unwrap();
        socket.connect(tracker).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            socket,
            transaction: 1,
        }
    }

    fn local_port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// Sends `packet`, returns the next datagram (its transaction id checked when it has one).
    fn exchange(&mut self, packet: &[u8]) -> Vec<u8> {
        self.socket.send(packet).unwrap();
        let mut buf = [0u8; 2048];
        let n = self.socket.recv(&mut buf).expect("an answer");
        buf[..n].to_vec()
    }

    fn next_transaction(&mut self) -> u32 {
        self.transaction += 1;
        self.transaction
    }

    fn connect(&mut self) -> u64 {
        let t = self.next_transaction();
        let mut p = PROTOCOL_ID.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&t.to_be_bytes());
        let answer = self.exchange(&p);
        assert_eq!(answer.len(), 16, "{answer:?}");
        assert_eq!(&answer[..4], &0u32.to_be_bytes());
        assert_eq!(&answer[4..8], &t.to_be_bytes());
        u64::from_be_bytes(answer[8..16].try_into().unwrap())
    }

    #[allow(clippy::too_many_arguments)]
    fn announce_packet(
        &mut self,
        connection: u64,
        hash: [u8; 20],
        peer: [u8; 20],
        port: u16,
        left: u64,
        uploaded: u64,
        event: u32,
        url_data: &[u8],
    ) -> Vec<u8> {
        let t = self.next_transaction();
        let mut p = connection.to_be_bytes().to_vec();
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&t.to_be_bytes());
        p.extend_from_slice(&hash);
        p.extend_from_slice(&peer);
        p.extend_from_slice(&0u64.to_be_bytes()); // downloaded
        p.extend_from_slice(&left.to_be_bytes());
        p.extend_from_slice(&uploaded.to_be_bytes());
        p.extend_from_slice(&event.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes()); // ip
        p.extend_from_slice(&7u32.to_be_bytes()); // key
        p.extend_from_slice(&(-1i32).to_be_bytes()); // numwant
        p.extend_from_slice(&port.to_be_bytes());
        // BEP 41: URL data in pieces of at most 255 bytes, then the end of options.
        for piece in url_data.chunks(255) {
            p.extend_from_slice(&[2, piece.len() as u8]);
            p.extend_from_slice(piece);
        }
        if !url_data.is_empty() {
            p.push(0);
        }
        p
    }

    /// Connects and announces; `left` 0 is a seeder. `url_data` is the announce URL's path.
    fn announce(&mut self, hash: [u8; 20], port: u16, left: u64, url_data: &[u8]) -> Answer {
        let connection = self.connect();
        let peer = id(u32::from(port) + 50_000);
        let packet = self.announce_packet(connection, hash, peer, port, left, 0, 2, url_data);
        self.read(&packet)
    }

    fn scrape(&mut self, hashes: &[[u8; 20]]) -> Answer {
        let connection = self.connect();
        let t = self.next_transaction();
        let mut p = connection.to_be_bytes().to_vec();
        p.extend_from_slice(&2u32.to_be_bytes());
        p.extend_from_slice(&t.to_be_bytes());
        for hash in hashes {
            p.extend_from_slice(hash);
        }
        self.read(&p)
    }

    /// Sends a request and reads its answer.
    fn read(&mut self, packet: &[u8]) -> Answer {
        let answer = self.exchange(packet);
        assert!(answer.len() >= 8, "{answer:?}");
        assert_eq!(
            &answer[4..8],
            &packet[12..16],
            "the transaction id comes back"
        );
        let word = |at: usize| u32::from_be_bytes(answer[at..at + 4].try_into().unwrap());
        match word(0) {
            1 => {
                let entry = if self.socket.local_addr().unwrap().is_ipv6() {
                    18
                } else {
                    6
                };
                let body = &answer[20..];
                assert_eq!(body.len() % entry, 0, "{answer:?}");
                let peers = body
                    .chunks(entry)
                    .map(|c| {
                        let port = u16::from_be_bytes([c[entry - 2], c[entry - 1]]);
                        let ip: std::net::IpAddr = if entry == 6 {
                            <[u8; 4]>::try_from(&c[..4]).unwrap().into()
                        } else {
                            <[u8; 16]>::try_from(&c[..16]).unwrap().into()
                        };
                        SocketAddr::new(ip, port)
                    })
                    .collect();
                Answer::Announce {
                    interval: word(8),
                    leechers: word(12),
                    seeders: word(16),
                    peers,
                }
            }
            2 => Answer::Scrape(
                answer[8..]
                    .chunks(12)
                    .map(|c| {
                        let n = |i: usize| u32::from_be_bytes(c[i..i + 4].try_into().unwrap());
                        (n(0), n(4), n(8))
                    })
                    .collect(),
            ),
            3 => Answer::Error(String::from_utf8(answer[8..].to_vec()).unwrap()),
            other => panic!("action {other}: {answer:?}"),
        }
    }
}

fn udp_tracker(args: &[&str], udp: &str) -> (Tracker, SocketAddr) {
    let mut all = vec!["--udp-bind", udp];
    all.extend_from_slice(args);
    let mut tracker = Tracker::start(&all);
    let addr = tracker.next_udp_address();
    (tracker, addr)
}

fn metric(tracker: &Tracker, case: &str) -> u64 {
    let text = tracker.get("/metrics").text();
    let name = format!("tinytracker_udp_packets_total{{case=\"{case}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(name.as_str()))
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .unwrap()
}

#[test]
fn udp_and_http_peers_share_one_swarm_and_scrape_counts_them() {
    let (tracker, udp) = udp_tracker(&[], "127.0.0.1:0");
    let hash = id(1);
    // A seeder over HTTP, a leecher over UDP: each gets the other.
    let seeder = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=1111&left=0",
        escape(&hash),
        escape(&id(2))
    ));
    assert_eq!(failure(&seeder), None);
    let mut leecher = Client::new(udp);
    let Answer::Announce {
        interval,
        leechers,
        seeders,
        peers,
    } = leecher.announce(hash, 2222, 100, b"/announce")
    else {
        panic!("not an announce answer");
    };
    assert!(interval > 0);
    assert_eq!((seeders, leechers), (1, 1));
    assert_eq!(peers, vec!["127.0.0.1:1111".parse().unwrap()]);
    let http = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=3333&left=5",
        escape(&hash),
        escape(&id(3))
    ));
    let compact = bytes(field(&http, "peers"));
    assert!(
        compact.chunks(6).any(|p| p == [127, 0, 0, 1, 0x08, 0xae]),
        "the UDP peer (port 2222) is given to HTTP clients"
    );

    // Completed over UDP; the scrape answers in the order asked, zeros for an unknown hash.
    let connection = leecher.connect();
    let peer = id(2222 + 50_000);
    let done = leecher.announce_packet(connection, hash, peer, 2222, 0, 0, 1, b"");
    assert!(matches!(
        leecher.read(&done),
        Answer::Announce { seeders: 2, .. }
    ));
    let Answer::Scrape(rows) = leecher.scrape(&[id(99), hash]) else {
        panic!("not a scrape answer");
    };
    assert_eq!(rows, vec![(0, 0, 0), (2, 1, 1)]);
    let stats = tracker.get("/stats").json();
    assert_eq!(stats[hex(&hash)]["stats"]["completed"], 1, "{stats}");
    // Stopped leaves the swarm.
    let connection = leecher.connect();
    let stop = leecher.announce_packet(connection, hash, peer, 2222, 0, 0, 3, b"");
    assert!(matches!(
        leecher.read(&stop),
        Answer::Announce { seeders: 1, .. }
    ));
    assert!(metric(&tracker, "announce") >= 3);
    assert!(metric(&tracker, "connect") >= 4);
}

#[test]
fn ipv6_clients_get_18_byte_peers_of_their_own_family() {
    let (tracker, udp) = udp_tracker(&[], "[::1]:0");
    let hash = id(5);
    // An IPv4 peer known over HTTP is not in an IPv6 answer (BEP 15 answers carry one family).
    let _ = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=1111&left=0",
        escape(&hash),
        escape(&id(2))
    ));
    let mut first = Client::new(udp);
    let mut second = Client::new(udp);
    assert!(matches!(
        first.announce(hash, 4444, 0, b""),
        Answer::Announce { .. }
    ));
    let Answer::Announce { peers, seeders, .. } = second.announce(hash, 5555, 10, b"") else {
        panic!("not an announce answer");
    };
    assert_eq!(seeders, 2);
    assert_eq!(peers, vec!["[::1]:4444".parse().unwrap()]);
    assert_ne!(first.local_port(), 0);
}

#[test]
fn private_mode_takes_the_passkey_from_the_url_data_with_the_http_failure_texts() {
    let (tracker, udp) = udp_tracker(&["--private"], "127.0.0.1:0");
    private_mode_over_udp(&tracker, udp);
}

#[test]
fn private_mode_over_udp_is_the_same_with_a_shared_store() {
    let redis = Redis::start();
    let url = redis.url();
    let (tracker, udp) = udp_tracker(&["--private", "--store", &url], "127.0.0.1:0");
    private_mode_over_udp(&tracker, udp);
}

/// Passkeys from BEP 41 URL data, refusals with the texts HTTP clients get, credits and a
/// rotated passkey, on a `--private` tracker with a UDP address.
fn private_mode_over_udp(tracker: &Tracker, udp: SocketAddr) {
    let alice = tracker.post_json("/users", &json!({"name": "alice"}).to_string());
    assert_eq!(alice.status, 201, "{}", alice.text());
    let passkey = alice.json()["passkey"].as_str().unwrap().to_owned();
    let registered = tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hex(&id(7)), "name": "t7"}).to_string(),
    );
    assert_eq!(registered.status, 200);
    let mut client = Client::new(udp);
    let path = format!("/{passkey}/announce");

    // The failure texts an HTTP client gets for the same announce.
    let http_text = |prefix: &str, hash: [u8; 20]| {
        let reply = tracker.get(&format!(
            "{prefix}/announce?info_hash={}&peer_id={}&port=6000&left=1",
            escape(&hash),
            escape(&id(3))
        ));
        failure(&reply.bencode()).unwrap()
    };
    for (url_data, hash, http_prefix) in [
        (&b""[..], id(7), ""),
        (b"/not-a-passkey/announce", id(7), "/not-a-passkey"),
        (path.as_bytes(), id(8), &*format!("/{passkey}")),
    ] {
        let Answer::Error(text) = client.announce(hash, 6000, 1, url_data) else {
            panic!("{:?} was not refused", String::from_utf8_lossy(url_data));
        };
        assert_eq!(text, http_text(http_prefix, hash));
    }
    let Answer::Error(text) = client.scrape(&[id(7)]) else {
        panic!("a scrape without a passkey was answered");
    };
    assert_eq!(text, "invalid passkey");

    // With the passkey: served, and the bytes uploaded are credited to alice.
    assert!(matches!(
        client.announce(id(7), 6000, 1, path.as_bytes()),
        Answer::Announce { leechers: 1, .. }
    ));
    let connection = client.connect();
    let peer = id(6000 + 50_000);
    let later = client.announce_packet(connection, id(7), peer, 6000, 1, 4096, 0, path.as_bytes());
    assert!(matches!(client.read(&later), Answer::Announce { .. }));
    let user = tracker.get("/api/v1/users/alice").json();
    assert_eq!(user["uploaded"], 4096, "{user}");
    // A rotated passkey is refused at once.
    let rotated = tracker.post_json("/users/alice/rotate", "{}");
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let Answer::Error(text) = client.announce(id(7), 6000, 1, path.as_bytes()) else {
        panic!("the old passkey still works");
    };
    assert_eq!(text, http_text(&format!("/{passkey}"), id(7)));
    assert!(metric(tracker, "refused") >= 5);
}

#[test]
fn packets_that_are_no_requests_are_dropped_or_answered_no_larger_than_they_came() {
    let (tracker, udp) = udp_tracker(&[], "127.0.0.1:0");
    let mut client = Client::new(udp);

    // Too short, and a connect without the magic number: no answer. The next answer on this
    // socket is the one to the connect sent after them.
    client.socket.send(&[0; 10]).unwrap();
    let mut bad_connect = 0x1234u64.to_be_bytes().to_vec();
    bad_connect.extend_from_slice(&[0; 8]);
    client.socket.send(&bad_connect).unwrap();
    let connection = client.connect();

    // A forged or foreign connection id: an error no larger than the request.
    for forged in [0u64, connection ^ 1, connection.wrapping_add(1 << 32)] {
        let packet = client.announce_packet(forged, id(1), id(2), 1000, 0, 0, 2, b"");
        let answer = client.exchange(&packet);
        assert!(answer.len() <= packet.len());
        assert_eq!(&answer[..4], &3u32.to_be_bytes());
        let text = String::from_utf8_lossy(&answer[8..]).into_owned();
        assert!(text.contains("connection id"), "{text}");
    }
    let mut scrape = 0u64.to_be_bytes().to_vec();
    scrape.extend_from_slice(&2u32.to_be_bytes());
    scrape.extend_from_slice(&9u32.to_be_bytes());
    scrape.extend_from_slice(&id(1));
    let answer = client.exchange(&scrape);
    assert!(
        answer.len() <= scrape.len(),
        "{} > {}",
        answer.len(),
        scrape.len()
    );

    // Connected, but not a request: an error naming it.
    let mut unknown = connection.to_be_bytes().to_vec();
    unknown.extend_from_slice(&7u32.to_be_bytes());
    unknown.extend_from_slice(&5u32.to_be_bytes());
    assert!(matches!(client.read(&unknown), Answer::Error(t) if t == "unknown action"));
    let mut short = client.announce_packet(connection, id(1), id(2), 1000, 0, 0, 2, b"");
    short.truncate(60);
    assert!(matches!(client.read(&short), Answer::Error(t) if t.contains("too short")));
    let too_many: Vec<[u8; 20]> = (0..75).map(id).collect();
    assert!(matches!(client.scrape(&too_many), Answer::Error(t) if t.contains("74")));
    let mut port_zero = client.announce_packet(connection, id(1), id(2), 0, 0, 0, 2, b"");
    port_zero[96..98].copy_from_slice(&[0, 0]);
    assert!(
        matches!(client.read(&port_zero), Answer::Error(t) if t == "port must be between 1 and 65535")
    );
    // Nothing of it reached the swarm; the tracker serves on.
    assert_eq!(tracker.get("/stats").json(), json!({}));
    assert!(matches!(
        client.announce(id(1), 1000, 0, b""),
        Answer::Announce { seeders: 1, .. }
    ));
    assert_eq!(metric(&tracker, "too_short"), 1);
    assert_eq!(metric(&tracker, "not_bep15"), 1);
    assert_eq!(metric(&tracker, "bad_connection_id"), 4);
    assert_eq!(metric(&tracker, "malformed"), 3);
}
