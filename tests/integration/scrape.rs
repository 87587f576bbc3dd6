use crate::common::*;

fn announce(tracker: &Tracker, hash: &[u8], peer: u32, left: u64, event: &str) {
    let reply = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port={}&left={left}&event={event}",
        escape(hash),
        escape(&id(peer)),
        1000 + peer
    ));
    assert_eq!(failure(&reply), None);
}

#[test]
fn scrape_is_bencoded_with_raw_hash_keys_and_completion_counts() {
    let tracker = Tracker::start(&[]);
    let (a, b) = (id(1), id(2));
    announce(&tracker, &a, 1, 0, "started");
    announce(&tracker, &a, 2, 5, "started");
    announce(&tracker, &a, 3, 0, "completed");
    announce(&tracker, &b, 4, 9, "started");
    let reply = tracker.get(&format!(
        "/scrape?info_hash={}&info_hash={}",
        escape(&a),
        escape(&b)
    ));
    assert_eq!(reply.status, 200);
    let files = field(&reply.bencode(), "files").clone();
    let Bencode::Dict(map) = &files else {
        panic!("files is a dict")
    };
    let mut keys: Vec<&Vec<u8>> = map.keys().collect();
    keys.sort();
    assert_eq!(keys, vec![&a.to_vec(), &b.to_vec()]);
    let of_a = &map[&a.to_vec()];
    assert_eq!(int(field(of_a, "complete")), 2);
    assert_eq!(int(field(of_a, "incomplete")), 1);
    assert_eq!(
        int(field(of_a, "downloaded")),
        1,
        "downloaded counts completions, not bytes"
    );
    assert_eq!(int(field(&map[&b.to_vec()], "incomplete")), 1);
}

#[test]
fn unknown_hashes_are_simply_absent() {
    let tracker = Tracker::start(&[]);
    let reply = tracker.get(&format!("/scrape?info_hash={}", escape(&id(77))));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"d5:filesdee");
}

#[test]
fn bad_scrapes_get_a_failure_reason() {
    let tracker = Tracker::start(&[]);
    let too_many: Vec<String> = (0..101)
        .map(|n| format!("info_hash={}", escape(&id(n))))
        .collect();
    for (q, reason) in [
        (String::new(), "missing info_hash"),
        (
            "info_hash=abc".to_owned(),
            "info_hash must be 20 bytes, got 3",
        ),
        (
            too_many.join("&"),
            "too many info_hash values (at most 100)",
        ),
    ] {
        let reply = tracker.get(&format!("/scrape?{q}"));
        assert_eq!(reply.status, 200);
        assert_eq!(failure(&reply.bencode()).as_deref(), Some(reason));
    }
}

#[test]
fn json_scrape_uses_hex_keys_for_people() {
    let tracker = Tracker::start(&[]);
    let hash = id(3);
    tracker.post_json(
        "/add_torrent_info",
        &format!(r#"{{"info_hash": "{}", "name": "disk.img"}}"#, hex(&hash)),
    );
    announce(&tracker, &hash, 1, 0, "completed");
    let expected = serde_json::json!({"files": {hex(&hash): {
        "complete": 1, "incomplete": 0, "downloaded": 1, "name": "disk.img"}}});
    let by_query = tracker.get(&format!("/scrape?info_hash={}&format=json", escape(&hash)));
    assert_eq!(by_query.header("Content-Type"), Some("application/json"));
    assert_eq!(by_query.json(), expected);
    let by_header = tracker.request(
        "GET",
        &format!("/scrape?info_hash={}", escape(&hash)),
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(by_header.json(), expected);
}
