#!/usr/bin/env python3
"""Writes N distinct 40-hex info hashes (default 1000), one per line, derived from fixed seeds.

    python3 tools/bench/make_hashes.py N > hashes.txt
"""
import hashlib
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
for n in range(count):
    print(hashlib.sha1(b"tinytracker-bench-%d" % n).hexdigest())
