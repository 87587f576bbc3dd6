//! Several instances on one shared store (`--store redis://…`), against a real `redis-server`
//! started for each test on a free loopback port: one tracker, whichever instance is asked.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;
use crate::e2e::download_through_as;
use crate::events::{data, Reader};

/// Two instances on `redis`, with `args`.
fn pair(redis: &Redis, args: &[&str]) -> (Tracker, Tracker) {
    let url = redis.url();
    let mut all = vec!["--store", url.as_str()];
    all.extend_from_slice(args);
    (Tracker::start(&all), Tracker::start(&all))
}

fn on_store(redis: &Redis, args: &[&str]) -> Tracker {
    let url = redis.url();
    let mut all = vec!["--store", url.as_str()];
    all.extend_from_slice(args);
    Tracker::start(&all)
}

/// An announce of peer `n` (port 6000 + n) for `hash` with `passkey`, as a compact client sends
/// it; `extra` parameters replace the defaults (left=100, uploaded=0).
fn announce(tracker: &Tracker, passkey: &str, hash: &[u8; 20], n: u32, extra: &str) -> Bencode {
    let mut query = format!(
        "info_hash={}&peer_id={}&port={}&downloaded=0&compact=1{extra}",
        escape(hash),
        escape(&id(n)),
        6000 + n
    );
    for default in ["left=100", "uploaded=0"] {
        let name = default.split('=').next().unwrap();
        if !extra.contains(&format!("&{name}=")) {
            query.push('&');
            query.push_str(default);
        }
    }
    let reply = tracker.get(&format!("/{passkey}/announce?{query}"));
    assert_eq!(reply.status, 200);
    reply.bencode()
}

/// The ports of a compact answer's peers.
fn ports(answer: &Bencode) -> Vec<u16> {
    let mut ports: Vec<u16> = bytes(field(answer, "peers"))
        .chunks_exact(6)
        .map(|p| u16::from_be_bytes([p[4], p[5]]))
        .collect();
    ports.sort();
    ports
}

fn create_user(tracker: &Tracker, name: &str) -> String {
    let reply = tracker.post_json("/api/v1/users", &json!({ "name": name }).to_string());
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["passkey"].as_str().unwrap().to_owned()
}

fn upload(tracker: &Tracker, torrent: &[u8]) -> Value {
    let reply = tracker.request(
        "POST",
        "/api/v1/torrents",
        &[("Content-Type", "application/x-bittorrent")],
        torrent,
    );
    assert!(
        reply.status == 201 || reply.status == 200,
        "{}",
        reply.text()
    );
    reply.json()
}

fn hash_of(answer: &Value) -> [u8; 20] {
    let hex = answer["info_hash"].as_str().unwrap();
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn two_instances_are_one_private_tracker() {
    let redis = Redis::start();
    let (a, b) = pair(&redis, &["--private"]);

    // A user made through A announces through B at once.
    let passkey = create_user(&a, "alice");
    let torrent = make_torrent("shared", 2, true);
    let registered = upload(&a, &torrent);
    let hash = hash_of(&registered);
    let first = announce(&b, &passkey, &hash, 1, "");
    assert_eq!(failure(&first), None, "{}", describe(&first));

    // B lists and serves the torrent uploaded to A, with the same info hash.
    let listed = b.get("/api/v1/torrents").json();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["torrents"][0]["info_hash"], registered["info_hash"]);
    let served = b.get(&format!("/{passkey}/download/{}", hex(&hash)));
    assert_eq!(served.status, 200, "{}", served.text());
    assert!(served
        .body
        .windows(torrent_info(&torrent).len())
        .any(|w| w == torrent_info(&torrent)));

    // A peer that announced to B is given to a peer that announces to A, and the other way.
    let second = announce(&a, &passkey, &hash, 2, "");
    assert_eq!(ports(&second), vec![6001]);
    assert_eq!(int(field(&second, "incomplete")), 2);
    assert_eq!(ports(&announce(&b, &passkey, &hash, 1, "")), vec![6002]);

    // Accounting adds up across instances: 1000 bytes up through A, 500 through B.
    announce(&a, &passkey, &hash, 2, "&uploaded=1000");
    announce(
        &b,
        &passkey,
        &hash,
        1,
        "&uploaded=500&left=0&event=completed",
    );
    for tracker in [&a, &b] {
        let user = tracker.get("/api/v1/users/alice").json();
        assert_eq!(user["uploaded"], 1500, "{user}");
        assert_eq!(user["completed"], 1, "{user}");
    }
    let scrape = b
        .get(&format!("/{passkey}/scrape?info_hash={}", escape(&hash)))
        .bencode();
    let Bencode::Dict(files) = field(&scrape, "files") else {
        panic!("{}", describe(&scrape));
    };
    let counts = &files[&hash[..]];
    assert_eq!(
        (
            int(field(counts, "complete")),
            int(field(counts, "incomplete")),
            int(field(counts, "downloaded"))
        ),
        (1, 1, 1)
    );

    // A passkey rotated through A is refused by B on its next announce; the new one works.
    let rotated = a
        .request("POST", "/api/v1/users/alice/rotate", &[], b"")
        .json();
    let new_key = rotated["passkey"].as_str().unwrap();
    assert_eq!(
        failure(&announce(&b, &passkey, &hash, 1, "")).as_deref(),
        Some("passkey revoked")
    );
    assert_eq!(failure(&announce(&b, new_key, &hash, 1, "")), None);

    // A torrent removed through B is gone at A, and announces for it are refused there.
    let removed = b.request(
        "DELETE",
        &format!("/api/v1/torrents/{}", hex(&hash)),
        &[],
        b"",
    );
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(a.get("/api/v1/torrents").json()["total"], 0);
    assert_eq!(
        failure(&announce(&a, new_key, &hash, 2, "")).as_deref(),
        Some("unregistered torrent")
    );
}

