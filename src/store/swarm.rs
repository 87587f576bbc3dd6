//! The swarm store: torrents, their peers and counters, sharded by info hash.
//! One call per request under one shard lock; no I/O and no clock here (`now` is a parameter).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rand::Rng;

use crate::error::ProtocolError;
use crate::protocol::ids::{InfoHash, PeerId};
use crate::protocol::{AnnounceRequest, AnnounceResponse, Event, Family, ScrapeCounts};
use crate::store::history::{History, Sample};
use crate::store::info::truncated;
use crate::store::info::{InfoUpdate, TorrentInfo};
use crate::store::peers::{Entry, Key, PeerSet};
use crate::store::search_index::SearchIndex;
use crate::store::users::{Credit, UserId};

const SHARDS: usize = 32;

#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub interval_secs: u32,
    pub min_interval_secs: u32,
    pub peer_timeout_secs: u64,
    pub default_numwant: usize,
    pub max_numwant: usize,
    /// Announces and scrapes for torrents nobody registered are refused.
    pub registered_only: bool,
    /// Most torrents held; an announce that would add one more is refused (0: no limit).
    pub max_torrents: usize,
    /// Peers one address may have in one torrent (0: no limit).
    pub max_peers_per_ip: usize,
}

impl SwarmConfig {
    /// The defaults, which are the command line's: interval 1800 s, min interval 900 s, peer
    /// timeout 3600 s, numwant 50 (at most 200), every torrent served, at most 1,000,000 torrents
    /// and 16 peers from one address in a torrent.
    pub const DEFAULT: SwarmConfig = SwarmConfig {
        interval_secs: 1800,
        min_interval_secs: 900,
        peer_timeout_secs: 3600,
        default_numwant: 50,
        max_numwant: 200,
        registered_only: false,
        max_torrents: 1_000_000,
        max_peers_per_ip: 16,
    };
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig::DEFAULT
    }
}

/// A peer as the state file and snapshots see it (inside, peers are kept as compact
/// [`Entry`]s). Identified by its address and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub last_seen_unix: u64,
    /// This peer's `event=completed` has been counted.
    pub completed: bool,
    /// The user whose passkey the peer announced with (0: none); its byte deltas go to that user.
    pub user: UserId,
}

impl Peer {
    pub fn new(addr: SocketAddr, peer_id: PeerId, left: u64, last_seen_unix: u64) -> Self {
        Peer {
            addr,
            peer_id,
            uploaded: 0,
            downloaded: 0,
            left,
            last_seen_unix,
            completed: false,
            user: 0,
        }
    }
    pub fn is_seeder(&self) -> bool {
        self.left == 0
    }

    fn from_entry(entry: &Entry) -> Peer {
        Peer {
            addr: entry.addr(),
            peer_id: entry.peer_id,
            uploaded: entry.uploaded,
            downloaded: entry.downloaded,
            left: entry.left(),
            last_seen_unix: entry.last_seen_unix(),
            completed: entry.completed,
            user: entry.user,
        }
    }

    fn to_entry(&self) -> Entry {
        let mut entry = Entry::new(self.addr, self.user, self.peer_id, self.last_seen_unix);
        entry.uploaded = self.uploaded;
        entry.downloaded = self.downloaded;
        entry.completed = self.completed;
        entry
    }
}

#[derive(Debug, Default)]
struct Torrent {
    /// Its metadata; `None` while it has nothing but the date it was first seen (most torrents an
    /// open tracker hears of), which then reads as the defaults with that date ([`Torrent::info`]).
    /// Kept apart, so a million small swarms do not each carry a dozen empty strings.
    meta: Option<Box<TorrentInfo>>,
    /// Unix seconds: when the tracker first heard of it (its creation date until told otherwise).
    first_seen: i64,
    /// Put here by an operator (not merely announced); only these are served with `registered_only`.
    registered: bool,
    completions: u64,
    peers: PeerSet,
    /// `info.search_text()`, kept while the info does not change (searches read it).
    search: Box<str>,
    /// Peers over time; none until a sample finds it has peers.
    history: Option<Box<History>>,
    /// Seeders and leechers held elsewhere (a shared store's swarm), counted with its own.
    shared: [u32; 2],
}

impl Torrent {
    /// A torrent the tracker has just heard of; its creation date is now until told otherwise.
    fn first_seen(now_unix: u64) -> Torrent {
        Torrent {
            first_seen: now_unix as i64,
            ..Torrent::default()
        }
    }

    /// What a torrent without metadata of its own reads as.
    fn bare(first_seen: i64) -> TorrentInfo {
        TorrentInfo {
            creation_date: first_seen,
            ..TorrentInfo::default()
        }
    }

    /// Its metadata (made up from its first-seen date when it has none; no allocation then).
    fn info(&self) -> Cow<'_, TorrentInfo> {
        match &self.meta {
            Some(meta) => Cow::Borrowed(meta),
            None => Cow::Owned(Torrent::bare(self.first_seen)),
        }
    }

    fn info_mut(&mut self) -> &mut TorrentInfo {
        let first_seen = self.first_seen;
        self.meta
            .get_or_insert_with(|| Box::new(Torrent::bare(first_seen)))
    }

    fn set_info(&mut self, info: TorrentInfo) {
        if info == Torrent::bare(info.creation_date) {
            self.first_seen = info.creation_date;
            self.meta = None;
        } else {
            self.meta = Some(Box::new(info));
        }
    }

    fn counts(&self) -> ScrapeCounts {
        ScrapeCounts {
            complete: self.peers.seeders() as u32 + self.shared[0],
            incomplete: self.peers.leechers() as u32 + self.shared[1],
            downloaded: self.completions,
        }
    }
}

/// A torrent as `/stats` and the state file see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentSnapshot {
    pub info_hash: InfoHash,
    pub info: TorrentInfo,
    pub registered: bool,
    pub completions: u64,
    pub peers: Vec<Peer>,
    pub history: Option<Box<History>>,
}

/// `/stats` figures for one torrent: counts plus byte sums over its live peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentStats {
    pub info_hash: InfoHash,
    pub info: TorrentInfo,
    pub registered: bool,
    pub complete: u32,
    pub incomplete: u32,
    pub completed: u64,
    pub uploaded: u128,
    pub downloaded: u128,
}

pub struct Swarm {
    config: SwarmConfig,
    shards: Vec<Mutex<Shard>>,
    /// The tracker's own peers over time (all torrents together).
    totals_history: Mutex<History<u32>>,
    /// Torrents in all shards, kept as they are added and removed (for --max-torrents).
    torrents: AtomicUsize,
    /// Registrations whose hash could be any of several (the legacy client's ambiguous text
    /// form), each waiting for the first announce or scrape of one of its candidates.
    pending: Mutex<Vec<Pending>>,
    /// `pending.len()`, read without the lock on the announce path.
    pending_count: AtomicUsize,
    /// Counts changes to `pending` (part of [`Swarm::changes`]).
    pending_changes: std::sync::atomic::AtomicU64,
}

/// A registration that waits to learn which of its candidate hashes is the torrent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub candidates: Vec<InfoHash>,
    pub update: InfoUpdate,
    pub since_unix: u64,
}

