//! The shared application: config, swarm store, saving and the shutdown signal.
//! One `Arc<App>` is shared by the workers, the maintenance thread and the signal handler.

use crate::protocol::ids::InfoHash;
use crate::store::info::{truncated, InfoUpdate};
use crate::store::torrent_files::TorrentFiles;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{error, info, warn};

use crate::api::config::Config;
use crate::api::events::Events;
use crate::api::limits;
use crate::api::metrics::Metrics;
use crate::api::shared::{parse_counts, Shared};
use crate::store::redis::keys;
use crate::store::state;
use crate::store::swarm::Swarm;
use crate::store::users::Users;

/// How often expired peers are swept out when no save is due sooner.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub struct App {
    pub config: Config,
    /// The shared store (`--store redis://…`); `None`: the state file.
    pub shared: Option<Shared>,
    pub swarm: Swarm,
    pub users: Users,
    pub metrics: Metrics,
    /// Stored `.torrent` files, beside the state file.
    pub files: TorrentFiles,
    /// Live events for `/api/v1/events`.
    pub events: Events,
    /// Failed sign-ins, per name and per address.
    pub sign_in_limits: limits::Limits,
    /// The state file on disk was written by the Python original and has not been backed up yet.
    legacy_file_pending: Mutex<bool>,
    /// Held for the whole of a save, so saves are written in the order they were taken; inside,
    /// the change count of the state the last successful save wrote (`None`: unknown).
    save_lock: Mutex<Option<u64>>,
    shutdown: Mutex<bool>,
    shutdown_signal: Condvar,
    /// The 15-minute slot of the last peers-over-time sample.
    sampled_slot: Mutex<u64>,
    shutting_down: AtomicBool,
}

/// Wall-clock Unix seconds (0 before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What one save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveReport {
    pub torrents: usize,
    pub peers: usize,
    pub bytes: u64,
    pub millis: u128,
}