/// The `info` dictionary of a torrent made by [`make_torrent`] (its bytes, as served files keep them).
fn torrent_info(torrent: &[u8]) -> Vec<u8> {
    let at = torrent.windows(6).position(|w| w == b"4:info").unwrap() + 6;
    torrent[at..torrent.len() - 1].to_vec()
}

#[test]
fn a_real_client_seeds_through_one_instance_to_a_leecher_on_another() {
    let redis = Redis::start();
    let (a, b) = pair(&redis, &[]);
    let leecher_url = format!("http://{}/announce", b.addr);
    download_through_as(
        &a,
        &format!("http://{}/announce", a.addr),
        &[],
        &[
            ("SWARM_KIND", "v1"),
            ("SWARM_LEECHER_ANNOUNCE_URL", &leecher_url),
        ],
    );
}

#[test]
fn killing_an_instance_loses_nothing() {
    let redis = Redis::start();
    let (mut a, b) = pair(&redis, &["--private"]);
    let passkey = create_user(&a, "bob");
    let hash = hash_of(&upload(&a, &make_torrent("kept", 1, true)));
    announce(&a, &passkey, &hash, 1, "&uploaded=0");
    announce(&a, &passkey, &hash, 1, "&uploaded=4096");
    a.signal(libc::SIGKILL);
    a.wait();

    // Everything A was told is there for B, and for a new instance.
    let c = on_store(&redis, &["--private"]);
    for tracker in [&b, &c] {
        assert_eq!(tracker.get("/api/v1/torrents").json()["total"], 1);
        assert_eq!(tracker.get("/api/v1/users/bob").json()["uploaded"], 4096);
        let answer = announce(tracker, &passkey, &hash, 2, "");
        assert_eq!(failure(&answer), None, "{}", describe(&answer));
    }
    assert_eq!(
        ports(&announce(&c, &passkey, &hash, 3, "")),
        vec![6001, 6002]
    );
}

