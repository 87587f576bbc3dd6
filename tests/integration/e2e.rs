//! End to end: real clients, driven by the Python scripts in `tests/e2e/`, against the real binary.
//!
//! Needs Debian's `python3-libtorrent` (importable by `/usr/bin/python3`) and, for the `python3` first
//! on PATH, `requests` and `bencodepy` from PyPI. `.ci/run` installs them. Without them these tests
//! fail with a message saying what to install; they never pass by skipping.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;

/// Debian's interpreter: `python3-libtorrent` is installed for it, not for a pyenv `python3`.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

#[test]
fn a_real_client_downloads_through_the_tracker() {
    let tracker = Tracker::start(&["--log-level", "debug"]);
    let announce_url = format!("http://{}/announce", tracker.addr);
    // The script saw the completion counted (downloaded 1, complete 2) while both clients ran.
    let info_hash = download_through(&tracker, &announce_url, &[]);
    // Both clients have sent `stopped` by now. Nobody registered the torrent, so open mode keeps
    // nothing of it: announces cannot fill the tracker with empty torrents.
    let scrape = tracker
        .get(&format!("/scrape?info_hash={}", escape(&info_hash)))
        .bencode();
    let Bencode::Dict(files) = field(&scrape, "files") else {
        panic!("files is not a dict: {}", describe(&scrape));
    };
    assert!(
        !files.contains_key(&info_hash[..]),
        "an unregistered torrent without peers is kept: {}",
        describe(&scrape)
    );
}

#[test]
fn a_real_client_downloads_over_https_trusting_the_test_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = make_certificates(dir.path(), "swarm");
    let (tracker, tls) = https_tracker(&certs, &["--log-level", "debug"]);
    // libtorrent checks the tracker's certificate (validate_https_trackers is on by default)
    // against OpenSSL's roots, which SSL_CERT_FILE names; Python's scrape requests do the same.
    let announce_url = format!("https://127.0.0.1:{}/announce", tls.port());
    let ca = certs.ca.to_str().unwrap();
    download_through_as(
        &tracker,
        &announce_url,
        &[],
        &[("SWARM_KIND", "v1"), ("SSL_CERT_FILE", ca)],
    );
    // The clients knew only the https URL: every announce in the log came over TLS.
    assert!(
        tracker.stderr().contains("GET /announce -> 200"),
        "{}",
        tracker.stderr()
    );
}