impl Swarm {
    pub fn new(config: SwarmConfig) -> Self {
        Swarm {
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            totals_history: Mutex::new(History::default()),
            torrents: AtomicUsize::new(0),
            pending: Mutex::new(Vec::new()),
            pending_count: AtomicUsize::new(0),
            pending_changes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Keeps a registration until a client names one of `candidates`: that one is registered
    /// with `update`, the others are dropped. A pending entry naming the same candidates is replaced.
    pub fn register_pending(&self, candidates: Vec<InfoHash>, update: InfoUpdate, now_unix: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|p| p.candidates != candidates);
        pending.push(Pending {
            candidates,
            update,
            since_unix: now_unix,
        });
        self.pending_count.store(pending.len(), Ordering::Relaxed);
        self.pending_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// The registrations still waiting, for the state file.
    /// Puts `pending` in place of the registrations waiting (a shared store's copy).
    pub fn replace_pending(&self, pending: Vec<Pending>) {
        let mut held = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *held = pending;
        self.pending_count.store(held.len(), Ordering::Relaxed);
        self.pending_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pending(&self) -> Vec<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `hash` is a candidate of a pending registration. Cheap when nothing is pending.
    pub fn is_pending(&self, hash: &InfoHash) -> bool {
        self.pending_count.load(Ordering::Relaxed) > 0
            && self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|p| p.candidates.contains(hash))
    }

    /// If `hash` is a candidate of a pending registration, registers it (and forgets the other
    /// candidates). Cheap when nothing is pending.
    pub fn claim_pending(&self, hash: &InfoHash, now_unix: u64) {
        if self.pending_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let claimed = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let found = pending.iter().position(|p| p.candidates.contains(hash));
            let claimed = found.map(|at| pending.remove(at));
            self.pending_count.store(pending.len(), Ordering::Relaxed);
            self.pending_changes.fetch_add(1, Ordering::Relaxed);
            claimed
        };
        if let Some(claimed) = claimed {
            log::info!(
                "{hash} was announced: the pending registration of {} candidates is settled on it",
                claimed.candidates.len()
            );
            self.register(*hash, claimed.update, now_unix);
        }
    }

    /// [`Swarm::resolve`], first settling a pending registration that names `hash`.
    fn resolve_or_claim(
        &self,
        hash: &InfoHash,
        now_unix: u64,
    ) -> (InfoHash, MutexGuard<'_, Shard>) {
        let (found, shard) = self.resolve(hash);
        // Nothing pending (almost always): no lookup here.
        if self.pending_count.load(Ordering::Relaxed) == 0 || shard.contains_key(&found) {
            return (found, shard);
        }
        drop(shard);
        self.claim_pending(hash, now_unix);
        self.resolve(hash)
    }

    fn added_torrent(&self) {
        self.torrents.fetch_add(1, Ordering::Relaxed);
    }

    fn removed_torrents(&self, n: usize) {
        self.torrents.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// The shard of `hash`, to change: its change count goes up.
    fn shard(&self, hash: &InfoHash) -> MutexGuard<'_, Shard> {
        let mut shard = self.shard_to_read(hash);
        shard.changes += 1;
        shard
    }

    fn shard_to_read(&self, hash: &InfoHash) -> MutexGuard<'_, Shard> {
        let at = usize::from(hash.as_bytes()[0]) % self.shards.len();
        lock(&self.shards[at])
    }

    /// Grows whenever anything in the swarm may have changed (a save can tell nothing did).
    pub fn changes(&self) -> u64 {
        let shards: u64 = self.shards.iter().map(|s| lock(s).changes).sum();
        shards + self.pending_changes.load(Ordering::Relaxed)
    }

    fn cutoff(&self, now_unix: u64) -> u64 {
        now_unix.saturating_sub(self.config.peer_timeout_secs)
    }

    /// The torrent a hash names, with its shard locked for a change: the hash itself, or the v1
    /// hash of the hybrid torrent whose truncated v2 hash it is.
    fn resolve(&self, hash: &InfoHash) -> (InfoHash, MutexGuard<'_, Shard>) {
        let shard = self.shard(hash);
        // A shard without aliases (no hybrid torrent hashes there) needs no lookup here.
        if shard.aliases.is_empty() || shard.contains_key(hash) {
            return (*hash, shard);
        }
        match shard.aliases.get(hash).copied() {
            Some(canonical) => {
                drop(shard);
                (canonical, self.shard(&canonical))
            }
            None => (*hash, shard),
        }
    }

    /// BEP 3 announce for a peer of `user` (0: no passkey): check the torrent may be served, upsert
    /// (or remove, on `stopped`) the peer, count, sample, and say what the announce adds to the user.
    pub fn announce(
        &self,
        req: &AnnounceRequest,
        user: UserId,
        now_unix: u64,
    ) -> Result<(AnnounceResponse, Credit), ProtocolError> {
        let mut answer = AnnounceResponse::default();
        let credit = self.announce_into(req, user, now_unix, Family::Any, &mut answer)?;
        Ok((answer, credit))
    }

    /// [`Swarm::announce`], answering into `answer` (its peer list's room reused) with peers of
    /// `family` only.
    pub fn announce_into(
        &self,
        req: &AnnounceRequest,
        user: UserId,
        now_unix: u64,
        family: Family,
        answer: &mut AnnounceResponse,
    ) -> Result<Credit, ProtocolError> {
        answer.peers.clear();
        let cutoff = self.cutoff(now_unix);
        let interval_secs = self.jittered_interval();
        let (hash, mut shard) = self.resolve_or_claim(&req.info_hash, now_unix);
        let known = shard.get(&hash).map(|t| t.registered);
        match known {
            Some(false) | None if self.config.registered_only => {
                return Err(ProtocolError::UnregisteredTorrent)
            }
            None if req.event == Event::Stopped => {
                self.answer(answer, ScrapeCounts::default(), interval_secs);
                return Ok(Credit::default());
            }
            None => {
                let max = self.config.max_torrents;
                if max > 0 && self.torrents.load(Ordering::Relaxed) >= max {
                    return Err(ProtocolError::TooManyTorrents { max });
                }
                shard.insert(hash, Torrent::first_seen(now_unix));
                self.added_torrent();
            }
            _ => {}
        }
        let Some(torrent) = shard.get_mut(&hash) else {
            unreachable!("the torrent was found or inserted above");
        };
        let before = torrent.counts();
        torrent.peers.expire(cutoff);

        let key = Key::new(req.addr, user);
        let at = match torrent.peers.find(&key) {
            Some(at) => at,
            None => {
                let max = self.config.max_peers_per_ip;
                if max > 0 && torrent.peers.count_ip(req.addr.ip()) >= max {
                    return Err(ProtocolError::TooManyPeersFromAddress { max });
                }
                let mut entry = Entry::new(req.addr, user, req.peer_id, now_unix);
                // A new peer's counters are its baseline: nothing is credited for them.
                (entry.uploaded, entry.downloaded) = (req.uploaded, req.downloaded);
                torrent.peers.insert(entry, req.left)
            }
        };
        let Some(peer) = torrent.peers.get_mut(at) else {
            let counts = torrent.counts();
            if counts != before && torrent.registered {
                shard.changed.insert(hash);
            }
            self.answer(answer, counts, interval_secs);
            return Ok(Credit::default());
        };
        let mut credit = Credit {
            user,
            ..Credit::default()
        };
        // Counters are cumulative; one that went down means the client restarted, and then
        // both are a new baseline.
        if req.uploaded >= peer.uploaded && req.downloaded >= peer.downloaded {
            credit.uploaded = req.uploaded - peer.uploaded;
            credit.downloaded = req.downloaded - peer.downloaded;
        }
        peer.peer_id = req.peer_id;
        peer.uploaded = req.uploaded;
        peer.downloaded = req.downloaded;
        peer.touch(now_unix);
        if req.event == Event::Completed && !peer.completed {
            peer.completed = true;
            torrent.completions += 1;
            credit.completed = true;
        }

        if req.event == Event::Stopped {
            torrent.peers.remove(at);
            let counts = torrent.counts();
            // Nobody registered it and nobody is left: open mode keeps no empty torrents.
            if torrent.peers.is_empty() && !torrent.registered {
                shard.remove(&hash);
                self.removed_torrents(1);
            } else if torrent.registered && counts != before {
                shard.changed.insert(hash);
            }
            self.answer(answer, counts, interval_secs);
            return Ok(credit);
        }
        let at = torrent.peers.set_left(at, req.left);
        let want = req
            .numwant
            .map_or(self.config.default_numwant, |n| {
                n.min(usize::MAX as u64) as usize
            })
            .min(self.config.max_numwant);
        torrent
            .peers
            .sample_into(want, Some(at), req.left == 0, family, &mut answer.peers);
        let counts = torrent.counts();
        // Only a change of counts costs a set insert: most announces change nothing.
        if counts != before && torrent.registered {
            shard.changed.insert(hash);
        }
        self.answer(answer, counts, interval_secs);
        Ok(credit)
    }

