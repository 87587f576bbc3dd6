//! From an HTTP request (plain values) to a reply: who the client is, which route, access, and
//! calling the handler. Knows nothing of sockets; `server.rs` feeds it and writes what it returns.

use std::net::{IpAddr, SocketAddr};

use log::error;
use serde_json::{json, Value};

use crate::api::access;
use crate::api::admin;
use crate::api::app::App;
use crate::api::index;
use crate::api::metrics::{Endpoint, Gauges, Outcome};
use crate::api::routes::{self, Route};
use crate::error::{ApiError, ProtocolError};
use crate::protocol;
use crate::protocol::http;
use crate::store::swarm::canonical_ip;
use crate::store::users::UserId;

/// What a handler decided, before it is written to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub allow: Option<&'static str>,
    /// A download's file name (sent as `Content-Disposition: attachment`).
    pub file_name: Option<String>,
    /// Start the graceful shutdown once this reply is on its way.
    pub then_shut_down: bool,
    /// Why a BitTorrent client was refused (the body is then its bencoded `failure reason`).
    pub refused: Option<String>,
}

impl Reply {
    /// A 200 with a `text/plain` body: a bencoded answer, or the `/metrics` text.
    pub fn plain(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain",
            body,
            allow: None,
            file_name: None,
            then_shut_down: false,
            refused: None,
        }
    }

    /// A BitTorrent client's refusal: HTTP 200 (BEP 3) with a bencoded `failure reason`.
    pub fn failure(e: &ProtocolError) -> Reply {
        Reply {
            refused: Some(e.to_string()),
            ..Reply::plain(protocol::encode_failure(e))
        }
    }

    pub fn json(status: u16, value: &Value) -> Reply {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Reply {
            status,
            content_type: "application/json",
            body,
            allow: None,
            file_name: None,
            then_shut_down: false,
            refused: None,
        }
    }

    pub fn error(e: ApiError) -> Reply {
        let mut reply = Reply::json(e.status(), &json!({ "error": e.to_string() }));
        if let ApiError::MethodNotAllowed { allow, .. } = e {
            reply.allow = Some(allow);
        }
        reply
    }

    /// How `/metrics` counts this reply.
    pub fn outcome(&self) -> Outcome {
        match self.status {
            500.. => Outcome::Error,
            400.. => Outcome::Refused,
            _ if self.refused.is_some() => Outcome::Refused,
            _ => Outcome::Ok,
        }
    }

    pub fn as_response(&self) -> http::Response<'_> {
        http::Response {
            status: self.status,
            content_type: self.content_type,
            allow: self.allow,
            file_name: self.file_name.as_deref(),
            body: &self.body,
        }
    }
}

/// Which thread answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// The worker that read it, at once.
    Inline,
    /// The admin thread: saves, `/metrics`, the operator's listings.
    Admin,
    /// The public thread: anonymous whole-state work (`/stats` of an open tracker). Every
    /// request waiting there when it starts one shares that one answer.
    Public,
}

