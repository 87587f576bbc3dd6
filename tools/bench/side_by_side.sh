#!/usr/bin/env bash
# Two builds side by side on this machine at the same time, for a change on the request path or the
# save: OLD and NEW tinytracker binaries run together and take turns.
#
#   bash tools/bench/side_by_side.sh OLD NEW [ROUNDS=3] [SECONDS=8]     # PARTS="announces saves"
#
# 1. Announces: 1,000 registered torrents each; ROUNDS rounds of wrk -t2 -c50 announce.lua, keep-alive
#    then close mode (Connection: close), OLD and NEW taking turns (who goes first alternates).
# 2. Saves: both load one generated state file of 1,000,000 peers over 100,000 torrents, then take
#    turns at /save_state, 2 × ROUNDS each (who goes first alternates), the time the tracker reports.
# Prints every run and the medians.
source "$(dirname "$0")/common.sh"
parts="${PARTS:-announces saves}"
old="$(realpath "$1")"; new="$(realpath "$2")"; rounds="${3:-3}"; seconds="${4:-8}"
need wrk wrk
python3 "$ROOT/tools/bench/make_hashes.py" 1000 > "$WORK/hashes.txt"
build   # add-torrent-info for registering

# start NAME BINARY ARGS... : like start_tinytracker, with the given binary; sets URL and PID.
start() {
    local name="$1" binary="$2"; shift 2
    "$binary" --bind 127.0.0.1:0 --state-file "$WORK/$name.json" --save-interval 0 \
        --max-peers-per-ip 0 --max-connections-per-ip 0 "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    PID=$!; PIDS+=("$PID")
    until grep -q "listening on" "$WORK/$name.out" 2>/dev/null; do
        kill -0 "$PID" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.05
    done
    URL="http://$(sed -n 's/^listening on //p' "$WORK/$name.out" | head -1)"
}

if [[ $parts == *announces* ]]; then
start old "$old"; OLD_URL=$URL; OLD_PID=$PID
start new "$new"; NEW_URL=$URL; NEW_PID=$PID
register_hashes "$OLD_URL" "$WORK/hashes.txt"
register_hashes "$NEW_URL" "$WORK/hashes.txt"

echo "build mode announces/s"
announces_in_turns old "$OLD_URL" new "$NEW_URL" "$rounds" "$seconds"
kill "$OLD_PID" "$NEW_PID"; wait "$OLD_PID" "$NEW_PID" 2>/dev/null || true
fi
[[ $parts == *saves* ]] || exit 0

echo "writing a state file with 1,000,000 peers over 100,000 torrents..."
python3 "$ROOT/tools/bench/make_state.py" "$WORK/state.json" "$WORK/state-hashes.txt" 100000 1000000
cp "$WORK/state.json" "$WORK/old.json"; cp "$WORK/state.json" "$WORK/new.json"
start old "$old"; OLD_URL=$URL
start new "$new"; NEW_URL=$URL
for name in old new; do echo "$name: $(grep -o 'loaded .* in [0-9]* ms' "$WORK/$name.err")"; done
save() {  # save NAME URL
    echo "$1 save $(curl -s "$2/save_state" | python3 -c 'import json, sys; print(json.load(sys.stdin)["millis"])')" \
        | tee -a "$WORK/saves"
}
for r in $(seq $((2 * rounds))); do
    if [ $((r % 2)) = 1 ]; then save old "$OLD_URL"; save new "$NEW_URL"
    else save new "$NEW_URL"; save old "$OLD_URL"; fi
done
for name in old new; do
    echo "median $name save: $(awk -v n=$name '$1 == n { print $3 }' "$WORK/saves" | median) ms"
done
