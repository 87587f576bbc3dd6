//! Private mode: registered torrents, passkeys, per-user accounting, operator commands.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::*;

fn create_user(tracker: &Tracker, name: &str) -> Value {
    let reply = tracker.post_json("/users", &json!({ "name": name }).to_string());
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()
}

fn passkey(user: &Value) -> String {
    user["passkey"].as_str().unwrap().to_owned()
}

fn register(tracker: &Tracker, n: u32) {
    let reply = tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hex(&id(n)), "name": format!("t{n}")}).to_string(),
    );
    assert_eq!(reply.status, 200);
}

/// An announce through `/<passkey>/announce` (or `/announce` when `key` is empty).
fn announce_with(tracker: &Tracker, key: &str, torrent: u32, port: u16, extra: &str) -> Bencode {
    let prefix = if key.is_empty() {
        String::new()
    } else {
        format!("/{key}")
    };
    let reply = tracker.get(&format!(
        "{prefix}/announce?info_hash={}&peer_id={}&port={port}{extra}",
        escape(&id(torrent)),
        escape(&id(10_000 + u32::from(port)))
    ));
    assert_eq!(reply.status, 200);
    reply.bencode()
}

fn user_totals(tracker: &Tracker, name: &str) -> (u64, u64, u64) {
    let users = tracker.get("/users").json();
    let user = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap()
        .clone();
    (
        user["uploaded"].as_u64().unwrap(),
        user["downloaded"].as_u64().unwrap(),
        user["completed"].as_u64().unwrap(),
    )
}

#[test]
fn every_private_failure_reason_is_a_bencoded_failure() {
    let tracker = Tracker::start(&["--private"]);
    let alice = create_user(&tracker, "alice");
    let key = passkey(&alice);
    register(&tracker, 1);
    let reason = |reply: Bencode| failure(&reply).unwrap_or_default();

    assert_eq!(
        reason(announce_with(&tracker, &key, 2, 1, "")),
        "unregistered torrent"
    );
    assert_eq!(
        reason(announce_with(&tracker, "", 1, 1, "")),
        "invalid passkey"
    );
    assert_eq!(
        reason(announce_with(&tracker, &"x".repeat(32), 1, 1, "")),
        "invalid passkey"
    );
    assert_eq!(
        reason(announce_with(&tracker, "..", 1, 1, "")),
        "invalid passkey"
    );
    assert_eq!(
        reason(announce_with(&tracker, "%2e%2e%2fetc", 1, 1, "")),
        "invalid passkey"
    );
    let scrape = tracker
        .get(&format!("/{key}/scrape?info_hash={}", escape(&id(2))))
        .bencode();
    assert_eq!(reason(scrape), "unregistered torrent");
    let no_key_scrape = tracker
        .get(&format!("/scrape?info_hash={}", escape(&id(1))))
        .bencode();
    assert_eq!(reason(no_key_scrape), "invalid passkey");

    let ok = announce_with(&tracker, &key, 1, 1, "&left=5");
    assert_eq!(failure(&ok), None);
    let by_query = announce_with(&tracker, "", 1, 2, &format!("&left=5&passkey={key}"));
    assert_eq!(failure(&by_query), None, "?passkey= works too");
    assert_eq!(int(field(&by_query, "incomplete")), 2);
    let scraped = tracker
        .get(&format!("/{key}/scrape?info_hash={}", escape(&id(1))))
        .bencode();
    assert_eq!(failure(&scraped), None);

    let stats = tracker.get("/stats").json();
    assert_eq!(
        stats.as_object().unwrap().len(),
        1,
        "refused announces created nothing"
    );
    assert!(
        !stats.to_string().contains("alice"),
        "/stats carries no user data"
    );
}

