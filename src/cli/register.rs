//! What `add-torrent-info` does besides parsing: turning its arguments into a list of inputs
//! (files, directories walked in sorted order, magnet links, paths from stdin) and posting
//! `/add_torrent_info` with bounded, growing retries.

use std::collections::HashSet;
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::{AddTorrentInfo, AddTorrentInfoReply};
use crate::cli::admin_client::{AdminClient, CallError};

/// One thing to register, as named on the command line or found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Magnet(String),
    /// An argument that names nothing usable, with the reason.
    Unusable {
        what: String,
        why: String,
    },
}

/// Expands the arguments in order. `-` reads one input per line from `stdin`. Directories are
/// searched recursively for `*.torrent` in sorted order; a directory reached twice (symlink loop) is
/// walked once.
pub fn collect_inputs(args: &[String], stdin: &mut dyn BufRead) -> Vec<Input> {
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    for arg in args {
        if arg == "-" {
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        let entry = line.trim_end_matches(['\n', '\r']);
                        if !entry.trim().is_empty() {
                            add_input(entry, &mut visited, &mut out);
                        }
                    }
                    Err(e) => {
                        out.push(Input::Unusable {
                            what: "-".into(),
                            why: format!("reading stdin: {e}"),
                        });
                        break;
                    }
                }
            }
        } else {
            add_input(arg, &mut visited, &mut out);
        }
    }
    out
}

fn add_input(arg: &str, visited: &mut HashSet<PathBuf>, out: &mut Vec<Input>) {
    if arg.starts_with("magnet:") {
        out.push(Input::Magnet(arg.to_owned()));
        return;
    }
    let path = PathBuf::from(arg);
    match fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => walk(&path, visited, out),
        Ok(_) => out.push(Input::File(path)),
        Err(e) => out.push(Input::Unusable {
            what: arg.to_owned(),
            why: e.to_string(),
        }),
    }
}

fn walk(dir: &Path, visited: &mut HashSet<PathBuf>, out: &mut Vec<Input>) {
    match fs::canonicalize(dir) {
        Ok(real) => {
            if !visited.insert(real) {
                return;
            }
        }
        Err(e) => {
            out.push(Input::Unusable {
                what: dir.display().to_string(),
                why: e.to_string(),
            });
            return;
        }
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            out.push(Input::Unusable {
                what: dir.display().to_string(),
                why: e.to_string(),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        // fs::metadata follows symlinks: a link to a directory is walked (once), to a file read.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, visited, out),
            Ok(_) if is_torrent_name(&path) => out.push(Input::File(path)),
            Ok(_) => {}
            Err(e) if is_torrent_name(&path) => out.push(Input::Unusable {
                what: path.display().to_string(),
                why: e.to_string(),
            }),
            Err(_) => {}
        }
    }
}

fn is_torrent_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("torrent"))
}

/// Why a registration did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A 4xx: final, with the tracker's own error text.
    #[error("tracker refused it ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// Connection errors, timeouts or 5xx, still failing after every retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

/// Posts `/add_torrent_info` to one tracker through one connection pool, with retries.
pub struct Registrar {
    client: AdminClient,
    pub retries: u32,
    pub retry_delay: Duration,
}

/// Longest wait between two attempts, however many retries were asked for.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

impl Registrar {
    pub fn new(
        tracker: &str,
        token: Option<String>,
        timeout: Duration,
        retries: u32,
        retry_delay: Duration,
    ) -> Self {
        Registrar {
            client: AdminClient::new(tracker, token, timeout),
            retries,
            retry_delay,
        }
    }

    pub fn url(&self) -> String {
        self.client.url("/add_torrent_info")
    }

    pub fn upload_url(&self) -> String {
        self.client.url("/api/v1/torrents")
    }

    /// Posts `payload`, retrying after connection errors, timeouts and 5xx with a delay that
    /// doubles from `retry_delay`. `on_retry(attempt, why, wait)` is told before each wait.
    pub fn register(
        &self,
        payload: &AddTorrentInfo,
        on_retry: &mut dyn FnMut(u32, &str, Duration),
    ) -> Result<AddTorrentInfoReply, RegisterError> {
        self.with_retries(on_retry, || {
            self.client.call("POST", "/add_torrent_info", Some(payload))
        })
    }

    /// Uploads a `.torrent` file as it is (`POST /api/v1/torrents`), with the same retries: the
    /// tracker stores it and serves it to its users with their passkeys.
    pub fn upload(
        &self,
        file: &[u8],
        on_retry: &mut dyn FnMut(u32, &str, Duration),
    ) -> Result<AddTorrentInfoReply, RegisterError> {
        self.with_retries(on_retry, || {
            self.client
                .post_bytes("/api/v1/torrents", "application/x-bittorrent", file)
        })
    }

