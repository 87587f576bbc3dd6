#!/usr/bin/env bash
# A full disk: the tracker keeps its state file on a 256 KiB tmpfs, torrents are registered until a
# save no longer fits; the failed save must answer 500 and be logged, the previous file must stay
# whole, and announces must still be served. Needs root (mount).
#
#   bash tools/full_disk.sh
source "$(dirname "$0")/bench/common.sh"
build
mkdir -p "$WORK/disk"
mount -t tmpfs -o size=256k tmpfs "$WORK/disk"
trap 'umount "$WORK/disk" 2>/dev/null || true; cleanup' EXIT
"$ROOT/target/release/tinytracker" --bind 127.0.0.1:0 --state-file "$WORK/disk/tracker_state.json" \
    --save-interval 0 > "$WORK/out" 2> "$WORK/err" &
PIDS+=("$!")
until grep -q "listening on" "$WORK/out" 2>/dev/null; do sleep 0.05; done
url="http://$(sed -n 's/^listening on //p' "$WORK/out")"
n=0; status=200
while [ "$status" = 200 ]; do
    for _ in $(seq 50); do
        n=$((n + 1))
        curl -s -o /dev/null "$url/add_torrent_info" -d "{\"info_hash\": \"$(printf %040x "$n")\", \"name\": \"$(printf 'n%.0s' $(seq 40))\"}"
    done
    cp "$WORK/disk/tracker_state.json" "$WORK/last-good.json" 2>/dev/null || true
    status=$(curl -s -o "$WORK/reply" -w '%{http_code}' "$url/save_state")
done
echo "save with $n torrents: HTTP $status: $(cat "$WORK/reply")"
cmp -s "$WORK/disk/tracker_state.json" "$WORK/last-good.json" && echo "previous file: unchanged ($(stat -c %s "$WORK/last-good.json") bytes)" || { echo "previous file CHANGED"; exit 1; }
python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/disk/tracker_state.json" && echo "previous file: valid JSON"
grep -m1 "saving .* failed" "$WORK/err" | sed 's/^/log: /'
announce=$(curl -s "$url/announce?info_hash=$(printf %040x 1 | sed 's/../%&/g')&peer_id=-FD0001-000000000000&port=1")
case "$announce" in d8:complete*) echo "announces: still served";; *) echo "announce failed: $announce"; exit 1;; esac
[ "$status" = 500 ] || exit 1