    /// Takes a peers-over-time sample at `now_unix`: of each registered torrent that has peers or
    /// a history already, and of the whole tracker. One shard locked at a time.
    pub fn sample_history(&self, now_unix: u64) {
        self.sample_history_totals(now_unix, None);
    }

    /// [`Swarm::sample_history`], with the whole tracker's (seeders, leechers) given when a
    /// shared store holds peers this copy does not.
    pub fn sample_history_totals(&self, now_unix: u64, peers: Option<(u64, u64)>) {
        let mut totals = Sample::default();
        for shard in &self.shards {
            let mut shard = lock(shard);
            let mut sampled = 0;
            for torrent in shard.values_mut() {
                let counts = torrent.counts();
                totals.seeders += u64::from(counts.complete);
                totals.leechers += u64::from(counts.incomplete);
                totals.completions += counts.downloaded;
                let has_peers = counts.complete + counts.incomplete > 0;
                if !torrent.registered || (torrent.history.is_none() && !has_peers) {
                    continue;
                }
                let sample = Sample {
                    seeders: counts.complete.into(),
                    leechers: counts.incomplete.into(),
                    completions: counts.downloaded,
                };
                torrent
                    .history
                    .get_or_insert_with(Box::default)
                    .record(now_unix, sample);
                sampled += 1;
            }
            shard.changes += sampled;
        }
        if let Some((seeders, leechers)) = peers {
            (totals.seeders, totals.leechers) = (seeders, leechers);
        }
        self.totals_history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(now_unix, totals);
    }

    /// A registered torrent's peers over time, as JSON ([`History::to_json`]); an empty history
    /// for one that has had no peers yet.
    pub fn history(&self, hash: &InfoHash) -> Option<(InfoHash, serde_json::Value)> {
        self.read(hash, |hash, t| {
            t.registered.then(|| {
                let json = t
                    .history
                    .as_deref()
                    .map_or_else(|| History::<u16>::default().to_json(), History::to_json);
                (*hash, json)
            })
        })
        .flatten()
    }

