//! Attacks from web pages on the admin API, with the headers a browser sends: a forged
//! `text/plain` or form POST from another site (CSRF), a DNS-rebound page that reaches the
//! loopback port under its own name, and preflights. Each must be refused and change nothing.

use serde_json::json;

use crate::common::*;

/// What Chromium sends for `fetch("http://127.0.0.1:PORT/users", {method: "POST", body: …})`
/// from a page on https://evil.example: no preflight, since text/plain is a "simple" type.
fn forged(origin: &str) -> Vec<(&str, &str)> {
    vec![
        ("Origin", origin),
        ("Content-Type", "text/plain;charset=UTF-8"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Mode", "no-cors"),
        ("Sec-Fetch-Dest", "empty"),
        ("Referer", "https://evil.example/"),
    ]
}

fn user_count(tracker: &Tracker) -> usize {
    tracker.get("/users").json()["users"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_page_on_another_site_cannot_create_users_or_stop_the_tracker() {
    let tracker = Tracker::start(&[]);
    let body = br#"{"name":"x"}"#;
    for origin in ["https://evil.example", "null"] {
        let reply = tracker.request("POST", "/users", &forged(origin), body);
        assert_eq!(reply.status, 403, "{origin}: {}", reply.text());
        assert!(reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("may not call this tracker's API"));
        let stop = tracker.request("POST", "/shutdown", &forged(origin), b"");
        assert_eq!(stop.status, 403, "{origin}: {}", stop.text());
    }
    // A form post (`<form method=post enctype=text/plain>` from a sandboxed iframe sends null).
    let form = [
        ("Origin", "null"),
        ("Sec-Fetch-Dest", "iframe"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Mode", "navigate"),
    ];
    let reply = tracker.request("POST", "/add_torrent_info", &form, b"info_hash=x");
    assert_eq!(reply.status, 403);
    // An older browser that sends no Origin on a navigation still sends Sec-Fetch-Site.
    let no_origin = [("Sec-Fetch-Site", "cross-site")];
    assert_eq!(
        tracker.request("POST", "/shutdown", &no_origin, b"").status,
        403
    );
    let saved = tracker.request("GET", "/save_state", &no_origin, b"");
    assert_eq!(saved.status, 403, "an <img src=/save_state> is refused too");

    assert_eq!(user_count(&tracker), 0, "no user was created");
    assert_eq!(
        tracker.get("/stats").json(),
        json!({}),
        "nothing was registered"
    );
    assert_eq!(
        tracker.get("/metrics").status,
        200,
        "the tracker still runs"
    );
    // The same requests without the browser's headers, as curl and the CLIs send them, work.
    assert_eq!(tracker.post_json("/users", r#"{"name": "x"}"#).status, 201);
    assert_eq!(user_count(&tracker), 1);
}

#[test]
fn the_trackers_own_page_must_send_json_as_json() {
    let tracker = Tracker::start(&[]);
    let own = format!("http://{}", tracker.addr);
    let plain = [
        ("Origin", own.as_str()),
        ("Content-Type", "text/plain;charset=UTF-8"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let reply = tracker.request("POST", "/users", &plain, br#"{"name":"x"}"#);
    assert_eq!(reply.status, 415, "{}", reply.text());
    assert_eq!(user_count(&tracker), 0);
    let json = [
        ("Origin", own.as_str()),
        ("Content-Type", "application/json"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let reply = tracker.request("POST", "/users", &json, br#"{"name":"x"}"#);
    assert_eq!(reply.status, 201, "{}", reply.text());
    // Another port on the same host is another origin.
    let other_port = [
        ("Origin", "http://127.0.0.1:1"),
        ("Content-Type", "application/json"),
    ];
    let reply = tracker.request("POST", "/users", &other_port, br#"{"name":"y"}"#);
    assert_eq!(reply.status, 403);
    assert_eq!(user_count(&tracker), 1);
}

#[test]
fn a_listed_cors_origin_may_call_and_only_its_preflights_are_answered() {
    let tracker = Tracker::start(&["--cors-origin", "https://panel.example.org"]);
    let listed = [
        ("Origin", "https://panel.example.org"),
        ("Content-Type", "application/json"),
    ];
    let reply = tracker.request("POST", "/users", &listed, br#"{"name":"p"}"#);
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(
        reply.header("Access-Control-Allow-Origin"),
        Some("https://panel.example.org")
    );
    assert_eq!(
        reply.header("Access-Control-Allow-Credentials"),
        Some("true")
    );
    let preflight = |origin| {
        let headers = [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type, authorization",
            ),
        ];
        tracker.request("OPTIONS", "/api/v1/torrents", &headers, b"")
    };
    let refused = preflight("https://evil.example");
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("Access-Control-Allow-Origin"), None);
    let answered = preflight("https://panel.example.org");
    assert_eq!(answered.status, 204);
    assert_eq!(
        answered.header("Access-Control-Allow-Origin"),
        Some("https://panel.example.org"),
        "the origin itself, never *"
    );
    assert_eq!(
        answered.header("Access-Control-Allow-Methods"),
        Some("GET, HEAD, POST")
    );
    assert!(answered
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Authorization"));
    // An unlisted page's request is still refused, and its answer not readable.
    let evil = [
        ("Origin", "https://evil.example"),
        ("Content-Type", "application/json"),
    ];
    let reply = tracker.request("POST", "/users", &evil, br#"{"name":"q"}"#);
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("Access-Control-Allow-Origin"), None);
    assert_eq!(user_count(&tracker), 1);
}

#[test]
fn a_rebound_page_cannot_read_the_passkeys() {
    let tracker = Tracker::start(&["--admin-token", "s3cret"]);
    let alice = tracker.post_json("/users", r#"{"name": "alice"}"#).json();
    let passkey = alice["passkey"].as_str().unwrap().to_owned();
    // evil.example now resolves to 127.0.0.1: the page's same-origin GET carries its own name.
    let rebound = [
        ("Host", "evil.example:6969"),
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Mode", "cors"),
    ];
    for target in ["/users", "/torrents", "/save_state", "/metrics"] {
        let reply = raw_with_host(&tracker, "GET", target, &rebound);
        assert_eq!(reply.status, 421, "{target}: {}", reply.text());
        assert!(
            !reply.text().contains(&passkey),
            "{target} leaked the passkey"
        );
        assert_eq!(
            reply.json()["error"].as_str().map(|e| e.contains("Host")),
            Some(true)
        );
    }
    let stop = raw_with_host(&tracker, "POST", "/shutdown", &rebound);
    assert_eq!(stop.status, 421);
    assert_eq!(tracker.get("/metrics").status, 200, "still running");
    // The token does not depend on the name used; BitTorrent clients may use any name.
    let tokened = [
        ("Host", "tracker.example.org"),
        ("Authorization", "Bearer s3cret"),
    ];
    assert_eq!(
        raw_with_host(&tracker, "GET", "/users", &tokened).status,
        200
    );
    let announce = raw_with_host(
        &tracker,
        "GET",
        &format!(
            "/announce?info_hash={}&peer_id={}&port=1",
            escape(&id(1)),
            escape(&id(2))
        ),
        &[("Host", "tracker.example.org")],
    );
    assert_eq!(failure(&announce.bencode()), None);
    // Names the operator allowed keep working without the token.
    let allowed = Tracker::start(&["--allowed-host", "tracker.lan"]);
    let lan = [("Host", "tracker.lan:6969")];
    assert_eq!(raw_with_host(&allowed, "GET", "/users", &lan).status, 200);
    assert_eq!(
        raw_with_host(&allowed, "GET", "/users", &[("Host", "localhost")]).status,
        200
    );
}

#[test]
fn announce_urls_never_carry_a_rebound_name_and_say_when_they_are_guessed() {
    let tracker = Tracker::start(&["--admin-token", "s3cret"]);
    let headers = [
        ("Host", "evil.example"),
        ("Authorization", "Bearer s3cret"),
        ("Content-Type", "application/json"),
    ];
    let reply = raw_with_host_body(&tracker, "POST", "/users", &headers, br#"{"name": "bob"}"#);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let user = reply.json();
    let url = user["announce_url"].as_str().unwrap();
    assert!(!url.contains("evil.example"), "{url}");
    assert!(url.starts_with("http://localhost:"), "{url}");
    assert!(user["warning"]
        .as_str()
        .unwrap()
        .contains("--public-url is unset"));
    let fixed = Tracker::start(&["--public-url", "https://t.example.org/"]);
    let user = fixed.post_json("/users", r#"{"name": "carol"}"#).json();
    let key = user["passkey"].as_str().unwrap();
    assert_eq!(
        user["announce_url"],
        format!("https://t.example.org/{key}/announce")
    );
    assert!(user.get("warning").is_none());
}

#[test]
fn cron_and_curl_keep_working() {
    let tracker = Tracker::start(&[]);
    // What `curl -fsS http://127.0.0.1:6969/save_state` sends.
    let curl = [("User-Agent", "curl/7.88.1"), ("Accept", "*/*")];
    let reply = tracker.request("GET", "/save_state", &curl, b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(tracker.state_path().exists());
}

/// A request with the `Host` given in `headers` (the harness's own Host is left out).
fn raw_with_host(tracker: &Tracker, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    raw_with_host_body(tracker, method, target, headers, b"")
}

fn raw_with_host_body(
    tracker: &Tracker,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut request = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    raw(tracker.addr, &bytes)
}
