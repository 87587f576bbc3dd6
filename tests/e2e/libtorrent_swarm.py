"""A real BitTorrent download through tinytracker, with libtorrent as both client ends.

Creates a random data file, makes a private v1 torrent whose only tracker is ANNOUNCE_URL, and runs
two libtorrent sessions on 127.0.0.1: a seeder holding the data and a leecher starting empty. DHT,
local peer discovery, UPnP and NAT-PMP are off, so the peers can only find each other through the
tracker. The script waits until the leecher has the whole file, compares it byte for byte with the
original, then polls the tracker's JSON scrape until it counts the completion (downloaded 1,
complete 2). On success it prints `info_hash <40 hex>` and exits 0; on failure it prints what it
saw (libtorrent alerts, tracker replies and errors) and exits 1.

With a REGISTER command, the torrent is written to WORK_DIR/swarm.torrent and registered first by
running that command with the file's path appended (for a tracker that serves registered torrents
only); the command must exit 0.

With SWARM_DOWNLOAD_URL set (a URL with {hash} in it), the torrent is made with the tracker
SWARM_ORIGINAL_TRACKER instead, and after registering (an upload) both clients use the file served
at SWARM_DOWNLOAD_URL: libtorrent parses it, its info hashes must equal the original's and its only
tracker must be ANNOUNCE_URL (the tracker put the user's passkey URL in).

With SWARM_LEECHER_ANNOUNCE_URL set, the leecher announces there instead (another instance of a
tracker sharing one store): it can only learn of the seeder through the shared swarm. The scrape
that checks the completion still asks ANNOUNCE_URL's tracker.

Run with Debian's interpreter, which has python3-libtorrent (2.0):

    /usr/bin/python3 tests/e2e/libtorrent_swarm.py ANNOUNCE_URL WORK_DIR [REGISTER COMMAND...]

The integration tests `e2e::a_real_client_downloads_through_the_tracker` and
`e2e::a_real_client_downloads_through_a_private_tracker_with_a_passkey` run it.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import libtorrent as lt

DATA_SIZE = 3 * 1024 * 1024 + 12345  # not a multiple of the piece size: the last piece is short
PIECE_SIZE = 256 * 1024
DOWNLOAD_DEADLINE_SECS = 120
SCRAPE_DEADLINE_SECS = 30
POLL_SECS = 0.1
SHOWN_ALERTS = 400


class Failure(Exception):
    pass


# Every alert category except the per-block, per-peer-message and DHT chatter.
ALERTS = lt.alert.category_t.all_categories & ~(
    lt.alert.category_t.peer_log_notification
    | lt.alert.category_t.picker_log_notification
    | lt.alert.category_t.block_progress_notification
    | lt.alert.category_t.stats_notification
    | lt.alert.category_t.dht_log_notification
    | lt.alert.category_t.dht_operation_notification
    | lt.alert.category_t.port_mapping_log_notification
    | lt.alert.category_t.upload_notification
)
STARTED = time.monotonic()
LOG = []  # "time client alert: message" of both clients, in the order they were collected


class Client:
    """One libtorrent session on 127.0.0.1 with a single torrent."""

    def __init__(self, name, torrent, save_path, announce_url):
        self.name = name
        self.replies = 0  # successful announces
        self.peers_from_tracker = 0  # most peers one announce reply gave
        self.session = lt.session(
            {
                "listen_interfaces": "127.0.0.1:0",
                "enable_dht": False,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                # Both clients are 127.0.0.1: let them connect although they share an address.
                "allow_multiple_connections_per_ip": True,
                "alert_mask": ALERTS,
                "user_agent": "tinytracker-e2e/" + lt.__version__,
                "stop_tracker_timeout": 2,
                # libtorrent 2.0's SSRF mitigation only lets a tracker on a loopback address be
                # reached at a path that starts with /announce, which rules out the passkey form
                # /<passkey>/announce here. A tracker on a real address is not affected.
                "ssrf_mitigation": urllib.parse.urlsplit(announce_url).path == "/announce",
            }
        )
        self.handle = self.session.add_torrent({"ti": torrent, "save_path": save_path})
        if announce_url not in [t.url for t in torrent.trackers()]:
            self.handle.replace_trackers([lt.announce_entry(announce_url)])

    def pump(self):
        """Moves pending alerts to LOG and counts successful tracker replies."""
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                self.replies += 1
                self.peers_from_tracker = max(self.peers_from_tracker, alert.num_peers)
            elapsed = time.monotonic() - STARTED
            LOG.append("%8.3f %s %s: %s" % (elapsed, self.name, alert.what(), alert.message()))

    def status(self):
        return self.handle.status()

    def close(self):
        """Ends the session; it sends event=stopped and waits for it (at most stop_tracker_timeout)."""
        self.handle = None
        self.session = None

    def describe(self):
        s = self.status()
        return "%s: %s, progress %.3f, seeding %s, %d peers, port %d, %d announce replies, error %r" % (
            self.name,
            s.state,
            s.progress,
            s.is_seeding,
            s.num_peers,
            self.session.listen_port(),
            self.replies,
            s.errc.message() if s.errc.value() else "",
        )


KIND = os.environ.get("SWARM_KIND", "v1")
DOWNLOAD_URL = os.environ.get("SWARM_DOWNLOAD_URL")
ORIGINAL_TRACKER = os.environ.get("SWARM_ORIGINAL_TRACKER")
LEECHER_URL = os.environ.get("SWARM_LEECHER_ANNOUNCE_URL")


def make_torrent(announce_url, data_dir):
    """Writes the random data file in data_dir; returns (torrent_info, file name, the data)."""
    data = os.urandom(DATA_SIZE)
    name = "e2e-random.bin"
    with open(os.path.join(data_dir, name), "wb") as f:
        f.write(data)
    files = lt.file_storage()
    lt.add_files(files, os.path.join(data_dir, name))
    # SWARM_KIND: v1 (default), v2 (BEP 52 only: announced under the SHA-256 hash truncated to
    # 20 bytes) or hybrid (announced under both hashes).
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[KIND]
    creator = lt.create_torrent(files, PIECE_SIZE, flags)
    tracker = ORIGINAL_TRACKER or announce_url
    creator.add_tracker(tracker)
    creator.set_priv(True)
    creator.set_creator("tinytracker e2e test")
    lt.set_piece_hashes(creator, data_dir)
    encoded = lt.bencode(creator.generate())
    torrent = lt.torrent_info(lt.bdecode(encoded))
    with open(os.path.join(os.path.dirname(data_dir), "swarm.torrent"), "wb") as f:
        f.write(encoded)
    if not torrent.priv():
        raise Failure("the torrent is not private")
    if [t.url for t in torrent.trackers()] != [tracker]:
        raise Failure("unexpected trackers: %r" % [t.url for t in torrent.trackers()])
    return torrent, name, data


def wait_until(what, deadline_secs, clients, done):
    """Polls (pumping alerts) until done() is true; raises Failure at the deadline."""
    deadline = time.monotonic() + deadline_secs
    while True:
        for client in clients:
            client.pump()
        if done():
            return
        if time.monotonic() > deadline:
            raise Failure("timed out after %d s waiting for %s" % (deadline_secs, what))
        time.sleep(POLL_SECS)


def scrape(announce_url, info_hash):
    """The tracker's JSON scrape of one torrent (BEP 48: the last "announce" becomes "scrape")."""
    head, _, tail = announce_url.rpartition("announce")
    url = "%sscrape%s%sinfo_hash=%s&format=json" % (
        head, tail, "&" if "?" in tail else "?", urllib.parse.quote(info_hash, safe=""))
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def served_torrent(url, hashes, announce_url):
    """The .torrent the tracker serves at url, parsed by libtorrent and checked against the
    original: the same info hashes, and announce_url as its only tracker."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        served = reply.read()
    torrent = lt.torrent_info(lt.bdecode(served))
    got = torrent.info_hashes()
    if (got.v1.to_bytes(), got.v2.to_bytes()) != (hashes.v1.to_bytes(), hashes.v2.to_bytes()):
        raise Failure("the served file has other info hashes than the uploaded one")
    trackers = [t.url for t in torrent.trackers()]
    if trackers != [announce_url]:
        raise Failure("the served file's trackers are %r, not [%r]" % (trackers, announce_url))
    print("served file (%d bytes): the same info hashes, tracker %s" % (len(served), trackers[0]))
    return torrent


def run(announce_url, work_dir, register_command):
    seed_dir = os.path.join(work_dir, "seeder")
    leech_dir = os.path.join(work_dir, "leecher")
    os.makedirs(seed_dir)
    os.makedirs(leech_dir)
    torrent, name, data = make_torrent(announce_url, seed_dir)
    hashes = torrent.info_hashes()
    if (hashes.has_v1(), hashes.has_v2()) != {"v1": (True, False), "v2": (False, True),
                                               "hybrid": (True, True)}[KIND]:
        raise Failure("libtorrent made no %s torrent" % KIND)
    # The hash the tracker keeps the torrent under: v1, or for a pure v2 torrent its truncated v2.
    info_hash = hashes.v1.to_bytes() if hashes.has_v1() else hashes.v2.to_bytes()[:20]
    info_hex = info_hash.hex()
    print("libtorrent %s, private %s torrent %s: %d bytes in %d pieces"
          % (lt.__version__, KIND, info_hex, DATA_SIZE, torrent.num_pieces()))
    if register_command:
        command = register_command + [os.path.join(work_dir, "swarm.torrent")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        print("registered: %s" % done.stdout.strip())
        if done.returncode != 0:
            raise Failure("registering failed (%d): %s %s" % (done.returncode, done.stdout, done.stderr))
    if DOWNLOAD_URL:
        torrent = served_torrent(DOWNLOAD_URL.replace("{hash}", info_hex), hashes, announce_url)

    clients = []
    try:
        seeder = Client("seeder", torrent, seed_dir, announce_url)
        clients.append(seeder)
        # The seeder must be in the tracker's swarm before the leecher's first announce,
        # since the tracker is the only way the leecher can learn of it.
        wait_until("the seeder to check its data and announce", 30, clients,
                   lambda: seeder.status().is_seeding and seeder.replies > 0)
        leecher = Client("leecher", torrent, leech_dir, LEECHER_URL or announce_url)
        clients.append(leecher)
        print("seeder on 127.0.0.1:%d, leecher on 127.0.0.1:%d" % (
            seeder.session.listen_port(), leecher.session.listen_port()))
        began = time.monotonic()
        wait_until("the leecher to download everything", DOWNLOAD_DEADLINE_SECS, clients,
                   lambda: leecher.status().is_seeding)
        print("leecher finished in %.2f s; the tracker gave it %d peer(s)" % (
            time.monotonic() - began, leecher.peers_from_tracker))

        with open(os.path.join(leech_dir, name), "rb") as f:
            downloaded = f.read()
        if downloaded != data:
            raise Failure("the downloaded file differs from the original (%d vs %d bytes)"
                          % (len(downloaded), len(data)))
        print("downloaded file matches the original byte for byte")

        # After finishing, libtorrent announces event=completed with left=0.
        last = {}

        def tracker_counted_it():
            last["scrape"] = scrape(announce_url, info_hash)
            entry = last["scrape"].get("files", {}).get(info_hex, {})
            return entry.get("downloaded") == 1 and entry.get("complete") == 2

        try:
            wait_until("the tracker to count the completion", SCRAPE_DEADLINE_SECS, clients,
                       tracker_counted_it)
        except Failure as e:
            raise Failure("%s; last scrape: %s" % (e, json.dumps(last.get("scrape"))))
        print("tracker scrape: %s" % json.dumps(last["scrape"]))
        print("info_hash %s" % info_hex)
    except BaseException:
        for client in clients:
            client.pump()
            print(client.describe(), file=sys.stderr)
        shown = LOG[-SHOWN_ALERTS:]
        print("libtorrent alerts (last %d of %d):" % (len(shown), len(LOG)), file=sys.stderr)
        for line in shown:
            print("  " + line, file=sys.stderr)
        raise
    finally:
        for client in clients:
            client.close()


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    announce_url, work_dir, register_command = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        run(announce_url, work_dir, register_command)
    except Failure as e:
        print("FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