#[test]
fn rotating_disabling_and_removing_take_effect_on_the_next_announce() {
    let tracker = Tracker::start(&["--private"]);
    register(&tracker, 1);
    let bob = create_user(&tracker, "bob");
    let old = passkey(&bob);
    assert_eq!(failure(&announce_with(&tracker, &old, 1, 1, "")), None);

    let rotated = tracker
        .request("POST", "/users/bob/rotate", &[], b"")
        .json();
    let new = passkey(&rotated);
    assert_ne!(new, old);
    assert_eq!(
        failure(&announce_with(&tracker, &old, 1, 1, "")).as_deref(),
        Some("passkey revoked")
    );
    assert_eq!(failure(&announce_with(&tracker, &new, 1, 1, "")), None);

    assert_eq!(
        tracker
            .request("POST", "/users/bob/disable", &[], b"")
            .status,
        200
    );
    assert_eq!(
        failure(&announce_with(&tracker, &new, 1, 1, "")).as_deref(),
        Some("passkey revoked")
    );
    assert_eq!(
        tracker
            .request("POST", "/users/bob/enable", &[], b"")
            .status,
        200
    );
    assert_eq!(failure(&announce_with(&tracker, &new, 1, 1, "")), None);

    assert_eq!(
        tracker.request("DELETE", "/users/bob", &[], b"").status,
        200
    );
    assert_eq!(
        failure(&announce_with(&tracker, &new, 1, 1, "")).as_deref(),
        Some("passkey revoked")
    );
    assert_eq!(
        tracker.request("DELETE", "/users/bob", &[], b"").status,
        404
    );
}

#[test]
fn accounting_survives_a_tracker_restart_and_a_client_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start_in(dir.path(), &["--private"]);
    register(&tracker, 1);
    let carol = passkey(&create_user(&tracker, "carol"));
    announce_with(
        &tracker,
        &carol,
        1,
        7000,
        "&uploaded=1000&downloaded=0&left=10&event=started",
    );
    announce_with(
        &tracker,
        &carol,
        1,
        7000,
        "&uploaded=1500&downloaded=200&left=10",
    );
    assert_eq!(user_totals(&tracker, "carol"), (500, 200, 0));
    assert!(tracker.interrupt().success());

    let tracker = Tracker::start_in(dir.path(), &["--private"]);
    assert_eq!(
        user_totals(&tracker, "carol"),
        (500, 200, 0),
        "totals are in the state file"
    );
    announce_with(
        &tracker,
        &carol,
        1,
        7000,
        "&uploaded=1600&downloaded=300&left=0&event=completed",
    );
    assert_eq!(
        user_totals(&tracker, "carol"),
        (600, 300, 1),
        "the peer's baseline survived too"
    );
    // The client restarts: its counters start again from zero.
    announce_with(
        &tracker,
        &carol,
        1,
        7000,
        "&uploaded=40&downloaded=0&left=0&event=started",
    );
    assert_eq!(
        user_totals(&tracker, "carol"),
        (600, 300, 1),
        "a counter going down is a new baseline"
    );
    announce_with(
        &tracker,
        &carol,
        1,
        7000,
        "&uploaded=90&downloaded=0&left=0",
    );
    assert_eq!(user_totals(&tracker, "carol").0, 650);
}

#[test]
fn two_users_behind_one_address_keep_their_own_bytes() {
    let tracker = Tracker::start(&["--private"]);
    register(&tracker, 1);
    let dave = passkey(&create_user(&tracker, "dave"));
    let erin = passkey(&create_user(&tracker, "erin"));
    announce_with(&tracker, &dave, 1, 7000, "&uploaded=0&left=10");
    announce_with(&tracker, &erin, 1, 7000, "&uploaded=5000&left=10");
    announce_with(&tracker, &dave, 1, 7000, "&uploaded=6000&left=10");
    announce_with(&tracker, &erin, 1, 7000, "&uploaded=5500&left=10");
    assert_eq!(
        user_totals(&tracker, "dave").0,
        6000,
        "dave's own counter went from 0 to 6000"
    );
    assert_eq!(
        user_totals(&tracker, "erin").0,
        500,
        "erin's first announce was her baseline"
    );
}

#[test]
fn modes_switch_both_ways_over_one_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut open = Tracker::start_in(dir.path(), &[]);
    register(&open, 1);
    announce_with(&open, "", 2, 9, "&left=3");
    assert!(open.interrupt().success());

    let mut private = Tracker::start_in(dir.path(), &["--registered-only"]);
    assert_eq!(
        failure(&announce_with(&private, "", 2, 9, "")).as_deref(),
        Some("unregistered torrent")
    );
    assert_eq!(failure(&announce_with(&private, "", 1, 9, "")), None);
    assert!(private.interrupt().success());

    let open = Tracker::start_in(dir.path(), &[]);
    let back = announce_with(&open, "", 2, 10, "&left=3");
    assert_eq!(failure(&back), None);
    assert_eq!(
        int(field(&back, "incomplete")),
        2,
        "the unregistered torrent kept its peer"
    );
    let stats = open.get("/stats").json();
    assert_eq!(stats[hex(&id(1))]["name"], "t1");
}

