//! Live events for `GET /api/v1/events` (Server-Sent Events): torrents added, updated and
//! removed, counts changed (coalesced: at most one event per torrent per second), totals.
//!
//! Events are numbered and kept in a bounded history, so a client that reconnects with
//! `Last-Event-ID` gets what it missed (or a `reset` when that is older than the history). Each
//! event is written once, as its SSE frame; the event loops copy frames to their subscribers
//! (`net::server`), woken through `notify`. Nothing here blocks an announce: announces only mark a
//! torrent whose counts changed ([`crate::store::swarm::Swarm::take_changed`]), and the once-a-
//! second [`Events::tick`] turns those marks into events.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use crate::protocol::ids::InfoHash;
use crate::store::swarm::Swarm;

/// The media type of the stream.
pub const STREAM_TYPE: &str = "text/event-stream";
/// Events kept for clients that reconnect.
pub const HISTORY: usize = 4096;
/// A heartbeat (an SSE comment) goes out this often, in ticks, so proxies keep the stream open.
pub const HEARTBEAT_TICKS: u64 = 15;
/// The frame a subscriber is sent when the events it asks for are older than the history: the
/// client should fetch the state again.
pub const RESET: &[u8] = b"event: reset\ndata: {}\n\n";
/// A heartbeat frame.
pub const HEARTBEAT: &[u8] = b": heartbeat\n\n";
/// Sent first on every stream: how long a client waits before reconnecting.
pub const RETRY: &[u8] = b"retry: 3000\n\n";

struct Stored {
    id: u64,
    /// The torrent of a `counts` event: subscribers that follow some torrents only skip others'.
    counts_of: Option<InfoHash>,
    frame: Vec<u8>,
}

/// The start of a subscriber's stream: after which event, and which torrents' counts it follows
/// (`None`: every torrent's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub after: u64,
    /// Sorted.
    pub only: Option<Vec<InfoHash>>,
}

/// Most torrents one subscriber may follow by name (a page of a listing is 50 to 200).
pub const MAX_FOLLOWED: usize = 200;

pub struct Events {
    history: Mutex<VecDeque<Stored>>,
    /// The id of the newest event (0: none yet); read without the lock by the event loops.
    newest: AtomicU64,
    /// Counts heartbeats; an event loop that sees it move writes one to each subscriber.
    heartbeats: AtomicU64,
    ticks: AtomicU64,
    subscribers: AtomicUsize,
    max_subscribers: usize,
    /// Wakes every event loop (set once the server runs).
    notify: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// The last totals sent, so an unchanged tracker sends none.
    last_totals: Mutex<(usize, usize, usize)>,
}

/// Why a subscription is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Full {
    pub max: usize,
}

impl Events {
    pub fn new(max_subscribers: usize) -> Events {
        Events {
            history: Mutex::new(VecDeque::with_capacity(64)),
            newest: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            subscribers: AtomicUsize::new(0),
            max_subscribers,
            notify: OnceLock::new(),
            last_totals: Mutex::new((usize::MAX, 0, 0)),
        }
    }

    /// How the event loops are woken when there is something to send.
    pub fn set_notify(&self, notify: Box<dyn Fn() + Send + Sync>) {
        let _ = self.notify.set(notify);
    }

    fn wake(&self) {
        if let Some(notify) = self.notify.get() {
            notify();
        }
    }

    /// Numbers and keeps an event of `kind` with `data`, and wakes the event loops.
    pub fn publish(&self, kind: &str, data: &Value) {
        self.publish_all([(kind, None, data.clone())]);
    }

    /// Several events at once, with one wake; a `counts` event names its torrent.
    fn publish_all<'a>(
        &self,
        events: impl IntoIterator<Item = (&'a str, Option<InfoHash>, Value)>,
    ) {
        let mut published = false;
        {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            for (kind, counts_of, data) in events {
                let id = self.newest.load(Ordering::Relaxed) + 1;
                let frame = format!("id: {id}\nevent: {kind}\ndata: {data}\n\n").into_bytes();
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(Stored {
                    id,
                    counts_of,
                    frame,
                });
                self.newest.store(id, Ordering::Release);
                published = true;
            }
        }
        if published {
            self.wake();
        }
    }

    /// The id of the newest event.
    pub fn newest(&self) -> u64 {
        self.newest.load(Ordering::Acquire)
    }

    /// How many heartbeats there have been.
    pub fn heartbeats(&self) -> u64 {
        self.heartbeats.load(Ordering::Relaxed)
    }

    /// Appends to `out` the frames of the events after `after` (with `only`, the counts of those
    /// torrents only); a [`RESET`] first when some of them have left the history. Returns the id
    /// of the last event looked at.
    pub fn write_since(&self, after: u64, only: Option<&[InfoHash]>, out: &mut Vec<u8>) -> u64 {
        let newest = self.newest();
        if after >= newest {
            return newest.max(after);
        }
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = history.front().map_or(newest + 1, |e| e.id);
        if after + 1 < oldest {
            out.extend_from_slice(RESET);
        }
        let start = history.partition_point(|e| e.id <= after);
        let mut last = after;
        for event in history.range(start..) {
            last = event.id;
            if let (Some(only), Some(hash)) = (only, &event.counts_of) {
                if only.binary_search(hash).is_err() {
                    continue;
                }
            }
            out.extend_from_slice(&event.frame);
        }
        last
    }

