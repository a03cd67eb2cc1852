#!/usr/bin/env bash
# Bounded loopback load test of `jarzyn-serve http`.
#
#   scripts/loadtest.sh [MODEL.onnx]
#
# Builds jarzyn-serve and the load generator (serve/loadtest), writes a small
# 2-D Gaussian-mixture model when none is given, starts the server on
# 127.0.0.1 only, and for DURATION (60s, at most 10m) runs at once:
#   - CLIENTS (16) concurrent clients of small POST /v1/sample requests;
#   - INFER_CLIENTS (32) clients uploading INFER_BYTES (7000000) /v2 infer
#     bodies over and over, against the server's in-flight body budget;
#   - SLOW (300) connections that send their headers and never their body
#     (a Content-Length whose bytes never come, a chunk of size 2^64-1, a
#     Content-Length of 1 GB), reconnecting whenever the server cuts them off;
#   - a GET /v2/health/live probe on a new connection every 100 ms.
# It prints requests/s, p50/p90/p99 latency, the error count, the server's
# RSS and file descriptors, the budget's 429s, the slow connections' fate
# and the probes' latency, and fails (exit 1) on any 5xx or any error other
# than the budget's 429 with Retry-After, a probe slower than 100 ms, a peak RSS more
# than RSS_BUDGETS (4) body budgets above the idle RSS, or file descriptors
# not released after the clients are gone. Then it stops the server with
# SIGTERM (graceful shutdown), checks that it exits 0, and fails on any
# ERROR line in the server's log (the budget's refusals are warnings). INFER_CLIENTS=0
# SLOW=0 gives the plain load test. Environment: CLIENTS, DURATION, PORT
# (18080), BODY (JSON of each sampling request, default
# {"n":16,"steps":10}), INFER_CLIENTS, INFER_BYTES, SLOW, RSS_BUDGETS,
# SERVE_FLAGS (extra jarzyn-serve http flags, e.g. --max-inflight-bytes).
#
# ROLL=1 is the model-roll test instead: the server runs with --models DIR
# (--poll-interval POLL, default 1s) on DIR/gmm2d/1/model.onnx, no hostile
# clients by default, and every ROLL_EVERY (5s) the load generator copies
# the newest version folder v to v+1 in place, waits until it is served,
# removes v and waits until it is unloaded, while CLIENTS sampling clients
# and ROLL_INFER (4) infer clients run; ROLL_HUP=1 also sends SIGHUP after
# each change. Any failed request or incomplete roll fails the run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-60s}
PORT=${PORT:-18080}
BODY=${BODY:-'{"n":16,"steps":10}'}
ROLL=${ROLL:-0}
if [ "$ROLL" = 1 ]; then
  INFER_CLIENTS=${INFER_CLIENTS:-0}
  SLOW=${SLOW:-0}
fi
INFER_CLIENTS=${INFER_CLIENTS:-32}
INFER_BYTES=${INFER_BYTES:-7000000}
SLOW=${SLOW:-300}
RSS_BUDGETS=${RSS_BUDGETS:-4}
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
SOURCE=(--model "$MODEL")
ROLL_FLAGS=()
if [ "$ROLL" = 1 ]; then
  mkdir -p "$TMP/models/gmm2d/1"
  cp "$MODEL" "$TMP/models/gmm2d/1/model.onnx"
  if [ -f "$MODEL.sha256" ]; then cp "$MODEL.sha256" "$TMP/models/gmm2d/1/model.onnx.sha256"; fi
  SOURCE=(--models "$TMP/models" --poll-interval "${POLL:-1s}")
  ROLL_FLAGS=(-roll-dir "$TMP/models" -roll-model gmm2d -roll-every "${ROLL_EVERY:-5s}" -roll-infer "${ROLL_INFER:-4}")
  if [ "${ROLL_HUP:-0}" = 1 ]; then ROLL_FLAGS+=(-roll-hup); fi
fi
# shellcheck disable=SC2086
"$TMP/jarzyn-serve" http "${SOURCE[@]}" --addr "127.0.0.1:$PORT" --log-level warn ${SERVE_FLAGS:-} 2>"$TMP/server.log" &
PID=$!
set +e
"$TMP/loadtest" -url "http://127.0.0.1:$PORT" -c "$CLIENTS" -d "$DURATION" -body "$BODY" -pid "$PID" \
  -infer-clients "$INFER_CLIENTS" -infer-bytes "$INFER_BYTES" -slow "$SLOW" -rss-budgets "$RSS_BUDGETS" "${ROLL_FLAGS[@]}"
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
# the server's log (at warn): budget refusals are warnings; any error fails
WARN=$(grep -c 'level=WARN' "$TMP/server.log" || true)
ERRORS=$(grep -c 'level=ERROR' "$TMP/server.log" || true)
echo "loadtest: server log: $WARN warnings, $ERRORS errors"
if [ "$ERRORS" -gt 0 ]; then
  grep 'level=ERROR' "$TMP/server.log" | head -5 >&2
  RC=1
fi
exit $RC
