"""Sends, for each .torrent file, the same request as the Python tracker's add_torrent_info.py.

That client cannot be shipped here, so this script reproduces its request byte for byte: the same
libraries (requests, bencodepy), the same hash computation and text form, the same JSON fields.

For each torrent file: decode it with bencodepy, take the SHA-1 of the re-encoded info dictionary,
write those 20 bytes in the legacy client's text form (custom_urlencode: bytes 0x20..=0x7E as the
character itself, '%' included; every other byte as %XX in upper case) and POST the metadata as JSON
to TRACKER/add_torrent_info. Status 200 means success.

Beyond what that client does, this prints the info hash in hex and the tracker's reply, and exits 1 if any
torrent was not accepted, so a test can check the outcome.

Run with a Python that has `requests` and `bencodepy` (pip install requests bencodepy):

    python3 tests/e2e/legacy_client.py [--tracker http://localhost:6969] FILE.torrent...

The integration test `e2e::the_legacy_client_registers_torrents_under_their_real_info_hash`
runs it.
"""

import argparse
import hashlib
import sys
import time

import bencodepy
import requests


def custom_urlencode(raw):
    """The original's text form of a binary info hash."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E else "%%%02X" % b for b in raw)


def torrent_info(path):
    """The JSON body the original client sent for one .torrent file, and the raw info hash."""
    with open(path, "rb") as f:
        torrent = bencodepy.decode(f.read())
    info = torrent[b"info"]
    info_hash = hashlib.sha1(bencodepy.encode(info)).digest()
    if b"length" in info:
        size = info[b"length"]
    else:
        size = sum(entry[b"length"] for entry in info[b"files"])
    body = {
        "info_hash": custom_urlencode(info_hash),
        "name": info[b"name"].decode("utf-8", errors="replace"),
        "size": size,
        "piece_length": info[b"piece length"],
        "comment": torrent.get(b"comment", b"").decode("utf-8", errors="replace"),
        "created_by": torrent.get(b"created by", b"").decode("utf-8", errors="replace"),
        "creation_date": torrent.get(b"creation date", int(time.time())),
    }
    return body, info_hash


def main():
    parser = argparse.ArgumentParser(description="Add torrent info to the tracker")
    parser.add_argument("torrents", nargs="+", help="torrent files")
    parser.add_argument("--tracker", default="http://localhost:6969", help="tracker URL")
    args = parser.parse_args()

    failures = 0
    for path in args.torrents:
        body, info_hash = torrent_info(path)
        print("%s: info hash %s, sent as %r" % (path, info_hash.hex(), body["info_hash"]))
        response = requests.post(f"{args.tracker}/add_torrent_info", json=body, timeout=30)
        print("tracker replied %d: %s" % (response.status_code, response.text.strip()))
        if response.status_code == 200:
            print(f"Successfully added torrent info for {body['name']}")
        else:
            print(f"Failed to add torrent info for {body['name']}", file=sys.stderr)
            failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
