//! `add-torrent-info` against the real tracker binary, and its info hashes against libtorrent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tinytracker::bencode::Writer;

use crate::common::*;

fn cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_add-torrent-info"));
    command
        .env_remove("TINYTRACKER_ADMIN_TOKEN")
        .env_remove("TINYTRACKER_URL");
    command
}

fn run(args: &[&str]) -> Output {
    cli()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running add-torrent-info")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torrents")
}

/// A small single-file torrent whose hash depends on `n`.
fn write_torrent(dir: &Path, n: usize) -> PathBuf {
    let mut info = Writer::with_capacity(128);
    info.raw(b"d")
        .bytes(b"length")
        .int(1000 + n as i64)
        .bytes(b"name")
        .bytes(format!("file-{n:04}.bin").as_bytes());
    info.bytes(b"piece length")
        .int(16384)
        .bytes(b"pieces")
        .bytes(&[n as u8; 20])
        .raw(b"e");
    let mut top = Writer::with_capacity(256);
    top.raw(b"d")
        .bytes(b"creation date")
        .int(1_700_000_000)
        .bytes(b"info")
        .raw(&info.finish())
        .raw(b"e");
    let path = dir.join(format!("t{n:04}.torrent"));
    std::fs::write(&path, top.finish()).unwrap();
    path
}

