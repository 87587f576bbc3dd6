#!/usr/bin/env bash
# Announce throughput with and without 1,000 live-event subscribers, taking turns.
#
#   bash tools/bench/events.sh [ROUNDS=3] [SECONDS=8] [SUBSCRIBERS=1000] [PAGE=50]
#
# One tinytracker with 1,000 registered torrents; ROUNDS rounds of wrk -t2 -c50 announce.lua
# (keep-alive), three ways in turn: alone; while SUBSCRIBERS connections (bench_subscribers) hold
# /api/v1/events open, each following the counts of PAGE torrents as a page of a listing does
# ("pages"); and while they follow every torrent ("all"). The announces change the counts of
# every torrent all the time, so "all" sends each subscriber about 1,000 counts events a second.
# Prints every run, the medians and their ratios to "alone".
source "$(dirname "$0")/common.sh"
rounds="${1:-3}"; seconds="${2:-8}"; subscribers="${3:-1000}"; page="${4:-50}"
need wrk wrk
build
(cd "$ROOT" && cargo build --release --quiet --example bench_subscribers)
python3 "$ROOT/tools/bench/make_hashes.py" 1000 > "$WORK/hashes.txt"
start_tinytracker events --max-event-clients "$subscribers" --max-connections 20000
register_hashes "$TT_URL" "$WORK/hashes.txt"

announces() {  # announces LABEL: the rate, and the tracker's CPU time per announce
    local before; before=$(cpu_ticks "$TT_PID")
    BENCH_HASHES="$WORK/hashes.txt" wrk -t2 -c50 -d"${seconds}s" \
        -s "$ROOT/tools/bench/announce.lua" "$TT_URL" > "$WORK/wrk.out"
    local after; after=$(cpu_ticks "$TT_PID")
    local rate; rate=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")
    local us; us=$(python3 -c "print('%.2f' % (($after - $before) / $(getconf CLK_TCK) * 1e6 / ($rate * $seconds)))")
    echo "$1 $rate $us" | tee -a "$WORK/runs"
}
with_subscribers() {  # with_subscribers LABEL [HASHES PAGE]
    local label="$1"; shift
    "$ROOT/target/release/examples/bench_subscribers" "${TT_URL#http://}" "$subscribers" "$@" \
        > "$WORK/subs.out" 2> "$WORK/subs.err" &
    local pid=$!
    until grep -q "subscribed" "$WORK/subs.out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/subs.err" >&2; exit 1; }
        sleep 0.05
    done
    announces "$label"
    echo "  subscribers read: $(grep -v closed "$WORK/subs.err" | tail -1), $(grep -c closed "$WORK/subs.err" || true) streams closed by the tracker"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "run announces/s tracker-CPU-µs/announce"
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then
        announces alone; with_subscribers pages "$WORK/hashes.txt" "$page"; with_subscribers all
    else
        with_subscribers all; with_subscribers pages "$WORK/hashes.txt" "$page"; announces alone
    fi
done
alone=$(awk '$1 == "alone" { print $2 }' "$WORK/runs" | median)
alone_cpu=$(awk '$1 == "alone" { print $3 }' "$WORK/runs" | median)
echo "median alone: $alone /s, $alone_cpu µs CPU per announce"
for label in pages all; do
    rate=$(awk -v l=$label '$1 == l { print $2 }' "$WORK/runs" | median)
    cpu=$(awk -v l=$label '$1 == l { print $3 }' "$WORK/runs" | median)
    echo "median with $subscribers subscribers ($label): $rate /s, ratio $(python3 -c "print('%.3f' % ($rate / $alone))"); $cpu µs CPU per announce, ratio $(python3 -c "print('%.3f' % ($cpu / $alone_cpu))")"
done
