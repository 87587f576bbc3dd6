//! Accounts for browsers against the real binary: invite links, passwords, sign-in limits,
//! session cookies with CSRF tokens, and what ends a session.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// The `tt_session=…` pair of a reply's `Set-Cookie`, and the whole header.
fn session_cookie(reply: &Reply) -> (String, String) {
    let header = reply
        .header("Set-Cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {}", reply.text()))
        .to_owned();
    let pair = header.split(';').next().unwrap().trim().to_owned();
    (pair, header)
}

fn with_cookie(
    tracker: &Tracker,
    method: &str,
    target: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> Reply {
    let mut headers = vec![("Cookie", cookie), ("Content-Type", "application/json")];
    if let Some(csrf) = csrf {
        headers.push(("X-CSRF-Token", csrf));
    }
    tracker.request(method, target, &headers, b"")
}

fn sign_in(tracker: &Tracker, name: &str, password: &str) -> Reply {
    tracker.post_json(
        "/api/v1/session",
        &serde_json::json!({ "name": name, "password": password }).to_string(),
    )
}

#[test]
fn an_invite_sets_a_password_and_signs_in_and_the_session_follows_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start_in(dir.path(), &["--private"]);
    let added = Command::new(env!("CARGO_BIN_EXE_tinytracker"))
        .args([
            "user",
            "add",
            "ivan",
            "--tracker",
            &format!("http://{}", tracker.addr),
        ])
        .env_remove("TINYTRACKER_ADMIN_TOKEN")
        .output()
        .unwrap();
    let card = String::from_utf8_lossy(&added.stdout).into_owned();
    let invite_url = card
        .lines()
        .find_map(|l| l.strip_prefix("invite    "))
        .unwrap_or_else(|| panic!("{card}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(invite_url.contains("/web/invite/"), "{invite_url}");
    let secret = invite_url.rsplit('/').next().unwrap().to_owned();

    let shown = tracker.get(&format!("/api/v1/invites/{secret}"));
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json()["name"], "ivan");
    let short = tracker.post_json(
        &format!("/api/v1/invites/{secret}"),
        r#"{"password": "short"}"#,
    );
    assert_eq!(short.status, 400);
    assert!(
        short.text().contains("password: 10 to 1024"),
        "{}",
        short.text()
    );
    let accepted = tracker.post_json(
        &format!("/api/v1/invites/{secret}"),
        r#"{"password": "correct horse battery"}"#,
    );
    assert_eq!(accepted.status, 201, "{}", accepted.text());
    let (cookie, header) = session_cookie(&accepted);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    let csrf = accepted.json()["csrf_token"].as_str().unwrap().to_owned();
    let again = tracker.post_json(
        &format!("/api/v1/invites/{secret}"),
        r#"{"password": "another good password"}"#,
    );
    assert_eq!(again.status, 404, "an invite works once");

    // The session reads like a token; its unsafe requests need the CSRF token.
    let me = with_cookie(&tracker, "GET", "/api/v1/me", &cookie, None);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["name"], "ivan");
    let session = with_cookie(&tracker, "GET", "/api/v1/session", &cookie, None).json();
    assert_eq!(session["csrf_token"], csrf.as_str());
    let forged = with_cookie(&tracker, "POST", "/api/v1/me/token", &cookie, None);
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(forged.text().contains("CSRF"));
    let wrong = with_cookie(&tracker, "POST", "/api/v1/me/token", &cookie, Some("nope"));
    assert_eq!(wrong.status, 403);
    let right = with_cookie(&tracker, "POST", "/api/v1/me/token", &cookie, Some(&csrf));
    assert_eq!(right.status, 200, "{}", right.text());

    // Sessions are kept across a restart.
    assert!(tracker.interrupt().success());
    let state = std::fs::read_to_string(dir.path().join("tracker_state.json")).unwrap();
    assert!(state.contains("$argon2id$") && state.contains("\"sessions\""));
    assert!(
        !state.contains(cookie.trim_start_matches("tt_session=")),
        "only its hash is kept"
    );
    let tracker = Tracker::start_in(dir.path(), &["--private"]);
    assert_eq!(
        with_cookie(&tracker, "GET", "/api/v1/me", &cookie, None).status,
        200
    );

    // Signing out ends it.
    let out = with_cookie(&tracker, "DELETE", "/api/v1/session", &cookie, Some(&csrf));
    assert_eq!(out.status, 200, "{}", out.text());
    assert!(out.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        with_cookie(&tracker, "GET", "/api/v1/me", &cookie, None).status,
        401
    );

    // Signing in again; disabling the user ends that session.
    let signed = sign_in(&tracker, "ivan", "correct horse battery");
    assert_eq!(signed.status, 200, "{}", signed.text());
    let (cookie, _) = session_cookie(&signed);
    assert_eq!(
        with_cookie(&tracker, "GET", "/api/v1/me", &cookie, None).status,
        200
    );
    tracker.post_json("/users/ivan/disable", "");
    assert_eq!(
        with_cookie(&tracker, "GET", "/api/v1/me", &cookie, None).status,
        401
    );
}

