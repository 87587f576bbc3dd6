#!/usr/bin/env python3
"""Writes a tinytracker state file with PEERS peers spread over TORRENTS torrents, all seen now,
and the torrents' info hashes (one 40-hex per line) for announcing to them.

    python3 tools/bench/make_state.py STATE_FILE HASHES_FILE [TORRENTS=100000] [PEERS=1000000]
"""
import hashlib
import sys
import time

state_path, hashes_path = sys.argv[1], sys.argv[2]
torrents = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
peers = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
now = int(time.time())
per_torrent = peers // torrents

with open(state_path, "w") as out, open(hashes_path, "w") as hashes:
    out.write('{\n  "version": 2,\n  "saved_at": %d,\n  "torrents": {\n' % now)
    for t in range(torrents):
        info_hash = hashlib.sha1(b"tinytracker-state-bench-%d" % t).hexdigest()
        hashes.write(info_hash + "\n")
        entries = []
        for p in range(per_torrent):
            n = t * per_torrent + p
            entries.append(
                '{"peer_id": "-BS0001-%012d", "ip": "10.%d.%d.%d", "port": %d, "last_seen": %d, '
                '"uploaded": %d, "downloaded": %d, "left": %d, "is_seeder": %s}'
                % (n, (n >> 16) & 255, (n >> 8) & 255, n & 255, 1024 + n % 50000, now, n, n // 2,
                   0 if n % 4 == 0 else 1048576, "true" if n % 4 == 0 else "false"))
        out.write('    "%s": {"info": {"info_hash": "%s", "name": "bench-%d", "size": 1048576}, '
                  '"peers_info": [%s], "completions": 0, "registered": true}%s\n'
                  % (info_hash, info_hash, t, ", ".join(entries), "," if t + 1 < torrents else ""))
    out.write("  }\n}\n")
