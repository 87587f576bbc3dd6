use serde_json::json;

use crate::common::*;

fn hash_hex(n: u32) -> String {
    hex(&id(n))
}

#[test]
fn add_torrent_info_registers_before_any_announce_then_updates() {
    let tracker = Tracker::start(&[]);
    let hex = hash_hex(1);
    let body = json!({"info_hash": hex, "name": "dataset.tar", "size": 4096, "piece_length": 1024,
        "comment": "nightly", "created_by": "mktorrent", "creation_date": 1700000000});
    let reply = tracker.post_json("/add_torrent_info", &body.to_string());
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"message": "Torrent info added successfully", "info_hash": hex, "created": true})
    );
    let update = tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hex, "name": "renamed.tar"}).to_string(),
    );
    assert_eq!(update.json()["created"], false);
    let stats = tracker.get("/stats").json();
    assert_eq!(
        stats,
        json!({hex.clone(): {"name": "renamed.tar", "size": 4096, "creation_date": 1700000000,
            "stats": {"complete": 0, "incomplete": 0, "downloaded": 0, "uploaded": 0, "peers": 0, "completed": 0}}})
    );
}

#[test]
fn stats_sums_bytes_over_live_peers_and_counts_completions() {
    let tracker = Tracker::start(&[]);
    let hash = id(2);
    for (peer, up, down, left, event) in [(1, 10, 100, 0, "completed"), (2, 5, 50, 7, "started")] {
        tracker.announce(&format!(
            "info_hash={}&peer_id={}&port={peer}&uploaded={up}&downloaded={down}&left={left}&event={event}",
            escape(&hash),
            escape(&id(100 + peer))
        ));
    }
    let stats = tracker.get("/stats").json();
    assert_eq!(
        stats[hex(&hash)]["stats"],
        json!({"complete": 1, "incomplete": 1, "downloaded": 150, "uploaded": 15, "peers": 2, "completed": 1})
    );
}

#[test]
fn legacy_escaped_info_hash_registers_the_exact_torrent() {
    let tracker = Tracker::start(&[]);
    // What the Python client sends for e34b5b89…: printable bytes as themselves, the rest %XX.
    let cform = "%E3K[%89{%CA%1A%C4l%A7%99,5%8A%C8%7F%1E%0E%AD%DB";
    let reply = tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": cform, "name": "qb"}).to_string(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["info_hash"],
        "e34b5b897bca1ac46ca7992c358ac87f1e0eaddb"
    );
}

#[test]
fn bad_bodies_are_rejected_with_a_json_error_and_change_nothing() {
    let tracker = Tracker::start(&[]);
    let hex = hash_hex(3);
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "not valid JSON"),
        ("null".into(), 400, "must be a JSON object"),
        ("{}".into(), 400, "missing info_hash"),
        (
            json!({"info_hash": 12}).to_string(),
            400,
            "info_hash must be a string",
        ),
        (
            json!({"info_hash": "zz"}).to_string(),
            400,
            "invalid info_hash",
        ),
        (
            json!({"info_hash": hex, "size": "big"}).to_string(),
            400,
            "size must be a non-negative integer",
        ),
        (
            json!({"info_hash": hex, "name": ["x"]}).to_string(),
            400,
            "name must be a string",
        ),
        (
            format!(
                r#"{{"info_hash": "{hex}", "comment": "{}"}}"#,
                "x".repeat(70 * 1024)
            ),
            413,
            "larger than 65536",
        ),
    ];
    for (body, status, message) in cases {
        let reply = tracker.post_json("/add_torrent_info", &body);
        assert_eq!(reply.status, status, "{}", &body[..body.len().min(80)]);
        assert_eq!(reply.header("Content-Type"), Some("application/json"));
        let error = reply.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains(message),
            "{error:?} should mention {message:?}"
        );
    }
    assert_eq!(tracker.get("/stats").json(), json!({}));
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let tracker = Tracker::start(&[]);
    let missing = tracker.get("/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not found: /nope");
    for (method, path, allow) in [
        ("POST", "/announce", "GET, HEAD"),
        ("POST", "/scrape", "GET, HEAD"),
        ("GET", "/add_torrent_info", "POST"),
        ("GET", "/shutdown", "POST"),
        ("DELETE", "/save_state", "GET, HEAD, POST"),
    ] {
        let reply = tracker.request(method, path, &[], b"");
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("Allow"), Some(allow), "{method} {path}");
        assert!(reply.json()["error"].is_string());
    }
    assert_eq!(tracker.get("/stats").status, 200, "the worker survived");
}

