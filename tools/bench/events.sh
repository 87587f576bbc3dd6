#!/usr/bin/env bash
# Announce throughput with and without 1,000 live-event subscribers, taking turns.
#
#   bash tools/bench/events.sh [ROUNDS=3] [SECONDS=8] [SUBSCRIBERS=1000]
#
# One tinytracker with 1,000 registered torrents; ROUNDS rounds of wrk -t2 -c50 announce.lua
# (keep-alive): once alone, once while SUBSCRIBERS connections (bench_subscribers) hold
# /api/v1/events open and read every event (who goes first alternates). The announces change the
# torrents' counts all the time, so the subscribers get a counts event for most of the 1,000
# torrents every second. Prints every run, the medians and their ratio.
source "$(dirname "$0")/common.sh"
rounds="${1:-3}"; seconds="${2:-8}"; subscribers="${3:-1000}"
need wrk wrk
build
(cd "$ROOT" && cargo build --release --quiet --example bench_subscribers)
python3 "$ROOT/tools/bench/make_hashes.py" 1000 > "$WORK/hashes.txt"
start_tinytracker events --max-event-clients "$subscribers" --max-connections 20000
register_hashes "$TT_URL" "$WORK/hashes.txt"

announces() {  # announces LABEL
    BENCH_HASHES="$WORK/hashes.txt" wrk -t2 -c50 -d"${seconds}s" \
        -s "$ROOT/tools/bench/announce.lua" "$TT_URL" > "$WORK/wrk.out"
    local rate; rate=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")
    echo "$1 $rate" | tee -a "$WORK/runs"
}
with_subscribers() {
    "$ROOT/target/release/examples/bench_subscribers" "${TT_URL#http://}" "$subscribers" \
        > "$WORK/subs.out" 2> "$WORK/subs.err" &
    local pid=$!
    until grep -q "subscribed" "$WORK/subs.out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/subs.err" >&2; exit 1; }
        sleep 0.05
    done
    announces subscribed
    echo "  subscribers read: $(tail -1 "$WORK/subs.err")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "run announces/s"
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then announces alone; with_subscribers
    else with_subscribers; announces alone; fi
done
alone=$(awk '$1 == "alone" { print $2 }' "$WORK/runs" | median)
subscribed=$(awk '$1 == "subscribed" { print $2 }' "$WORK/runs" | median)
echo "median alone: $alone /s"
echo "median with $subscribers subscribers: $subscribed /s"
echo "ratio: $(python3 -c "print('%.3f' % ($subscribed / $alone))")"
