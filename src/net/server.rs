//! The network side: listening sockets and a fixed pool of worker threads, each running its own
//! event loop (`mio`) over the connections it accepted. A request is answered synchronously by the
//! worker that read it; slow admin work (saving, whole-state listings) goes to one admin thread,
//! anonymous `/stats` to a public one, listings, searches and feeds to an index thread. Live-event
//! streams are connections of these loops too: woken when events are published, each worker copies
//! them to its own streams. There is no thread per connection, so idle or slow clients cost memory,
//! not threads.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{debug, error, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use rustls::ServerConfig;

use crate::api::admin::BODY_LIMIT;
use crate::api::app::App;
use crate::api::dispatch::{Prepared, Queue, Reply};
use crate::api::events;
use crate::api::metrics::Endpoint;
use crate::net::tls::TlsStream;
use crate::protocol::http;
use crate::protocol::ids::InfoHash;
use crate::store::swarm::canonical_ip;

/// A connection that sent nothing for this long (between requests) is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// A request whose head and body take longer than this to arrive is dropped (slow senders).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer the client does not read within this long is dropped with its connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Input held for one connection before it is answered; beyond it reading pauses (a complete
/// request is at most a 16 KiB head and a 64 KiB body). Only an upload by a caller allowed to
/// upload raises a connection's limit, to its head and declared body, for that request.
const MAX_INPUT: usize = http::MAX_HEAD_BYTES + BODY_LIMIT;
/// The slowest upload a raised limit waits for: the request may take [`REQUEST_TIMEOUT`] plus a
/// second for each this many bytes.
const SLOWEST_UPLOAD_BYTES_PER_SEC: usize = 64 * 1024;
/// Answers waiting for a client to read them; beyond this, no further request of its is answered
/// (nor read) until it reads. With MAX_INPUT this bounds what one connection holds.
pub const MAX_PENDING_OUTPUT: usize = 256 * 1024;
/// Live events waiting for a subscriber to read them when new ones come; a subscriber that lets
/// more pile up is dropped (it reconnects with `Last-Event-ID` when it reads again). So one holds
/// at most this and one batch of new events (at most the events' history).
const MAX_PENDING_EVENTS: usize = 64 * 1024;
/// Buffers bigger than this are given back once empty.
const KEEP_BUFFER: usize = 16 * 1024;
/// How often each worker looks for timed-out connections.
const TICK: Duration = Duration::from_millis(500);
const WAKER: Token = Token(usize::MAX);
/// TCP_DEFER_ACCEPT: how long the kernel holds a connection that has sent nothing yet.
const DEFER_ACCEPT_SECS: u32 = 5;
/// Listener tokens count down from here; connection tokens are slab keys from 0.
const FIRST_LISTENER: usize = usize::MAX - 1;

/// One address, with one listening socket per worker (SO_REUSEPORT lets the kernel spread
/// new connections over them).
pub struct Listener {
    pub addr: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
    /// HTTPS: the TLS settings its connections are served with.
    tls: Option<Arc<ServerConfig>>,
}

