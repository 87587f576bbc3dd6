//! Counters for `/metrics` (Prometheus text format 0.0.4): requests by endpoint and outcome,
//! announce latency, saves, open connections. Lock-free atomics, bumped on the request path;
//! the swarm and user gauges are read when `/metrics` is asked for.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// What `/metrics` labels a request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Announce,
    Scrape,
    Stats,
    Metrics,
    Admin,
    Other,
}

const ENDPOINTS: [(Endpoint, &str); 6] = [
    (Endpoint::Announce, "announce"),
    (Endpoint::Scrape, "scrape"),
    (Endpoint::Stats, "stats"),
    (Endpoint::Metrics, "metrics"),
    (Endpoint::Admin, "admin"),
    (Endpoint::Other, "other"),
];

/// How a request ended: answered, refused (a bencoded failure reason or a 4xx), or failed (5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
    Error,
}

const OUTCOMES: [(Outcome, &str); 3] = [
    (Outcome::Ok, "ok"),
    (Outcome::Refused, "refused"),
    (Outcome::Error, "error"),
];

/// Upper bounds of the announce latency buckets, in microseconds.
const BUCKETS_US: [u64; 11] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
];

/// What became of a UDP datagram, for `tinytracker_udp_packets_total{case=…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpCase {
    Connect,
    Announce,
    Scrape,
    /// Answered with an error packet: a failure an HTTP announce or scrape has too.
    Refused,
    /// An expired, altered or foreign connection id: an error packet no larger than the request.
    BadConnectionId,
    /// A request that cannot be read (short announce, bad scrape, unknown action): an error packet.
    Malformed,
    /// Shorter than any request: dropped.
    TooShort,
    /// A connect without the protocol's magic number: dropped.
    NotBep15,
    /// An answer the socket did not take.
    SendFailed,
}

pub const UDP_CASES: [(UdpCase, &str); 9] = [
    (UdpCase::Connect, "connect"),
    (UdpCase::Announce, "announce"),
    (UdpCase::Scrape, "scrape"),
    (UdpCase::Refused, "refused"),
    (UdpCase::BadConnectionId, "bad_connection_id"),
    (UdpCase::Malformed, "malformed"),
    (UdpCase::TooShort, "too_short"),
    (UdpCase::NotBep15, "not_bep15"),
    (UdpCase::SendFailed, "send_failed"),
];

impl UdpCase {
    /// Its place in [`UDP_CASES`] (and in a worker's local counters).
    pub fn index(self) -> usize {
        UDP_CASES.iter().position(|(c, _)| *c == self).unwrap_or(0)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    udp: [AtomicU64; UDP_CASES.len()],
    requests: [[AtomicU64; 3]; 6],
    announce_buckets: [AtomicU64; BUCKETS_US.len()],
    announce_count: AtomicU64,
    announce_micros_sum: AtomicU64,
    /// Connections open right now, across all workers.
    pub open_connections: AtomicUsize,
    refused_connections: AtomicU64,
    last_save_unix: AtomicU64,
    last_save_micros: AtomicU64,
    last_save_bytes: AtomicU64,
    save_failures: AtomicU64,
}

/// Gauges read from the swarm and users when `/metrics` is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub torrents: usize,
    pub seeders: usize,
    pub leechers: usize,
    pub users: usize,
}

impl Metrics {
    pub fn request(&self, endpoint: Endpoint, outcome: Outcome) {
        let e = ENDPOINTS
            .iter()
            .position(|(x, _)| *x == endpoint)
            .unwrap_or(5);
        let o = OUTCOMES
            .iter()
            .position(|(x, _)| *x == outcome)
            .unwrap_or(2);
        self.requests[e][o].fetch_add(1, Relaxed);
    }

    /// Time from a complete request to its answer, for announces.
    pub fn announce_took(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = BUCKETS_US.iter().position(|&bound| micros <= bound) {
            self.announce_buckets[bucket].fetch_add(1, Relaxed);
        }
        self.announce_count.fetch_add(1, Relaxed);
        self.announce_micros_sum.fetch_add(micros, Relaxed);
    }

    /// Adds a UDP worker's counts (by [`UdpCase::index`]), once per batch of datagrams.
    pub fn add_udp(&self, counts: &[u64; UDP_CASES.len()]) {
        for (total, &n) in self.udp.iter().zip(counts) {
            if n > 0 {
                total.fetch_add(n, Relaxed);
            }
        }
    }

    pub fn connection_refused(&self) {
        self.refused_connections.fetch_add(1, Relaxed);
    }

