//! Live events (`/api/v1/events`) read by a real HTTP client (Python requests, streaming) while
//! the index and the swarm change.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::e2e::{require_python, script};

/// How long a test waits for the next line of the reader before failing.
const WAIT: Duration = Duration::from_secs(30);

pub struct Reader {
    child: Child,
    lines: Receiver<String>,
}

impl Reader {
    /// Starts `read_events.py` on `url`, stopping after `count` events; waits for its first line
    /// (the status), and returns it with the reader.
    pub fn start(url: &str, count: usize, last_event_id: Option<u64>) -> (Reader, Value) {
        require_python(
            "python3",
            "requests",
            "run bash tools/test.sh, which puts it in target/test-venv",
        );
        let mut command = Command::new("python3");
        command
            .arg("-u")
            .arg(script("read_events.py"))
            .arg(url)
            .arg(count.to_string());
        if let Some(id) = last_event_id {
            command.arg(id.to_string());
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("running python3");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut reader = Reader { child, lines };
        let status: Value = serde_json::from_str(&reader.line()).unwrap();
        (reader, status)
    }

    pub fn line(&mut self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("the event reader said nothing for {WAIT:?}"))
    }

    /// The next event that is not a `totals` one.
    pub fn event(&mut self) -> Value {
        loop {
            let event: Value = serde_json::from_str(&self.line()).unwrap();
            if event["event"] != "totals" {
                return event;
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn data(event: &Value) -> Value {
    serde_json::from_str(event["data"].as_str().unwrap()).unwrap()
}

fn id_of(event: &Value) -> u64 {
    event["id"].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_stream_reports_additions_edits_counts_and_removals_and_resumes() {
    let tracker = Tracker::start(&[]);
    let url = format!("http://{}/api/v1/events", tracker.addr);
    let (mut reader, status) = Reader::start(&url, 4, None);
    assert_eq!(status["status"], 200, "{status}");
    assert_eq!(status["content_type"], "text/event-stream");
    assert_eq!(reader.line(), "connected");

    let file = make_torrent("live.bin", 400, false);
    let uploaded = tracker.request(
        "POST",
        "/api/v1/torrents",
        &[("Content-Type", "application/x-bittorrent")],
        &file,
    );
    let hash = uploaded.json()["info_hash"].as_str().unwrap().to_owned();
    let added = reader.event();
    assert_eq!(added["event"], "added", "{added}");
    assert_eq!(data(&added)["info_hash"], hash.as_str());
    assert_eq!(data(&added)["name"], "live.bin");

    tracker.request(
        "PATCH",
        &format!("/api/v1/torrents/{hash}"),
        &[("Content-Type", "application/json")],
        br#"{"title": "<b>Live</b>"}"#,
    );
    let updated = reader.event();
    assert_eq!(updated["event"], "updated");
    assert_eq!(data(&updated)["title"], "<b>Live</b>");

    // Three peers announce at once: one counts event, with all of them.
    let raw = tinytracker::ids::InfoHash::from_hex(&hash).unwrap();
    for n in 1..=3 {
        tracker.announce(&format!(
            "info_hash={}&peer_id={}&port={}&left={}",
            escape(raw.as_bytes()),
            escape(&id(n)),
            6880 + n,
            if n == 1 { 0 } else { 5 }
        ));
    }
    let mut counts = reader.event();
    while data(&counts)["leechers"] != 2 {
        // A tick may fall between the announces: a later event has all three.
        counts = reader.event();
    }
    assert_eq!(counts["event"], "counts");
    assert_eq!(data(&counts)["seeders"], 1);

    tracker.request("DELETE", &format!("/api/v1/torrents/{hash}"), &[], b"");
    let removed = reader.event();
    assert_eq!(removed["event"], "removed");
    assert_eq!(data(&removed)["info_hash"], hash.as_str());
    assert!(id_of(&added) < id_of(&updated) && id_of(&updated) < id_of(&removed));

    // A client that reconnects after `added` is sent what it missed, in order.
    let (mut again, status) = Reader::start(&url, 2, Some(id_of(&added)));
    assert_eq!(status["status"], 200);
    assert_eq!(again.line(), "connected");
    assert_eq!(again.event()["event"], "updated");
    let next = again.event();
    assert!(
        next["event"] == "counts" || next["event"] == "removed",
        "{next}"
    );
}

#[test]
fn subscribers_are_capped_and_a_private_tracker_asks_for_a_token() {
    let tracker = Tracker::start(&["--private", "--max-event-clients", "1"]);
    let alice = tracker.post_json("/users", r#"{"name": "alice"}"#).json();
    let token = alice["api_token"].as_str().unwrap();
    let base = format!("http://{}/api/v1/events", tracker.addr);
    // Not from loopback's operator: a Host that is not the tracker's.
    let anonymous = tracker.request(
        "GET",
        "/api/v1/events",
        &[("Host", "elsewhere.example")],
        b"",
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());

    let (mut first, status) = Reader::start(&format!("{base}?token={token}"), 1, None);
    assert_eq!(status["status"], 200, "{status}");
    assert_eq!(first.line(), "connected");
    let (_, refused) = Reader::start(&format!("{base}?token={token}"), 1, None);
    assert_eq!(refused["status"], 503, "{refused}");
    drop(first);
    // Its place is given back once its connection is gone.
    let mut status = Value::Null;
    for _ in 0..100 {
        let (mut reader, answer) = Reader::start(&format!("{base}?token={token}"), 1, None);
        status = answer;
        if status["status"] == 200 {
            assert_eq!(reader.line(), "connected");
            break;
        }
    }
    assert_eq!(status["status"], 200, "{status}");
}

#[test]
fn a_page_follows_the_counts_of_its_own_torrents_only() {
    let tracker = Tracker::start(&[]);
    let mut hashes = Vec::new();
    for name in ["followed.bin", "other.bin"] {
        let reply = tracker.request(
            "POST",
            "/api/v1/torrents",
            &[("Content-Type", "application/x-bittorrent")],
            &make_torrent(name, 400, false),
        );
        hashes.push(reply.json()["info_hash"].as_str().unwrap().to_owned());
    }
    let bad = tracker.get("/api/v1/events?info_hash=xyz");
    assert_eq!(bad.status, 400, "{}", bad.text());
    let url = format!(
        "http://{}/api/v1/events?info_hash={}",
        tracker.addr, hashes[0]
    );
    let (mut reader, status) = Reader::start(&url, 1, None);
    assert_eq!(status["status"], 200);
    assert_eq!(reader.line(), "connected");
    // The other torrent first: its counts are not sent to this page.
    for (n, hash) in [(1, &hashes[1]), (2, &hashes[0])] {
        let raw = tinytracker::ids::InfoHash::from_hex(hash).unwrap();
        tracker.announce(&format!(
            "info_hash={}&peer_id={}&port=7001&left=5",
            escape(raw.as_bytes()),
            escape(&id(n))
        ));
    }
    let counts = reader.event();
    assert_eq!(counts["event"], "counts");
    assert_eq!(data(&counts)["info_hash"], hashes[0].as_str());
}