/// A request ready to be answered: routed and access-checked, with everything the handler needs.
#[derive(Debug)]
pub struct Prepared {
    route: Result<Route, ApiError>,
    method: String,
    head_only: bool,
    path: String,
    query: String,
    client: Client,
    wants_json: bool,
    /// The Host header, for announce URLs when no --public-url is set; only a Host that passes
    /// the check of `access::host_allowed` (a rebound page's name is not handed out).
    host: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Who sent a request.
#[derive(Debug, Clone, Copy)]
struct Client {
    /// The peer's address for announces: the socket peer, or what a trusted proxy forwarded.
    ip: IpAddr,
    /// False when a trusted proxy sent no usable X-Forwarded-For: the real client is unknown,
    /// so it must not pass for the (loopback) proxy itself.
    known: bool,
}

impl Prepared {
    /// Routes `request` from `remote` and decides access (404, 405 and 403 are settled here).
    pub fn new(app: &App, request: http::Request, remote: SocketAddr) -> Prepared {
        let client = client(app, canonical_ip(remote.ip()), &request);
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path.to_owned(), query.to_owned()),
            None => (request.target.clone(), String::new()),
        };
        let route = routes::resolve(&request.method, &path).and_then(|route| {
            // With passkeys required, the list of every torrent is for operators only;
            // /metrics is for operators unless made public.
            let admin_only = match route {
                Route::Stats => app.config.require_passkey,
                // A passkey download checks its passkey itself; the other one is for operators
                // on a private tracker, anyone's on an open one.
                Route::Download { passkey: None, .. } => app.config.require_passkey,
                Route::Metrics => !app.config.public_metrics,
                _ => route.is_admin(),
            };
            if admin_only {
                // Only admin requests look for a token: announces skip the scan.
                let token = token(&request, &query);
                let caller = access::Caller {
                    ip: client.known.then_some(client.ip),
                    host: request.header("Host"),
                    origin: request.header("Origin"),
                    sec_fetch_site: request.header("Sec-Fetch-Site"),
                    content_type: request.header("Content-Type"),
                    json_body: route.takes_body(),
                    token: token.as_deref(),
                };
                access::check(&app.config.access, &caller)?;
            }
            Ok(route)
        });
        // Read by uploads only: announces copy nothing more.
        let content_type = matches!(route, Ok(Route::UploadTorrent))
            .then(|| request.header("Content-Type").map(str::to_owned))
            .flatten();
        let host = request.header("Host");
        let host_ok = access::host_allowed(&app.config.access, host);
        Prepared {
            route,
            head_only: request.method == "HEAD",
            method: request.method.clone(),
            wants_json: request
                .header("Accept")
                .is_some_and(|v| v.contains("application/json")),
            host: host.filter(|_| host_ok).map(str::to_owned),
            content_type,
            path,
            query,
            client,
            body: request.body,
        }
    }

    /// Where the request is answered: work that may take long (disk, whole-state walks) runs
    /// away from the connection loop, and anonymous work never queues in front of an operator's.
    pub fn queue(&self, app: &App) -> Queue {
        match self.route {
            _ if self.head_only => Queue::Inline,
            Ok(Route::Stats) if !app.config.require_passkey => Queue::Public,
            Ok(
                Route::SaveState
                | Route::UploadTorrent
                | Route::Stats
                | Route::Metrics
                | Route::ListTorrents
                | Route::ListUsers,
            ) => Queue::Admin,
            _ => Queue::Inline,
        }
    }

    /// What `/metrics` counts this request as.
    pub fn endpoint(&self) -> Endpoint {
        match &self.route {
            Ok(Route::Announce { .. }) => Endpoint::Announce,
            Ok(Route::Scrape { .. }) => Endpoint::Scrape,
            Ok(Route::Stats) => Endpoint::Stats,
            Ok(Route::Metrics) => Endpoint::Metrics,
            Ok(_) => Endpoint::Admin,
            Err(_) => Endpoint::Other,
        }
    }

    /// For logs: the client, the method and the path with any passkey hidden.
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.client.ip, self.method, redact(&self.path))
    }

    /// Runs the handler. A panic in it becomes a 500 and a log line.
    pub fn run(self, app: &App) -> Reply {
        let route = match &self.route {
            Err(e) => return Reply::error(e.clone()),
            Ok(route) => route.clone(),
        };
        if self.head_only {
            return head_reply(&route, &self);
        }
        let path = redact(&self.path);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reply_to(app, route, &self)))
            .unwrap_or_else(|_| {
                error!("handler panicked on {path}");
                Reply::json(500, &json!({ "error": "internal error" }))
            })
    }
}

/// HEAD answers like GET would, with no body and no side effects.
fn head_reply(route: &Route, req: &Prepared) -> Reply {
    let content_type = match route {
        Route::Announce { .. } | Route::Metrics => "text/plain",
        Route::Scrape { .. } if !wants_scrape_json(req) => "text/plain",
        Route::Download { .. } => index::TORRENT_TYPE,
        _ => "application/json",
    };
    let mut reply = Reply::plain(Vec::new());
    reply.content_type = content_type;
    reply
}

