//! The index against the real binary: `.torrent` uploads stored as they are, and downloads that
//! carry the caller's passkey with the info dictionary untouched.

use crate::common::*;
use tinytracker::protocol::metainfo;

fn upload(tracker: &Tracker, body: &[u8]) -> Reply {
    tracker.request(
        "POST",
        "/api/v1/torrents",
        &[("Content-Type", "application/x-bittorrent")],
        body,
    )
}

/// A top-level text entry of a served file.
fn top_text(file: &[u8], key: &str) -> String {
    let value: Bencode = serde_bencode::from_bytes(file).expect("the served file is bencode");
    String::from_utf8(bytes(field(&value, key)).to_vec()).unwrap()
}

#[test]
fn a_private_upload_is_served_with_the_users_passkey_and_its_own_info_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let tracker = Tracker::start_in(&dir, &["--private"]);
    let user = tracker.post_json("/users", r#"{"name": "alice"}"#).json();
    let passkey = user["passkey"].as_str().unwrap().to_owned();
    let stored = fixture("extra-info-key.torrent");
    let hash = metainfo::parse(&stored).unwrap().v1.unwrap().to_hex();

    let reply = upload(&tracker, &stored);
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["info_hash"], hash);
    assert_eq!(reply.json()["created"], true);
    let again = upload(&tracker, &stored);
    assert_eq!(again.status, 200, "{}", again.text());

    let served = tracker.get(&format!("/{passkey}/download/{hash}"));
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(
        served.header("Content-Type"),
        Some("application/x-bittorrent")
    );
    let disposition = served.header("Content-Disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=")
            && disposition.contains("filename*=UTF-8''"),
        "{disposition}"
    );
    let announce = format!("http://{}/{passkey}/announce", tracker.addr);
    assert_eq!(top_text(&served.body, "announce"), announce);
    let meta = metainfo::parse(&served.body).unwrap();
    assert_eq!(
        meta.v1.unwrap().to_hex(),
        hash,
        "the info hash is untouched"
    );
    assert!(top_text(&served.body, "comment").ends_with(&format!("/api/v1/torrents/{hash}")));

    // A stranger's passkey, an unknown hash, a hash that is no hash.
    let refused = tracker.get(&format!("/{}/download/{hash}", "A".repeat(32)));
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["error"], "invalid passkey");
    let unknown = tracker.get(&format!("/{passkey}/download/{}", "00".repeat(20)));
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let bad = tracker.get(&format!("/{passkey}/download/xyz"));
    assert_eq!(bad.status, 400, "{}", bad.text());

    // The state file says the file is stored; a restart still serves it.
    let saved = tracker.get("/save_state");
    assert_eq!(saved.status, 200);
    let state = std::fs::read_to_string(tracker.state_path()).unwrap();
    assert!(state.contains("\"stored\": true"), "{state}");
    drop(tracker);
    let tracker = Tracker::start_in(&dir, &["--private"]);
    let served = tracker.get(&format!("/{passkey}/download/{hash}"));
    assert_eq!(served.status, 200, "{}", served.text());

    // Removing the torrent removes its file.
    let removed = tracker.request("DELETE", &format!("/torrents/{hash}"), &[], b"");
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert!(!dir
        .join(format!("tracker_state.torrents/{hash}.torrent"))
        .exists());
    let gone = tracker.get(&format!("/{passkey}/download/{hash}"));
    assert_eq!(gone.status, 404, "{}", gone.text());
}

#[test]
fn a_private_tracker_refuses_a_public_torrent_and_bad_uploads_change_nothing() {
    let tracker = Tracker::start(&["--private"]);
    let public = fixture("single-file.torrent");
    let reply = upload(&tracker, &public);
    assert_eq!(reply.status, 400, "{}", reply.text());
    let error = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("not private") && error.contains("DHT"),
        "{error}"
    );

    let wrong_type = tracker.request(
        "POST",
        "/api/v1/torrents",
        &[("Content-Type", "text/plain")],
        &fixture("extra-info-key.torrent"),
    );
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.text());
    for body in [
        fixture("garbage.torrent"),
        fixture("truncated.torrent"),
        b"d4:infoi1ee".to_vec(),
    ] {
        let reply = upload(&tracker, &body);
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert!(reply.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("not a .torrent file"));
    }
    let torrents = tracker.get("/torrents").json();
    assert_eq!(
        torrents["torrents"].as_array().unwrap().len(),
        0,
        "{torrents}"
    );
    assert!(
        !tracker.dir.join("tracker_state.torrents").exists()
            || std::fs::read_dir(tracker.dir.join("tracker_state.torrents"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn an_open_tracker_serves_a_hybrid_under_either_hash_with_the_plain_announce_url() {
    let tracker = Tracker::start(&[]);
    let stored = fixture("hybrid-v1-v2.torrent");
    let meta = metainfo::parse(&stored).unwrap();
    let reply = upload(&tracker, &stored);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let v1 = meta.v1.unwrap().to_hex();
    let short = &meta.v2_hex().unwrap()[..40];
    for hash in [v1.as_str(), short] {
        let served = tracker.get(&format!("/api/v1/torrents/{hash}/download"));
        assert_eq!(served.status, 200, "{hash}: {}", served.text());
        assert_eq!(
            top_text(&served.body, "announce"),
            format!("http://{}/announce", tracker.addr)
        );
        let again = metainfo::parse(&served.body).unwrap();
        assert_eq!((again.v1, again.v2), (meta.v1, meta.v2));
    }
    // Registered by hash alone: nothing to serve.
    let hex = "ab".repeat(20);
    tracker.post_json("/add_torrent_info", &format!(r#"{{"info_hash": "{hex}"}}"#));
    let none = tracker.get(&format!("/api/v1/torrents/{hex}/download"));
    assert_eq!(none.status, 404, "{}", none.text());
    assert!(none.json()["error"]
        .as_str()
        .unwrap()
        .contains("no stored .torrent file"));
}

#[test]
fn a_missing_stored_file_is_reported_at_start_and_on_download_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let mut tracker = Tracker::start_in(&dir, &[]);
    let stored = fixture("multi-file.torrent");
    let hash = metainfo::parse(&stored).unwrap().v1.unwrap().to_hex();
    assert_eq!(upload(&tracker, &stored).status, 201);
    assert!(tracker.interrupt().success());
    let files = dir.join("tracker_state.torrents");
    std::fs::remove_file(files.join(format!("{hash}.torrent"))).unwrap();
    std::fs::write(
        files.join(format!("{}.torrent", "ab".repeat(20))),
        b"left over",
    )
    .unwrap();

    let tracker = Tracker::start_in(&dir, &[]);
    let log = tracker.stderr();
    assert!(
        log.contains("1 torrents are marked stored but have no file") && log.contains(&hash),
        "{log}"
    );
    assert!(log.contains("1 files in"), "{log}");
    let served = tracker.get(&format!("/api/v1/torrents/{hash}/download"));
    assert_eq!(served.status, 404, "{}", served.text());
    assert!(served.text().contains("missing"), "{}", served.text());
    let shown = tracker.get(&format!("/api/v1/torrents/{hash}")).json();
    assert!(
        shown["files_error"].as_str().unwrap().contains("missing"),
        "{shown}"
    );
    // Uploading it again mends it.
    assert_eq!(upload(&tracker, &stored).status, 200);
    assert_eq!(
        tracker
            .get(&format!("/api/v1/torrents/{hash}/download"))
            .status,
        200
    );
}