#[test]
fn losing_redis_is_reported_and_recovered_from() {
    let mut redis = Redis::start();
    let tracker = on_store(&redis, &["--private"]);
    let passkey = create_user(&tracker, "carol");
    let hash = hash_of(&upload(&tracker, &make_torrent("outage", 1, true)));
    assert_eq!(failure(&announce(&tracker, &passkey, &hash, 1, "")), None);

    redis.kill();
    let refused = announce(&tracker, &passkey, &hash, 1, "");
    assert_eq!(
        failure(&refused).as_deref(),
        Some("tracker storage is unavailable, try again shortly")
    );
    let admin = tracker.post_json("/api/v1/users", r#"{"name": "dave"}"#);
    assert_eq!(admin.status, 503, "{}", admin.text());
    assert!(admin.json()["error"]
        .as_str()
        .unwrap()
        .contains("unavailable"));
    assert_eq!(tracker.get("/api/v1/torrents").status, 503);

    // Back, with what it had written: the tracker recovers by itself.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let answer = announce(&tracker, &passkey, &hash, 1, "");
        if failure(&answer).is_none() || Instant::now() > deadline {
            break answer;
        }
    };
    assert_eq!(failure(&answer), None, "{}", describe(&answer));
    let created = tracker.post_json("/api/v1/users", r#"{"name": "dave"}"#);
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        tracker.get("/api/v1/users").json()["users"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        tracker.stderr().contains("unavailable"),
        "{}",
        tracker.stderr()
    );
}

#[test]
fn an_unreachable_store_stops_the_start_with_a_clear_error() {
    let redis = Redis::start();
    let url = format!("redis://:hunter2@127.0.0.1:{}/0", redis.port);
    drop(redis);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinytracker"))
        .args(["--bind", "127.0.0.1:0", "--store", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unavailable"), "{stderr}");
    assert!(stderr.contains("redis://***@127.0.0.1"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password is not shown: {stderr}"
    );
    assert!(out.stdout.is_empty(), "it never listened");
}

#[test]
fn live_events_reach_subscribers_of_every_instance() {
    let redis = Redis::start();
    let (a, b) = pair(&redis, &[]);
    let (mut reader, status) = Reader::start(&format!("http://{}/api/v1/events", b.addr), 2, None);
    assert_eq!(status["status"], 200, "{status}");
    assert_eq!(reader.line(), "connected");
    let hash = hash_of(&upload(&a, &make_torrent("live", 1, false)));
    let added = reader.event();
    assert!(
        ["added", "updated"].contains(&added["event"].as_str().unwrap()),
        "{added}"
    );
    assert_eq!(data(&added)["info_hash"], hex(&hash));
    let query = format!(
        "info_hash={}&peer_id={}&port=6001&left=0&uploaded=0&downloaded=0&compact=1",
        escape(&hash),
        escape(&id(1))
    );
    assert_eq!(failure(&a.announce(&query)), None);
    let counts = reader.event();
    assert_eq!(counts["event"], "counts", "{counts}");
    assert_eq!(data(&counts)["info_hash"], hex(&hash));
    assert_eq!(data(&counts)["seeders"], 1, "{counts}");
}

#[test]
fn import_then_export_gives_the_state_back() {
    // A tracker with a state file: users, an uploaded torrent with its file, peers, completions.
    let mut local = Tracker::start(&["--private"]);
    let passkey = create_user(&local, "erin");
    create_user(&local, "frank");
    let hash = hash_of(&upload(&local, &make_torrent("moved", 2, true)));
    announce(&local, &passkey, &hash, 1, "");
    announce(
        &local,
        &passkey,
        &hash,
        1,
        "&uploaded=77&left=0&event=completed",
    );
    announce(&local, &passkey, &hash, 2, "");
    assert_eq!(local.interrupt().code(), Some(0));
    let original = local.state_path();

    let redis = Redis::start();
    let binary = env!("CARGO_BIN_EXE_tinytracker");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(binary)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let url = redis.url();
    let state = original.to_str().unwrap();
    let (ok, said) = run(&["state", "import", "--store", &url, "--state-file", state]);
    assert!(ok, "{said}");
    assert!(
        said.contains("imported 1 torrents, 2 peers, 2 users and 1 stored .torrent files"),
        "{said}"
    );
    // A second import into a store that holds a tracker is refused, and changes nothing.
    let (ok, said) = run(&["state", "import", "--store", &url, "--state-file", state]);
    assert!(!ok && said.contains("already holds"), "{said}");

    // An instance on the store serves what was imported.
    let shared = on_store(&redis, &["--private"]);
    assert_eq!(shared.get("/api/v1/users/erin").json()["uploaded"], 77);
    assert_eq!(
        ports(&announce(&shared, &passkey, &hash, 3, "")),
        vec![6001, 6002]
    );
    drop(shared);

    let out_dir = tempfile::tempdir().unwrap();
    let exported = out_dir.path().join("tracker_state.json");
    // The store now also holds peer 3: export what it held before that, by importing again.
    let (ok, said) = run(&[
        "state",
        "import",
        "--store",
        &url,
        "--replace",
        "--state-file",
        state,
    ]);
    assert!(ok, "{said}");
    let (ok, said) = run(&[
        "state",
        "export",
        "--store",
        &url,
        exported.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    assert_eq!(comparable(&original), comparable(&exported));
    let file = |dir: &std::path::Path| {
        std::fs::read(dir.join(format!("tracker_state.torrents/{}.torrent", hex(&hash)))).unwrap()
    };
    assert_eq!(file(original.parent().unwrap()), file(out_dir.path()));
    let (ok, said) = run(&[
        "state",
        "export",
        "--store",
        &url,
        exported.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("not overwritten"), "{said}");
}

/// A state file as data: without the time of the save, peers in one order.
fn comparable(path: &std::path::Path) -> Value {
    let mut state: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    state.as_object_mut().unwrap().remove("saved_at");
    for torrent in state["torrents"].as_object_mut().unwrap().values_mut() {
        let peers = torrent["peers_info"].as_array_mut().unwrap();
        peers.sort_by_key(|p| (p["port"].as_u64(), p["user"].as_str().map(str::to_owned)));
    }
    state
}

#[test]
fn a_pending_registration_made_through_one_instance_is_settled_by_an_announce_to_another() {
    let redis = Redis::start();
    let (a, b) = pair(&redis, &["--registered-only"]);
    let (_, hash) = crate::e2e::ambiguous_torrent();
    let text = tinytracker::legacy::custom_urlencode(&hash);
    let body = json!({ "info_hash": text, "name": "pending one" }).to_string();
    let reply = a.post_json("/add_torrent_info", &body).json();
    assert_eq!(reply["ambiguous"], true, "{reply}");
    let query = format!(
        "info_hash={}&peer_id={}&port=6001&left=1",
        escape(&hash),
        escape(&id(1))
    );
    assert_eq!(
        failure(&b.announce(&query)),
        None,
        "served from its first announce, through B"
    );
    let listed = a.get("/api/v1/torrents").json();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["torrents"][0]["info_hash"], hex(&hash));
    assert_eq!(listed["torrents"][0]["name"], "pending one");
    assert_eq!(listed["torrents"][0]["leechers"], 1, "{listed}");
}

#[test]
fn peers_over_time_are_sampled_once_and_read_by_every_instance() {
    let redis = Redis::start();
    let a = on_store(&redis, &[]);
    let hash = hash_of(&upload(&a, &make_torrent("history", 1, false)));
    let query = format!(
        "info_hash={}&peer_id={}&port=6001&left=0&uploaded=0&downloaded=0",
        escape(&hash),
        escape(&id(1))
    );
    assert_eq!(failure(&a.announce(&query)), None);
    // B starts in the slot A sampled at its start (before the seeder came): it takes A's
    // sample, with no seeder, and does not take its own, which would count the seeder.
    let b = on_store(&redis, &[]);
    let totals = |t: &Tracker| t.get("/api/v1/history").json();
    assert_eq!(totals(&a), totals(&b));
    let points = totals(&b)["fine"]["points"].clone();
    assert_eq!(points.as_array().unwrap().len(), 1, "{points}");
    assert_eq!(
        points[0][1], 0,
        "A's sample, taken before the seeder: {points}"
    );
    assert_eq!(
        a.get(&format!("/api/v1/torrents/{}/history", hex(&hash)))
            .json(),
        b.get(&format!("/api/v1/torrents/{}/history", hex(&hash)))
            .json()
    );
}

#[test]
fn a_store_over_tls_with_a_password() {
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certificates(certs_dir.path(), "redis");
    let redis = Redis::start_tls(&certs, "s3cret-pass");
    let url = format!("rediss://:s3cret-pass@127.0.0.1:{}/0", redis.port);
    let start = |url: &str, env: &[(&str, &str)]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tinytracker"))
            .args(["--bind", "127.0.0.1:0", "--store", url, "--state-file"])
            .arg(certs_dir.path().join("unused.json"))
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let ca = certs.ca.to_str().unwrap();
    // A server certificate nobody vouches for, and a wrong password: each stops the start.
    let untrusted = start(&url, &[("SSL_CERT_FILE", "/dev/null")]);
    assert!(!untrusted.status.success());
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        said.contains("unavailable") && said.contains("rediss://***@127.0.0.1"),
        "{said}"
    );
    let wrong = format!("rediss://:guess@127.0.0.1:{}/0", redis.port);
    let refused = start(&wrong, &[("SSL_CERT_FILE", ca)]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!said.contains("guess"), "the password is not shown: {said}");

    // Trusting the CA, with the password: a working tracker.
    let tracker = Tracker::start_with_env(&["--store", &url], &[("SSL_CERT_FILE", ca)]);
    let query = format!(
        "info_hash={}&peer_id={}&port=6001&left=0&uploaded=0&downloaded=0",
        escape(&[7; 20]),
        escape(&id(1))
    );
    let answer = tracker.announce(&query);
    assert_eq!(failure(&answer), None, "{}", describe(&answer));
    assert_eq!(int(field(&answer, "complete")), 1);
    assert!(
        !tracker.stderr().contains("s3cret-pass"),
        "{}",
        tracker.stderr()
    );
}
