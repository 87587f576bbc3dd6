#!/usr/bin/env bash
# Times add-torrent-info registering N generated torrents (default 10,000) with a local tracker.
# Runs the CLI three times over the same directory (the first registers, the others update) and
# prints each wall time and the median.
#
#   bash tools/bench_add_torrent_info.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"

cargo build --release --quiet --bin tinytracker --bin add-torrent-info
work="$(mktemp -d)"
tracker_pid=""
cleanup() {
    if [ -n "$tracker_pid" ]; then kill "$tracker_pid" 2>/dev/null || true; wait "$tracker_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work/torrents" "$count" <<'PY'
import hashlib, os, sys
out, count = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
for n in range(count):
    name = b"bench-%05d.bin" % n
    pieces = hashlib.sha1(name).digest() * 4
    info = b"d6:lengthi%de4:name%d:%s12:piece lengthi262144e6:pieces%d:%se" % (
        1_000_000 + n, len(name), name, len(pieces), pieces)
    with open(os.path.join(out, "t%05d.torrent" % n), "wb") as f:
        f.write(b"d13:creation datei1700000000e4:info" + info + b"e")
PY

./target/release/tinytracker --bind 127.0.0.1:0 --state-file "$work/state.json" --save-interval 0 \
    > "$work/tracker.out" 2> "$work/tracker.err" &
tracker_pid=$!
until grep -q "listening on" "$work/tracker.out" 2>/dev/null; do
    kill -0 "$tracker_pid" || { cat "$work/tracker.err"; exit 1; }
    sleep 0.05
done
url="http://$(sed -n 's/^listening on //p' "$work/tracker.out" | head -1)"

times=()
for run in 1 2 3; do
    start=$EPOCHREALTIME
    ./target/release/add-torrent-info --tracker "$url" "$work/torrents" > "$work/run$run.out"
    end=$EPOCHREALTIME
    elapsed=$(python3 -c "print(f'{$end - $start:.2f}')")
    times+=("$elapsed")
    echo "run $run: $(tail -1 "$work/run$run.out") in ${elapsed} s"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
echo "median: ${median} s for ${count} torrents"