    /// The whole tracker's peers over time.
    pub fn totals_history(&self) -> History<u32> {
        self.totals_history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts the tracker's saved history in place (startup only).
    pub fn restore_totals_history(&self, history: History<u32>) {
        *self
            .totals_history
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = history;
    }

    /// The registered torrents whose counts changed since the last call, with their counts now
    /// (live events coalesce on this: one event per torrent per call).
    pub fn take_changed(&self) -> Vec<(InfoHash, ScrapeCounts)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = lock(shard);
            if shard.changed.is_empty() {
                continue;
            }
            let changed = std::mem::take(&mut shard.changed);
            out.extend(
                changed
                    .into_iter()
                    .filter_map(|hash| Some((hash, shard.get(&hash)?.counts()))),
            );
        }
        out
    }

    /// Fills in an answer's counts and intervals (its peers are set apart).
    fn answer(&self, answer: &mut AnnounceResponse, counts: ScrapeCounts, interval_secs: u32) {
        answer.complete = counts.complete;
        answer.incomplete = counts.incomplete;
        answer.downloaded = counts.downloaded;
        answer.interval_secs = interval_secs;
        answer.min_interval_secs = self.config.min_interval_secs;
    }

    /// The configured interval, spread by up to ±5 % so clients do not re-announce in lockstep.
    pub fn jittered_interval(&self) -> u32 {
        let base = self.config.interval_secs;
        let spread = base / 20;
        if spread == 0 {
            return base;
        }
        let jittered = rand::thread_rng().gen_range(base - spread..=base + spread);
        jittered.max(self.config.min_interval_secs)
    }

    /// BEP 48 counts for the torrents we know (and may serve); unknown hashes are left out. With
    /// `registered_only`, a scrape that names no registered torrent is refused.
    pub fn scrape(
        &self,
        hashes: &[InfoHash],
        now_unix: u64,
    ) -> Result<Vec<(InfoHash, TorrentInfo, ScrapeCounts)>, ProtocolError> {
        let mut out = Vec::with_capacity(hashes.len());
        self.scrape_each(hashes.iter().copied(), now_unix, |asked, torrent| {
            if let Some(torrent) = torrent {
                // Keyed by the hash the client asked about (BEP 48), whichever it was.
                out.push((asked, torrent.info().into_owned(), torrent.counts()));
            }
        });
        if out.is_empty() && self.config.registered_only {
            return Err(ProtocolError::UnregisteredTorrent);
        }
        Ok(out)
    }

    /// A scrape's counts, one per hash in the order asked (zeros for one the tracker does not
    /// serve), into `out` (cleared first): what a UDP scrape answers. Refused as [`Swarm::scrape`]
    /// is when none of the hashes is served by a tracker of registered torrents only.
    pub fn scrape_counts(
        &self,
        hashes: impl Iterator<Item = InfoHash>,
        now_unix: u64,
        out: &mut Vec<ScrapeCounts>,
    ) -> Result<(), ProtocolError> {
        out.clear();
        let mut served = 0;
        self.scrape_each(hashes, now_unix, |_, torrent| {
            served += usize::from(torrent.is_some());
            out.push(torrent.map(Torrent::counts).unwrap_or_default());
        });
        if served == 0 && self.config.registered_only {
            return Err(ProtocolError::UnregisteredTorrent);
        }
        Ok(())
    }

    /// Calls `found` with each hash asked about and its torrent, if the tracker serves it (its
    /// expired peers dropped first).
    fn scrape_each(
        &self,
        hashes: impl Iterator<Item = InfoHash>,
        now_unix: u64,
        mut found: impl FnMut(InfoHash, Option<&Torrent>),
    ) {
        let cutoff = self.cutoff(now_unix);
        for asked in hashes {
            let (hash, mut shard) = self.resolve_or_claim(&asked, now_unix);
            let mut expired = 0;
            match shard.get_mut(&hash) {
                Some(torrent) if torrent.registered || !self.config.registered_only => {
                    expired = torrent.peers.expire(cutoff);
                    found(asked, Some(torrent));
                }
                _ => found(asked, None),
            }
            shard.changes += expired as u64;
        }
    }

    /// Registers a torrent or updates its metadata. Returns whether it was not registered before.
    pub fn register(&self, hash: InfoHash, update: InfoUpdate, now_unix: u64) -> bool {
        if let Some(v2) = update.v2 {
            self.alias(truncated(&v2), hash);
        }
        let mut shard = self.shard(&hash);
        let created = !shard.get(&hash).is_some_and(|t| t.registered);
        let torrent = shard.entry(hash).or_insert_with(|| {
            self.added_torrent();
            Torrent::first_seen(now_unix)
        });
        if !torrent.registered {
            torrent.info_mut().added = now_unix;
        }
        torrent.registered = true;
        torrent.info_mut().apply(update);
        torrent.search = torrent.info().search_text().into();
        shard.index = None;
        created
    }

    /// Changes the metadata of a registered torrent (named by either hash). Returns its own
    /// hash and the metadata as it is now, or `None` when no registered torrent has that hash.
    pub fn update(&self, hash: &InfoHash, update: InfoUpdate) -> Option<(InfoHash, TorrentInfo)> {
        let (canonical, mut shard) = self.resolve(hash);
        let torrent = shard.get_mut(&canonical).filter(|t| t.registered)?;
        torrent.info_mut().apply(update);
        torrent.search = torrent.info().search_text().into();
        let info = torrent.info().into_owned();
        shard.index = None;
        Some((canonical, info))
    }

    /// Shows `see` the search index ([`SearchIndex`]) of every `parts`-th shard from `part`, with
    /// a lookup of a torrent's live counts; one shard locked at a time. `parts` callers with parts
    /// 0.. together see every registered torrent once.
    pub fn visit_index(
        &self,
        part: usize,
        parts: usize,
        mut see: impl FnMut(&SearchIndex, &dyn Fn(&InfoHash) -> ScrapeCounts),
    ) {
        for shard in self.shards.iter().skip(part).step_by(parts.max(1)) {
            let mut shard = lock(shard);
            shard.index();
            let shard = &*shard;
            let Some(index) = shard.index.as_ref() else {
                continue;
            };
            let counts = |hash: &InfoHash| shard.get(hash).map(Torrent::counts).unwrap_or_default();
            see(index, &counts);
        }
    }

    /// The registered torrents `pick` keeps, each given its hash, metadata, search text
    /// ([`TorrentInfo::search_text`]) and live counts; one shard locked at a time.
    pub fn select<T>(
        &self,
        mut pick: impl FnMut(&InfoHash, &TorrentInfo, &str, ScrapeCounts) -> Option<T>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = lock(shard);
            out.extend(
                shard
                    .iter()
                    .filter(|(_, t)| t.registered)
                    .filter_map(|(hash, t)| pick(hash, &t.info(), &t.search, t.counts())),
            );
        }
        out
    }

    /// A registered torrent's metadata and live counts (named by either hash).
    pub fn entry(&self, hash: &InfoHash) -> Option<(InfoHash, TorrentInfo, ScrapeCounts)> {
        self.read(hash, |hash, t| {
            t.registered
                .then(|| (*hash, t.info().into_owned(), t.counts()))
        })
        .flatten()
    }

    /// Makes `alias` (a hybrid torrent's truncated v2 hash) reach the torrent `canonical`. A
    /// torrent announced under the alias before (open mode, unregistered) gives way.
    fn alias(&self, alias: InfoHash, canonical: InfoHash) {
        if alias == canonical {
            return;
        }
        let mut shard = self.shard(&alias);
        if shard.get(&alias).is_some_and(|t| !t.registered) {
            shard.remove(&alias);
            self.removed_torrents(1);
        }
        shard.aliases.insert(alias, canonical);
    }

    /// Removes a torrent (named by either of its hashes) and its peers. Returns its own hash and
    /// how many peers went, or `None` if it was unknown.
    pub fn unregister(&self, hash: &InfoHash) -> Option<(InfoHash, usize)> {
        let (canonical, mut shard) = self.resolve(hash);
        let removed = shard.remove(&canonical)?;
        shard.index = None;
        drop(shard);
        self.removed_torrents(1);
        if let Some(v2) = removed.info().v2 {
            let alias = truncated(&v2);
            self.shard(&alias).aliases.remove(&alias);
        }
        Some((canonical, removed.peers.len()))
    }

    /// The torrent `hash` names (either of a hybrid's hashes): its own hash, its metadata and
    /// whether an operator registered it.
    pub fn info(&self, hash: &InfoHash) -> Option<(InfoHash, TorrentInfo, bool)> {
        self.read(hash, |hash, t| (*hash, t.info().into_owned(), t.registered))
    }

    /// `see` applied to the torrent `hash` names (either of a hybrid's hashes) and its own hash.
    fn read<T>(&self, hash: &InfoHash, see: impl FnOnce(&InfoHash, &Torrent) -> T) -> Option<T> {
        let shard = self.shard_to_read(hash);
        if let Some(t) = shard.get(hash) {
            return Some(see(hash, t));
        }
        let canonical = *shard.aliases.get(hash)?;
        drop(shard);
        let shard = self.shard_to_read(&canonical);
        shard.get(&canonical).map(|t| see(&canonical, t))
    }

    pub fn contains(&self, hash: &InfoHash) -> bool {
        let shard = self.shard_to_read(hash);
        shard.contains_key(hash) || shard.aliases.contains_key(hash)
    }

    /// `/stats`: every torrent with its live counts and byte sums, sorted by hash.
    pub fn stats(&self, now_unix: u64) -> Vec<TorrentStats> {
        let cutoff = self.cutoff(now_unix);
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = lock(shard);
            let shard = &mut *shard;
            for (hash, torrent) in shard.map.iter_mut() {
                shard.changes += torrent.peers.expire(cutoff) as u64;
                let counts = torrent.counts();
                let (uploaded, downloaded) =
                    torrent.peers.iter().fold((0u128, 0u128), |(u, d), p| {
                        (u + u128::from(p.uploaded), d + u128::from(p.downloaded))
                    });
                out.push(TorrentStats {
                    info_hash: *hash,
                    info: torrent.info().into_owned(),
                    registered: torrent.registered,
                    complete: counts.complete,
                    incomplete: counts.incomplete,
                    completed: torrent.completions,
                    uploaded,
                    downloaded,
                });
            }
        }
        out.sort_by_key(|t| t.info_hash);
        out
    }

    /// A copy of everything worth saving, one shard lock at a time; expired peers are left out.
    pub fn snapshot(&self, now_unix: u64) -> Vec<TorrentSnapshot> {
        (0..self.shards.len())
            .filter_map(|i| self.snapshot_shard(i, now_unix))
            .flatten()
            .collect()
    }

    /// The same for one shard (`None` past the last), so a save can copy and write the swarm a
    /// shard at a time instead of holding a copy of all of it.
    pub fn snapshot_shard(&self, index: usize, now_unix: u64) -> Option<Vec<TorrentSnapshot>> {
        let cutoff = self.cutoff(now_unix);
        let shard = lock(self.shards.get(index)?);
        Some(
            shard
                .iter()
                .map(|(hash, torrent)| TorrentSnapshot {
                    info_hash: *hash,
                    info: torrent.info().into_owned(),
                    registered: torrent.registered,
                    completions: torrent.completions,
                    peers: torrent
                        .peers
                        .iter()
                        .filter(|p| p.last_seen_unix() > cutoff)
                        .map(Peer::from_entry)
                        .collect(),
                    history: torrent.history.clone(),
                })
                .collect(),
        )
    }

    /// Puts a loaded torrent in place (startup only). Peers already expired at `now_unix` are dropped.
    pub fn restore(&self, snapshot: TorrentSnapshot, now_unix: u64) {
        let cutoff = self.cutoff(now_unix);
        if let Some(v2) = snapshot.info.v2 {
            self.alias(truncated(&v2), snapshot.info_hash);
        }
        let mut shard = self.shard(&snapshot.info_hash);
        shard.index = None;
        let torrent = shard.entry(snapshot.info_hash).or_insert_with(|| {
            self.added_torrent();
            Torrent::default()
        });
        torrent.set_info(snapshot.info);
        torrent.search = torrent.info().search_text().into();
        torrent.history = snapshot.history;
        torrent.registered = snapshot.registered;
        torrent.completions = snapshot.completions;
        for peer in snapshot.peers {
            let key = Key::new(peer.addr, peer.user);
            if peer.last_seen_unix > cutoff && torrent.peers.find(&key).is_none() {
                torrent.peers.insert(peer.to_entry(), peer.left);
            }
        }
    }

    /// Sets the counts of a registered torrent whose peers a shared store holds; a change is
    /// a live event. Returns whether the torrent is known here.
    pub fn set_shared_counts(&self, hash: &InfoHash, counts: ScrapeCounts) -> bool {
        let mut shard = self.shard(hash);
        let Some(torrent) = shard.get_mut(hash) else {
            return false;
        };
        let before = torrent.counts();
        torrent.shared = [counts.complete, counts.incomplete];
        torrent.completions = counts.downloaded;
        let registered = torrent.registered;
        if registered && before != torrent.counts() {
            shard.changed.insert(*hash);
        }
        true
    }

    /// The registered hashes (their own, not aliases).
    pub fn registered(&self) -> Vec<InfoHash> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = lock(shard);
            out.extend(shard.iter().filter(|(_, t)| t.registered).map(|(h, _)| *h));
        }
        out
    }

    /// One torrent as a save writes it, without its peers.
    pub fn snapshot_one(&self, hash: &InfoHash) -> Option<TorrentSnapshot> {
        self.read(hash, |hash, torrent| TorrentSnapshot {
            info_hash: *hash,
            info: torrent.info().into_owned(),
            registered: torrent.registered,
            completions: torrent.completions,
            peers: Vec::new(),
            history: torrent.history.clone(),
        })
    }

    /// Removes expired peers everywhere, and torrents nobody registered once they have no peers,
    /// holding each shard's lock only for that shard. Returns how many peers and torrents went.
    pub fn sweep(&self, now_unix: u64) -> (usize, usize) {
        let cutoff = self.cutoff(now_unix);
        let (mut peers, mut torrents) = (0, 0);
        for shard in &self.shards {
            let mut shard = lock(shard);
            let before = (shard.len(), peers);
            let mut changed = Vec::new();
            shard.retain(|hash, torrent| {
                let expired = torrent.peers.expire(cutoff);
                if expired > 0 && torrent.registered {
                    changed.push(*hash);
                }
                peers += expired;
                torrent.registered || !torrent.peers.is_empty()
            });
            shard.changed.extend(changed);
            torrents += before.0 - shard.len();
            shard.changes += (before.0 - shard.len() + peers - before.1) as u64;
        }
        self.removed_torrents(torrents);
        (peers, torrents)
    }

    /// (torrents, seeders, leechers) right now, counting peers not yet swept.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.shards.iter().fold((0, 0, 0), |(t, s, l), shard| {
            let shard = lock(shard);
            let (seeders, leechers) = shard.values().fold((0, 0), |(s, l), t| {
                (s + t.peers.seeders(), l + t.peers.leechers())
            });
            (t + shard.len(), s + seeders, l + leechers)
        })
    }

    /// (torrents, peers) right now, counting peers not yet swept.
    pub fn totals(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(t, p), shard| {
            let shard = lock(shard);
            (
                t + shard.len(),
                p + shard.values().map(|t| t.peers.len()).sum::<usize>(),
            )
        })
    }
}

