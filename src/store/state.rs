//! The single JSON state file: its serde layout (the Python original's, plus `version` and
//! `completions`), loading current and legacy files, and the atomic save. No locks are taken here.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Number;

use crate::protocol::ids::{InfoHash, PeerId};
use crate::protocol::legacy;
use crate::store::history::History;
use crate::store::info::{InfoUpdate, TorrentInfo};
use crate::store::swarm::{canonical_ip, Peer, Pending, TorrentSnapshot};
use crate::store::users::{Access, Passkey, Role, User, UserId};

/// The layout this tracker writes. Files without `version` are the Python original's.
pub const VERSION: u32 = 2;

/// The file, both ways: read as it is, written by [`write_state`] with `T` a [`TorrentStream`] (the
/// torrents a shard at a time, never the whole swarm in memory).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile<T = TorrentMap> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Unix seconds of the save that wrote the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_at: Option<u64>,
    #[serde(default)]
    pub torrents: T,
    /// Private-tracker users by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, UserEntry>,
    /// Passkeys that no longer work (rotated away, or of deleted users), with whose they were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revoked_passkeys: BTreeMap<String, String>,
    /// Registrations waiting for the first announce of one of their candidate hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_registrations: Vec<PendingEntry>,
    /// The whole tracker's peers over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History<u32>>,
    /// Open invites, by the SHA-256 (64 hex) of their secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub invites: BTreeMap<String, InviteEntry>,
    /// Signed-in browsers, by the SHA-256 (64 hex) of their session id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sessions: BTreeMap<String, SessionEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteEntry {
    pub user: String,
    /// Unix seconds.
    pub expires: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionEntry {
    pub user: String,
    /// Unix seconds.
    pub expires: u64,
    pub csrf: String,
}

/// A pending registration: the candidate hashes (40 hex) and the metadata to register.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingEntry {
    pub candidates: Vec<String>,
    /// Unix seconds of the registration.
    pub since: u64,
    /// The fields it will set (absent: left as they are).
    pub info: InfoUpdate,
}

impl PendingEntry {
    pub fn from_pending(p: &Pending) -> PendingEntry {
        PendingEntry {
            candidates: p.candidates.iter().map(InfoHash::to_hex).collect(),
            since: p.since_unix,
            info: p.update.clone(),
        }
    }

