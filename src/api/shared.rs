//! Serving from a shared store (`--store redis://…`), so several instances are one tracker.
//!
//! Announces and scrapes go to Redis (one script call each, [`RedisStore::announce`]). Everything
//! else is answered from this instance's copy of the users and the index, as with the JSON file,
//! kept current through the store's change log:
//! - before a request that reads them, the log is read and what changed is loaded again, so a
//!   change made through another instance is seen at once;
//! - a request that changes them runs under the store's write lock (one writer at a time, across
//!   instances): the log is read, the handler runs on the copy, and the changed records are
//!   written with their log entry in one transaction;
//! - a subscriber thread loads changes as they are announced, and takes the counts the
//!   announce scripts publish (live events, peers over time).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use log::{debug, info, warn};

use crate::protocol::ids::InfoHash;
use crate::protocol::ScrapeCounts;
use crate::store::info::truncated;
use crate::store::redis::{keys, LogEntry, RedisStore, Result, Unavailable};
use crate::store::state::{self, Contents, Loaded, StateFile};
use crate::store::swarm::Swarm;
use crate::store::torrent_files::TorrentFiles;
use crate::store::users::{Totals, Users};

/// How long a writer may hold the write lock (a killed instance's lock lapses after this).
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a write waits for another instance's.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// What a request changes, so the records it touched can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    Users,
    /// The torrent its answer names (`info_hash`), and pending registrations.
    Index,
}

pub struct Shared {
    pub store: Arc<RedisStore>,
    /// The id of the last log entry this copy holds ("" after a failed write: reload all).
    applied: Mutex<String>,
    /// This process, in log entries and the write lock.
    token: String,
    /// Write locks taken so far (each has its own token).
    locks: std::sync::atomic::AtomicU64,
}

/// A write in progress: the lock is held and the copy is current until [`Write::commit`].
pub struct Write<'a> {
    shared: &'a Shared,
    applied: MutexGuard<'a, String>,
    lock: String,
}

impl Shared {
    pub fn new(store: Arc<RedisStore>) -> Shared {
        Shared {
            store,
            applied: Mutex::new(String::new()),
            token: crate::store::users::secret(16),
            locks: Default::default(),
        }
    }

