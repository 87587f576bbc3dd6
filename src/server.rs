//! HTTP glue on `tiny_http`: listening sockets, worker threads, routing, and turning handler
//! results into responses. The only module that knows about `tiny_http`.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use log::{debug, error};
use serde_json::{json, Value};
use socket2::{Domain, Protocol, Socket, Type};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::admin::{self, BODY_LIMIT};
use crate::app::App;
use crate::error::{AdminError, ProtocolError};
use crate::protocol;
use crate::routes::{self, Route};
use crate::swarm::canonical_ip;
use crate::users::UserId;

/// Opens a listening socket (IPv6 sockets are v6-only, so `0.0.0.0` and `[::]` can share a port).
pub fn bind(addr: SocketAddr) -> anyhow::Result<Server> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot listen on {addr}"))?;
    socket.listen(1024)?;
    Server::from_listener(std::net::TcpListener::from(socket), None)
        .map_err(|e| anyhow::anyhow!("cannot serve on {addr}: {e}"))
}

/// Starts `count` workers on `server`. Each loops on `recv` until unblocked at shutdown.
pub fn spawn_workers(app: &Arc<App>, server: &Arc<Server>, count: usize) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|i| {
            let (app, server) = (Arc::clone(app), Arc::clone(server));
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker(&app, &server))
                .expect("spawning a worker thread at startup")
        })
        .collect()
}

fn worker(app: &App, server: &Server) {
    loop {
        match server.recv() {
            Ok(request) => handle(app, request),
            Err(_) if app.is_shutting_down() => return,
            Err(e) => {
                error!("the server stopped accepting connections: {e}; shutting down");
                app.request_shutdown();
                return;
            }
        }
    }
}

/// What a handler decided, before it becomes a `tiny_http::Response`.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    allow: Option<&'static str>,
    then_shut_down: bool,
}

impl Reply {
    fn bencode(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain",
            body,
            allow: None,
            then_shut_down: false,
        }
    }

    fn json(status: u16, value: &Value) -> Reply {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Reply {
            status,
            content_type: "application/json",
            body,
            allow: None,
            then_shut_down: false,
        }
    }

    fn admin(result: Result<Value, AdminError>) -> Reply {
        match result {
            Ok(value) => Reply::json(200, &value),
            Err(e) => {
                let mut reply = Reply::json(e.status(), &json!({ "error": e.to_string() }));
                if let AdminError::MethodNotAllowed { allow, .. } = e {
                    reply.allow = Some(allow);
                }
                reply
            }
        }
    }
}

/// The parts of a request the handlers need, as plain values.
struct Incoming<'r> {
    method: Method,
    path: &'r str,
    query: &'r str,
    client: Client,
    token: Option<String>,
    wants_json: bool,
    /// The Host header, for announce URLs when no --public-url is set.
    host: Option<String>,
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

fn handle(app: &App, mut request: Request) {
    let remote = request
        .remote_addr()
        .map_or(IpAddr::from([127, 0, 0, 1]), |a| canonical_ip(a.ip()));
    let client = client(app, remote, &request);
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let incoming = Incoming {
        method: request.method().clone(),
        path,
        query,
        client,
        token: token(&request, query),
        wants_json: header(&request, "Accept").is_some_and(|v| v.contains("application/json")),
        host: header(&request, "Host").map(str::to_owned),
    };
    let reply = match checked_route(app, &incoming) {
        Err(e) => Reply::admin(Err(e)),
        Ok(route) if incoming.method == Method::Head => head_reply(&route, &incoming),
        Ok(route) => {
            // Only an allowed caller's JSON body is worth reading.
            let body = if route.takes_body() {
                read_body(&mut request)
            } else {
                Ok(Vec::new())
            };
            catch_unwind(AssertUnwindSafe(|| reply_to(app, route, &incoming, body))).unwrap_or_else(
                |_| {
                    error!(
                        "handler panicked on {} {}",
                        incoming.method,
                        redact(incoming.path)
                    );
                    Reply::json(500, &json!({ "error": "internal error" }))
                },
            )
        }
    };
    debug!(
        "{} {} {} -> {} ({} bytes)",
        client.ip,
        incoming.method,
        redact(incoming.path),
        reply.status,
        reply.body.len()
    );
    let then_shut_down = reply.then_shut_down;
    let mut response = Response::from_data(reply.body).with_status_code(reply.status);
    response.add_header(header_line("Content-Type", reply.content_type));
    if let Some(allow) = reply.allow {
        response.add_header(header_line("Allow", allow));
    }
    if let Err(e) = request.respond(response) {
        debug!("writing a response to {} failed: {e}", client.ip);
    }
    if then_shut_down {
        app.request_shutdown();
    }
}

