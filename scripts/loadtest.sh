#!/usr/bin/env bash
# Bounded loopback load test of `jarzyn-serve http`.
#
#   scripts/loadtest.sh [MODEL.onnx]
#
# Builds jarzyn-serve and the load generator (serve/loadtest), writes a small
# 2-D Gaussian-mixture model when none is given, starts the server on
# 127.0.0.1 only, runs CLIENTS (16) concurrent clients of small POST
# /v1/sample requests for DURATION (60s, at most 10m), prints requests/s,
# p50/p90/p99 latency, the error count and the server's RSS at the start and
# end, then stops the server with SIGTERM (graceful shutdown) and checks
# that it exits 0. Environment: CLIENTS, DURATION, PORT (18080),
# BODY (JSON of each request, default {"n":16,"steps":10}), SERVE_FLAGS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-60s}
PORT=${PORT:-18080}
BODY=${BODY:-'{"n":16,"steps":10}'}
TMP=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$ROOT"
echo "loadtest: building"
go build -o "$TMP/jarzyn-serve" ./cmd/jarzyn-serve
go build -o "$TMP/loadtest" ./serve/loadtest
MODEL=${1:-}
if [ -z "$MODEL" ]; then
  MODEL=$TMP/gmm2d.onnx
  "$TMP/loadtest" -write-model "$MODEL"
fi
# shellcheck disable=SC2086
"$TMP/jarzyn-serve" http --model "$MODEL" --addr "127.0.0.1:$PORT" --log-level warn ${SERVE_FLAGS:-} &
PID=$!
set +e
"$TMP/loadtest" -url "http://127.0.0.1:$PORT" -c "$CLIENTS" -d "$DURATION" -body "$BODY" -pid "$PID"
RC=$?
set -e
kill -TERM "$PID"
if wait "$PID"; then
  echo "loadtest: server shut down cleanly on SIGTERM"
else
  echo "loadtest: server exited with status $? after SIGTERM" >&2
  RC=1
fi
PID=
exit $RC
