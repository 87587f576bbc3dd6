//! From an HTTP request (plain values) to a reply: who the client is, which route, access, and
//! calling the handler. Knows nothing of sockets; `server.rs` feeds it and writes what it returns.

use std::net::{IpAddr, SocketAddr};

use log::error;
use serde_json::{json, Value};

use crate::api::access::{self, Who};
use crate::api::admin;
use crate::api::app::App;
use crate::api::index;
use crate::api::metrics::{Endpoint, Gauges};
pub use crate::api::reply::Reply;
use crate::api::routes::{self, Need, Route};
use crate::api::shared::{Shared, Writes};
use crate::api::{accounts, bittorrent, events, feeds, openapi, web};
use crate::error::ApiError;
use crate::protocol::http;
use crate::protocol::ids::InfoHash;
use crate::protocol::{self, AnnounceResponse, Family};
use crate::store::swarm::canonical_ip;
use crate::store::users::{self, Role};

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
    /// The index thread: listings, searches and feeds, one at a time, in order.
    Index,
}

/// A request ready to be answered: routed and access-checked, with everything the handler needs.
#[derive(Debug)]
pub struct Prepared {
    route: Result<Route, ApiError>,
    /// Who is calling, as far as the route needed to know.
    who: Who,
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
    /// The `Origin` of a cross-origin request from an allowed `--cors-origin`.
    cors_origin: Option<String>,
    /// The event a reconnecting live-event client saw last (`Last-Event-ID`).
    last_event_id: Option<u64>,
    /// The session of a browser that signed in.
    signed_in: Option<SignedIn>,
    /// A request for `/` from a browser (it asks for HTML, and is no announce).
    browser: bool,
    /// It came over TLS.
    secure: bool,
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
    /// Routes `request` from `remote` and decides access (404, 405, 401 and 403 are settled here).
    pub fn new(app: &App, request: http::Request, remote: SocketAddr) -> Prepared {
        let client = client(app, canonical_ip(remote.ip()), &request);
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path.to_owned(), query.to_owned()),
            None => (request.target.clone(), String::new()),
        };
        let mut who = Who::Anonymous;
        let mut signed_in = None;
        let route = routes::resolve(&request.method, &path).and_then(|route| {
            // With a shared store, users, sessions and the index are read again first when
            // another instance changed them. Announces and scrapes go to the store itself; the
            // page's files and the OpenAPI document are the binary's.
            let reads_store = !matches!(
                route,
                Route::Announce { .. } | Route::Scrape { .. } | Route::Web(_) | Route::OpenApi
            );
            if reads_store {
                let accounting = matches!(
                    route,
                    Route::ListUsers | Route::ShowUser(_) | Route::Me | Route::ShowSession
                );
                app.sync(accounting)
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            }
            (who, signed_in) = authorize(app, &route, &request, &query, client)?;
            Ok(route)
        });
        // Read by uploads only: announces copy nothing more.
        let content_type = matches!(route, Ok(Route::UploadTorrent))
            .then(|| request.header("Content-Type").map(str::to_owned))
            .flatten();
        let host = request.header("Host");
        let host_ok = access::host_allowed(&app.config.access, host);
        let last_event_id = matches!(route, Ok(Route::Events))
            .then(|| {
                events::last_event_id(request.header("Last-Event-ID")).or_else(|| {
                    let value = protocol::query_value(&query, "last_event_id")?;
                    std::str::from_utf8(&value).ok()?.parse().ok()
                })
            })
            .flatten();
        let browser = request.target == "/" || request.target.starts_with("/?");
        let browser = browser && web::is_browser(request.header("Accept"), &query);
        Prepared {
            secure: false,
            browser,
            signed_in,
            last_event_id,
            cors_origin: cors_origin(app, &request),
            route,
            who,
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

    /// Marks a request that came over TLS: its announce URLs are `https://`, its cookies `Secure`.
    pub fn over_tls(mut self, secure: bool) -> Prepared {
        self.secure = secure;
        self
    }

    /// Where the request is answered: work that may take long (disk, whole-state walks) runs
    /// away from the connection loop, and anonymous work never queues in front of an operator's.
    pub fn queue(&self, app: &App) -> Queue {
        match self.route {
            _ if self.head_only => Queue::Inline,
            Ok(Route::Stats) if !app.config.require_passkey => Queue::Public,
            // Walks of the whole index, reading a stored file, hashing a password (Argon2id takes
            // tens of milliseconds on purpose): away from the announces.
            Ok(
                Route::SignIn
                | Route::AcceptInvite(_)
                | Route::Catalog
                | Route::Totals
                | Route::ShowTorrent(_)
                | Route::Rss { .. }
                | Route::Torznab,
            ) => Queue::Index,
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
        let mut reply = self.answer(app);
        if let Some(origin) = &self.cors_origin {
            // A page of an allowed --cors-origin may read the answer (with its credentials).
            reply.headers.extend([
                ("Access-Control-Allow-Origin", origin.clone()),
                ("Access-Control-Allow-Credentials", "true".to_owned()),
                ("Vary", "Origin".to_owned()),
            ]);
        }
        reply
    }

    fn answer(&self, app: &App) -> Reply {
        let route = match &self.route {
            // A CORS preflight from an allowed origin: the methods the path has, and the
            // headers the API reads. Others get the 405 (no permission) as before.
            Err(ApiError::MethodNotAllowed { allow, .. })
                if self.method == "OPTIONS" && self.cors_origin.is_some() =>
            {
                let mut reply = Reply::typed(204, "text/plain", Vec::new());
                reply.headers.extend([
                    ("Access-Control-Allow-Methods", (*allow).to_owned()),
                    (
                        "Access-Control-Allow-Headers",
                        "Authorization, Content-Type, Last-Event-ID".to_owned(),
                    ),
                    ("Access-Control-Max-Age", "600".to_owned()),
                ]);
                return reply;
            }
            Err(e) => return Reply::error(e.clone()),
            Ok(route) => route.clone(),
        };
        if self.head_only {
            return head_reply(&route, self);
        }
        let path = redact(&self.path);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reply_to(app, route, self)))
            .unwrap_or_else(|_| {
                error!("handler panicked on {path}");
                Reply::json(500, &json!({ "error": "internal error" }))
            })
    }
}

