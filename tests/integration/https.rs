//! HTTPS (`--tls-bind`): curl with the test CA, keep-alive, https announce URLs, a certificate
//! renewed on disk and picked up without a restart (a bad one is refused and the old one stays),
//! and a plain-HTTP client on the TLS port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// curl with `ca` as the only trusted root; its stdout, or its error.
fn curl(ca: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("curl (bash tools/test.sh installs it)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn announces_over_https_keep_the_connection_and_hand_out_https_urls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certificates(dir.path(), "first");
    let (tracker, tls) = https_tracker(&certs, &[]);
    let announce = |port: u16| {
        format!(
            "https://localhost:{}/announce?info_hash={}&peer_id={}&port={port}&left=0",
            tls.port(),
            escape(&id(1)),
            escape(&id(u32::from(port)))
        )
    };
    // Two announces in one curl run: one connection (keep-alive), both answered.
    let out = curl(
        &certs.ca,
        &[
            "--write-out",
            "\nconnects %{num_connects}\n",
            &announce(1001),
            &announce(1002),
        ],
    )
    .unwrap();
    assert_eq!(out.matches("8:completei").count(), 2, "{out}");
    assert!(
        out.contains("connects 1\n") && out.contains("connects 0\n"),
        "{out}"
    );
    // The plain listener still answers plain HTTP, and sees the same swarm.
    let scrape = tracker
        .get(&format!("/scrape?info_hash={}", escape(&id(1))))
        .bencode();
    let files = field(&scrape, "files");
    let Bencode::Dict(files) = files else {
        panic!("{}", describe(&scrape));
    };
    assert_eq!(int(field(&files[&id(1)[..]], "complete")), 2);
    // A user made over HTTPS gets an https announce URL.
    let user = curl(
        &certs.ca,
        &[
            "--header",
            "Content-Type: application/json",
            "--data",
            r#"{"name": "alice"}"#,
            &format!("https://localhost:{}/users", tls.port()),
        ],
    )
    .unwrap();
    let user: serde_json::Value = serde_json::from_str(&user).unwrap();
    let url = user["announce_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("https://localhost:{}/", tls.port())),
        "{url}"
    );
    // Without the test CA, curl refuses the certificate.
    let untrusted = Command::new("curl")
        .args(["--silent", "--max-time", "10", &announce(1003)])
        .status()
        .unwrap();
    assert!(!untrusted.success());
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let live = make_certificates(dir.path(), "live");
    let (tracker, tls) = https_tracker(&live, &[]);
    let url = format!("https://localhost:{}/stats", tls.port());
    assert!(curl(&live.ca, &[&url]).is_ok());

    // Renewal: a certificate of another CA replaces the files (as certbot does, by rename).
    let renewed = make_certificates(dir.path(), "renewed");
    let swap = |from: &std::path::Path, to: &std::path::Path| {
        let staged = to.with_extension("new");
        std::fs::copy(from, &staged).unwrap();
        std::fs::rename(&staged, to).unwrap();
    };
    swap(&renewed.key, &live.key);
    swap(&renewed.cert, &live.cert);
    let deadline = Instant::now() + Duration::from_secs(30);
    while curl(&renewed.ca, &[&url]).is_err() {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served:\n{}",
            tracker.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        curl(&live.ca, &[&url]).is_err(),
        "the old certificate is gone"
    );
    assert!(tracker.stderr().contains("TLS certificate reloaded"));

    // A broken renewal: reported, and the certificate in use keeps serving.
    std::fs::write(&live.cert, "not a certificate").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tracker.stderr().contains("TLS certificate not reloaded") {
        assert!(Instant::now() < deadline, "{}", tracker.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(curl(&renewed.ca, &[&url]).is_ok(), "{}", tracker.stderr());
}

#[test]
fn plain_http_on_the_tls_port_is_told_to_use_https_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certificates(dir.path(), "plain");
    let (tracker, tls) = https_tracker(&certs, &[]);
    let mut socket = TcpStream::connect(tls).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
        .write_all(b"GET /announce HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");
    // A handshake that never ends is dropped after the request time (10 s); meanwhile the
    // tracker serves on.
    let mut silent = TcpStream::connect(tls).unwrap();
    silent.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let began = Instant::now();
    assert!(curl(
        &certs.ca,
        &[&format!("https://127.0.0.1:{}/stats", tls.port())]
    )
    .is_ok());
    assert_eq!(tracker.get("/stats").status, 200);
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    let waited = began.elapsed();
    assert!(
        rest.is_empty() && waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "closed after {waited:?} with {rest:?}"
    );
}

#[test]
fn tls_flags_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certificates(dir.path(), "flags");
    let other = make_certificates(dir.path(), "other");
    let cases: [(&[&str], &str); 3] = [
        (&["--tls-bind", "127.0.0.1:0"], "--tls-bind needs both"),
        (
            &[
                "--tls-cert",
                certs.cert.to_str().unwrap(),
                "--tls-key",
                certs.key.to_str().unwrap(),
            ],
            "need a --tls-bind",
        ),
        (
            &[
                "--tls-bind",
                "127.0.0.1:0",
                "--tls-cert",
                certs.cert.to_str().unwrap(),
                "--tls-key",
                other.key.to_str().unwrap(),
            ],
            "does not belong to",
        ),
    ];
    for (args, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tinytracker"))
            .args(["--bind", "127.0.0.1:0", "--state-file"])
            .arg(dir.path().join("state.json"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn sessions_opened_over_https_get_secure_cookies_and_https_invite_links() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certificates(dir.path(), "cookies");
    let (tracker, tls) = https_tracker(&certs, &[]);
    let base = format!("https://localhost:{}", tls.port());
    let json = ["--header", "Content-Type: application/json"];
    let post = |path: &str, body: &str, headers: bool| {
        let url = format!("{base}{path}");
        let mut args = vec!["--data", body];
        args.extend_from_slice(&json);
        if headers {
            args.push("--include");
        }
        args.push(&url);
        curl(&certs.ca, &args).unwrap()
    };
    post("/users", r#"{"name": "alice"}"#, false);
    let invite: serde_json::Value =
        serde_json::from_str(&post("/api/v1/users/alice/invite", "", false)).unwrap();
    let link = invite["invite_url"].as_str().unwrap();
    let secret = link
        .strip_prefix(&format!("{base}/web/invite/"))
        .unwrap_or_else(|| panic!("an https invite link: {link}"));
    let accepted = post(
        &format!("/api/v1/invites/{secret}"),
        r#"{"password": "correct horse battery"}"#,
        true,
    );
    let cookie = accepted
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {accepted}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.trim_end().ends_with("; Secure"),
        "{cookie}"
    );
    // Signing in over plain HTTP (the --bind listener) gives no Secure cookie: the browser would
    // not send it back there.
    let plain = tracker.request(
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        br#"{"name": "alice", "password": "correct horse battery"}"#,
    );
    assert_eq!(plain.status, 200, "{}", plain.text());
    let cookie = plain.header("Set-Cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );
}