    /// Connects to the store at `url` (see [`RedisStore::connect`]); `rediss://` goes through
    /// rustls with the provider `--tls-bind` uses.
    pub fn connect(url: &str) -> std::result::Result<Shared, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Shared::new(Arc::new(RedisStore::connect(url)?)))
    }

    fn applied(&self) -> MutexGuard<'_, String> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads everything into the copy (startup, and after falling behind the log). Returns
    /// (registered torrents, users).
    pub fn load_all(&self, swarm: &Swarm, users: &Users, now: u64) -> Result<(usize, usize)> {
        let mut applied = self.applied();
        self.reload(&mut applied, swarm, users, now)
    }

    fn reload(
        &self,
        applied: &mut String,
        swarm: &Swarm,
        users: &Users,
        now: u64,
    ) -> Result<(usize, usize)> {
        // The log's head first: what changes while this loads is read again after.
        let head = self.store.log_head()?;
        let user_count = self.load_users(users)?;
        let mut con = self.store.connection()?;
        let hexes: Vec<String> =
            con.run(|c| redis::cmd("SMEMBERS").arg(keys::REGISTERED).query(c))?;
        let wanted: HashSet<InfoHash> = hexes
            .iter()
            .filter_map(|h| InfoHash::from_hex(h).ok())
            .collect();
        for gone in swarm.registered() {
            if !wanted.contains(&gone) {
                swarm.unregister(&gone);
            }
        }
        for batch in hexes.chunks(500) {
            let names: Vec<String> = batch.iter().map(|h| keys::meta(h)).collect();
            let records: Vec<Option<String>> =
                con.run(|c| redis::cmd("MGET").arg(&names).query(c))?;
            for record in records.into_iter().flatten() {
                restore(swarm, &record, now);
            }
        }
        load_extras(&mut con, swarm)?;
        drop(con);
        let registered: Vec<InfoHash> = wanted.into_iter().collect();
        self.refresh_counts(swarm, &registered)?;
        *applied = head;
        Ok((registered.len(), user_count))
    }

    /// The counts of `hashes` from the swarms into the copy.
    pub fn refresh_counts(&self, swarm: &Swarm, hashes: &[InfoHash]) -> Result<()> {
        let counts = self.store.counts(hashes)?;
        for (hash, counts) in hashes.iter().zip(counts) {
            swarm.set_shared_counts(hash, counts);
        }
        Ok(())
    }

    /// The users record, with each user's accounting as the announces left it.
    fn load_users(&self, users: &Users) -> Result<usize> {
        let mut con = self.store.connection()?;
        let (record, accounting): (Option<String>, Vec<(String, String)>) = con.run(|c| {
            redis::pipe()
                .get(keys::USERS)
                .hgetall(keys::ACCOUNTING)
                .query(c)
        })?;
        let loaded = record
            .as_deref()
            .and_then(|r| parse(r, "users"))
            .unwrap_or_default();
        let count = loaded.users.len();
        users.replace(loaded.users, loaded.revoked, loaded.access);
        for (name, totals) in totals_by_name(accounting) {
            users.set_totals(&name, totals);
        }
        Ok(count)
    }

    /// Each user's accounting totals as the announces of every instance left them, into the copy.
    pub fn refresh_accounting(&self, users: &Users) -> Result<()> {
        let mut con = self.store.connection()?;
        let fields: Vec<(String, String)> =
            con.run(|c| redis::cmd("HGETALL").arg(keys::ACCOUNTING).query(c))?;
        for (name, totals) in totals_by_name(fields) {
            users.set_totals(&name, totals);
        }
        Ok(())
    }

    /// Brings the copy up to date with the log: what another instance changed is loaded.
    /// Returns the entries applied.
    pub fn sync(&self, swarm: &Swarm, users: &Users, now: u64) -> Result<Vec<LogEntry>> {
        let mut applied = self.applied();
        self.sync_locked(&mut applied, swarm, users, now)
    }

    fn sync_locked(
        &self,
        applied: &mut String,
        swarm: &Swarm,
        users: &Users,
        now: u64,
    ) -> Result<Vec<LogEntry>> {
        let entries = match applied.as_str() {
            "" => None,
            after => self.store.log_since(after)?,
        };
        let Some(entries) = entries else {
            info!("reloading the shared state (this copy fell behind the change log)");
            self.reload(applied, swarm, users, now)?;
            return Ok(Vec::new());
        };
        let Some(last) = entries.last() else {
            return Ok(entries);
        };
        let last = last.id.clone();
        let mut torrents = Vec::new();
        let (mut reload_users, mut pending, mut history) = (false, false, false);
        for entry in &entries {
            match entry.kind.as_str() {
                "users" => reload_users = true,
                "torrent" => torrents.push(entry.key.clone()),
                "pending" => pending = true,
                "history" => history = true,
                other => debug!("change log: unknown entry {other:?}"),
            }
        }
        if reload_users {
            self.load_users(users)?;
        }
        torrents.sort();
        torrents.dedup();
        let mut con = self.store.connection()?;
        let mut changed = Vec::new();
        for hex in &torrents {
            let Ok(hash) = InfoHash::from_hex(hex) else {
                continue;
            };
            let record: Option<String> =
                con.run(|c| redis::cmd("GET").arg(keys::meta(hex)).query(c))?;
            match record {
                Some(record) => {
                    restore(swarm, &record, now);
                    changed.push(hash);
                }
                None => {
                    swarm.unregister(&hash);
                }
            }
        }
        if pending || history {
            load_extras(&mut con, swarm)?;
        }
        drop(con);
        self.refresh_counts(swarm, &changed)?;
        *applied = last;
        Ok(entries)
    }

    /// Starts a write: takes the store's write lock and brings the copy up to date.
    pub fn begin(&self, swarm: &Swarm, users: &Users, now: u64) -> Result<Write<'_>> {
        let mut applied = self.applied();
        let lock = self.lock_token();
        if !self.store.lock(&lock, LOCK_TTL, LOCK_WAIT)? {
            return Err(Unavailable {
                at: self.store.shown().to_owned(),
                why: format!(
                    "another instance held the write lock for more than {} s",
                    LOCK_WAIT.as_secs()
                ),
            });
        }
        if let Err(e) = self.sync_locked(&mut applied, swarm, users, now) {
            let _ = self.store.unlock(&lock);
            return Err(e);
        }
        Ok(Write {
            shared: self,
            applied,
            lock,
        })
    }

    /// Writes the users record (users, revoked passkeys, invites, sessions) and the passkey
    /// tables the announce script reads, with a log entry, in one transaction.
    fn write_users(&self, users: &Users, now: u64) -> Result<()> {
        let (list, revoked) = users.snapshot();
        let access = users.access();
        let record = record_of(&mut Contents {
            torrents: &mut || None,
            users: &list,
            revoked: &revoked,
            pending: &[],
            saved_at_unix: now,
            history: None,
            access: &access,
        });
        let mut valid: Vec<(String, String)> = Vec::new();
        let mut refused: Vec<(String, String)> = revoked
            .iter()
            .map(|(k, n)| (k.to_string(), n.clone()))
            .collect();
        for user in &list {
            let pair = (user.passkey.to_string(), user.name.clone());
            if user.disabled {
                refused.push(pair);
            } else {
                valid.push(pair);
            }
        }
        let names: HashSet<&str> = list.iter().map(|u| u.name.as_str()).collect();
        let mut con = self.store.connection()?;
        let fields: Vec<String> =
            con.run(|c| redis::cmd("HKEYS").arg(keys::ACCOUNTING).query(c))?;
        let stale: Vec<&String> = fields
            .iter()
            .filter(|f| f.rsplit_once(':').is_some_and(|(n, _)| !names.contains(n)))
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic().set(keys::USERS, &record).ignore();
        pipe.del(keys::PASSKEYS)
            .ignore()
            .del(keys::REVOKED)
            .ignore();
        if !valid.is_empty() {
            pipe.hset_multiple(keys::PASSKEYS, &valid).ignore();
        }
        if !refused.is_empty() {
            pipe.hset_multiple(keys::REVOKED, &refused).ignore();
        }
        if !stale.is_empty() {
            pipe.hdel(keys::ACCOUNTING, stale).ignore();
        }
        RedisStore::log(&mut pipe, "users", "", &self.token);
        con.run(|c| pipe.query::<()>(c))
    }

    /// Writes the record of the torrent `hash` names as the copy holds it (removed if it is no
    /// longer registered here).
    fn write_torrent(&self, swarm: &Swarm, hash: &InfoHash, now: u64) -> Result<()> {
        let snapshot = swarm.snapshot_one(hash).filter(|t| t.registered);
        let own = snapshot.as_ref().map_or(*hash, |t| t.info_hash);
        let alias = snapshot
            .as_ref()
            .and_then(|t| t.info.v2.as_ref().map(truncated));
        let record = snapshot.map(|t| torrent_record(t, now));
        let mut con = self.store.connection()?;
        self.store.write_torrent(
            &mut con,
            &own,
            alias.as_ref(),
            record.as_deref(),
            &self.token,
        )
    }

    /// Writes the pending registrations and the tracker's peers over time.
    fn write_index_extras(&self, swarm: &Swarm, now: u64, history: bool) -> Result<()> {
        let pending = swarm.pending();
        let record = record_of(&mut Contents {
            torrents: &mut || None,
            users: &[],
            revoked: &[],
            pending: &pending,
            saved_at_unix: now,
            history: history.then(|| swarm.totals_history()),
            access: &Default::default(),
        });
        let mut con = self.store.connection()?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        if history {
            pipe.set(keys::HISTORY, &record).ignore();
            RedisStore::log(&mut pipe, "history", "", &self.token);
        } else {
            pipe.set(keys::PENDING, &record).ignore();
            RedisStore::log(&mut pipe, "pending", "", &self.token);
        }
        con.run(|c| pipe.query::<()>(c))
    }

    /// Takes this 15-minute slot's peers-over-time sample if no instance has: the one that
    /// claims the slot samples (the counts are the shared ones) and writes the histories.
    pub fn sample_history(&self, swarm: &Swarm, slot: u64, now: u64) -> Result<bool> {
        let mut con = self.store.connection()?;
        let claimed: Option<String> = con.run(|c| {
            redis::cmd("SET")
                .arg(format!("{}:{slot}", keys::SAMPLED))
                .arg(&self.token)
                .arg("NX")
                .arg("EX")
                .arg(7 * 24 * 3600)
                .query(c)
        })?;
        drop(con);
        if claimed.is_none() {
            return Ok(false);
        }
        let _lock = self.begin_quietly();
        let (_, seeders, leechers) = self.store.totals()?;
        swarm.sample_history_totals(now, Some((seeders as u64, leechers as u64)));
        // Every torrent with a history: its record again, pipelined.
        let mut con = self.store.connection()?;
        self.store.load_import_scripts(&mut con)?;
        let mut pipe = redis::pipe();
        let mut queued = 0;
        for hash in swarm.registered() {
            let Some(torrent) = swarm.snapshot_one(&hash).filter(|t| t.history.is_some()) else {
                continue;
            };
            let alias = torrent.info.v2.as_ref().map(truncated);
            let record = torrent_record(torrent, now);
            self.store
                .push_write_torrent(&mut pipe, &hash, alias.as_ref(), &record, &self.token);
            queued += 1;
            if queued == 1000 {
                con.run(|c| pipe.query::<()>(c))?;
                (pipe, queued) = (redis::pipe(), 0);
            }
        }
        if queued > 0 {
            con.run(|c| pipe.query::<()>(c))?;
        }
        drop(con);
        self.write_index_extras(swarm, now, true)?;
        Ok(true)
    }

    /// The write lock for a background write (released when dropped); none if it cannot be had.
    fn begin_quietly(&self) -> Option<LockGuard<'_>> {
        let lock = self.lock_token();
        match self.store.lock(&lock, LOCK_TTL, LOCK_WAIT) {
            Ok(true) => Some(LockGuard(self, lock)),
            _ => None,
        }
    }

    fn lock_token(&self) -> String {
        let n = self
            .locks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", self.token)
    }

    /// Whether a log entry was written by this process.
    pub fn is_own(&self, entry: &LogEntry) -> bool {
        entry.by == self.token
    }
}