/// The largest body `request` (its head) may send: uploads by a caller allowed to upload may
/// send `--max-upload-size`, everything else [`admin::BODY_LIMIT`]. Asked once the head is in,
/// so a stranger cannot make the server hold more than that for them.
pub fn body_limit(app: &App, request: &http::Request, remote: SocketAddr) -> usize {
    if request.method != "POST" {
        return admin::BODY_LIMIT;
    }
    let path = request.target.split('?').next().unwrap_or_default();
    let query = request.target.split_once('?').map_or("", |(_, q)| q);
    match routes::resolve(&request.method, path) {
        Ok(route @ Route::UploadTorrent) => {
            let client = client(app, canonical_ip(remote.ip()), request);
            match authorize(app, &route, request, query, client) {
                Ok(_) => app.config.max_upload.max(admin::BODY_LIMIT),
                Err(_) => admin::BODY_LIMIT,
            }
        }
        _ => admin::BODY_LIMIT,
    }
}

/// Finds out who the caller is, as far as `route` needs: `Err` with the refusal when they may
/// not call it. Only routes that need someone look for a token (announces skip the scan).
fn authorize(
    app: &App,
    route: &Route,
    request: &http::Request,
    query: &str,
    client: Client,
) -> Result<(Who, Option<SignedIn>), ApiError> {
    let private = app.config.require_passkey;
    let need = match route {
        // With passkeys required, the list of every torrent is for operators only.
        Route::Stats if private => Need::Admin,
        Route::Metrics if app.config.public_metrics => Need::Nobody,
        route => route.need(),
    };
    let rules = &app.config.access;
    if need == Need::Nobody {
        // Announces end here: no token scan, no header lookups.
        if matches!(route, Route::SignIn | Route::AcceptInvite(_)) {
            // No one signs a browser in from another site's page (login CSRF).
            access::check_browser(rules, &caller_facts(request, route, client, None))?;
        }
        return Ok((Who::Anonymous, None));
    }
    let token = token(request, query);
    let caller = caller_facts(request, route, client, token.as_deref());
    let is_admin_token = |t: &str| {
        rules
            .token
            .as_deref()
            .is_some_and(|expected| access::constant_time_eq(expected.as_bytes(), t.as_bytes()))
    };
    let user = match token.as_deref() {
        Some(t) if !is_admin_token(t) => match app.users.by_token(t) {
            Some(user) => Some(user),
            None if t.starts_with(users::TOKEN_PREFIX) => {
                return Err(ApiError::Unauthorized(
                    "invalid API token: it was rotated, or its user was disabled or removed".into(),
                ))
            }
            None => None,
        },
        _ => None,
    };
    // Without a token, a browser's session cookie; its unsafe requests carry the CSRF token.
    let mut signed_in = None;
    let user = match user {
        None if token.is_none() => {
            let id = accounts::session_cookie(request.header("Cookie"));
            match id.and_then(|id| Some((id, app.users.session(id, app.now())?))) {
                Some((id, (user, csrf))) => {
                    if !matches!(request.method.as_str(), "GET" | "HEAD") {
                        access::check_browser(rules, &caller)?;
                        let sent = request.header("X-CSRF-Token").unwrap_or_default();
                        if !access::constant_time_eq(sent.trim().as_bytes(), csrf.as_bytes()) {
                            return Err(ApiError::Forbidden(
                                "missing or wrong CSRF token: send the session's csrf_token in \
                                 X-CSRF-Token"
                                    .into(),
                            ));
                        }
                    }
                    signed_in = Some(SignedIn {
                        session: id.to_owned(),
                        csrf,
                    });
                    Some(user)
                }
                None => None,
            }
        }
        user => user,
    };
    let admin = || access::check(rules, &caller).map(|()| Who::Admin);
    let who = match (need, user) {
        (Need::Member | Need::Reader, Some(user)) => Ok(Who::User(user)),
        (Need::Uploader, Some(user)) if app.config.user_uploads || user.role >= Role::Uploader => {
            Ok(Who::User(user))
        }
        (Need::Uploader, Some(_)) => Err(ApiError::Forbidden(
            "only operators and users with the uploader role upload to this tracker (it runs \
             without --user-uploads)"
                .into(),
        )),
        (Need::Moderator, Some(user)) if user.role >= Role::Moderator => Ok(Who::User(user)),
        (Need::Admin, Some(user)) if user.role == Role::Admin => Ok(Who::User(user)),
        (Need::Moderator, Some(_)) => Err(ApiError::Forbidden(
            "this is for operators and moderators; your role does not open it".into(),
        )),
        (Need::Admin, Some(_)) => Err(ApiError::Forbidden(
            "this is for operators: a user's API token does not open it unless their role is admin"
                .into(),
        )),
        (Need::Member, None) => Err(ApiError::Unauthorized(
            "this is a user's: send Authorization: Bearer <your API token>".into(),
        )),
        (Need::Reader, None) => match admin() {
            Ok(who) => Ok(who),
            Err(_) if !private => Ok(Who::Anonymous),
            Err(_) if token.is_none() => Err(ApiError::Unauthorized(
                "this tracker is private: send Authorization: Bearer <your API token>".into(),
            )),
            Err(e) => Err(e),
        },
        (Need::Admin | Need::Moderator | Need::Uploader, None) => admin(),
        (Need::Nobody, _) => Ok(Who::Anonymous),
    }?;
    Ok((who, signed_in))
}