#[test]
fn a_real_client_downloads_through_a_private_tracker_with_a_passkey() {
    let tracker = Tracker::start(&["--private", "--log-level", "debug"]);
    let user = tracker.post_json("/users", r#"{"name": "e2e"}"#).json();
    let announce_url = user["announce_url"]
        .as_str()
        .expect("announce_url")
        .to_owned();
    assert!(announce_url.ends_with("/announce"), "{announce_url}");
    private_download(&tracker, &announce_url);
}

#[test]
fn a_stock_client_downloads_through_a_private_tracker_with_a_passkey_query() {
    // `?passkey=` keeps libtorrent's SSRF mitigation on, as in a stock client, even on loopback.
    let tracker = Tracker::start(&["--private", "--log-level", "debug"]);
    let user = tracker.post_json("/users", r#"{"name": "e2e"}"#).json();
    let passkey = user["passkey"].as_str().expect("passkey");
    let announce_url = format!("http://{}/announce?passkey={passkey}", tracker.addr);
    private_download(&tracker, &announce_url);
}

/// The libtorrent download against `--private`, the torrent registered first by add-torrent-info;
/// checks the completion and the user's accounting.
fn private_download(tracker: &Tracker, announce_url: &str) {
    private_download_of(tracker, announce_url, "v1");
}

/// The same for a `kind` of torrent: v1, v2 (BEP 52 only) or hybrid. Returns the stats entry.
fn private_download_of(tracker: &Tracker, announce_url: &str, kind: &str) -> serde_json::Value {
    let base = format!("http://{}", tracker.addr);
    // The torrent is registered with add-torrent-info before either client starts.
    let register = [
        env!("CARGO_BIN_EXE_add-torrent-info"),
        "--tracker",
        base.as_str(),
    ];
    let info_hash = download_through_as(tracker, announce_url, &register, &[("SWARM_KIND", kind)]);

    let stats = tracker.get("/stats").json();
    assert_eq!(stats[hex(&info_hash)]["stats"]["completed"], 1, "{stats}");
    let users = tracker.get("/users").json();
    let e2e = &users["users"][0];
    assert_eq!(e2e["completed"], 1, "{users}");
    let data_size = 3 * 1024 * 1024 + 12345;
    assert!(
        e2e["downloaded"].as_u64().unwrap() >= data_size,
        "the leecher's bytes are credited: {users}"
    );
    stats[hex(&info_hash)].clone()
}

/// A `--private` tracker with one user, and that user's passkey.
fn private_tracker_with_a_user() -> (Tracker, String) {
    let tracker = Tracker::start(&["--private", "--log-level", "debug"]);
    let user = tracker.post_json("/users", r#"{"name": "e2e"}"#).json();
    let passkey = user["passkey"].as_str().expect("passkey").to_owned();
    (tracker, passkey)
}

#[test]
fn a_swarm_completes_from_the_file_the_tracker_serves_with_the_users_passkey() {
    let (tracker, passkey) = private_tracker_with_a_user();
    let base = format!("http://{}", tracker.addr);
    let announce_url = format!("{base}/{passkey}/announce");
    let download_url = format!("{base}/{passkey}/download/{{hash}}");
    let upload = [
        env!("CARGO_BIN_EXE_add-torrent-info"),
        "--upload",
        "--tracker",
        &base,
    ];
    let info_hash = download_through_as(
        &tracker,
        &announce_url,
        &upload,
        &[
            ("SWARM_KIND", "hybrid"),
            ("SWARM_DOWNLOAD_URL", &download_url),
            ("SWARM_ORIGINAL_TRACKER", "http://tracker.invalid/announce"),
        ],
    );
    let shown = tracker
        .get(&format!("/api/v1/torrents/{}", hex(&info_hash)))
        .json();
    assert_eq!(shown["stored"], true, "{shown}");
    assert_eq!(shown["completed"], 1, "{shown}");
}

#[test]
fn a_pure_v2_torrent_downloads_through_a_private_tracker() {
    let (tracker, passkey) = private_tracker_with_a_user();
    let announce_url = format!("http://{}/announce?passkey={passkey}", tracker.addr);
    let entry = private_download_of(&tracker, &announce_url, "v2");
    let v2 = entry["v2_info_hash"]
        .as_str()
        .expect("the v2 hash is shown");
    assert_eq!(v2.len(), 64, "{entry}");
}

#[test]
fn a_hybrid_torrent_is_one_swarm_under_both_hashes_through_a_private_tracker() {
    let (tracker, passkey) = private_tracker_with_a_user();
    let announce_url = format!("http://{}/announce?passkey={passkey}", tracker.addr);
    let entry = private_download_of(&tracker, &announce_url, "hybrid");
    let v2 = entry["v2_info_hash"]
        .as_str()
        .expect("both hashes are shown")
        .to_owned();
    // One torrent, one set of counters: the seeder and the leecher, whichever hash they used.
    let torrents = tracker.get("/torrents").json();
    assert_eq!(
        torrents["torrents"].as_array().unwrap().len(),
        1,
        "{torrents}"
    );
    assert_eq!(entry["stats"]["completed"], 1, "{entry}");
    // libtorrent announced under the truncated v2 hash too, and was answered as the same swarm.
    let log = tracker.stderr();
    let mut short = Vec::new();
    for i in 0..20 {
        short.push(u8::from_str_radix(&v2[2 * i..2 * i + 2], 16).unwrap());
    }
    let scrape = tracker
        .get(&format!(
            "/scrape?info_hash={}&passkey={passkey}",
            escape(&short)
        ))
        .bencode();
    let Bencode::Dict(files) = field(&scrape, "files") else {
        panic!("{}", describe(&scrape));
    };
    let counts = files
        .get(&short[..])
        .unwrap_or_else(|| panic!("{}\n{log}", describe(&scrape)));
    assert_eq!(int(field(counts, "downloaded")), 1);
}

/// Runs the libtorrent seeder and leecher against `announce_url`, after `register` (a command
/// given the torrent's path) when not empty. Returns the torrent's info hash.
fn download_through(tracker: &Tracker, announce_url: &str, register: &[&str]) -> Vec<u8> {
    download_through_as(tracker, announce_url, register, &[("SWARM_KIND", "v1")])
}

/// The same with the script's settings in `env` (SWARM_KIND, SWARM_DOWNLOAD_URL, …).
pub fn download_through_as(
    tracker: &Tracker,
    announce_url: &str,
    register: &[&str],
    env: &[(&str, &str)],
) -> Vec<u8> {
    require_python(
        SYSTEM_PYTHON,
        "libtorrent",
        "install Debian's python3-libtorrent (apt-get install python3-libtorrent)",
    );
    let work = tempfile::tempdir().expect("temp dir");
    // The script seeds a private torrent from one libtorrent session and downloads it with another;
    // they can only find each other through the tracker. It checks the bytes and the tracker's scrape.
    let swarm = run(
        Command::new(SYSTEM_PYTHON)
            .envs(env.iter().copied())
            .arg("-u")
            .arg(script("libtorrent_swarm.py"))
            .arg(announce_url)
            .arg(work.path())
            .args(register),
        Duration::from_secs(240),
        work.path(),
        "libtorrent_swarm",
    );
    assert!(
        swarm.status.success(),
        "the libtorrent swarm failed ({}):\n{}\ntracker log:\n{}",
        swarm.status,
        swarm.output(),
        tracker.stderr()
    );
    swarm
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("info_hash "))
        .map(unhex)
        .unwrap_or_else(|| panic!("the script printed no info hash:\n{}", swarm.output()))
}

/// The multi-file torrent's info hash. Its bytes `25 32 45` have the legacy text form `%2E`: a literal
/// `%`, `2`, `E` that a plain percent-decoder would wrongly read as `.`.
const ALBUM_HASH: &str = "a6066a2532453b55ae88df8509b8d08ef2f49870";
const SINGLE_HASH: &str = "af7d1985c4bd615d1046970576c42cf3dbbcb81f";
/// How the legacy client writes ALBUM_HASH.
const ALBUM_HASH_SENT: &str = "%A6%06j%2E;U%AE%88%DF%85%09%B8%D0%8E%F2%F4%98p";

#[test]
fn the_legacy_client_registers_torrents_under_their_real_info_hash() {
    require_python(
        "python3",
        "requests, bencodepy",
        "install them with `python3 -m pip install requests bencodepy`",
    );
    let tracker = Tracker::start(&["--log-level", "debug"]);
    let work = tempfile::tempdir().expect("temp dir");
    let announce_url = format!("http://{}/announce", tracker.addr);

    let (album_info, album) = album_torrent(&announce_url);
    let (single_info, single) = single_file_torrent();
    assert_eq!(sha1_hex(work.path(), &album_info), ALBUM_HASH);
    assert_eq!(sha1_hex(work.path(), &single_info), SINGLE_HASH);
    let album_path = work.path().join("album.torrent");
    let single_path = work.path().join("single.torrent");
    std::fs::write(&album_path, album).unwrap();
    std::fs::write(&single_path, single).unwrap();

    let register = |run_name: &str| {
        let ran = run(
            Command::new("python3")
                .arg("-u")
                .arg(script("legacy_client.py"))
                .arg("--tracker")
                .arg(format!("http://{}", tracker.addr))
                .arg(&album_path)
                .arg(&single_path),
            Duration::from_secs(60),
            work.path(),
            run_name,
        );
        assert!(
            ran.status.success(),
            "the legacy client failed ({}):\n{}\ntracker log:\n{}",
            ran.status,
            ran.output(),
            tracker.stderr()
        );
        for name in ["Ünïcode album", "single.iso"] {
            let line = format!("Successfully added torrent info for {name}");
            assert!(
                ran.stdout.lines().any(|l| l == line),
                "no {line:?} in\n{}",
                ran.output()
            );
        }
        // "PATH: info hash HEX, sent as 'TEXT'"
        let sent: Vec<(&str, &str)> = ran
            .stdout
            .lines()
            .filter_map(|l| l.split_once(": info hash ")?.1.split_once(", sent as "))
            .collect();
        assert_eq!(sent.len(), 2, "{}", ran.output());
        assert_eq!(sent[0], (ALBUM_HASH, &*format!("'{ALBUM_HASH_SENT}'")));
        assert_eq!(sent[1].0, SINGLE_HASH);
        let replies: Vec<serde_json::Value> = ran
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("tracker replied 200: "))
            .map(|reply| serde_json::from_str(reply).expect("JSON reply"))
            .collect();
        assert_eq!(replies.len(), 2, "{}", ran.output());
        assert_eq!(replies[0]["info_hash"], ALBUM_HASH);
        assert_eq!(replies[1]["info_hash"], SINGLE_HASH);
        replies
    };

    let first = register("first");
    assert!(first.iter().all(|r| r["created"] == true), "{first:?}");
    let stats = tracker.get("/stats").json();
    let mut keys: Vec<&String> = stats.as_object().expect("stats object").keys().collect();
    keys.sort();
    assert_eq!(keys, [ALBUM_HASH, SINGLE_HASH]);
    assert_eq!(stats[ALBUM_HASH]["name"], "Ünïcode album");
    assert_eq!(stats[ALBUM_HASH]["size"], 1_048_583 + 12_345);
    assert_eq!(stats[ALBUM_HASH]["creation_date"], 1_700_000_000);
    assert_eq!(stats[SINGLE_HASH]["name"], "single.iso");
    assert_eq!(stats[SINGLE_HASH]["size"], 5000);
    // Without a creation date in the file, the client sends the time it ran.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sent_date = stats[SINGLE_HASH]["creation_date"].as_i64().unwrap();
    assert!(
        (now - 300..=now).contains(&sent_date),
        "creation_date {sent_date}, now {now}"
    );

    // /stats leaves out piece length, comment and creator; the state file has them.
    assert_eq!(tracker.get("/save_state").status, 200);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tracker.state_path()).unwrap()).unwrap();
    let album_info = &state["torrents"][ALBUM_HASH]["info"];
    assert_eq!(album_info["piece_length"], 262_144);
    assert_eq!(album_info["comment"], "Nightly export – disc 1");
    assert_eq!(album_info["created_by"], "mktorrent 1.1");
    assert_eq!(
        state["torrents"][SINGLE_HASH]["info"]["piece_length"],
        16_384
    );

    // Running it again is accepted and registers nothing new.
    let again = register("again");
    assert!(again.iter().all(|r| r["created"] == false), "{again:?}");
    let stats = tracker.get("/stats").json();
    assert_eq!(stats.as_object().unwrap().len(), 2);
    assert_eq!(stats[ALBUM_HASH]["name"], "Ünïcode album");
}

