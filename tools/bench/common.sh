# Shared by the benchmark scripts: build, free ports, start and stop tinytracker, run wrk.
# Source it; it sets WORK (a temp dir removed on exit) and cleans up started processes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "needs $1 (apt-get install $2)" >&2; exit 1; }; }

build() { (cd "$ROOT" && cargo build --release --quiet --bin tinytracker --bin add-torrent-info); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_tinytracker NAME ARGS... : starts it on 127.0.0.1:0, sets TT_URL and TT_PID.
# Every load generator here announces from 127.0.0.1, so the per-address caps (meant for clients on
# real addresses) are off: the benchmarks measure announces served, not announces refused.
start_tinytracker() {
    local name="$1"; shift
    "$ROOT/target/release/tinytracker" --bind 127.0.0.1:0 --state-file "$WORK/$name.json" \
        --save-interval "${TT_SAVE_INTERVAL:-0}" --max-peers-per-ip 0 --max-connections-per-ip 0 \
        "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    TT_PID=$!
    PIDS+=("$TT_PID")
    until grep -q "listening on" "$WORK/$name.out" 2>/dev/null; do
        kill -0 "$TT_PID" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.05
    done
    TT_URL="http://$(sed -n 's/^listening on //p' "$WORK/$name.out" | head -1)"
}

# register_hashes URL FILE : registers every hash in FILE (one 40-hex per line).
register_hashes() {
    sed 's/^/magnet:?xt=urn:btih:/' "$2" | "$ROOT/target/release/add-torrent-info" --tracker "$1" - > /dev/null
}

# cpu_ticks PID : user+system clock ticks used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# wrk_announces NAME URL MODE SECONDS : wrk -t2 -c50 announce.lua on $WORK/hashes.txt, keep-alive or
# close MODE; prints "NAME MODE rate" (and any non-2xx or socket errors) and appends it to $WORK/runs.
wrk_announces() {
    local header=()
    [ "$3" = close ] && header=(-H "Connection: close")
    BENCH_HASHES="$WORK/hashes.txt" wrk -t2 -c50 -d"$4s" "${header[@]}" \
        -s "$ROOT/tools/bench/announce.lua" "$2" > "$WORK/wrk.out"
    local rate; rate=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")
    local errors; errors=$(grep -o 'Non-2xx or 3xx responses: [0-9]*\|Socket errors: .*' "$WORK/wrk.out" | tr '\n' ' ' || true)
    echo "$1 $3 $rate $errors" | tee -a "$WORK/runs"
}

# announces_in_turns A URL_A B URL_B ROUNDS SECONDS : ROUNDS rounds of keep-alive then close-mode
# announces against both (who goes first alternates), then the median of each name and mode.
announces_in_turns() {
    local a="$1" url_a="$2" b="$3" url_b="$4" rounds="$5" seconds="$6" r mode name
    for r in $(seq "$rounds"); do
        for mode in keep-alive close; do
            if [ $((r % 2)) = 1 ]; then
                wrk_announces "$a" "$url_a" "$mode" "$seconds"; wrk_announces "$b" "$url_b" "$mode" "$seconds"
            else
                wrk_announces "$b" "$url_b" "$mode" "$seconds"; wrk_announces "$a" "$url_a" "$mode" "$seconds"
            fi
        done
    done
    for name in "$a" "$b"; do for mode in keep-alive close; do
        echo "median $name $mode: $(awk -v n="$name" -v m=$mode '$1 == n && $2 == m { print $3 }' "$WORK/runs" | median) /s"
    done; done
}