/// One shard's torrents, and how often they may have changed.
#[derive(Default)]
struct Shard {
    map: HashMap<InfoHash, Torrent>,
    /// Truncated v2 hashes of hybrid torrents (in the shard of the alias) to their v1 hash.
    aliases: HashMap<InfoHash, InfoHash>,
    changes: u64,
    /// Registered torrents whose counts changed since [`Swarm::take_changed`] last looked.
    changed: HashSet<InfoHash>,
    /// The registered torrents laid out for searches; `None` after a change, until a search.
    index: Option<SearchIndex>,
}

impl Shard {
    /// The search index, built again if the metadata changed since.
    fn index(&mut self) -> &SearchIndex {
        let map = &self.map;
        self.index.get_or_insert_with(|| {
            SearchIndex::build(map.iter().filter(|(_, t)| t.registered).map(|(hash, t)| {
                let info = t.info();
                (*hash, info.added_unix(), info.size, &*t.search)
            }))
        })
    }
}

impl std::ops::Deref for Shard {
    type Target = HashMap<InfoHash, Torrent>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for Shard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

/// Locks a shard. A poisoned one (a panic while it was held: nothing in a critical section should
/// panic, but a bug might) may hold a peer set left half-way through a change, so every peer set
/// in it is rebuilt before it is used again, and the shard is marked healthy.
fn lock(mutex: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    mutex.lock().unwrap_or_else(|poisoned| {
        let mut shard = poisoned.into_inner();
        let repaired = shard
            .values_mut()
            .map(|torrent| torrent.peers.repair())
            .filter(|&mended| mended)
            .count();
        log::error!(
            "a request panicked while changing a shard; rebuilt its {} torrents' peer lists ({repaired} needed it)",
            shard.len()
        );
        mutex.clear_poison();
        shard
    })
}

/// Canonical peer address: an IPv4-mapped IPv6 address becomes plain IPv4 (BEP 7).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PeerStyle;
    use std::collections::HashSet;

    const NOW: u64 = 1_700_000_000;

    fn config() -> SwarmConfig {
        SwarmConfig::default()
    }

