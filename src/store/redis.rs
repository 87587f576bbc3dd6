//! The shared store in Redis (`--store redis://…`): the swarms, kept by Lua scripts so that an
//! announce is one atomic round trip, and the rest of the state as records (each a small state
//! file, [`crate::store::state`]'s format) with a log of which changed. Connections are pooled;
//! one that fails is dropped and the next call dials again, so the tracker recovers by itself
//! when Redis comes back.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use redis::{Connection, Value};

use crate::error::ProtocolError;
use crate::protocol::ids::{InfoHash, PeerId};
use crate::protocol::ScrapeCounts;
use crate::protocol::{AnnouncePeer, AnnounceRequest, AnnounceResponse, Event, Family, PeerStyle};
use crate::store::swarm::{Peer, SwarmConfig};

const PRELUDE: &str = include_str!("redis.lua");

/// Waiting for Redis longer than this is a fault: the announce is answered with a failure.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Idle connections kept for reuse (one per worker is what a busy tracker needs).
const POOL: usize = 16;

/// Key names, all under one prefix so one Redis database can be checked, exported or cleared.
pub mod keys {
    pub const USERS: &str = "tt:users";
    pub const PASSKEYS: &str = "tt:passkeys";
    pub const REVOKED: &str = "tt:revoked";
    pub const ACCOUNTING: &str = "tt:acct";
    pub const REGISTERED: &str = "tt:registered";
    pub const PENDING: &str = "tt:pending";
    pub const HISTORY: &str = "tt:history";
    pub const FILES: &str = "tt:files";
    pub const LOG: &str = "tt:log";
    pub const KNOWN: &str = "tt:known";
    pub const TOTALS: &str = "tt:totals";
    pub const LOCK: &str = "tt:lock";
    /// Channel: counts of registered torrents, as the scripts change them.
    pub const COUNTS: &str = "tt:counts";
    /// Channel: a record changed (read the log).
    pub const CHANGES: &str = "tt:changes";
    pub const SAMPLED: &str = "tt:sampled";

    pub fn meta(hex: &str) -> String {
        format!("tt:meta:{hex}")
    }

    pub fn file(hex: &str) -> String {
        format!("tt:file:{hex}")
    }

    /// A key of one swarm (`kind` as in redis.lua: t, z, p, s4, l4, s6, l6, ip).
    pub fn swarm(kind: &str, hash: &[u8; 20]) -> Vec<u8> {
        let mut key = Vec::with_capacity(4 + kind.len() + hash.len());
        key.extend_from_slice(b"tt:");
        key.extend_from_slice(kind.as_bytes());
        key.push(b':');
        key.extend_from_slice(hash);
        key
    }
}

/// How many log entries are kept; an instance that falls further behind reloads everything.
const LOG_LENGTH: usize = 100_000;

/// A request's passkey, for the store to check: whether one is required, and the one given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passkey<'a> {
    pub required: bool,
    pub given: Option<&'a str>,
}

/// A scrape's answer per hash asked: the torrent's own hash and counts, if served.
pub type Scraped = Vec<Option<(InfoHash, ScrapeCounts)>>;

/// Redis could not be reached or did not answer: the call changed nothing that anyone can see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared store (Redis at {at}) is unavailable: {why}")]
pub struct Unavailable {
    pub at: String,
    pub why: String,
}

pub type Result<T> = std::result::Result<T, Unavailable>;

pub struct RedisStore {
    client: redis::Client,
    /// Where it is, without the password (for messages and logs).
    shown: String,
    idle: Mutex<Vec<Connection>>,
    announce: redis::Script,
    scrape: redis::Script,
    sweep: redis::Script,
    register: redis::Script,
    import: redis::Script,
}

/// A pooled connection: back to the pool when dropped, unless a call on it failed.
pub struct Pooled<'a> {
    store: &'a RedisStore,
    connection: Option<Connection>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            let mut idle = self.store.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < POOL {
                idle.push(connection);
            }
        }
    }
}