    fn with_retries(
        &self,
        on_retry: &mut dyn FnMut(u32, &str, Duration),
        call: impl Fn() -> Result<serde_json::Value, CallError>,
    ) -> Result<AddTorrentInfoReply, RegisterError> {
        let mut delay = self.retry_delay;
        let mut attempt = 1;
        loop {
            match call() {
                Ok(value) => {
                    return serde_json::from_value(value).map_err(|e| {
                        RegisterError::Other(format!("unexpected answer from the tracker: {e}"))
                    })
                }
                Err(e) if e.is_transient() && attempt <= self.retries => {
                    on_retry(attempt, &e.to_string(), delay);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                    attempt += 1;
                }
                Err(e) if e.is_transient() => {
                    return Err(RegisterError::Unavailable(format!(
                        "{e} (after {attempt} attempts)"
                    )))
                }
                Err(CallError::Status { status, message }) => {
                    return Err(RegisterError::Rejected { status, message })
                }
                Err(e) => return Err(RegisterError::Other(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"x").unwrap();
    }

    #[test]
    fn directories_are_walked_in_sorted_order_for_torrents_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.torrent",
            "a.TORRENT",
            "sub/c.torrent",
            "notes.txt",
            "sub/deeper/d.torrent",
        ] {
            touch(&dir.path().join(name));
        }
        let inputs = collect_inputs(&[dir.path().display().to_string()], &mut io::empty());
        let names: Vec<String> = inputs
            .iter()
            .map(|i| match i {
                Input::File(p) => p.strip_prefix(dir.path()).unwrap().display().to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "a.TORRENT",
                "b.torrent",
                "sub/c.torrent",
                "sub/deeper/d.torrent"
            ]
        );
    }

    #[test]
    fn symlink_loops_are_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("sub/x.torrent"));
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).unwrap();
        let inputs = collect_inputs(&[dir.path().display().to_string()], &mut io::empty());
        assert_eq!(inputs, vec![Input::File(dir.path().join("sub/x.torrent"))]);
    }

    #[test]
    fn stdin_magnets_and_missing_paths_are_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.torrent");
        touch(&file);
        let mut stdin = io::Cursor::new(format!("{}\n\nmagnet:?xt=urn:btih:ab\n", file.display()));
        let args = vec!["/no/such/thing".to_owned(), "-".to_owned()];
        let inputs = collect_inputs(&args, &mut stdin);
        assert!(matches!(&inputs[0], Input::Unusable { what, .. } if what == "/no/such/thing"));
        assert_eq!(inputs[1], Input::File(file));
        assert_eq!(inputs[2], Input::Magnet("magnet:?xt=urn:btih:ab".into()));
        assert_eq!(inputs.len(), 3);
    }

    /// A one-shot HTTP server on 127.0.0.1:0 that answers each connection with the next reply.
    fn serve(replies: Vec<(u16, &'static str)>) -> (String, std::thread::JoinHandle<usize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut served = 0;
            for (status, body) in replies {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(body.as_bytes()).unwrap();
                served += 1;
            }
            served
        });
        (url, handle)
    }

    fn payload() -> AddTorrentInfo {
        AddTorrentInfo {
            info_hash: "ab".repeat(20),
            ..AddTorrentInfo::default()
        }
    }

    #[test]
    fn a_5xx_is_retried_with_doubling_delays() {
        let ok = r#"{"message":"Torrent info added successfully","info_hash":"ab","created":true}"#;
        let (url, server) = serve(vec![(503, r#"{"error":"busy"}"#), (500, "oops"), (200, ok)]);
        let registrar = Registrar::new(
            &url,
            None,
            Duration::from_secs(5),
            3,
            Duration::from_millis(10),
        );
        let mut waits = Vec::new();
        let reply = registrar.register(&payload(), &mut |_, why, wait| {
            waits.push((why.to_owned(), wait))
        });
        assert!(reply.unwrap().created);
        assert_eq!(server.join().unwrap(), 3);
        assert_eq!(
            waits.iter().map(|(_, w)| w.as_millis()).collect::<Vec<_>>(),
            vec![10, 20]
        );
        assert!(
            waits[0].0.contains("503") && waits[0].0.contains("busy"),
            "{waits:?}"
        );
    }

    #[test]
    fn a_4xx_is_final_and_retries_are_bounded() {
        let (url, server) = serve(vec![(403, r#"{"error":"no token"}"#)]);
        let registrar = Registrar::new(
            &url,
            None,
            Duration::from_secs(5),
            3,
            Duration::from_millis(1),
        );
        let mut retries = 0;
        let err = registrar
            .register(&payload(), &mut |_, _, _| retries += 1)
            .unwrap_err();
        assert_eq!(
            err,
            RegisterError::Rejected {
                status: 403,
                message: "no token".into()
            }
        );
        assert_eq!((retries, server.join().unwrap()), (0, 1));

        let (url, server) = serve(vec![(502, "a"), (502, "b"), (502, "c")]);
        let registrar = Registrar::new(
            &url,
            None,
            Duration::from_secs(5),
            2,
            Duration::from_millis(1),
        );
        let err = registrar
            .register(&payload(), &mut |_, _, _| {})
            .unwrap_err();
        assert!(
            matches!(err, RegisterError::Unavailable(ref m) if m.contains("after 3 attempts")),
            "{err}"
        );
        assert_eq!(server.join().unwrap(), 3);
    }
}
