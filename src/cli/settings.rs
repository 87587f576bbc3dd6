//! From the server's flags to a checked [`Config`]: where clap stops. Every bound and
//! combination is refused here with the flag's name, so nothing after sees an unchecked value.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use ipnet::IpNet;

use crate::api::access::Rules;
use crate::api::config::Config;
use crate::cli::ServeArgs;
use crate::store::swarm::SwarmConfig;

/// The addresses of a repeatable address flag.
fn addresses(texts: &[String], flag: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::new();
    for text in texts {
        let addr = text
            .to_socket_addrs()
            .with_context(|| format!("{flag} {text}: not an address"))?
            .next()
            .with_context(|| format!("{flag} {text}: resolves to nothing"))?;
        addrs.push(addr);
    }
    Ok(addrs)
}

/// Checks the server's flags and builds the configuration from them.
pub fn config(cli: ServeArgs) -> anyhow::Result<Config> {
    let binds = addresses(&cli.bind, "--bind")?;
    let udp_binds = addresses(&cli.udp_bind, "--udp-bind")?;
    let tls_binds = addresses(&cli.tls_bind, "--tls-bind")?;
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) if !tls_binds.is_empty() => Some((cert.clone(), key.clone())),
        (None, None) if tls_binds.is_empty() => None,
        _ if tls_binds.is_empty() => bail!("--tls-cert and --tls-key need a --tls-bind address"),
        _ => bail!("--tls-bind needs both --tls-cert and --tls-key"),
    };
    let swarm = swarm_config(&cli)?;
    let trusted_proxies = nets(&cli.trusted_proxy, "--trusted-proxy")?;
    let log_level = cli.log_level.parse().with_context(|| {
        format!(
            "--log-level {}: use error, warn, info, debug or trace",
            cli.log_level
        )
    })?;
    let public_url = match &cli.public_url {
        Some(text) => Some(parse_public_url(text)?),
        None => None,
    };
    let access = access_rules(&cli, public_url.as_ref())?;
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = cli.workers.unwrap_or(cpus);
    if workers == 0 {
        bail!("--workers must be at least 1");
    }
    if cli.max_connections == 0 {
        bail!("--max-connections must be at least 1");
    }
    let max_upload = parse_size(&cli.max_upload_size)
        .with_context(|| format!("--max-upload-size {:?}", cli.max_upload_size))?;
    Ok(Config {
        binds,
        udp_binds,
        tls_binds,
        tls,
        state_file: cli.state_file,
        store: cli.store,
        save_every: (cli.save_interval > 0).then(|| Duration::from_secs(cli.save_interval)),
        swarm,
        workers,
        max_connections: cli.max_connections,
        max_connections_per_ip: cli.max_connections_per_ip,
        access,
        trusted_proxies,
        log_level,
        log_file: cli.log_file,
        require_passkey: cli.require_passkey || cli.private,
        public_metrics: cli.public_metrics,
        public_url,
        user_uploads: cli.user_uploads,
        max_event_clients: cli.max_event_clients,
        max_upload,
    })
}

/// A size in bytes: digits, optionally followed by KiB, MiB (or K, M, KB, MB, taken as binary).
fn parse_size(text: &str) -> anyhow::Result<usize> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| anyhow::anyhow!("a size is a number of bytes, e.g. 10MiB or 1048576"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        other => bail!("unknown unit {other:?}: use KiB or MiB"),
    };
    let size = number
        .checked_mul(factor)
        .filter(|s| (1..=1 << 30).contains(s))
        .ok_or_else(|| anyhow::anyhow!("a size is from 1 byte to 1 GiB"))?;
    Ok(size)
}

/// The announce rules: intervals, peer timeout, numwant and the open-mode bounds.
fn swarm_config(cli: &ServeArgs) -> anyhow::Result<SwarmConfig> {
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
    Ok(SwarmConfig {
        interval_secs: cli.interval,
        min_interval_secs,
        peer_timeout_secs,
        default_numwant: cli.default_numwant.min(cli.max_numwant),
        max_numwant: cli.max_numwant,
        registered_only: cli.registered_only || cli.private,
        max_torrents: cli.max_torrents,
        max_peers_per_ip: cli.max_peers_per_ip,
    })
}

