use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};

use crate::common::*;

const PEER_A: &[u8; 20] = b"-TR3000-aaaaaaaaaaaa";
const PEER_B: &[u8; 20] = b"-qB4250-bbbbbbbbbbbb";

fn query(hash: &[u8], peer: &[u8], port: u16, extra: &str) -> String {
    format!(
        "info_hash={}&peer_id={}&port={port}{extra}",
        escape(hash),
        escape(peer)
    )
}

/// The compact `peers` string as (ip, port) pairs.
fn compact_peers(reply: &Bencode) -> Vec<SocketAddr> {
    let raw = bytes(field(reply, "peers"));
    assert_eq!(raw.len() % 6, 0, "compact peers come in 6-byte entries");
    raw.chunks(6)
        .map(|c| {
            SocketAddr::from((
                Ipv4Addr::new(c[0], c[1], c[2], c[3]),
                u16::from_be_bytes([c[4], c[5]]),
            ))
        })
        .collect()
}

#[test]
fn second_peer_gets_the_first_as_a_compact_entry() {
    let tracker = Tracker::start(&[]);
    let hash = id(1);
    let first = tracker.announce(&query(&hash, PEER_A, 6881, "&left=100&event=started"));
    assert!(
        compact_peers(&first).is_empty(),
        "the requester is never in its own list"
    );
    assert_eq!(
        (
            int(field(&first, "complete")),
            int(field(&first, "incomplete"))
        ),
        (0, 1)
    );

    let second = tracker.announce(&query(&hash, PEER_B, 6882, "&left=0&event=started"));
    assert_eq!(
        compact_peers(&second),
        vec!["127.0.0.1:6881".parse().unwrap()]
    );
    assert_eq!(
        (
            int(field(&second, "complete")),
            int(field(&second, "incomplete"))
        ),
        (1, 1)
    );
    assert_eq!(int(field(&second, "downloaded")), 0);
    let interval = int(field(&second, "interval"));
    assert!(
        (1710..=1890).contains(&interval),
        "interval {interval} is 1800 ± 5 %"
    );
    assert_eq!(int(field(&second, "min interval")), 900);
}

#[test]
fn response_keys_are_sorted_as_raw_bytes() {
    let tracker = Tracker::start(&[]);
    let reply = tracker.get(&format!("/announce?{}", query(&id(2), PEER_A, 1, "")));
    let body = reply.body;
    let positions: Vec<usize> = [
        "8:complete",
        "10:downloaded",
        "10:incomplete",
        "8:interval",
        "12:min interval",
        "5:peers",
    ]
    .iter()
    .map(|k| {
        body.windows(k.len())
            .position(|w| w == k.as_bytes())
            .expect(k)
    })
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(
        reply
            .headers
            .iter()
            .find(|(n, _)| n == "Content-Type")
            .map(|(_, v)| v.as_str()),
        Some("text/plain")
    );
}

#[test]
fn root_path_is_an_announce_too() {
    let tracker = Tracker::start(&[]);
    let reply = tracker.get(&format!("/?{}", query(&id(3), PEER_A, 1, "")));
    assert_eq!(reply.status, 200);
    assert!(has_field(&reply.bencode(), "peers"));
}

#[test]
fn non_compact_answers_carry_raw_peer_ids_unless_asked_not_to() {
    let tracker = Tracker::start(&[]);
    let hash = id(4);
    let binary_peer: [u8; 20] = id(99);
    tracker.announce(&query(&hash, &binary_peer, 7000, "&left=5"));
    let dicts = tracker.announce(&query(&hash, PEER_B, 7001, "&compact=0"));
    let Bencode::List(peers) = field(&dicts, "peers") else {
        panic!("peers is a list")
    };
    assert_eq!(peers.len(), 1);
    assert_eq!(bytes(field(&peers[0], "peer id")), &binary_peer[..]);
    assert_eq!(bytes(field(&peers[0], "ip")), b"127.0.0.1");
    assert_eq!(int(field(&peers[0], "port")), 7000);

    let without = tracker.announce(&query(&hash, PEER_B, 7001, "&compact=0&no_peer_id=1"));
    let Bencode::List(peers) = field(&without, "peers") else {
        panic!("peers is a list")
    };
    assert!(!has_field(&peers[0], "peer id"));
}

