"""The index at scale: list and search latency over 100,000 torrents, and the memory that each
torrent's metadata and peers-over-time history costs.

    python3 tools/bench/index.py TINYTRACKER_BINARY [TORRENTS=100000] [REQUESTS=300]

1. Writes state files of TORRENTS registered torrents: "bare" (a name only), "metadata" (title,
   artist, tags, category, a 200-character description and the uploader each), "indexed" (the same
   and a full 976-byte history each), and none at all ("empty"); starts the tracker on each and reads its resident memory (VmRSS)
   once loaded and searched once (so the search index is built). The differences, divided by
   TORRENTS, are what metadata and history cost a torrent.
2. On the "indexed" tracker, times REQUESTS requests of each kind, one at a time over one
   keep-alive connection, as a client sees them (loopback, Python's http.client): list page 1
   (newest, most seeders, by name), searches for a common word, two words, a word found nowhere,
   and a tag. Prints p50, p99 and max per kind, in milliseconds; then the time of three saves of
   that state (full histories written).
"""

import base64
import hashlib
import http.client
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

WORDS = ("live concert album session remaster deluxe edition volume archive dataset build nightly "
         "release lecture course season episode film documentary mix demo field recording "
         "été noël straße café piano violin jazz folk rock ambient techno").split()
TAGS = "jazz rock folk ambient data build lecture flac mp3 1080p 720p linux windows".split()
CATEGORIES = ["movies", "music", "software", "tv", "books", "games", "data", "other"]


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def history_blob(rng):
    """A full history as the state file holds it (src/store/history.rs): the slots and completion
    base, then 96 fine points (seeders, leechers) and 96 coarse points (seeders, leechers,
    completions), each count a varint of count + 1."""
    now = int(time.time())
    out = varint(now // 900) + varint(now // 21600) + varint(rng.randrange(1000))
    out += varint(96) + b"".join(varint(rng.randrange(50) + 1) + varint(rng.randrange(50) + 1)
                                 for _ in range(96))
    out += varint(96) + b"".join(varint(rng.randrange(80) + 1) + varint(rng.randrange(80) + 1)
                                 + varint(rng.randrange(20) + 1) for _ in range(96))
    return base64.b64encode(out).decode()


def write_state(path, count, indexed, history=True):
    rng = random.Random(7)
    now = int(time.time())
    with open(path, "w") as f:
        f.write('{"version": 2, "torrents": {')
        for n in range(count):
            key = hashlib.sha1(b"%d" % n).hexdigest()
            info = {"name": "torrent-%06d.bin" % n, "size": rng.randrange(1 << 34),
                    "creation_date": now - n, "added": now - n}
            if indexed:
                info.update({
                    "title": " ".join(rng.choice(WORDS) for _ in range(4)) + " %d" % n,
                    "artist": rng.choice(WORDS).title() + " " + rng.choice(WORDS).title(),
                    "tags": rng.sample(TAGS, 3),
                    "category": rng.choice(CATEGORIES),
                    "description": " ".join(rng.choice(WORDS) for _ in range(30))[:200],
                    "uploader": "user%d" % rng.randrange(200),
                })
            entry = {"info": info, "peers_info": [], "completions": rng.randrange(100),
                     "registered": True}
            if indexed and history:
                entry["history"] = history_blob(rng)
            f.write(("," if n else "") + json.dumps(key) + ":" + json.dumps(entry))
        f.write("}}\n")


def start(binary, state):
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1:0", "--state-file", state, "--save-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        raise SystemExit("the tracker did not start: %r" % line)
    return process, line.split()[-1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    work = tempfile.mkdtemp()
    memory = {}
    for kind in ("empty", "bare", "metadata", "indexed"):
        path = os.path.join(work, kind + ".json")
        if kind != "empty":
            write_state(path, count, kind in ("metadata", "indexed"), kind == "indexed")
        process, address = start(binary, path)
        # The answers prove the state is loaded, and the search index built, before memory is read.
        connection = http.client.HTTPConnection(address, timeout=60)
        connection.request("GET", "/api/v1/torrents?q=x")
        connection.getresponse().read()
        connection.request("GET", "/api/v1/stats")
        stats = json.loads(connection.getresponse().read())
        memory[kind] = rss_kib(process.pid)
        print("%-8s %6d torrents registered, VmRSS %7d KiB" % (kind, stats["registered"], memory[kind]))
        if kind != "indexed":
            process.terminate()
            process.wait()
            continue
        per = lambda a, b: (memory[a] - memory[b]) * 1024 / count
        print("per torrent: metadata %.0f bytes, history %.0f bytes, both %.0f bytes; everything %.0f bytes"
              % (per("metadata", "bare"), per("indexed", "metadata"), per("indexed", "bare"),
                 per("indexed", "empty")))
        kinds = [
            ("list newest", "/api/v1/torrents"),
            ("list by seeders", "/api/v1/torrents?sort=seeders"),
            ("list by name", "/api/v1/torrents?sort=name"),
            ("search 1 word", "/api/v1/torrents?q=concert"),
            ("search 2 words", "/api/v1/torrents?q=jazz+session"),
            ("search no match", "/api/v1/torrents?q=zzzzqqq"),
            ("search accents", "/api/v1/torrents?q=ETE"),
            ("tag", "/api/v1/torrents?tag=flac"),
        ]
        print("%-16s %8s %8s %8s %9s" % ("request", "p50 ms", "p99 ms", "max ms", "matched"))
        for name, target in kinds:
            took = []
            matched = 0
            for _ in range(requests):
                began = time.perf_counter()
                connection.request("GET", target)
                reply = connection.getresponse()
                body = reply.read()
                took.append((time.perf_counter() - began) * 1000)
                if reply.status != 200:
                    raise SystemExit("%s: %d %s" % (target, reply.status, body[:200]))
                matched = json.loads(body)["total"]
            print("%-16s %8.2f %8.2f %8.2f %9d" % (
                name, percentile(took, 50), percentile(took, 99), max(took), matched))
        saves = []
        for _ in range(3):
            connection.request("GET", "/save_state")
            saves.append(json.loads(connection.getresponse().read()))
        print("saves of the indexed state: %s ms, %d bytes" % (
            ", ".join(str(s["millis"]) for s in saves), saves[0]["bytes"]))
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