/// What an import or export moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub torrents: usize,
    pub peers: usize,
    pub users: usize,
    pub files: usize,
}

impl Shared {
    /// Writes a loaded state file (and the stored `.torrent` files in `files`) into the store,
    /// which must hold no tracker yet. Peers keep their last-seen times, users their totals.
    pub fn import(&self, loaded: Loaded, files: &TorrentFiles, now: u64) -> Result<Moved> {
        let swarm = Swarm::new(crate::store::swarm::SwarmConfig::default());
        let users = Users::default();
        let names: std::collections::HashMap<u32, String> = loaded
            .users
            .iter()
            .map(|u| (u.id, u.name.clone()))
            .collect();
        let mut moved = Moved {
            users: loaded.users.len(),
            ..Moved::default()
        };
        users.restore(loaded.users, loaded.revoked);
        users.restore_access(loaded.access);
        swarm.replace_pending(loaded.pending);
        if let Some(history) = loaded.history {
            swarm.restore_totals_history(history);
        }
        self.write_users(&users, now)?;
        let accounting: Vec<(String, String)> = users
            .list()
            .iter()
            .flat_map(|u| {
                let mut fields = vec![
                    (format!("{}:u", u.name), u.uploaded.to_string()),
                    (format!("{}:d", u.name), u.downloaded.to_string()),
                    (format!("{}:c", u.name), u.completed.to_string()),
                ];
                if let Some(seen) = u.last_seen_unix {
                    fields.push((format!("{}:s", u.name), seen.to_string()));
                }
                fields
            })
            .collect();
        let mut con = self.store.connection()?;
        if !accounting.is_empty() {
            con.run(|c| {
                redis::cmd("HSET")
                    .arg(keys::ACCOUNTING)
                    .arg(&accounting)
                    .query::<()>(c)
            })?;
        }
        // Pipelined: a call per torrent (and per 2,000 of its peers), sent a few thousand at a time.
        self.store.load_import_scripts(&mut con)?;
        let mut pipe = redis::pipe();
        let mut queued = 0;
        for torrent in loaded.torrents {
            let hash = torrent.info_hash;
            moved.torrents += 1;
            moved.peers += torrent.peers.len();
            let peers: Vec<(&crate::store::swarm::Peer, &str)> = torrent
                .peers
                .iter()
                .map(|p| (p, names.get(&p.user).map_or("", String::as_str)))
                .collect();
            let (registered, completions) = (torrent.registered, torrent.completions);
            for batch in peers.chunks(2000) {
                self.store
                    .push_import_peers(&mut pipe, &hash, registered, completions, batch);
                queued += 1 + batch.len();
            }
            if peers.is_empty() {
                self.store
                    .push_import_peers(&mut pipe, &hash, registered, completions, &[]);
                queued += 1;
            }
            drop(peers);
            if registered {
                let alias = torrent.info.v2.as_ref().map(truncated);
                let record = torrent_record(torrent, now);
                self.store.push_write_torrent(
                    &mut pipe,
                    &hash,
                    alias.as_ref(),
                    &record,
                    &self.token,
                );
                queued += 1;
            }
            if queued >= 20_000 {
                con.run(|c| pipe.query::<()>(c))?;
                pipe = redis::pipe();
                queued = 0;
            }
        }
        if queued > 0 {
            con.run(|c| pipe.query::<()>(c))?;
        }
        self.write_index_extras(&swarm, now, false)?;
        self.write_index_extras(&swarm, now, true)?;
        let stored = TorrentFiles::shared(Arc::clone(&self.store));
        for hash in files.list().map_err(|e| self.fault(e))? {
            let bytes = files.get(&hash).map_err(|e| self.fault(e))?;
            stored.put(&hash, &bytes).map_err(|e| self.fault(e))?;
            moved.files += 1;
        }
        Ok(moved)
    }

