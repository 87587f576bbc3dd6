//! The network side: listening sockets and a fixed pool of worker threads, each running its own
//! event loop (`mio`) over the connections it accepted. A request is answered synchronously by the
//! worker that read it; slow admin work (saving, whole-state listings) goes to one admin thread.
//! There is no thread per connection, so idle or slow clients cost memory, not threads.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{debug, error, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use crate::admin::BODY_LIMIT;
use crate::app::App;
use crate::dispatch::{Prepared, Reply};
use crate::http;
use crate::metrics::Endpoint;

/// A connection that sent nothing for this long (between requests) is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// A request whose head and body take longer than this to arrive is dropped (slow senders).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer the client does not read within this long is dropped with its connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Input held for one connection before it is answered; beyond it reading pauses (a complete
/// request is at most a 16 KiB head and a 64 KiB body).
const MAX_INPUT: usize = http::MAX_HEAD_BYTES + BODY_LIMIT;
/// Answers waiting for a client to read them; beyond this, its requests are not read.
const MAX_PENDING_OUTPUT: usize = 256 * 1024;
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
}

/// Opens `count` sockets on `addr` (IPv6 ones v6-only, so `0.0.0.0` and `[::]` can share a port).
/// With port 0, the first socket's port is used for the others.
pub fn bind(addr: SocketAddr, count: usize) -> anyhow::Result<Listener> {
    let mut addr = addr;
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
        let listener = std::net::TcpListener::from(socket);
        addr = listener.local_addr()?;
        sockets.push(listener);
    }
    Ok(Listener { addr, sockets })
}

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
    admin: JoinHandle<()>,
}

/// Limits on what clients may hold open.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
}

/// Starts one worker per listening socket set and the admin thread.
pub fn start(
    app: &Arc<App>,
    listeners: Vec<Listener>,
    workers: usize,
    limits: Limits,
) -> anyhow::Result<Server> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    for listener in listeners {
        for (i, socket) in listener.sockets.into_iter().enumerate() {
            per_worker[i % workers].push(socket);
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
            replies: replies_rx,
            limits,
            accepting: true,
        };
        for (i, socket) in sockets.into_iter().enumerate() {
            let mut listener = TcpListener::from_std(socket);
            worker.poll.registry().register(
                &mut listener,
                Token(FIRST_LISTENER - i),
                Interest::READABLE,
            )?;
            worker.listeners.push(listener);
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
    drop(jobs_tx);
    let admin_app = Arc::clone(app);
    let admin = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || run_admin(&admin_app, &jobs_rx, &reply_senders))
        .context("starting the admin thread")?;
    Ok(Server {
        workers: handles,
        wakers,
        admin,
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
            let _ = self.admin.join();
            let _ = done.send(());
        });
        all_done.recv_timeout(grace).is_ok()
    }
}

/// A slow request, sent to the admin thread; the answer goes back to the worker and connection.
struct Job {
    prepared: Prepared,
    endpoint: Endpoint,
    worker: usize,
    conn: usize,
    generation: u64,
}

struct Answer {
    endpoint: Endpoint,
    conn: usize,
    generation: u64,
    reply: Reply,
}

