//! The way back to the Python tracker: `tinytracker state export --legacy OUT` writes a file the
//! original's loader (tests/e2e/legacy_loader.py) reads with nothing lost that it can hold.

use std::process::Command;

use serde_json::json;
use tinytracker::legacy::werkzeug_key;

use crate::common::*;

fn export(state: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tinytracker"))
        .args(["state", "export", "--legacy"])
        .arg(out)
        .arg("--state-file")
        .arg(state)
        .output()
        .unwrap()
}

#[test]
fn an_export_loads_in_the_original_and_back_in_tinytracker() {
    let mut tracker = Tracker::start(&[]);
    let (seeded, empty) = (id(1), id(2));
    tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hex(&seeded), "name": "データ set", "size": 1234, "comment": "lab"})
            .to_string(),
    );
    tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hex(&empty), "name": "nobody seeds"}).to_string(),
    );
    let peer = *b"-XX0001-\xff\x00\x80%A\xc3\xa9\x01\x02\x03~\x7f";
    let answer = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=51413&left=0&uploaded=99",
        escape(&seeded),
        escape(&peer)
    ));
    assert_eq!(failure(&answer), None);
    assert!(tracker.interrupt().success(), "the tracker saves and stops");

    let out = tracker.dir.join("python_state.json");
    let done = export(&tracker.state_path(), &out);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(said.contains("wrote 2 torrents and 1 peers"), "{said}");

    let loaded = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/legacy_loader.py"
        ))
        .arg(&out)
        .output()
        .expect("running python3");
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let loaded: serde_json::Value = serde_json::from_slice(&loaded.stdout).unwrap();
    assert_eq!(loaded["error"], serde_json::Value::Null, "{loaded}");
    let key = werkzeug_key(&seeded);
    let info = &loaded["torrent_info"][&key];
    assert_eq!(info["name"], "データ set");
    assert_eq!(
        (info["size"].as_u64(), info["comment"].as_str()),
        (Some(1234), Some("lab"))
    );
    assert_eq!(info["info_hash"], key.as_str());
    let peers = loaded["torrents"][&key].as_array().unwrap();
    assert_eq!(peers.len(), 1, "{loaded}");
    assert_eq!(peers[0]["peer_id"], werkzeug_key(&peer).as_str());
    assert_eq!(
        (peers[0]["ip"].as_str(), peers[0]["port"].as_u64()),
        (Some("127.0.0.1"), Some(51413))
    );
    assert_eq!(
        (
            peers[0]["uploaded"].as_u64(),
            peers[0]["is_seeder"].as_bool()
        ),
        (Some(99), Some(true))
    );
    // The original keeps a torrent without peers only as metadata (its "peers_info": [] case).
    assert_eq!(
        loaded["torrent_info"][werkzeug_key(&empty)]["name"],
        "nobody seeds"
    );
    assert!(loaded["torrents"].get(werkzeug_key(&empty)).is_none());

    // And back: tinytracker reads the exported file as a Python tracker's file.
    let back = tempfile::tempdir().unwrap();
    std::fs::copy(&out, back.path().join("tracker_state.json")).unwrap();
    let again = Tracker::start_in(back.path(), &[]);
    let stats = again.get("/stats").json();
    assert_eq!(stats[hex(&seeded)]["name"], "データ set", "{stats}");
    assert_eq!(stats[hex(&seeded)]["stats"]["complete"], 1);
    assert_eq!(stats[hex(&empty)]["name"], "nobody seeds");
}

#[test]
fn an_export_never_overwrites_and_says_why_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let missing = export(&dir.path().join("nothing.json"), &out);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no state file"));
    std::fs::write(
        dir.path().join("tracker_state.json"),
        r#"{"version": 2, "torrents": {}}"#,
    )
    .unwrap();
    std::fs::write(&out, "keep me").unwrap();
    let refused = export(&dir.path().join("tracker_state.json"), &out);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not overwritten") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
}

#[test]
fn stored_files_are_served_again_after_a_round_trip_through_the_legacy_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let mut tracker = Tracker::start_in(&dir, &[]);
    let file = fixture("single-file.torrent");
    let hash = tinytracker::metainfo::parse(&file)
        .unwrap()
        .v1
        .unwrap()
        .to_hex();
    let uploaded = tracker.request(
        "POST",
        "/api/v1/torrents",
        &[("Content-Type", "application/x-bittorrent")],
        &file,
    );
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    assert!(tracker.interrupt().success());
    let state = dir.join("tracker_state.json");
    let legacy = dir.join("legacy.json");
    let out = export(&state, &legacy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!std::fs::read_to_string(&legacy).unwrap().contains("stored"));
    std::fs::rename(&legacy, &state).unwrap();

    let tracker = Tracker::start_in(&dir, &[]);
    assert!(
        tracker
            .stderr()
            .contains("its stored .torrent file is served again"),
        "{}",
        tracker.stderr()
    );
    let served = tracker.get(&format!("/api/v1/torrents/{hash}/download"));
    assert_eq!(served.status, 200, "{}", served.text());
    let again = tinytracker::metainfo::parse(&served.body).unwrap();
    assert_eq!(again.v1.unwrap().to_hex(), hash);
}