    fn fault(&self, e: impl std::fmt::Display) -> Unavailable {
        Unavailable {
            at: self.store.shown().to_owned(),
            why: e.to_string(),
        }
    }

    /// Writes the store's whole state to the state file `out` (and its stored `.torrent` files
    /// beside it), as a tracker with a state file would have saved it.
    pub fn export(&self, out: &std::path::Path, now: u64) -> std::result::Result<Moved, String> {
        let swarm = Swarm::new(crate::store::swarm::SwarmConfig::default());
        let users = Users::default();
        let fault = |e: Unavailable| e.to_string();
        self.load_all(&swarm, &users, now).map_err(fault)?;
        let (list, revoked) = users.snapshot();
        let ids: std::collections::HashMap<&str, u32> =
            list.iter().map(|u| (u.name.as_str(), u.id)).collect();
        let access = users.access();
        let mut moved = Moved {
            users: list.len(),
            ..Moved::default()
        };
        let known = self.store.known().map_err(fault)?;
        let completions = self.store.counts(&known).map_err(fault)?;
        let mut torrents = Vec::with_capacity(known.len());
        for (hash, counts) in known.iter().zip(completions) {
            let mut snapshot =
                swarm
                    .snapshot_one(hash)
                    .unwrap_or_else(|| crate::store::swarm::TorrentSnapshot {
                        info_hash: *hash,
                        info: Default::default(),
                        registered: false,
                        completions: 0,
                        peers: Vec::new(),
                        history: None,
                    });
            snapshot.completions = counts.downloaded;
            snapshot.peers = self
                .store
                .peers(hash, 0)
                .map_err(fault)?
                .into_iter()
                .map(|(mut peer, user)| {
                    peer.user = ids.get(user.as_str()).copied().unwrap_or(0);
                    peer
                })
                .collect();
            moved.peers += snapshot.peers.len();
            torrents.push(snapshot);
        }
        moved.torrents = torrents.len();
        torrents.sort_by_key(|t| t.info_hash);
        let pending = swarm.pending();
        let mut batch = Some(torrents);
        let mut contents = Contents {
            torrents: &mut || batch.take(),
            users: &list,
            revoked: &revoked,
            pending: &pending,
            saved_at_unix: now,
            history: Some(swarm.totals_history()),
            access: &access,
        };
        state::save(out, &mut contents).map_err(|e| format!("writing {}: {e}", out.display()))?;
        let stored = TorrentFiles::shared(Arc::clone(&self.store));
        let beside = TorrentFiles::beside(out);
        for hash in stored.list().map_err(|e| e.to_string())? {
            let bytes = stored.get(&hash).map_err(|e| e.to_string())?;
            beside
                .put(&hash, &bytes)
                .map_err(|e| format!("writing {}: {e}", beside.dir().display()))?;
            moved.files += 1;
        }
        Ok(moved)
    }
}