/// The facts of a request that `access` decides on.
fn caller_facts<'a>(
    request: &'a http::Request,
    route: &Route,
    client: Client,
    token: Option<&'a str>,
) -> access::Caller<'a> {
    access::Caller {
        ip: client.known.then_some(client.ip),
        host: request.header("Host"),
        origin: request.header("Origin"),
        sec_fetch_site: request.header("Sec-Fetch-Site"),
        content_type: request.header("Content-Type"),
        json_body: route.takes_body(),
        token,
    }
}

/// A browser signed in with a session cookie: its session id and CSRF token.
#[derive(Debug, Clone)]
struct SignedIn {
    session: String,
    csrf: String,
}

/// The `Origin` of a request from an allowed `--cors-origin` (not the tracker's own pages).
fn cors_origin(app: &App, request: &http::Request) -> Option<String> {
    let origin = request.header("Origin")?.trim().trim_end_matches('/');
    let lower = origin.to_ascii_lowercase();
    app.config
        .access
        .allowed_origins
        .contains(&lower)
        .then(|| origin.to_owned())
}

/// HEAD answers like GET would, with no body and no side effects.
fn head_reply(route: &Route, req: &Prepared) -> Reply {
    let content_type = match route {
        Route::Announce { .. } | Route::Metrics => "text/plain",
        Route::Scrape { .. } if !wants_scrape_json(req) => "text/plain",
        Route::Download { .. } => index::TORRENT_TYPE,
        Route::Rss { .. } => feeds::RSS_TYPE,
        Route::Torznab => feeds::XML_TYPE,
        Route::Events => events::STREAM_TYPE,
        Route::Web(_) => "text/html; charset=utf-8",
        _ => "application/json",
    };
    let mut reply = Reply::plain(Vec::new());
    reply.content_type = content_type;
    reply
}