fn run_admin(app: &App, jobs: &Receiver<Job>, workers: &[(Sender<Answer>, Arc<Waker>)]) {
    while let Ok(job) = jobs.recv() {
        let reply = job.prepared.run(app);
        if let Some((sender, waker)) = workers.get(job.worker) {
            let answer = Answer {
                endpoint: job.endpoint,
                conn: job.conn,
                generation: job.generation,
                reply,
            };
            if sender.send(answer).is_ok() {
                let _ = waker.wake();
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    last_activity: Instant,
    /// When the first byte of the request being read arrived.
    request_started: Option<Instant>,
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
}

#[derive(Clone, Copy)]
struct PendingReply {
    keep_alive: bool,
    http10: bool,
}

struct Worker {
    app: Arc<App>,
    index: usize,
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Slab<Conn>,
    jobs: Sender<Job>,
    replies: Receiver<Answer>,
    limits: Limits,
    accepting: bool,
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
            for listener in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
        }
    }

    fn accept(&mut self, listener: usize, generation: &mut u64) {
        loop {
            let Some(socket) = self.listeners.get(listener) else {
                return;
            };
            match socket.accept() {
                Ok((stream, peer)) => {
                    let open = &self.app.metrics.open_connections;
                    if open.load(Ordering::Relaxed) >= self.limits.max_connections {
                        self.app.metrics.connection_refused();
                        // Early refusal: closing at once costs less than a thread or a buffer.
                        debug!(
                            "refused {peer}: {} connections open",
                            self.limits.max_connections
                        );
                        continue;
                    }
                    *generation += 1;
                    let key = self.conns.insert(Conn {
                        stream,
                        peer,
                        input: Vec::new(),
                        output: Vec::new(),
                        written: 0,
                        last_activity: Instant::now(),
                        request_started: None,
                        continue_sent: false,
                        waiting: None,
                        close_when_written: false,
                        write_progress: Instant::now(),
                        registered: None,
                        generation: *generation,
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
                || conn.input.len() > MAX_INPUT;
            let (mut eof, mut capped) = (false, false);
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
                            if conn.input.len() > MAX_INPUT {
                                // Answer what is in before reading more (the socket still has data).
                                capped = true;
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            eof = true;
                            break;
                        }
                    }
                }
            }
            self.process(key);
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
            if !capped || eof {
                return;
            }
        }
    }

    /// Answers every complete request in the connection's input, in order.
    fn process(&mut self, key: usize) {
        let shutting_down = self.app.is_shutting_down();
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.waiting.is_some() || conn.close_when_written || conn.input.is_empty() {
                return;
            }
            let (request, used) = match http::parse(&conn.input, BODY_LIMIT) {
                http::Parse::Incomplete { send_continue } => {
                    if send_continue && !conn.continue_sent {
                        conn.output.extend_from_slice(http::CONTINUE);
                        conn.continue_sent = true;
                    }
                    return;
                }
                http::Parse::Error(status, message) => {
                    let reply = Reply::json(status, &serde_json::json!({ "error": message }));
                    debug!("{} bad request -> {status}: {message}", conn.peer);
                    self.app.metrics.request(Endpoint::Other, reply.outcome());
                    http::write_response(&mut conn.output, &reply.as_response(), false, false);
                    conn.close_when_written = true;
                    conn.input.clear();
                    return;
                }
                http::Parse::Complete(request, used) => (request, used),
            };
            conn.input.drain(..used);
            conn.continue_sent = false;
            conn.request_started = (!conn.input.is_empty()).then(Instant::now);
            let keep_alive = request.keep_alive && !shutting_down;
            let http10 = request.http10;
            let method = request.method.clone();
            let peer = conn.peer;
            let prepared = Prepared::new(&self.app, request, peer);
            if prepared.is_slow() {
                conn.waiting = Some(PendingReply { keep_alive, http10 });
                let job = Job {
                    endpoint: prepared.endpoint(),
                    prepared,
                    worker: self.index,
                    conn: key,
                    generation: conn.generation,
                };
                if self.jobs.send(job).is_err() {
                    conn.waiting = None;
                    conn.close_when_written = true;
                }
                return;
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
                debug!(
                    "{described} {method} -> {} ({} bytes)",
                    reply.status,
                    reply.body.len()
                );
            }
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
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
        debug!(
            "{} -> {} ({} bytes)",
            conn.peer,
            answer.reply.status,
            answer.reply.body.len()
        );
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
        if failed {
            self.close(key);
            return;
        }
        let done = conn.written == conn.output.len();
        if done {
            conn.output.clear();
            conn.written = 0;
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
        if self.conns.try_remove(key).is_some() {
            self.app
                .metrics
                .open_connections
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Drops connections that are idle too long, send a request too slowly, or do not read.
    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.waiting.is_none())
            .filter(|(_, c)| {
                let slow_request = c.request_started.is_some_and(|t| now - t > REQUEST_TIMEOUT);
                let idle = c.input.is_empty()
                    && c.output.is_empty()
                    && now - c.last_activity > IDLE_TIMEOUT;
                let not_reading = !c.output.is_empty() && now - c.write_progress > WRITE_TIMEOUT;
                slow_request || idle || not_reading
            })
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            if let Some(conn) = self.conns.get(key) {
                debug!("closing {}: timed out", conn.peer);
            }
            self.close(key);
        }
    }
}