struct LockGuard<'a>(&'a Shared, String);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.store.unlock(&self.1);
    }
}

impl Write<'_> {
    /// Writes what the request changed (`hash`: the torrent an index change names) and releases
    /// the lock. On failure the copy is reloaded from the store before the next request.
    pub fn commit(
        mut self,
        swarm: &Swarm,
        users: &Users,
        writes: Writes,
        hash: Option<InfoHash>,
        now: u64,
    ) -> Result<()> {
        let shared = self.shared;
        let written = match writes {
            Writes::Users => shared.write_users(users, now),
            Writes::Index => hash
                .map_or(Ok(()), |h| shared.write_torrent(swarm, &h, now))
                .and_then(|()| shared.write_index_extras(swarm, now, false)),
        };
        if written.is_err() {
            self.applied.clear();
        }
        written
    }

    /// Gives up a write whose request changed nothing (or failed).
    pub fn abandon(self) {}
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.shared.store.unlock(&self.lock) {
            warn!("releasing the shared store's write lock: {e} (it lapses by itself)");
        }
    }
}

/// A record: a small state file with only what it holds.
fn record_of(contents: &mut Contents) -> String {
    let mut out = Vec::new();
    // Writing to memory does not fail.
    let _ = state::write_state(&mut out, contents);
    String::from_utf8(out).unwrap_or_default()
}