    /// An announce without a passkey, in open mode.
    fn ann(swarm: &Swarm, req: &AnnounceRequest, now: u64) -> AnnounceResponse {
        swarm
            .announce(req, 0, now)
            .expect("open mode serves every torrent")
            .0
    }

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn req(torrent: u8, peer: u16, left: u64, event: Event) -> AnnounceRequest {
        let mut id = [b'p'; 20];
        id[..2].copy_from_slice(&peer.to_be_bytes());
        AnnounceRequest {
            info_hash: hash(torrent),
            peer_id: PeerId(id),
            addr: SocketAddr::from(([10, 0, (peer >> 8) as u8, peer as u8], 6881)),
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            numwant: None,
            style: PeerStyle::Compact,
        }
    }

    #[test]
    fn requester_is_never_in_its_own_list() {
        let swarm = Swarm::new(config());
        for p in 0..5 {
            ann(&swarm, &req(1, p, 10, Event::Started), NOW);
        }
        let me = req(1, 3, 10, Event::Periodic);
        let resp = ann(&swarm, &me, NOW);
        assert_eq!(resp.peers.len(), 4);
        assert!(resp.peers.iter().all(|p| p.addr != me.addr));
        assert_eq!((resp.complete, resp.incomplete), (0, 5));
    }

    #[test]
    fn seeder_gets_only_leechers() {
        let swarm = Swarm::new(config());
        for p in 0..4 {
            ann(&swarm, &req(1, p, 0, Event::Started), NOW);
        }
        for p in 10..13 {
            ann(&swarm, &req(1, p, 5, Event::Started), NOW);
        }
        let resp = ann(&swarm, &req(1, 0, 0, Event::Periodic), NOW);
        let leechers: HashSet<_> = (10..13)
            .map(|p| req(1, p, 5, Event::Periodic).addr)
            .collect();
        assert_eq!(
            resp.peers.iter().map(|p| p.addr).collect::<HashSet<_>>(),
            leechers
        );
        assert_eq!((resp.complete, resp.incomplete), (4, 3));
    }

    #[test]
    fn numwant_is_honoured_and_capped() {
        let swarm = Swarm::new(config());
        for p in 0..300 {
            ann(&swarm, &req(1, p, 1, Event::Started), NOW);
        }
        let mut ask = req(1, 1000, 1, Event::Started);
        assert_eq!(ann(&swarm, &ask, NOW).peers.len(), 50);
        ask.numwant = Some(7);
        assert_eq!(ann(&swarm, &ask, NOW).peers.len(), 7);
        ask.numwant = Some(0);
        assert_eq!(ann(&swarm, &ask, NOW).peers.len(), 0);
        ask.numwant = Some(u64::MAX);
        let many = ann(&swarm, &ask, NOW).peers;
        assert_eq!(many.len(), 200);
        let distinct: HashSet<_> = many.iter().map(|p| p.addr).collect();
        assert_eq!(distinct.len(), 200, "a sample never repeats a peer");
    }

    #[test]
    fn samples_vary_between_announces() {
        let swarm = Swarm::new(config());
        for p in 0..100 {
            ann(&swarm, &req(1, p, 1, Event::Started), NOW);
        }
        let mut ask = req(1, 500, 1, Event::Started);
        ask.numwant = Some(5);
        let seen: HashSet<_> = (0..50)
            .flat_map(|_| ann(&swarm, &ask, NOW).peers)
            .map(|p| p.addr)
            .collect();
        assert!(
            seen.len() > 30,
            "50 samples of 5 from 100 peers covered only {}",
            seen.len()
        );
    }

