//! One tracker per port and per state file, and a state file only its owner can read and that no
//! two writers ever share.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::*;

/// Runs the binary to its exit (it is expected not to start).
fn refused_start(dir: &Path, bind: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinytracker"))
        .args(["--bind", bind, "--state-file"])
        .arg(dir.join("tracker_state.json"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("running tinytracker")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_second_tracker_on_a_port_in_use_fails_to_start() {
    let first = Tracker::start(&[]);
    let other = tempfile::tempdir().unwrap();
    let out = refused_start(other.path(), &first.addr.to_string());
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it printed no listening line");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains(&first.addr.to_string()), "{stderr}");
    // Any program holding the port with SO_REUSEPORT (which a tinytracker's workers share) too.
    let squatter =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    squatter.set_reuse_port(true).unwrap();
    squatter
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    squatter.listen(8).unwrap();
    let port = squatter.local_addr().unwrap().as_socket().unwrap();
    let out = refused_start(other.path(), &port.to_string());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
    // The first tracker still answers every request itself.
    for _ in 0..20 {
        assert_eq!(first.get("/stats").status, 200);
    }
}

#[test]
fn a_second_tracker_on_the_same_state_file_fails_to_start() {
    let first = Tracker::start(&[]);
    let out = refused_start(&first.dir, "127.0.0.1:0");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "it printed no listening line");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another tinytracker"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    // A link to the same file is the same file.
    let other = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(first.state_path(), other.path().join("tracker_state.json"))
        .unwrap();
    let out = refused_start(other.path(), "127.0.0.1:0");
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another tinytracker"));
}

#[test]
fn concurrent_saves_all_leave_a_valid_file() {
    let tracker = Tracker::start(&[]);
    for n in 0..50u32 {
        tracker.post_json(
            "/add_torrent_info",
            &serde_json::json!({"info_hash": hex(&id(n)), "name": format!("t{n}")}).to_string(),
        );
    }
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..10 {
                    let reply = tracker.get("/save_state");
                    assert_eq!(reply.status, 200, "{}", reply.text());
                    let text = std::fs::read_to_string(tracker.state_path()).unwrap();
                    let parsed: serde_json::Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("the file is not JSON after a save: {e}"));
                    assert_eq!(parsed["torrents"].as_object().unwrap().len(), 50);
                }
            });
        }
    });
    let leftovers: Vec<_> = std::fs::read_dir(&tracker.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_state_file_and_the_log_are_the_owners_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tracker.log");
    let log_arg = log.to_string_lossy().into_owned();
    let tracker = Tracker::start_in(dir.path(), &["--log-file", &log_arg]);
    tracker.post_json("/users", r#"{"name": "alice"}"#);
    assert_eq!(tracker.get("/save_state").status, 200);
    assert_eq!(
        mode(&tracker.state_path()),
        0o600,
        "the state file holds every passkey"
    );
    assert_eq!(mode(&log), 0o600);
    // An operator's choice of mode is kept.
    std::fs::set_permissions(tracker.state_path(), std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(tracker.get("/save_state").status, 200);
    assert_eq!(mode(&tracker.state_path()), 0o640);
}

#[test]
fn saves_go_through_a_symlink_to_the_real_file() {
    let volume = tempfile::tempdir().unwrap();
    let real = volume.path().join("real_state.json");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("tracker_state.json")).unwrap();
    let tracker = Tracker::start_in(dir.path(), &[]);
    tracker.post_json(
        "/add_torrent_info",
        &serde_json::json!({"info_hash": hex(&id(1)), "name": "linked"}).to_string(),
    );
    assert_eq!(tracker.get("/save_state").status, 200);
    let link = std::fs::symlink_metadata(dir.path().join("tracker_state.json")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the link was replaced by a file"
    );
    assert!(std::fs::read_to_string(&real).unwrap().contains("linked"));
}

#[test]
fn an_array_is_refused_and_a_repeated_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tracker_state.json"), "[]").unwrap();
    let out = refused_start(dir.path(), "127.0.0.1:0");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expected a JSON object"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tracker_state.json")).unwrap(),
        "[]"
    );
    let key = hex(&id(3));
    std::fs::write(
        dir.path().join("tracker_state.json"),
        format!(r#"{{"version": 2, "torrents": {{"{key}": {{"registered": true}}, "{key}": {{"registered": true, "completions": 4}}}}}}"#),
    )
    .unwrap();
    let tracker = Tracker::start_in(dir.path(), &[]);
    assert_eq!(tracker.get("/stats").json()[&key]["stats"]["completed"], 4);
    assert!(tracker
        .stderr()
        .contains(&format!("torrent key \"{key}\" appears more than once")));
}

#[test]
fn temp_files_of_an_interrupted_save_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".tracker_state.json.4242.7.tmp");
    std::fs::write(&stale, vec![b'{'; 5000]).unwrap();
    let tracker = Tracker::start_in(dir.path(), &[]);
    assert!(!stale.exists());
    let log = tracker.stderr();
    assert!(
        log.contains(
            ".tracker_state.json.4242.7.tmp (5000 bytes) left by a save that was interrupted"
        ),
        "{log}"
    );
}