/// A multi-file torrent with a UTF-8 name: (its bencoded info dictionary, the whole file).
/// The number in `readme-598.txt` was searched for so that the info hash contains a literal `%` that a
/// naive decoder would misread (see ALBUM_HASH); changing the info dictionary means searching again.
fn album_torrent(announce_url: &str) -> (Vec<u8>, Vec<u8>) {
    let file = |length: i64, path: [&str; 2]| {
        dict(&[
            ("length", Bencode::Int(length)),
            (
                "path",
                Bencode::List(path.iter().map(|p| text(p)).collect()),
            ),
        ])
    };
    let info = dict(&[
        (
            "files",
            Bencode::List(vec![
                file(1_048_583, ["disc 1", "track01.flac"]),
                file(12_345, ["docs", "readme-598.txt"]),
            ]),
        ),
        ("name", text("Ünïcode album")),
        ("piece length", Bencode::Int(262_144)),
        // Five pieces; the hashes are made up, nothing downloads this torrent.
        (
            "pieces",
            Bencode::Bytes((0..100u8).map(|i| i.wrapping_mul(7)).collect()),
        ),
        ("private", Bencode::Int(1)),
    ]);
    let torrent = dict(&[
        ("announce", text(announce_url)),
        ("comment", text("Nightly export – disc 1")),
        ("created by", text("mktorrent 1.1")),
        ("creation date", Bencode::Int(1_700_000_000)),
        ("info", info.clone()),
    ]);
    (to_bytes(&info), to_bytes(&torrent))
}