impl Listener {
    /// Serves this address over TLS.
    pub fn with_tls(self, config: Arc<ServerConfig>) -> Listener {
        Listener {
            tls: Some(config),
            ..self
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Opens `count` sockets on `addr` (IPv6 ones v6-only, so `0.0.0.0` and `[::]` can share a port).
/// With port 0, the first socket's port is used for the others.
///
/// The workers' sockets share the port with `SO_REUSEPORT`, which would also let any other
/// process of the same user join in and take a share of the clients. So the port is first
/// claimed without it: if anyone holds the port (another tinytracker included), that fails and
/// start-up stops.
pub fn bind(addr: SocketAddr, count: usize) -> anyhow::Result<Listener> {
    let addr = claim_port(addr)?;
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        // Accepted sockets inherit this: answers go out at once, without a setsockopt per connection.
        socket.set_nodelay(true)?;
        // Hand over connections only once their first bytes are in: the request can be read
        // straight after accept, and clients that connect and never send cost nothing here.
        set_defer_accept(&socket, DEFER_ACCEPT_SECS)?;
        socket
            .bind(&addr.into())
            .with_context(|| format!("cannot listen on {addr}"))?;
        socket.listen(1024)?;
        sockets.push(std::net::TcpListener::from(socket));
    }
    Ok(Listener {
        addr,
        sockets,
        tls: None,
    })
}

/// Binds `addr` once without `SO_REUSEPORT` and lets go: the port is free (or picked, for port 0).
fn claim_port(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        probe.set_only_v6(true)?;
    }
    // Connections of an earlier run in TIME_WAIT do not count as the port being in use.
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => anyhow::bail!(
            "cannot listen on {addr}: the port is already in use (another tinytracker, or another \
             program, is listening there)"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
    let bound = probe
        .local_addr()?
        .as_socket()
        .context("the listening socket has no address")?;
    Ok(bound)
}

/// Elsewhere than Linux there is no TCP_DEFER_ACCEPT: a connection that sends nothing is then an
/// idle connection from the start.
#[cfg(not(target_os = "linux"))]
fn set_defer_accept(_socket: &Socket, _secs: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(target_os = "linux")]
fn set_defer_accept(socket: &Socket, secs: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = secs as libc::c_int;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The running workers and admin thread.
pub struct Server {
    workers: Vec<JoinHandle<()>>,
    wakers: Vec<Arc<Waker>>,
    /// The admin and the public thread.
    admin: Vec<JoinHandle<()>>,
}

/// Limits on what clients may hold open.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections one address may hold (0: no limit).
    pub max_connections_per_ip: usize,
}

impl Limits {
    /// Connection slots only the `--local-admin` networks may take, so that `/save_state` and
    /// `/metrics` still get in when clients hold every other one.
    pub fn reserved_for_admins(&self) -> usize {
        (self.max_connections / 16).min(64)
    }
}

/// Open connections per address, shared by the workers (touched on accept and close only).
struct PerIp {
    shards: Vec<Mutex<HashMap<IpAddr, u32>>>,
}

impl PerIp {
    fn new() -> PerIp {
        PerIp {
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, ip: &IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        let byte = match ip {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(v6) => v6.octets()[15],
        };
        let shard = &self.shards[usize::from(byte) % self.shards.len()];
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more connection from `ip` unless it holds `max` already.
    fn try_add(&self, ip: IpAddr, max: usize) -> bool {
        let mut shard = self.shard(&ip);
        let count = shard.entry(ip).or_insert(0);
        if max > 0 && *count as usize >= max {
            return false;
        }
        *count += 1;
        true
    }

    fn remove(&self, ip: IpAddr) {
        let mut shard = self.shard(&ip);
        if let Some(count) = shard.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                shard.remove(&ip);
            }
        }
    }
}

/// Starts one worker per listening socket set and the admin thread.
pub fn start(
    app: &Arc<App>,
    listeners: Vec<Listener>,
    workers: usize,
    limits: Limits,
) -> anyhow::Result<Server> {
    // A zero would leave the listening sockets to nobody (and divide by zero below).
    let workers = workers.max(1);
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let (public_tx, public_rx) = mpsc::channel::<Job>();
    let (index_tx, index_rx) = mpsc::channel::<Job>();
    let per_ip = Arc::new(PerIp::new());
    type Sockets = Vec<(std::net::TcpListener, Option<Arc<ServerConfig>>)>;
    let mut per_worker: Vec<Sockets> = (0..workers).map(|_| Vec::new()).collect();
    for listener in listeners {
        for (i, socket) in listener.sockets.into_iter().enumerate() {
            per_worker[i % workers].push((socket, listener.tls.clone()));
        }
    }
    let mut handles = Vec::with_capacity(workers);
    let mut wakers = Vec::with_capacity(workers);
    let mut reply_senders = Vec::with_capacity(workers);
    for (index, sockets) in per_worker.into_iter().enumerate() {
        let poll = Poll::new().context("creating an event loop")?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (replies_tx, replies_rx) = mpsc::channel();
        let mut worker = Worker {
            app: Arc::clone(app),
            index,
            poll,
            listeners: Vec::new(),
            conns: Slab::new(),
            jobs: jobs_tx.clone(),
            public_jobs: public_tx.clone(),
            index_jobs: index_tx.clone(),
            per_ip: Arc::clone(&per_ip),
            replies: replies_rx,
            limits,
            accepting: true,
            streams: Vec::new(),
            events_sent: app.events.newest(),
            heartbeats_sent: app.events.heartbeats(),
        };
        for (i, (socket, tls)) in sockets.into_iter().enumerate() {
            let mut listener = TcpListener::from_std(socket);
            worker.poll.registry().register(
                &mut listener,
                Token(FIRST_LISTENER - i),
                Interest::READABLE,
            )?;
            worker.listeners.push((listener, tls));
        }
        wakers.push(Arc::clone(&waker));
        reply_senders.push((replies_tx, waker));
        handles.push(
            std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || worker.run())
                .context("starting a worker thread")?,
        );
    }
    drop((jobs_tx, public_tx, index_tx));
    let event_wakers = wakers.clone();
    app.events.set_notify(Box::new(move || {
        for waker in &event_wakers {
            let _ = waker.wake();
        }
    }));
    let reply_senders = Arc::new(reply_senders);
    let (admin_app, senders) = (Arc::clone(app), Arc::clone(&reply_senders));
    let admin = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || run_jobs(&admin_app, &jobs_rx, &senders))
        .context("starting the admin thread")?;
    let (index_app, senders) = (Arc::clone(app), Arc::clone(&reply_senders));
    let index = std::thread::Builder::new()
        .name("index".into())
        .spawn(move || run_jobs(&index_app, &index_rx, &senders))
        .context("starting the index thread")?;
    let public_app = Arc::clone(app);
    let public = std::thread::Builder::new()
        .name("public".into())
        .spawn(move || run_public(&public_app, &public_rx, &reply_senders))
        .context("starting the public thread")?;
    Ok(Server {
        workers: handles,
        wakers,
        admin: vec![admin, public, index],
    })
}

