"""One cell of the real-client matrix: a BitTorrent client downloads through tinytracker.

    /usr/bin/python3 tests/e2e/client_matrix.py CLIENT FAMILY ANNOUNCE_URL WORK_DIR [REGISTER COMMAND...]

CLIENT is libtorrent, qbittorrent (qbittorrent-nox), transmission (transmission-cli) or aria2
(aria2c); FAMILY is 4 (127.0.0.1) or 6 (::1), and ANNOUNCE_URL names the tracker on that family:
http://… or udp://… (then MATRIX_HTTP_BASE, the tracker's http://host:port, is where the scrape
is asked).

A private v1 torrent of random data is made with libtorrent (its only tracker ANNOUNCE_URL),
registered first when a REGISTER command is given (the torrent's path is appended; it must exit
0), and seeded by a libtorrent session listening only on the family's loopback address. The client
under test starts empty, with DHT, local peer discovery, peer exchange and port mapping off and
bound to the same loopback address, so the tracker is the only way it can learn of the seeder.
The cell passes when the client's file equals the original byte for byte and the tracker's JSON
scrape counts the completion; it then prints `ok CLIENT IPvFAMILY ...` and exits 0. On failure it
prints what it saw (the client's output, the seeder's alerts, the last scrape) and exits 1.

The integration tests `e2e::matrix_*` run every cell: 4 clients x HTTP/UDP x IPv4/IPv6 x
open/passkey.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import libtorrent as lt

DATA_SIZE = 2 * 1024 * 1024 + 4321
PIECE_SIZE = 256 * 1024
DEADLINE_SECS = 90
POLL_SECS = 0.1
NAME = "matrix-random.bin"


class Failure(Exception):
    pass


def loopback(family):
    return {"4": "127.0.0.1", "6": "::1"}[family]


def free_port(family):
    """A TCP port free on the family's loopback address (the client binds it right after)."""
    with socket.socket(socket.AF_INET if family == "4" else socket.AF_INET6) as s:
        s.bind((loopback(family), 0))
        return s.getsockname()[1]


def endpoint(family, port):
    return "%s:%d" % (loopback(family) if family == "4" else "[::1]", port)


def make_torrent(announce_url, seed_dir, work_dir):
    data = os.urandom(DATA_SIZE)
    with open(os.path.join(seed_dir, NAME), "wb") as f:
        f.write(data)
    files = lt.file_storage()
    lt.add_files(files, os.path.join(seed_dir, NAME))
    creator = lt.create_torrent(files, PIECE_SIZE, lt.create_torrent.v1_only)
    creator.add_tracker(announce_url)
    creator.set_priv(True)
    lt.set_piece_hashes(creator, seed_dir)
    encoded = lt.bencode(creator.generate())
    path = os.path.join(work_dir, "matrix.torrent")
    with open(path, "wb") as f:
        f.write(encoded)
    return lt.torrent_info(lt.bdecode(encoded)), path, data


def libtorrent_session(family, announce_url):
    return lt.session({
        "listen_interfaces": endpoint(family, 0),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": (lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
                       | lt.alert.category_t.tracker_notification | lt.alert.category_t.connect_notification | lt.alert.category_t.peer_notification),
        # libtorrent 2.0 reaches a loopback tracker only at a path starting with /announce unless
        # its SSRF mitigation is off (the passkey form /<passkey>/announce).
        "ssrf_mitigation": urllib.parse.urlsplit(announce_url).path == "/announce",
    })


class Seeder:
    def __init__(self, family, announce_url, torrent, seed_dir):
        self.session = libtorrent_session(family, announce_url)
        self.handle = self.session.add_torrent({"ti": torrent, "save_path": seed_dir})
        self.replies = 0
        self.log = []

    def pump(self):
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                self.replies += 1
            self.log.append("%s: %s" % (alert.what(), alert.message()))


class LibtorrentLeecher:
    def __init__(self, family, announce_url, torrent_path, save_dir, _config_dir):
        self.session = libtorrent_session(family, announce_url)
        self.session.add_torrent({"ti": lt.torrent_info(torrent_path), "save_path": save_dir})

    def output(self):
        return "\n".join("%s: %s" % (a.what(), a.message()) for a in self.session.pop_alerts())

    def stop(self):
        self.session = None