/// A single-file torrent with no comment, creator or date: (its bencoded info dictionary, the whole file).
fn single_file_torrent() -> (Vec<u8>, Vec<u8>) {
    let info = dict(&[
        ("length", Bencode::Int(5000)),
        ("name", text("single.iso")),
        ("piece length", Bencode::Int(16_384)),
        ("pieces", Bencode::Bytes((0..20u8).collect())),
    ]);
    let torrent = dict(&[("info", info.clone())]);
    (to_bytes(&info), to_bytes(&torrent))
}

fn dict(entries: &[(&str, Bencode)]) -> Bencode {
    let map: HashMap<Vec<u8>, Bencode> = entries
        .iter()
        .map(|(key, value)| (key.as_bytes().to_vec(), value.clone()))
        .collect();
    Bencode::Dict(map)
}

fn text(value: &str) -> Bencode {
    Bencode::Bytes(value.as_bytes().to_vec())
}

/// Bencode with dictionary keys sorted, as in a real .torrent file.
fn to_bytes(value: &Bencode) -> Vec<u8> {
    serde_bencode::to_bytes(value).expect("bencoding")
}

/// SHA-1 of `data` in hex, computed by Python's hashlib: an implementation other than the `sha1`
/// crate the tracker uses, so the two check each other.
fn sha1_hex(dir: &Path, data: &[u8]) -> String {
    let path = dir.join("sha1-input");
    std::fs::write(&path, data).unwrap();
    let code =
        "import hashlib, sys; print(hashlib.sha1(open(sys.argv[1], 'rb').read()).hexdigest())";
    let path = path.to_str().unwrap();
    python_stdout("python3", &["-c", code, path])
        .trim()
        .to_owned()
}