impl Server {
    /// Tells every worker to look at the shutdown flag now.
    pub fn wake(&self) {
        for waker in &self.wakers {
            let _ = waker.wake();
        }
    }

    /// Waits for the workers and the admin thread, at most `grace`. Returns false if some were
    /// still busy (a slow client); they are left to end with the process.
    pub fn join(self, grace: Duration) -> bool {
        let (done, all_done) = mpsc::channel();
        std::thread::spawn(move || {
            for worker in self.workers {
                let _ = worker.join();
            }
            for thread in self.admin {
                let _ = thread.join();
            }
            let _ = done.send(());
        });
        all_done.recv_timeout(grace).is_ok()
    }
}

/// A slow request, sent to the admin or public thread; the answer goes back to the worker and
/// connection.
struct Job {
    prepared: Prepared,
    endpoint: Endpoint,
    worker: usize,
    conn: usize,
    generation: u64,
    /// Set when the connection is gone before the job ran: then it is not run at all.
    cancelled: Arc<AtomicBool>,
}

type ReplySenders = [(Sender<Answer>, Arc<Waker>)];

struct Answer {
    endpoint: Endpoint,
    conn: usize,
    generation: u64,
    reply: Reply,
}

/// One request's log line: who, method and path (passkeys masked), status, size, and why a
/// BitTorrent client was refused.
fn log_line(described: &str, reply: &Reply) -> String {
    let mut line = format!(
        "{described} -> {} ({} bytes)",
        reply.status,
        reply.body.len()
    );
    if let Some(reason) = &reply.refused {
        line.push_str(&format!(" refused: {reason}"));
    }
    line
}

/// Slow work, one job at a time: the operator's (never behind anonymous work), or the index's.
fn run_jobs(app: &App, jobs: &Receiver<Job>, workers: &ReplySenders) {
    while let Ok(job) = jobs.recv() {
        if job.cancelled.load(Ordering::Relaxed) {
            continue;
        }
        let Job {
            prepared,
            endpoint,
            worker,
            conn,
            generation,
            ..
        } = job;
        let reply = prepared.run(app);
        send_answer(workers, (worker, conn, generation), endpoint, reply);
    }
}

/// Anonymous whole-state work (`/stats`): every job waiting when one is started shares its answer,
/// so a crowd of requests costs one walk of the swarm, and jobs whose client is gone cost nothing.
/// The walk starts after each of them arrived, so none gets an answer older than its request.
fn run_public(app: &App, jobs: &Receiver<Job>, workers: &ReplySenders) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        batch.retain(|job| !job.cancelled.load(Ordering::Relaxed));
        let Some(Job {
            prepared,
            endpoint,
            worker,
            conn,
            generation,
            ..
        }) = batch.pop()
        else {
            continue;
        };
        // Every job here is a plain `/stats`: one answer fits them all.
        let reply = prepared.run(app);
        for job in &batch {
            let to = (job.worker, job.conn, job.generation);
            send_answer(workers, to, job.endpoint, reply.clone());
        }
        send_answer(workers, (worker, conn, generation), endpoint, reply);
    }
}

