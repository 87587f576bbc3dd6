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
    /// The client: the socket peer, or the right-most X-Forwarded-For entry from a trusted proxy.
    client_ip: IpAddr,
    token: Option<String>,
    wants_json: bool,
    body: Result<Vec<u8>, AdminError>,
}

fn handle(app: &App, mut request: Request) {
    let remote = request
        .remote_addr()
        .map_or(IpAddr::from([127, 0, 0, 1]), |a| canonical_ip(a.ip()));
    let client_ip = client_ip(app, remote, &request);
    let body = if *request.method() == Method::Post {
        read_body(&mut request)
    } else {
        Ok(Vec::new())
    };
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let incoming = Incoming {
        method: request.method().clone(),
        path,
        query,
        client_ip,
        token: token(&request, query),
        wants_json: header(&request, "Accept").is_some_and(|v| v.contains("application/json")),
        body,
    };
    let reply = catch_unwind(AssertUnwindSafe(|| route(app, &incoming))).unwrap_or_else(|_| {
        error!("handler panicked on {} {}", incoming.method, incoming.path);
        Reply::json(500, &json!({ "error": "internal error" }))
    });
    debug!(
        "{client_ip} {} {} -> {} ({} bytes)",
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
        debug!("writing a response to {client_ip} failed: {e}");
    }
    if then_shut_down {
        app.request_shutdown();
    }
}

fn route(app: &App, req: &Incoming) -> Reply {
    use Method::{Get, Head, Post};
    const READ: &str = "GET, HEAD";
    let method = &req.method;
    let allowed = |allow: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(AdminError::MethodNotAllowed {
                method: method.to_string(),
                allow,
            })
        }
    };
    let is_read = matches!(method, Get | Head);
    let checked = match req.path {
        "/announce" | "/" | "/scrape" | "/stats" => allowed(READ, is_read),
        "/add_torrent_info" | "/shutdown" => allowed("POST", *method == Post),
        "/save_state" => allowed("GET, HEAD, POST", is_read || *method == Post),
        other => Err(AdminError::NotFound(other.to_owned())),
    };
    let is_admin = matches!(req.path, "/add_torrent_info" | "/shutdown" | "/save_state");
    let checked = checked.and_then(|()| {
        if is_admin {
            admin::check_access(
                req.client_ip,
                req.token.as_deref(),
                app.config.admin_token.as_deref(),
            )
        } else {
            Ok(())
        }
    });
    if let Err(e) = checked {
        return Reply::admin(Err(e));
    }
    if *method == Head {
        // HEAD is safe: it answers like GET would, but changes nothing and sends no body.
        let content_type = match req.path {
            "/announce" | "/" => "text/plain",
            "/scrape" if !wants_scrape_json(req) => "text/plain",
            _ => "application/json",
        };
        let mut reply = Reply::json(200, &Value::Null);
        reply.content_type = content_type;
        reply.body.clear();
        return reply;
    }
    let now = app.now();
    match req.path {
        "/announce" | "/" => Reply::bencode(announce(app, req.query, req.client_ip, now)),
        "/scrape" => scrape(app, req, now),
        "/stats" => Reply::json(200, &admin::stats(&app.swarm, now)),
        "/add_torrent_info" => Reply::admin(
            req.body
                .clone()
                .and_then(|body| admin::add_torrent_info(&app.swarm, &body, now)),
        ),
        "/save_state" => Reply::admin(admin::save_state(app)),
        "/shutdown" => {
            let mut reply = Reply::admin(Ok(json!({ "message": "Server shutting down..." })));
            reply.then_shut_down = true;
            reply
        }
        _ => Reply::admin(Err(AdminError::NotFound(req.path.to_owned()))),
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
    let parsed = match protocol::parse_scrape(req.query) {
        Ok(parsed) => parsed,
        Err(e) if json => return Reply::json(400, &json!({ "error": e.to_string() })),
        Err(e) => return Reply::bencode(protocol::encode_failure(&e)),
    };
    let found = app.swarm.scrape(&parsed.info_hashes, now);
    if json {
        let files: serde_json::Map<String, Value> = found
            .into_iter()
            .map(|(hash, info, counts)| {
                let entry = json!({
                    "complete": counts.complete,
                    "incomplete": counts.incomplete,
                    "downloaded": counts.downloaded,
                    "name": info.name,
                });
                (hash.to_hex(), entry)
            })
            .collect();
        Reply::json(200, &json!({ "files": files }))
    } else {
        let counts: Vec<_> = found
            .into_iter()
            .map(|(hash, _, counts)| (hash, counts))
            .collect();
        Reply::bencode(protocol::encode_scrape(&counts))
    }
}

/// The client's address: the socket peer, unless that is a trusted proxy that sent X-Forwarded-For.
fn client_ip(app: &App, remote: IpAddr, request: &Request) -> IpAddr {
    if !app
        .config
        .trusted_proxies
        .iter()
        .any(|net| net.contains(&remote))
    {
        return remote;
    }
    let forwarded = request
        .headers()
        .iter()
        .rfind(|h| h.field.equiv("X-Forwarded-For"))
        .and_then(|h| h.value.as_str().rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded.map_or(remote, canonical_ip)
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
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some(token.trim().to_owned());
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
