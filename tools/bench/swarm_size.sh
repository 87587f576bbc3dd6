#!/usr/bin/env bash
# Announce latency in a 100,000-peer swarm against a 10-peer swarm, side by side in one run:
# fills one torrent with PEERS distinct peers and another with 10, then times announces
# (numwant=50, from 10 fixed peers, wrk -t1 -c4) to each, alternating, ROUNDS times. The tracker
# (one worker) is pinned to CPU 0 and wrk to CPU 1.
#
#   bash tools/bench/swarm_size.sh [ROUNDS=5] [SECONDS=10] [PEERS=100000]
source "$(dirname "$0")/common.sh"
rounds="${1:-5}"; seconds="${2:-10}"; peers="${3:-100000}"
need wrk wrk
build
python3 "$ROOT/tools/bench/make_hashes.py" 2 > "$WORK/hashes.txt"
big=$(sed -n 1p "$WORK/hashes.txt"); small=$(sed -n 2p "$WORK/hashes.txt")
# Behind a "trusted proxy" every announce can name its own client; registering then needs the token.
start_tinytracker tt --trusted-proxy 127.0.0.1 --admin-token bench --workers 1
# The tracker on one core and the load on the other: scheduling noise otherwise swamps the tail.
taskset -a -pc 0 "$TT_PID" > /dev/null
TINYTRACKER_ADMIN_TOKEN=bench register_hashes "$TT_URL" "$WORK/hashes.txt"

# wrk runs for its whole -d even after the script stops its threads: allow ~10,000 announces/s.
BENCH_HASH="$big" BENCH_PEERS="$peers" wrk -t2 -c20 -d"$((peers / 10000 + 3))s" \
    -s "$ROOT/tools/bench/populate.lua" "$TT_URL" > /dev/null
escaped=$(echo "$small" | sed 's/../%&/g')
for n in $(seq 10); do
    curl -s -o /dev/null -H "X-Forwarded-For: 10.200.0.$n" \
        "$TT_URL/announce?info_hash=$escaped&peer_id=-BS0001-$(printf %012d "$n")&port=6881&left=1"
done
curl -s -H "Authorization: Bearer bench" "$TT_URL/stats" | python3 -c '
import json, sys
stats = json.load(sys.stdin)
for h, t in stats.items(): print("swarm", h[:8], "peers", t["stats"]["peers"])'

# One unrecorded run each first, so neither side pays for a cold start.
for hash in "$big" "$small"; do
    BENCH_HASH="$hash" wrk -t1 -c4 -d2s -s "$ROOT/tools/bench/measure.lua" "$TT_URL" > /dev/null
done
echo "swarm p50 p99"
for round in $(seq "$rounds"); do
    for which in big small; do
        hash=$big; [ "$which" = small ] && hash=$small
        out=$(BENCH_HASH="$hash" taskset -c 1 wrk -t1 -c4 -d"${seconds}s" --latency -s "$ROOT/tools/bench/measure.lua" "$TT_URL")
        p50=$(echo "$out" | awk '$1 == "50%" { print $2 }'); p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
        echo "$which $p50 $p99" | tee -a "$WORK/results"
    done
done
us() { python3 -c "import sys; v=sys.argv[1]; print(float(v[:-2])*1000 if v.endswith('ms') else float(v[:-2]) if v.endswith('us') else float(v[:-1])*1e6)" "$1"; }
for which in big small; do
    for col in 2 3; do
        awk -v w="$which" -v c="$col" '$1 == w { print $c }' "$WORK/results" | while read -r v; do us "$v"; done | median > "$WORK/$which.$col"
    done
done
echo
echo "median p50: big $(cat "$WORK/big.2") us, small $(cat "$WORK/small.2") us"
echo "median p99: big $(cat "$WORK/big.3") us, small $(cat "$WORK/small.3") us"
python3 -c "import sys; print(f'p99 big / p99 small = {float(sys.argv[1]) / float(sys.argv[2]):.2f} (target <= 1.5)')" "$(cat "$WORK/big.3")" "$(cat "$WORK/small.3")"
