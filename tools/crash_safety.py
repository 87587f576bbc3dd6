#!/usr/bin/env python3
"""Kills tinytracker with SIGKILL at random moments while it saves continuously under load, and
checks after every kill that the state file loads and holds at least the last save the tracker
reported complete.

Each round: start the tracker on the state file left by the previous round; register new torrents
and announce to them from one thread while another calls /save_state back to back (the timer saves
every second too); after a random 50-600 ms, SIGKILL. Then the file must be valid JSON in the
current layout with at least as many torrents as the last save answered with 200, and the tracker
must start on it.

    python3 tools/crash_safety.py [ROUNDS=200]

Uses target/release/tinytracker (build it first: cargo build --release).
"""

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "tinytracker")


def start(state):
    proc = subprocess.Popen(
        [BINARY, "--bind", "127.0.0.1:0", "--state-file", state, "--save-interval", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit("tracker did not start: %r %s" % (line, proc.stderr.read()))
    host, port = line.split()[-1].rsplit(":", 1)
    return proc, host, int(port)


def load_and_announce(host, port, first, stop):
    """Registers torrents first, first+1, ... and announces to each, until stopped."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    n = first
    try:
        while not stop.is_set():
            info_hash = "%040x" % n
            conn.request("POST", "/add_torrent_info", json.dumps({"info_hash": info_hash, "name": "t%d" % n}))
            conn.getresponse().read()
            escaped = "".join("%%%s" % info_hash[i:i + 2] for i in range(0, 40, 2))
            conn.request("GET", "/announce?info_hash=%s&peer_id=-CS0001-%012d&port=%d&left=5"
                         % (escaped, n, 1024 + n % 60000))
            conn.getresponse().read()
            n += 1
    except (OSError, http.client.HTTPException):
        pass  # killed


def save_loop(host, port, stop, reported):
    """Calls /save_state back to back; records the torrent count of each save answered with 200."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        while not stop.is_set():
            conn.request("GET", "/save_state")
            reply = conn.getresponse()
            body = reply.read()
            if reply.status == 200:
                reported.append(json.loads(body)["torrents"])
    except (OSError, http.client.HTTPException, ValueError):
        pass


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    work = tempfile.mkdtemp()
    state = os.path.join(work, "tracker_state.json")
    next_torrent = 0
    last_complete = 0
    kills_with_temp_file = 0
    started = time.time()
    for round_no in range(1, rounds + 1):
        proc, host, port = start(state)
        stop = threading.Event()
        reported = []
        threads = [
            threading.Thread(target=load_and_announce, args=(host, port, next_torrent, stop)),
            threading.Thread(target=save_loop, args=(host, port, stop, reported)),
        ]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
        if reported:
            last_complete = max(last_complete, reported[-1])
        if os.path.exists(os.path.join(work, ".tracker_state.json.tmp")):
            kills_with_temp_file += 1
        # The file must be whole and hold at least the last save reported complete.
        with open(state) as f:
            saved = json.load(f)
        if saved.get("version") != 2:
            raise SystemExit("round %d: unexpected file: version %r" % (round_no, saved.get("version")))
        torrents = len(saved["torrents"])
        if torrents < last_complete:
            raise SystemExit("round %d: the file has %d torrents, a completed save reported %d"
                             % (round_no, torrents, last_complete))
        next_torrent = max(next_torrent, torrents) + 1000
        # And the tracker must start on it (the next round does that too).
        if round_no % 50 == 0 or round_no == rounds:
            print("round %d: file holds %d torrents, last completed save %d, %d kills left a temp file"
                  % (round_no, torrents, last_complete, kills_with_temp_file), flush=True)
    proc, host, port = start(state)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    print("%d kills in %.0f s: every state file loaded and held at least the last completed save "
          "(%d kills happened while a save was being written)" % (rounds, time.time() - started, kills_with_temp_file))


if __name__ == "__main__":
    main()
