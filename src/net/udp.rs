//! The UDP tracker (BEP 15, BEP 41): per address, one socket per worker thread sharing the port
//! with `SO_REUSEPORT`; each thread reads datagrams in batches (`recvmmsg`), answers them through
//! the same core as HTTP ([`crate::api::bittorrent`]: the passkey rules, one swarm call) and sends
//! the answers in one call (`sendmmsg`). Buffers are made once per thread: nothing is allocated
//! per datagram on the announce path. Connection ids are stateless
//! ([`crate::protocol::udp::ConnectionIds`]).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use log::error;
use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};

use crate::api::app::App;
use crate::api::bittorrent;
use crate::api::metrics::{UdpCase, UDP_CASES};
use crate::error::ProtocolError;
use crate::protocol::ids::InfoHash;
use crate::protocol::udp::{self, AnnounceCounts, ConnectionIds, Malformed, Request};
use crate::protocol::{AnnounceRequest, AnnounceResponse, Family, PeerStyle, ScrapeCounts};

/// Datagrams read (and answers sent) per system call.
const BATCH: usize = 32;
/// Room for one datagram: a full scrape is 1,496 bytes, an announce with URL data less.
const MAX_DATAGRAM: usize = 2048;
/// How often a thread waiting for datagrams looks at the shutdown flag.
const READ_TIMEOUT: Duration = Duration::from_millis(200);
/// The most an error answer to a connected client may hold (the message is cut to fit).
const MAX_ERROR_LEN: usize = 512;
/// Socket buffers: room for bursts while a thread is busy with a batch.
const SOCKET_BUFFER: usize = 4 << 20;

/// One UDP address with one socket per worker thread.
pub struct UdpListener {
    pub addr: SocketAddr,
    sockets: Vec<UdpSocket>,
}

/// Opens `count` sockets on `addr` (IPv6 ones v6-only, so `0.0.0.0` and `[::]` can share a port).
/// As for TCP ([`crate::net::server::bind`]), the port is claimed first without `SO_REUSEPORT`,
/// so a port someone holds (another tinytracker included) stops start-up.
pub fn bind(addr: SocketAddr, count: usize) -> anyhow::Result<UdpListener> {
    let addr = {
        let probe = new_socket(addr)?;
        match probe.bind(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => anyhow::bail!(
                "cannot listen on udp://{addr}: the port is already in use (another tinytracker, \
                 or another program, is listening there)"
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot listen on udp://{addr}")),
        }
        probe
            .local_addr()?
            .as_socket()
            .context("the UDP socket has no address")?
    };
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = new_socket(addr)?;
        socket.set_reuse_port(true)?;
        // Best effort: the system may cap these (net.core.rmem_max).
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.set_read_timeout(Some(READ_TIMEOUT))?;
        socket
            .bind(&addr.into())
            .with_context(|| format!("cannot listen on udp://{addr}"))?;
        sockets.push(UdpSocket::from(socket));
    }
    Ok(UdpListener { addr, sockets })
}

fn new_socket(addr: SocketAddr) -> anyhow::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Starts the threads of every UDP listener; they end when the app shuts down.
pub fn start(app: &Arc<App>, listeners: Vec<UdpListener>) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let ids = ConnectionIds::new(rand::rngs::OsRng.gen());
    let mut threads = Vec::new();
    for listener in listeners {
        let family = if listener.addr.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        };
        for (i, socket) in listener.sockets.into_iter().enumerate() {
            let app = Arc::clone(app);
            let ids = ids.clone();
            let thread = std::thread::Builder::new()
                .name(format!("udp-{}-{i}", listener.addr.port()))
                .spawn(move || Worker::new(app, ids, family).run(&socket))
                .context("starting a UDP thread")?;
            threads.push(thread);
        }
    }
    Ok(threads)
}

/// One thread's state: its buffers, made once.
struct Worker {
    app: Arc<App>,
    ids: ConnectionIds,
    family: Family,
    announce: AnnounceResponse,
    scrape: Vec<ScrapeCounts>,
    /// Counts by [`UdpCase::index`], added to the shared metrics once per batch.
    tally: [u64; UDP_CASES.len()],
}