fn reply_to(app: &App, route: Route, req: &Prepared) -> Reply {
    let now = app.now();
    let base = || announce_base(app, req);
    let (users, swarm, body) = (&app.users, &app.swarm, &req.body);
    let success = if route == Route::CreateUser { 201 } else { 200 };
    let result = match route {
        Route::Announce { passkey } => {
            return announce(app, &req.query, passkey.as_deref(), req.client.ip, now)
        }
        Route::Scrape { passkey } => return scrape(app, req, passkey.as_deref(), now),
        Route::Download { hash, passkey } => {
            return download(app, req, &hash, passkey.as_deref(), now)
        }
        Route::UploadTorrent => {
            return match index::upload(app, req.content_type.as_deref(), body, now) {
                Ok((status, value)) => Reply::json(status, &value),
                Err(e) => Reply::error(e),
            }
        }
        Route::Stats => Ok(admin::stats(swarm, now)),
        Route::Metrics => {
            let (torrents, seeders, leechers) = swarm.counts();
            let gauges = Gauges {
                torrents,
                seeders,
                leechers,
                users: users.len(),
            };
            let mut reply = Reply::plain(app.metrics.render(gauges).into_bytes());
            reply.content_type = "text/plain; version=0.0.4";
            return reply;
        }
        Route::RegisterTorrent => admin::add_torrent_info(swarm, body, now),
        Route::SaveState => admin::save_state(app),
        Route::Shutdown => {
            let mut reply = Reply::json(200, &json!({ "message": "Server shutting down..." }));
            reply.then_shut_down = true;
            return reply;
        }
        Route::ListUsers => Ok(admin::list_users(users, &base())),
        Route::CreateUser => admin::create_user(users, body, &base(), now),
        Route::DeleteUser(name) => admin::delete_user(users, &name),
        Route::RotateUser(name) => admin::rotate_user(users, &name, &base()),
        Route::DisableUser(name) => admin::set_user_disabled(users, &name, true, &base()),
        Route::EnableUser(name) => admin::set_user_disabled(users, &name, false, &base()),
        Route::ListTorrents => Ok(admin::list_torrents(swarm, now)),
        Route::RemoveTorrent(hash) => admin::remove_torrent(swarm, &app.files, &hash),
    };
    match result {
        Ok(value) => Reply::json(success, &value),
        Err(e) => Reply::error(e),
    }
}

/// A stored `.torrent` with the announce URL of the passkey's user in it (on an open tracker, an
/// unknown passkey or none gives the plain announce URL).
fn download(app: &App, req: &Prepared, hash: &str, passkey: Option<&str>, now: u64) -> Reply {
    let base = announce_base(app, req);
    let plain = format!("{}/announce", base.url);
    let announce_url = match passkey {
        Some(key) => match app.users.resolve(Some(key), now) {
            Ok(_) => format!("{}/{key}/announce", base.url),
            Err(e) if app.config.require_passkey => {
                return Reply::error(ApiError::Forbidden(e.to_string()))
            }
            Err(_) => plain,
        },
        None => plain,
    };
    match index::download(app, hash, &announce_url, &base) {
        Ok(download) => Reply {
            content_type: index::TORRENT_TYPE,
            file_name: Some(download.file_name),
            ..Reply::plain(download.bytes)
        },
        Err(e) => Reply::error(e),
    }
}

/// Where clients reach the tracker: --public-url, or else http:// and the Host this request was
/// sent to (when that Host passed the check), or else localhost.
fn announce_base(app: &App, req: &Prepared) -> admin::AnnounceBase {
    let url = match (&app.config.public_url, &req.host) {
        (Some(url), _) => url.as_str().trim_end_matches('/').to_owned(),
        (None, Some(host)) => format!("http://{host}"),
        (None, None) => format!(
            "http://localhost:{}",
            app.config.binds.first().map_or(6969, |a| a.port())
        ),
    };
    admin::AnnounceBase {
        url,
        guessed: app.config.public_url.is_none(),
    }
}