    fn to_pending(&self) -> Result<Pending, String> {
        let candidates = self
            .candidates
            .iter()
            .map(|h| {
                InfoHash::from_hex(h)
                    .map_err(|_| format!("pending registration: {h:?} is not 40 hex"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pending {
            candidates,
            since_unix: self.since,
            update: self.info.clone(),
        })
    }
}

/// The torrents by key, remembering keys that appeared more than once (a hand-edited file):
/// the last entry is kept, as JSON readers do, and the load warns about it.
#[derive(Debug, Default)]
pub struct TorrentMap {
    pub entries: BTreeMap<String, TorrentEntry>,
    pub duplicates: Vec<String>,
}

impl Serialize for TorrentMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TorrentMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TorrentMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of torrents by info hash")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TorrentMap, A::Error> {
                let mut out = TorrentMap::default();
                while let Some((key, entry)) = map.next_entry::<String, TorrentEntry>()? {
                    if out.entries.insert(key.clone(), entry).is_some() {
                        out.duplicates.push(key);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub passkey: String,
    /// Unix seconds.
    pub created: u64,
    #[serde(default)]
    pub last_seen: Option<u64>,
    #[serde(default)]
    pub uploaded: u64,
    #[serde(default)]
    pub downloaded: u64,
    /// Completions announced with this user's passkey.
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub disabled: bool,
    /// SHA-256 of the user's API token, 64 hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_sha256: Option<String>,
    /// `member` when absent.
    #[serde(default, skip_serializing_if = "is_member")]
    pub role: Role,
    /// The Argon2id hash of the user's password (a PHC string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn is_member(role: &Role) -> bool {
    *role == Role::Member
}

impl UserEntry {
    fn of(u: &User) -> UserEntry {
        UserEntry {
            passkey: u.passkey.to_string(),
            created: u.created_unix,
            last_seen: u.last_seen_unix,
            uploaded: u.uploaded,
            downloaded: u.downloaded,
            completed: u.completed,
            disabled: u.disabled,
            api_token_sha256: u.token_hash.map(|h| crate::protocol::ids::hex(&h)),
            role: u.role,
            password: u.password.clone(),
        }
    }
}

/// A torrent. Read with its peers as a `Vec`; written with them as [`PeersOut`], each peer made
/// into its [`PeerEntry`] as it is written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorrentEntry<P = Vec<PeerEntry<'static>>> {
    #[serde(default)]
    pub info: InfoObject,
    #[serde(default)]
    pub peers_info: P,
    /// Written for people and scripts; ignored on load.
    #[serde(default, deserialize_with = "ignored")]
    pub stats: PeerStats,
    /// Number of `event=completed` seen (BEP 48 `downloaded`).
    #[serde(default)]
    pub completions: u64,
    /// Registered by an operator (served with --registered-only). Legacy files: when it has a name.
    #[serde(default)]
    pub registered: bool,
    /// Peers over time (base64 of its points), for a torrent that has had peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Box<History>>,
}

/// A torrent's `info`: its metadata, after the key again (as the original wrote it).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct InfoObject {
    /// The torrent's key, repeated for readers of the file; ignored on load.
    #[serde(default, deserialize_with = "ignored")]
    pub info_hash: String,
    #[serde(flatten)]
    pub info: TorrentInfo,
}

/// A torrent's `stats`: counts and byte sums over the peers in the file (as the original wrote).
#[derive(Debug, Default, Serialize)]
pub struct PeerStats {
    pub complete: usize,
    pub incomplete: usize,
    pub downloaded: u128,
    pub uploaded: u128,
    pub peers: usize,
    pub completed: u64,
}

impl<'a> TorrentEntry<PeersOut<'a>> {
    /// The entry of `t`; peers name their user (`names`: by user id).
    fn of(t: TorrentSnapshot, names: &'a HashMap<UserId, &'a str>) -> Self {
        let mut stats = PeerStats {
            peers: t.peers.len(),
            completed: t.completions,
            ..PeerStats::default()
        };
        for p in &t.peers {
            if p.is_seeder() {
                stats.complete += 1;
            } else {
                stats.incomplete += 1;
            }
            stats.uploaded += u128::from(p.uploaded);
            stats.downloaded += u128::from(p.downloaded);
        }
        TorrentEntry {
            info: InfoObject {
                info_hash: t.info_hash.to_hex(),
                info: t.info,
            },
            peers_info: PeersOut {
                peers: t.peers,
                names,
            },
            stats,
            completions: t.completions,
            registered: t.registered,
            history: t.history,
        }
    }
}

/// A torrent's peers as a save writes them.
pub struct PeersOut<'a> {
    peers: Vec<Peer>,
    names: &'a HashMap<UserId, &'a str>,
}

impl Serialize for PeersOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.peers.len()))?;
        for p in &self.peers {
            seq.serialize_element(&PeerEntry {
                peer_id: Shown::Value(p.peer_id),
                ip: Shown::Value(p.addr.ip()),
                port: p.addr.port().into(),
                last_seen: p.last_seen_unix.into(),
                uploaded: p.uploaded.into(),
                downloaded: p.downloaded.into(),
                left: p.left.into(),
                is_seeder: p.is_seeder(),
                completed: p.completed,
                user: self.names.get(&p.user).map(|n| Shown::Value(*n)),
            })?;
        }
        seq.end()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry<'a> {
    /// Current files: [`PeerId::to_text`]. Legacy files: the original's Werkzeug form.
    pub peer_id: Shown<PeerId>,
    pub ip: Shown<IpAddr>,
    pub port: Number,
    /// Unix seconds (the original wrote fractions).
    pub last_seen: Number,
    pub uploaded: Number,
    pub downloaded: Number,
    pub left: Number,
    #[serde(default)]
    pub is_seeder: bool,
    /// This peer's completion has been counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub completed: bool,
    /// Name of the user whose passkey the peer announced with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Shown<&'a str>>,
}

/// Text in the file: written straight from a value (no string made first), kept as read.
#[derive(Debug)]
pub enum Shown<T> {
    Value(T),
    Read(String),
}

impl<T: fmt::Display> Shown<T> {
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Shown::Value(v) => v.to_string().into(),
            Shown::Read(text) => text.as_str().into(),
        }
    }
}

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Value(v) => {
                // Formatted on the stack first: serde_json escapes each piece a `Display` writes
                // on its own, and an address is seven of them.
                let mut text = StackText::default();
                match fmt::write(&mut text, format_args!("{v}")) {
                    Ok(()) => s.serialize_str(text.as_str()),
                    Err(_) => s.collect_str(v),
                }
            }
            Shown::Read(text) => s.serialize_str(text),
        }
    }
}

/// Up to 64 bytes of text, on the stack; longer text is an error (and written another way).
struct StackText {
    bytes: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `str`s are ever copied in.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let end = self.len + piece.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(piece.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<'de, T> Deserialize<'de> for Shown<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Shown::Read)
    }
}

/// What a load produced, and what it had to leave out (each line names the key and why).
#[derive(Debug, Default)]
pub struct Loaded {
    pub torrents: Vec<TorrentSnapshot>,
    /// Users with ids 1, 2, … (peers refer to these ids).
    pub users: Vec<User>,
    pub revoked: Vec<(Passkey, String)>,
    pub legacy: bool,
    pub skipped: Vec<String>,
    /// Loaded, but worth a look (keys that appeared twice).
    pub warnings: Vec<String>,
    pub pending: Vec<Pending>,
    pub peers: usize,
    /// The whole tracker's peers over time.
    pub history: Option<History<u32>>,
    pub access: Access,
}

