use std::fs;

use serde_json::json;

use crate::common::*;

fn register(tracker: &Tracker, n: u32, name: &str) {
    let reply = tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hex(&id(n)), "name": name}).to_string(),
    );
    assert_eq!(reply.status, 200);
}

fn announce(tracker: &Tracker, n: u32, peer: u32, extra: &str) {
    let reply = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port={}{extra}",
        escape(&id(n)),
        escape(&id(peer)),
        peer
    ));
    assert_eq!(failure(&reply), None);
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start_in(dir.path(), &[]);
    register(&tracker, 1, "kept.iso");
    announce(&tracker, 1, 500, "&left=0&event=completed");
    announce(&tracker, 2, 501, "&left=9");
    let before = tracker.get("/stats").json();
    let bye = tracker.request("POST", "/shutdown", &[], b"");
    assert_eq!(bye.json(), json!({"message": "Server shutting down..."}));
    assert!(tracker.wait().success());

    let again = Tracker::start_in(dir.path(), &[]);
    assert_eq!(again.get("/stats").json(), before);
    let seen = again.announce(&format!(
        "info_hash={}&peer_id={}&port=9",
        escape(&id(2)),
        escape(&id(502))
    ));
    assert_eq!(
        bytes(field(&seen, "peers")).len(),
        6,
        "the peer restored from the file is handed out"
    );
}

#[test]
fn ctrl_c_saves_before_exiting() {
    let mut tracker = Tracker::start(&["--save-interval", "0"]);
    register(&tracker, 3, "interrupted");
    assert!(!tracker.state_path().exists());
    let status = tracker.interrupt();
    assert!(status.success(), "{status}");
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(tracker.state_path()).unwrap()).unwrap();
    assert_eq!(saved["version"], 2);
    assert_eq!(
        saved["torrents"][hex(&id(3))]["info"]["name"],
        "interrupted"
    );
    assert!(
        tracker.stderr().contains("saved 1 torrents"),
        "{}",
        tracker.stderr()
    );
}

#[test]
fn sigterm_saves_too() {
    let mut tracker = Tracker::start(&["--save-interval", "0"]);
    register(&tracker, 4, "terminated");
    tracker.signal(libc::SIGTERM);
    assert!(tracker.wait().success());
    assert!(fs::read_to_string(tracker.state_path())
        .unwrap()
        .contains("terminated"));
}

#[test]
fn torrents_without_live_peers_keep_their_metadata_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        "tests/fixtures/legacy/tracker_state.qbittorrent.json",
        dir.path().join("tracker_state.json"),
    )
    .unwrap();
    let tracker = Tracker::start_in(dir.path(), &[]);
    let stats = tracker.get("/stats").json();
    let entry = &stats["e34b5b897bca1ac46ca7992c358ac87f1e0eaddb"];
    assert_eq!(entry["creation_date"], 1738111617);
    assert_eq!(
        entry["stats"]["peers"], 0,
        "the fixture's peers expired long ago"
    );
}

#[test]
fn legacy_file_is_kept_beside_the_first_new_save() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = "tests/fixtures/legacy/tracker_state.binary-keys.json";
    fs::copy(fixture, dir.path().join("tracker_state.json")).unwrap();
    let mut tracker = Tracker::start_in(dir.path(), &[]);
    let stats = tracker.get("/stats").json();
    let mut keys: Vec<&String> = stats.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(keys.contains(&&"d74e6149af947b9e0fc4af58c800dd8d34d56e27".to_owned()));
    let log = tracker.stderr();
    assert!(log.contains("ambiguous"), "{log}");
    assert!(log.contains("\"abc\": not a 20-byte info hash"), "{log}");

    assert_eq!(tracker.interrupt().code(), Some(0));
    assert_eq!(
        fs::read(dir.path().join("tracker_state.json.legacy")).unwrap(),
        fs::read(fixture).unwrap(),
        "the original file is kept byte for byte"
    );
    let new: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("tracker_state.json")).unwrap()).unwrap();
    assert_eq!(new["version"], 2);
    assert_eq!(new["torrents"].as_object().unwrap().len(), 6);
}

#[test]
fn an_unreadable_state_file_stops_startup_and_is_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracker_state.json");
    let broken = "{\n  \"torrents\": {\n    \"x\": {\"info\": \n";
    fs::write(&path, broken).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tinytracker"))
        .args(["--bind", "127.0.0.1:0", "--state-file"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "it never started listening");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:4:", path.display())),
        "path and line: {stderr}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
}

#[test]
fn the_example_state_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        "tracker_state.json.example",
        dir.path().join("tracker_state.json"),
    )
    .unwrap();
    let tracker = Tracker::start_in(dir.path(), &[]);
    let stats = tracker.get("/stats").json();
    assert_eq!(
        stats["5bc87edad4bb99237b42070345e0379673755845"]["name"],
        "studio-build-1.4.2.zip"
    );
    assert_eq!(
        stats["e34b5b897bca1ac46ca7992c358ac87f1e0eaddb"]["stats"]["completed"],
        1
    );
}

/// A current-format state file with one peer seen `age_secs` ago per entry.
fn state_with_peers(ages_secs: &[u64]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let peers: Vec<serde_json::Value> = ages_secs
        .iter()
        .enumerate()
        .map(|(i, age)| {
            json!({"peer_id": format!("-XX0001-{i:012}"), "ip": "10.0.0.1", "port": 1000 + i,
                "last_seen": now - age, "uploaded": 0, "downloaded": 0, "left": 5, "is_seeder": false})
        })
        .collect();
    json!({"version": 2, "torrents": {hex(&id(1)): {"info": {"name": "t"}, "peers_info": peers}}})
        .to_string()
}

