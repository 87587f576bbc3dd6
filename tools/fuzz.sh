#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer (cargo fuzz) for SECONDS each (default 60) and prints, per
# target, the executions and any crash. Exits non-zero if a target crashed.
#
#   bash tools/fuzz.sh [SECONDS=60] [TARGET...]
#
# Needs cargo-fuzz (cargo install cargo-fuzz). cargo fuzz asks for nightly Rust; on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it use the nightly-only flags it needs.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(query bencode http state admin torrent_file upload udp)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O 2>&1 | tail -1
failed=0
for target in "${targets[@]}"; do
    log="$(mktemp)"
    if cargo fuzz run -O "$target" -- -max_total_time="$seconds" > "$log" 2>&1; then
        outcome="no crash"
    else
        outcome="CRASH (see fuzz/artifacts/$target)"; failed=1
    fi
    runs=$(grep -o "Done [0-9]* runs in [0-9]* second" "$log" | tail -1)
    echo "$target: $outcome; ${runs:-$(tail -3 "$log")}"
    rm -f "$log"
done
exit "$failed"