/// Runs `python` with `args` (no stdin); fails the test with its stderr unless it succeeds, and
/// returns what it printed.
pub fn python_stdout(python: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(name)
}

/// Fails the test, naming what to install, unless `python` can import `modules`.
pub fn require_python(python: &str, modules: &str, install: &str) {
    let result = Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .output();
    match result {
        Err(e) => panic!(
            "this test needs {python} with {modules}, but {python} cannot run ({e}); {install}"
        ),
        Ok(out) if !out.status.success() => panic!(
            "this test needs {python} to import {modules}, and it cannot; {install}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }
}

/// A finished command: exit status and what it wrote.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn output(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}---", self.stdout, self.stderr)
    }
}

/// Runs `command` to its end, at most `limit`. Output goes to `NAME.stdout` and `NAME.stderr` in
/// `dir` (files cannot fill up and block the child the way unread pipes can).
fn run(command: &mut Command, limit: Duration, dir: &Path, name: &str) -> Ran {
    let stdout_path = dir.join(format!("{name}.stdout"));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let read = |path: &Path| {
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    };
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{shown} did not finish within {limit:?}\n--- stdout\n{}--- stderr\n{}",
                read(&stdout_path),
                read(&stderr_path)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        status,
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
    }
}

/// Bytes from hex (the scripts print info hashes in hex).
fn unhex(text: &str) -> Vec<u8> {
    assert_eq!(text.len() % 2, 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|_| panic!("not hex: {text:?}"))
        })
        .collect()
}

