//! What one client can make the tracker hold or do: memory per pipelining connection, torrents
//! and peers in open mode, connection slots; and the HTTP edge (framing, timeouts, echoes).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;

fn rss_kib(tracker: &Tracker) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", tracker.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A counter from `/metrics`.
fn metric(tracker: &Tracker, name: &str) -> u64 {
    let text = tracker.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}")) as u64
}

const ANSWERED: &str = "tinytracker_requests_total{endpoint=\"announce\",outcome=\"ok\"}";

/// `peers` peers on torrent `id(1)`, each a different client behind the trusted proxy 127.0.0.1.
fn populate(tracker: &Tracker, peers: u32) {
    for n in 0..peers {
        let forwarded = format!("10.0.{}.{}", n / 250, n % 250 + 1);
        let reply = tracker.request(
            "GET",
            &format!(
                "/announce?info_hash={}&peer_id={}&port=6881&left=5",
                escape(&id(1)),
                escape(&id(1000 + n))
            ),
            &[("X-Forwarded-For", &forwarded)],
            b"",
        );
        assert_eq!(failure(&reply.bencode()), None);
    }
}

/// About 96 KiB of pipelined `compact=0&numwant=200` announces (each answered with ~12 KB), the
/// last one closing. Returns the bytes and how many requests they hold.
fn pipeline() -> (Vec<u8>, usize) {
    let one = format!(
        "GET /announce?info_hash={}&peer_id={}&port=7000&left=5&compact=0&numwant=200 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        escape(&id(1)),
        escape(&id(2))
    );
    let count = 96 * 1024 / one.len();
    let mut bytes = one.repeat(count - 1).into_bytes();
    bytes.extend_from_slice(
        one.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    (bytes, count)
}

/// A connection with a small receive window that sends `bytes` and reads nothing yet.
fn silent_client(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

/// Waits until the tracker has stopped answering announces (the count holds still for a second).
fn until_answering_stops(tracker: &Tracker) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (metric(tracker, ANSWERED), Instant::now());
    while since.elapsed() < Duration::from_secs(1) {
        assert!(
            Instant::now() < deadline,
            "the tracker kept answering for a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
        let now = metric(tracker, ANSWERED);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

fn count_answers(stream: &mut TcpStream) -> usize {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    all.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count()
}

/// Bound documented in the README ("Hardening"): input 80 KiB + one read, answers 256 KiB + one.
const PER_CONNECTION_BOUND_KIB: u64 = 1024;

#[test]
fn a_client_that_pipelines_without_reading_holds_bounded_memory() {
    let tracker = Tracker::start(&["--trusted-proxy", "127.0.0.1", "--public-metrics"]);
    populate(&tracker, 250);
    let (bytes, count) = pipeline();
    // Warm-up: one such connection read to the end, so the allocator has what a busy worker uses.
    let mut warm = silent_client(tracker.addr, &bytes);
    assert_eq!(count_answers(&mut warm), count);
    until_answering_stops(&tracker);
    let before = rss_kib(&tracker);
    let clients: Vec<TcpStream> = (0..20)
        .map(|_| silent_client(tracker.addr, &bytes))
        .collect();
    let answered = until_answering_stops(&tracker);
    let grown = rss_kib(&tracker).saturating_sub(before);
    let per_connection = grown / 20;
    println!(
        "RSS grew {grown} KiB for 20 connections: {per_connection} KiB each ({answered} answered)"
    );
    assert!(
        per_connection < PER_CONNECTION_BOUND_KIB,
        "{per_connection} KiB per pipelining connection (bound {PER_CONNECTION_BOUND_KIB} KiB)"
    );
    // Reading resumes the answers: every request is answered, in full, on every connection.
    for mut client in clients {
        assert_eq!(count_answers(&mut client), count);
    }
}

#[test]
fn a_pipelining_client_that_reads_late_is_not_dropped_as_a_slow_sender() {
    let tracker = Tracker::start(&["--trusted-proxy", "127.0.0.1", "--public-metrics"]);
    populate(&tracker, 250);
    let (bytes, count) = pipeline();
    let mut client = silent_client(tracker.addr, &bytes);
    // The client is slow on purpose: it reads nothing for longer than the 10 s a request may take
    // to arrive, but less than the 30 s an unread answer may wait.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(count_answers(&mut client), count);
}

#[test]
fn open_mode_keeps_no_empty_torrents_and_holds_its_limits() {
    let tracker = Tracker::start(&["--max-torrents", "3", "--max-peers-per-ip", "2"]);
    let announce = |torrent: u32, port: u16, event: &str| {
        tracker.announce(&format!(
            "info_hash={}&peer_id={}&port={port}&left=5{event}",
            escape(&id(torrent)),
            escape(&id(900 + u32::from(port)))
        ))
    };
    for t in 0..3 {
        assert_eq!(failure(&announce(t, 1, "")), None);
    }
    assert_eq!(
        failure(&announce(3, 1, "")).as_deref(),
        Some("tracker is full: it holds its limit of 3 torrents")
    );
    assert_eq!(tracker.get("/stats").json().as_object().unwrap().len(), 3);
    assert_eq!(failure(&announce(0, 2, "")), None);
    assert_eq!(
        failure(&announce(0, 3, "")).as_deref(),
        Some("too many peers from your address in this torrent (at most 2)")
    );
    let stats = tracker.get("/stats").json();
    assert_eq!(
        stats[hex(&id(0))]["stats"]["peers"],
        2,
        "nothing was added: {stats}"
    );
    // The last peer of a torrent nobody registered leaves: the torrent goes, and its place is free.
    assert_eq!(failure(&announce(1, 1, "&event=stopped")), None);
    assert!(tracker.get("/stats").json().get(hex(&id(1))).is_none());
    assert_eq!(failure(&announce(3, 1, "")), None);
    // A registered torrent stays without peers.
    tracker.post_json(
        "/add_torrent_info",
        &serde_json::json!({"info_hash": hex(&id(2)), "name": "kept"}).to_string(),
    );
    assert_eq!(failure(&announce(2, 1, "&event=stopped")), None);
    assert_eq!(tracker.get("/stats").json()[hex(&id(2))]["name"], "kept");
}

/// A keep-alive connection from `source` that got one answer and stays open; `None` if the
/// tracker closed it instead of answering.
fn hold(tracker: &Tracker, source: &str) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&tracker.addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /scrape?info_hash={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        escape(&id(1))
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap();
            if body.len() >= length {
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                return Some(stream);
            }
        }
    }
}

#[test]
fn one_address_cannot_take_every_connection_and_admins_keep_a_way_in() {
    let tracker = Tracker::start(&[
        "--max-connections",
        "64",
        "--max-connections-per-ip",
        "4",
        "--local-admin",
        "127.0.0.1",
    ]);
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| hold(&tracker, "127.0.0.2").expect("within the cap"))
        .collect();
    assert!(
        hold(&tracker, "127.0.0.2").is_none(),
        "a fifth from one address is refused"
    );
    held.push(hold(&tracker, "127.0.0.3").expect("another address still gets in"));
    // 64 slots, the last 4 kept for local admins: 60 for everyone else.
    let mut n = 10;
    while held.len() < 60 {
        if let Some(stream) = hold(&tracker, &format!("127.0.0.{}", n / 4)) {
            held.push(stream);
        }
        n += 1;
    }
    assert!(
        hold(&tracker, "127.0.0.200").is_none(),
        "the slots kept for admins are not for clients"
    );
    assert_eq!(
        tracker.get("/save_state").status,
        200,
        "a local admin still gets in"
    );
    assert!(metric(&tracker, "tinytracker_refused_connections_total") >= 2);
    drop(held);
}

fn raw_status(tracker: &Tracker, bytes: &[u8]) -> (u16, Reply) {
    let reply = raw(tracker.addr, bytes);
    (reply.status, reply)
}

#[test]
fn conflicting_framing_is_refused_and_nothing_is_smuggled() {
    let tracker = Tracker::start(&[]);
    let smuggled = "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let body = format!("{{\"name\":\"sm\"}}{smuggled}");
    for lengths in [
        format!("Content-Length: 13\r\nContent-Length: {}", body.len()),
        format!("Content-Length: {}\r\nContent-Length: 13", body.len()),
        "Content-Length: +13".to_string(),
        "Content-Length: 13, 13".to_string(),
    ] {
        let request = format!("POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\n{lengths}\r\n\r\n{body}");
        let (status, reply) = raw_status(&tracker, request.as_bytes());
        assert_eq!(status, 400, "{lengths}: {}", reply.text());
        assert_eq!(reply.header("Connection"), Some("close"));
        assert_eq!(
            reply.text().matches("HTTP/1.1").count(),
            0,
            "one answer only: {}",
            reply.text()
        );
    }
    let chunked = "POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n{\"name\":\"te\"}";
    assert_eq!(raw_status(&tracker, chunked.as_bytes()).0, 411);
    assert_eq!(tracker.get("/users").json()["users"], serde_json::json!([]));
    assert_eq!(
        tracker.get("/metrics").status,
        200,
        "no smuggled /shutdown ran"
    );
}

#[test]
fn answers_echo_little_and_are_never_sniffed() {
    let tracker = Tracker::start(&[]);
    let long = format!("/{}", "<script>".repeat(1500));
    let reply = tracker.get(&long);
    assert_eq!(reply.status, 404);
    assert!(reply.body.len() < 200, "{} bytes", reply.body.len());
    let echoed = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(echoed.starts_with("not found: /<script>"), "{echoed}");
    assert!(
        echoed.chars().count() <= "not found: ".len() + 65,
        "{echoed}"
    );
    for target in ["/nope", "/stats", "/announce?info_hash=x"] {
        assert_eq!(
            tracker.get(target).header("X-Content-Type-Options"),
            Some("nosniff"),
            "{target}"
        );
    }
}

#[test]
fn a_body_shorter_than_its_length_gets_a_408() {
    let tracker = Tracker::start(&[]);
    let started = Instant::now();
    let reply = raw(
        tracker.addr,
        b"POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 40\r\n\r\n{\"name\"",
    );
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("10 seconds"));
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "not before the request timeout"
    );
}

#[test]
fn numbers_that_would_overflow_are_refused_at_start() {
    for args in [
        &["--interval", "5000000000"][..],
        &["--interval", "4100000000"],
        &["--workers", "0"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinytracker"))
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "it did not start listening");
    }
}
