#!/usr/bin/env bash
# The shared store (--store redis://…) against the state file, on this machine.
#
#   bash tools/bench/redis.sh [ROUNDS=3] [SECS=10] [PEERS=1000000]
#
# 1. Announce throughput under the same load (wrk, 2 threads, 50 keep-alive connections, random
#    peers over 1,000 torrents, at most 200 ports a torrent so swarms stop growing): one
#    tinytracker with its state file; one tinytracker on Redis; two tinytrackers on one Redis
#    (the load split between them: two wrk processes of 1 thread and 25 connections each, run
#    together). Configurations alternate, ROUNDS rounds of SECS seconds; medians are printed.
#    CPU per announce is user + system time (from /proc) of the trackers and of redis-server,
#    over the run, divided by the announces answered.
# 2. Memory in Redis: used_memory before and after importing a state file of 100,000 torrents
#    without peers (per torrent) and then one of PEERS peers over 100,000 torrents (per peer).
# 3. The time `tinytracker state import` takes for that PEERS-peer state file.
# Redis runs without persistence here (--save '' --appendonly no): the figures are the store's,
# not the disk's. Everything is on 127.0.0.1 and shares this machine's cores.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
rounds="${1:-3}"; secs="${2:-10}"; peers="${3:-1000000}"
need wrk wrk
need redis-server redis-server
build
tt="$ROOT/target/release/tinytracker"
ticks_per_sec=$(getconf CLK_TCK)

port=$(free_port)
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$WORK" \
    > "$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
until redis-cli -p "$port" ping >/dev/null 2>&1; do
    kill -0 "$REDIS_PID" 2>/dev/null || { cat "$WORK/redis.log" >&2; exit 1; }
    sleep 0.05
done
store="redis://127.0.0.1:$port/0"
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on $store"

python3 tools/bench/make_hashes.py 1000 > "$WORK/hashes.txt"
start_tinytracker json
json_url="$TT_URL"; json_pid="$TT_PID"
start_tinytracker shared_a --store "$store"
a_url="$TT_URL"; a_pid="$TT_PID"
start_tinytracker shared_b --store "$store"
b_url="$TT_URL"; b_pid="$TT_PID"

ticks_of() { local sum=0 pid; for pid in "$@"; do sum=$((sum + $(cpu_ticks "$pid"))); done; echo "$sum"; }

# run NAME TRACKER_PIDS URL... : SECS seconds of keep-alive announces split over the URLs; appends
# "NAME rate tracker_us redis_us" to $WORK/results.
run() {
    local name="$1" pids="$2"; shift 2
    local threads=$((2 / $#)) conns=$((50 / $#)) n=0 url
    local t0 r0 loads=() pid; t0=$(ticks_of $pids); r0=$(cpu_ticks "$REDIS_PID")
    for url in "$@"; do
        n=$((n + 1))
        BENCH_HASHES="$WORK/hashes.txt" BENCH_PORTS=200 wrk -t"$threads" -c"$conns" -d"${secs}s" \
            -s tools/bench/announce.lua "$url" > "$WORK/wrk.$n" &
        loads+=($!)
    done
    for pid in "${loads[@]}"; do wait "$pid"; done
    local t1 r1; t1=$(ticks_of $pids); r1=$(cpu_ticks "$REDIS_PID")
    local total=0 errors=""
    for i in $(seq "$n"); do
        total=$(awk -v t="$total" '/^Requests\/sec/ { print t + $2 }' "$WORK/wrk.$i")
        errors+=$(grep -o 'Non-2xx or 3xx responses: [0-9]*\|Socket errors: .*' "$WORK/wrk.$i" | tr '\n' ' ' || true)
    done
    local answered; answered=$(awk -v r="$total" -v s="$secs" 'BEGIN { print r * s }')
    local tracker_us redis_us
    tracker_us=$(awk -v d=$((t1 - t0)) -v a="$answered" -v hz="$ticks_per_sec" 'BEGIN { printf "%.2f", d / hz * 1e6 / a }')
    redis_us=$(awk -v d=$((r1 - r0)) -v a="$answered" -v hz="$ticks_per_sec" 'BEGIN { printf "%.2f", d / hz * 1e6 / a }')
    echo "$name $total $tracker_us $redis_us $errors" | tee -a "$WORK/results"
}

echo "== announces: name, announces/s, tracker CPU µs per announce, redis-server CPU µs per announce"
for r in $(seq "$rounds"); do
    order=(json redis1 redis2)
    [ $((r % 2)) = 0 ] && order=(redis2 redis1 json)
    for config in "${order[@]}"; do
        case "$config" in
            json) run json "$json_pid" "$json_url" ;;
            redis1) run redis1 "$a_pid" "$a_url" ;;
            redis2) run redis2 "$a_pid $b_pid" "$a_url" "$b_url" ;;
        esac
    done
done
for config in json redis1 redis2; do
    for col in 2 3 4; do
        awk -v c="$config" -v k="$col" '$1 == c { print $k }' "$WORK/results" | median > "$WORK/m.$config.$col"
    done
    echo "median $config: $(cat "$WORK/m.$config.2") announces/s, tracker $(cat "$WORK/m.$config.3") µs, redis $(cat "$WORK/m.$config.4") µs per announce"
done
json_rate=$(cat "$WORK/m.json.2")
for config in redis1 redis2; do
    awk -v c="$config" -v a="$(cat "$WORK/m.$config.2")" -v j="$json_rate" \
        -v cpu="$(awk -v t="$(cat "$WORK/m.$config.3")" -v r="$(cat "$WORK/m.$config.4")" 'BEGIN { print t + r }')" \
        -v jcpu="$(cat "$WORK/m.json.3")" \
        'BEGIN { printf "%s against the state file: announces %.2f ×, CPU per announce (trackers + redis) %.2f ×\n", c, a / j, cpu / jcpu }'
done
kill "$json_pid" "$a_pid" "$b_pid" 2>/dev/null || true

echo "== memory in Redis, and the import of $peers peers"
used() { redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
redis-cli -p "$port" flushall > /dev/null
base=$(used)
python3 tools/bench/make_state.py "$WORK/torrents.json" "$WORK/t.txt" 100000 0 > /dev/null
"$tt" state import --store "$store" --state-file "$WORK/torrents.json"
after=$(used)
torrents_only=$((after - base))
echo "100,000 registered torrents without peers: $((torrents_only / 100000)) bytes a torrent in Redis"
redis-cli -p "$port" flushall > /dev/null
base=$(used)
python3 tools/bench/make_state.py "$WORK/peers.json" "$WORK/p.txt" 100000 "$peers" > /dev/null
started=$(date +%s.%N)
"$tt" state import --store "$store" --state-file "$WORK/peers.json"
ended=$(date +%s.%N)
after=$(used)
awk -v s="$started" -v e="$ended" -v p="$peers" 'BEGIN { printf "import of %d peers: %.1f s (%.0f peers/s)\n", p, e - s, p / (e - s) }'
echo "$peers peers over 100,000 torrents: $(( (after - base - torrents_only) / peers )) bytes a peer in Redis (beyond the torrents' own)"
echo "redis-server RSS: $(awk '/VmRSS/ { print $2 " " $3 }' "/proc/$REDIS_PID/status")"