/// The record of one torrent (its peers are not part of it).
fn torrent_record(mut torrent: crate::store::swarm::TorrentSnapshot, now: u64) -> String {
    torrent.peers.clear();
    let mut batch = Some(vec![torrent]);
    record_of(&mut Contents {
        torrents: &mut || batch.take(),
        users: &[],
        revoked: &[],
        pending: &[],
        saved_at_unix: now,
        history: None,
        access: &Default::default(),
    })
}

/// A record read back; a record that does not parse is logged and skipped.
fn parse(record: &str, what: &str) -> Option<Loaded> {
    let file: StateFile = match serde_json::from_str(record) {
        Ok(file) => file,
        Err(e) => {
            warn!("the shared store's {what} record does not parse: {e}");
            return None;
        }
    };
    match state::from_file(file) {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            warn!("the shared store's {what} record cannot be used: {e}");
            None
        }
    }
}

/// The pending registrations and the tracker's peers over time, into the copy.
fn load_extras(con: &mut crate::store::redis::Pooled, swarm: &Swarm) -> Result<()> {
    let (pending, history): (Option<String>, Option<String>) =
        con.run(|c| redis::pipe().get(keys::PENDING).get(keys::HISTORY).query(c))?;
    if let Some(loaded) = pending.as_deref().and_then(|r| parse(r, "pending")) {
        swarm.replace_pending(loaded.pending);
    }
    if let Some(history) = history
        .as_deref()
        .and_then(|r| parse(r, "history"))
        .and_then(|l| l.history)
    {
        swarm.restore_totals_history(history);
    }
    Ok(())
}

/// Puts a torrent record into the copy.
fn restore(swarm: &Swarm, record: &str, now: u64) {
    if let Some(loaded) = parse(record, "torrent") {
        for torrent in loaded.torrents {
            swarm.restore(torrent, now);
        }
    }
}

/// The accounting hash (`name:u`, `name:d`, `name:c`, `name:s`) by user.
fn totals_by_name(fields: Vec<(String, String)>) -> Vec<(String, Totals)> {
    let mut by_name: std::collections::BTreeMap<String, Totals> = Default::default();
    for (field, value) in fields {
        let Some((name, which)) = field.rsplit_once(':') else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        let totals = by_name.entry(name.to_owned()).or_default();
        match which {
            "u" => totals.uploaded = value,
            "d" => totals.downloaded = value,
            "c" => totals.completed = value,
            "s" => totals.last_seen_unix = Some(value),
            _ => {}
        }
    }
    by_name.into_iter().collect()
}

/// Counts as the announce script publishes them: 20 bytes of hash, then "seeders leechers
/// completed".
pub fn parse_counts(payload: &[u8]) -> Option<(InfoHash, ScrapeCounts)> {
    let hash = InfoHash(<[u8; 20]>::try_from(payload.get(..20)?).ok()?);
    let text = std::str::from_utf8(payload.get(20..)?).ok()?;
    let mut numbers = text.split(' ').map(|n| n.parse::<u64>().ok());
    Some((
        hash,
        ScrapeCounts {
            complete: numbers.next()?? as u32,
            incomplete: numbers.next()?? as u32,
            downloaded: numbers.next()??,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_counts_read_back() {
        let mut payload = vec![9u8; 20];
        payload.extend_from_slice(b"3 14 159");
        let (hash, counts) = parse_counts(&payload).unwrap();
        assert_eq!(hash, InfoHash([9; 20]));
        assert_eq!(
            counts,
            ScrapeCounts {
                complete: 3,
                incomplete: 14,
                downloaded: 159
            }
        );
        assert_eq!(parse_counts(b"short"), None);
    }

    #[test]
    fn accounting_fields_group_by_user() {
        let fields = vec![
            ("alice:u".into(), "100".into()),
            ("alice:d".into(), "7".into()),
            ("bob.b:c".into(), "2".into()),
            ("bob.b:s".into(), "1700000000".into()),
        ];
        let totals = totals_by_name(fields);
        assert_eq!(totals[0].0, "alice");
        assert_eq!((totals[0].1.uploaded, totals[0].1.downloaded), (100, 7));
        assert_eq!(totals[1].1.completed, 2);
        assert_eq!(totals[1].1.last_seen_unix, Some(1_700_000_000));
    }
}