/// A single-file torrent whose info hash has an ambiguous legacy text form (about 1 in 5,500
/// hashes does); returns the .torrent bytes and the hash.
pub fn ambiguous_torrent() -> (Vec<u8>, [u8; 20]) {
    use sha1::{Digest, Sha1};
    for n in 0..1_000_000u32 {
        let name = format!("ambiguous-{n}");
        let info = format!(
            "d6:lengthi1e4:name{}:{name}12:piece lengthi16384e6:pieces20:{}e",
            name.len(),
            "A".repeat(20)
        );
        let hash: [u8; 20] = Sha1::digest(info.as_bytes()).into();
        let text = tinytracker::legacy::custom_urlencode(&hash);
        if tinytracker::legacy::cform_candidates(&text).len() > 1 {
            return (format!("d4:info{info}e").into_bytes(), hash);
        }
    }
    panic!("no ambiguous hash in a million names");
}

#[test]
fn the_legacy_client_registers_an_ambiguous_hash_and_the_first_announce_settles_it() {
    require_python(
        "python3",
        "requests, bencodepy",
        "run bash tools/test.sh, which puts them in target/test-venv",
    );
    let tracker = Tracker::start(&["--registered-only"]);
    let work = tempfile::tempdir().unwrap();
    let (torrent, hash) = ambiguous_torrent();
    let path = work.path().join("ambiguous.torrent");
    std::fs::write(&path, torrent).unwrap();
    let ran = run(
        Command::new("python3")
            .arg("-u")
            .arg(script("legacy_client.py"))
            .arg("--tracker")
            .arg(format!("http://{}", tracker.addr))
            .arg(&path),
        Duration::from_secs(60),
        work.path(),
        "legacy_client",
    );
    assert!(
        ran.status.success(),
        "the legacy client failed:\n{}",
        ran.output()
    );
    let reply: serde_json::Value = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("tracker replied 200: "))
        .map(|r| serde_json::from_str(r).unwrap())
        .unwrap_or_else(|| panic!("no reply in\n{}", ran.output()));
    assert_eq!(reply["ambiguous"], true, "{reply}");
    let candidates: Vec<String> = reply["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(candidates.contains(&hex(&hash)), "{candidates:?}");
    // Registered on save too: a restart before the first announce keeps it.
    assert_eq!(tracker.get("/save_state").status, 200);
    let state = std::fs::read_to_string(tracker.state_path()).unwrap();
    assert!(state.contains("pending_registrations"), "{state}");

    let announce = tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=1&left=1",
        escape(&hash),
        escape(&id(5))
    ));
    assert_eq!(
        failure(&announce),
        None,
        "the real hash is served once announced"
    );
    let stats = tracker.get("/stats").json();
    assert!(
        stats[hex(&hash)]["name"]
            .as_str()
            .unwrap()
            .starts_with("ambiguous-"),
        "{stats}"
    );
    assert_eq!(
        stats.as_object().unwrap().len(),
        1,
        "the other candidates were dropped"
    );
    for other in candidates.iter().filter(|c| **c != hex(&hash)) {
        let raw: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(&other[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let refused = tracker.announce(&format!(
            "info_hash={}&peer_id={}&port=2",
            escape(&raw),
            escape(&id(6))
        ));
        assert_eq!(failure(&refused).as_deref(), Some("unregistered torrent"));
    }
}

// The real-client matrix: each client downloads from a libtorrent seeder through the tracker,
// over IPv4 and IPv6, from an open tracker and from a private one with the user's passkey URL.
// `tests/e2e/client_matrix.py` runs one cell; tools/test.sh installs the clients.

#[test]
fn matrix_libtorrent() {
    client_matrix("libtorrent");
}

#[test]
fn matrix_qbittorrent() {
    client_matrix("qbittorrent");
}

#[test]
fn matrix_transmission() {
    client_matrix("transmission");
}

#[test]
fn matrix_aria2() {
    client_matrix("aria2");
}

/// Why a cell cannot run with the Debian 12 build of a client, if it cannot.
fn unsupported(client: &str, announce_url: &str, family: &str) -> Option<&'static str> {
    let udp = announce_url.starts_with("udp://");
    let passkey = !announce_url.ends_with(":/announce") && announce_url.matches('/').count() > 3;
    match (client, udp, family, passkey) {
        ("transmission", true, "6", _) => {
            Some("Transmission 3.00 announces to UDP trackers over IPv4 only")
        }
        ("transmission", true, _, true) => Some(
            "Transmission 3.00 sends no BEP 41 URL data: a UDP passkey does not reach the tracker",
        ),
        ("aria2", true, "6", _) => Some("aria2 1.36 announces to UDP trackers over IPv4 only"),
        ("aria2", true, _, true) => {
            Some("aria2 1.36 sends no BEP 41 URL data: a UDP passkey does not reach the tracker")
        }
        _ => None,
    }
}