/// A batch's buffers for `recvmmsg`/`sendmmsg`. The headers point into the buffers, so they are
/// set again before each call (the boxes do not move).
struct Batch {
    data: Box<[[u8; MAX_DATAGRAM]]>,
    from: Box<[libc::sockaddr_storage]>,
    iov: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
    /// `sendmmsg`'s headers, apart from `headers`: those give the senders' address lengths.
    send_iov: Box<[libc::iovec]>,
    send_headers: Box<[libc::mmsghdr]>,
    /// Answers, and which datagram (its sender) each goes to.
    answers: Vec<Vec<u8>>,
    to: Vec<usize>,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: all-zero is a valid value of these plain C structs (null pointers, zero lengths).
        let zeroed_storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zeroed_header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        Batch {
            data: vec![[0; MAX_DATAGRAM]; BATCH].into_boxed_slice(),
            from: vec![zeroed_storage; BATCH].into_boxed_slice(),
            iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ]
            .into_boxed_slice(),
            headers: vec![zeroed_header; BATCH].into_boxed_slice(),
            send_iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ]
            .into_boxed_slice(),
            send_headers: vec![zeroed_header; BATCH].into_boxed_slice(),
            answers: (0..BATCH)
                .map(|_| Vec::with_capacity(MAX_DATAGRAM))
                .collect(),
            to: Vec::with_capacity(BATCH),
        }
    }

    /// Reads up to [`BATCH`] datagrams, waiting for the first at most [`READ_TIMEOUT`].
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iov[i] = libc::iovec {
                iov_base: self.data[i].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            // SAFETY: as in `new`.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = (&mut self.from[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut self.iov[i];
            header.msg_iovlen = 1;
            self.headers[i] = libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            };
        }
        // SAFETY: every header points at live buffers of this batch with their true sizes.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Sends the answers to their datagrams' senders. Returns how many the socket did not take.
    fn send(&mut self, socket: &UdpSocket) -> usize {
        let count = self.to.len();
        for (k, &i) in self.to.iter().enumerate() {
            let answer = &mut self.answers[k];
            self.send_iov[k] = libc::iovec {
                iov_base: answer.as_mut_ptr().cast(),
                iov_len: answer.len(),
            };
            // SAFETY: as in `new`.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            // The sender's address as it was read (its length kept from the read).
            header.msg_name = (&mut self.from[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = self.headers[i].msg_hdr.msg_namelen;
            header.msg_iov = &mut self.send_iov[k];
            header.msg_iovlen = 1;
            self.send_headers[k] = libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            };
        }
        let mut sent = 0;
        let mut failed = 0;
        while sent < count {
            // SAFETY: headers [sent, count) point at live answers and addresses of this batch.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.send_headers.as_mut_ptr().add(sent),
                    (count - sent) as libc::c_uint,
                    0,
                )
            };
            if n > 0 {
                sent += n as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // This answer cannot go (an unreachable or forbidden address, say): skip it.
            sent += 1;
            failed += 1;
        }
        failed
    }
}

/// A sender's address as `recvmmsg` wrote it.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in (it is large enough).
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), 0, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

impl Worker {
    fn new(app: Arc<App>, ids: ConnectionIds, family: Family) -> Worker {
        Worker {
            app,
            ids,
            family,
            announce: AnnounceResponse::default(),
            scrape: Vec::with_capacity(udp::MAX_SCRAPE_HASHES),
            tally: [0; UDP_CASES.len()],
        }
    }