impl Pooled<'_> {
    /// Runs `call`; on an error the connection is not reused (it may be mid-reply or closed).
    pub fn run<T>(
        &mut self,
        call: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        match call(self) {
            Ok(value) => Ok(value),
            Err(e) => {
                self.connection = None;
                // Redis restarted or went away: the idle connections are as dead as this one.
                if e.is_io_error() || e.is_connection_dropped() {
                    self.store
                        .idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                }
                Err(self.store.unavailable(e))
            }
        }
    }
}

/// The URL as it may be shown: `redis://:secret@host` becomes `redis://***@host`.
pub fn hide_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("***");
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://`, `rediss://`, with a password and database number if
    /// given) and checks Redis is new enough (6.2: the scripts draw peers with SRANDMEMBER and
    /// the store needs streams).
    pub fn connect(url: &str) -> std::result::Result<RedisStore, String> {
        let shown = hide_password(url);
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!(
                "--store {shown:?}: use redis://host:port/db or rediss://host:port/db"
            ));
        }
        let client = redis::Client::open(url).map_err(|e| format!("--store {shown}: {e}"))?;
        let script = |body: &str| redis::Script::new(&format!("{PRELUDE}\n{body}"));
        let store = RedisStore {
            client,
            shown: shown.clone(),
            idle: Mutex::new(Vec::new()),
            announce: script(include_str!("redis_announce.lua")),
            scrape: script(include_str!("redis_scrape.lua")),
            sweep: script(include_str!("redis_sweep.lua")),
            register: script(include_str!("redis_register.lua")),
            import: script(include_str!("redis_import.lua")),
        };
        let mut con = store.connection().map_err(|e| e.to_string())?;
        let info: String = con
            .run(|c| redis::cmd("INFO").arg("server").query(c))
            .map_err(|e| e.to_string())?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("0")
            .trim()
            .to_owned();
        let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
        if parts.as_slice() < [6, 2].as_slice() {
            return Err(format!(
                "Redis at {shown} is version {version}; tinytracker needs 6.2 or newer"
            ));
        }
        drop(con);
        Ok(store)
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> Unavailable {
        Unavailable {
            at: self.shown.clone(),
            why: e.to_string(),
        }
    }

    /// A connection from the pool, or a new one.
    pub fn connection(&self) -> Result<Pooled<'_>> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match pooled {
            Some(c) => c,
            None => self.dial(TIMEOUT)?,
        };
        Ok(Pooled {
            store: self,
            connection: Some(connection),
        })
    }

    /// A new connection of its own (a subscriber keeps one), waiting up to `read_timeout`.
    pub fn dial(&self, read_timeout: Duration) -> Result<Connection> {
        let c = self
            .client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(|e| self.unavailable(e))?;
        c.set_read_timeout(Some(read_timeout))
            .and_then(|()| c.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| self.unavailable(e))?;
        Ok(c)
    }

    /// One announce, answered into `answer`: `Ok(Err(_))` is a refusal for the client.
    pub fn announce(
        &self,
        config: &SwarmConfig,
        passkey: Passkey,
        req: &AnnounceRequest,
        now_unix: u64,
        family: Family,
        answer: &mut AnnounceResponse,
    ) -> Result<std::result::Result<(), ProtocolError>> {
        let want = req
            .numwant
            .map_or(config.default_numwant, |n| {
                n.min(usize::MAX as u64) as usize
            })
            .min(config.max_numwant);
        let event = match req.event {
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
            _ => "",
        };
        let family = match family {
            Family::Any => "*",
            Family::V4 => "4",
            Family::V6 => "6",
        };
        // Answers that show no peer ids (compact ones, the usual) draw their peers with plain
        // SRANDMEMBERs sent in the same round trip as the script, after it: drawing inside the
        // script costs Redis a Lua string per peer. The script draws for the others.
        let ids = matches!(req.style, PeerStyle::Dicts { with_peer_id: true });
        let stopping = req.event == Event::Stopped;
        let draws = if ids || stopping || want == 0 {
            Vec::new()
        } else {
            draw_sets(&req.info_hash, family, req.left == 0)
        };
        let script_want = if draws.is_empty() && !stopping {
            want
        } else {
            0
        };
        let drawn_per_set = want + want / 4 + 2;
        let mut con = self.connection()?;
        let mut replies: Vec<Value> = con.run(|c| {
            let mut pipe = redis::pipe();
            pipe.cmd("EVALSHA")
                .arg(self.announce.get_hash())
                .arg(0)
                .arg(req.info_hash.as_bytes())
                .arg(passkey.given.unwrap_or(""))
                .arg(u8::from(passkey.required))
                .arg(u8::from(config.registered_only))
                .arg(now_unix)
                .arg(now_unix.saturating_sub(config.peer_timeout_secs))
                .arg(peer_address(&req.addr))
                .arg(req.peer_id.as_bytes())
                .arg(req.uploaded)
                .arg(req.downloaded)
                .arg(req.left)
                .arg(event)
                .arg(script_want)
                .arg(family)
                .arg(config.max_peers_per_ip)
                .arg(config.max_torrents)
                .arg(u8::from(ids));
            for set in &draws {
                pipe.cmd("SRANDMEMBER")
                    .arg(set)
                    .arg(-(drawn_per_set as i64));
            }
            match pipe.query::<Vec<Value>>(c) {
                // A Redis that restarted has forgotten the script: load it, send again.
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    self.announce.load(c)?;
                    pipe.query(c)
                }
                other => other,
            }
        })?;
        let reply: Vec<Value> = match replies.first_mut().map(std::mem::take) {
            Some(Value::Array(reply)) => reply,
            _ => Vec::new(),
        };
        let text = |v: &Value| match v {
            Value::BulkString(b) => b.clone(),
            Value::SimpleString(s) => s.clone().into_bytes(),
            _ => Vec::new(),
        };
        let int = |v: Option<&Value>| v.map_or(0, number);
        let status = reply.first().map(text).unwrap_or_default();
        let limit = int(reply.get(1)) as usize;
        let refused = match status.as_slice() {
            b"ok" => None,
            b"invalid" => Some(ProtocolError::InvalidPasskey),
            b"revoked" => Some(ProtocolError::PasskeyRevoked),
            b"unregistered" => Some(ProtocolError::UnregisteredTorrent),
            b"too_many_torrents" => Some(ProtocolError::TooManyTorrents { max: limit }),
            b"too_many_peers_ip" => Some(ProtocolError::TooManyPeersFromAddress { max: limit }),
            other => {
                return Err(self.unavailable(format!(
                    "unexpected answer {:?} from the announce script",
                    String::from_utf8_lossy(other)
                )))
            }
        };
        if let Some(refusal) = refused {
            return Ok(Err(refusal));
        }
        answer.complete = int(reply.get(1)) as u32;
        answer.incomplete = int(reply.get(2)) as u32;
        answer.downloaded = int(reply.get(3));
        answer.peers.clear();
        if !draws.is_empty() {
            let own = reply.get(6).map(text).unwrap_or_default();
            let mut drawn: Vec<Value> = replies.split_off(1);
            if own.as_slice() != req.info_hash.as_bytes() && own.len() == 20 {
                // The truncated v2 hash of a hybrid: its peers are under the v1 hash.
                let canonical = InfoHash(<[u8; 20]>::try_from(own.as_slice()).unwrap_or_default());
                let sets = draw_sets(&canonical, family, req.left == 0);
                drawn = con.run(|c| {
                    let mut pipe = redis::pipe();
                    for set in &sets {
                        pipe.cmd("SRANDMEMBER")
                            .arg(set)
                            .arg(-(drawn_per_set as i64));
                    }
                    pipe.query(c)
                })?;
            }
            let shares = (answer.complete as usize, answer.incomplete as usize);
            pick_peers(
                &drawn,
                &draws,
                shares,
                &peer_address(&req.addr),
                want,
                answer,
            );
        }
        for (at, width) in [(4, 4), (5, 16)] {
            let packed = reply.get(at).map(text).unwrap_or_default();
            let id_width = if ids { 20 } else { 0 };
            for chunk in packed.chunks_exact(width + 2 + id_width) {
                let ip = if width == 4 {
                    IpAddr::from(<[u8; 4]>::try_from(&chunk[..4]).unwrap_or_default())
                } else {
                    IpAddr::from(<[u8; 16]>::try_from(&chunk[..16]).unwrap_or_default())
                };
                let port = u16::from_be_bytes([chunk[width], chunk[width + 1]]);
                let id = <[u8; 20]>::try_from(&chunk[width + 2..]).unwrap_or([0; 20]);
                answer.peers.push(AnnouncePeer {
                    peer_id: PeerId(id),
                    addr: SocketAddr::new(ip, port),
                });
            }
        }
        Ok(Ok(()))
    }

    /// Counts of each hash, in the order asked: `None` for one not served (unknown, or not
    /// registered on a tracker of registered torrents only); `Some` names the torrent's own hash.
    /// `passkey`: checked when `require_passkey`.
    pub fn scrape(
        &self,
        hashes: &[InfoHash],
        registered_only: bool,
        passkey: Passkey,
    ) -> Result<std::result::Result<Scraped, ProtocolError>> {
        let mut con = self.connection()?;
        let reply: Vec<Value> = con.run(|c| {
            let mut call = self.scrape.arg(u8::from(registered_only));
            call.arg(passkey.given.unwrap_or(""))
                .arg(u8::from(passkey.required));
            for hash in hashes {
                call.arg(hash.as_bytes());
            }
            call.invoke(c)
        })?;
        match reply.first() {
            Some(Value::BulkString(s)) if s == b"ok" => {}
            Some(Value::BulkString(s)) if s == b"revoked" => {
                return Ok(Err(ProtocolError::PasskeyRevoked))
            }
            _ => return Ok(Err(ProtocolError::InvalidPasskey)),
        }
        Ok(Ok(reply[1..]
            .chunks_exact(4)
            .map(|row| {
                let Value::BulkString(own) = &row[0] else {
                    return None;
                };
                let own = InfoHash(<[u8; 20]>::try_from(own.as_slice()).ok()?);
                Some((
                    own,
                    ScrapeCounts {
                        complete: number(&row[1]) as u32,
                        incomplete: number(&row[2]) as u32,
                        downloaded: number(&row[3]),
                    },
                ))
            })
            .collect()))
    }

    /// Expires peers not seen since `cutoff` in at most `limit` swarms due for it. Returns
    /// (swarms looked at, peers removed).
    pub fn sweep(&self, cutoff: u64, limit: usize) -> Result<(usize, usize)> {
        let mut con = self.connection()?;
        let (swarms, peers): (usize, usize) =
            con.run(|c| self.sweep.arg(cutoff).arg(limit).invoke(c))?;
        Ok((swarms, peers))
    }

    /// (torrents, seeders, leechers) of the whole tracker.
    pub fn totals(&self) -> Result<(usize, usize, usize)> {
        let mut con = self.connection()?;
        let (torrents, seeders, leechers): (usize, Option<i64>, Option<i64>) = con.run(|c| {
            redis::pipe()
                .scard(keys::KNOWN)
                .hget(keys::TOTALS, "s")
                .hget(keys::TOTALS, "l")
                .query(c)
        })?;
        let positive = |n: Option<i64>| n.unwrap_or(0).max(0) as usize;
        Ok((torrents, positive(seeders), positive(leechers)))
    }

    /// Counts of many torrents in one round trip (the scrape script, registered or not).
    pub fn counts(&self, hashes: &[InfoHash]) -> Result<Vec<ScrapeCounts>> {
        let mut out = Vec::with_capacity(hashes.len());
        for batch in hashes.chunks(1000) {
            let found = self
                .scrape(batch, false, Passkey::default())?
                .unwrap_or_default();
            out.extend(
                found
                    .into_iter()
                    .map(|f| f.map(|(_, c)| c).unwrap_or_default()),
            );
        }
        Ok(out)
    }

    /// Writes the record of `hash` (`record`: a state file holding it, `None`: removed with its
    /// peers) and logs it, in one script: no instance sees one without the other.
    pub fn write_torrent(
        &self,
        con: &mut Pooled,
        hash: &InfoHash,
        alias: Option<&InfoHash>,
        record: Option<&str>,
        by: &str,
    ) -> Result<()> {
        let alias = alias.map_or(&[][..], |a| a.as_bytes());
        con.run(|c| {
            self.register
                .arg(hash.as_bytes())
                .arg(alias)
                .arg(if record.is_some() { "put" } else { "drop" })
                .arg(hash.to_hex())
                .arg(record.unwrap_or(""))
                .arg(by)
                .invoke::<i64>(c)
        })?;
        Ok(())
    }

    /// Loads the import's scripts, so a pipeline can call them by hash (`EVALSHA`).
    pub fn load_import_scripts(&self, con: &mut Pooled) -> Result<()> {
        con.run(|c| {
            self.import.load(c)?;
            self.register.load(c)
        })?;
        Ok(())
    }

    /// Adds to `pipe` the putting in place of a saved torrent's peers (each with the name of its
    /// user, '' for none): [`RedisStore::load_import_scripts`] first.
    pub fn push_import_peers(
        &self,
        pipe: &mut redis::Pipeline,
        hash: &InfoHash,
        registered: bool,
        completions: u64,
        peers: &[(&Peer, &str)],
    ) {
        let call = pipe
            .cmd("EVALSHA")
            .arg(self.import.get_hash())
            .arg(0)
            .arg(hash.as_bytes())
            .arg(u8::from(registered))
            .arg(completions);
        for (peer, user) in peers {
            let mut key = peer_address(&peer.addr);
            key.extend_from_slice(user.as_bytes());
            call.arg(key)
                .arg(peer_value(peer))
                .arg(peer.last_seen_unix)
                .arg(u8::from(peer.is_seeder()));
        }
        call.ignore();
    }

    /// Adds to `pipe` what [`RedisStore::write_torrent`] does for a registered torrent.
    pub fn push_write_torrent(
        &self,
        pipe: &mut redis::Pipeline,
        hash: &InfoHash,
        alias: Option<&InfoHash>,
        record: &str,
        by: &str,
    ) {
        pipe.cmd("EVALSHA")
            .arg(self.register.get_hash())
            .arg(0)
            .arg(hash.as_bytes())
            .arg(alias.map_or(&[][..], |a| a.as_bytes()))
            .arg("put")
            .arg(hash.to_hex())
            .arg(record)
            .arg(by)
            .ignore();
    }

    /// The live peers of `hash`, each with the name of its user ('' for none).
    pub fn peers(&self, hash: &InfoHash, cutoff: u64) -> Result<Vec<(Peer, String)>> {
        let mut con = self.connection()?;
        type Pairs<T> = Vec<(Vec<u8>, T)>;
        let (values, seen): (Pairs<Vec<u8>>, Pairs<f64>) = con.run(|c| {
            redis::pipe()
                .hgetall(keys::swarm("p", hash.as_bytes()))
                .cmd("ZRANGE")
                .arg(keys::swarm("z", hash.as_bytes()))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(c)
        })?;
        let seen: std::collections::HashMap<Vec<u8>, f64> = seen.into_iter().collect();
        let mut out = Vec::with_capacity(values.len());
        for (key, value) in values {
            let last_seen = seen.get(&key).copied().unwrap_or(0.0) as u64;
            if last_seen <= cutoff {
                continue;
            }
            if let Some(found) = read_peer(&key, &value, last_seen) {
                out.push(found);
            }
        }
        Ok(out)
    }

    /// Every hash the swarms know (registered or announced).
    pub fn known(&self) -> Result<Vec<InfoHash>> {
        let mut con = self.connection()?;
        let raw: Vec<Vec<u8>> = con.run(|c| redis::cmd("SMEMBERS").arg(keys::KNOWN).query(c))?;
        Ok(raw
            .iter()
            .filter_map(|h| <[u8; 20]>::try_from(h.as_slice()).ok().map(InfoHash))
            .collect())
    }

    /// Whether this database holds no tinytracker state (none of the keys every tracker has
    /// once it holds anything).
    pub fn is_empty(&self) -> Result<bool> {
        let mut con = self.connection()?;
        let found: usize = con.run(|c| {
            redis::cmd("EXISTS")
                .arg(&[
                    keys::USERS,
                    keys::KNOWN,
                    keys::REGISTERED,
                    keys::LOG,
                    keys::ACCOUNTING,
                ])
                .query(c)
        })?;
        Ok(found == 0)
    }

    /// Deletes every tinytracker key of this database (an import with --replace), a SCAN batch
    /// at a time. Returns how many went.
    pub fn clear(&self) -> Result<usize> {
        let mut con = self.connection()?;
        let (mut cursor, mut removed) = (0u64, 0);
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = con.run(|c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("tt:*")
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)
            })?;
            if !batch.is_empty() {
                removed += con.run(|c| redis::cmd("DEL").arg(&batch).query::<usize>(c))?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// Appends to the change log (`kind`: users, torrent, pending, history; `key`: which; `by`:
    /// the instance) as part of `pipe`, and tells every instance to read it.
    pub fn log(pipe: &mut redis::Pipeline, kind: &str, key: &str, by: &str) {
        pipe.cmd("XADD")
            .arg(keys::LOG)
            .arg("MAXLEN")
            .arg("~")
            .arg(LOG_LENGTH)
            .arg("*")
            .arg(kind)
            .arg(key)
            .arg("by")
            .arg(by)
            .ignore();
        pipe.cmd("PUBLISH").arg(keys::CHANGES).arg(kind).ignore();
    }

    /// The newest log entry's id ("0-0" when there is none).
    pub fn log_head(&self) -> Result<String> {
        let mut con = self.connection()?;
        let newest: Vec<(String, Vec<(String, String)>)> = con.run(|c| {
            redis::cmd("XREVRANGE")
                .arg(keys::LOG)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
        Ok(newest
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id))
    }

    /// Log entries after `after`; `None` when `after` was trimmed away (the reader fell too far
    /// behind and must reload everything).
    pub fn log_since(&self, after: &str) -> Result<Option<Vec<LogEntry>>> {
        let mut con = self.connection()?;
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let (entries, oldest): (Entries, Entries) = con.run(|c| {
            redis::pipe()
                .cmd("XRANGE")
                .arg(keys::LOG)
                .arg(format!("({after}"))
                .arg("+")
                .cmd("XRANGE")
                .arg(keys::LOG)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
        if let Some((first, _)) = oldest.first() {
            if after != "0-0" && stream_id(first) > stream_id(after) {
                return Ok(None);
            }
        }
        Ok(Some(
            entries
                .into_iter()
                .filter_map(|(id, fields)| {
                    let by = fields
                        .iter()
                        .find(|(k, _)| k == "by")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let (kind, key) = fields.into_iter().find(|(k, _)| k != "by")?;
                    Some(LogEntry { id, kind, key, by })
                })
                .collect(),
        ))
    }

    /// Takes the write lock (one writer of records at a time, across instances) for at most
    /// `ttl`; `token` proves whose it is. Waits up to `wait` for it.
    pub fn lock(&self, token: &str, ttl: Duration, wait: Duration) -> Result<bool> {
        let started = std::time::Instant::now();
        loop {
            let mut con = self.connection()?;
            let taken: Option<String> = con.run(|c| {
                redis::cmd("SET")
                    .arg(keys::LOCK)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .query(c)
            })?;
            if taken.is_some() {
                return Ok(true);
            }
            if started.elapsed() >= wait {
                return Ok(false);
            }
            drop(con);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn unlock(&self, token: &str) -> Result<()> {
        let mut con = self.connection()?;
        con.run(|c| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )
            .key(keys::LOCK)
            .arg(token)
            .invoke::<i64>(c)
        })?;
        Ok(())
    }
}

/// The sets an announce draws peers from: seeders (unless the announcing peer is one) and
/// leechers, of the address families `family` allows.
fn draw_sets(hash: &InfoHash, family: &str, seeder: bool) -> Vec<Vec<u8>> {
    // (seeders, leechers) of each family.
    let families: &[(&str, &str)] = match family {
        "4" => &[("s4", "l4")],
        "6" => &[("s6", "l6")],
        _ => &[("s4", "l4"), ("s6", "l6")],
    };
    let mut sets = Vec::with_capacity(4);
    for (seeders, leechers) in families {
        if !seeder {
            sets.push(keys::swarm(seeders, hash.as_bytes()));
        }
        sets.push(keys::swarm(leechers, hash.as_bytes()));
    }
    sets
}

/// Up to `want` distinct peers from the draws (with repetition) of `sets` (a reply each), not
/// the announcing peer's address: seeders and leechers in the proportion of `shares` (seeders,
/// leechers), the other class filling in when one runs short. Reads the keys where they are.
fn pick_peers(
    drawn: &[Value],
    sets: &[Vec<u8>],
    shares: (usize, usize),
    own: &[u8],
    want: usize,
    answer: &mut AnnounceResponse,
) {
    let mut seen: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    let (mut seeders, mut leechers): (Vec<&[u8]>, Vec<&[u8]>) = (Vec::new(), Vec::new());
    for (reply, set) in drawn.iter().zip(sets) {
        let Value::Array(keys) = reply else {
            continue;
        };
        let is_seeders = set.get(3) == Some(&b's');
        for key in keys {
            let Value::BulkString(key) = key else {
                continue;
            };
            let width = if key.first() == Some(&b'4') { 7 } else { 19 };
            let Some(address) = key.get(..width) else {
                continue;
            };
            if address == own || !seen.insert(address) {
                continue;
            }
            if is_seeders {
                seeders.push(address);
            } else {
                leechers.push(address);
            }
        }
    }
    let (s, l) = shares;
    let mut from_seeders = if s + l == 0 {
        0
    } else {
        (want * s).div_ceil(s + l)
    };
    from_seeders = from_seeders.min(seeders.len());
    let from_leechers = (want - from_seeders).min(leechers.len());
    from_seeders = (want - from_leechers).min(seeders.len());
    for address in seeders
        .iter()
        .take(from_seeders)
        .chain(leechers.iter().take(from_leechers))
    {
        if let Some(addr) = compact_address(address) {
            answer.peers.push(AnnouncePeer {
                peer_id: PeerId([0; 20]),
                addr,
            });
        }
    }
}

/// The address of a peer key's first bytes ('4' or '6', then the compact address).
fn compact_address(bytes: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = match bytes.first()? {
        b'4' => (
            IpAddr::from(<[u8; 4]>::try_from(bytes.get(1..5)?).ok()?),
            bytes.get(5..7)?,
        ),
        b'6' => (
            IpAddr::from(<[u8; 16]>::try_from(bytes.get(1..17)?).ok()?),
            bytes.get(17..19)?,
        ),
        _ => return None,
    };
    Some(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
}

/// A change of a record: which (`kind`, `key`), when (`id`) and by which instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub id: String,
    pub kind: String,
    pub key: String,
    pub by: String,
}

/// Orders stream ids ("ms-seq").
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn number(v: &Value) -> u64 {
    match v {
        Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// '4' or '6', then the address as a compact peer list writes it.
pub fn peer_address(addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(b'4');
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(b'6');
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// A peer as the announce script stores it: its id, then uploaded, downloaded and left as
/// big-endian doubles (Lua's numbers), then whether its completion was counted.
fn peer_value(peer: &Peer) -> Vec<u8> {
    let mut out = Vec::with_capacity(45);
    out.extend_from_slice(peer.peer_id.as_bytes());
    for n in [peer.uploaded, peer.downloaded, peer.left] {
        out.extend_from_slice(&(n as f64).to_be_bytes());
    }
    out.push(u8::from(peer.completed));
    out
}

/// The peer a stored key and value describe, with its user's name.
fn read_peer(key: &[u8], value: &[u8], last_seen: u64) -> Option<(Peer, String)> {
    let addr = compact_address(key)?;
    let width = if addr.is_ipv4() { 7 } else { 19 };
    let user = String::from_utf8_lossy(key.get(width..)?).into_owned();
    let id = <[u8; 20]>::try_from(value.get(..20)?).ok()?;
    let double = |at: usize| -> Option<u64> {
        Some(f64::from_be_bytes(value.get(at..at + 8)?.try_into().ok()?) as u64)
    };
    let mut peer = Peer::new(addr, PeerId(id), double(36)?, last_seen);
    peer.uploaded = double(20)?;
    peer.downloaded = double(28)?;
    peer.completed = *value.get(44)? != 0;
    Some((peer, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_reads_back_as_the_import_wrote_it() {
        let addr: SocketAddr = "[2001:db8::7]:6881".parse().unwrap();
        let mut peer = Peer::new(addr, PeerId([7; 20]), 123_456_789, 1_700_000_000);
        peer.uploaded = 5 << 40;
        peer.downloaded = 42;
        peer.completed = true;
        let mut key = peer_address(&addr);
        key.extend_from_slice(b"alice");
        let (back, user) = read_peer(&key, &peer_value(&peer), 1_700_000_000).unwrap();
        assert_eq!(back, peer);
        assert_eq!(user, "alice");
        let v4: SocketAddr = "10.0.0.1:51413".parse().unwrap();
        assert_eq!(peer_address(&v4), b"4\x0a\x00\x00\x01\xc8\xd5");
    }

    #[test]
    fn drawn_peers_are_distinct_mixed_by_class_and_never_the_announcer() {
        let key = |port: u16| {
            let mut key = peer_address(&SocketAddr::from(([10, 0, 0, 1], port)));
            key.extend_from_slice(b"bob");
            key
        };
        let hash = InfoHash([1; 20]);
        let sets = draw_sets(&hash, "4", false);
        assert_eq!(sets.len(), 2, "seeders and leechers of IPv4");
        // Seeders 1..=10 (drawn with repeats), leechers 100..=129 and the announcer (100).
        let reply =
            |keys: Vec<Vec<u8>>| Value::Array(keys.into_iter().map(Value::BulkString).collect());
        let seeders = reply((1..=10).chain(1..=5).map(key).collect());
        let leechers = reply((100..130).map(key).collect());
        let mut answer = AnnounceResponse::default();
        let own = peer_address(&SocketAddr::from(([10, 0, 0, 1], 100)));
        pick_peers(&[seeders, leechers], &sets, (10, 30), &own, 20, &mut answer);
        let ports: Vec<u16> = answer.peers.iter().map(|p| p.addr.port()).collect();
        assert_eq!(ports.len(), 20);
        assert_eq!(
            ports.iter().filter(|p| **p <= 10).count(),
            5,
            "a quarter seeders: {ports:?}"
        );
        assert!(!ports.contains(&100), "not the announcer");
        let mut distinct = ports.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 20);
        // A seeder announcing draws leechers only.
        assert_eq!(draw_sets(&hash, "*", true).len(), 2);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            hide_password("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(hide_password("redis://127.0.0.1/1"), "redis://127.0.0.1/1");
    }

    #[test]
    fn stream_ids_order_by_time_then_sequence() {
        assert!(stream_id("1700-2") > stream_id("1700-1"));
        assert!(stream_id("1701-0") > stream_id("1700-9"));
    }
}
