"""Takes the README's screenshots of the web page from a real run: a tracker started on a state file
of a dozen torrents with peers and a day of peers-over-time history, and headless Chromium.

    /usr/bin/python3 tools/screenshots.py target/release/tinytracker docs/screenshots

Writes list.png (the torrents) and torrent.png (a torrent's page with its plot) into the folder.
Needs Debian's chromium, chromium-driver and python3-selenium (bash tools/test.sh installs them).
"""
import base64
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "bench"))
from index import varint  # noqa: E402  (the state file's history encoding)

RELEASES = [
    ("Field recordings, Camargue", "Léa Martin", ["flac", "nature"], "music"),
    ("Lab dataset 2026-11", "Imaging group", ["raw", "2026"], "data"),
    ("Nightly build 4.2.0-rc1", "CI", ["linux", "x86_64"], "software"),
    ("Lecture 7: Distributed hash tables", "Prof. Okafor", ["lecture", "1080p"], "tv"),
    ("Été indien (live)", "Ensemble Nuit", ["jazz", "live"], "music"),
    ("Street photography archive", "K. Sato", ["raw", "photo"], "data"),
    ("Documentary: The long river", "Studio North", ["1080p"], "movies"),
    ("Public domain novels, vol. 3", "", ["epub"], "books"),
]


def history(now, peak, phase):
    """A day of 15-minute points and a few 6-hour ones, rising and falling like a real swarm."""
    fine = []
    for n in range(96):
        wave = (1 + math.sin(n / 96 * 2 * math.pi + phase)) / 2
        fine.append((int(peak * (0.4 + 0.6 * wave)), int(peak * 0.6 * (1 - wave)) + 1))
    out = varint(now // 900) + varint(now // 21600) + varint(0)
    out += varint(96) + b"".join(varint(s + 1) + varint(l + 1) for s, l in fine)
    out += varint(4) + b"".join(varint(peak + 1) + varint(peak // 2 + 1) + varint(peak // 3 + 1) for _ in range(4))
    return base64.b64encode(out).decode()


def state(path):
    now = int(time.time())
    torrents = {}
    for n, (title, artist, tags, category) in enumerate(RELEASES):
        key = hashlib.sha1(title.encode()).hexdigest()
        peers = []
        for p in range(3 + (n * 5) % 11):
            peers.append({"peer_id": "-LT2080-%012d" % (n * 100 + p), "ip": "10.0.%d.%d" % (n, p + 1),
                          "port": 6881 + p, "last_seen": now, "uploaded": 0, "downloaded": 0,
                          "left": 0 if p % 3 == 0 else 1000, "is_seeder": p % 3 == 0})
        torrents[key] = {
            "info": {"name": title.lower().replace(" ", "-")[:40] + ".tar", "size": (n + 1) * 734003200,
                     "creation_date": now - n * 7200, "added": now - n * 7200, "title": title,
                     "artist": artist, "tags": tags, "category": category,
                     "description": "Shared on the lab's tracker."},
            "peers_info": peers, "completions": 4 + n * 3, "registered": True,
            "history": history(now, 8 + n * 2, n),
        }
    with open(path, "w") as f:
        json.dump({"version": 2, "torrents": torrents}, f)
    return hashlib.sha1(RELEASES[0][0].encode()).hexdigest()


def main():
    binary, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp()
    first = state(os.path.join(work, "tracker_state.json"))
    tracker = subprocess.Popen([binary, "--bind", "127.0.0.1:0", "--save-interval", "0",
                                "--state-file", os.path.join(work, "tracker_state.json")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = "http://" + tracker.stdout.readline().split()[-1]
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1100,760", "--hide-scrollbars"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(browser, 20)
    try:
        browser.get(base + "/web/")
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.torrents")))
        browser.save_screenshot(os.path.join(out, "list.png"))
        browser.get(base + "/web/torrent?hash=" + first)
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "svg.plot")))
        browser.save_screenshot(os.path.join(out, "torrent.png"))
    finally:
        browser.quit()
        tracker.terminate()
        tracker.wait()
    print("wrote %s/list.png and %s/torrent.png" % (out, out))


if __name__ == "__main__":
    main()
