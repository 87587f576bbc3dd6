#!/usr/bin/env bash
# Runs every test: `bash tools/test.sh [cargo test args]`. CI runs it through .ci/run, from a fresh
# clone, as root, on stock Debian 12 (system /usr/bin/python3, PEP 668 in force) with Rust.
# Installs what the end-to-end tests need, if missing, then runs every test:
#   - Debian's python3-libtorrent, for /usr/bin/python3 (a real BitTorrent client), and python3-venv;
#   - the clients of the real-client matrix: qbittorrent-nox, transmission-cli and aria2;
#   - Debian's redis-server, for the shared-store tests (each test starts its own on a free
#     loopback port in a temporary directory; the package's system service is kept from starting);
#   - a real browser for the web page's tests: chromium, chromium-driver and python3-selenium (for
#     /usr/bin/python3), with fonts-liberation so pages render text;
#   - requests and bencodepy from PyPI (the legacy add_torrent_info client) into a virtual
#     environment at target/test-venv, made from /usr/bin/python3 and put first on PATH, so no
#     package is installed into the system's Python.
set -euo pipefail

cd "$(dirname "$0")/.."

step() { echo "==> $*"; }

missing=()
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing+=(python3-libtorrent)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v qbittorrent-nox >/dev/null || missing+=(qbittorrent-nox)
command -v transmission-cli >/dev/null || missing+=(transmission-cli)
command -v aria2c >/dev/null || missing+=(aria2)
command -v curl >/dev/null || missing+=(curl ca-certificates)
command -v chromium >/dev/null || missing+=(chromium fonts-liberation)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' 2>/dev/null || missing+=(python3-selenium)
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # No package may start a system service (redis-server's would take port 6379): policy-rc.d
    # answers "not now" to every start while the install runs.
    policy=/usr/sbin/policy-rc.d
    added_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$added_policy" ]; then rm -f "$policy"; fi
fi
/usr/bin/python3 -c 'import libtorrent; print("==> libtorrent", libtorrent.__version__, "for /usr/bin/python3")'

venv=target/test-venv
if ! "$venv/bin/python3" -c 'import requests, bencodepy, feedparser' 2>/dev/null; then
    step "making $venv with requests, bencodepy and feedparser"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python3" -m pip install --quiet requests bencodepy feedparser
fi
export PATH="$PWD/$venv/bin:$PATH"
step "python3 for the legacy client: $(command -v python3)"
python3 -c 'import requests, bencodepy'

step "cargo test"
cargo test --locked "$@"
step "all tests passed"
