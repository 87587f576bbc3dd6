#!/usr/bin/env bash
# Announce throughput of tinytracker against Debian's opentracker, side by side in one run.
# Close mode (a connection per announce, what most clients do) alternates tinytracker and
# opentracker, ROUNDS times each; keep-alive is measured for tinytracker (opentracker closes
# every connection). Prints every run, the CPU each server used per announce, and the medians
# and ratios last.
#
#   bash tools/bench/compare.sh [ROUNDS=3] [SECONDS=10] [TORRENTS=1000]
#
# Needs wrk and opentracker (apt-get install wrk opentracker).
source "$(dirname "$0")/common.sh"
rounds="${1:-3}"; seconds="${2:-10}"; torrents="${3:-1000}"
need wrk wrk; need opentracker opentracker
build
python3 "$ROOT/tools/bench/make_hashes.py" "$torrents" > "$WORK/hashes.txt"

start_tinytracker tt
register_hashes "$TT_URL" "$WORK/hashes.txt"

# opentracker: its whitelist holds the same torrents; it chroots to -d and drops to nobody.
mkdir -p "$WORK/ot" && chmod 755 "$WORK" "$WORK/ot" && cp "$WORK/hashes.txt" "$WORK/ot/whitelist"
OT_PORT=$(free_port)
opentracker -i 127.0.0.1 -p "$OT_PORT" -P "$OT_PORT" -w whitelist -d "$WORK/ot" > "$WORK/ot.log" 2>&1 &
OT_PID=$!; PIDS+=("$OT_PID")
until curl -s -o /dev/null "http://127.0.0.1:$OT_PORT/stats" 2>/dev/null; do sleep 0.05; done
OT_URL="http://127.0.0.1:$OT_PORT"

# run NAME URL PID MODE : one wrk run; prints "NAME MODE req/s p99 cpu-us-per-announce".
run() {
    local name="$1" url="$2" pid="$3" mode="$4" header=()
    [ "$mode" = close ] && header=(-H "Connection: close")
    local before after out rps p99
    before=$(cpu_ticks "$pid")
    out=$(BENCH_HASHES="$WORK/hashes.txt" wrk -t2 -c50 -d"${seconds}s" --latency "${header[@]}" \
        -s "$ROOT/tools/bench/announce.lua" "$url")
    after=$(cpu_ticks "$pid")
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    local ticks_per_sec; ticks_per_sec=$(getconf CLK_TCK)
    local cpu_us; cpu_us=$(python3 -c "print(f'{($after - $before) / $ticks_per_sec * 1e6 / ($rps * $seconds):.1f}')")
    echo "$name $mode $rps $p99 $cpu_us" | tee -a "$WORK/results"
}

echo "name mode requests/s p99 cpu-us/announce"
for round in $(seq "$rounds"); do
    run tinytracker "$TT_URL" "$TT_PID" close
    run opentracker "$OT_URL" "$OT_PID" close
done
for round in $(seq "$rounds"); do
    run tinytracker "$TT_URL" "$TT_PID" keep-alive
done

med() { awk -v n="$1" -v m="$2" '$1 == n && $2 == m { print $3 }' "$WORK/results" | median; }
tt_close=$(med tinytracker close); ot_close=$(med opentracker close); tt_ka=$(med tinytracker keep-alive)
echo
echo "median announces/s: tinytracker close $tt_close, opentracker close $ot_close, tinytracker keep-alive $tt_ka"
python3 - "$tt_close" "$ot_close" "$tt_ka" <<'PY'
import sys
tt_close, ot_close, tt_ka = map(float, sys.argv[1:])
print(f"close mode: tinytracker / opentracker = {tt_close / ot_close:.2f} (target >= 1.5)")
print(f"keep-alive: tinytracker / opentracker close = {tt_ka / ot_close:.2f} (target >= 3)")
print(f"against the Python original's 1,000 announces/s (reference figure): close {tt_close / 1000:.0f}x, keep-alive {tt_ka / 1000:.0f}x (target >= 40)")
PY
