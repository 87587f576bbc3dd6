//! Command-line flags as clap sees them. Converted once into a validated [`crate::api::config::Config`] by [`settings::config`].

pub mod admin_client;
pub mod operator;
pub mod register;
pub mod settings;

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::store::swarm::SwarmConfig;

#[derive(Debug, Parser)]
#[command(
    name = "tinytracker",
    version,
    about = "A small private BitTorrent tracker with single-file JSON state",
    long_about = "A small BitTorrent tracker (BEP 3/7/23/48) that keeps its state in one JSON file.\n\
                  Without a subcommand it serves; `user` and `torrent` manage a running tracker.\n\
                  Every flag can also be set with the environment variable shown.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Operator commands: they talk to a running tracker's admin API.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, rotate, disable, enable or remove users, or set their role.
    User {
        #[command(subcommand)]
        action: UserAction,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List, register or remove torrents.
    Torrent {
        #[command(subcommand)]
        action: TorrentAction,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Work on a state file directly (no running tracker needed).
    State {
        #[command(subcommand)]
        action: StateAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Write the state to a file: `state export --store redis://… OUT` writes a shared store's
    /// whole state as a state file (to switch back to one); `state export --legacy OUT` writes
    /// what the Python tracker loads (torrents, metadata, peers; not users, passkeys or
    /// completion counts).
    #[command(group(clap::ArgGroup::new("from").required(true).args(["legacy", "store"])))]
    Export {
        /// The Python/Flask tracker's tracker_state.json layout, from --state-file.
        #[arg(long)]
        legacy: bool,
        /// The shared store to export: redis://[:password@]host:port/db or rediss://.
        #[arg(
            long,
            value_name = "URL",
            env = "TINYTRACKER_STORE",
            hide_env_values = true
        )]
        store: Option<String>,
        /// Where to write; an existing file is not overwritten.
        out: PathBuf,
        /// The state file to read (save it first, or stop the tracker, for its latest state).
        #[arg(
            long,
            value_name = "PATH",
            env = "TINYTRACKER_STATE_FILE",
            default_value = "tracker_state.json"
        )]
        state_file: PathBuf,
    },
    /// Move a state file (and its stored .torrent files) into a shared store, to run several
    /// instances on it with --store.
    Import {
        /// The shared store: redis://[:password@]host:port/db or rediss://.
        #[arg(
            long,
            value_name = "URL",
            env = "TINYTRACKER_STORE",
            hide_env_values = true
        )]
        store: String,
        /// Delete the tracker state the store holds first (without it, a store that holds one
        /// is refused).
        #[arg(long)]
        replace: bool,
        /// The state file to read (stop the tracker first, so it is complete).
        #[arg(
            long,
            value_name = "PATH",
            env = "TINYTRACKER_STATE_FILE",
            default_value = "tracker_state.json"
        )]
        state_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user; prints the passkey, the announce URL, the API token and an invite link to
    /// hand out.
    Add {
        /// The new user's name: 1 to 64 of A-Z a-z 0-9 . _ -
        name: String,
    },
    /// Every user with their totals.
    List,
    /// Give a user a new passkey; the old one stops working at once.
    Rotate {
        /// The user whose passkey changes.
        name: String,
    },
    /// Refuse a user's announces until enabled again.
    Disable {
        /// The user to refuse.
        name: String,
    },
    /// Let a disabled user announce again (with the same passkey).
    Enable {
        /// The user to let in again.
        name: String,
    },
    /// Delete a user; their passkey stops working.
    Remove {
        /// The user to delete.
        name: String,
    },
    /// A new one-time invite link for a user to choose a password (valid 7 days; an older one
    /// stops working).
    Invite {
        /// The user to invite.
        name: String,
    },
    /// Give a user a role: member, uploader (uploads even without --user-uploads), moderator
    /// (edits and removes any torrent, disables users) or admin (everything).
    Role {
        /// The user whose role changes.
        name: String,
        /// member, uploader, moderator or admin.
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TorrentAction {
    /// Every torrent with its counts.
    List,
    /// Register a torrent by info hash (40 hex or 32 base32); see also add-torrent-info.
    Add {
        /// The torrent's info hash: 40 hex characters or 32 base32 (as in magnet links).
        info_hash: String,
        /// A name to show in listings and /stats.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a torrent and its peers.
    Remove {
        /// The torrent's info hash: 40 hex characters or 32 base32.
        info_hash: String,
    },
}

/// How operator commands reach the tracker.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The tracker's base URL.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "TINYTRACKER_URL",
        default_value = "http://localhost:6969",
        value_parser = crate::cli::admin_client::parse_tracker_url
    )]
    pub tracker: String,

    /// Admin token, needed when the tracker is not on this machine.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "TINYTRACKER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The server's flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; repeat, or separate with commas, for several (e.g. 0.0.0.0:6969,[::]:6969). Port 0 picks a free port.
    #[arg(
        long = "bind",
        value_name = "ADDR",
        env = "TINYTRACKER_BIND",
        value_delimiter = ',',
        default_value = "0.0.0.0:6969"
    )]
    pub bind: Vec<String>,

    /// UDP tracker (BEP 15) address; repeat, or separate with commas (e.g. 0.0.0.0:6969,[::]:6969). Port 0 picks a free port. Off unless given.
    #[arg(
        long = "udp-bind",
        value_name = "ADDR",
        env = "TINYTRACKER_UDP_BIND",
        value_delimiter = ','
    )]
    pub udp_bind: Vec<String>,

    /// HTTPS address (needs --tls-cert and --tls-key); repeat, or separate with commas. Port 0 picks a free port. --bind addresses keep serving plain HTTP.
    #[arg(
        long = "tls-bind",
        value_name = "ADDR",
        env = "TINYTRACKER_TLS_BIND",
        value_delimiter = ','
    )]
    pub tls_bind: Vec<String>,

    /// PEM certificate chain for --tls-bind (the server's certificate first); read again when the file changes.
    #[arg(long, value_name = "PEM", env = "TINYTRACKER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert; read again when the file changes.
    #[arg(long, value_name = "PEM", env = "TINYTRACKER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// JSON file holding torrents, peers and counters; created on the first save.
    #[arg(
        long,
        value_name = "PATH",
        env = "TINYTRACKER_STATE_FILE",
        default_value = "tracker_state.json"
    )]
    pub state_file: PathBuf,

    /// Keep the state in Redis instead of the state file, so several instances serve one tracker: redis://[:password@]host:port/db or rediss:// (TLS).
    #[arg(
        long,
        value_name = "URL",
        env = "TINYTRACKER_STORE",
        hide_env_values = true
    )]
    pub store: Option<String>,

    /// Seconds between automatic saves; 0 saves only on /save_state, /shutdown and exit.
    #[arg(
        long,
        value_name = "SECS",
        env = "TINYTRACKER_SAVE_INTERVAL",
        default_value_t = 300
    )]
    pub save_interval: u64,

    /// Announce interval sent to clients, in seconds (spread by up to ±5 %); 1 to 86400.
    #[arg(
        long,
        value_name = "SECS",
        env = "TINYTRACKER_INTERVAL",
        default_value_t = SwarmConfig::DEFAULT.interval_secs,
        value_parser = clap::value_parser!(u32).range(1..=86_400)
    )]
    pub interval: u32,

    /// Minimum announce interval sent to clients, in seconds [default: half the interval].
    #[arg(long, value_name = "SECS", env = "TINYTRACKER_MIN_INTERVAL",
          value_parser = clap::value_parser!(u32).range(0..=86_400))]
    pub min_interval: Option<u32>,

    /// Seconds without an announce after which a peer is dropped; must exceed the interval (at most a week) [default: twice the interval].
    #[arg(long, value_name = "SECS", env = "TINYTRACKER_PEER_TIMEOUT",
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub peer_timeout: Option<u64>,

    /// Peers returned when a client does not send numwant (never more than --max-numwant).
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_DEFAULT_NUMWANT",
        default_value_t = SwarmConfig::DEFAULT.default_numwant
    )]
    pub default_numwant: usize,

    /// Most peers returned in one announce, whatever numwant asks.
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_MAX_NUMWANT",
        default_value_t = SwarmConfig::DEFAULT.max_numwant
    )]
    pub max_numwant: usize,

    /// Worker threads; each runs an event loop over its connections [default: the number of CPUs].
    #[arg(long, value_name = "N", env = "TINYTRACKER_WORKERS")]
    pub workers: Option<usize>,

    /// Connections open at once; further ones are closed as they arrive. Idle connections are
    /// closed after 20 s, requests that take over 10 s to arrive are dropped.
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Connections one address may hold open at once (a trusted proxy is not limited); 0 = no limit.
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_MAX_CONNECTIONS_PER_IP",
        default_value_t = 64
    )]
    pub max_connections_per_ip: usize,

    /// Most torrents held; an announce that would add one more is refused (registering is not). 0 = no limit.
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_MAX_TORRENTS",
        default_value_t = SwarmConfig::DEFAULT.max_torrents
    )]
    pub max_torrents: usize,

    /// Peers one address may have in one torrent (different ports or users); 0 = no limit.
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_MAX_PEERS_PER_IP",
        default_value_t = SwarmConfig::DEFAULT.max_peers_per_ip
    )]
    pub max_peers_per_ip: usize,

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

    /// Networks whose callers may use the admin endpoints without the token; repeatable (CIDR or IP).
    #[arg(long, value_name = "CIDR", env = "TINYTRACKER_LOCAL_ADMIN", value_delimiter = ',', default_values_t = ["127.0.0.0/8".to_string(), "::1".to_string()])]
    pub local_admin: Vec<String>,

    /// Host name under which loopback callers may use the admin endpoints without the token, besides
    /// IP addresses, localhost and the host of --public-url; repeatable (or comma-separated).
    #[arg(
        long,
        value_name = "HOST",
        env = "TINYTRACKER_ALLOWED_HOST",
        value_delimiter = ','
    )]
    pub allowed_host: Vec<String>,

    /// Origin (scheme://host[:port]) of another web front-end allowed to call the API from a
    /// browser (CORS: preflights answered, credentials allowed, never `*`); repeatable (or
    /// comma-separated). Without it no other site's page may read or call the API.
    #[arg(
        long,
        value_name = "ORIGIN",
        env = "TINYTRACKER_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origin: Vec<String>,

    /// Log level: error, warn, info, debug (one line per request) or trace.
    #[arg(
        long,
        value_name = "LEVEL",
        env = "TINYTRACKER_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,

    /// Refuse announces and scrapes for torrents that were not registered (add-torrent-info, the admin API).
    #[arg(long, env = "TINYTRACKER_REGISTERED_ONLY", value_parser = BoolishValueParser::new())]
    pub registered_only: bool,

    /// Require a valid user passkey on every announce and scrape (/PASSKEY/announce or ?passkey=).
    #[arg(long, env = "TINYTRACKER_REQUIRE_PASSKEY", value_parser = BoolishValueParser::new())]
    pub require_passkey: bool,

    /// Private tracker: --registered-only and --require-passkey together.
    #[arg(long, env = "TINYTRACKER_PRIVATE", value_parser = BoolishValueParser::new())]
    pub private: bool,

    /// Base URL clients reach the tracker at, for the announce URLs handed to new users
    /// [default: http:// and the Host the admin request was sent to].
    #[arg(long, value_name = "URL", env = "TINYTRACKER_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Let anyone read /metrics (Prometheus); by default it follows the admin access rule.
    #[arg(long, env = "TINYTRACKER_PUBLIC_METRICS", value_parser = BoolishValueParser::new())]
    pub public_metrics: bool,

    /// Live-event subscribers (GET /api/v1/events) held at once; more get 503.
    #[arg(
        long,
        value_name = "N",
        env = "TINYTRACKER_MAX_EVENT_CLIENTS",
        default_value_t = 1000
    )]
    pub max_event_clients: usize,

    /// Let users upload torrents (and edit their own uploads) with their API token; without it
    /// only operators register and upload.
    #[arg(long, env = "TINYTRACKER_USER_UPLOADS", value_parser = BoolishValueParser::new())]
    pub user_uploads: bool,

    /// Largest .torrent upload accepted, in bytes (suffixes KiB, MiB); larger bodies get 413.
    /// Only a caller allowed to upload may send more than 64 KiB.
    #[arg(
        long,
        value_name = "SIZE",
        env = "TINYTRACKER_MAX_UPLOAD_SIZE",
        default_value = "10MiB"
    )]
    pub max_upload_size: String,

    /// Also append the log to this file (stderr always gets it).
    #[arg(long, value_name = "PATH", env = "TINYTRACKER_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}
