//! Who may call the admin endpoints, decided in one place, and who a caller is ([`Who`]: an
//! operator, a user by their API token, or anyone; `dispatch` holds them against what a route
//! needs). Pure: the request's facts in, a verdict out.
//!
//! Two kinds of authority: the admin token (`Authorization: Bearer …` or `?token=`), and the
//! caller's address (the `--local-admin` networks, loopback by default). An address is weak
//! authority: every web page the operator opens in a browser on this machine also calls from
//! loopback. So, as trusted local servers do (Transmission's RPC host whitelist, Jupyter,
//! Django's CSRF checks):
//!
//! - **Origin**: a browser names the page behind every cross-origin POST in `Origin`. An admin
//!   request whose `Origin` is present and is not the tracker's own (nor a `--cors-origin`),
//!   `null` included, or that says `Sec-Fetch-Site: cross-site`, is refused (403), whoever it
//!   comes from. Requests without `Origin` (curl, cron, the CLIs) are not affected.
//! - **Body type**: a body for a JSON endpoint sent with another content type (a form,
//!   `text/plain`: the kinds a page may send without a preflight) together with an `Origin` is
//!   refused (415).
//! - **Host**: a DNS-rebound page reaches the loopback port under its own name. Authority by
//!   address is given only to requests whose `Host` is an IP literal, `localhost`, the host of
//!   `--public-url` or an `--allowed-host`; others get 421. The token is not tied to a host.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::ApiError;
use crate::store::users::User;

/// Who sent a request, as far as its route needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Nobody in particular (the route needs no one, or the index is open).
    Anonymous,
    /// An operator: the admin token, or a `--local-admin` caller.
    Admin,
    /// A user, by their API token.
    User(User),
}

/// What the operator configured.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Callers from these networks need no token (if their `Host` passes).
    pub local: Vec<IpNet>,
    pub token: Option<String>,
    /// Host names (lowercase, no port) besides IP literals and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`, lowercase) besides the tracker's own.
    pub allowed_origins: Vec<String>,
}

/// The facts of one admin request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// The caller's address after proxy handling; `None` when a trusted proxy did not say.
    pub ip: Option<IpAddr>,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// The route reads a JSON body.
    pub json_body: bool,
    pub token: Option<&'a str>,
}

/// Decides an admin request: `Ok` to serve it, or the refusal to send.
pub fn check(rules: &Rules, caller: &Caller) -> Result<(), ApiError> {
    check_browser(rules, caller)?;
    if let (Some(expected), Some(given)) = (rules.token.as_deref(), caller.token) {
        return if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("invalid admin token".into()))
        };
    }
    let local = caller
        .ip
        .is_some_and(|ip| rules.local.iter().any(|net| net.contains(&ip)));
    if local {
        if host_allowed(rules, caller.host) {
            return Ok(());
        }
        return Err(ApiError::MisdirectedRequest(format!(
            "admin requests by address need a Host that is an IP address, localhost or an \
             --allowed-host (got {:?}); a page on another site may have been pointed here",
            short(caller.host.unwrap_or_default())
        )));
    }
    Err(ApiError::Forbidden(match rules.token {
        Some(_) => "admin endpoints need a token from non-loopback callers: send Authorization: \
                    Bearer <token>"
            .into(),
        None => "admin endpoints are open to loopback callers only; start the tracker with \
                 --admin-token TOKEN and send Authorization: Bearer TOKEN to allow other callers"
            .into(),
    }))
}

/// The checks that stop forged requests from web pages, for every admin request.
pub fn check_browser(rules: &Rules, caller: &Caller) -> Result<(), ApiError> {
    if caller
        .sec_fetch_site
        .is_some_and(|site| site.trim().eq_ignore_ascii_case("cross-site"))
    {
        return Err(ApiError::Forbidden(
            "cross-site requests may not call this tracker's API".into(),
        ));
    }
    let Some(origin) = caller.origin else {
        return Ok(());
    };
    if !origin_allowed(rules, origin, caller.host) {
        return Err(ApiError::Forbidden(format!(
            "requests from origin {:?} may not call this tracker's API (see --cors-origin)",
            short(origin)
        )));
    }
    if caller.json_body && !caller.content_type.is_some_and(is_json) {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as Content-Type: application/json".into(),
        ));
    }
    Ok(())
}

/// The tracker's own origin (the scheme and the `Host` the request was sent to), or a listed one.
fn origin_allowed(rules: &Rules, origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if origin == "null" {
        return false;
    }
    if rules.allowed_origins.contains(&origin) {
        return true;
    }
    let Some(host) = host.map(|h| h.trim().to_ascii_lowercase()) else {
        return false;
    };
    ["http://", "https://"]
        .iter()
        .any(|scheme| origin.strip_prefix(scheme) == Some(host.as_str()))
}

/// Whether a request sent to `host` may get authority from the caller's address.
pub fn host_allowed(rules: &Rules, host: Option<&str>) -> bool {
    // Browsers always send Host; a request without one (HTTP/1.0 tools) is no rebound page.
    let Some(host) = host else {
        return true;
    };
    let Some(name) = host_name(host) else {
        return false;
    };
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    name == "localhost" || rules.allowed_hosts.iter().any(|h| h == name)
}

