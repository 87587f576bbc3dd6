#!/usr/bin/env python3
"""Does the admin token compare leak how much of a guess is right? Calls /save_state's neighbour
/users from 127.0.0.2 (a tracker that counts only 127.0.0.1 as local, so the token decides) with
wrong tokens that differ from the real one in the first byte or only in the last byte, interleaved,
N times each, and compares the median and mean answer times.

    python3 tools/token_timing.py [N=5000]

Uses target/release/tinytracker (cargo build --release).
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "k" * 48


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    work = tempfile.mkdtemp()
    proc = subprocess.Popen([os.path.join(ROOT, "target", "release", "tinytracker"), "--bind", "127.0.0.1:0",
                             "--state-file", os.path.join(work, "s.json"), "--local-admin", "127.0.0.1",
                             "--admin-token", TOKEN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    host, port = proc.stdout.readline().split()[-1].rsplit(":", 1)
    guesses = {"wrong first byte": "x" + TOKEN[1:], "wrong last byte": TOKEN[:-1] + "x"}
    times = {name: [] for name in guesses}
    conn = socket.socket()
    conn.bind(("127.0.0.2", 0))
    conn.connect((host, int(port)))
    for _ in range(n):
        for name, guess in guesses.items():
            request = ("GET /users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n" % guess).encode()
            started = time.perf_counter_ns()
            conn.sendall(request)
            answer = b""
            while not answer.endswith(b"}\n"):
                answer += conn.recv(65536)
            times[name].append(time.perf_counter_ns() - started)
            assert b" 403 " in answer.split(b"\r\n", 1)[0], answer
    proc.terminate()
    for name, values in times.items():
        print("%-17s median %6.1f us, mean %6.1f us (%d calls)"
              % (name, statistics.median(values) / 1000, statistics.mean(values) / 1000, len(values)))
    a, b = (statistics.median(v) for v in times.values())
    print("difference of the medians: %+.2f us" % ((b - a) / 1000))


if __name__ == "__main__":
    main()
