#!/usr/bin/env bash
# Continuous batching on vs off, one loopback run each on the same build.
#
#   scripts/batching-bench.sh [MODEL.onnx]
#
# Builds jarzyn-serve and the load generator (serve/loadtest), writes the
# load generator's 2-D Gaussian-mixture model when no model is given, and for
# each of `--batching off` and `--batching on` starts the server on
# 127.0.0.1, runs SMALL_CLIENTS (64) clients of SMALL ({"n":16,"steps":100})
# and LARGE_CLIENTS (8) clients of LARGE ({"n":1000,"steps":100}) at once for
# DURATION (30s), and stops the server. It prints each run's report
# (walker-steps/s of the successful requests, per-class p50/p99 latency,
# errors, the server's RSS) and the ratio of walker-steps/s on vs off; it
# fails on any error. Environment: SMALL, LARGE, SMALL_CLIENTS,
# LARGE_CLIENTS, DURATION, PORT (18081), SERVE_FLAGS (extra flags for both
# runs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMALL=${SMALL:-'{"n":16,"steps":100}'}
LARGE=${LARGE:-'{"n":1000,"steps":100}'}
SMALL_CLIENTS=${SMALL_CLIENTS:-64}
LARGE_CLIENTS=${LARGE_CLIENTS:-8}
DURATION=${DURATION:-30s}
PORT=${PORT:-18081}
TMP=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$ROOT"
echo "batching-bench: building"
go build -o "$TMP/jarzyn-serve" ./cmd/jarzyn-serve
go build -o "$TMP/loadtest" ./serve/loadtest
MODEL=${1:-}
if [ -z "$MODEL" ]; then
  MODEL=$TMP/gmm2d.onnx
  "$TMP/loadtest" -write-model "$MODEL"
fi
echo "model $MODEL; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in off on; do
  # shellcheck disable=SC2086
  "$TMP/jarzyn-serve" http --model "$MODEL" --addr "127.0.0.1:$PORT" --log-level warn --batching "$mode" ${SERVE_FLAGS:-} 2>"$TMP/server-$mode.log" &
  PID=$!
  echo "=== --batching $mode"
  "$TMP/loadtest" -url "http://127.0.0.1:$PORT" -c "$SMALL_CLIENTS" -body "$SMALL" -c2 "$LARGE_CLIENTS" -body2 "$LARGE" \
    -d "$DURATION" -pid "$PID" | tee "$TMP/report-$mode.txt"
  kill -TERM "$PID"; wait "$PID"; PID=
done
rate() { awk '/^  walker-steps / { sub("/s", "", $2); print $2 }' "$TMP/report-$1.txt"; }
awk -v on="$(rate on)" -v off="$(rate off)" 'BEGIN { printf "walker-steps/s: batching on %.4g, off %.4g, ratio %.2f×\n", on, off, on / off }'