fn reply_to(app: &App, route: Route, req: &Prepared) -> Reply {
    let changes_index = writes(&route) == Some(Writes::Index);
    let removal = matches!(route, Route::RemoveTorrent(_));
    let reply = match (&app.shared, writes(&route)) {
        (Some(shared), Some(writes)) => answer_shared(app, shared, writes, route, req),
        _ => answer(app, route, req),
    };
    if changes_index && (200..300).contains(&reply.status) {
        publish_change(app, &reply, removal);
    }
    reply
}

/// What a route may change in a shared store (reads change nothing there: announces and
/// scrapes write through the store's scripts).
fn writes(route: &Route) -> Option<Writes> {
    match route {
        Route::CreateUser
        | Route::DeleteUser(_)
        | Route::RotateUser(_)
        | Route::DisableUser(_)
        | Route::EnableUser(_)
        | Route::UserToken(_)
        | Route::SetRole(_)
        | Route::InviteUser(_)
        | Route::AcceptInvite(_)
        | Route::SignIn
        | Route::SignOut
        | Route::MyToken
        | Route::MyPasskey => Some(Writes::Users),
        Route::UploadTorrent
        | Route::RegisterTorrent
        | Route::EditTorrent(_)
        | Route::RemoveTorrent(_) => Some(Writes::Index),
        _ => None,
    }
}

/// A change with a shared store: under its write lock, on a current copy, and written back with
/// a log entry. If the store cannot take it, the caller gets a 503 and this instance reloads
/// its copy before the next request (so it serves nothing the store does not hold).
fn answer_shared(
    app: &App,
    shared: &Shared,
    writes: Writes,
    route: Route,
    req: &Prepared,
) -> Reply {
    let now = app.now();
    let write = match shared.begin(&app.swarm, &app.users, now) {
        Ok(write) => write,
        Err(e) => return Reply::error(ApiError::Unavailable(e.to_string())),
    };
    let reply = answer(app, route, req);
    if !(200..300).contains(&reply.status) {
        write.abandon();
        return reply;
    }
    let hash = serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| {
            v["info_hash"]
                .as_str()
                .and_then(|h| InfoHash::from_hex(h).ok())
        });
    match write.commit(&app.swarm, &app.users, writes, hash, now) {
        Ok(()) => reply,
        Err(e) => {
            error!("a change could not be written to the shared store: {e}");
            Reply::error(ApiError::Unavailable(format!(
                "{e}; nothing was changed, try again"
            )))
        }
    }
}

