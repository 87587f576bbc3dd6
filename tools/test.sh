#!/usr/bin/env bash
# Runs every test: `bash tools/test.sh [cargo test args]`. CI runs it through .ci/run, from a fresh clone,
# as root, on Debian 12 with Rust and Python 3.
# Installs what the end-to-end tests need, if missing, then runs every test:
#   - Debian's python3-libtorrent, for /usr/bin/python3 (a real BitTorrent client);
#   - requests and bencodepy from PyPI, for the python3 first on PATH (the legacy add_torrent_info client).
set -euo pipefail

cd "$(dirname "$0")/.."

step() { echo "==> $*"; }

if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
    step "python3-libtorrent already installed"
else
    step "installing python3-libtorrent"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-libtorrent >/dev/null
fi
/usr/bin/python3 -c 'import libtorrent; print("==> libtorrent", libtorrent.__version__, "for /usr/bin/python3")'

if python3 -c 'import requests, bencodepy' 2>/dev/null; then
    step "requests and bencodepy already installed for $(command -v python3)"
else
    step "installing requests and bencodepy for $(command -v python3)"
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
        python3 -m pip install --quiet requests bencodepy
fi
python3 -c 'import requests, bencodepy'

step "cargo test"
cargo test --locked "$@"
step "all tests passed"