/// Hands an answer to the worker `to.0` for its connection `to.1` (of generation `to.2`).
fn send_answer(workers: &ReplySenders, to: (usize, usize, u64), endpoint: Endpoint, reply: Reply) {
    let (worker, conn, generation) = to;
    if let Some((sender, waker)) = workers.get(worker) {
        let answer = Answer {
            endpoint,
            conn,
            generation,
            reply,
        };
        if sender.send(answer).is_ok() {
            let _ = waker.wake();
        }
    }
}

struct Conn {
    stream: Stream,
    peer: SocketAddr,
    /// When the connection was accepted (a TLS handshake must end within REQUEST_TIMEOUT).
    accepted: Instant,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    last_activity: Instant,
    /// When the first byte of the request being read arrived.
    request_started: Option<Instant>,
    /// Input held before reading pauses: [`MAX_INPUT`], or an allowed upload's size.
    input_cap: usize,
    /// How long the request being read may take to arrive.
    request_time: Duration,
    /// A live-event stream: the id of the last event looked at for it, and the torrents whose
    /// counts it follows (none: all). Its input is ignored.
    subscribed: Option<(u64, Option<Box<[InfoHash]>>)>,
    continue_sent: bool,
    /// A slow request is with the admin thread; nothing else is read until its answer is written.
    waiting: Option<PendingReply>,
    close_when_written: bool,
    /// When the pending answer last moved (or started to wait): a client that reads nothing for
    /// WRITE_TIMEOUT is dropped, however much it keeps sending.
    write_progress: Instant,
    /// What the event loop watches for this connection; `None` until it first has to wait.
    registered: Option<Interest>,
    /// Tells answers for an earlier connection in the same slab slot apart.
    generation: u64,
    /// The address this connection is counted under for --max-connections-per-ip.
    counted_as: Option<IpAddr>,
    /// Cancels the queued job of this connection if it goes away first.
    job: Option<Arc<AtomicBool>>,
}

struct PendingReply {
    keep_alive: bool,
    http10: bool,
    /// The request, for the log line once its answer comes back (debug level only).
    described: Option<String>,
}

