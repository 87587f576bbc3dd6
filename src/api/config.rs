//! The validated configuration: checked values only. The command line builds it
//! ([`crate::cli::settings`]); nothing here knows of flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::api::access::Rules;
use crate::store::swarm::SwarmConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub binds: Vec<SocketAddr>,
    /// UDP tracker addresses (BEP 15); none: no UDP.
    pub udp_binds: Vec<SocketAddr>,
    /// HTTPS addresses, served with `tls`.
    pub tls_binds: Vec<SocketAddr>,
    /// The certificate chain and key files (PEM) of the HTTPS addresses.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub state_file: PathBuf,
    /// A shared store (`redis://…`) instead of the state file; several instances may use it.
    pub store: Option<String>,
    /// `None`: save only on demand and at exit.
    pub save_every: Option<Duration>,
    pub swarm: SwarmConfig,
    /// Event-loop worker threads (each answers the requests of the connections it accepted).
    pub workers: usize,
    /// Connections open at once; more are refused as they arrive.
    pub max_connections: usize,
    /// Connections one address may hold (0: no limit); trusted proxies are not limited.
    pub max_connections_per_ip: usize,
    /// Who may call the admin endpoints: local networks, token, allowed hosts and origins.
    pub access: Rules,
    pub trusted_proxies: Vec<IpNet>,
    pub log_level: log::LevelFilter,
    pub log_file: Option<PathBuf>,
    pub require_passkey: bool,
    /// `/metrics` without the admin access rule.
    pub public_metrics: bool,
    /// Where clients reach the tracker; `None`: taken from the request.
    pub public_url: Option<url::Url>,
    /// Users (by their API token) may upload, and edit their own uploads.
    pub user_uploads: bool,
    /// Largest upload body, in bytes.
    pub max_upload: usize,
    /// Live-event subscribers held at once.
    pub max_event_clients: usize,
}
