#!/usr/bin/env bash
# Passkey downloads: a private tracker holding one uploaded ~50 KB .torrent, wrk fetching
# /<passkey>/download/<hash> (the stored file, personalized for the user, each time).
#
#   bash tools/bench/downloads.sh [SECONDS=10] [ROUNDS=3]
source "$(dirname "$0")/common.sh"
seconds="${1:-10}"; rounds="${2:-3}"
need wrk wrk
build
start_tinytracker tt --private
python3 - "$WORK/big.torrent" <<'PY'
import hashlib, os, sys
# A private single-file torrent of 2,500 pieces: a 50,000-byte `pieces` string, as for a ~40 GB file.
pieces = os.urandom(20 * 2500)
def b(s): return b"%d:%s" % (len(s), s)
info = (b"d6:lengthi" + str(2500 * 16 * 1024 * 1024).encode() + b"e4:name" + b(b"big-dataset.tar")
        + b"12:piece lengthi16777216e6:pieces" + b(pieces) + b"7:privatei1ee")
open(sys.argv[1], "wb").write(b"d8:announce" + b(b"http://old/announce") + b"4:info" + info + b"e")
PY
echo "torrent file: $(stat -c %s "$WORK/big.torrent") bytes"
passkey=$(curl -s "$TT_URL/users" -d '{"name": "bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["passkey"])')
hash=$(curl -s "$TT_URL/api/v1/torrents" -H 'Content-Type: application/x-bittorrent' --data-binary @"$WORK/big.torrent" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["info_hash"])')
url="$TT_URL/$passkey/download/$hash"
echo "served file: $(curl -s "$url" | wc -c) bytes"
for r in $(seq "$rounds"); do
    wrk -t2 -c10 -d"${seconds}s" --latency "$url" > "$WORK/wrk.$r"
    echo "run $r: $(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.$r") downloads/s, p99 $(awk '$1 == "99%" { print $2 }' "$WORK/wrk.$r")"
    awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.$r" >> "$WORK/rates"
done
echo "median: $(median < "$WORK/rates") downloads/s"