struct Worker {
    app: Arc<App>,
    index: usize,
    poll: Poll,
    /// Listening sockets, with the TLS settings of the HTTPS ones.
    listeners: Vec<(TcpListener, Option<Arc<ServerConfig>>)>,
    conns: Slab<Conn>,
    jobs: Sender<Job>,
    public_jobs: Sender<Job>,
    index_jobs: Sender<Job>,
    per_ip: Arc<PerIp>,
    replies: Receiver<Answer>,
    limits: Limits,
    accepting: bool,
    /// Connections that are live-event streams.
    streams: Vec<usize>,
    /// The newest live event and heartbeat count handed to the streams.
    events_sent: u64,
    heartbeats_sent: u64,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut generation = 0u64;
        let mut last_tick = Instant::now();
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    error!(
                        "worker {}: event loop failed: {e}; shutting down",
                        self.index
                    );
                    self.app.request_shutdown();
                    return;
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t)
                        if t > FIRST_LISTENER - self.listeners.len() && t <= FIRST_LISTENER =>
                    {
                        self.accept(FIRST_LISTENER - t, &mut generation);
                    }
                    Token(key) => self.on_ready(key),
                }
            }
            while let Ok(answer) = self.replies.try_recv() {
                self.deliver(answer);
            }
            self.send_events();
            if self.app.is_shutting_down() {
                self.stop_accepting();
                let idle: Vec<usize> = self
                    .conns
                    .iter()
                    // Requests in progress (half received, waiting for an admin reply, or
                    // answered but not yet sent) get the grace period; idle connections go now.
                    .filter(|(_, c)| {
                        c.waiting.is_none() && c.output.is_empty() && c.input.is_empty()
                    })
                    .map(|(key, _)| key)
                    .collect();
                for key in idle {
                    self.close(key);
                }
                if self.conns.is_empty() {
                    return;
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.expire();
            }
        }
    }

    fn stop_accepting(&mut self) {
        if self.accepting {
            self.accepting = false;
            for (listener, _) in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
        }
    }

    fn accept(&mut self, listener: usize, generation: &mut u64) {
        loop {
            let Some((socket, tls)) = self.listeners.get(listener) else {
                return;
            };
            match socket.accept() {
                Ok((stream, peer)) => {
                    let Some(counted_as) = self.admit(peer) else {
                        self.app.metrics.connection_refused();
                        // Early refusal: closing at once costs less than a thread or a buffer.
                        continue;
                    };
                    let stream = match tls {
                        None => Stream::Plain(stream),
                        Some(config) => match TlsStream::new(stream, config) {
                            Ok(tls) => Stream::Tls(Box::new(tls)),
                            Err(e) => {
                                warn!("TLS connection from {peer}: {e}");
                                if let Some(ip) = counted_as {
                                    self.per_ip.remove(ip);
                                }
                                continue;
                            }
                        },
                    };
                    *generation += 1;
                    let key = self.conns.insert(Conn {
                        stream,
                        peer,
                        accepted: Instant::now(),
                        input: Vec::new(),
                        output: Vec::new(),
                        written: 0,
                        last_activity: Instant::now(),
                        request_started: None,
                        input_cap: MAX_INPUT,
                        request_time: REQUEST_TIMEOUT,
                        subscribed: None,
                        continue_sent: false,
                        waiting: None,
                        close_when_written: false,
                        write_progress: Instant::now(),
                        registered: None,
                        generation: *generation,
                        counted_as,
                        job: None,
                    });
                    self.app
                        .metrics
                        .open_connections
                        .fetch_add(1, Ordering::Relaxed);
                    // The request is usually in already (deferred accept): answer it before
                    // involving the event loop at all; a one-shot connection never joins it.
                    self.on_ready(key);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors, typically: keep serving the connections we have.
                    warn!("accepting a connection failed: {e}");
                    return;
                }
            }
        }
    }

    /// Whether a new connection from `peer` may stay: `Some` with the address it counts under
    /// (`None` inside for a trusted proxy, which is not limited per address).
    fn admit(&self, peer: SocketAddr) -> Option<Option<IpAddr>> {
        let ip = canonical_ip(peer.ip());
        let config = &self.app.config;
        let open = self.app.metrics.open_connections.load(Ordering::Relaxed);
        let max = self.limits.max_connections;
        if open >= max {
            debug!("refused {peer}: {max} connections open");
            return None;
        }
        let proxy = config.trusted_proxies.iter().any(|net| net.contains(&ip));
        let admin = !proxy && config.access.local.iter().any(|net| net.contains(&ip));
        if !admin && open >= max - self.limits.reserved_for_admins() {
            debug!("refused {peer}: the last connection slots are kept for local admins");
            return None;
        }
        if proxy {
            return Some(None);
        }
        if !self.per_ip.try_add(ip, self.limits.max_connections_per_ip) {
            debug!(
                "refused {peer}: {} connections open from {ip}",
                self.limits.max_connections_per_ip
            );
            return None;
        }
        Some(Some(ip))
    }

    /// Reads what the client sent, answers it and writes the answers, until the socket has no more
    /// to give or the connection has to wait: for an admin reply, or for the client to read what is
    /// already waiting for it. Whoever ends the wait (an admin reply, writability) calls this again.
    fn on_ready(&mut self, key: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let blocked = conn.waiting.is_some()
                || conn.output.len() - conn.written > MAX_PENDING_OUTPUT
                || conn.input.len() > conn.input_cap;
            let (mut eof, mut capped, mut reset) = (false, false, false);
            if !blocked {
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    match conn.stream.read(&mut chunk) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => {
                            if conn.input.is_empty() && conn.request_started.is_none() {
                                conn.request_started = Some(Instant::now());
                            }
                            conn.input.extend_from_slice(&chunk[..n]);
                            conn.last_activity = Instant::now();
                            if conn.input.len() > conn.input_cap {
                                // Answer what is in before reading more (the socket still has data).
                                capped = true;
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            // Reset: the client is gone, there is nobody to answer.
                            reset = true;
                            break;
                        }
                    }
                }
            }
            if reset {
                return self.close(key);
            }
            let held = self.process(key);
            if eof {
                // The client sent all it will (or is gone): answer what it asked, then close.
                match self.conns.get_mut(key) {
                    Some(conn) if !conn.output.is_empty() || conn.waiting.is_some() => {
                        conn.close_when_written = true
                    }
                    _ => return self.close(key),
                }
            }
            self.flush(key);
            // Answering stopped at the output limit: once the client has read enough of it,
            // answer the requests still in the input.
            let room = self
                .conns
                .get(key)
                .is_some_and(|c| c.output.len() - c.written <= MAX_PENDING_OUTPUT);
            if (held && room) || (capped && !eof) {
                continue;
            }
            return;
        }
    }

    /// Answers the complete requests in the connection's input, in order, until the answers
    /// waiting to be read pass [`MAX_PENDING_OUTPUT`]. Returns true if it stopped there.
    fn process(&mut self, key: usize) -> bool {
        let shutting_down = self.app.is_shutting_down();
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return false;
            };
            if conn.subscribed.is_some() {
                // A stream's client has nothing more to ask.
                conn.input.clear();
                return false;
            }
            if conn.waiting.is_some() || conn.close_when_written || conn.input.is_empty() {
                return false;
            }
            if conn.output.len() - conn.written > MAX_PENDING_OUTPUT {
                // The client is not reading: it has to before anything more is answered.
                conn.request_started = None;
                return true;
            }
            let (app, peer) = (&self.app, conn.peer);
            let parsed = http::parse_with(&conn.input, |head| {
                crate::api::dispatch::body_limit(app, head, peer)
            });
            let (request, used) = match parsed {
                http::Parse::Incomplete {
                    send_continue,
                    needed,
                } => {
                    if let Some(needed) = needed.filter(|&n| n > MAX_INPUT) {
                        // An upload its caller may send: held whole, given time to arrive.
                        conn.input_cap = needed;
                        conn.request_time = REQUEST_TIMEOUT
                            + Duration::from_secs((needed / SLOWEST_UPLOAD_BYTES_PER_SEC) as u64);
                    }
                    if send_continue && !conn.continue_sent {
                        conn.output.extend_from_slice(http::CONTINUE);
                        conn.continue_sent = true;
                    }
                    return false;
                }
                http::Parse::Error(status, message) => {
                    let reply = Reply::json(status, &serde_json::json!({ "error": message }));
                    debug!("{} bad request -> {status}: {message}", conn.peer);
                    self.app.metrics.request(Endpoint::Other, reply.outcome());
                    http::write_response(&mut conn.output, &reply.as_response(), false, false);
                    conn.close_when_written = true;
                    conn.input.clear();
                    return false;
                }
                http::Parse::Complete(request, used) => (request, used),
            };
            conn.input.drain(..used);
            conn.input_cap = MAX_INPUT;
            conn.request_time = REQUEST_TIMEOUT;
            conn.continue_sent = false;
            conn.request_started = (!conn.input.is_empty()).then(Instant::now);
            let keep_alive = request.keep_alive && !shutting_down;
            let http10 = request.http10;
            let peer = conn.peer;
            let secure = matches!(conn.stream, Stream::Tls(_));
            let prepared = Prepared::new(&self.app, request, peer).over_tls(secure);
            let queue = match prepared.queue(&self.app) {
                Queue::Inline => None,
                Queue::Admin => Some(&self.jobs),
                Queue::Public => Some(&self.public_jobs),
                Queue::Index => Some(&self.index_jobs),
            };
            if let Some(queue) = queue {
                let described = log::log_enabled!(log::Level::Debug).then(|| prepared.describe());
                conn.waiting = Some(PendingReply {
                    keep_alive,
                    http10,
                    described,
                });
                let cancelled = Arc::new(AtomicBool::new(false));
                conn.job = Some(Arc::clone(&cancelled));
                let job = Job {
                    endpoint: prepared.endpoint(),
                    prepared,
                    worker: self.index,
                    conn: key,
                    generation: conn.generation,
                    cancelled,
                };
                if queue.send(job).is_err() {
                    conn.waiting = None;
                    conn.close_when_written = true;
                }
                return false;
            }
            let described = log::log_enabled!(log::Level::Debug).then(|| prepared.describe());
            let endpoint = prepared.endpoint();
            let started = Instant::now();
            let reply = prepared.run(&self.app);
            if endpoint == Endpoint::Announce {
                self.app.metrics.announce_took(started.elapsed());
            }
            self.app.metrics.request(endpoint, reply.outcome());
            if let Some(described) = described {
                debug!("{}", log_line(&described, &reply));
            }
            let Some(conn) = self.conns.get_mut(key) else {
                if reply.stream.is_some() {
                    self.app.events.unsubscribe();
                }
                return false;
            };
            if let Some(stream) = reply.stream {
                http::write_stream_head(&mut conn.output, reply.content_type, &reply.headers);
                conn.output.extend_from_slice(&reply.body);
                let only = stream.only.map(Vec::into_boxed_slice);
                let last =
                    self.app
                        .events
                        .write_since(stream.after, only.as_deref(), &mut conn.output);
                conn.subscribed = Some((last, only));
                conn.input.clear();
                conn.request_started = None;
                self.streams.push(key);
                return false;
            }
            http::write_response(&mut conn.output, &reply.as_response(), keep_alive, http10);
            if !keep_alive {
                conn.close_when_written = true;
            }
            if reply.then_shut_down {
                self.app.request_shutdown();
            }
        }
    }

    fn deliver(&mut self, answer: Answer) {
        self.app
            .metrics
            .request(answer.endpoint, answer.reply.outcome());
        let Some(conn) = self.conns.get_mut(answer.conn) else {
            return;
        };
        if conn.generation != answer.generation {
            return;
        }
        let Some(pending) = conn.waiting.take() else {
            return;
        };
        conn.job = None;
        if let Some(described) = &pending.described {
            debug!("{}", log_line(described, &answer.reply));
        }
        let keep_alive = pending.keep_alive && !self.app.is_shutting_down();
        http::write_response(
            &mut conn.output,
            &answer.reply.as_response(),
            keep_alive,
            pending.http10,
        );
        if !keep_alive {
            conn.close_when_written = true;
        }
        self.on_ready(answer.conn);
    }

    /// Hands new live events (and heartbeats) to this worker's streams. A stream whose client
    /// has more than [`MAX_PENDING_EVENTS`] of the earlier ones unread is dropped.
    fn send_events(&mut self) {
        let newest = self.app.events.newest();
        let heartbeats = self.app.events.heartbeats();
        if newest == self.events_sent && heartbeats == self.heartbeats_sent {
            return;
        }
        let beat = heartbeats != self.heartbeats_sent;
        (self.events_sent, self.heartbeats_sent) = (newest, heartbeats);
        let mut dropped = Vec::new();
        for &key in &self.streams {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let Some((last, only)) = &conn.subscribed else {
                continue;
            };
            // What it has not read of the earlier events: a client that stopped reading goes.
            if conn.output.len() - conn.written > MAX_PENDING_EVENTS {
                debug!("{}: live-event subscriber not reading; dropped", conn.peer);
                dropped.push(key);
                continue;
            }
            let last = self
                .app
                .events
                .write_since(*last, only.as_deref(), &mut conn.output);
            if let Some((seen, _)) = &mut conn.subscribed {
                *seen = last;
            }
            if beat {
                conn.output.extend_from_slice(events::HEARTBEAT);
            }
        }
        for key in dropped {
            self.close(key);
        }
        for key in self.streams.clone() {
            self.flush(key);
        }
    }

    /// Writes what it can; closes when done and asked to, waits for writability otherwise.
    fn flush(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut failed = false;
        if conn.written == 0 && !conn.output.is_empty() {
            conn.write_progress = Instant::now();
        }
        while conn.written < conn.output.len() {
            match conn.stream.write(&conn.output[conn.written..]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    conn.written += n;
                    conn.last_activity = Instant::now();
                    conn.write_progress = conn.last_activity;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        // Over TLS the answer is sent once its records are: those the socket did not take yet wait.
        let records_sent = match (&mut conn.stream, failed) {
            (Stream::Tls(tls), false) => match tls.push() {
                Ok(sent) => sent,
                Err(_) => {
                    failed = true;
                    false
                }
            },
            _ => true,
        };
        if failed {
            self.close(key);
            return;
        }
        let done = conn.written == conn.output.len() && records_sent;
        if !done && conn.written >= KEEP_BUFFER && conn.written * 2 >= conn.output.len() {
            // A client reading slowly: drop what it read, so the buffer holds only what waits.
            conn.output.drain(..conn.written);
            conn.written = 0;
        }
        if done {
            conn.output.clear();
            conn.written = 0;
            if !conn.input.is_empty() && conn.request_started.is_none() {
                // Requests held back while the client was not reading get their full time now.
                conn.request_started = Some(Instant::now());
            }
            if conn.output.capacity() > KEEP_BUFFER {
                conn.output = Vec::new();
            }
            if conn.input.is_empty() && conn.input.capacity() > KEEP_BUFFER {
                conn.input = Vec::new();
            }
            // A connection waiting for an admin reply still has an answer to write.
            if conn.close_when_written && conn.waiting.is_none() {
                self.close(key);
                return;
            }
        }
        // Wait for the next request, or for room to write the rest of this answer.
        let wanted = if done {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        if conn.registered != Some(wanted) {
            let registry = self.poll.registry();
            let result = match conn.registered {
                None => registry.register(&mut conn.stream, Token(key), wanted),
                Some(_) => registry.reregister(&mut conn.stream, Token(key), wanted),
            };
            if result.is_err() {
                self.close(key);
                return;
            }
            conn.registered = Some(wanted);
        }
    }

    fn close(&mut self, key: usize) {
        // Closing the socket (dropping the stream) also takes it out of the event loop.
        if let Some(conn) = self.conns.try_remove(key) {
            self.app
                .metrics
                .open_connections
                .fetch_sub(1, Ordering::Relaxed);
            if conn.subscribed.is_some() {
                self.app.events.unsubscribe();
                self.streams.retain(|&k| k != key);
            }
            if let Some(ip) = conn.counted_as {
                self.per_ip.remove(ip);
            }
            if let Some(job) = conn.job {
                job.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Drops connections that are idle too long or do not read what they are sent (WRITE_TIMEOUT,
    /// however much they keep sending), and answers a request that takes too long to arrive with
    /// 408 before closing. A request held back because its client is not reading is not slow.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut slow = Vec::new();
        let mut expired = Vec::new();
        for (key, c) in self.conns.iter().filter(|(_, c)| c.waiting.is_none()) {
            let slow_request = c.output.is_empty()
                && !c.close_when_written
                && c.request_started.is_some_and(|t| now - t > c.request_time);
            let idle = c.subscribed.is_none()
                && c.input.is_empty()
                && c.output.is_empty()
                && now - c.last_activity > IDLE_TIMEOUT;
            let not_reading = !c.output.is_empty() && now - c.write_progress > WRITE_TIMEOUT;
            // A TLS handshake gets the time of a request to complete.
            let slow_handshake = matches!(&c.stream, Stream::Tls(tls) if tls.is_handshaking())
                && now - c.accepted > REQUEST_TIMEOUT;
            if slow_handshake {
                expired.push(key);
            } else if slow_request {
                slow.push(key);
            } else if idle || not_reading {
                expired.push(key);
            }
        }
        for key in expired {
            if let Some(conn) = self.conns.get(key) {
                debug!("closing {}: timed out", conn.peer);
            }
            self.close(key);
        }
        for key in slow {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            debug!(
                "{}: request not complete after {:?} -> 408",
                conn.peer, conn.request_time
            );
            let message = format!(
                "the request did not arrive within {} seconds",
                conn.request_time.as_secs()
            );
            let reply = Reply::json(408, &serde_json::json!({ "error": message }));
            self.app.metrics.request(Endpoint::Other, reply.outcome());
            http::write_response(&mut conn.output, &reply.as_response(), false, false);
            conn.input.clear();
            conn.request_started = None;
            conn.close_when_written = true;
            self.flush(key);
        }
    }
}

/// A connection's socket: plain, or with TLS on it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

impl mio::event::Source for Stream {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.register(registry, token, interests),
            Stream::Tls(tls) => tls.tcp.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.reregister(registry, token, interests),
            Stream::Tls(tls) => tls.tcp.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.deregister(registry),
            Stream::Tls(tls) => tls.tcp.deregister(registry),
        }
    }
}