    /// Takes a subscriber's place, or says the cap (`--max-event-clients`) is reached.
    pub fn subscribe(&self) -> Result<(), Full> {
        let max = self.max_subscribers;
        self.subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| Full { max })
    }

    /// Gives a subscriber's place back (its connection closed).
    pub fn unsubscribe(&self) {
        let _ = self
            .subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Once a second: an event for each registered torrent whose counts changed, the totals if
    /// they changed, and every [`HEARTBEAT_TICKS`] a heartbeat.
    pub fn tick(&self, swarm: &Swarm, totals: impl FnOnce() -> (usize, usize, usize)) {
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let changed = swarm.take_changed();
        let mut events: Vec<(&str, Option<InfoHash>, Value)> = changed
            .into_iter()
            .map(|(hash, counts)| {
                (
                    "counts",
                    Some(hash),
                    json!({
                        "info_hash": hash.to_hex(),
                        "seeders": counts.complete,
                        "leechers": counts.incomplete,
                        "completed": counts.downloaded,
                    }),
                )
            })
            .collect();
        if !events.is_empty() || tick % HEARTBEAT_TICKS == 1 {
            let totals = totals();
            let mut last = self.last_totals.lock().unwrap_or_else(|p| p.into_inner());
            if *last != totals {
                *last = totals;
                let (torrents, seeders, leechers) = totals;
                events.push((
                    "totals",
                    None,
                    json!({ "torrents": torrents, "seeders": seeders, "leechers": leechers }),
                ));
            }
        }
        self.publish_all(events);
        if tick.is_multiple_of(HEARTBEAT_TICKS) {
            self.heartbeats.fetch_add(1, Ordering::Relaxed);
            self.wake();
        }
    }
}

/// The torrents a subscriber follows: `info_hash=<40 hex>` parameters (none: all of them).
pub fn followed(query: &str) -> Result<Option<Vec<InfoHash>>, String> {
    let mut only = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key == "info_hash" {
            let hash = InfoHash::from_hex(&value).map_err(|_| {
                format!(
                    "info_hash: {:?} is not 40 hex characters",
                    crate::api::access::short(&value)
                )
            })?;
            only.push(hash);
        }
    }
    if only.len() > MAX_FOLLOWED {
        return Err(format!(
            "info_hash: at most {MAX_FOLLOWED} torrents; leave it out to follow all"
        ));
    }
    only.sort();
    only.dedup();
    Ok((!only.is_empty()).then_some(only))
}

/// The event id a reconnecting client asks to continue after (`Last-Event-ID`), if it is one.
pub fn last_event_id(header: Option<&str>) -> Option<u64> {
    header?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ids::InfoHash;
    use crate::protocol::{AnnounceRequest, Event, PeerStyle};
    use crate::store::info::InfoUpdate;
    use crate::store::swarm::SwarmConfig;

    fn text(out: &[u8]) -> String {
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn a_reconnecting_client_gets_what_it_missed_or_a_reset() {
        let events = Events::new(10);
        for n in 0..3 {
            events.publish("added", &json!({ "n": n }));
        }
        let mut out = Vec::new();
        assert_eq!(events.write_since(1, None, &mut out), 3);
        assert_eq!(
            text(&out),
            "id: 2\nevent: added\ndata: {\"n\":1}\n\nid: 3\nevent: added\ndata: {\"n\":2}\n\n"
        );
        let mut none = Vec::new();
        assert_eq!(events.write_since(3, None, &mut none), 3);
        assert!(none.is_empty());
        for n in 0..HISTORY {
            events.publish("added", &json!({ "n": n }));
        }
        let mut old = Vec::new();
        events.write_since(1, None, &mut old);
        assert!(
            text(&old).starts_with("event: reset\n"),
            "too old: start again"
        );
        assert_eq!(text(&old).matches("id: ").count(), HISTORY);
    }

    #[test]
    fn subscribers_are_capped() {
        let events = Events::new(2);
        assert!(events.subscribe().is_ok() && events.subscribe().is_ok());
        assert_eq!(events.subscribe(), Err(Full { max: 2 }));
        events.unsubscribe();
        assert!(events.subscribe().is_ok());
    }

    #[test]
    fn count_changes_are_coalesced_into_one_event_per_torrent_per_tick() {
        let swarm = Swarm::new(SwarmConfig::DEFAULT);
        let hash = InfoHash([9; 20]);
        swarm.register(hash, InfoUpdate::default(), 1);
        let events = Events::new(10);
        for port in 1..=5u16 {
            let req = AnnounceRequest {
                info_hash: hash,
                peer_id: crate::protocol::ids::PeerId([port as u8; 20]),
                addr: std::net::SocketAddr::from(([10, 0, 0, 1], port)),
                uploaded: 0,
                downloaded: 0,
                left: 1,
                event: Event::Started,
                numwant: None,
                style: PeerStyle::Compact,
            };
            swarm.announce(&req, 0, 2).unwrap();
        }
        events.tick(&swarm, || swarm.counts());
        let mut followed = Vec::new();
        events.write_since(0, Some(&[InfoHash([1; 20])]), &mut followed);
        assert!(
            !text(&followed).contains("event: counts"),
            "another torrent's counts"
        );
        let mut out = Vec::new();
        events.write_since(0, None, &mut out);
        let out = text(&out);
        assert_eq!(out.matches("event: counts").count(), 1, "{out}");
        assert!(out.contains("\"leechers\":5"), "{out}");
        assert!(out.contains("event: totals"), "{out}");
        let before = events.newest();
        events.tick(&swarm, || swarm.counts());
        assert_eq!(events.newest(), before, "nothing changed, nothing sent");
    }
}