    fn run(mut self, socket: &UdpSocket) {
        let mut batch = Batch::new();
        while !self.app.is_shutting_down() {
            let received = match batch.receive(socket) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    error!("UDP socket: {e}; waiting before reading again");
                    std::thread::sleep(READ_TIMEOUT);
                    continue;
                }
            };
            let now = self.app.now();
            batch.to.clear();
            for i in 0..received {
                let len = (batch.headers[i].msg_len as usize).min(MAX_DATAGRAM);
                let packet = &batch.data[i][..len];
                let Some(from) = socket_addr(&batch.from[i]) else {
                    continue;
                };
                let k = batch.to.len();
                if self.answer(packet, from, now, &mut batch.answers[k]) {
                    batch.to.push(i);
                }
            }
            let failed = batch.send(socket);
            if failed > 0 {
                self.tally[UdpCase::SendFailed.index()] += failed as u64;
            }
            self.app.metrics.add_udp(&self.tally);
            self.tally = [0; UDP_CASES.len()];
        }
    }

    /// Writes the answer to `packet` from `from` into `out`; false when it gets none.
    fn answer(&mut self, packet: &[u8], from: SocketAddr, now: u64, out: &mut Vec<u8>) -> bool {
        let ip = from.ip();
        let case = match udp::parse(packet) {
            Ok(Request::Connect { transaction }) => {
                udp::write_connect(out, transaction, self.ids.issue(ip, now));
                UdpCase::Connect
            }
            Ok(Request::Announce(a)) if !self.ids.valid(a.connection, ip, now) => {
                self.bad_connection(out, a.transaction, packet.len())
            }
            Ok(Request::Announce(a)) => {
                let (passkey, query) = a.url_data.passkey_and_query();
                let req = AnnounceRequest {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    addr: SocketAddr::new(ip, a.port),
                    uploaded: a.uploaded,
                    downloaded: a.downloaded,
                    left: a.left,
                    event: a.event,
                    numwant: a.numwant.map(u64::from),
                    style: PeerStyle::Compact,
                };
                let done =
                    bittorrent::passkey_user(&self.app, passkey, query, now).and_then(|caller| {
                        if a.port == 0 {
                            return Err(ProtocolError::InvalidPort);
                        }
                        bittorrent::announce(
                            &self.app,
                            &caller,
                            &req,
                            now,
                            self.family,
                            &mut self.announce,
                        )
                    });
                match done {
                    Ok(()) => {
                        let counts = AnnounceCounts {
                            interval_secs: self.announce.interval_secs,
                            leechers: self.announce.incomplete,
                            seeders: self.announce.complete,
                        };
                        let ipv6 = self.family == Family::V6;
                        udp::write_announce(out, a.transaction, counts, &self.announce.peers, ipv6);
                        UdpCase::Announce
                    }
                    Err(e) => refuse(out, a.transaction, &e),
                }
            }
            Ok(Request::Scrape {
                connection,
                transaction,
                ..
            }) if !self.ids.valid(connection, ip, now) => {
                self.bad_connection(out, transaction, packet.len())
            }
            Ok(Request::Scrape {
                transaction,
                hashes,
                ..
            }) => {
                let hashes = hashes
                    .chunks_exact(20)
                    .map(|h| InfoHash(h.try_into().expect("20 bytes")));
                let done = bittorrent::passkey_user(&self.app, None, "", now).and_then(|caller| {
                    bittorrent::scrape_counts(&self.app, &caller, hashes, now, &mut self.scrape)
                });
                match done {
                    Ok(()) => {
                        let rows = self.scrape.iter().map(|c| {
                            let completed = u32::try_from(c.downloaded).unwrap_or(u32::MAX);
                            (c.complete, completed, c.incomplete)
                        });
                        udp::write_scrape(out, transaction, rows);
                        UdpCase::Scrape
                    }
                    Err(e) => refuse(out, transaction, &e),
                }
            }
            Err(bad) => match bad.why {
                Malformed::TooShort => return self.count(UdpCase::TooShort),
                Malformed::NotBep15 => return self.count(UdpCase::NotBep15),
                _ if !self.ids.valid(bad.connection, ip, now) => {
                    self.bad_connection(out, bad.transaction, packet.len())
                }
                why => {
                    udp::write_error(out, bad.transaction, why.message(), MAX_ERROR_LEN);
                    UdpCase::Malformed
                }
            },
        };
        self.tally[case.index()] += 1;
        true
    }

    /// Counts a datagram that gets no answer.
    fn count(&mut self, case: UdpCase) -> bool {
        self.tally[case.index()] += 1;
        false
    }

    /// The answer to a sender whose connection id is not good: an error no larger than its request.
    fn bad_connection(&self, out: &mut Vec<u8>, transaction: u32, request_len: usize) -> UdpCase {
        udp::write_error(
            out,
            transaction,
            "connection id expired or unknown: connect again",
            request_len,
        );
        UdpCase::BadConnectionId
    }
}

/// An error packet for a failure the HTTP path has too, with its text.
fn refuse(out: &mut Vec<u8>, transaction: u32, error: &ProtocolError) -> UdpCase {
    udp::write_error(out, transaction, &error.to_string(), MAX_ERROR_LEN);
    UdpCase::Refused
}
