//! Test harness: starts the real `tinytracker` binary on 127.0.0.1:0 with a temporary state file,
//! reads the address it prints, and speaks raw HTTP/1.1 to it. The process is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

pub use serde_bencode::value::Value as Bencode;

pub struct Tracker {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    _stdout: BufReader<ChildStdout>,
}

impl Tracker {
    /// A tracker in a fresh temporary directory; `args` come after `--bind 127.0.0.1:0 --state-file …`.
    pub fn start(args: &[&str]) -> Tracker {
        Tracker::start_with_env(args, &[])
    }

    /// Like [`Tracker::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Tracker {
        let tempdir = tempfile::tempdir().expect("temp dir");
        let mut tracker = Tracker::launch(tempdir.path(), "127.0.0.1:0", args, env);
        tracker._tempdir = Some(tempdir);
        tracker
    }

    /// A tracker whose state file is `dir/tracker_state.json` (for restarts; the caller owns `dir`).
    pub fn start_in(dir: &Path, args: &[&str]) -> Tracker {
        Tracker::launch(dir, "127.0.0.1:0", args, &[])
    }

    /// A tracker on a given address (for a client that was pointed at it before it started).
    pub fn start_at(dir: &Path, bind: &str) -> Tracker {
        Tracker::launch(dir, bind, &[], &[])
    }

    fn launch(dir: &Path, bind: &str, args: &[&str], env: &[(&str, &str)]) -> Tracker {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .expect("stderr log");
        // TINYTRACKER_TEST_BIN runs the tests against another build (to measure a figure before a
        // change, say); by default they run against this one.
        let binary = std::env::var_os("TINYTRACKER_TEST_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_tinytracker").into());
        let mut child = Command::new(binary)
            .args(["--bind", bind, "--state-file"])
            .arg(dir.join("tracker_state.json"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starting tinytracker");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading stdout");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let status = child.wait().expect("waiting for tinytracker");
            let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            panic!("tinytracker did not start ({status}): stdout {line:?}, stderr:\n{log}");
        };
        Tracker {
            addr: addr.parse().expect("listening address"),
            child,
            dir: dir.to_owned(),
            _tempdir: None,
            _stdout: stdout,
        }
    }

    /// The next `listening on ADDR` line, for trackers started with extra `--bind` flags.
    pub fn next_address(&mut self) -> SocketAddr {
        self.next_listening("")
    }

    /// The next `listening on https://ADDR` line, for trackers started with `--tls-bind`.
    pub fn next_tls_address(&mut self) -> SocketAddr {
        self.next_listening("https://")
    }

    /// The next `listening on udp://ADDR` line, for trackers started with `--udp-bind`.
    pub fn next_udp_address(&mut self) -> SocketAddr {
        self.next_listening("udp://")
    }

    /// The address of the next `listening on SCHEME ADDR` line on stdout.
    fn next_listening(&mut self, scheme: &str) -> SocketAddr {
        let mut line = String::new();
        self._stdout.read_line(&mut line).expect("reading stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|rest| rest.strip_prefix(scheme));
        addr.and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("expected `listening on {scheme}ADDR`, got {line:?}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("tracker_state.json")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[], b"")
    }

    pub fn post_json(&self, target: &str, body: &str) -> Reply {
        self.request(
            "POST",
            target,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// One request on its own connection (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        http(self.addr, method, target, headers, body)
    }

    pub fn announce(&self, query: &str) -> Bencode {
        let reply = self.get(&format!("/announce?{query}"));
        assert_eq!(reply.status, 200, "announce answers 200");
        reply.bencode()
    }

    /// Sends SIGINT (as Ctrl+C does) and waits for the exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.signal(libc::SIGINT);
        self.wait()
    }

    pub fn signal(&self, signal: libc::c_int) {
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("waiting for tinytracker")
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn bencode(&self) -> Bencode {
        serde_bencode::from_bytes(&self.body).unwrap_or_else(|e| {
            panic!(
                "not bencode ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 exchange; `target` is sent exactly as given (already percent-encoded).
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connecting to tinytracker");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading the response");
    parse_response(&raw, method == "HEAD")
}

/// Sends `bytes` as they are on a new connection and reads the answer up to the close.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connecting to tinytracker");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("reading the response");
    parse_response(&answer, false)
}

fn parse_response(raw: &[u8], head_only: bool) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("Transfer-Encoding") && v.contains("chunked"));
    if chunked && !head_only {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// `%xx` for every byte: how real clients send binary ids.
pub fn escape(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("%{b:02x}")).collect()
}

/// Lowercase hex.
pub fn hex(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// A distinct 20-byte value per `n`, with bytes that are not valid UTF-8.
pub fn id(n: u32) -> [u8; 20] {
    let mut raw = [0xffu8; 20];
    raw[..4].copy_from_slice(&n.to_be_bytes());
    raw[4] = 0x80;
    raw
}

/// A dictionary value from a decoded bencode dictionary.
pub fn field<'a>(dict: &'a Bencode, key: &str) -> &'a Bencode {
    match dict {
        Bencode::Dict(map) => map
            .get(key.as_bytes())
            .unwrap_or_else(|| panic!("no key {key:?} in {}", describe(dict))),
        other => panic!("not a dict: {}", describe(other)),
    }
}

pub fn has_field(dict: &Bencode, key: &str) -> bool {
    matches!(dict, Bencode::Dict(map) if map.contains_key(key.as_bytes()))
}

pub fn int(value: &Bencode) -> i64 {
    match value {
        Bencode::Int(i) => *i,
        other => panic!("not an integer: {}", describe(other)),
    }
}

pub fn bytes(value: &Bencode) -> &[u8] {
    match value {
        Bencode::Bytes(b) => b,
        other => panic!("not a byte string: {}", describe(other)),
    }
}

/// The failure reason of a bencoded failure, if it is one.
pub fn failure(value: &Bencode) -> Option<String> {
    has_field(value, "failure reason")
        .then(|| String::from_utf8_lossy(bytes(field(value, "failure reason"))).into_owned())
}

pub fn describe(value: &Bencode) -> String {
    match value {
        Bencode::Bytes(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Bencode::Int(i) => i.to_string(),
        Bencode::List(l) => format!(
            "[{}]",
            l.iter().map(describe).collect::<Vec<_>>().join(", ")
        ),
        Bencode::Dict(d) => format!(
            "{{{}}}",
            d.iter()
                .map(|(k, v)| format!("{}: {}", String::from_utf8_lossy(k), describe(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A v1 single-file `.torrent` made here: `name`, `pieces` bytes of piece hashes (their count
/// sets the file length), private or not. The content is never downloaded, so the hashes are
/// made up; the size of the file is what tests of upload limits need.
pub fn make_torrent(name: &str, pieces: usize, private: bool) -> Vec<u8> {
    let pieces = pieces / 20 * 20;
    let mut info = format!(
        "d6:lengthi{}e4:name{}:{name}12:piece lengthi16384e6:pieces{pieces}:",
        pieces / 20 * 16384,
        name.len()
    )
    .into_bytes();
    info.extend((0..pieces).map(|i| (i * 7 % 251) as u8));
    if private {
        info.extend_from_slice(b"7:privatei1e");
    }
    info.push(b'e');
    let mut file = b"d8:announce14:http://x/a/b/c4:info".to_vec();
    file.extend_from_slice(&info);
    file.push(b'e');
    file
}

/// A private v1 single-file `.torrent` whose content is real: `len` bytes of a fixed pattern are
/// written to `dir/name` and hashed piece by piece, so a client pointed at `dir` seeds it.
pub fn make_seedable_torrent(dir: &Path, name: &str, len: usize) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    const PIECE: usize = 16384;
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(dir.join(name), &data).unwrap();
    let pieces: Vec<u8> = data
        .chunks(PIECE)
        .flat_map(|p| Sha1::digest(p).to_vec())
        .collect();
    let mut info = format!(
        "d6:lengthi{len}e4:name{}:{name}12:piece lengthi{PIECE}e6:pieces{}:",
        name.len(),
        pieces.len()
    )
    .into_bytes();
    info.extend_from_slice(&pieces);
    info.extend_from_slice(b"7:privatei1ee");
    let mut file = b"d8:announce14:http://x/a/b/c4:info".to_vec();
    file.extend_from_slice(&info);
    file.push(b'e');
    file
}

/// A `multipart/form-data` body as a browser sends it: text fields, then the file in `torrent`.
pub fn form(fields: &[(&str, &str)], torrent: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----tinytrackerFormBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"torrent\"; filename=\"up.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(torrent);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A `.torrent` of `tests/fixtures/torrents/`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/torrents")
            .join(name),
    )
    .unwrap()
}

/// A test CA and a server certificate it signed (for `localhost`, 127.0.0.1 and ::1), as PEM
/// files in `dir`, named after `tag`.
pub struct Certificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_certificates(dir: &Path, tag: &str) -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("tinytracker test CA {tag}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("tinytracker {tag}"));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let files = Certificates {
        ca: dir.join(format!("{tag}-ca.pem")),
        cert: dir.join(format!("{tag}-cert.pem")),
        key: dir.join(format!("{tag}-key.pem")),
    };
    std::fs::write(&files.ca, ca.pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

/// A tracker serving HTTPS on 127.0.0.1:0 with `certs` (and plain HTTP as usual), and its TLS
/// address; `args` come after the TLS flags.
pub fn https_tracker(certs: &Certificates, args: &[&str]) -> (Tracker, SocketAddr) {
    let mut all = vec![
        "--tls-bind",
        "127.0.0.1:0",
        "--tls-cert",
        certs.cert.to_str().unwrap(),
        "--tls-key",
        certs.key.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let mut tracker = Tracker::start(&all);
    let addr = tracker.next_tls_address();
    (tracker, addr)
}

/// A private `redis-server` for one test: on a free loopback port, in its own temporary
/// directory, with every write appended and synced to disk (so a restart keeps what was written),
/// stopped when dropped. No system service is involved.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Flags beyond the defaults (TLS), kept for a restart.
    extra: Vec<String>,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(Vec::new())
    }

    /// A redis-server that speaks TLS only (with `certs`) and wants `password`.
    pub fn start_tls(certs: &Certificates, password: &str) -> Redis {
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        let extra: Vec<String> = [
            "--tls-cert-file",
            &path(&certs.cert),
            "--tls-key-file",
            &path(&certs.key),
            "--tls-ca-cert-file",
            &path(&certs.ca),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            password,
        ]
        .map(str::to_owned)
        .to_vec();
        Redis::start_with(extra)
    }

    /// A redis-server with `extra` flags, on the first of a few free ports it can bind.
    fn start_with(extra: Vec<String>) -> Redis {
        assert!(
            Command::new("redis-server")
                .arg("--version")
                .output()
                .is_ok(),
            "redis-server is missing: run bash tools/test.sh, which installs Debian's redis-server"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        // A port that was free a moment ago may be taken by the time Redis binds it: try again.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if let Some(child) = launch_redis(port, dir.path(), &extra) {
                return Redis {
                    child: Some(child),
                    port,
                    dir,
                    extra,
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (SIGKILL: no chance to save), as a crash or a lost host would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory, after [`Redis::kill`].
    pub fn restart(&mut self) {
        self.child = launch_redis(self.port, self.dir.path(), &self.extra);
        assert!(
            self.child.is_some(),
            "redis-server did not start again on {}",
            self.port
        );
    }
}

/// Starts redis-server on `port` with its files in `dir`; `Some` once it accepts connections.
/// With TLS flags in `extra`, `port` is its TLS port and it has no plain one.
fn launch_redis(port: u16, dir: &Path, extra: &[String]) -> Option<Child> {
    let tls = extra.iter().any(|a| a.starts_with("--tls"));
    let (plain, tls_port) = if tls {
        ("0".to_owned(), port.to_string())
    } else {
        (port.to_string(), "0".to_owned())
    };
    let mut child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &plain,
            "--tls-port",
            &tls_port,
        ])
        .args(extra)
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting redis-server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("Ready to accept connections"));
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    if ready {
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