/// Who may call the admin endpoints: local networks, the token, the Host and Origin allow-lists.
fn access_rules(cli: &ServeArgs, public_url: Option<&url::Url>) -> anyhow::Result<Rules> {
    let mut allowed_hosts = Vec::new();
    if let Some(host) = public_url.and_then(url::Url::host_str) {
        allowed_hosts.push(host.trim_matches(['[', ']']).to_ascii_lowercase());
    }
    for host in &cli.allowed_host {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || host.contains(['/', ':', ' ']) {
            bail!("--allowed-host {host:?}: give a host name without scheme or port");
        }
        allowed_hosts.push(host);
    }
    let mut allowed_origins = Vec::new();
    for text in &cli.cors_origin {
        allowed_origins.push(parse_origin(text)?);
    }
    Ok(Rules {
        local: nets(&cli.local_admin, "--local-admin")?,
        token: cli.admin_token.clone().filter(|t| !t.is_empty()),
        allowed_hosts,
        allowed_origins,
    })
}

/// The networks a repeatable CIDR-or-IP flag names.
fn nets(texts: &[String], flag: &str) -> anyhow::Result<Vec<IpNet>> {
    texts
        .iter()
        .map(|text| parse_net(text).with_context(|| format!("{flag} {text}: not a CIDR or IP")))
        .collect()
}

/// `--public-url`: an http(s) URL with a host; a path is kept (a tracker behind a prefix).
fn parse_public_url(text: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(text).with_context(|| format!("--public-url {text:?}: not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("--public-url must be an http:// or https:// URL with a host, got {text:?}");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--public-url {text:?}: no query or fragment, please");
    }
    Ok(url)
}

/// `--cors-origin`: `scheme://host[:port]`, as browsers send it in `Origin` (lowercase, no path).
fn parse_origin(text: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(text.trim())
        .with_context(|| format!("--cors-origin {text:?}: not an origin like https://host"))?;
    let origin = url.origin();
    if !origin.is_tuple() || !matches!(url.path(), "" | "/") {
        bail!("--cors-origin {text:?}: give scheme://host[:port] only");
    }
    Ok(origin.ascii_serialization())
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
    use std::path::PathBuf;

    fn config(args: &[&str]) -> anyhow::Result<Config> {
        let mut argv = vec!["tinytracker"];
        argv.extend_from_slice(args);
        super::config(crate::cli::Cli::try_parse_from(argv)?.serve)
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
        assert_eq!(
            private.public_url.as_ref().map(url::Url::as_str),
            Some("https://t.example.org/")
        );
        assert_eq!(private.access.allowed_hosts, vec!["t.example.org"]);
        assert!(
            config(&["--registered-only"])
                .unwrap()
                .swarm
                .registered_only
        );
        assert!(config(&["--public-url", "t.example.org"]).is_err());
    }

    #[test]
    fn out_of_range_numbers_are_refused_before_they_can_overflow() {
        for args in [
            &["--interval", "4100000000"][..],
            &["--interval", "86401"],
            &["--interval", "0"],
            &["--peer-timeout", "604801"],
            &["--workers", "0"],
            &["--cors-origin", "https://a.example/path"],
            &["--cors-origin", "nonsense"],
            &["--allowed-host", "http://a.example"],
            &["--public-url", "ftp://t.example.org"],
        ] {
            assert!(config(args).is_err(), "{args:?}");
        }
        let c = config(&[
            "--interval",
            "86400",
            "--cors-origin",
            "HTTPS://Panel.Example.org:8443/",
            "--allowed-host",
            "Tracker.LAN",
        ])
        .unwrap();
        assert_eq!(c.swarm.interval_secs, 86400);
        assert_eq!(
            c.access.allowed_origins,
            vec!["https://panel.example.org:8443"]
        );
        assert_eq!(c.access.allowed_hosts, vec!["tracker.lan"]);
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
