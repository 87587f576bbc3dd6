#!/usr/bin/env bash
# Soak: MINUTES (default 10) of sustained mixed load (nine announces to one scrape, wrk -t1 -c8,
# keep-alive) with a save every 30 s. Samples the tracker's RSS every 10 s and checks: no request
# failed, RSS after the first minute stays within ±10 % of its median, saves ran on schedule.
#
#   bash tools/soak.sh [MINUTES=10]
source "$(dirname "$0")/bench/common.sh"
minutes="${1:-10}"
need wrk wrk
build
python3 "$ROOT/tools/bench/make_hashes.py" 1000 > "$WORK/hashes.txt"
TT_SAVE_INTERVAL=30 start_tinytracker tt
register_hashes "$TT_URL" "$WORK/hashes.txt"
BENCH_HASHES="$WORK/hashes.txt" wrk -t1 -c8 -d"${minutes}m" -s "$ROOT/tools/bench/mixed.lua" "$TT_URL" > "$WORK/wrk.out" &
wrk_pid=$!; PIDS+=("$wrk_pid")
: > "$WORK/rss"
while kill -0 "$wrk_pid" 2>/dev/null; do
    awk '/VmRSS/ { print $2 }' "/proc/$TT_PID/status" >> "$WORK/rss"
    sleep 10
done
wait "$wrk_pid" || true
cat "$WORK/wrk.out"
python3 - "$WORK/rss" "$WORK/tt.err" "$WORK/wrk.out" "$minutes" <<'PY'
import re, statistics, sys
rss = [int(x) for x in open(sys.argv[1]) if x.strip()]
after_warmup = rss[6:] or rss
median = statistics.median(after_warmup)
low, high = min(after_warmup), max(after_warmup)
log = open(sys.argv[2]).read()
saves = re.findall(r"(\d\d):(\d\d):(\d\d)\.\d+Z \[INFO\] saved", log)
seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in saves]
gaps = [b - a for a, b in zip(seconds, seconds[1:])]
wrk = open(sys.argv[3]).read()
errors = re.search(r"Socket errors: (.*)", wrk)
non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
requests = re.search(r"(\d+) requests in", wrk)
print(f"requests: {requests.group(1) if requests else '?'}; socket errors: {errors.group(1) if errors else 'none'}; "
      f"non-2xx: {non_2xx.group(1) if non_2xx else 0}")
print(f"RSS after the first minute: median {median / 1024:.1f} MiB, {low / 1024:.1f}-{high / 1024:.1f} MiB "
      f"({(low / median - 1) * 100:+.1f} % / {(high / median - 1) * 100:+.1f} %)")
print(f"saves: {len(saves)}, gaps {min(gaps) if gaps else '-'}-{max(gaps) if gaps else '-'} s (every 30 s asked)")
ok = (not errors and not non_2xx and high <= median * 1.1 and low >= median * 0.9
      and gaps and max(gaps) <= 31 and len(saves) >= int(sys.argv[4]) * 2 - 1)
print("soak:", "passed" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