    #[test]
    fn stopped_removes_the_peer_and_returns_no_peers() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 0, Event::Started), NOW);
        ann(&swarm, &req(1, 2, 5, Event::Started), NOW);
        let resp = ann(&swarm, &req(1, 2, 5, Event::Stopped), NOW);
        assert!(resp.peers.is_empty());
        assert_eq!((resp.complete, resp.incomplete), (1, 0));
        assert_eq!(swarm.totals(), (1, 1));
    }

    #[test]
    fn stopped_for_an_unknown_torrent_creates_nothing() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(9, 1, 0, Event::Stopped), NOW);
        assert_eq!(swarm.totals(), (0, 0));
    }

    #[test]
    fn completed_counts_once_per_peer() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 5, Event::Started), NOW);
        ann(&swarm, &req(1, 1, 0, Event::Completed), NOW);
        let resp = ann(&swarm, &req(1, 1, 0, Event::Completed), NOW);
        assert_eq!(resp.downloaded, 1);
        assert_eq!((resp.complete, resp.incomplete), (1, 0));
        let other = ann(&swarm, &req(1, 2, 0, Event::Completed), NOW);
        assert_eq!(other.downloaded, 2);
    }

    #[test]
    fn a_new_peer_id_on_the_same_address_replaces_the_peer() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 5, Event::Started), NOW);
        let mut restarted = req(1, 1, 5, Event::Started);
        restarted.peer_id = PeerId(*b"-qB4250-restartedxxx");
        let resp = ann(&swarm, &restarted, NOW);
        assert_eq!((resp.complete, resp.incomplete), (0, 1));
        assert_eq!(swarm.snapshot(NOW)[0].peers[0].peer_id, restarted.peer_id);
    }

    #[test]
    fn expired_peers_vanish_from_answers_and_counts_at_once() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 0, Event::Started), NOW);
        ann(&swarm, &req(1, 2, 5, Event::Started), NOW + 1000);
        let later = NOW + 3600;
        let resp = ann(&swarm, &req(1, 3, 5, Event::Started), later);
        assert_eq!((resp.complete, resp.incomplete), (0, 2));
        assert_eq!(resp.peers.len(), 1);
        let scraped = swarm.scrape(&[hash(1)], later + 1000).unwrap();
        assert_eq!(scraped[0].2.incomplete, 1);
    }

    #[test]
    fn a_refreshed_peer_does_not_expire() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 5, Event::Started), NOW);
        ann(&swarm, &req(1, 1, 5, Event::Periodic), NOW + 3000);
        let resp = ann(&swarm, &req(1, 2, 5, Event::Started), NOW + 4000);
        assert_eq!(resp.incomplete, 2);
        let resp = ann(&swarm, &req(1, 2, 5, Event::Periodic), NOW + 6600);
        assert_eq!(resp.incomplete, 1, "peer 1 was last seen at NOW+3000");
    }

    #[test]
    fn sweep_removes_expired_peers_and_keeps_only_registered_torrents() {
        let swarm = Swarm::new(config());
        for t in 0..10 {
            ann(&swarm, &req(t, 1, 5, Event::Started), NOW);
        }
        for t in 0..3 {
            swarm.register(hash(t), InfoUpdate::default(), NOW);
        }
        assert_eq!(swarm.sweep(NOW + 100), (0, 0));
        assert_eq!(swarm.sweep(NOW + 3600), (10, 7));
        assert_eq!(
            swarm.totals(),
            (3, 0),
            "registered torrents stay without peers"
        );
        assert_eq!(swarm.torrents.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_last_peer_stopping_drops_an_unregistered_torrent() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 5, Event::Started), NOW);
        ann(&swarm, &req(2, 1, 5, Event::Started), NOW);
        swarm.register(hash(2), InfoUpdate::default(), NOW);
        ann(&swarm, &req(1, 1, 5, Event::Stopped), NOW);
        ann(&swarm, &req(2, 1, 5, Event::Stopped), NOW);
        assert_eq!(swarm.totals(), (1, 0));
        assert_eq!(swarm.torrents.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn announces_create_no_torrent_past_the_limit() {
        let swarm = Swarm::new(SwarmConfig {
            max_torrents: 3,
            ..config()
        });
        for t in 0..3 {
            ann(&swarm, &req(t, 1, 5, Event::Started), NOW);
        }
        assert_eq!(
            swarm
                .announce(&req(9, 1, 5, Event::Started), 0, NOW)
                .unwrap_err(),
            ProtocolError::TooManyTorrents { max: 3 }
        );
        assert_eq!(swarm.totals(), (3, 3), "nothing was added");
        ann(&swarm, &req(0, 2, 5, Event::Started), NOW);
        ann(&swarm, &req(1, 1, 5, Event::Stopped), NOW);
        ann(&swarm, &req(9, 1, 5, Event::Started), NOW);
        assert_eq!(
            swarm.torrents.load(Ordering::Relaxed),
            3,
            "a freed place can be taken"
        );
    }

    #[test]
    fn one_address_has_at_most_the_cap_of_peers_in_a_torrent() {
        let swarm = Swarm::new(SwarmConfig {
            max_peers_per_ip: 20,
            ..config()
        });
        let from = |port: u16, ip: [u8; 4]| {
            let mut r = req(1, port, 5, Event::Started);
            r.addr = SocketAddr::from((ip, port));
            r
        };
        // Past the size at which the peer set gets its index, so both ways of counting run.
        for port in 1..=20 {
            ann(&swarm, &from(port, [10, 0, 0, 1]), NOW);
        }
        assert_eq!(
            swarm
                .announce(&from(21, [10, 0, 0, 1]), 0, NOW)
                .unwrap_err(),
            ProtocolError::TooManyPeersFromAddress { max: 20 }
        );
        assert_eq!(swarm.totals(), (1, 20));
        ann(&swarm, &from(7, [10, 0, 0, 1]), NOW);
        ann(&swarm, &from(21, [10, 0, 0, 2]), NOW);
        ann(&swarm, &from(7, [10, 0, 0, 1]).tap_stop(), NOW);
        ann(&swarm, &from(22, [10, 0, 0, 1]), NOW);
        assert_eq!(swarm.totals(), (1, 21), "a stopped peer frees its place");
        let unknown = Swarm::new(SwarmConfig {
            max_peers_per_ip: 1,
            ..config()
        });
        ann(&unknown, &from(1, [10, 0, 0, 1]), NOW);
        assert!(unknown.announce(&from(2, [10, 0, 0, 1]), 0, NOW).is_err());
    }

    impl AnnounceRequest {
        fn tap_stop(mut self) -> Self {
            self.event = Event::Stopped;
            self
        }
    }

    #[test]
    fn a_hybrid_torrent_is_one_swarm_under_both_hashes() {
        let swarm = private_swarm();
        let v2 = [7u8; 32];
        let short = truncated(&v2);
        let update = InfoUpdate {
            name: Some("hybrid".into()),
            v2: Some(v2),
            ..InfoUpdate::default()
        };
        swarm.register(hash(1), update, NOW);
        let mut by_v2 = req(0, 1, 5, Event::Started);
        by_v2.info_hash = short;
        let first = swarm
            .announce(&by_v2, 0, NOW)
            .expect("the v2 hash is registered too");
        assert_eq!(first.0.incomplete, 1);
        let mut completed = req(1, 2, 0, Event::Completed);
        completed.numwant = Some(10);
        let second = swarm.announce(&completed, 0, NOW).unwrap().0;
        assert_eq!(
            (second.complete, second.incomplete, second.downloaded),
            (1, 1, 1)
        );
        assert_eq!(second.peers.len(), 1, "the peer that came by the v2 hash");
        let scraped = swarm.scrape(&[short, hash(1)], NOW).unwrap();
        assert_eq!(scraped[0].0, short, "keyed by the hash asked about");
        assert_eq!(scraped[0].2, scraped[1].2, "one set of counters");
        assert_eq!(swarm.totals(), (1, 2));
        let copy = private_swarm();
        for t in swarm.snapshot(NOW) {
            copy.restore(t, NOW);
        }
        assert!(
            copy.announce(&by_v2, 0, NOW).is_ok(),
            "the alias survives a restart"
        );
        assert_eq!(swarm.unregister(&short), Some((hash(1), 2)));
        assert!(!swarm.contains(&short) && !swarm.contains(&hash(1)));
    }

    #[test]
    fn a_pending_registration_settles_on_the_first_candidate_announced() {
        let swarm = private_swarm();
        let update = InfoUpdate {
            name: Some("which one".into()),
            ..InfoUpdate::default()
        };
        swarm.register_pending(vec![hash(1), hash(2), hash(3)], update, NOW);
        assert_eq!(swarm.totals(), (0, 0), "nothing is a torrent yet");
        assert!(swarm
            .announce(&req(2, 1, 5, Event::Started), 0, NOW)
            .is_ok());
        assert_eq!(swarm.stats(NOW)[0].info.name, "which one");
        assert_eq!(
            swarm.announce(&req(1, 1, 5, Event::Started), 0, NOW),
            Err(ProtocolError::UnregisteredTorrent),
            "the other candidates were dropped"
        );
        assert!(swarm.pending().is_empty());
        assert_eq!(swarm.totals(), (1, 1));
    }

    #[test]
    fn a_pure_v2_torrent_is_tracked_under_its_truncated_hash() {
        let swarm = private_swarm();
        let v2 = [9u8; 32];
        let update = InfoUpdate {
            v2: Some(v2),
            ..InfoUpdate::default()
        };
        swarm.register(truncated(&v2), update, NOW);
        let mut r = req(0, 1, 5, Event::Started);
        r.info_hash = truncated(&v2);
        assert!(swarm.announce(&r, 0, NOW).is_ok());
        assert_eq!(swarm.totals(), (1, 1));
    }

    #[test]
    fn a_panic_inside_a_shard_leaves_it_rebuilt_not_broken() {
        let swarm = Swarm::new(config());
        for p in 0..40 {
            ann(&swarm, &req(1, p, u64::from(p % 2), Event::Started), NOW);
        }
        let shard = &swarm.shards[usize::from(hash(1).as_bytes()[0]) % SHARDS];
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut guard = shard.lock().unwrap();
            guard
                .get_mut(&hash(1))
                .unwrap()
                .peers
                .break_half_way_for_test();
            panic!("half-way through a change");
        }));
        assert!(shard.is_poisoned());
        let resp = ann(&swarm, &req(1, 5, 1, Event::Periodic), NOW);
        assert_eq!(
            resp.complete + resp.incomplete,
            40,
            "peer 5 was found, not added again"
        );
        assert!(!shard.is_poisoned());
        for p in 0..40 {
            ann(&swarm, &req(1, p, 0, Event::Periodic), NOW);
        }
        assert_eq!(
            ann(&swarm, &req(1, 0, 0, Event::Periodic), NOW).complete,
            40
        );
    }

    #[test]
    fn leecher_turning_seeder_moves_lists() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 5, Event::Started), NOW);
        ann(&swarm, &req(1, 2, 5, Event::Started), NOW);
        let resp = ann(&swarm, &req(1, 1, 0, Event::Periodic), NOW);
        assert_eq!((resp.complete, resp.incomplete), (1, 1));
        let back = ann(&swarm, &req(1, 1, 3, Event::Periodic), NOW);
        assert_eq!((back.complete, back.incomplete), (0, 2));
    }

    #[test]
    fn register_creates_then_updates_only_given_fields() {
        let swarm = Swarm::new(config());
        let first = InfoUpdate {
            name: Some("a.iso".into()),
            size: Some(10),
            ..InfoUpdate::default()
        };
        assert!(swarm.register(hash(4), first, NOW));
        let second = InfoUpdate {
            comment: Some("hi".into()),
            ..InfoUpdate::default()
        };
        assert!(!swarm.register(hash(4), second, NOW));
        let stats = swarm.stats(NOW);
        assert_eq!(stats[0].info.name, "a.iso");
        assert_eq!(stats[0].info.size, 10);
        assert_eq!(stats[0].info.comment, "hi");
        assert_eq!(stats[0].info.creation_date, NOW as i64);
    }

    #[test]
    fn registering_an_announced_torrent_counts_as_new() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(3, 1, 5, Event::Started), NOW);
        assert!(swarm.register(hash(3), InfoUpdate::default(), NOW));
        assert!(!swarm.register(hash(3), InfoUpdate::default(), NOW));
    }

    #[test]
    fn snapshot_and_restore_round_trip() {
        let swarm = Swarm::new(config());
        swarm.register(
            hash(2),
            InfoUpdate {
                name: Some("x".into()),
                ..Default::default()
            },
            NOW,
        );
        ann(&swarm, &req(1, 1, 0, Event::Completed), NOW);
        ann(&swarm, &req(1, 2, 7, Event::Started), NOW);
        let mut before = swarm.snapshot(NOW);
        let copy = Swarm::new(config());
        for t in before.clone() {
            copy.restore(t, NOW);
        }
        let mut after = copy.snapshot(NOW);
        let key = |t: &TorrentSnapshot| t.info_hash;
        before.sort_by_key(key);
        after.sort_by_key(key);
        for t in before.iter_mut().chain(after.iter_mut()) {
            t.peers.sort_by_key(|p| p.addr);
        }
        assert_eq!(before, after);
    }

    fn private_swarm() -> Swarm {
        Swarm::new(SwarmConfig {
            registered_only: true,
            ..config()
        })
    }

    #[test]
    fn registered_only_refuses_unknown_and_merely_announced_torrents() {
        let open = Swarm::new(config());
        ann(&open, &req(1, 1, 5, Event::Started), NOW);
        let private = private_swarm();
        for snapshot in open.snapshot(NOW) {
            private.restore(snapshot, NOW);
        }
        assert_eq!(
            private.announce(&req(1, 2, 5, Event::Started), 0, NOW),
            Err(ProtocolError::UnregisteredTorrent)
        );
        assert_eq!(
            private.announce(&req(2, 2, 5, Event::Started), 0, NOW),
            Err(ProtocolError::UnregisteredTorrent)
        );
        assert_eq!(
            private.scrape(&[hash(1), hash(2)], NOW),
            Err(ProtocolError::UnregisteredTorrent)
        );
        assert_eq!(private.totals(), (1, 1), "nothing was created or changed");
        private.register(hash(1), InfoUpdate::default(), NOW);
        assert!(private
            .announce(&req(1, 2, 5, Event::Started), 0, NOW)
            .is_ok());
        assert_eq!(private.scrape(&[hash(1), hash(2)], NOW).unwrap().len(), 1);
    }

    fn with_counters(mut r: AnnounceRequest, uploaded: u64, downloaded: u64) -> AnnounceRequest {
        (r.uploaded, r.downloaded) = (uploaded, downloaded);
        r
    }

    #[test]
    fn credit_is_the_positive_delta_of_cumulative_counters() {
        let swarm = Swarm::new(config());
        let credit = |r: AnnounceRequest, user| swarm.announce(&r, user, NOW).unwrap().1;
        let first = credit(with_counters(req(1, 1, 5, Event::Started), 100, 50), 7);
        assert_eq!(
            (first.uploaded, first.downloaded),
            (0, 0),
            "the first announce is the baseline"
        );
        let second = credit(with_counters(req(1, 1, 5, Event::Periodic), 150, 80), 7);
        assert_eq!(
            (second.user, second.uploaded, second.downloaded),
            (7, 50, 30)
        );
        let restarted = credit(with_counters(req(1, 1, 5, Event::Started), 10, 5), 7);
        assert_eq!(
            (restarted.uploaded, restarted.downloaded),
            (0, 0),
            "a counter going down is a new baseline"
        );
        let after = credit(with_counters(req(1, 1, 5, Event::Periodic), 25, 5), 7);
        assert_eq!(after.uploaded, 15);
        let done = credit(with_counters(req(1, 1, 0, Event::Completed), 25, 40), 7);
        assert_eq!((done.downloaded, done.completed), (35, true));
        let stopped = credit(with_counters(req(1, 1, 0, Event::Stopped), 30, 40), 7);
        assert_eq!(
            stopped.uploaded, 5,
            "the final counters of a stopped peer still count"
        );
    }

    #[test]
    fn two_users_behind_one_address_are_two_peers_with_their_own_bytes() {
        let swarm = Swarm::new(config());
        let announce = |up, user| {
            swarm
                .announce(
                    &with_counters(req(1, 1, 5, Event::Periodic), up, 0),
                    user,
                    NOW,
                )
                .unwrap()
        };
        announce(0, 7);
        announce(1000, 8);
        let (resp, seven) = announce(300, 7);
        assert_eq!((seven.user, seven.uploaded), (7, 300));
        assert_eq!(resp.incomplete, 2, "one address, two users, two peers");
        assert_eq!(
            resp.peers.len(),
            1,
            "the other user's peer is handed out, not oneself"
        );
        assert_eq!(announce(1500, 8).1.uploaded, 500);
    }

    #[test]
    fn one_counter_going_down_is_a_restart_for_both() {
        let swarm = Swarm::new(config());
        swarm
            .announce(
                &with_counters(req(1, 1, 5, Event::Started), 100, 100),
                7,
                NOW,
            )
            .unwrap();
        let credit = swarm
            .announce(
                &with_counters(req(1, 1, 5, Event::Started), 10, 400),
                7,
                NOW,
            )
            .unwrap()
            .1;
        assert_eq!((credit.uploaded, credit.downloaded), (0, 0));
    }

    #[test]
    fn unregister_removes_the_torrent_and_its_peers() {
        let swarm = Swarm::new(config());
        ann(&swarm, &req(1, 1, 5, Event::Started), NOW);
        ann(&swarm, &req(1, 2, 5, Event::Started), NOW);
        assert_eq!(swarm.unregister(&hash(1)), Some((hash(1), 2)));
        assert_eq!(swarm.unregister(&hash(1)), None);
        assert_eq!(swarm.totals(), (0, 0));
    }

    #[test]
    fn mapped_ipv4_is_canonical() {
        let mapped: IpAddr = "::ffff:1.2.3.4".parse().unwrap();
        assert_eq!(canonical_ip(mapped), "1.2.3.4".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(canonical_ip(v6), v6);
    }
}