#[test]
fn save_state_answers_get_and_post_with_what_it_wrote() {
    let tracker = Tracker::start(&[]);
    tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hash_hex(4)}).to_string(),
    );
    let head = tracker.request("HEAD", "/save_state", &[], b"");
    assert_eq!(head.status, 200);
    assert!(!tracker.state_path().exists(), "HEAD saves nothing");
    for method in ["GET", "POST"] {
        let reply = tracker.request(method, "/save_state", &[], b"");
        assert_eq!(reply.status, 200, "{method}");
        let body = reply.json();
        assert_eq!(body["message"], "Tracker state saved");
        assert_eq!(
            (body["torrents"].as_u64(), body["peers"].as_u64()),
            (Some(1), Some(0))
        );
        let size = std::fs::metadata(tracker.state_path()).unwrap().len();
        assert_eq!(body["bytes"].as_u64(), Some(size));
        assert!(body["millis"].is_u64());
    }
}

#[test]
fn a_failed_save_is_a_500_and_leaves_the_previous_file() {
    let tracker = Tracker::start(&[]);
    tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hash_hex(5), "name": "kept"}).to_string(),
    );
    assert_eq!(tracker.get("/save_state").status, 200);
    let before = std::fs::read(tracker.state_path()).unwrap();
    // Every save writes a temp file of its own, `.tracker_state.json.<pid>.<n>.tmp`, created
    // exclusively; a directory in the place of the second one makes that save fail, even for root.
    let next_temp = format!(".tracker_state.json.{}.1.tmp", tracker.pid());
    std::fs::create_dir(tracker.dir.join(&next_temp)).unwrap();
    tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hash_hex(6)}).to_string(),
    );
    let reply = tracker.get("/save_state");
    assert_eq!(reply.status, 500);
    assert!(
        reply.json()["error"].as_str().unwrap().contains("saving"),
        "{}",
        reply.text()
    );
    assert_eq!(std::fs::read(tracker.state_path()).unwrap(), before);
    let announce = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=1",
        escape(&id(7)),
        escape(&id(8))
    ));
    assert_eq!(failure(&announce), None, "announces are still served");
    assert!(tracker.stderr().contains("saving"), "the failure is logged");
}

#[test]
fn admin_endpoints_refuse_remote_callers_without_the_token() {
    // A trusted proxy on loopback forwarding a remote client makes that client non-loopback.
    let remote = [("X-Forwarded-For", "203.0.113.9")];
    let open = Tracker::start(&["--trusted-proxy", "127.0.0.1"]);
    let refused = open.request("GET", "/save_state", &remote, b"");
    assert_eq!(refused.status, 403);
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("--admin-token"));
    assert_eq!(open.request("POST", "/shutdown", &remote, b"").status, 403);
    assert_eq!(open.get("/stats").status, 200, "the tracker is still up");

    let guarded = Tracker::start(&["--trusted-proxy", "127.0.0.1", "--admin-token", "s3cret"]);
    let body = json!({"info_hash": hash_hex(9)}).to_string();
    let post = |headers: &[(&str, &str)], target: &str| {
        guarded
            .request("POST", target, headers, body.as_bytes())
            .status
    };
    assert_eq!(post(&[remote[0]], "/add_torrent_info"), 403);
    assert_eq!(
        post(
            &[remote[0], ("Authorization", "Bearer wrong")],
            "/add_torrent_info"
        ),
        403
    );
    assert_eq!(
        post(
            &[remote[0], ("Authorization", "Bearer s3cret")],
            "/add_torrent_info"
        ),
        200
    );
    assert_eq!(post(&[remote[0]], "/add_torrent_info?token=s3cret"), 200);
    assert_eq!(
        post(&[("X-Forwarded-For", "::1")], "/add_torrent_info"),
        200,
        "loopback callers need no token"
    );
}

