//! The validated configuration. Clap stops at [`Config::from_cli`]; everything after sees checked values.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use ipnet::IpNet;

use crate::cli::ServeArgs;
use crate::swarm::SwarmConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub binds: Vec<SocketAddr>,
    pub state_file: PathBuf,
    /// `None`: save only on demand and at exit.
    pub save_every: Option<Duration>,
    pub swarm: SwarmConfig,
    /// Event-loop worker threads (each answers the requests of the connections it accepted).
    pub workers: usize,
    /// Connections open at once; more are refused as they arrive.
    pub max_connections: usize,
    pub admin_token: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// Callers from these networks use the admin endpoints without the token.
    pub local_admin: Vec<IpNet>,
    pub log_level: log::LevelFilter,
    pub log_file: Option<PathBuf>,
    pub require_passkey: bool,
    /// `/metrics` without the admin access rule.
    pub public_metrics: bool,
    /// Where clients reach the tracker, without a trailing slash; `None`: taken from the request.
    pub public_url: Option<String>,
}

impl Config {
    pub fn from_cli(cli: ServeArgs) -> anyhow::Result<Config> {
        let mut binds = Vec::new();
        for text in &cli.bind {
            let addr = text
                .to_socket_addrs()
                .with_context(|| format!("--bind {text}: not an address"))?
                .next()
                .with_context(|| format!("--bind {text}: resolves to nothing"))?;
            binds.push(addr);
        }
        if cli.interval == 0 {
            bail!("--interval must be at least 1 second");
        }
        let min_interval_secs = cli.min_interval.unwrap_or(cli.interval / 2);
        if min_interval_secs > cli.interval {
            bail!(
                "--min-interval ({min_interval_secs}) must not exceed --interval ({})",
                cli.interval
            );
        }
        let peer_timeout_secs = cli.peer_timeout.unwrap_or(2 * u64::from(cli.interval));
        // Clients are told the interval plus up to 5 % jitter; the timeout must outlast that.
        let longest_interval = u64::from(cli.interval) + u64::from(cli.interval / 20);
        if peer_timeout_secs <= longest_interval {
            bail!(
                "--peer-timeout ({peer_timeout_secs}) must exceed --interval ({}) plus its 5 % jitter ({longest_interval} s), \
                 or peers expire just before they re-announce",
                cli.interval
            );
        }
        let trusted_proxies = cli
            .trusted_proxy
            .iter()
            .map(|text| {
                parse_net(text).with_context(|| format!("--trusted-proxy {text}: not a CIDR or IP"))
            })
            .collect::<anyhow::Result<_>>()?;
        let local_admin = cli
            .local_admin
            .iter()
            .map(|text| {
                parse_net(text).with_context(|| format!("--local-admin {text}: not a CIDR or IP"))
            })
            .collect::<anyhow::Result<_>>()?;
        let log_level = cli.log_level.parse().with_context(|| {
            format!(
                "--log-level {}: use error, warn, info, debug or trace",
                cli.log_level
            )
        })?;
        let public_url = match cli.public_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => bail!("--public-url must start with http:// or https://, got {url:?}"),
            None => None,
        };
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = cli.workers.unwrap_or(cpus).max(1);
        if cli.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        Ok(Config {
            binds,
            state_file: cli.state_file,
            save_every: (cli.save_interval > 0).then(|| Duration::from_secs(cli.save_interval)),
            swarm: SwarmConfig {
                interval_secs: cli.interval,
                min_interval_secs,
                peer_timeout_secs,
                default_numwant: cli.default_numwant.min(cli.max_numwant),
                max_numwant: cli.max_numwant,
                registered_only: cli.registered_only || cli.private,
            },
            workers,
            max_connections: cli.max_connections,
            admin_token: cli.admin_token.filter(|t| !t.is_empty()),
            trusted_proxies,
            local_admin,
            log_level,
            log_file: cli.log_file,
            require_passkey: cli.require_passkey || cli.private,
            public_metrics: cli.public_metrics,
            public_url,
        })
    }
}

fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> anyhow::Result<Config> {
        let mut argv = vec!["tinytracker"];
        argv.extend_from_slice(args);
        Config::from_cli(crate::cli::Cli::try_parse_from(argv)?.serve)
    }

    #[test]
    fn defaults_match_the_original_where_it_was_right() {
        let c = config(&[]).unwrap();
        assert_eq!(c.binds, vec!["0.0.0.0:6969".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.state_file, PathBuf::from("tracker_state.json"));
        assert_eq!(c.save_every, Some(Duration::from_secs(300)));
        assert_eq!(c.swarm.interval_secs, 1800);
        assert_eq!(c.swarm.min_interval_secs, 900);
        assert_eq!(c.swarm.peer_timeout_secs, 3600);
        assert_eq!((c.swarm.default_numwant, c.swarm.max_numwant), (50, 200));
    }

    #[test]
    fn derived_defaults_follow_the_interval() {
        let c = config(&["--interval", "60", "--save-interval", "0"]).unwrap();
        assert_eq!(
            (c.swarm.min_interval_secs, c.swarm.peer_timeout_secs),
            (30, 120)
        );
        assert_eq!(c.save_every, None);
    }

    #[test]
    fn a_peer_timeout_not_above_the_interval_is_refused() {
        let err = config(&["--peer-timeout", "1800"]).unwrap_err().to_string();
        assert!(err.contains("must exceed --interval"), "{err}");
        assert!(
            config(&["--peer-timeout", "1890"]).is_err(),
            "the jittered interval reaches 1890"
        );
        assert!(config(&["--peer-timeout", "1891"]).is_ok());
    }

    #[test]
    fn private_means_both_switches() {
        let open = config(&[]).unwrap();
        assert!(!open.swarm.registered_only && !open.require_passkey);
        let private = config(&["--private", "--public-url", "https://t.example.org/"]).unwrap();
        assert!(private.swarm.registered_only && private.require_passkey);
        assert_eq!(private.public_url.as_deref(), Some("https://t.example.org"));
        assert!(
            config(&["--registered-only"])
                .unwrap()
                .swarm
                .registered_only
        );
        assert!(config(&["--public-url", "t.example.org"]).is_err());
    }

    #[test]
    fn binds_and_proxies_repeat() {
        let c = config(&[
            "--bind",
            "127.0.0.1:0",
            "--bind",
            "[::1]:0",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "::1",
        ])
        .unwrap();
        assert_eq!(c.binds.len(), 2);
        assert!(c.trusted_proxies[0].contains(&"10.1.2.3".parse::<IpAddr>().unwrap()));
        assert!(c.trusted_proxies[1].contains(&"::1".parse::<IpAddr>().unwrap()));
        assert!(config(&["--trusted-proxy", "nonsense"]).is_err());
        assert!(config(&["--bind", "nowhere"]).is_err());
    }
}
