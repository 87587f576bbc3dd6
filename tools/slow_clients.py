#!/usr/bin/env python3
"""Slow and idle connections cannot starve the tracker: holds IDLE keep-alive connections that sent
one request and then stay silent, and SLOW connections that send a request head one byte per second,
reopening any the tracker closes, for SECONDS; meanwhile a normal client announces (a connection per
announce, as BitTorrent clients do) and its latencies are recorded, and the tracker's thread count is
sampled. Prints the normal client's p50/p99 and the most threads seen. The attackers connect from
127.0.0.2 and the normal client from 127.0.0.1, as they would from two machines: the tracker caps the
connections one address may hold (--max-connections-per-ip, 64 by default).

    python3 tools/slow_clients.py [SECONDS=60] [IDLE=1000] [SLOW=200]

Uses target/release/tinytracker (cargo build --release).
"""

import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "tinytracker")
HASH = "%AB" * 20
SLOW_HEAD = b"GET /announce?info_hash=" + HASH.encode() + b"&peer_id=-SL0001-000000000000&port=1 HTTP/1.1\r\nHost: t\r\n\r\n"


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    idle = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    slow = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    work = tempfile.mkdtemp()
    proc = subprocess.Popen([BINARY, "--bind", "127.0.0.1:0", "--state-file", os.path.join(work, "s.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    host, port = proc.stdout.readline().split()[-1].rsplit(":", 1)
    addr = (host, int(port))
    stop = threading.Event()
    threads_seen = []
    latencies = []
    reopened = [0]

    def attackers():
        sel = selectors.DefaultSelector()
        conns = {}  # socket -> ("idle" | "slow", bytes sent)

        def open_one(kind):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.setblocking(False)
            try:
                s.connect(addr)
            except BlockingIOError:
                pass
            conns[s] = [kind, 0, False]
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)

        for _ in range(idle):
            open_one("idle")
        for _ in range(slow):
            open_one("slow")
        last_tick = 0.0
        while not stop.is_set():
            for key, events in sel.select(timeout=0.2):
                s = key.fileobj
                kind, sent, connected = conns[s]
                if events & selectors.EVENT_WRITE and not connected:
                    conns[s][2] = True
                    sel.modify(s, selectors.EVENT_READ)
                    if kind == "idle":
                        s.send(b"GET /scrape?info_hash=" + HASH.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
                if events & selectors.EVENT_READ:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # the tracker closed it: open another in its place
                        sel.unregister(s)
                        s.close()
                        del conns[s]
                        reopened[0] += 1
                        open_one(kind)
            now = time.time()
            if now - last_tick >= 1.0:  # one more byte of every slow head, once a second
                last_tick = now
                for s, state in list(conns.items()):
                    if state[0] == "slow" and state[2] and state[1] < len(SLOW_HEAD):
                        try:
                            s.send(SLOW_HEAD[state[1]:state[1] + 1])
                            state[1] += 1
                        except OSError:
                            pass
        for s in conns:
            s.close()

    def normal_client():
        n = 0
        while not stop.is_set():
            n += 1
            started = time.perf_counter()
            with socket.create_connection(addr, timeout=10) as s:
                s.sendall(("GET /announce?info_hash=%s&peer_id=-NC0001-%012d&port=%d&left=1 HTTP/1.1\r\n"
                           "Host: t\r\nConnection: close\r\n\r\n" % (HASH, n, 1024 + n % 60000)).encode())
                while s.recv(65536):
                    pass
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)

    def sample_threads():
        while not stop.is_set():
            with open("/proc/%d/status" % proc.pid) as f:
                for line in f:
                    if line.startswith("Threads:"):
                        threads_seen.append(int(line.split()[1]))
            time.sleep(0.5)

    workers = [threading.Thread(target=f) for f in (attackers, normal_client, sample_threads)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    proc.terminate()
    proc.wait()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000
    print("%d s with %d idle keep-alive and %d one-byte-a-second connections (%d reopened after the "
          "tracker closed them)" % (seconds, idle, slow, reopened[0]))
    print("normal client: %d announces, p50 %.2f ms, p99 %.2f ms, max %.2f ms"
          % (len(latencies), p(0.5), p(0.99), latencies[-1] * 1000))
    print("tracker threads: at most %d" % max(threads_seen))
    if p(0.99) >= 100:
        sys.exit(1)


if __name__ == "__main__":
    main()