#[test]
fn a_trusted_proxy_that_names_no_client_does_not_pass_for_loopback() {
    let tracker = Tracker::start(&["--trusted-proxy", "127.0.0.1"]);
    for headers in [
        vec![],
        vec![("X-Forwarded-For", "unknown")],
        vec![("X-Forwarded-For", "")],
    ] {
        let reply = tracker.request("GET", "/save_state", &headers, b"");
        assert_eq!(reply.status, 403, "{headers:?}");
    }
    let with_port = tracker.request(
        "GET",
        "/save_state",
        &[("X-Forwarded-For", "203.0.113.9:4711")],
        b"",
    );
    assert_eq!(
        with_port.status, 403,
        "an address with a port is still that address"
    );
    let local = tracker.request(
        "GET",
        "/save_state",
        &[("X-Forwarded-For", "127.0.0.1")],
        b"",
    );
    assert_eq!(
        local.status, 200,
        "a loopback client behind the proxy is loopback"
    );
}

#[test]
fn head_on_read_endpoints_has_no_body_and_changes_nothing() {
    let tracker = Tracker::start(&[]);
    tracker.post_json(
        "/add_torrent_info",
        &json!({"info_hash": hash_hex(1), "name": "before"}).to_string(),
    );
    let before = tracker.get("/stats").json();
    let announce = format!(
        "/announce?info_hash={}&peer_id={}&port=1",
        escape(&id(2)),
        escape(&id(3))
    );
    for (path, content_type) in [
        ("/stats", "application/json"),
        ("/scrape?info_hash=x", "text/plain"),
        ("/scrape?format=json", "application/json"),
        (announce.as_str(), "text/plain"),
        ("/save_state", "application/json"),
    ] {
        let reply = tracker.request("HEAD", path, &[], b"");
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("Content-Type"), Some(content_type), "{path}");
        assert!(reply.body.is_empty());
    }
    assert_eq!(
        tracker.get("/stats").json(),
        before,
        "no announce was counted"
    );
    assert!(
        !tracker.state_path().exists(),
        "HEAD /save_state saved nothing"
    );
}

#[test]
fn every_flag_is_explained_in_help_with_its_environment_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tinytracker"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, env) in [
        ("--bind", "TINYTRACKER_BIND"),
        ("--state-file", "TINYTRACKER_STATE_FILE"),
        ("--save-interval", "TINYTRACKER_SAVE_INTERVAL"),
        ("--interval", "TINYTRACKER_INTERVAL"),
        ("--min-interval", "TINYTRACKER_MIN_INTERVAL"),
        ("--peer-timeout", "TINYTRACKER_PEER_TIMEOUT"),
        ("--max-numwant", "TINYTRACKER_MAX_NUMWANT"),
        ("--workers", "TINYTRACKER_WORKERS"),
        ("--admin-token", "TINYTRACKER_ADMIN_TOKEN"),
        ("--trusted-proxy", "TINYTRACKER_TRUSTED_PROXY"),
        ("--log-level", "TINYTRACKER_LOG_LEVEL"),
        ("--log-file", "TINYTRACKER_LOG_FILE"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} missing from --help"
        );
    }
    assert!(help.contains("[default: 300]") && help.contains("[default: 1800]"));
}

#[test]
fn flags_can_come_from_the_environment() {
    let tracker = Tracker::start_with_env(
        &[],
        &[
            ("TINYTRACKER_INTERVAL", "600"),
            ("TINYTRACKER_MIN_INTERVAL", "42"),
        ],
    );
    let reply = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=1",
        escape(&id(1)),
        escape(&id(2))
    ));
    let interval = int(field(&reply, "interval"));
    assert!((570..=630).contains(&interval), "{interval}");
    assert_eq!(int(field(&reply, "min interval")), 42);
}

#[test]
fn a_bad_json_scrape_is_a_json_400() {
    let tracker = Tracker::start(&[]);
    let reply = tracker.get("/scrape?format=json&info_hash=abc");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": "info_hash must be 20 bytes, got 3"})
    );
}

