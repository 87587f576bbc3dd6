#!/usr/bin/env python3
"""How long an operator's /save_state waits while anonymous clients ask for /stats and hang up.

Starts BINARY on a state file of TORRENTS torrents (one peer each), sends HANGUPS /stats requests
that close their connection right after sending, at once, then times one /save_state; ROUNDS
times, and prints every figure and the median. Also times one /stats alone, for scale.

    python3 tools/bench/stats_starvation.py BINARY [TORRENTS=100000] [HANGUPS=50] [ROUNDS=5]
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
binary = sys.argv[1]
torrents = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
hangups = int(sys.argv[3]) if len(sys.argv) > 3 else 50
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5


def request(addr, target, method="GET"):
    """One request on its own connection; returns (seconds, status, body bytes)."""
    started = time.monotonic()
    with socket.create_connection(addr) as s:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                  % (method.encode(), target.encode()))
        data = b""
        while chunk := s.recv(1 << 20):
            data += chunk
    return time.monotonic() - started, int(data.split(b" ", 2)[1]), len(data)


with tempfile.TemporaryDirectory() as work:
    state = os.path.join(work, "tracker_state.json")
    subprocess.run([sys.executable, os.path.join(HERE, "make_state.py"), state,
                    os.path.join(work, "hashes.txt"), str(torrents), str(torrents)], check=True)
    tracker = subprocess.Popen([binary, "--bind", "127.0.0.1:0", "--state-file", state,
                                "--save-interval", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        line = tracker.stdout.readline()
        host, port = line.strip().removeprefix("listening on ").rsplit(":", 1)
        addr = (host, int(port))
        took, status, size = request(addr, "/stats")
        print(f"one /stats alone: {took * 1000:.0f} ms, {size} bytes")
        took, status, _ = request(addr, "/save_state")
        print(f"one /save_state alone: {took * 1000:.0f} ms")
        waits = []
        for _ in range(rounds):
            for _ in range(hangups):
                s = socket.create_connection(addr)
                s.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                s.close()
            took, status, _ = request(addr, "/save_state")
            assert status == 200, status
            waits.append(took)
            print(f"/save_state after {hangups} hung-up /stats: {took * 1000:.0f} ms")
            # Let the stats work drain before the next round, so each round starts alike.
            request(addr, "/stats")
        print(f"median /save_state wait: {statistics.median(waits) * 1000:.0f} ms")
    finally:
        tracker.terminate()
        tracker.wait()