#[test]
fn bad_announces_get_a_failure_reason_and_change_nothing() {
    let tracker = Tracker::start(&[]);
    let good_hash = escape(&id(5));
    let good_peer = escape(PEER_A);
    let cases = [
        (format!("peer_id={good_peer}&port=1"), "missing info_hash"),
        (
            format!("info_hash=&peer_id={good_peer}&port=1"),
            "missing info_hash",
        ),
        (
            format!("info_hash=abc&peer_id={good_peer}&port=1"),
            "info_hash must be 20 bytes, got 3",
        ),
        (
            format!("info_hash={good_hash}%00&peer_id={good_peer}&port=1"),
            "info_hash must be 20 bytes, got 21",
        ),
        (format!("info_hash={good_hash}&port=1"), "missing peer_id"),
        (
            format!("info_hash={good_hash}&peer_id=%ZZ%4&port=1"),
            "peer_id must be 20 bytes, got 5",
        ),
        (
            format!("info_hash={good_hash}&peer_id={good_peer}"),
            "missing port",
        ),
        (
            format!("info_hash={good_hash}&peer_id={good_peer}&port=0"),
            "port must be between 1 and 65535",
        ),
        (
            format!("info_hash={good_hash}&peer_id={good_peer}&port=99999999"),
            "port must be between 1 and 65535",
        ),
        (
            format!("info_hash={good_hash}&peer_id={good_peer}&port=x"),
            "port must be between 1 and 65535",
        ),
        (
            format!("info_hash={good_hash}&peer_id={good_peer}&port=1&left=-3"),
            "left is not a valid number",
        ),
        (
            format!("info_hash={good_hash}&peer_id={good_peer}&port=1&uploaded=1_000"),
            "uploaded is not a valid number",
        ),
        (
            format!(
                "info_hash={good_hash}&peer_id={good_peer}&port=1&downloaded={}",
                "9".repeat(5000)
            ),
            "downloaded is not a valid number",
        ),
    ];
    for (q, reason) in cases {
        let reply = tracker.get(&format!("/announce?{q}"));
        assert_eq!(reply.status, 200, "failures are HTTP 200 for {q}");
        assert_eq!(failure(&reply.bencode()).as_deref(), Some(reason), "{q}");
    }
    assert_eq!(tracker.get("/stats").json(), serde_json::json!({}));
}

#[test]
fn unknown_event_is_a_regular_announce() {
    let tracker = Tracker::start(&[]);
    let reply = tracker.announce(&query(&id(6), PEER_A, 1, "&event=bogus&left=1"));
    assert_eq!(failure(&reply), None);
    assert_eq!(int(field(&reply, "incomplete")), 1);
}

#[test]
fn stopped_removes_the_peer_and_returns_no_peers() {
    let tracker = Tracker::start(&[]);
    let hash = id(7);
    tracker.announce(&query(&hash, PEER_A, 1, "&left=0"));
    tracker.announce(&query(&hash, PEER_B, 2, "&left=5"));
    let stopped = tracker.announce(&query(&hash, PEER_B, 2, "&left=5&event=stopped"));
    assert!(compact_peers(&stopped).is_empty());
    assert_eq!(
        (
            int(field(&stopped, "complete")),
            int(field(&stopped, "incomplete"))
        ),
        (1, 0)
    );
    let after = tracker.announce(&query(&hash, PEER_A, 1, "&left=0"));
    assert!(
        compact_peers(&after).is_empty(),
        "a stopped peer is never handed out"
    );
}

#[test]
fn completed_counts_once_per_peer() {
    let tracker = Tracker::start(&[]);
    let hash = id(8);
    tracker.announce(&query(&hash, PEER_A, 1, "&left=5&event=started"));
    tracker.announce(&query(&hash, PEER_A, 1, "&left=0&event=completed"));
    let again = tracker.announce(&query(&hash, PEER_A, 1, "&left=0&event=completed"));
    assert_eq!(int(field(&again, "downloaded")), 1);
    let other = tracker.announce(&query(&hash, PEER_B, 2, "&left=0&event=completed"));
    assert_eq!(int(field(&other, "downloaded")), 2);
}

#[test]
fn a_client_restarting_with_a_new_peer_id_does_not_duplicate_itself() {
    let tracker = Tracker::start(&[]);
    let hash = id(9);
    tracker.announce(&query(&hash, PEER_A, 6881, "&left=5"));
    let restarted = tracker.announce(&query(&hash, b"-TR3000-restartedxxx", 6881, "&left=5"));
    assert_eq!(int(field(&restarted, "incomplete")), 1);
    assert!(compact_peers(&restarted).is_empty());
}

