#!/usr/bin/env python3
"""The Python tracker's `load_state`, as the reference describes it (its section 5): what the
original does with a state file when it starts. Its source cannot be committed, so this follows the
described behaviour step by step: TorrentInfo(**info) and Peer(**peer) refuse unknown fields, a
duplicate peer_id keeps the newest, peers seen 1800 s ago or more are dropped, a torrent left
without peers is dropped from both dicts, one with "peers_info": [] stays in torrent_info only,
and any exception discards everything.

    python3 legacy_loader.py STATE_FILE     prints {"torrent_info": {...}, "torrents": {...}, "error": ...}
"""
import json
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class TorrentInfo:
    info_hash: str = ""
    name: str = ""
    size: int = 0
    piece_length: int = 0
    creation_date: float = 0
    comment: str = ""
    created_by: str = ""


@dataclass
class Peer:
    peer_id: str
    ip: str
    port: int
    last_seen: float
    uploaded: int
    downloaded: int
    left: int
    is_seeder: bool


def load_state(path):
    torrents, torrent_info = {}, {}
    try:
        with open(path) as f:
            state = json.load(f)
        for key, entry in state.get("torrents", {}).items():
            torrent_info[key] = TorrentInfo(**entry.get("info", {}))
            if entry.get("peers_info"):
                peers = {}
                for fields in entry["peers_info"]:
                    peer = Peer(**fields)
                    old = peers.get(peer.peer_id)
                    if old is None or peer.last_seen > old.last_seen:
                        peers[peer.peer_id] = peer
                torrents[key] = peers
        now = time.time()
        for key in list(torrents):
            torrents[key] = {pid: p for pid, p in torrents[key].items() if now - p.last_seen < 1800}
            if not torrents[key]:
                del torrents[key]
                del torrent_info[key]
        error = None
    except Exception as e:  # the original: "Error loading tracker state: ..."
        torrents, torrent_info, error = {}, {}, str(e)
    return torrents, torrent_info, error


torrents, torrent_info, error = load_state(sys.argv[1])
print(json.dumps({
    "torrent_info": {k: asdict(v) for k, v in torrent_info.items()},
    "torrents": {k: [asdict(p) for p in peers.values()] for k, peers in torrents.items()},
    "error": error,
}))
