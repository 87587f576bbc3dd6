#!/usr/bin/env bash
# Saving and loading a state file with PEERS peers (default 1,000,000 over 100,000 torrents), and
# announce latency while saves run: the tracker loads a generated file (load time from its log),
# then wrk announces for SECONDS without saves and again while /save_state runs back to back.
#
#   bash tools/bench/persistence.sh [SECONDS=15] [TORRENTS=100000] [PEERS=1000000]
source "$(dirname "$0")/common.sh"
seconds="${1:-15}"; torrents="${2:-100000}"; peers="${3:-1000000}"
need wrk wrk
build
echo "writing a state file with $peers peers over $torrents torrents..."
python3 "$ROOT/tools/bench/make_state.py" "$WORK/tt.json" "$WORK/hashes.txt" "$torrents" "$peers"
echo "state file: $(du -h "$WORK/tt.json" | cut -f1)"

started=$EPOCHREALTIME
start_tinytracker tt
ready=$EPOCHREALTIME
grep -o "loaded .*" "$WORK/tt.err"
python3 -c "print(f'start to listening: {($ready - $started):.2f} s')"

# The load announces to 1,000 of the torrents from 10 ports, so the swarm stays near its size.
head -1000 "$WORK/hashes.txt" > "$WORK/load-hashes.txt"
load() {
    BENCH_HASHES="$WORK/load-hashes.txt" BENCH_PORTS=10 wrk -t1 -c10 -d"${seconds}s" --latency \
        -s "$ROOT/tools/bench/announce.lua" "$TT_URL" > "$WORK/wrk.$1"
    echo "$1: $(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.$1") announces/s, p50 $(awk '$1 == "50%" { print $2 }' "$WORK/wrk.$1"), p99 $(awk '$1 == "99%" { print $2 }' "$WORK/wrk.$1")"
}

load "without saves"
load "during saves" &
wrk_pid=$!
sleep 1
saves=0
while kill -0 "$wrk_pid" 2>/dev/null; do
    reply=$(curl -s "$TT_URL/save_state")
    saves=$((saves + 1))
    echo "$reply" >> "$WORK/saves"
done
wait "$wrk_pid"
python3 - "$WORK/saves" <<'PY'
import json, statistics, sys
saves = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
millis = sorted(s["millis"] for s in saves)
last = saves[-1]
print(f"{len(saves)} saves of {last['peers']} peers, {last['torrents']} torrents, {last['bytes'] / 1e6:.0f} MB: "
      f"median {statistics.median(millis):.0f} ms, fastest {millis[0]} ms, slowest {millis[-1]} ms")
PY