class ProcessLeecher:
    """A client run as a process; its output goes to a file shown on failure."""

    def start(self, command, config_dir):
        self.log_path = os.path.join(config_dir, "client.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=config_dir)

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        # transmission-cli redraws a progress line with carriage returns.
        lines = [line.split("\r")[-1] for line in text.splitlines()]
        return "exit %r\n%s" % (self.process.poll(), "\n".join(lines[-60:]))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Aria2(ProcessLeecher):
    def __init__(self, family, announce_url, torrent_path, save_dir, config_dir):
        # aria2 talks to UDP trackers through its DHT socket: for a udp:// tracker the DHT of the
        # family is on, with no bootstrap node and its table in the config dir (the seeder has no
        # DHT, so the tracker is still the only way to find it).
        udp = announce_url.startswith("udp://")
        dht = [
            "--enable-dht=%s" % ("true" if udp and family == "4" else "false"),
            "--enable-dht6=%s" % ("true" if udp and family == "6" else "false"),
            "--dht-listen-port=%d" % free_port(family),
            "--dht-file-path=" + os.path.join(config_dir, "dht.dat"),
            "--dht-file-path6=" + os.path.join(config_dir, "dht6.dat"),
        ]
        self.start([
            "aria2c", "--dir=" + save_dir, "--interface=" + loopback(family),
            "--listen-port=%d" % free_port(family)] + dht + [
            "--bt-enable-lpd=false", "--enable-peer-exchange=false",
            # Seeding a while: aria2 sends event=completed only when it is still running after
            # the download (one that stops at once sends event=stopped with left=0 instead).
            "--seed-time=5",
            "--file-allocation=none", "--summary-interval=0", "--console-log-level=notice",
            "--no-conf=true", "--disable-ipv6=" + ("true" if family == "4" else "false"),
            torrent_path,
        ], config_dir)


class Transmission(ProcessLeecher):
    def __init__(self, family, _announce_url, torrent_path, save_dir, config_dir):
        settings = {
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "blocklist-enabled": False,
            # Transmission also binds its tracker requests to bind-address-ipv4, so for a tracker
            # on ::1 it keeps its default (any address); it only listens there, and every peer it
            # can learn of is on loopback.
            "bind-address-ipv4": "127.0.0.1" if family == "4" else "0.0.0.0",
            "bind-address-ipv6": "::1",
            "download-dir": save_dir,
            "incomplete-dir-enabled": False,
            "rename-partial-files": False,
            "message-level": 3,
        }
        with open(os.path.join(config_dir, "settings.json"), "w") as f:
            json.dump(settings, f)
        self.start([
            "transmission-cli", "--config-dir", config_dir, "--download-dir", save_dir,
            "--port", str(free_port(family)), "--no-portmap", "--no-blocklist", torrent_path,
        ], config_dir)


class QBittorrent(ProcessLeecher):
    def __init__(self, family, _announce_url, torrent_path, save_dir, config_dir):
        conf_dir = os.path.join(config_dir, "qBittorrent", "config")
        os.makedirs(conf_dir)
        with open(os.path.join(conf_dir, "qBittorrent.conf"), "w") as f:
            f.write("\n".join([
                "[LegalNotice]",
                "Accepted=true",
                "",
                "[BitTorrent]",
                "Session\\DHTEnabled=false",
                "Session\\LSDEnabled=false",
                "Session\\PeXEnabled=false",
                "Session\\Interface=lo",
                "Session\\InterfaceName=lo",
                "Session\\InterfaceAddress=" + loopback(family),
                "Session\\Port=%d" % free_port(family),
                # As for libtorrent itself: a loopback tracker at /<passkey>/announce.
                "Session\\SSRFMitigation=false",
                "Session\\MultiConnectionsPerIp=true",
                "Session\\QueueingSystemEnabled=false",
                "Session\\DefaultSavePath=" + save_dir,
                "Session\\TempPathEnabled=false",
                "",
                "[Network]",
                "PortForwardingEnabled=false",
                "",
                "[Preferences]",
                "Connection\\ResolvePeerCountries=false",
                "WebUI\\Address=127.0.0.1",
                "WebUI\\LocalHostAuth=true",
                "General\\Locale=en",
                "",
            ]))
        self.start([
            "qbittorrent-nox", "--profile=" + config_dir, "--webui-port=%d" % free_port("4"),
            "--save-path=" + save_dir, "--skip-dialog=true", torrent_path,
        ], config_dir)


CLIENTS = {
    "libtorrent": LibtorrentLeecher,
    "qbittorrent": QBittorrent,
    "transmission": Transmission,
    "aria2": Aria2,
}


def scrape(announce_url, info_hash):
    """The tracker's JSON scrape. For a udp:// tracker it is asked over HTTP at MATRIX_HTTP_BASE
    (the same path: a passkey URL scrapes with the passkey)."""
    if announce_url.startswith("udp://"):
        announce_url = os.environ["MATRIX_HTTP_BASE"] + urllib.parse.urlsplit(announce_url).path
    head, _, tail = announce_url.rpartition("announce")
    url = "%sscrape%s%sinfo_hash=%s&format=json" % (
        head, tail, "&" if "?" in tail else "?", urllib.parse.quote(info_hash, safe=""))
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def wait_until(what, seeder, done, deadline_secs=DEADLINE_SECS, reannounce=False):
    """Polls until done(); with `reannounce`, the seeder asks the tracker for peers every 2 s, so
    it learns of the leecher and connects to it too (Transmission refuses to connect to loopback
    peers itself, but accepts their connections)."""
    deadline = time.monotonic() + deadline_secs
    next_announce = time.monotonic() + 2
    while not done():
        seeder.pump()
        now = time.monotonic()
        if now > deadline:
            raise Failure("timed out after %d s waiting for %s" % (deadline_secs, what))
        if reannounce and now > next_announce:
            seeder.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
            next_announce = now + 2
        time.sleep(POLL_SECS)


def has(path, data):
    try:
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def run(client, family, announce_url, work_dir, register):
    dirs = {name: os.path.join(work_dir, name) for name in ("seeder", "leecher", "config")}
    for path in dirs.values():
        os.makedirs(path)
    torrent, torrent_path, data = make_torrent(announce_url, dirs["seeder"], work_dir)
    info_hash = torrent.info_hashes().v1.to_bytes()
    if register:
        done = subprocess.run(register + [torrent_path], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise Failure("registering failed (%d): %s %s" % (done.returncode, done.stdout, done.stderr))
    seeder = Seeder(family, announce_url, torrent, dirs["seeder"])
    leecher = None
    last = {}
    try:
        wait_until("the seeder to announce", seeder,
                   lambda: seeder.handle.status().is_seeding and seeder.replies > 0, 30)
        began = time.monotonic()
        leecher = CLIENTS[client](family, announce_url, torrent_path, dirs["leecher"], dirs["config"])
        wait_until("%s to download the file" % client, seeder,
                   lambda: has(os.path.join(dirs["leecher"], NAME), data), reannounce=True)
        took = time.monotonic() - began

        def counted():
            last["scrape"] = scrape(announce_url, info_hash)
            return last["scrape"]["files"].get(info_hash.hex(), {}).get("downloaded", 0) >= 1

        wait_until("the tracker to count the completion", seeder, counted, 30)
        print("ok %s IPv%s: %d bytes in %.1f s, scrape %s" % (
            client, family, len(data), took, json.dumps(last["scrape"]["files"][info_hash.hex()])))
    except BaseException:
        seeder.pump()
        print("seeder: %s, %d tracker replies" % (seeder.handle.status().state, seeder.replies),
              file=sys.stderr)
        print("seeder alerts:\n  " + "\n  ".join(seeder.log[-40:]), file=sys.stderr)
        if leecher is not None:
            print("%s:\n%s" % (client, leecher.output()), file=sys.stderr)
        print("last scrape: %s" % json.dumps(last.get("scrape")), file=sys.stderr)
        raise
    finally:
        if leecher is not None:
            leecher.stop()


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in CLIENTS or sys.argv[2] not in ("4", "6"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    client, family, announce_url = sys.argv[1:4]
    work_dir = os.path.abspath(sys.argv[4])
    if client != "libtorrent":
        program = {"qbittorrent": "qbittorrent-nox", "transmission": "transmission-cli",
                   "aria2": "aria2c"}[client]
        if shutil.which(program) is None:
            print("FAILED: %s is not installed (tools/test.sh installs it)" % program, file=sys.stderr)
            sys.exit(1)
    try:
        run(client, family, announce_url, work_dir, sys.argv[5:])
    except Failure as e:
        print("FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