/// The user a request's passkey (from the path, else `?passkey=`) belongs to; 0 when there is none
/// and none is required.
fn passkey_user(
    app: &App,
    from_path: Option<&str>,
    query: &str,
    now: u64,
) -> Result<UserId, ProtocolError> {
    let from_query = protocol::query_value(query, "passkey");
    let passkey = match (from_path, &from_query) {
        (Some(key), _) => Some(key.to_owned()),
        (None, Some(key)) => Some(String::from_utf8_lossy(key).into_owned()),
        (None, None) => None,
    };
    match passkey {
        Some(key) if app.config.require_passkey => app.users.resolve(Some(&key), now),
        // Passkeys are optional: a valid one still gets its user credited, anything else
        // (a reverse-proxy path prefix, say) is ignored as the open tracker always did.
        Some(key) => Ok(app.users.resolve(Some(&key), now).unwrap_or(0)),
        None if app.config.require_passkey => Err(ProtocolError::InvalidPasskey),
        None => Ok(0),
    }
}

fn announce(app: &App, query: &str, passkey: Option<&str>, ip: IpAddr, now: u64) -> Reply {
    let outcome = passkey_user(app, passkey, query, now).and_then(|user| {
        let req = protocol::parse_announce(query, ip)?;
        let (resp, credit) = app.swarm.announce(&req, user, now)?;
        app.users.credit(credit);
        Ok(protocol::encode_announce(&resp, req.style))
    });
    outcome.map_or_else(|e| Reply::failure(&e), Reply::plain)
}

fn wants_scrape_json(req: &Prepared) -> bool {
    req.wants_json
        || protocol::query_value(&req.query, "format").is_some_and(|v| v.as_ref() == b"json")
}

fn scrape(app: &App, req: &Prepared, passkey: Option<&str>, now: u64) -> Reply {
    let json = wants_scrape_json(req);
    let found = passkey_user(app, passkey, &req.query, now)
        .and_then(|_| protocol::parse_scrape(&req.query))
        .and_then(|hashes| app.swarm.scrape(&hashes, now));
    match found {
        Ok(found) if json => Reply::json(200, &admin::scrape_json(found)),
        Ok(found) => {
            let counts: Vec<_> = found
                .into_iter()
                .map(|(hash, _, counts)| (hash, counts))
                .collect();
            Reply::plain(protocol::encode_scrape(&counts))
        }
        Err(e) if json => Reply::json(400, &json!({ "error": e.to_string() })),
        Err(e) => Reply::failure(&e),
    }
}

/// Who sent the request: the socket peer, unless that is a trusted proxy, whose right-most
/// X-Forwarded-For entry (an address, with or without a port) names the client.
fn client(app: &App, remote: IpAddr, request: &http::Request) -> Client {
    if !app
        .config
        .trusted_proxies
        .iter()
        .any(|net| net.contains(&remote))
    {
        return Client {
            ip: remote,
            known: true,
        };
    }
    let forwarded = request
        .header("X-Forwarded-For")
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| parse_forwarded(last.trim()));
    match forwarded {
        Some(ip) => Client {
            ip: canonical_ip(ip),
            known: true,
        },
        None => Client {
            ip: remote,
            known: false,
        },
    }
}

fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// The admin token from `Authorization: Bearer …` or `?token=`.
fn token(request: &http::Request, query: &str) -> Option<String> {
    if let Some((scheme, token)) = request
        .header("Authorization")
        .and_then(|v| v.split_once(' '))
    {
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(token.trim().to_owned());
        }
    }
    protocol::query_value(query, "token").map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// A path for logs: any run of 32 or more letters and digits (a passkey, wherever it was put)
/// is replaced by `…`.
pub fn redact(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut run = String::new();
    for c in path.chars().chain(std::iter::once('/')) {
        if c.is_ascii_alphanumeric() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 32 { "…" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passkeys_are_hidden_wherever_they_are_in_a_path() {
        let key = "Xq3vT9kLm2Pw8RzA4bNc7YdE1fGh6JsU";
        for path in [
            format!("/{key}/announce"),
            format!("/{key}/Announce;x"),
            format!("/{key}"),
            format!("/a/{key}/announce/"),
        ] {
            assert!(!redact(&path).contains(key), "{path}");
            assert!(redact(&path).contains('…'), "{path}");
        }
        assert_eq!(redact("/announce"), "/announce");
        assert_eq!(redact("/users/alice/rotate"), "/users/alice/rotate");
    }
}