    pub fn saved(&self, now_unix: u64, took: Duration, bytes: u64) {
        self.last_save_unix.store(now_unix, Relaxed);
        self.last_save_micros
            .store(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.last_save_bytes.store(bytes, Relaxed);
    }

    pub fn save_failed(&self) {
        self.save_failures.fetch_add(1, Relaxed);
    }

    /// The exposition, Prometheus text format 0.0.4.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        self.render_requests(&mut out);
        self.render_announce_latency(&mut out);
        let _ = writeln!(
            out,
            "# HELP tinytracker_udp_packets_total UDP datagrams, by what became of them.\n\
             # TYPE tinytracker_udp_packets_total counter"
        );
        for ((_, case), n) in UDP_CASES.iter().zip(&self.udp) {
            let n = n.load(Relaxed);
            let _ = writeln!(out, "tinytracker_udp_packets_total{{case=\"{case}\"}} {n}");
        }
        let values: [(&str, &str, String); 10] = [
            (
                "torrents",
                "Torrents the tracker knows.",
                gauges.torrents.to_string(),
            ),
            (
                "seeders",
                "Live seeders, all torrents.",
                gauges.seeders.to_string(),
            ),
            (
                "leechers",
                "Live leechers, all torrents.",
                gauges.leechers.to_string(),
            ),
            (
                "users",
                "Users (private tracker).",
                gauges.users.to_string(),
            ),
            (
                "open_connections",
                "Client connections open now.",
                self.open_connections.load(Relaxed).to_string(),
            ),
            (
                "last_save_timestamp_seconds",
                "Unix time of the last successful save (0: none yet).",
                self.last_save_unix.load(Relaxed).to_string(),
            ),
            (
                "last_save_duration_seconds",
                "How long the last successful save took.",
                (self.last_save_micros.load(Relaxed) as f64 / 1e6).to_string(),
            ),
            (
                "last_save_bytes",
                "Size of the state file the last save wrote.",
                self.last_save_bytes.load(Relaxed).to_string(),
            ),
            (
                "save_failures_total",
                "Saves that failed (the previous file was kept).",
                self.save_failures.load(Relaxed).to_string(),
            ),
            (
                "refused_connections_total",
                "Connections closed on arrival because --max-connections were open.",
                self.refused_connections.load(Relaxed).to_string(),
            ),
        ];
        for (name, help, value) in values {
            // Prometheus names counters `_total`; the rest here are gauges.
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP tinytracker_{name} {help}\n# TYPE tinytracker_{name} {kind}\ntinytracker_{name} {value}"
            );
        }
        out
    }

    /// `tinytracker_requests_total`, by endpoint and outcome.
    fn render_requests(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP tinytracker_requests_total Requests answered, by endpoint and outcome \
             (refused: failure reason or 4xx; error: 5xx).\n# TYPE tinytracker_requests_total counter"
        );
        for (e, (_, endpoint)) in ENDPOINTS.iter().enumerate() {
            for (o, (_, outcome)) in OUTCOMES.iter().enumerate() {
                let n = self.requests[e][o].load(Relaxed);
                let _ = writeln!(
                    out,
                    "tinytracker_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
    }

    /// The announce latency histogram.
    fn render_announce_latency(&self, out: &mut String) {
        let name = "tinytracker_announce_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a complete announce request to its answer.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS_US.iter().zip(&self.announce_buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let count = self.announce_count.load(Relaxed);
        let sum = self.announce_micros_sum.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_what_happened() {
        let metrics = Metrics::default();
        metrics.request(Endpoint::Announce, Outcome::Ok);
        metrics.request(Endpoint::Announce, Outcome::Refused);
        metrics.request(Endpoint::Announce, Outcome::Ok);
        metrics.announce_took(Duration::from_micros(70));
        metrics.announce_took(Duration::from_millis(3));
        metrics.saved(1_700_000_000, Duration::from_millis(250), 1234);
        metrics.save_failed();
        let mut udp = [0; UDP_CASES.len()];
        udp[UdpCase::BadConnectionId.index()] = 3;
        metrics.add_udp(&udp);
        let text = metrics.render(Gauges {
            torrents: 2,
            seeders: 3,
            leechers: 4,
            users: 1,
        });
        for line in [
            "tinytracker_requests_total{endpoint=\"announce\",outcome=\"ok\"} 2",
            "tinytracker_requests_total{endpoint=\"announce\",outcome=\"refused\"} 1",
            "tinytracker_announce_duration_seconds_bucket{le=\"0.0001\"} 1",
            "tinytracker_announce_duration_seconds_bucket{le=\"0.005\"} 2",
            "tinytracker_announce_duration_seconds_bucket{le=\"+Inf\"} 2",
            "tinytracker_announce_duration_seconds_count 2",
            "tinytracker_seeders 3",
            "tinytracker_last_save_timestamp_seconds 1700000000",
            "tinytracker_last_save_duration_seconds 0.25",
            "tinytracker_save_failures_total 1",
            "tinytracker_udp_packets_total{case=\"bad_connection_id\"} 3",
            "tinytracker_udp_packets_total{case=\"connect\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
