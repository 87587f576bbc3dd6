//! Command-line flags as clap sees them. Converted once into a validated [`crate::config::Config`].

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "tinytracker",
    version,
    about = "A small private BitTorrent tracker with single-file JSON state",
    long_about = "A small BitTorrent tracker (BEP 3/7/23/48) that keeps its state in one JSON file.\n\
                  Every flag can also be set with the environment variable shown."
)]
pub struct Cli {
    /// Address to listen on; repeat for several (e.g. 0.0.0.0:6969 and [::]:6969). Port 0 picks a free port.
    #[arg(
        long = "bind",
        value_name = "ADDR",
        env = "TINYTRACKER_BIND",
        value_delimiter = ',',
        default_value = "0.0.0.0:6969"
    )]
    pub bind: Vec<String>,

    /// JSON file holding torrents, peers and counters; created on the first save.
    #[arg(
        long,
        value_name = "PATH",
        env = "TINYTRACKER_STATE_FILE",
        default_value = "tracker_state.json"
    )]
    pub state_file: PathBuf,

    /// Seconds between automatic saves; 0 saves only on /save_state, /shutdown and exit.
    #[arg(
        long,
        value_name = "SECS",
        env = "TINYTRACKER_SAVE_INTERVAL",
        default_value_t = 300
    )]
    pub save_interval: u64,

    /// Announce interval sent to clients, in seconds (spread by up to ±5 %).
    #[arg(
        long,
        value_name = "SECS",
        env = "TINYTRACKER_INTERVAL",
        default_value_t = 1800
    )]
    pub interval: u32,

    /// Minimum announce interval sent to clients, in seconds [default: half the interval].
    #[arg(long, value_name = "SECS", env = "TINYTRACKER_MIN_INTERVAL")]
    pub min_interval: Option<u32>,

    /// Seconds without an announce after which a peer is dropped; must exceed the interval [default: twice the interval].
    #[arg(long, value_name = "SECS", env = "TINYTRACKER_PEER_TIMEOUT")]
    pub peer_timeout: Option<u64>,

    /// Peers returned when a client does not send numwant (never more than --max-numwant).
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_DEFAULT_NUMWANT",
        default_value_t = 50
    )]
    pub default_numwant: usize,

    /// Most peers returned in one announce, whatever numwant asks.
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_MAX_NUMWANT",
        default_value_t = 200
    )]
    pub max_numwant: usize,

    /// Request-handling threads per listening address [default: twice the number of CPUs].
    #[arg(long, value_name = "N", env = "TINYTRACKER_WORKERS")]
    pub workers: Option<usize>,

    /// Token that lets non-loopback callers use the admin endpoints (Authorization: Bearer TOKEN, or ?token=).
    /// Without it, only loopback callers may use them.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TINYTRACKER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Reverse proxy whose right-most X-Forwarded-For entry is taken as the client address; repeatable (CIDR or IP).
    #[arg(
        long,
        value_name = "CIDR",
        env = "TINYTRACKER_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,

    /// Log level: error, warn, info, debug (one line per request) or trace.
    #[arg(
        long,
        value_name = "LEVEL",
        env = "TINYTRACKER_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,

    /// Also append the log to this file (stderr always gets it).
    #[arg(long, value_name = "PATH", env = "TINYTRACKER_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}
