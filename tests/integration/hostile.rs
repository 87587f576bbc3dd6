//! Malformed and hostile requests: each gets a clear error, the tracker keeps serving, and the
//! state does not change.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;

/// Sends `raw` as is on a fresh connection and reads the answer (None if the connection closed
/// without one).
fn send_raw(tracker: &Tracker, raw: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(tracker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The tracker may answer and close before reading everything of a huge request.
    let _ = stream.write_all(raw);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post(target: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn fifty_hostile_requests_get_clear_errors_and_change_nothing() {
    let tracker = Tracker::start(&["--admin-token", "s3cret", "--trusted-proxy", "10.0.0.0/8"]);
    let h = escape(&id(1));
    let p = escape(&id(2));
    let good = format!("info_hash={h}&peer_id={p}&port=6881");
    // One real torrent, so "unchanged" means something.
    tracker.announce(&format!("{good}&left=5"));
    let before = tracker.get("/stats").json();

    let many_hashes: String = (0..10_000)
        .map(|n| format!("info_hash={}&", escape(&id(n))))
        .collect();
    let long_value = "A".repeat(100_000);
    let mut cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        // Announce parameters: bencoded failure reasons with HTTP 200.
        ("short info_hash", get(&format!("/announce?info_hash=abc&peer_id={p}&port=1")), 200, "info_hash must be 20 bytes"),
        ("long info_hash", get(&format!("/announce?info_hash={h}{h}&peer_id={p}&port=1")), 200, "info_hash must be 20 bytes, got 40"),
        ("empty info_hash", get(&format!("/announce?info_hash=&peer_id={p}&port=1")), 200, "missing info_hash"),
        ("short peer_id", get(&format!("/announce?info_hash={h}&peer_id=x&port=1")), 200, "peer_id must be 20 bytes"),
        ("overlong peer_id", get(&format!("/announce?info_hash={h}&peer_id={long_value}&port=1")), 431, "request head over"),
        ("non-UTF-8 peer_id", get(&format!("/announce?info_hash={h}&peer_id=%ff%fe%fd&port=1")), 200, "peer_id must be 20 bytes, got 3"),
        ("port 0", get(&format!("/announce?{good}&port=0").replace("port=6881&", "")), 200, "port must be between 1 and 65535"),
        ("port 70000", get(&format!("/announce?info_hash={h}&peer_id={p}&port=70000")), 200, "port must be between 1 and 65535"),
        ("negative port", get(&format!("/announce?info_hash={h}&peer_id={p}&port=-1")), 200, "port must be between"),
        ("port with spaces", get(&format!("/announce?info_hash={h}&peer_id={p}&port=%2080")), 200, "port must be between"),
        ("missing port", get(&format!("/announce?info_hash={h}&peer_id={p}")), 200, "missing port"),
        ("huge uploaded", get(&format!("/announce?{good}&uploaded=99999999999999999999999")), 200, "uploaded is not a valid number"),
        ("negative left", get(&format!("/announce?{good}&left=-5")), 200, "left is not a valid number"),
        ("float downloaded", get(&format!("/announce?{good}&downloaded=1.5")), 200, "downloaded is not a valid number"),
        ("hex left", get(&format!("/announce?{good}&left=0x10")), 200, "left is not a valid number"),
        ("4300-digit left", get(&format!("/announce?{good}&left={}", "9".repeat(4300))), 200, "left is not a valid number"),
        ("no parameters", get("/announce"), 200, "missing info_hash"),
        ("only ampersands", get("/announce?&&&&"), 200, "missing info_hash"),
        ("broken escapes", get(&format!("/announce?info_hash=%zz%4&peer_id={p}&port=1")), 200, "info_hash must be 20 bytes"),
        ("repeated info_hash: the first wins", get(&format!("/announce?info_hash=abc&{good}&left=5")), 200, "info_hash must be 20 bytes, got 3"),
        // Scrape.
        ("10,000 info_hash in one scrape", get(&format!("/scrape?{many_hashes}")), 431, "request head over"),
        ("101 info_hash in one scrape", get(&format!("/scrape?{}", &many_hashes[..many_hashes.match_indices('&').nth(100).unwrap().0])), 200, "too many info_hash values"),
        ("scrape with a short hash", get("/scrape?info_hash=abc"), 200, "info_hash must be 20 bytes"),
        ("scrape with nothing", get("/scrape"), 200, "missing info_hash"),
        // Request line and headers.
        ("100 KB request line", get(&format!("/announce?x={long_value}")), 431, "request head over"),
        ("100 KB header", format!("GET /stats HTTP/1.1\r\nX-Big: {long_value}\r\n\r\n").into_bytes(), 431, "request head over"),
        ("100 headers", format!("GET /stats HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(100)).into_bytes(), 431, "more than 64 headers"),
        ("garbage", b"\x00\x01\x02\xff\xfe\r\n\r\n".to_vec(), 400, "malformed request"),
        ("no version", b"GET /stats\r\n\r\n".to_vec(), 400, "malformed request"),
        ("raw non-UTF-8 in the path", b"GET /announce?info_hash=\xff\xfe HTTP/1.1\r\n\r\n".to_vec(), 400, "malformed request"),
        ("bad Content-Length", b"POST /add_torrent_info HTTP/1.1\r\nContent-Length: lots\r\n\r\n".to_vec(), 400, "malformed Content-Length"),
        ("chunked body", b"POST /add_torrent_info HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(), 411, "Content-Length"),
        ("huge Content-Length", b"POST /add_torrent_info HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n".to_vec(), 413, "larger than"),
        ("body over the limit", post("/add_torrent_info", &format!("{{\"info_hash\": \"{}\"}}", "a".repeat(70_000))), 413, "larger than"),
        // Routing and methods.
        ("unknown path", get("/etc/passwd"), 404, "not found"),
        ("dot segments", get("/../../etc/passwd"), 404, "not found"),
        ("trailing slash", get("/announce/"), 404, "not found"),
        ("wrong method on announce", post("/announce", ""), 405, "not allowed"),
        ("wrong method on stats", post("/stats", ""), 405, "not allowed"),
        ("GET on add_torrent_info", get("/add_torrent_info"), 405, "not allowed"),
        ("DELETE on users list", b"DELETE /users HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 405, "not allowed"),
        ("made-up method", b"BREW /announce HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 405, "not allowed"),
        // Passkeys that try to be paths (the tracker is open, so they are ignored or not found).
        ("passkey path traversal", get(&format!("/../announce?{good}&left=5")), 200, "peers"),
        ("encoded traversal", get(&format!("/%2e%2e%2fetc/announce?{good}&left=5")), 200, "peers"),
        ("deep traversal", get("/a/../../announce"), 404, "not found"),
        // Admin bodies.
        ("bad JSON", post("/add_torrent_info", "{not json"), 400, "not valid JSON"),
        ("JSON array", post("/add_torrent_info", "[1,2]"), 400, "JSON object"),
        ("JSON string", post("/add_torrent_info", "\"x\""), 400, "JSON object"),
        ("deeply nested JSON", post("/add_torrent_info", &format!("{}{}", "[".repeat(5000), "]".repeat(5000))), 400, "not valid JSON"),
        ("wrong type", post("/add_torrent_info", &format!("{{\"info_hash\": \"{}\", \"size\": \"big\"}}", "ab".repeat(20))), 400, "size must be"),
        ("negative size", post("/add_torrent_info", &format!("{{\"info_hash\": \"{}\", \"size\": -1}}", "ab".repeat(20))), 400, "size must be"),
        ("huge number", post("/add_torrent_info", &format!("{{\"info_hash\": \"{}\", \"size\": 1e999}}", "ab".repeat(20))), 400, "not valid JSON"),
        ("user name with a slash", post("/users", "{\"name\": \"../root\"}"), 400, "user names are"),
        ("user name too long", post("/users", &format!("{{\"name\": \"{}\"}}", "u".repeat(65))), 400, "user names are"),
        ("remove an unknown torrent", b"DELETE /torrents/zz HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 400, "info hash"),
        // Access: the tracker only trusts proxies in 10.0.0.0/8, so this loopback caller's
        // X-Forwarded-For is ignored and it stays a loopback caller.
        ("forged X-Forwarded-For", b"GET /users HTTP/1.1\r\nX-Forwarded-For: 10.1.1.1\r\nConnection: close\r\n\r\n".to_vec(), 200, "users"),
    ];
    cases.push((
        "absolute URI",
        get("http://elsewhere.example/announce"),
        404,
        "not found",
    ));
    assert!(cases.len() >= 50, "{} cases", cases.len());

    for (what, raw, status, needle) in &cases {
        let (got, body) = send_raw(&tracker, raw).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(got, *status, "{what}: {body}");
        assert!(body.contains(needle), "{what}: {needle:?} not in {body:?}");
        // The tracker still answers after each one.
        assert_eq!(tracker.get("/stats").status, 200, "after {what}");
    }
    let after = tracker.get("/stats").json();
    assert_eq!(
        after.as_object().unwrap().len(),
        before.as_object().unwrap().len(),
        "no torrent was created"
    );
    assert_eq!(
        after[hex(&id(1))]["stats"]["peers"],
        1,
        "the good announces all came from one peer"
    );
}

#[test]
fn a_thousand_pipelined_requests_on_one_connection_are_all_answered() {
    let tracker = Tracker::start(&[]);
    let mut stream = TcpStream::connect(tracker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let padding = "x".repeat(900);
    let one = format!(
        "GET /scrape?info_hash={}&pad={padding} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        escape(&id(1))
    );
    let mut all = one.repeat(999).into_bytes();
    all.extend_from_slice(
        one.replace("Host: 127.0.0.1", "Host: 127.0.0.1\r\nConnection: close")
            .as_bytes(),
    );
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || stream.write_all(&all))
    };
    let mut answers = Vec::new();
    stream.read_to_end(&mut answers).unwrap();
    writer.join().unwrap().unwrap();
    let count = answers
        .windows(15)
        .filter(|w| w == b"HTTP/1.1 200 OK")
        .count();
    assert_eq!(count, 1000);
}

#[test]
fn a_client_that_half_closes_still_gets_a_slow_answer() {
    let tracker = Tracker::start(&[]);
    let mut stream = TcpStream::connect(tracker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.ends_with("{}\n"),
        "{text:?}"
    );
}