#[test]
fn numwant_is_honoured_and_capped_by_max_numwant() {
    let tracker = Tracker::start(&["--max-numwant", "5"]);
    let hash = id(10);
    for port in 1..=10 {
        tracker.announce(&query(&hash, &id(1000 + u32::from(port)), port, "&left=1"));
    }
    let two = tracker.announce(&query(&hash, PEER_A, 100, "&left=1&numwant=2"));
    assert_eq!(compact_peers(&two).len(), 2);
    let capped = tracker.announce(&query(&hash, PEER_A, 100, "&left=1&numwant=500"));
    let peers = compact_peers(&capped);
    assert_eq!(peers.len(), 5);
    assert_eq!(peers.iter().collect::<HashSet<_>>().len(), 5);
    let default = tracker.announce(&query(&hash, PEER_A, 100, "&left=1"));
    assert_eq!(
        compact_peers(&default).len(),
        5,
        "the default (50) is capped too"
    );
}

#[test]
fn a_seeder_is_given_only_leechers() {
    let tracker = Tracker::start(&[]);
    let hash = id(11);
    tracker.announce(&query(&hash, &id(1), 1, "&left=0"));
    tracker.announce(&query(&hash, &id(2), 2, "&left=7"));
    let seeder = tracker.announce(&query(&hash, &id(3), 3, "&left=0"));
    assert_eq!(compact_peers(&seeder), vec!["127.0.0.1:2".parse().unwrap()]);
}

#[test]
fn head_announce_changes_nothing() {
    let tracker = Tracker::start(&[]);
    let reply = tracker.request(
        "HEAD",
        &format!("/announce?{}", query(&id(12), PEER_A, 1, "")),
        &[],
        b"",
    );
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(tracker.get("/stats").json(), serde_json::json!({}));
}

#[test]
fn ipv6_peers_come_back_in_peers6() {
    let mut tracker = Tracker::start(&["--bind", "[::1]:0"]);
    let v6 = tracker.next_address();
    assert!(v6.is_ipv6());
    let hash = id(13);
    let target = format!("/announce?{}", query(&hash, PEER_A, 51413, "&left=1"));
    let reply = http(v6, "GET", &target, &[], b"");
    assert_eq!(failure(&reply.bencode()), None);
    let other = tracker.announce(&query(&hash, PEER_B, 6881, "&left=1"));
    let peers6 = bytes(field(&other, "peers6"));
    let mut expected = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    expected.extend_from_slice(&51413u16.to_be_bytes());
    assert_eq!(peers6, &expected[..]);
    assert!(compact_peers(&other).is_empty());
}

#[test]
fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let trusting = Tracker::start(&["--trusted-proxy", "127.0.0.0/8"]);
    let hash = id(14);
    let forwarded = [("X-Forwarded-For", "10.9.8.7, 203.0.113.5")];
    let target = format!("/announce?{}", query(&hash, PEER_A, 6881, "&left=1"));
    assert_eq!(
        trusting.request("GET", &target, &forwarded, b"").status,
        200
    );
    let seen = trusting.announce(&query(&hash, PEER_B, 6882, "&left=1"));
    assert_eq!(
        compact_peers(&seen),
        vec!["203.0.113.5:6881".parse().unwrap()]
    );

    let untrusting = Tracker::start(&[]);
    untrusting.request("GET", &target, &forwarded, b"");
    let seen = untrusting.announce(&query(&hash, PEER_B, 6882, "&left=1"));
    assert_eq!(
        compact_peers(&seen),
        vec!["127.0.0.1:6881".parse().unwrap()]
    );
}

#[test]
fn ip_parameter_is_ignored() {
    let tracker = Tracker::start(&[]);
    let hash = id(15);
    tracker.announce(&query(
        &hash,
        PEER_A,
        6881,
        "&left=1&ip=198.51.100.1&ipv4=198.51.100.2",
    ));
    let seen = tracker.announce(&query(&hash, PEER_B, 6882, "&left=1"));
    assert_eq!(
        compact_peers(&seen),
        vec!["127.0.0.1:6881".parse().unwrap()]
    );
}