#[derive(Debug)]
pub enum LoadError {
    Read(PathBuf, io::Error),
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A current-format problem: a key that is not hex, or a version this build does not know.
    Unsupported(PathBuf, String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            LoadError::Parse {
                path,
                line,
                column,
                message,
            } => write!(
                f,
                "{}:{line}:{column}: not a valid state file: {message}",
                path.display()
            ),
            LoadError::Unsupported(path, what) => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads a state file. `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<Loaded>, LoadError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Read(path.to_owned(), e)),
    };
    // serde reads a struct from an array too; a state file is an object, whatever its version.
    if let Some(at) = bytes.iter().position(|b| !b.is_ascii_whitespace()) {
        if bytes[at] != b'{' {
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            let column = at
                - bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |n| n + 1)
                + 1;
            return Err(LoadError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: "expected a JSON object (the state file is {\"torrents\": …})".into(),
            });
        }
    }
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| LoadError::Parse {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    from_file(file)
        .map(Some)
        .map_err(|what| LoadError::Unsupported(path.to_owned(), what))
}

/// Converts a parsed file; `Err` says why a current-format file cannot be used.
pub fn from_file(file: StateFile) -> Result<Loaded, String> {
    if let Some(version) = file.version.filter(|v| *v > VERSION) {
        return Err(format!(
            "version {version} is newer than this tracker understands"
        ));
    }
    let legacy = file.version.is_none();
    let mut loaded = Loaded {
        legacy,
        history: file.history,
        ..Loaded::default()
    };
    let user_ids = users_from_file(file.users, &mut loaded)?;
    let key = |text: &str, what: &str| {
        crate::protocol::ids::from_hex::<32>(text)
            .ok_or_else(|| format!("{what} key {text:?} is not 64 hex characters"))
    };
    for (text, invite) in file.invites {
        loaded
            .access
            .invites
            .push((key(&text, "invite")?, invite.user, invite.expires));
    }
    for (text, session) in file.sessions {
        loaded.access.sessions.push((
            key(&text, "session")?,
            session.user,
            session.expires,
            session.csrf,
        ));
    }
    for (key, name) in file.revoked_passkeys {
        let passkey = Passkey::parse(&key)
            .ok_or_else(|| format!("revoked passkey of {name:?} is malformed"))?;
        loaded.revoked.push((passkey, name));
    }
    for entry in &file.pending_registrations {
        loaded.pending.push(entry.to_pending()?);
    }
    for key in &file.torrents.duplicates {
        loaded.warnings.push(format!(
            "torrent key {key:?} appears more than once; the last entry was kept"
        ));
    }
    for (key, entry) in file.torrents.entries {
        let info_hash = match torrent_key(&key, legacy)? {
            Ok(hash) => hash,
            Err(why) => {
                loaded.skipped.push(format!("key {key:?}: {why}"));
                continue;
            }
        };
        let peers = peers_from_entries(info_hash, entry.peers_info, legacy, &user_ids, &mut loaded);
        loaded.peers += peers.len();
        // The original registered nothing; a torrent it had metadata for was added by its operator.
        let registered = if legacy {
            !entry.info.info.name.is_empty()
        } else {
            entry.registered
        };
        loaded.torrents.push(TorrentSnapshot {
            info_hash,
            registered,
            info: entry.info.info,
            completions: entry.completions,
            peers,
            history: entry.history,
        });
    }
    Ok(loaded)
}

/// The users of a file, with ids 1, 2, … in `loaded`; returns the id of each name.
fn users_from_file(
    users: BTreeMap<String, UserEntry>,
    loaded: &mut Loaded,
) -> Result<HashMap<String, UserId>, String> {
    let mut ids = HashMap::new();
    for (name, entry) in users {
        let passkey = Passkey::parse(&entry.passkey)
            .ok_or_else(|| format!("user {name:?} has a malformed passkey"))?;
        let token_hash = match &entry.api_token_sha256 {
            None => None,
            Some(text) => Some(
                crate::protocol::ids::from_hex::<32>(text)
                    .ok_or_else(|| format!("user {name:?} has a malformed api_token_sha256"))?,
            ),
        };
        let id = loaded.users.len() as UserId + 1;
        ids.insert(name.clone(), id);
        loaded.users.push(User {
            id,
            name,
            passkey,
            created_unix: entry.created,
            last_seen_unix: entry.last_seen,
            uploaded: entry.uploaded,
            downloaded: entry.downloaded,
            completed: entry.completed,
            disabled: entry.disabled,
            token_hash,
            role: entry.role,
            password: entry.password,
        });
    }
    Ok(ids)
}

/// The info hash a torrent key names: `Ok(Err(why))` skips a legacy key (the original wrote keys
/// that name no hash, or several); `Err` refuses a current file with a key that is not 40 hex.
fn torrent_key(key: &str, legacy: bool) -> Result<Result<InfoHash, String>, String> {
    if !legacy {
        return InfoHash::from_hex(key)
            .map(Ok)
            .map_err(|_| format!("torrent key {key:?} is not a 40-character hex info hash"));
    }
    Ok(match legacy::werkzeug_candidates(key).as_slice() {
        [one] => Ok(InfoHash(*one)),
        [] => Err("not a 20-byte info hash".into()),
        several => {
            let hexes: Vec<String> = several.iter().map(|c| InfoHash(*c).to_hex()).collect();
            Err(format!("ambiguous, could be any of {}", hexes.join(", ")))
        }
    })
}

/// A torrent's peers: unreadable ones are skipped (and named in `loaded`), and of the same peer
/// twice the newest is kept (the original kept the newest per peer id).
fn peers_from_entries(
    info_hash: InfoHash,
    entries: Vec<PeerEntry>,
    legacy: bool,
    user_ids: &HashMap<String, UserId>,
    loaded: &mut Loaded,
) -> Vec<Peer> {
    let mut peers: Vec<Peer> = Vec::with_capacity(entries.len());
    for entry in entries {
        match peer_from_entry(&entry, legacy) {
            Ok(mut peer) => {
                peer.user = entry
                    .user
                    .as_ref()
                    .and_then(|n| user_ids.get(&*n.text()))
                    .copied()
                    .unwrap_or(0);
                peers.push(peer);
            }
            Err(why) => loaded.skipped.push(format!(
                "torrent {info_hash}: peer {:?} {}:{}: {why}",
                entry.peer_id.text(),
                entry.ip.text(),
                entry.port
            )),
        }
    }
    peers.sort_by(|a, b| {
        (a.addr, a.user)
            .cmp(&(b.addr, b.user))
            .then(b.last_seen_unix.cmp(&a.last_seen_unix))
    });
    peers.dedup_by(|later, first| (later.addr, later.user) == (first.addr, first.user));
    peers
}

fn peer_from_entry(entry: &PeerEntry, legacy: bool) -> Result<Peer, &'static str> {
    let peer_id = if legacy {
        // A peer id only labels the peer (its address identifies it); of several readings take the first.
        let candidates = legacy::werkzeug_candidates(&entry.peer_id.text());
        PeerId(*candidates.first().ok_or("peer id is not 20 bytes")?)
    } else {
        PeerId::from_text(&entry.peer_id.text()).map_err(|_| "peer id is not 20 bytes")?
    };
    let ip: IpAddr = entry.ip.text().parse().map_err(|_| "not an IP address")?;
    let port = whole(&entry.port)
        .filter(|p| (1..=65535).contains(p))
        .ok_or("port out of range")?;
    let counter = |value: &Number| whole(value).ok_or("negative or fractional counter");
    let last_seen = entry.last_seen.as_f64().map(f64::floor).unwrap_or(0.0);
    let mut peer = Peer::new(
        SocketAddr::new(canonical_ip(ip), port as u16),
        peer_id,
        counter(&entry.left)?,
        whole_f64(last_seen).ok_or("bad last_seen")?,
    );
    peer.uploaded = counter(&entry.uploaded)?;
    peer.downloaded = counter(&entry.downloaded)?;
    peer.completed = entry.completed;
    Ok(peer)
}

/// A non-negative whole number that fits a u64, from a JSON number.
fn whole(value: &Number) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_f64().and_then(whole_f64))
}

fn whole_f64(value: f64) -> Option<u64> {
    (value >= 0.0 && value.fract() == 0.0 && value < 18_446_744_073_709_551_616.0)
        .then_some(value as u64)
}

/// What a save writes.
pub struct Contents<'a> {
    /// The torrents, a batch at a time (a swarm shard each), so a save never holds a copy of the
    /// whole swarm; `None` when there are no more.
    pub torrents: &'a mut dyn FnMut() -> Option<Vec<TorrentSnapshot>>,
    pub users: &'a [User],
    pub revoked: &'a [(Passkey, String)],
    pub pending: &'a [Pending],
    pub saved_at_unix: u64,
    pub history: Option<History<u32>>,
    pub access: &'a Access,
}

/// Writes the state file as [`StateFile`] with the torrents streamed a batch at a time (40-hex keys
/// sorted within each batch), laid out by [`Layout`]: one peer per line. Returns how many
/// torrents and peers it wrote.
pub fn write_state(out: &mut impl Write, contents: &mut Contents) -> io::Result<(usize, usize)> {
    let names: HashMap<UserId, &str> = contents
        .users
        .iter()
        .map(|u| (u.id, u.name.as_str()))
        .collect();
    let file = StateFile {
        version: Some(VERSION),
        saved_at: Some(contents.saved_at_unix),
        torrents: TorrentStream {
            batches: RefCell::new(&mut *contents.torrents),
            names: &names,
            written: Cell::new((0, 0)),
        },
        users: contents
            .users
            .iter()
            .map(|u| (u.name.clone(), UserEntry::of(u)))
            .collect(),
        revoked_passkeys: contents
            .revoked
            .iter()
            .map(|(key, name)| (key.to_string(), name.clone()))
            .collect(),
        pending_registrations: contents
            .pending
            .iter()
            .map(PendingEntry::from_pending)
            .collect(),
        history: contents.history.take(),
        invites: contents
            .access
            .invites
            .iter()
            .map(|(key, user, expires)| {
                (
                    crate::protocol::ids::hex(key),
                    InviteEntry {
                        user: user.clone(),
                        expires: *expires,
                    },
                )
            })
            .collect(),
        sessions: contents
            .access
            .sessions
            .iter()
            .map(|(key, user, expires, csrf)| {
                (
                    crate::protocol::ids::hex(key),
                    SessionEntry {
                        user: user.clone(),
                        expires: *expires,
                        csrf: csrf.clone(),
                    },
                )
            })
            .collect(),
    };
    let mut json = serde_json::Serializer::with_formatter(&mut *out, Layout::default());
    file.serialize(&mut json)?;
    out.write_all(b"\n")?;
    Ok(file.torrents.written.get())
}

/// The torrents of a save, serialized as the `torrents` object while they are taken a batch at a
/// time from [`Contents::torrents`].
pub struct TorrentStream<'a, 'b> {
    batches: RefCell<&'b mut dyn FnMut() -> Option<Vec<TorrentSnapshot>>>,
    names: &'b HashMap<UserId, &'a str>,
    /// Torrents and peers written so far.
    written: Cell<(usize, usize)>,
}

impl Serialize for TorrentStream<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        let mut next = self.batches.borrow_mut();
        while let Some(mut batch) = next() {
            batch.sort_by_key(|t| t.info_hash);
            for t in batch {
                let (torrents, peers) = self.written.get();
                self.written.set((torrents + 1, peers + t.peers.len()));
                map.serialize_entry(&t.info_hash.to_hex(), &TorrentEntry::of(t, self.names))?;
            }
        }
        map.end()
    }
}

/// The file's layout: objects and arrays down to a torrent's entry get a line per member (and
/// so does a torrent's peer list); anything deeper is one line, so a peer is one line of the file.
#[derive(Default)]
pub struct Layout {
    depth: usize,
    /// Bit `d` set: the container open at depth `d` has a line per member.
    expanded: u64,
    has_value: bool,
}

impl Layout {
    fn open(
        &mut self,
        out: &mut (impl Write + ?Sized),
        bracket: &[u8],
        array: bool,
    ) -> io::Result<()> {
        self.depth += 1;
        let expand = self.depth <= 3 || (array && self.depth == 4);
        self.expanded = (self.expanded & !(1 << self.depth)) | (u64::from(expand) << self.depth);
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close(&mut self, out: &mut (impl Write + ?Sized), bracket: &[u8]) -> io::Result<()> {
        if self.is_expanded() && self.has_value {
            self.newline(out, self.depth - 1)?;
        }
        self.depth -= 1;
        out.write_all(bracket)
    }

    fn is_expanded(&self) -> bool {
        self.depth < 64 && self.expanded & (1 << self.depth) != 0
    }

    fn member(&mut self, out: &mut (impl Write + ?Sized), first: bool) -> io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        if self.is_expanded() {
            self.newline(out, self.depth)
        } else if first {
            Ok(())
        } else {
            out.write_all(b" ")
        }
    }

    fn newline(&self, out: &mut (impl Write + ?Sized), depth: usize) -> io::Result<()> {
        out.write_all(b"\n")?;
        for _ in 0..depth {
            out.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Layout {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"[", true)
    }
    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.member(out, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"{", false)
    }
    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.member(out, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Writes `file` to `path` atomically: a temp file in the same directory (with the old file's
/// permissions), fsync, rename, fsync the directory. If anything before the rename fails, the
/// previous file is untouched. Returns the bytes, torrents and peers written.
pub fn save(path: &Path, contents: &mut Contents) -> io::Result<(u64, usize, usize)> {
    let dir = parent_dir(path);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "state path has no file name")
    })?;
    // A name of its own for every save, created exclusively: no two writers, in this process or
    // another, ever write into one temp file.
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let seq = SAVES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        "{}{}.{seq}.tmp",
        temp_prefix(name),
        std::process::id()
    ));
    let written = write_synced(&tmp, contents, fs::metadata(path).ok()).and_then(|written| {
        fs::rename(&tmp, path)?;
        Ok(written)
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let written = written?;
    // The new file is in place; this only makes the rename itself survive a power cut.
    if let Err(e) = sync_dir(&dir) {
        log::warn!(
            "saved {}, but syncing its directory failed: {e}",
            path.display()
        );
    }
    Ok(written)
}

/// What every temp file of `name` starts with: `.tracker_state.json.`
fn temp_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.", name.to_string_lossy())
}

/// Removes temp files a killed save left beside the state file (call only while holding its
/// [`Lock`]: then no live writer has one open). Returns each one removed and its size.
pub fn remove_stale_temps(path: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let Some(name) = path.file_name() else {
        return Ok(Vec::new());
    };
    let prefix = temp_prefix(name);
    let mut removed = Vec::new();
    for entry in fs::read_dir(parent_dir(path))? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        // `.tracker_state.json.tmp` is the name saves used before they had one each.
        let ours = file_name.starts_with(&prefix) && file_name.ends_with(".tmp");
        if !ours || !entry.file_type()?.is_file() {
            continue;
        }
        let size = entry.metadata().map_or(0, |m| m.len());
        fs::remove_file(entry.path())?;
        removed.push((entry.path(), size));
    }
    Ok(removed)
}

/// The state file the path names: a symlink is followed (to a file that may not exist yet), so
/// saves replace the real file instead of the link.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_owned();
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                path = parent_dir(&path).join(target);
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::other(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// An exclusive `flock` on `.<state file>.lock`, held for the life of the process: one tracker
/// per state file. Dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock for the state file at `path`, or says which process holds it.
pub fn lock(path: &Path) -> Result<Lock, String> {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let lock_path = parent_dir(path).join(format!(".{name}.lock"));
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", lock_path.display()))?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(format!(
            "{} is in use by another tinytracker{} (lock {}); one tracker per state file",
            path.display(),
            if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            },
            lock_path.display()
        ));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(Lock {
        _file: file,
        path: lock_path,
    })
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_synced(
    tmp: &Path,
    contents: &mut Contents,
    previous: Option<fs::Metadata>,
) -> io::Result<(u64, usize, usize)> {
    use std::os::unix::fs::OpenOptionsExt;
    // Readable by the owner only (it holds every passkey) unless the file had other rights.
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    if let Some(previous) = previous {
        created.set_permissions(previous.permissions())?;
    }
    let mut out = BufWriter::with_capacity(1 << 20, created);
    let (torrents, peers) = write_state(&mut out, contents)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((file.metadata()?.len(), torrents, peers))
}

/// Before the first save over a file written by the Python original, keeps it beside the new one
/// as `<name>.legacy` (or `.legacy.1`, … if that exists), synced to disk. Returns where it went.
pub fn keep_legacy_copy(path: &Path) -> io::Result<PathBuf> {
    let base = path.as_os_str().to_string_lossy().into_owned();
    let mut candidate = PathBuf::from(format!("{base}.legacy"));
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}.legacy.{n}"));
        n += 1;
    }
    fs::copy(path, &candidate)?;
    File::open(&candidate)?.sync_all()?;
    sync_dir(&parent_dir(path))?;
    Ok(candidate)
}

/// Reads and drops any value (the `stats` a file carries for its readers).
fn ignored<'de, D: Deserializer<'de>, T: Default>(d: D) -> Result<T, D::Error> {
    serde::de::IgnoredAny::deserialize(d)?;
    Ok(T::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Saves of no torrents and no users.
    fn empty_save(path: &Path) -> io::Result<(u64, usize, usize)> {
        save(
            path,
            &mut Contents {
                torrents: &mut || None,
                users: &[],
                revoked: &[],
                pending: &[],
                saved_at_unix: 1,
                history: None,
                access: &Access::default(),
            },
        )
    }

    /// The file written for these torrents (in one batch), users and revoked passkeys.
    fn written(
        torrents: &[TorrentSnapshot],
        users: &[User],
        revoked: &[(Passkey, String)],
    ) -> String {
        let mut batch = Some(torrents.to_vec());
        let mut contents = Contents {
            torrents: &mut || batch.take(),
            users,
            revoked,
            pending: &[],
            saved_at_unix: 5,
            history: None,
            access: &Access::default(),
        };
        let mut out = Vec::new();
        write_state(&mut out, &mut contents).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn legacy_fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/legacy")
            .join(name)
    }

    fn hex(t: &TorrentSnapshot) -> String {
        t.info_hash.to_hex()
    }

    #[test]
    fn qbittorrent_fixture_loads_its_one_torrent() {
        let loaded = load(&legacy_fixture("tracker_state.qbittorrent.json"))
            .unwrap()
            .unwrap();
        assert!(loaded.legacy);
        assert_eq!(loaded.torrents.len(), 1);
        assert_eq!(
            hex(&loaded.torrents[0]),
            "e34b5b897bca1ac46ca7992c358ac87f1e0eaddb"
        );
        // Two entries share 192.168.2.20:30463; the newest wins.
        let peers = &loaded.torrents[0].peers;
        assert_eq!(peers.len(), 2);
        let shared = peers.iter().find(|p| p.addr.port() == 30463).unwrap();
        assert_eq!(shared.peer_id, PeerId(*b"-qB5030-2msGNq0e_m(L"));
        assert_eq!(shared.left, 4771074618);
    }

    #[test]
    fn binary_keys_fixture_decodes_exactly_the_unambiguous_keys() {
        let loaded = load(&legacy_fixture("tracker_state.binary-keys.json"))
            .unwrap()
            .unwrap();
        let mut hashes: Vec<String> = loaded.torrents.iter().map(hex).collect();
        hashes.sort();
        assert_eq!(
            hashes,
            vec![
                "4141414141414141414141414141414141414141",
                "5bc87edad4bb99237b42070345e0379673755845",
                "83ad044da40a30117025a88b6fb84ade80a997bd",
                "d63ea52113b72c5fc9352cc313dba480b6ba28a1",
                "d74e6149af947b9e0fc4af58c800dd8d34d56e27",
                "e34b5b897bca1ac46ca7992c358ac87f1e0eaddb",
            ]
        );
        let skipped_keys = loaded
            .skipped
            .iter()
            .filter(|s| s.starts_with("key "))
            .count();
        assert_eq!(skipped_keys, 7, "{:#?}", loaded.skipped);
        assert!(loaded
            .skipped
            .iter()
            .any(|s| s.contains("ambiguous")
                && s.contains("00254180ffc3a92538417f0e2b20263de282ac99")));
    }

    #[test]
    fn current_file_round_trips() {
        let mut peer = Peer::new(
            "[2001:db8::7]:51413".parse().unwrap(),
            PeerId(*b"-XX0001-\xff\x00\x80%A\xc3\xa9\x01\x02\x03~\x7f"),
            0,
            1_700_000_000,
        );
        peer.uploaded = u64::MAX;
        peer.completed = true;
        let torrent = TorrentSnapshot {
            info_hash: InfoHash([0xab; 20]),
            registered: true,
            info: TorrentInfo {
                name: "Ünïcode.iso".into(),
                size: 1 << 40,
                piece_length: 1 << 20,
                creation_date: 1_600_000_000,
                comment: "c".into(),
                created_by: "me".into(),
                v2: Some([0x5a; 32]),
                stored: true,
                title: "Ünïcode <i>live</i>".into(),
                tags: vec!["iso".into(), "été".into()],
                added: 1_700_000_000,
                ..TorrentInfo::default()
            },
            completions: 3,
            peers: vec![peer],
            history: None,
        };
        let alice = User {
            id: 1,
            name: "alice".into(),
            passkey: Passkey::generate(),
            created_unix: 1,
            last_seen_unix: Some(2),
            uploaded: 3,
            downloaded: 4,
            completed: 5,
            disabled: true,
            token_hash: Some([0x11; 32]),
            role: Role::Moderator,
            password: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        };
        let revoked = vec![(Passkey::generate(), "alice".to_owned())];
        let text = written(
            std::slice::from_ref(&torrent),
            std::slice::from_ref(&alice),
            &revoked,
        );
        let back = from_file(serde_json::from_str(&text).unwrap()).unwrap();
        assert!(!back.legacy);
        assert!(back.skipped.is_empty(), "{:?}", back.skipped);
        assert_eq!(back.torrents, vec![torrent]);
        assert_eq!(back.users, vec![alice]);
        assert_eq!(back.revoked, revoked);
    }

    #[test]
    fn the_file_has_a_line_per_peer() {
        let peer = |port| {
            Peer::new(
                SocketAddr::from(([10, 0, 0, 1], port)),
                PeerId([b'p'; 20]),
                5,
                9,
            )
        };
        let torrent = TorrentSnapshot {
            info_hash: InfoHash([0xab; 20]),
            registered: true,
            info: TorrentInfo {
                name: "n".into(),
                ..TorrentInfo::default()
            },
            completions: 1,
            peers: vec![peer(1), peer(2)],
            history: None,
        };
        let text = written(&[torrent], &[], &[]);
        let hex = "ab".repeat(20);
        let expected = format!(
            r#"{{
  "version": 2,
  "saved_at": 5,
  "torrents": {{
    "{hex}": {{
      "info": {{"info_hash": "{hex}", "name": "n", "size": 0, "piece_length": 0, "creation_date": 0, "comment": "", "created_by": ""}},
      "peers_info": [
        {{"peer_id": "pppppppppppppppppppp", "ip": "10.0.0.1", "port": 1, "last_seen": 9, "uploaded": 0, "downloaded": 0, "left": 5, "is_seeder": false}},
        {{"peer_id": "pppppppppppppppppppp", "ip": "10.0.0.1", "port": 2, "last_seen": 9, "uploaded": 0, "downloaded": 0, "left": 5, "is_seeder": false}}
      ],
      "stats": {{"complete": 0, "incomplete": 2, "downloaded": 0, "uploaded": 0, "peers": 2, "completed": 1}},
      "completions": 1,
      "registered": true
    }}
  }}
}}
"#
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn an_empty_state_and_odd_names_write_valid_json() {
        let text = written(&[], &[], &[]);
        let back: StateFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back.version, Some(VERSION));
        let torrent = TorrentSnapshot {
            info_hash: InfoHash([1; 20]),
            registered: false,
            info: TorrentInfo {
                name: "quote \" backslash \\ newline \n tab \t ☃".into(),
                ..TorrentInfo::default()
            },
            completions: 0,
            peers: vec![],
            history: None,
        };
        let text = written(std::slice::from_ref(&torrent), &[], &[]);
        let back = from_file(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.torrents, vec![torrent]);
    }

    #[test]
    fn torrents_written_in_several_batches_all_load() {
        let batches: Vec<Vec<TorrentSnapshot>> = (0..3u8)
            .map(|b| {
                (0..4u8)
                    .map(|t| TorrentSnapshot {
                        info_hash: InfoHash([b * 10 + t; 20]),
                        registered: true,
                        info: TorrentInfo::default(),
                        completions: u64::from(t),
                        peers: vec![],
                        history: None,
                    })
                    .collect()
            })
            .collect();
        let mut queue = batches.clone().into_iter();
        let mut contents = Contents {
            torrents: &mut || queue.next(),
            users: &[],
            revoked: &[],
            pending: &[],
            saved_at_unix: 1,
            history: None,
            access: &Access::default(),
        };
        let mut out = Vec::new();
        assert_eq!(write_state(&mut out, &mut contents).unwrap(), (12, 0));
        let back = from_file(serde_json::from_slice(&out).unwrap()).unwrap();
        assert_eq!(back.torrents.len(), 12);
    }

    #[test]
    fn example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tracker_state.json.example");
        let loaded = load(&path).unwrap().unwrap();
        assert!(!loaded.legacy);
        assert!(!loaded.torrents.is_empty());
        assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    }

    #[test]
    fn unknown_fields_and_bad_json_are_errors_with_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(
            &path,
            "{\n  \"torrents\": {\n    \"x\": {\"bogus\": 1}\n  }\n}",
        )
        .unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("state.json:3:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
        fs::write(&path, "{\"torrents\": {").unwrap();
        assert!(matches!(load(&path), Err(LoadError::Parse { line: 1, .. })));
    }

    #[test]
    fn current_file_with_a_bad_key_is_refused() {
        let file: StateFile =
            serde_json::from_str(r#"{"version": 2, "torrents": {"abc": {}}}"#).unwrap();
        assert!(from_file(file)
            .unwrap_err()
            .contains("\"abc\" is not a 40-character hex"));
        let newer: StateFile = serde_json::from_str(r#"{"version": 3, "torrents": {}}"#).unwrap();
        assert_eq!(
            from_file(newer).unwrap_err(),
            "version 3 is newer than this tracker understands"
        );
    }

    #[test]
    fn legacy_metadata_of_any_type_is_accepted() {
        let file: StateFile = serde_json::from_str(
            r#"{"torrents": {"AAAAAAAAAAAAAAAAAAAA": {"info": {"name": 42, "size": "7",
                "piece_length": null, "creation_date": 1738111617.43, "comment": ["x"]},
                "peers_info": [], "stats": {}}}}"#,
        )
        .unwrap();
        let loaded = from_file(file).unwrap();
        let info = &loaded.torrents[0].info;
        assert_eq!(info.name, "42");
        assert_eq!((info.size, info.piece_length), (7, 0));
        assert_eq!(info.creation_date, 1738111617);
        assert_eq!(info.comment, "[\"x\"]");
    }

    #[test]
    fn save_replaces_the_file_atomically_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tracker_state.json");
        fs::write(&path, "old").unwrap();
        let bytes = empty_save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(bytes.0 as usize, text.len());
        assert!(text.contains("\"version\": 2"));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("tracker_state.json")]);
    }

    #[test]
    fn failed_save_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tracker_state.json");
        // A non-empty directory where the file goes makes the rename fail, whoever runs the test.
        fs::create_dir(&path).unwrap();
        fs::write(path.join("previous"), "previous").unwrap();
        assert!(empty_save(&path).is_err());
        assert_eq!(
            fs::read_to_string(path.join("previous")).unwrap(),
            "previous"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("tracker_state.json")],
            "no temp file left"
        );
    }

    #[test]
    fn a_new_file_is_the_owners_only_and_saves_follow_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere.json");
        empty_save(&real).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let link = dir.path().join("tracker_state.json");
        std::os::unix::fs::symlink("elsewhere.json", &link).unwrap();
        let resolved = resolve(&link).unwrap();
        assert_eq!(resolved, dir.path().join("elsewhere.json"));
        empty_save(&resolved).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link stays"
        );
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("not-yet.json", &dangling).unwrap();
        assert_eq!(resolve(&dangling).unwrap(), dir.path().join("not-yet.json"));
    }

    #[test]
    fn a_second_lock_on_one_state_file_is_refused_and_stale_temps_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tracker_state.json");
        let held = lock(&path).unwrap();
        let refused = lock(&path).unwrap_err();
        assert!(
            refused.contains("in use by another tinytracker"),
            "{refused}"
        );
        assert!(
            refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        drop(held);
        let _again = lock(&path).unwrap();
        fs::write(dir.path().join(".tracker_state.json.123.4.tmp"), "half").unwrap();
        fs::write(dir.path().join(".tracker_state.json.tmp"), "older").unwrap();
        fs::write(dir.path().join("other.tmp"), "not ours").unwrap();
        let mut removed = remove_stale_temps(&path).unwrap();
        removed.sort();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert_eq!(removed[0].1, 4);
        assert!(dir.path().join("other.tmp").exists());
    }

    #[test]
    fn pending_registrations_round_trip() {
        let pending = Pending {
            candidates: vec![InfoHash([1; 20]), InfoHash([2; 20])],
            update: InfoUpdate {
                name: Some("amb".into()),
                size: Some(9),
                ..InfoUpdate::default()
            },
            since_unix: 77,
        };
        let mut batch = Some(Vec::new());
        let mut contents = Contents {
            torrents: &mut || batch.take(),
            users: &[],
            revoked: &[],
            pending: std::slice::from_ref(&pending),
            saved_at_unix: 5,
            history: None,
            access: &Access::default(),
        };
        let mut out = Vec::new();
        write_state(&mut out, &mut contents).unwrap();
        let file: StateFile = serde_json::from_slice(&out).unwrap();
        assert_eq!(from_file(file).unwrap().pending, vec![pending]);
    }

    #[test]
    fn an_array_is_no_state_file_and_a_repeated_key_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tracker_state.json");
        fs::write(&path, "\n  []").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains(":2:3: ") && err.contains("expected a JSON object"),
            "{err}"
        );
        let key = "ab".repeat(20);
        fs::write(
            &path,
            format!(r#"{{"version": 2, "torrents": {{"{key}": {{"completions": 1}}, "{key}": {{"completions": 2}}}}}}"#),
        )
        .unwrap();
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(loaded.torrents.len(), 1);
        assert_eq!(loaded.torrents[0].completions, 2, "the last entry is kept");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains(&key));
    }

    #[test]
    fn save_keeps_the_file_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tracker_state.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        empty_save(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn legacy_copy_never_overwrites_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tracker_state.json");
        fs::write(&path, "first").unwrap();
        let one = keep_legacy_copy(&path).unwrap();
        fs::write(&path, "second").unwrap();
        let two = keep_legacy_copy(&path).unwrap();
        assert_eq!(fs::read_to_string(one).unwrap(), "first");
        assert_eq!(fs::read_to_string(&two).unwrap(), "second");
        assert!(two.to_string_lossy().ends_with(".legacy.1"));
    }
}