impl App {
    pub fn new(
        config: Config,
        swarm: Swarm,
        users: Users,
        loaded_legacy_file: bool,
        shared: Option<Shared>,
    ) -> App {
        App {
            files: match &shared {
                Some(shared) => TorrentFiles::shared(std::sync::Arc::clone(&shared.store)),
                None => TorrentFiles::beside(&config.state_file),
            },
            shared,
            events: Events::new(config.max_event_clients),
            sign_in_limits: limits::Limits::default(),
            config,
            swarm,
            users,
            metrics: Metrics::default(),
            legacy_file_pending: Mutex::new(loaded_legacy_file),
            save_lock: Mutex::new(None),
            shutdown: Mutex::new(false),
            sampled_slot: Mutex::new(0),
            shutdown_signal: Condvar::new(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Wall-clock Unix seconds.
    pub fn now(&self) -> u64 {
        unix_now()
    }

    /// How often the state may have changed so far; equal counts mean nothing changed between.
    fn changes(&self) -> u64 {
        self.swarm.changes() + self.users.changes()
    }

    /// Marks the state as it is now as the one on disk (after a load), so a timed save does not
    /// rewrite a file that already holds it.
    pub fn mark_saved(&self) {
        *self.save_lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.changes());
    }

    /// The timed save: skipped when nothing changed since the last save. Returns whether it wrote.
    fn save_if_changed(&self) -> Result<bool, String> {
        let unchanged =
            *self.save_lock.lock().unwrap_or_else(|p| p.into_inner()) == Some(self.changes());
        if unchanged {
            log::debug!(
                "nothing changed since the last save; not rewriting {}",
                self.config.state_file.display()
            );
            return Ok(false);
        }
        self.save().map(|_| true)
    }

    /// Snapshots the swarm (one shard lock at a time), then serializes and writes outside any lock.
    pub fn save(&self) -> Result<SaveReport, String> {
        if self.shared.is_some() {
            // Every change is in the store the moment it is made.
            return Ok(SaveReport {
                torrents: 0,
                peers: 0,
                bytes: 0,
                millis: 0,
            });
        }
        let mut saved = self.save_lock.lock().unwrap_or_else(|p| p.into_inner());
        // Counted before the copy: a change made while it is taken makes the next timed save write.
        let changes = self.changes();
        let started = Instant::now();
        let now = self.now();
        // Users first: an announce racing the save then leaves at most its own credit unsaved,
        // never a peer baseline older than a total that already includes it (a double credit).
        let (users, revoked) = self.users.snapshot();
        let access = self.users.access();
        let pending = self.swarm.pending();
        let path = &self.config.state_file;
        self.keep_legacy_file(path)?;
        // One shard at a time: copied under its lock, written, dropped.
        let mut shard = 0;
        let mut next_shard = || {
            let batch = self.swarm.snapshot_shard(shard, now);
            shard += 1;
            batch
        };
        let mut contents = state::Contents {
            torrents: &mut next_shard,
            users: &users,
            revoked: &revoked,
            pending: &pending,
            saved_at_unix: now,
            history: Some(self.swarm.totals_history()),
            access: &access,
        };
        let (bytes, torrents, peers) = state::save(path, &mut contents).map_err(|e| {
            self.metrics.save_failed();
            let message = format!("saving {} failed: {e}", path.display());
            error!("{message}; the previous file is untouched");
            message
        })?;
        self.metrics.saved(now, started.elapsed(), bytes);
        *saved = Some(changes);
        let report = SaveReport {
            torrents,
            peers,
            bytes,
            millis: started.elapsed().as_millis(),
        };
        info!(
            "saved {} torrents, {} peers to {} ({} bytes, {} ms)",
            report.torrents,
            report.peers,
            path.display(),
            report.bytes,
            report.millis
        );
        Ok(report)
    }

    fn keep_legacy_file(&self, path: &Path) -> Result<(), String> {
        let mut pending = self
            .legacy_file_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !*pending || !path.exists() {
            return Ok(());
        }
        let copy = state::keep_legacy_copy(path).map_err(|e| {
            self.metrics.save_failed();
            let message = format!(
                "keeping a copy of the legacy state file {} failed: {e}",
                path.display()
            );
            error!("{message}; not saving over it");
            message
        })?;
        info!("kept the Python tracker's state file as {}", copy.display());
        *pending = false;
        Ok(())
    }

    /// Starts the graceful shutdown: workers stop, the state is saved, the process exits 0.
    pub fn request_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let mut flag = self.shutdown.lock().unwrap_or_else(|p| p.into_inner());
        *flag = true;
        self.shutdown_signal.notify_all();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Blocks up to `timeout` (forever if `None`); returns true once shutdown was requested.
    pub fn wait_for_shutdown(&self, timeout: Option<Duration>) -> bool {
        let flag = self.shutdown.lock().unwrap_or_else(|p| p.into_inner());
        match timeout {
            None => *self
                .shutdown_signal
                .wait_while(flag, |down| !*down)
                .unwrap_or_else(|p| p.into_inner()),
            Some(timeout) => {
                let (flag, _) = self
                    .shutdown_signal
                    .wait_timeout_while(flag, timeout, |down| !*down)
                    .unwrap_or_else(|p| p.into_inner());
                *flag
            }
        }
    }

    /// The events loop: once a second, counts that changed become live events, until shutdown.
    pub fn run_events(&self) {
        while !self.wait_for_shutdown(Some(Duration::from_secs(1))) {
            self.events.tick(&self.swarm, || self.counts());
        }
    }

    /// Compares the stored-files directory with the index. A file of a registered torrent that is
    /// not marked stored (a state file that went through the Python tracker's format and back)
    /// is its file again, once it parses to that hash. What still does not match is logged:
    /// torrents marked stored whose file is missing (their downloads answer 404 until it is
    /// uploaded again), and files no torrent claims (left in place). Returns (missing, unclaimed).
    pub fn check_stored_files(&self) -> (usize, usize) {
        let mut files = match self.files.list() {
            Ok(files) => files,
            Err(e) => {
                warn!(
                    "cannot read the stored .torrent files in {}: {e}",
                    self.files.dir().display()
                );
                return (0, 0);
            }
        };
        files.sort();
        let mut stored = self
            .swarm
            .select(|hash, info, _, _| info.stored.then_some(*hash));
        stored.sort();
        let missing: Vec<_> = stored
            .iter()
            .filter(|h| files.binary_search(h).is_err())
            .collect();
        let mut unclaimed: Vec<_> = files
            .iter()
            .filter(|h| stored.binary_search(h).is_err())
            .collect();
        unclaimed.retain(|hash| !self.relink_stored_file(hash));
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(5).map(|h| h.to_hex()).collect();
            warn!(
                "{} torrents are marked stored but have no file in {} (their downloads answer 404 until uploaded again): {}{}",
                missing.len(),
                self.files.dir().display(),
                shown.join(", "),
                if missing.len() > 5 { ", …" } else { "" }
            );
        }
        if !unclaimed.is_empty() {
            info!(
                "{} files in {} belong to no registered torrent; left in place",
                unclaimed.len(),
                self.files.dir().display()
            );
        }
        (missing.len(), unclaimed.len())
    }

    /// Marks a registered torrent stored when the file named by its hash is its own: true if so.
    fn relink_stored_file(&self, hash: &InfoHash) -> bool {
        let Some((_, _, true)) = self.swarm.info(hash) else {
            return false;
        };
        let own = self.files.get(hash).ok().and_then(|bytes| {
            let meta = crate::protocol::metainfo::parse(&bytes).ok()?;
            let named = meta.v1.or_else(|| meta.v2.as_ref().map(truncated))?;
            (named == *hash).then_some(())
        });
        if own.is_none() {
            return false;
        }
        let update = InfoUpdate {
            stored: Some(true),
            ..InfoUpdate::default()
        };
        let relinked = self.swarm.update(hash, update).is_some();
        if relinked {
            info!("{hash}: its stored .torrent file is served again");
        }
        relinked
    }

    /// Takes a peers-over-time sample if none was taken in this 15-minute slot (at start, and
    /// then as each slot begins).
    pub fn sample_history(&self) {
        let now = self.now();
        let slot = now / crate::store::history::FINE_STEP;
        let mut last = self.sampled_slot.lock().unwrap_or_else(|p| p.into_inner());
        if *last != slot {
            let Some(shared) = &self.shared else {
                *last = slot;
                self.swarm.sample_history(now);
                return;
            };
            // One instance samples each slot; the others load what it wrote.
            match shared.sample_history(&self.swarm, slot, now) {
                Ok(_) => *last = slot,
                Err(e) => warn!("peers-over-time sample not taken: {e}"),
            }
        }
    }

    /// With a shared store, settles a pending registration that names `hash` (its first announce
    /// or scrape) in the store, before the store serves it. Cheap when nothing is pending.
    pub fn claim_pending(&self, hash: &InfoHash) -> Result<(), crate::store::redis::Unavailable> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        if !self.swarm.is_pending(hash) {
            return Ok(());
        }
        let now = self.now();
        let write = shared.begin(&self.swarm, &self.users, now)?;
        // Another instance may have settled it meanwhile (the copy was just brought up to date).
        if !self.swarm.is_pending(hash) {
            write.abandon();
            return Ok(());
        }
        self.swarm.claim_pending(hash, now);
        write.commit(
            &self.swarm,
            &self.users,
            crate::api::shared::Writes::Index,
            Some(*hash),
            now,
        )
    }