/// A path for logs: any run of 32 or more letters and digits (a passkey, wherever it was put)
/// is replaced by `…`.
fn redact(path: &str) -> String {
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

/// The route, once the method fits and an admin caller is allowed (404, 405 and 403 otherwise).
fn checked_route(app: &App, req: &Incoming) -> Result<Route, AdminError> {
    let route = routes::resolve(req.method.as_str(), req.path)?;
    // With passkeys required, the list of every torrent is for operators only.
    let admin_only = route.is_admin() || (route == Route::Stats && app.config.require_passkey);
    if admin_only {
        let client = req.client.known.then_some(req.client.ip);
        admin::check_access(
            client,
            req.token.as_deref(),
            app.config.admin_token.as_deref(),
        )?;
    }
    Ok(route)
}

/// HEAD answers like GET would, with no body and no side effects.
fn head_reply(route: &Route, req: &Incoming) -> Reply {
    let content_type = match route {
        Route::Announce { .. } => "text/plain",
        Route::Scrape { .. } if !wants_scrape_json(req) => "text/plain",
        _ => "application/json",
    };
    let mut reply = Reply::bencode(Vec::new());
    reply.content_type = content_type;
    reply
}

fn reply_to(app: &App, route: Route, req: &Incoming, body: Result<Vec<u8>, AdminError>) -> Reply {
    let now = app.now();
    let base = || announce_base(app, req);
    let (users, swarm) = (&app.users, &app.swarm);
    let success = if route == Route::CreateUser { 201 } else { 200 };
    let result = match route {
        Route::Announce { passkey } => {
            return Reply::bencode(announce(
                app,
                req.query,
                passkey.as_deref(),
                req.client.ip,
                now,
            ))
        }
        Route::Scrape { passkey } => return scrape(app, req, passkey.as_deref(), now),
        Route::Stats => Ok(admin::stats(swarm, now)),
        Route::AddTorrentInfo | Route::RegisterTorrent => {
            body.and_then(|body| admin::add_torrent_info(swarm, &body, now))
        }
        Route::SaveState => admin::save_state(app),
        Route::Shutdown => {
            let mut reply = Reply::admin(Ok(json!({ "message": "Server shutting down..." })));
            reply.then_shut_down = true;
            return reply;
        }
        Route::ListUsers => Ok(admin::list_users(users, &base())),
        Route::CreateUser => body.and_then(|body| admin::create_user(users, &body, &base(), now)),
        Route::DeleteUser(name) => admin::delete_user(users, &name),
        Route::RotateUser(name) => admin::rotate_user(users, &name, &base()),
        Route::DisableUser(name) => admin::set_user_disabled(users, &name, true, &base()),
        Route::EnableUser(name) => admin::set_user_disabled(users, &name, false, &base()),
        Route::ListTorrents => Ok(admin::list_torrents(swarm, now)),
        Route::RemoveTorrent(hash) => admin::remove_torrent(swarm, &hash),
    };
    match result {
        Ok(value) => Reply::json(success, &value),
        Err(e) => Reply::admin(Err(e)),
    }
}

/// Where clients reach the tracker: --public-url, or http:// and the Host this request was sent to.
fn announce_base(app: &App, req: &Incoming) -> String {
    match (&app.config.public_url, &req.host) {
        (Some(url), _) => url.clone(),
        (None, Some(host)) => format!("http://{host}"),
        (None, None) => format!(
            "http://localhost:{}",
            app.config.binds.first().map_or(6969, |a| a.port())
        ),
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

fn announce(app: &App, query: &str, passkey: Option<&str>, ip: IpAddr, now: u64) -> Vec<u8> {
    let outcome = passkey_user(app, passkey, query, now).and_then(|user| {
        let req = protocol::parse_announce(query, ip)?;
        let (resp, credit) = app.swarm.announce(&req, user, now)?;
        app.users.credit(credit);
        Ok(protocol::encode_announce(&resp, req.style))
    });
    outcome.unwrap_or_else(|e| protocol::encode_failure(&e))
}

fn wants_scrape_json(req: &Incoming) -> bool {
    req.wants_json
        || protocol::query_value(req.query, "format").is_some_and(|v| v.as_ref() == b"json")
}

fn scrape(app: &App, req: &Incoming, passkey: Option<&str>, now: u64) -> Reply {
    let json = wants_scrape_json(req);
    let found = passkey_user(app, passkey, req.query, now)
        .and_then(|_| protocol::parse_scrape(req.query))
        .and_then(|hashes| app.swarm.scrape(&hashes, now));
    match found {
        Ok(found) if json => Reply::json(200, &admin::scrape_json(found)),
        Ok(found) => {
            let counts: Vec<_> = found
                .into_iter()
                .map(|(hash, _, counts)| (hash, counts))
                .collect();
            Reply::bencode(protocol::encode_scrape(&counts))
        }
        Err(e) if json => Reply::json(400, &json!({ "error": e.to_string() })),
        Err(e) => Reply::bencode(protocol::encode_failure(&e)),
    }
}

/// Who sent the request: the socket peer, unless that is a trusted proxy, whose right-most
/// X-Forwarded-For entry (an address, with or without a port) names the client.
fn client(app: &App, remote: IpAddr, request: &Request) -> Client {
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
        .headers()
        .iter()
        .rfind(|h| h.field.equiv("X-Forwarded-For"))
        .and_then(|h| h.value.as_str().rsplit(',').next())
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

fn header<'r>(request: &'r Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// The admin token from `Authorization: Bearer …` or `?token=`.
fn token(request: &Request, query: &str) -> Option<String> {
    if let Some(value) = header(request, "Authorization") {
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim().to_owned());
            }
        }
    }
    protocol::query_value(query, "token").map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn read_body(request: &mut Request) -> Result<Vec<u8>, AdminError> {
    let too_large = AdminError::BodyTooLarge { limit: BODY_LIMIT };
    if request.body_length().is_some_and(|n| n > BODY_LIMIT) {
        return Err(too_large);
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(BODY_LIMIT as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| AdminError::BadRequest(format!("could not read the body: {e}")))?;
    if body.len() > BODY_LIMIT {
        return Err(too_large);
    }
    Ok(body)
}

fn header_line(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("static header names and values are valid")
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
