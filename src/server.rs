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
use crate::error::AdminError;
use crate::protocol;
use crate::swarm::canonical_ip;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Announce,
    Scrape,
    Stats,
    AddTorrentInfo,
    SaveState,
    Shutdown,
    /// HEAD on a readable path: answered like GET, with no body and no side effects.
    Head(&'static str),
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
    };
    let reply = match resolve(app, &incoming) {
        Err(e) => Reply::admin(Err(e)),
        Ok(route) => {
            // Only an admin caller's POST to /add_torrent_info has a body worth reading.
            let body = match route {
                Route::AddTorrentInfo => read_body(&mut request),
                _ => Ok(Vec::new()),
            };
            catch_unwind(AssertUnwindSafe(|| reply_to(app, route, &incoming, body))).unwrap_or_else(
                |_| {
                    error!("handler panicked on {} {}", incoming.method, incoming.path);
                    Reply::json(500, &json!({ "error": "internal error" }))
                },
            )
        }
    };
    debug!(
        "{} {} {} -> {} ({} bytes)",
        client.ip,
        incoming.method,
        incoming.path,
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

/// Picks the route: 404 for an unknown path, 405 for a wrong method, 403 for a refused admin caller.
fn resolve(app: &App, req: &Incoming) -> Result<Route, AdminError> {
    use Method::{Get, Head, Post};
    let method = &req.method;
    let is_read = matches!(method, Get | Head);
    let (route, allow, allowed) = match req.path {
        "/announce" | "/" => (Route::Announce, "GET, HEAD", is_read),
        "/scrape" => (Route::Scrape, "GET, HEAD", is_read),
        "/stats" => (Route::Stats, "GET, HEAD", is_read),
        "/add_torrent_info" => (Route::AddTorrentInfo, "POST", *method == Post),
        "/shutdown" => (Route::Shutdown, "POST", *method == Post),
        "/save_state" => (
            Route::SaveState,
            "GET, HEAD, POST",
            is_read || *method == Post,
        ),
        other => return Err(AdminError::NotFound(other.to_owned())),
    };
    if !allowed {
        return Err(AdminError::MethodNotAllowed {
            method: method.to_string(),
            allow,
        });
    }
    if matches!(
        route,
        Route::AddTorrentInfo | Route::SaveState | Route::Shutdown
    ) {
        let client = req.client.known.then_some(req.client.ip);
        admin::check_access(
            client,
            req.token.as_deref(),
            app.config.admin_token.as_deref(),
        )?;
    }
    if *method == Head {
        let content_type = match route {
            Route::Announce => "text/plain",
            Route::Scrape if !wants_scrape_json(req) => "text/plain",
            _ => "application/json",
        };
        return Ok(Route::Head(content_type));
    }
    Ok(route)
}

fn reply_to(app: &App, route: Route, req: &Incoming, body: Result<Vec<u8>, AdminError>) -> Reply {
    let now = app.now();
    match route {
        Route::Announce => Reply::bencode(announce(app, req.query, req.client.ip, now)),
        Route::Scrape => scrape(app, req, now),
        Route::Stats => Reply::json(200, &admin::stats(&app.swarm, now)),
        Route::AddTorrentInfo => {
            Reply::admin(body.and_then(|body| admin::add_torrent_info(&app.swarm, &body, now)))
        }
        Route::SaveState => Reply::admin(admin::save_state(app)),
        Route::Shutdown => {
            let mut reply = Reply::admin(Ok(json!({ "message": "Server shutting down..." })));
            reply.then_shut_down = true;
            reply
        }
        Route::Head(content_type) => {
            let mut reply = Reply::bencode(Vec::new());
            reply.content_type = content_type;
            reply
        }
    }
}

fn announce(app: &App, query: &str, ip: IpAddr, now: u64) -> Vec<u8> {
    match protocol::parse_announce(query, ip) {
        Ok(req) => {
            let style = req.style;
            let resp = app.swarm.announce(&req, now);
            protocol::encode_announce(&resp, style)
        }
        Err(e) => protocol::encode_failure(&e),
    }
}

fn wants_scrape_json(req: &Incoming) -> bool {
    req.wants_json
        || protocol::query_value(req.query, "format").is_some_and(|v| v.as_ref() == b"json")
}

fn scrape(app: &App, req: &Incoming, now: u64) -> Reply {
    let json = wants_scrape_json(req);
    match protocol::parse_scrape(req.query) {
        Ok(hashes) => {
            let found = app.swarm.scrape(&hashes, now);
            if json {
                Reply::json(200, &admin::scrape_json(found))
            } else {
                let counts: Vec<_> = found
                    .into_iter()
                    .map(|(hash, _, counts)| (hash, counts))
                    .collect();
                Reply::bencode(protocol::encode_scrape(&counts))
            }
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
