#!/usr/bin/env bash
# UDP tracker throughput and server CPU per answer: tinytracker against aquatic_udp, both under
# aquatic_udp_load_test (which checks every answer), alternating, ROUNDS rounds of SECS seconds.
#
#   bash tools/bench/udp.sh [ROUNDS=3] [SECS=15] [WORKERS=2]      # TT=another-build ONLY_TINYTRACKER=1 PRIVATE=0
#
# Installs aquatic_udp and aquatic_udp_load_test 0.9.0 from crates.io into target/bench-tools
# (not dependencies of the project). aquatic_udp is built without --locked: its lock file pins
# metrics 0.22.3, which current Rust rejects; the load test builds locked.
#
# Both servers get WORKERS socket workers and the load test one worker, on the same machine.
# tinytracker runs with --max-torrents 0 and --max-peers-per-ip 0: the load test's two million
# peers announce from four addresses to a million torrents, and the default limits would refuse
# many of them (aquatic_udp has no such limits). ONLY_TINYTRACKER=1 leaves aquatic_udp out.
# Server CPU is user + system time from /proc/PID/stat over the run. For tinytracker the
# tinytracker_udp_packets_total counters are printed after each run, so errors have a cause.
#
# Then the cost of private mode: tinytracker open and --private, alternating, under
# tools/bench/udp_load.rs (BEP 41 URL data: `/announce`, or `/<passkey>/announce`), on 1,000
# registered torrents; PRIVATE=0 skips it.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
rounds="${1:-3}"; secs="${2:-15}"; workers="${3:-2}"
tools="$PWD/target/bench-tools"
[ -x "$tools/bin/aquatic_udp" ] || cargo install --root "$tools" aquatic_udp@0.9.0
[ -x "$tools/bin/aquatic_udp_load_test" ] || cargo install --locked --root "$tools" aquatic_udp_load_test@0.9.0
cargo build --release --bin tinytracker 2>&1 | tail -1
tt="${TT:-$PWD/target/release/tinytracker}"
work="$WORK"
server=""
ticks=$(getconf CLK_TCK)

free_udp_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on UDP port $1 of 127.0.0.1.
wait_udp() {
    local hex; hex=$(printf '%04X' "$1")
    for _ in $(seq 200); do
        grep -q "0100007F:$hex" /proc/net/udp && return 0
        sleep 0.05
    done
    echo "nothing listens on udp port $1" >&2; return 1
}

start_udp_tracker() {  # extra flags in "$@"; sets server, port, http
    rm -f "$work/state.json"
    "$tt" --bind 127.0.0.1:0 --udp-bind 127.0.0.1:0 --workers "$workers" --max-torrents 0 --max-peers-per-ip 0 \
        --save-interval 0 --state-file "$work/state.json" --log-level error \
        "$@" > "$work/tt.out" 2> "$work/tt.err" &
    server=$!; PIDS+=("$server")
    for _ in $(seq 200); do [ "$(wc -l < "$work/tt.out")" -ge 2 ] && break; sleep 0.05; done
    http=$(sed -n 1p "$work/tt.out" | sed 's/listening on //')
    port=$(sed -n 2p "$work/tt.out" | sed 's/.*://')
}

start_aquatic() {
    port=$(free_udp_port)
    "$tools/bin/aquatic_udp" -p > "$work/aq.toml"
    sed -i "s/^socket_workers = .*/socket_workers = $workers/; s/^address = .*/address = \"127.0.0.1:$port\"/" "$work/aq.toml"
    "$tools/bin/aquatic_udp" -c "$work/aq.toml" > "$work/aq.out" 2>&1 &
    server=$!; PIDS+=("$server")
    wait_udp "$port"
}

# Runs the load against $port for $secs; prints: responses/s announces/s errors/s µs-CPU/response
load() {
    "$tools/bin/aquatic_udp_load_test" -p > "$work/lt.toml"
    sed -i "s/^server_address = .*/server_address = \"127.0.0.1:$port\"/; s/^duration = .*/duration = $secs/" "$work/lt.toml"
    local before after rss
    before=$(cpu_ticks "$server")
    "$tools/bin/aquatic_udp_load_test" -c "$work/lt.toml" > "$work/lt.out" 2>&1
    after=$(cpu_ticks "$server")
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$server/status")
    local responses announces errors
    responses=$(grep -m1 "Average responses per second" "$work/lt.out" | awk '{print $NF}')
    announces=$(grep -m1 "Announce responses" "$work/lt.out" | awk '{print $NF}')
    errors=$(grep -m1 "Error responses" "$work/lt.out" | awk '{print $NF}')
    python3 -c "
r, a, e, cpu = float('$responses'), float('$announces'), float('$errors'), ($after - $before) / $ticks
print('%.0f %.0f %.0f %.2f %.2f %d' % (r, a, e, cpu * 1e6 / (r * $secs), cpu / $secs, $rss))"
}

stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }

echo "# $rounds rounds of $secs s, $workers server workers, 1 load worker"
echo "# tracker round responses/s announces/s errors/s cpu-us/response cpu-cores rss-KiB-after"
for round in $(seq "$rounds"); do
    if [ -z "${ONLY_TINYTRACKER:-}" ]; then
        start_aquatic
        echo "aquatic_udp $round $(load)"
        stop
    fi
    start_udp_tracker
    echo "tinytracker $round $(load)"
    curl -s "http://$http/metrics" | grep -E '^tinytracker_(udp_packets_total\{|(seeders|leechers|torrents) )' \
        | tr '\n' ' ' | sed 's/tinytracker_udp_packets_total//g'; echo
    stop
done

[ "${PRIVATE:-1}" = 1 ] || exit 0
cargo build --release --example bench_udp_load --bin add-torrent-info 2>&1 | tail -1
magnets=()
for n in $(seq 0 999); do magnets+=("magnet:?xt=urn:btih:$(printf '%016x' "$n")abababababababababababab"); done
register() {
    "$PWD/target/release/add-torrent-info" --tracker "http://$http" "${magnets[@]}" > /dev/null
}
passkey_load() {  # $1: URL path; prints answers/s errors/s µs-CPU/answer
    local before after out
    before=$(cpu_ticks "$server")
    out=$("$PWD/target/release/examples/bench_udp_load" "127.0.0.1:$port" "$secs" 1000 "$1")
    after=$(cpu_ticks "$server")
    python3 -c "
a, e = map(float, '$out'.split()); cpu = ($after - $before) / $ticks
print('%.0f %.0f %.2f' % (a, e, cpu * 1e6 / (a * $secs)))"
}
echo "# private mode: tracker round answers/s errors/s cpu-us/answer"
for round in $(seq "$rounds"); do
    start_udp_tracker
    register
    echo "open $round $(passkey_load /announce)"
    stop
    start_udp_tracker --private
    register
    key=$(curl -s -H 'Content-Type: application/json' -d '{"name": "bench"}' "http://$http/users" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["passkey"])')
    echo "private $round $(passkey_load "/$key/announce")"
    stop
done