/// The live event for a change of the index that `reply` reports: `removed`, or `added` /
/// `updated` with the torrent as the API lists it.
fn publish_change(app: &App, reply: &Reply, removal: bool) {
    let Ok(answer) = serde_json::from_slice::<Value>(&reply.body) else {
        return;
    };
    let Some(hash) = answer["info_hash"]
        .as_str()
        .and_then(|h| InfoHash::from_hex(h).ok())
    else {
        return;
    };
    if removal {
        app.events
            .publish("removed", &json!({ "info_hash": hash.to_hex() }));
        return;
    }
    let Some((hash, info, counts)) = app.swarm.entry(&hash) else {
        return;
    };
    let kind = if answer["created"] == json!(true) {
        "added"
    } else {
        "updated"
    };
    let found = crate::api::catalog::Found { hash, info, counts };
    app.events
        .publish(kind, &crate::api::catalog::summary_json(&found));
}

fn answer(app: &App, route: Route, req: &Prepared) -> Reply {
    let now = app.now();
    let base = announce_base(app, req);
    let passkey = match &req.who {
        Who::User(user) => Some(user.passkey.as_str()),
        _ => None,
    };
    let links = index::Links {
        base: &base,
        passkey,
    };
    let (users, swarm, body) = (&app.users, &app.swarm, &req.body);
    let success = if route == Route::CreateUser { 201 } else { 200 };
    let result = match route {
        Route::Announce { passkey: None } if req.path == "/" && req.browser => {
            return web::to_the_page()
        }
        Route::Announce { passkey } => {
            return announce(app, &req.query, passkey.as_deref(), req.client.ip, now)
        }
        Route::Scrape { passkey } => return scrape(app, req, passkey.as_deref(), now),
        Route::Download { hash, passkey } => {
            return download(app, req, &hash, passkey.as_deref(), now)
        }
        Route::UploadTorrent => {
            return match index::upload(app, &req.who, req.content_type.as_deref(), body, now) {
                Ok((status, value)) => Reply::json(status, &value),
                Err(e) => Reply::error(e),
            }
        }
        Route::Stats => Ok(admin::stats(swarm, now)),
        Route::Metrics => {
            let (torrents, seeders, leechers) = app.counts();
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
        Route::ListUsers => Ok(admin::list_users(users, &base)),
        Route::CreateUser => admin::create_user(users, body, &base, now),
        Route::ShowUser(name) => admin::show_user(users, &name, &base),
        Route::DeleteUser(name) => admin::delete_user(users, &name),
        Route::RotateUser(name) => admin::rotate_user(users, &name, &base),
        Route::DisableUser(name) => admin::set_user_disabled(users, &name, true, &base),
        Route::EnableUser(name) => admin::set_user_disabled(users, &name, false, &base),
        Route::UserToken(name) => admin::issue_token(users, &name, &base),
        Route::SetRole(name) => admin::set_role(users, &name, body, &base),
        Route::InviteUser(name) => accounts::invite(app, &name, &base, now),
        Route::ShowInvite(secret) => accounts::show_invite(app, &secret, now),
        Route::AcceptInvite(secret) => {
            return accounts::accept_invite(app, &secret, body, now, req.secure)
        }
        Route::SignIn => return accounts::sign_in(app, body, req.client.ip, now, req.secure),
        Route::ShowSession => match (&req.who, &req.signed_in) {
            (Who::User(user), Some(signed_in)) => {
                Ok(accounts::session_info(user, &signed_in.csrf, &base))
            }
            _ => Err(ApiError::Unauthorized(
                "not signed in: this is the session of a browser, not of an API token".into(),
            )),
        },
        Route::SignOut => {
            let session = req.signed_in.as_ref().map(|s| s.session.as_str());
            return accounts::sign_out(app, session, req.secure);
        }
        Route::ListTorrents => Ok(admin::list_torrents(swarm, now)),
        Route::RemoveTorrent(hash) => admin::remove_torrent(swarm, &app.files, &hash),
        Route::Catalog => index::catalog(app, &req.query, &links),
        Route::ShowTorrent(hash) => index::show(app, &hash, &links),
        Route::EditTorrent(hash) => index::edit(app, &req.who, &hash, body, &links),
        Route::Totals => Ok(index::totals(app)),
        Route::Me | Route::MyToken | Route::MyPasskey => {
            let Who::User(user) = &req.who else {
                return Reply::error(ApiError::Unauthorized(
                    "this is a user's: send Authorization: Bearer <your API token>".into(),
                ));
            };
            match route {
                Route::MyToken => admin::issue_token(users, &user.name, &base),
                Route::MyPasskey => admin::rotate_user(users, &user.name, &base),
                _ => admin::show_user(users, &user.name, &base),
            }
        }
        Route::OpenApi => {
            return Reply::typed(200, "application/json", openapi::document().into_bytes())
        }
        Route::Rss { passkey } => return feeds::rss(app, &passkey, &req.query, &base, now),
        Route::Torznab => return feeds::torznab(app, &req.query, &base, now),
        Route::Events => return event_stream(app, req.last_event_id, &req.query),
        Route::Web(rest) => return web::page(&rest),
        Route::TorrentHistory(hash) => index::history(app, &hash),
        Route::History => Ok(app.swarm.totals_history().to_json()),
    };
    match result {
        Ok(value) => Reply::json(success, &value),
        Err(e) => Reply::error(e),
    }
}

/// `GET /api/v1/events`: takes a subscriber's place and starts the stream after the event the
/// client saw last (a reconnect), or with the events from now on.
fn event_stream(app: &App, last_event_id: Option<u64>, query: &str) -> Reply {
    let only = match events::followed(query) {
        Ok(only) => only,
        Err(e) => return Reply::error(ApiError::BadRequest(e)),
    };
    if let Err(full) = app.events.subscribe() {
        return Reply::error(ApiError::Unavailable(format!(
            "{} live-event clients are connected, the most this tracker takes (--max-event-clients)",
            full.max
        )));
    }
    let after = last_event_id.unwrap_or_else(|| app.events.newest());
    Reply {
        stream: Some(events::Stream { after, only }),
        ..Reply::typed(200, events::STREAM_TYPE, events::RETRY.to_vec())
    }
}

/// A stored `.torrent` with the caller's announce URL in it: the passkey's user's on a passkey
/// link (on an open tracker, an unknown passkey gives the plain announce URL), else the API
/// caller's (a user's, or the plain one).
fn download(app: &App, req: &Prepared, hash: &str, passkey: Option<&str>, now: u64) -> Reply {
    let base = announce_base(app, req);
    let passkey = match passkey {
        Some(key) => match app.users.resolve(Some(key), now) {
            Ok(_) => Some(key),
            Err(e) if app.config.require_passkey => {
                return Reply::error(ApiError::Forbidden(e.to_string()))
            }
            Err(_) => None,
        },
        None => match &req.who {
            Who::User(user) => Some(user.passkey.as_str()),
            _ => None,
        },
    };
    let links = index::Links {
        base: &base,
        passkey,
    };
    match index::download(app, hash, &links) {
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
        (None, Some(host)) if req.secure => format!("https://{host}"),
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

fn announce(app: &App, query: &str, passkey: Option<&str>, ip: IpAddr, now: u64) -> Reply {
    let outcome = bittorrent::passkey_user(app, passkey, query, now).and_then(|caller| {
        let req = protocol::parse_announce(query, ip)?;
        let mut answer = AnnounceResponse::default();
        bittorrent::announce(app, &caller, &req, now, Family::Any, &mut answer)?;
        Ok(protocol::encode_announce(&answer, req.style))
    });
    outcome.map_or_else(|e| Reply::failure(&e), Reply::plain)
}

fn wants_scrape_json(req: &Prepared) -> bool {
    req.wants_json
        || protocol::query_value(&req.query, "format").is_some_and(|v| v.as_ref() == b"json")
}

fn scrape(app: &App, req: &Prepared, passkey: Option<&str>, now: u64) -> Reply {
    let json = wants_scrape_json(req);
    let found = bittorrent::passkey_user(app, passkey, &req.query, now).and_then(|caller| {
        let hashes = protocol::parse_scrape(&req.query)?;
        bittorrent::scrape(app, &caller, &hashes, now)
    });
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