    /// (torrents, seeders, leechers) of the whole tracker: the shared store's when there is one
    /// (this instance's copy holds only registered torrents), else this process's.
    pub fn counts(&self) -> (usize, usize, usize) {
        if let Some(shared) = &self.shared {
            match shared.store.totals() {
                Ok(counts) => return counts,
                Err(e) => warn!("{e}; counting registered torrents only"),
            }
        }
        self.swarm.counts()
    }

    /// Brings this instance's copy of the shared store up to date (a no-op with a state file);
    /// what another instance changed in the index becomes a live event here too. With
    /// `accounting`, users' totals are read again as well (for a request that shows them).
    pub fn sync(&self, accounting: bool) -> Result<(), crate::store::redis::Unavailable> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let applied = shared.sync(&self.swarm, &self.users, self.now())?;
        if accounting {
            shared.refresh_accounting(&self.users)?;
        }
        for entry in applied.iter().filter(|e| !shared.is_own(e)) {
            if entry.kind != "torrent" {
                continue;
            }
            let Ok(hash) = InfoHash::from_hex(&entry.key) else {
                continue;
            };
            match self.swarm.entry(&hash) {
                Some((hash, info, counts)) => {
                    let found = crate::api::catalog::Found { hash, info, counts };
                    let json = crate::api::catalog::summary_json(&found);
                    self.events.publish("updated", &json);
                }
                None => self
                    .events
                    .publish("removed", &serde_json::json!({ "info_hash": entry.key })),
            }
        }
        Ok(())
    }

    /// The subscriber loop of a shared store: the counts the announce scripts publish, and
    /// changes of records, as they happen; after a lost connection, everything is read again.
    pub fn run_subscriber(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let mut lost = false;
        while !self.is_shutting_down() {
            let mut connection = match shared.store.dial(Duration::from_millis(500)) {
                Ok(c) => c,
                Err(e) => {
                    if !lost {
                        warn!("{e}; retrying every second");
                        lost = true;
                    }
                    if self.wait_for_shutdown(Some(Duration::from_secs(1))) {
                        return;
                    }
                    continue;
                }
            };
            let mut pubsub = connection.as_pubsub();
            if pubsub.subscribe(&[keys::COUNTS, keys::CHANGES]).is_err() {
                continue;
            }
            // Whatever happened while nobody listened.
            let caught_up = self
                .sync(false)
                .and_then(|()| shared.refresh_counts(&self.swarm, &self.swarm.registered()));
            if let Err(e) = caught_up {
                warn!("{e}");
                continue;
            }
            if lost {
                info!("the shared store at {} is back", shared.store.shown());
            }
            loop {
                if self.is_shutting_down() {
                    return;
                }
                let message = match pubsub.get_message() {
                    Ok(message) => message,
                    Err(e) if e.is_timeout() => continue,
                    Err(e) => {
                        warn!("lost the shared store's updates: {e}; reconnecting");
                        lost = true;
                        break;
                    }
                };
                if message.get_channel_name() == keys::COUNTS {
                    if let Some((hash, counts)) = parse_counts(message.get_payload_bytes()) {
                        self.swarm.set_shared_counts(&hash, counts);
                    }
                } else if let Err(e) = self.sync(false) {
                    warn!("{e}");
                }
            }
        }
    }

    /// Expires peers in the shared store's swarms that are due (any instance may; the script
    /// makes it safe to run at once from several).
    fn sweep_shared(&self, shared: &Shared) {
        let cutoff = self
            .now()
            .saturating_sub(self.config.swarm.peer_timeout_secs);
        let (mut swarms, mut peers) = (0, 0);
        loop {
            match shared.store.sweep(cutoff, 1000) {
                Ok((0, _)) => break,
                Ok((s, p)) => {
                    swarms += s;
                    peers += p;
                    if s < 1000 {
                        break;
                    }
                }
                Err(e) => {
                    warn!("expiring peers in the shared store: {e}");
                    break;
                }
            }
        }
        if peers > 0 {
            log::debug!("expired {peers} peers in {swarms} shared swarms");
        }
    }

    /// The maintenance loop: sweeps expired peers and saves on the timer, until shutdown.
    pub fn run_maintenance(&self) {
        let tick = self
            .config
            .save_every
            .map_or(SWEEP_EVERY, |every| every.min(SWEEP_EVERY));
        let mut last_save = Instant::now();
        while !self.wait_for_shutdown(Some(tick)) {
            self.sample_history();
            if let Some(shared) = &self.shared {
                self.sweep_shared(shared);
                continue;
            }
            let (peers, torrents) = self.swarm.sweep(self.now());
            if peers + torrents > 0 {
                log::debug!(
                    "swept {peers} expired peers and {torrents} unregistered torrents left empty"
                );
            }
            if let Some(every) = self.config.save_every {
                if last_save.elapsed() >= every {
                    match self.save_if_changed() {
                        Ok(_) => last_save = Instant::now(),
                        Err(e) => warn!("timed save failed, retrying in {} s: {e}", tick.as_secs()),
                    }
                }
            }
        }
    }
}