#[test]
fn created_users_get_an_announce_url_from_public_url_or_the_host() {
    let by_host = Tracker::start(&[]);
    let user = create_user(&by_host, "frank");
    assert_eq!(
        user["announce_url"],
        format!("http://{}/{}/announce", by_host.addr, passkey(&user))
    );
    let public = Tracker::start(&["--public-url", "https://tracker.example.org/"]);
    let user = create_user(&public, "gina");
    assert_eq!(
        user["announce_url"],
        format!("https://tracker.example.org/{}/announce", passkey(&user))
    );
    assert_eq!(
        public.post_json("/users", r#"{"name": "gina"}"#).status,
        409
    );
    assert_eq!(
        public
            .post_json("/users", r#"{"name": "no spaces"}"#)
            .status,
        400
    );
}

#[test]
fn passkeys_stay_out_of_the_log() {
    let tracker = Tracker::start(&["--private", "--log-level", "debug"]);
    register(&tracker, 1);
    let key = passkey(&create_user(&tracker, "hana"));
    announce_with(&tracker, &key, 1, 1, "");
    tracker.get(&format!(
        "/announce?info_hash={}&peer_id={}&port=2&passkey={key}",
        escape(&id(1)),
        escape(&id(2))
    ));
    let log = tracker.stderr();
    assert!(
        log.contains("/announce"),
        "requests are logged at debug level: {log}"
    );
    assert!(!log.contains(&key), "{log}");
}

fn tinytracker(tracker: &Tracker, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tinytracker"))
        .args(args)
        .args(["--tracker", &format!("http://{}", tracker.addr)])
        .env_remove("TINYTRACKER_ADMIN_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn operator_commands_manage_users_and_torrents() {
    let tracker = Tracker::start(&["--private"]);
    let added = tinytracker(&tracker, &["user", "add", "ivan"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let card = String::from_utf8_lossy(&added.stdout).into_owned();
    let key = card
        .lines()
        .find_map(|l| l.strip_prefix("passkey   "))
        .unwrap()
        .to_owned();
    assert!(card.contains(&format!("/{key}/announce")), "{card}");
    assert!(card.contains("\napi token tt_"), "{card}");
    let role = tinytracker(&tracker, &["user", "role", "ivan", "moderator"]);
    assert_eq!(
        String::from_utf8_lossy(&role.stdout).trim(),
        "user ivan is now moderator"
    );
    let wrong = tinytracker(&tracker, &["user", "role", "ivan", "king"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not a role"));

    let listed = tinytracker(&tracker, &["user", "list"]);
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        table.starts_with("NAME")
            && table.contains("ivan")
            && table.contains("never")
            && table.contains("moderator"),
        "{table}"
    );
    let as_json: Value =
        serde_json::from_slice(&tinytracker(&tracker, &["user", "list", "--json"]).stdout).unwrap();
    assert_eq!(as_json["users"][0]["passkey"], key.as_str());

    let rotated = tinytracker(&tracker, &["user", "rotate", "ivan", "--json"]);
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_ne!(rotated["passkey"], key.as_str());
    assert!(tinytracker(&tracker, &["user", "disable", "ivan"])
        .status
        .success());
    assert!(tinytracker(&tracker, &["user", "enable", "ivan"])
        .status
        .success());
    assert!(tinytracker(&tracker, &["user", "remove", "ivan"])
        .status
        .success());
    let missing = tinytracker(&tracker, &["user", "remove", "ivan"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no user named \"ivan\""));

    let hash = hex(&id(5));
    assert!(
        tinytracker(&tracker, &["torrent", "add", &hash, "--name", "disk.img"])
            .status
            .success()
    );
    let torrents =
        String::from_utf8_lossy(&tinytracker(&tracker, &["torrent", "list"]).stdout).into_owned();
    assert!(
        torrents.contains(&hash) && torrents.contains("disk.img") && torrents.contains("yes"),
        "{torrents}"
    );
    let removed = tinytracker(&tracker, &["torrent", "remove", &hash]);
    assert!(String::from_utf8_lossy(&removed.stdout).contains(&format!("removed {hash}")));
    assert_eq!(tracker.get("/stats").json(), json!({}));
}

#[test]
fn the_user_api_is_admin_only() {
    let tracker = Tracker::start(&["--trusted-proxy", "127.0.0.1"]);
    let remote = [("X-Forwarded-For", "203.0.113.7")];
    assert_eq!(tracker.request("GET", "/users", &remote, b"").status, 403);
    assert_eq!(
        tracker
            .request("POST", "/users", &remote, br#"{"name":"x"}"#)
            .status,
        403
    );
    assert_eq!(
        tracker
            .request("DELETE", "/torrents/00", &remote, b"")
            .status,
        403
    );
}

#[test]
fn the_open_tracker_ignores_a_passkey_it_does_not_need() {
    let tracker = Tracker::start(&[]);
    let behind_proxy = announce_with(&tracker, "tracker", 1, 1, "&left=1");
    assert_eq!(
        failure(&behind_proxy),
        None,
        "a reverse-proxy prefix is not a passkey to refuse"
    );
    let junk = announce_with(&tracker, "", 1, 2, "&left=1&passkey=junk");
    assert_eq!(failure(&junk), None);
    let ivy = passkey(&create_user(&tracker, "ivy"));
    announce_with(&tracker, &ivy, 1, 3, "&uploaded=10&left=1");
    announce_with(&tracker, &ivy, 1, 3, "&uploaded=50&left=1");
    assert_eq!(
        user_totals(&tracker, "ivy").0,
        40,
        "a valid passkey is still credited"
    );
}

#[test]
fn stats_are_for_operators_when_passkeys_are_required() {
    let tracker = Tracker::start(&["--trusted-proxy", "127.0.0.1"]);
    let remote = [("X-Forwarded-For", "203.0.113.7")];
    assert_eq!(
        tracker.request("GET", "/stats", &remote, b"").status,
        200,
        "open: /stats is public"
    );
    let private = Tracker::start(&["--private", "--trusted-proxy", "127.0.0.1"]);
    assert_eq!(private.request("GET", "/stats", &remote, b"").status, 403);
    assert_eq!(
        private
            .request("GET", "/stats", &[("X-Forwarded-For", "127.0.0.1")], b"")
            .status,
        200
    );
}

#[test]
fn private_switches_read_1_and_true_from_the_environment() {
    let tracker = Tracker::start_with_env(&[], &[("TINYTRACKER_PRIVATE", "1")]);
    assert_eq!(
        failure(&announce_with(&tracker, "", 1, 1, "")).as_deref(),
        Some("invalid passkey")
    );
    let off = Tracker::start_with_env(&[], &[("TINYTRACKER_REQUIRE_PASSKEY", "false")]);
    assert_eq!(failure(&announce_with(&off, "", 1, 1, "")), None);
}

#[test]
fn users_survive_switching_private_mode_off_and_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut private = Tracker::start_in(dir.path(), &["--private"]);
    register(&private, 1);
    let jo = passkey(&create_user(&private, "jo"));
    announce_with(&private, &jo, 1, 5, "&uploaded=0&left=1");
    announce_with(&private, &jo, 1, 5, "&uploaded=70&left=1");
    assert!(private.interrupt().success());

    let mut open = Tracker::start_in(dir.path(), &[]);
    assert_eq!(
        failure(&announce_with(&open, "", 2, 6, "")),
        None,
        "open again: anything goes"
    );
    announce_with(&open, &jo, 1, 5, "&uploaded=100&left=1");
    assert_eq!(user_totals(&open, "jo").0, 100);
    assert!(open.interrupt().success());

    let private = Tracker::start_in(dir.path(), &["--private"]);
    assert_eq!(
        failure(&announce_with(&private, &jo, 1, 5, "&uploaded=100&left=1")),
        None
    );
    assert_eq!(
        failure(&announce_with(&private, &jo, 2, 6, "")).as_deref(),
        Some("unregistered torrent")
    );
    assert_eq!(user_totals(&private, "jo").0, 100);
}

#[test]
fn an_unknown_path_with_a_passkey_in_it_is_logged_without_it() {
    let tracker = Tracker::start(&["--log-level", "debug"]);
    let key = passkey(&create_user(&tracker, "kim"));
    assert_eq!(tracker.get(&format!("/{key}/Announce")).status, 404);
    assert_eq!(tracker.get(&format!("/{key}")).status, 404);
    let log = tracker.stderr();
    assert!(log.contains("404"), "{log}");
    assert!(!log.contains(&key), "{log}");
}