#[test]
fn metrics_count_requests_saves_and_connections_for_operators() {
    let tracker = Tracker::start(&["--trusted-proxy", "127.0.0.1"]);
    let local = [("X-Forwarded-For", "127.0.0.1")];
    let announce = |query: String| {
        tracker
            .request("GET", &format!("/announce?{query}"), &local, b"")
            .status
    };
    assert_eq!(
        announce(format!(
            "info_hash={}&peer_id={}&port=1&left=0",
            escape(&id(1)),
            escape(&id(2))
        )),
        200
    );
    assert_eq!(
        announce(format!(
            "info_hash={}&peer_id={}&port=2&left=5",
            escape(&id(1)),
            escape(&id(3))
        )),
        200
    );
    assert_eq!(announce("info_hash=short".into()), 200);
    assert_eq!(
        tracker.request("GET", "/save_state", &local, b"").status,
        200
    );

    let reply = tracker.request("GET", "/metrics", &local, b"");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("Content-Type"),
        Some("text/plain; version=0.0.4")
    );
    let text = reply.text();
    for line in [
        "tinytracker_requests_total{endpoint=\"announce\",outcome=\"ok\"} 2",
        "tinytracker_requests_total{endpoint=\"announce\",outcome=\"refused\"} 1",
        "tinytracker_requests_total{endpoint=\"admin\",outcome=\"ok\"} 1",
        "tinytracker_announce_duration_seconds_count 3",
        "tinytracker_torrents 1",
        "tinytracker_seeders 1",
        "tinytracker_leechers 1",
        "tinytracker_save_failures_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    let open: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tinytracker_open_connections "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(open >= 1.0, "this request's own connection is open");
    let saved_at: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tinytracker_last_save_timestamp_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(saved_at > 1.7e9);

    let remote = [("X-Forwarded-For", "203.0.113.4")];
    assert_eq!(tracker.request("GET", "/metrics", &remote, b"").status, 403);
    let public = Tracker::start(&["--trusted-proxy", "127.0.0.1", "--public-metrics"]);
    assert_eq!(public.request("GET", "/metrics", &remote, b"").status, 200);
}

/// One request from the source address `from` (e.g. a second loopback address).
fn request_from(tracker: &Tracker, from: &str, target: &str, headers: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&tracker.addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer.split_once("\r\n\r\n").unwrap().1.to_owned())
}

#[test]
fn a_caller_outside_the_local_admin_networks_needs_the_token() {
    // 127.0.0.2 is a loopback address, but this tracker counts only 127.0.0.1 as local.
    let tracker = Tracker::start(&["--local-admin", "127.0.0.1", "--admin-token", "s3cret"]);
    let (status, body) = request_from(&tracker, "127.0.0.2", "/save_state", "");
    assert_eq!(status, 403, "{body}");
    let forged = request_from(
        &tracker,
        "127.0.0.2",
        "/save_state",
        "X-Forwarded-For: 127.0.0.1\r\n",
    );
    assert_eq!(forged.0, 403, "an untrusted X-Forwarded-For is ignored");
    let (status, _) = request_from(
        &tracker,
        "127.0.0.2",
        "/save_state",
        "Authorization: Bearer s3cret\r\n",
    );
    assert_eq!(status, 200);
    let (status, _) = request_from(
        &tracker,
        "127.0.0.2",
        "/save_state",
        "Authorization: Bearer s3cre\r\n",
    );
    assert_eq!(status, 403);
    let (status, _) = request_from(&tracker, "127.0.0.1", "/save_state", "");
    assert_eq!(status, 200, "the local address needs no token");
    let (status, _) = request_from(&tracker, "127.0.0.2", "/stats", "");
    assert_eq!(status, 200, "announce-side endpoints stay open");
}

#[test]
fn logs_name_method_path_and_why_a_client_was_refused() {
    let tracker = Tracker::start(&["--private", "--log-level", "debug"]);
    let user = tracker.post_json("/users", r#"{"name": "alice"}"#).json();
    let passkey = user["passkey"].as_str().unwrap().to_owned();
    assert_eq!(tracker.get("/users").status, 200);
    let refused = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=1&passkey={passkey}",
        escape(&id(1)),
        escape(&id(2))
    ));
    assert_eq!(failure(&refused).as_deref(), Some("unregistered torrent"));
    let log = tracker.stderr();
    assert!(log.contains("127.0.0.1 GET /users -> 200"), "{log}");
    assert!(log.contains("127.0.0.1 POST /users -> 201"), "{log}");
    assert!(
        log.contains("GET /announce -> 200") && log.contains("refused: unregistered torrent"),
        "{log}"
    );
    assert!(!log.contains(&passkey), "a passkey reached the log:\n{log}");
}