/// A new user `name` who took their invite with the password "a long enough password": the
/// session's cookie pair and CSRF token.
fn invited_and_signed_in(tracker: &Tracker, name: &str) -> (String, String) {
    tracker.post_json("/users", &format!(r#"{{"name": "{name}"}}"#));
    let invite: Value = tracker
        .post_json(&format!("/api/v1/users/{name}/invite"), "")
        .json();
    let secret = invite["invite_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let signed = tracker.post_json(
        &format!("/api/v1/invites/{secret}"),
        r#"{"password": "a long enough password"}"#,
    );
    assert_eq!(signed.status, 201, "{}", signed.text());
    let (cookie, _) = session_cookie(&signed);
    (
        cookie,
        signed.json()["csrf_token"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn failed_sign_ins_are_limited_and_other_sites_cannot_sign_a_browser_in() {
    let tracker = Tracker::start(&[]);
    invited_and_signed_in(&tracker, "eve");

    let unknown = sign_in(&tracker, "nobody", "whatever it is");
    assert_eq!(unknown.status, 401);
    let wrong = sign_in(&tracker, "eve", "not her password");
    assert_eq!(wrong.status, 401);
    assert_eq!(
        unknown.json()["error"],
        wrong.json()["error"],
        "an unknown name and a wrong password look the same"
    );
    for _ in 0..4 {
        assert_eq!(sign_in(&tracker, "eve", "not her password").status, 401);
    }
    let limited = sign_in(&tracker, "eve", "a long enough password");
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert!(
        limited.text().contains("try again in"),
        "{}",
        limited.text()
    );

    // A page on another site posting the sign-in form.
    let forged = tracker.request(
        "POST",
        "/api/v1/session",
        &[
            ("Origin", "https://evil.example"),
            ("Content-Type", "text/plain"),
        ],
        br#"{"name": "eve", "password": "a long enough password"}"#,
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(forged.header("Set-Cookie").is_none());
}

#[test]
fn a_cross_site_form_cannot_upload_with_a_signed_in_browser() {
    let tracker = Tracker::start(&["--user-uploads"]);
    let (cookie, csrf) = invited_and_signed_in(&tracker, "uma");
    let (content_type, body) = form(&[("title", "planted")], &make_torrent("x.bin", 400, false));
    // What a form on evil.example would send, if the browser sent the cookie at all (SameSite=Strict
    // keeps it home): no CSRF token, another Origin.
    for (origin, token) in [
        ("https://evil.example", None),
        ("https://evil.example", Some(csrf.as_str())),
    ] {
        let mut headers = vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", content_type.as_str()),
            ("Origin", origin),
            ("Sec-Fetch-Site", "cross-site"),
        ];
        if let Some(token) = token {
            headers.push(("X-CSRF-Token", token));
        }
        let reply = tracker.request("POST", "/api/v1/torrents", &headers, &body);
        assert_eq!(reply.status, 403, "{}", reply.text());
    }
    assert_eq!(
        tracker.get("/api/v1/torrents").json()["total"],
        0,
        "nothing was stored"
    );
    // The same upload from the tracker's own page works.
    let own = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", content_type.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
    ];
    let reply = tracker.request("POST", "/api/v1/torrents", &own, &body);
    assert_eq!(reply.status, 201, "{}", reply.text());
}