/// The cells of `client`: HTTP and UDP, IPv4 and IPv6, open and with a passkey (over UDP the
/// passkey URL's path travels as BEP 41 URL data).
fn client_matrix(client: &str) {
    require_python(
        SYSTEM_PYTHON,
        "libtorrent",
        "install Debian's python3-libtorrent (apt-get install python3-libtorrent)",
    );
    let udp = ["--udp-bind", "127.0.0.1:0", "--udp-bind", "[::1]:0"];
    let mut open = Tracker::start(&[&["--bind", "[::1]:0"][..], &udp].concat());
    let open_v6 = open.next_address();
    let (open_udp4, open_udp6) = (open.next_udp_address(), open.next_udp_address());
    let mut private = Tracker::start(&[&["--private", "--bind", "[::1]:0"][..], &udp].concat());
    let private_v6 = private.next_address();
    let (private_udp4, private_udp6) = (private.next_udp_address(), private.next_udp_address());
    let user = private.post_json("/users", r#"{"name": "matrix"}"#).json();
    let passkey = user["passkey"].as_str().expect("passkey").to_owned();
    let base = format!("http://{}", private.addr);
    let register = [
        env!("CARGO_BIN_EXE_add-torrent-info"),
        "--tracker",
        base.as_str(),
    ];
    let cells = [
        (&open, "4", format!("http://{}/announce", open.addr), false),
        (&open, "6", format!("http://{open_v6}/announce"), false),
        (&open, "4", format!("udp://{open_udp4}/announce"), false),
        (&open, "6", format!("udp://{open_udp6}/announce"), false),
        (
            &private,
            "4",
            format!("http://{}/{passkey}/announce", private.addr),
            true,
        ),
        (
            &private,
            "6",
            format!("http://{private_v6}/{passkey}/announce"),
            true,
        ),
        (
            &private,
            "4",
            format!("udp://{private_udp4}/{passkey}/announce"),
            true,
        ),
        (
            &private,
            "6",
            format!("udp://{private_udp6}/{passkey}/announce"),
            true,
        ),
    ];
    let mut credited = 0;
    for (tracker, family, announce_url, with_passkey) in &cells {
        if let Some(why) = unsupported(client, announce_url, family) {
            eprintln!("{client} {announce_url}: not run: {why}");
            continue;
        }
        let work = tempfile::tempdir().expect("temp dir");
        let cell = run(
            Command::new(SYSTEM_PYTHON)
                .arg("-u")
                .arg(script("client_matrix.py"))
                .args([client, family, announce_url])
                .env("MATRIX_HTTP_BASE", format!("http://{}", tracker.addr))
                .arg(work.path().join("cell"))
                .args(if *with_passkey { &register[..] } else { &[] }),
            Duration::from_secs(180),
            work.path(),
            "client_matrix",
        );
        let mode = if *with_passkey { "passkey" } else { "open" };
        assert!(
            cell.status.success() && cell.stdout.starts_with(&format!("ok {client} IPv{family}")),
            "{client} over IPv{family}, {mode}: ({}):\n{}\ntracker log:\n{}",
            cell.status,
            cell.output(),
            tracker.stderr()
        );
        if *with_passkey {
            // The private cells so far each credited the user with one completion.
            credited += 1;
            let users = private.get("/users").json();
            assert_eq!(
                users["users"][0]["completed"], credited,
                "{client} IPv{family}: {users}"
            );
        }
    }
}