#[test]
fn info_hashes_match_libtorrent_for_every_fixture() {
    let output = run(&["--dry-run", "--json", fixtures().to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the broken fixtures make the run fail: {}",
        stderr(&output)
    );
    let ours: HashMap<String, Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|v| {
            (
                Path::new(v["path"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                v,
            )
        })
        .collect();
    assert_eq!(ours.len(), 10, "{ours:?}");

    let reference = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import glob, json, os, sys, libtorrent as lt\n\
             for p in sorted(glob.glob(os.path.join(sys.argv[1], '*.torrent'))):\n\
             \x20   try:\n\
             \x20       ih = lt.torrent_info(p).info_hashes()\n\
             \x20       print(json.dumps([os.path.basename(p), str(ih.v1) if ih.has_v1() else None, str(ih.v2) if ih.has_v2() else None]))\n\
             \x20   except RuntimeError:\n\
             \x20       print(json.dumps([os.path.basename(p), 'invalid', None]))\n",
        )
        .arg(fixtures())
        .output()
        .expect("/usr/bin/python3 with Debian's python3-libtorrent (apt-get install python3-libtorrent)");
    assert!(
        reference.status.success(),
        "libtorrent failed (is Debian's python3-libtorrent installed?): {}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let mut checked = 0;
    for line in String::from_utf8_lossy(&reference.stdout).lines() {
        let row: Vec<Value> = serde_json::from_str(line).unwrap();
        let name = row[0].as_str().unwrap();
        let mine = &ours[name];
        if row[1] == "invalid" {
            assert_eq!(mine["outcome"], "failed", "{name}");
            assert!(
                mine["error"].as_str().unwrap().contains("at byte"),
                "{name}: {mine}"
            );
            continue;
        }
        // A pure v2 torrent is registered under its SHA-256 hash truncated to 20 bytes (BEP 52).
        let tracked = match (&row[1], &row[2]) {
            (Value::Null, Value::String(v2)) => Value::String(v2[..40].to_owned()),
            (v1, _) => v1.clone(),
        };
        assert_eq!(mine["info_hash"], tracked, "tracked hash of {name}");
        assert_eq!(mine["v2_hash"], row[2], "v2 hash of {name}");
        assert_eq!(mine["outcome"], "dry-run", "{name}");
        checked += 1;
    }
    assert_eq!(checked, 8, "every valid fixture was compared");
    // The data ends where the file does.
    let truncated_len = std::fs::metadata(fixtures().join("truncated.torrent"))
        .unwrap()
        .len();
    assert_eq!(
        ours["truncated.torrent"]["error"],
        format!("not bencoded: unexpected end of data at byte {truncated_len}")
    );
    assert_eq!(ours["name-utf8.torrent"]["name"], "Café utf-8");
    assert_eq!(ours["multi-file.torrent"]["size"], 70000);
    assert_eq!(ours["multi-file.torrent"]["files"], 2);
    assert_eq!(ours["extra-info-key.torrent"]["private"], true);
    assert_eq!(ours["single-file.torrent"]["private"], false);
}

#[test]
fn a_directory_of_200_torrents_registers_and_a_rerun_adds_nothing_new() {
    let tracker = Tracker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for n in 0..200 {
        write_torrent(dir.path(), n);
    }
    let url = format!("http://{}", tracker.addr);
    let first = run(&["--tracker", &url, dir.path().to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    let out = stdout(&first);
    assert_eq!(out.lines().count(), 201, "one line per file and a summary");
    assert!(out.lines().next().unwrap().starts_with("new "), "{out}");
    assert_eq!(
        out.lines().last(),
        Some("200 registered (200 new), 0 failed, 0 skipped")
    );
    assert!(
        stderr(&first).is_empty(),
        "quiet when all is well: {}",
        stderr(&first)
    );
    let stats = tracker.get("/stats").json();
    assert_eq!(stats.as_object().unwrap().len(), 200);
    assert!(stats
        .as_object()
        .unwrap()
        .values()
        .any(|t| t["name"] == "file-0199.bin"));

    let again = run(&["--tracker", &url, dir.path().to_str().unwrap()]);
    assert!(again.status.success());
    assert_eq!(
        stdout(&again).lines().last(),
        Some("200 registered (0 new), 0 failed, 0 skipped")
    );
}

#[test]
fn a_tracker_that_comes_up_during_the_retries_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    let torrent = write_torrent(dir.path(), 1);
    // A port held (bound, not listening) until the tracker takes it: connections are refused
    // meanwhile, and no other program can be handed the port. SO_REUSEADDR lets the tracker bind
    // it, since nothing listens there.
    let holder = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    holder.set_reuse_address(true).unwrap();
    holder
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    let addr = holder.local_addr().unwrap().as_socket().unwrap();
    let mut child = cli()
        .args([
            "--tracker",
            &format!("http://{addr}"),
            "--retries",
            "6",
            "--retry-delay",
            "0.2",
        ])
        .arg(&torrent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut errors = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    errors.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("retrying"),
        "the first attempt fails and is retried: {line:?}"
    );

    let state = tempfile::tempdir().unwrap();
    let tracker = Tracker::start_at(state.path(), &addr.to_string());
    drop(holder);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 registered (1 new)"));
    assert_eq!(tracker.get("/stats").json().as_object().unwrap().len(), 1);
}

#[test]
fn a_refusal_is_reported_with_the_trackers_reason_and_not_retried() {
    // Behind a trusted proxy that names no client, the caller needs the admin token: a 403.
    let tracker = Tracker::start(&["--trusted-proxy", "127.0.0.1", "--admin-token", "s3cret"]);
    let dir = tempfile::tempdir().unwrap();
    let torrent = write_torrent(dir.path(), 2);
    let url = format!("http://{}", tracker.addr);
    let refused = run(&[
        "--tracker",
        &url,
        "--retry-delay",
        "5",
        torrent.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let errors = stderr(&refused);
    assert!(
        errors.contains("FAILED")
            && errors.contains("403")
            && errors.contains("admin endpoints need a token"),
        "{errors}"
    );
    assert!(!errors.contains("retrying"), "a 4xx is final: {errors}");
    assert!(stdout(&refused).contains("0 registered (0 new), 1 failed, 0 skipped"));

    let allowed = cli()
        .args(["--tracker", &url, torrent.to_str().unwrap()])
        .env("TINYTRACKER_ADMIN_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    let by_flag = run(&[
        "--tracker",
        &url,
        "--token",
        "s3cret",
        torrent.to_str().unwrap(),
    ]);
    assert!(by_flag.status.success());
    assert!(stdout(&by_flag).contains("1 registered (0 new)"));
}

#[test]
fn a_broken_file_is_reported_and_the_rest_still_register() {
    let tracker = Tracker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    write_torrent(dir.path(), 3);
    std::fs::copy(
        fixtures().join("truncated.torrent"),
        dir.path().join("broken.torrent"),
    )
    .unwrap();
    write_torrent(dir.path(), 4);
    let output = run(&[
        "--tracker",
        &format!("http://{}", tracker.addr),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    let end = std::fs::metadata(dir.path().join("broken.torrent"))
        .unwrap()
        .len();
    assert!(
        errors.contains(&format!(
            "broken.torrent: not bencoded: unexpected end of data at byte {end}"
        )),
        "{errors}"
    );
    assert!(stdout(&output).contains("2 registered (2 new), 1 failed, 0 skipped"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(
        run(&["--tracker", "localhost:6969", "x.torrent"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["--retry-delay", "-1", "x.torrent"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["--bogus", "x.torrent"]).status.code(), Some(2));
}

#[test]
fn magnets_and_paths_from_stdin_register() {
    let tracker = Tracker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let torrent = write_torrent(dir.path(), 5);
    let magnet_hash = "e34b5b897bca1ac46ca7992c358ac87f1e0eaddb";
    let mut child = cli()
        .args(["--tracker", &format!("http://{}", tracker.addr), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    writeln!(input, "{}", torrent.display()).unwrap();
    writeln!(input, "magnet:?xt=urn:btih:{magnet_hash}&dn=Lab%20data").unwrap();
    writeln!(input, "{}", torrent.display()).unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("same torrent as"),
        "a repeated input is skipped: {out}"
    );
    assert!(
        out.contains("2 registered (2 new), 0 failed, 1 skipped"),
        "{out}"
    );
    assert_eq!(
        tracker.get("/stats").json()[magnet_hash]["name"],
        "Lab data"
    );
}

#[test]
fn dry_run_contacts_nobody_and_prints_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let torrent = write_torrent(dir.path(), 6);
    // Port 9 (discard) on loopback: nothing answers, and a dry run must not try.
    let output = run(&[
        "--dry-run",
        "--tracker",
        "http://127.0.0.1:9",
        torrent.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let out = stdout(&output);
    assert!(
        out.starts_with("would POST http://127.0.0.1:9/add_torrent_info {"),
        "{out}"
    );
    assert!(
        out.contains("\"name\":\"file-0006.bin\"") && out.contains("\"creation_date\":1700000000"),
        "{out}"
    );
}

#[test]
fn upload_sends_the_files_which_the_tracker_stores_and_serves_untouched() {
    let tracker = Tracker::start(&["--private", "--user-uploads"]);
    let alice = tracker.post_json("/users", r#"{"name": "alice"}"#).json();
    let token = alice["api_token"].as_str().unwrap();
    let passkey = alice["passkey"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.torrent"),
        make_torrent("a.bin", 4000, true),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("single-file.torrent"),
        dir.path().join("b-public.torrent"),
    )
    .unwrap();
    let url = format!("http://{}", tracker.addr);
    let dry = run(&[
        "--upload",
        "--dry-run",
        "--tracker",
        &url,
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        stdout(&dry).contains(&format!("would POST {url}/api/v1/torrents the file (")),
        "{}",
        stdout(&dry)
    );
    let output = run(&[
        "--upload",
        "--tracker",
        &url,
        "--token",
        token,
        "--retries",
        "0",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "one file is refused");
    let hash = tinytracker::metainfo::parse(&make_torrent("a.bin", 4000, true))
        .unwrap()
        .v1
        .unwrap()
        .to_hex();
    assert!(
        stdout(&output).contains(&format!("new      {hash}")),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("not private"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).ends_with("1 registered (1 new), 1 failed, 0 skipped\n"));
    let shown = tracker.get(&format!("/api/v1/torrents/{hash}")).json();
    assert_eq!(shown["uploader"], "alice");
    assert_eq!(shown["stored"], true);
    let served = tracker.get(&format!("/{passkey}/download/{hash}"));
    assert_eq!(served.status, 200);
    let meta = tinytracker::metainfo::parse(&served.body).unwrap();
    assert_eq!(meta.v1.unwrap().to_hex(), hash);
}