#[test]
fn peers_older_than_the_timeout_are_gone_after_loading() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("tracker_state.json"),
        state_with_peers(&[10, 3000, 3700, 90_000]),
    )
    .unwrap();
    let tracker = Tracker::start_in(dir.path(), &[]);
    let stats = tracker.get("/stats").json();
    assert_eq!(
        stats[hex(&id(1))]["stats"]["incomplete"],
        2,
        "the default timeout is 3600 s"
    );
    let seen = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=9&numwant=50",
        escape(&id(1)),
        escape(&id(9))
    ));
    assert_eq!(bytes(field(&seen, "peers")).len(), 2 * 6);
}

#[test]
fn a_restart_after_long_downtime_keeps_torrents_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start_in(dir.path(), &[]);
    register(&tracker, 5, "survivor.iso");
    announce(&tracker, 5, 600, "&left=3");
    assert!(tracker.interrupt().success());
    // Pretend the tracker was down for a day: every saved peer is now a day old.
    let path = dir.path().join("tracker_state.json");
    let mut saved: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for peer in saved["torrents"][hex(&id(5))]["peers_info"]
        .as_array_mut()
        .unwrap()
    {
        peer["last_seen"] = json!(peer["last_seen"].as_u64().unwrap() - 86_400);
    }
    fs::write(&path, saved.to_string()).unwrap();

    let again = Tracker::start_in(dir.path(), &[]);
    let stats = again.get("/stats").json();
    assert_eq!(stats[hex(&id(5))]["name"], "survivor.iso");
    assert_eq!(stats[hex(&id(5))]["stats"]["peers"], 0);
}

/// A request whose body never finishes: its connection stays busy, so shutdown has to wait for it
/// (up to its grace period). Kept open as long as the returned stream lives.
fn unfinished_request(tracker: &Tracker) -> std::net::TcpStream {
    use std::io::Write;
    let mut slow = std::net::TcpStream::connect(tracker.addr).unwrap();
    slow.write_all(b"POST /add_torrent_info HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{")
        .unwrap();
    slow
}

#[test]
fn a_second_ctrl_c_exits_at_once_without_saving() {
    let mut tracker = Tracker::start(&["--save-interval", "0"]);
    register(&tracker, 6, "never saved");
    let _slow = unfinished_request(&tracker);
    tracker.signal(libc::SIGINT);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !tracker.stderr().contains("interrupted") {
        assert!(
            std::time::Instant::now() < deadline,
            "the first interrupt was never handled"
        );
        std::thread::yield_now();
    }
    tracker.signal(libc::SIGINT);
    assert_eq!(tracker.wait().code(), Some(130));
    assert!(
        !tracker.state_path().exists(),
        "the second interrupt skips the save"
    );
}

#[test]
fn a_slow_client_does_not_keep_shutdown_from_saving() {
    let mut tracker = Tracker::start(&["--save-interval", "0", "--workers", "1"]);
    register(&tracker, 7, "saved anyway");
    let _slow = unfinished_request(&tracker);
    tracker.signal(libc::SIGTERM);
    assert!(tracker.wait().success());
    assert!(fs::read_to_string(tracker.state_path())
        .unwrap()
        .contains("saved anyway"));
}

/// Waits (bounded) until the tracker's log has `count` lines containing `needle`.
fn until_logged(tracker: &Tracker, needle: &str, count: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = tracker.stderr();
        if log.matches(needle).count() >= count {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} ×{count} in:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn timed_saves_do_not_rewrite_an_unchanged_state() {
    let tracker = Tracker::start(&["--save-interval", "1", "--log-level", "debug"]);
    tracker.post_json(
        "/add_torrent_info",
        &serde_json::json!({"info_hash": hex(&id(1)), "name": "once"}).to_string(),
    );
    until_logged(&tracker, "saved 1 torrents", 1);
    let written = std::fs::metadata(tracker.state_path())
        .unwrap()
        .modified()
        .unwrap();
    let log = until_logged(&tracker, "nothing changed since the last save", 2);
    assert_eq!(log.matches("saved 1 torrents").count(), 1, "{log}");
    assert_eq!(
        std::fs::metadata(tracker.state_path())
            .unwrap()
            .modified()
            .unwrap(),
        written
    );
    // A change is saved on the next tick.
    tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=1",
        escape(&id(1)),
        escape(&id(2))
    ));
    until_logged(&tracker, "saved 1 torrents, 1 peers", 1);
}

#[test]
fn a_request_half_received_at_shutdown_is_finished_and_saved() {
    use std::io::{Read, Write};
    let mut tracker = Tracker::start(&["--save-interval", "0", "--public-metrics"]);
    let body =
        serde_json::json!({"info_hash": hex(&id(9)), "name": "finished in the grace"}).to_string();
    let (first, rest) = body.split_at(10);
    let mut slow = std::net::TcpStream::connect(tracker.addr).unwrap();
    write!(
        slow,
        "POST /add_torrent_info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    // The tracker holds the partial request once its connection gauge counts it beside ours.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = tracker.get("/metrics").text();
        let open: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tinytracker_open_connections "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        if open >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the partial request never arrived"
        );
    }
    tracker.signal(libc::SIGTERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !tracker.stderr().contains("shutting down") {
        assert!(
            std::time::Instant::now() < deadline,
            "no shutdown:\n{}",
            tracker.stderr()
        );
        std::thread::yield_now();
    }
    // Within the grace period: the rest of the body arrives and gets its answer.
    slow.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(tracker.wait().success());
    let saved = fs::read_to_string(tracker.state_path()).unwrap();
    assert!(
        saved.contains("finished in the grace"),
        "the finished request was saved"
    );
}