/// The host part of a `Host` value: without the port, IPv6 without brackets.
fn host_name(host: &str) -> Option<&str> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return (after.is_empty() || is_port(after.strip_prefix(':')?)).then_some(inside);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) && !name.contains(':') => Some(name),
        Some(_) => None,
        None => Some(host),
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// At most 64 characters of something a client sent, for an error message.
pub fn short(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Compares without stopping at the first difference, so the time taken does not reveal a prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(token: Option<&str>) -> Rules {
        Rules {
            local: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            token: token.map(str::to_owned),
            allowed_hosts: vec!["tracker.lan".into()],
            allowed_origins: vec!["https://panel.example.org".into()],
        }
    }

    fn from(ip: &str) -> Caller<'static> {
        Caller {
            ip: ip.parse().ok(),
            host: Some("127.0.0.1:6969"),
            ..Caller::default()
        }
    }

    fn status(rules: &Rules, caller: &Caller) -> u16 {
        check(rules, caller).map_or_else(|e| e.status(), |()| 200)
    }

    #[test]
    fn loopback_is_allowed_and_others_need_the_token() {
        let (open, locked) = (rules(None), rules(Some("secret")));
        assert_eq!(status(&open, &from("127.0.0.1")), 200);
        assert_eq!(status(&locked, &from("::1")), 200);
        assert_eq!(status(&open, &from("203.0.113.9")), 403);
        let unknown = Caller {
            ip: None,
            ..from("x")
        };
        assert_eq!(
            status(&open, &unknown),
            403,
            "an unknown client is not loopback"
        );
        let with = |token| Caller {
            token: Some(token),
            ..from("203.0.113.9")
        };
        assert_eq!(status(&locked, &with("secret")), 200);
        for wrong in ["secreT", "secret1", "", "s"] {
            assert_eq!(status(&locked, &with(wrong)), 403, "{wrong}");
        }
        assert_eq!(status(&locked, &from("203.0.113.9")), 403);
        let mut only_one = rules(None);
        only_one.local = vec!["127.0.0.1/32".parse().unwrap()];
        assert_eq!(status(&only_one, &from("127.0.0.2")), 403);
    }

    #[test]
    fn a_rebound_host_gets_no_authority_from_the_address() {
        let open = rules(None);
        for host in [
            "evil.example",
            "evil.example:6969",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            let caller = Caller {
                host: Some(host),
                ..from("127.0.0.1")
            };
            assert_eq!(status(&open, &caller), 421, "{host}");
        }
        for host in [
            "127.0.0.1",
            "127.0.0.1:6969",
            "[::1]:6969",
            "[::1]",
            "localhost:6969",
            "LOCALHOST",
            "localhost.",
            "tracker.lan:6969",
            "10.1.2.3",
        ] {
            let caller = Caller {
                host: Some(host),
                ..from("127.0.0.1")
            };
            assert_eq!(status(&open, &caller), 200, "{host}");
        }
        let no_host = Caller {
            host: None,
            ..from("127.0.0.1")
        };
        assert_eq!(status(&open, &no_host), 200);
        let tokened = Caller {
            host: Some("evil.example"),
            token: Some("secret"),
            ..from("127.0.0.1")
        };
        assert_eq!(
            status(&rules(Some("secret")), &tokened),
            200,
            "the token needs no host"
        );
    }

    #[test]
    fn foreign_origins_are_refused_whoever_calls() {
        let locked = rules(Some("secret"));
        for origin in [
            "https://evil.example",
            "null",
            "http://127.0.0.1:8080",
            "http://localhost:6969",
        ] {
            for token in [None, Some("secret")] {
                let caller = Caller {
                    origin: Some(origin),
                    token,
                    ..from("127.0.0.1")
                };
                assert_eq!(status(&locked, &caller), 403, "{origin} {token:?}");
            }
        }
        for origin in [
            "http://127.0.0.1:6969",
            "HTTPS://127.0.0.1:6969/",
            "https://panel.example.org",
        ] {
            let caller = Caller {
                origin: Some(origin),
                ..from("127.0.0.1")
            };
            assert_eq!(status(&locked, &caller), 200, "{origin}");
        }
        let cross = Caller {
            sec_fetch_site: Some("cross-site"),
            ..from("127.0.0.1")
        };
        assert_eq!(status(&locked, &cross), 403);
        let same = Caller {
            sec_fetch_site: Some("same-origin"),
            ..from("127.0.0.1")
        };
        assert_eq!(status(&locked, &same), 200);
    }

    #[test]
    fn a_json_body_under_an_origin_must_say_it_is_json() {
        let open = rules(None);
        let post = |content_type| Caller {
            origin: Some("http://127.0.0.1:6969"),
            content_type,
            json_body: true,
            ..from("127.0.0.1")
        };
        for bad in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            assert_eq!(status(&open, &post(bad)), 415, "{bad:?}");
        }
        assert_eq!(
            status(&open, &post(Some("application/json; charset=utf-8"))),
            200
        );
        let curl = Caller {
            content_type: Some("application/x-www-form-urlencoded"),
            json_body: true,
            ..from("127.0.0.1")
        };
        assert_eq!(
            status(&open, &curl),
            200,
            "curl -d without an Origin keeps working"
        );
    }
}
