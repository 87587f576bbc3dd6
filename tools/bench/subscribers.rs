//! Live-event subscribers for benchmarks: opens N connections to `/api/v1/events`, prints
//! `subscribed N` once every stream's head is in, then reads (and throws away) whatever comes until
//! it is killed, printing once a second how many bytes and events arrived.
//!
//!     cargo run --release --example bench_subscribers -- 127.0.0.1:6969 1000 [HASHES PAGE]
//!
//! With HASHES (a file of 40-hex info hashes, one a line) and PAGE, each subscriber follows the
//! counts of PAGE of them, as a page of a listing does (subscriber i: the i-th page, wrapping).

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: bench_subscribers ADDR COUNT");
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let hashes: Vec<String> = args
        .next()
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .filter(|l| l.len() == 40)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let page: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(50);
    let mut poll = Poll::new().unwrap();
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        // The request is written while the socket blocks (it is small); then it is read without.
        let mut target = String::from("/api/v1/events");
        if !hashes.is_empty() {
            let follows: Vec<String> = (0..page)
                .map(|n| format!("info_hash={}", hashes[(i * page + n) % hashes.len()]))
                .collect();
            target = format!("{target}?{}", follows.join("&"));
        }
        let mut std_stream = std::net::TcpStream::connect(addr).unwrap();
        std_stream
            .write_all(
                format!(
                    "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        std_stream.set_nonblocking(true).unwrap();
        let mut stream = TcpStream::from_std(std_stream);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)
            .unwrap();
        streams.push((stream, false));
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut started, mut bytes, mut frames) = (0, 0u64, 0u64);
    let mut last = Instant::now();
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        for event in events.iter() {
            let Some((stream, seen_head)) = streams.get_mut(event.token().0) else {
                continue;
            };
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        eprintln!("a stream was closed by the tracker");
                        break;
                    }
                    Ok(n) => {
                        bytes += n as u64;
                        frames += buf[..n].windows(2).filter(|w| w == b"\n\n").count() as u64;
                        if !*seen_head {
                            if !buf[..n].starts_with(b"HTTP/1.1 200") {
                                panic!("refused: {}", String::from_utf8_lossy(&buf[..n]));
                            }
                            *seen_head = true;
                            started += 1;
                            if started == count {
                                println!("subscribed {count}");
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("reading: {e}"),
                }
            }
        }
        if last.elapsed() >= Duration::from_secs(1) {
            eprintln!("{started} streams, {bytes} bytes, {frames} frames");
            last = Instant::now();
        }
    }
}
