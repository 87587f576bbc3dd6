#!/usr/bin/env bash
# HTTPS against plain HTTP on one tracker: wrk -t2 -c50 announce.lua on 1,000 registered torrents,
# keep-alive and close mode (a TLS handshake per announce), plain and TLS taking turns.
#
#   bash tools/bench/https.sh [ROUNDS=3] [SECONDS=8]
#
# The certificate is a self-signed P-256 one made with openssl for 127.0.0.1 (wrk does not check it).
source "$(dirname "$0")/common.sh"
rounds="${1:-3}"; seconds="${2:-8}"
need wrk wrk
need openssl openssl
python3 "$ROOT/tools/bench/make_hashes.py" 1000 > "$WORK/hashes.txt"
build
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2> /dev/null
start_tinytracker bench --tls-bind 127.0.0.1:0 --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem"
until grep -q "listening on https://" "$WORK/bench.out"; do sleep 0.05; done
HTTPS_URL="$(sed -n 's/^listening on //p' "$WORK/bench.out" | grep https)"
register_hashes "$TT_URL" "$WORK/hashes.txt"

echo "transport mode announces/s"
announces_in_turns http "$TT_URL" https "$HTTPS_URL" "$rounds" "$seconds"
