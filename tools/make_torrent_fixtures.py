#!/usr/bin/env python3
"""Writes the .torrent fixtures in tests/fixtures/torrents/ (checked in; rerun only to change them).

Every file is bencoded by hand here, byte for byte, so the fixtures can hold what real-world files
hold but a canonical encoder would never write (unsorted keys, extra keys). The contents are derived
from fixed seeds, so a rerun writes the same bytes.

    python3 tools/make_torrent_fixtures.py

The info hashes are checked by the test suite against libtorrent, an independent implementation.
"""

import hashlib
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "torrents")
BLOCK = 16 * 1024


def ben(value, sort=True):
    """Bencodes ints, bytes, str, lists and dicts; dict keys sorted unless sort=False."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(ben(v, sort) for v in value) + b"e"
    if isinstance(value, dict):
        items = [(k.encode() if isinstance(k, str) else k, v) for k, v in value.items()]
        if sort:
            items.sort()
        return b"d" + b"".join(ben(k) + ben(v, sort) for k, v in items) + b"e"
    raise TypeError(type(value))


def data(seed, size):
    """Deterministic pseudo-random bytes."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%s-%d" % (seed.encode(), counter)).digest()
        counter += 1
    return out[:size]


def sha1_pieces(content, piece_length):
    return b"".join(hashlib.sha1(content[i:i + piece_length]).digest()
                    for i in range(0, len(content), piece_length))


def merkle_root(content):
    """BEP 52 pieces root of a file that fits in one piece: SHA-256 of 16 KiB blocks, zero-padded tree."""
    leaves = [hashlib.sha256(content[i:i + BLOCK]).digest() for i in range(0, len(content), BLOCK)]
    width = 1
    while width < len(leaves):
        width *= 2
    leaves += [bytes(32)] * (width - len(leaves))
    while len(leaves) > 1:
        leaves = [hashlib.sha256(leaves[i] + leaves[i + 1]).digest() for i in range(0, len(leaves), 2)]
    return leaves[0]


def torrent(info, info_bytes=None, **top):
    """A whole file: announce, the given top-level keys, and info (pre-encoded when given)."""
    head = {"announce": "http://localhost:6969/announce", "created by": "tinytracker fixtures",
            "creation date": 1763712000}
    head.update(top)
    # Top-level keys in sorted order, with info's bytes spliced in as given.
    entries = []
    for key in sorted(list(head.keys()) + ["info"]):
        if key == "info":
            entries.append(ben("info") + (info_bytes if info_bytes is not None else ben(info)))
        else:
            entries.append(ben(key) + ben(head[key]))
    return b"d" + b"".join(entries) + b"e"


def write(name, content):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)
    print("wrote", name, len(content), "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    piece = 32 * 1024

    single = data("single", 100_000)
    write("single-file.torrent", torrent({
        "name": "dataset.bin", "length": len(single), "piece length": piece,
        "pieces": sha1_pieces(single, piece)}, comment="one file"))

    a, b = data("multi-a", 40_000), data("multi-b", 30_000)
    write("multi-file.torrent", torrent({
        "name": "build-1.4.2",
        "files": [{"length": len(a), "path": ["bin", "app"]}, {"length": len(b), "path": ["README"]}],
        "piece length": piece, "pieces": sha1_pieces(a + b, piece)}))

    accented = data("accented", 5000)
    write("non-ascii-name.torrent", torrent({
        "name": "Ünïcödé データ ☃.mkv", "length": len(accented), "piece length": piece,
        "pieces": sha1_pieces(accented, piece)}, comment="Kommentar mit Umlauten: äöü"))

    latin = data("latin1", 7000)
    write("name-utf8.torrent", torrent({
        "name": "Caf\xe9 latin-1".encode("latin-1"), "name.utf-8": "Café utf-8",
        "length": len(latin), "piece length": piece, "pieces": sha1_pieces(latin, piece)}))

    sourced = data("source", 9000)
    write("extra-info-key.torrent", torrent({
        "name": "private.iso", "length": len(sourced), "piece length": piece, "private": 1,
        "source": "LAB", "pieces": sha1_pieces(sourced, piece)}))

    # Keys out of order: a re-encoding would sort them and change the hash; the file's bytes count.
    shuffled = data("unsorted", 12_000)
    unsorted_info = b"d" + b"".join(ben(k) + ben(v) for k, v in [
        ("pieces", sha1_pieces(shuffled, piece)), ("name", "unsorted.bin"),
        ("piece length", piece), ("length", len(shuffled))]) + b"e"
    write("unsorted-info-keys.torrent", torrent(None, info_bytes=unsorted_info))

    hybrid = data("hybrid", 20_000)
    write("hybrid-v1-v2.torrent", torrent({
        "name": "hybrid.bin", "length": len(hybrid), "piece length": piece,
        "pieces": sha1_pieces(hybrid, piece), "meta version": 2,
        "file tree": {"hybrid.bin": {"": {"length": len(hybrid), "pieces root": merkle_root(hybrid)}}}}))

    v2 = data("v2only", 20_000)
    write("pure-v2.torrent", torrent({
        "name": "v2only.bin", "piece length": piece, "meta version": 2,
        "file tree": {"v2only.bin": {"": {"length": len(v2), "pieces root": merkle_root(v2)}}}}))

    whole = open(os.path.join(OUT, "single-file.torrent"), "rb").read()
    write("truncated.torrent", whole[:len(whole) // 2])
    write("garbage.torrent", b"<html>this is not a torrent</html>\n")


if __name__ == "__main__":
    main()
