#!/usr/bin/env bash
# Crash-safety test: SIGKILL at random moments, then check what is left.
#
#   scripts/kill-test.sh [KILLS]
#
# Builds the binaries (make build) and, in a temporary folder, makes KILLS
# (100) SIGKILLs, half of them of jarzyn-train and half of
# `jarzyn-serve sample`, each at a random moment:
#   - training: a small 2-D mixture run that writes a checkpoint every
#     iteration (so that most of its time goes to writing checkpoints) is
#     started (or resumed with --resume) in the same run dir and killed
#     after a random 0.1–0.8 s. Then the checkpoint is loaded by
#     `jarzyn-train --resume DIR --set iterations=0` (which must refuse with
#     the checkpoint's iteration: "corrupt" when it cannot load it instead),
#     a run resumed to one more iteration completes in the same run dir,
#     and temp files (.NAME.tmp*) left in it are counted ("stale").
#   - sampling: `jarzyn-serve sample --weighted` of N (200000) walkers into
#     the same samples.csv is killed at a random moment: every other kill
#     between 60 % and 105 % of the duration of a complete run measured
#     first, the others 0–30 ms after the temp file of samples.csv appears
#     (in the write of the 8 MB output, which is short); samples.csv,
#     when present, must hold a header and exactly N rows ("corrupt"
#     otherwise); then a small sample into the same file completes and temp
#     files left beside it are counted ("stale").
# It prints the counts and exits 1 when any load was corrupt or any temp
# file was left after the next run. Environment: KILLS, N, KEEP=1 keeps the
# temporary folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KILLS=${1:-${KILLS:-100}}
N=${N:-200000}
TMP=$(mktemp -d)
cleanup() { if [ "${KEEP:-0}" != 1 ]; then rm -rf "$TMP"; else echo "kill-test: kept $TMP"; fi; }
trap cleanup EXIT
cd "$ROOT"
echo "kill-test: building"
make build >/dev/null
BIN=$ROOT/bin
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

# random duration in seconds between $1 and $2 milliseconds
rand_s() { awk -v a="$1" -v b="$2" -v r="$RANDOM$RANDOM" 'BEGIN { srand(r); printf "%.3f", (a + rand() * (b - a)) / 1000 }'; }
# temp files of atomic writes in folder $1
temps() { find "$1" -maxdepth 1 -name '.*.tmp*' | wc -l; }

cat >"$TMP/tiny.yaml" <<'EOF'
name: kill
iterations: 1000000
model: {family: gmm, dim: 2, modes: 2}
data: {n: 256}
walkers: {n: 4096}
optimizer: {kind: sgd, lr: 0.01}
log: {every: 1000000, checkpoint_every: 1, eval_every: 1, plots: false}
EOF
RUN=$TMP/run
CKPT=$RUN/checkpoints/latest.ckpt
train_kills=$((KILLS / 2))
serve_kills=$((KILLS - train_kills))
t_corrupt=0 t_stale=0 t_left=0 t_loaded=0 t_panics=0
echo "kill-test: $train_kills kills of jarzyn-train"
for ((k = 0; k < train_kills; k++)); do
  if [ -f "$CKPT" ]; then
    args=(--resume "$RUN" --set iterations=1000000)
  else
    args=(--config "$TMP/tiny.yaml" --out "$RUN")
  fi
  "$BIN/jarzyn-train" "${args[@]}" >/dev/null 2>"$TMP/train.err" &
  pid=$!
  sleep "$(rand_s 100 800)"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q -e '^panic:' -e '^goroutine ' "$TMP/train.err"; then t_panics=$((t_panics + 1)); fi
  for d in "$RUN" "$RUN/checkpoints"; do [ -d "$d" ] && t_left=$((t_left + $(temps "$d"))); done
  [ -f "$CKPT" ] || continue
  # load the checkpoint: iterations=0 is refused with its iteration
  if "$BIN/jarzyn-train" --resume "$RUN" --set iterations=0 >/dev/null 2>"$TMP/probe.err"; then
    echo "kill-test: --set iterations=0 was accepted" >&2; t_corrupt=$((t_corrupt + 1)); continue
  fi
  it=$(sed -n "s/.*checkpoint's iteration \([0-9]*\) to resume.*/\1/p" "$TMP/probe.err" | head -n 1)
  if [ -z "$it" ]; then
    echo "kill-test: checkpoint after kill $k does not load: $(cat "$TMP/probe.err")" >&2
    t_corrupt=$((t_corrupt + 1)); continue
  fi
  t_loaded=$((t_loaded + 1))
  # the next run in the same run dir completes and leaves no temp file
  if ! "$BIN/jarzyn-train" --resume "$RUN" --set iterations=$((it + 1)) >/dev/null 2>"$TMP/next.err"; then
    echo "kill-test: resuming after kill $k failed: $(cat "$TMP/next.err")" >&2
    t_corrupt=$((t_corrupt + 1)); continue
  fi
  t_stale=$((t_stale + $(temps "$RUN") + $(temps "$RUN/checkpoints")))
done
echo "kill-test: training: $train_kills kills, $t_left temp files left by the kills, $t_loaded checkpoints loaded, $t_corrupt corrupt loads, $t_panics panics, $t_stale temp files after the next run"

echo "kill-test: exporting a model for sampling"
"$BIN/jarzyn-train" --resume "$RUN" --set iterations=$((it + 50)) >/dev/null 2>&1
"$BIN/jarzyn-export" --run "$RUN" --out "$TMP/model.onnx" --n 64 >/dev/null
OUT=$TMP/out
mkdir -p "$OUT"
s_corrupt=0 s_stale=0 s_left=0 s_present=0 s_panics=0
t0=$(date +%s%N)
"$BIN/jarzyn-serve" sample --model "$TMP/model.onnx" --n "$N" --steps 20 --seed 0 --weighted --out "$OUT/samples.csv" >/dev/null 2>&1
T=$((($(date +%s%N) - t0) / 1000000))
rm -f "$OUT/samples.csv"
echo "kill-test: $serve_kills kills of jarzyn-serve sample (n=$N, a complete run takes $T ms)"
for ((k = 0; k < serve_kills; k++)); do
  "$BIN/jarzyn-serve" sample --model "$TMP/model.onnx" --n "$N" --steps 20 --seed "$k" --weighted \
    --out "$OUT/samples.csv" >/dev/null 2>"$TMP/serve.err" &
  pid=$!
  if ((k % 2 == 0)); then
    sleep "$(rand_s $((T * 60 / 100)) $((T * 105 / 100)))"
  else
    while kill -0 "$pid" 2>/dev/null && ! compgen -G "$OUT/.samples.csv.tmp*" >/dev/null; do sleep 0.002; done
    sleep "$(rand_s 0 30)"
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q -e '^panic:' -e '^goroutine ' "$TMP/serve.err"; then s_panics=$((s_panics + 1)); fi
  s_left=$((s_left + $(temps "$OUT")))
  if [ -f "$OUT/samples.csv" ]; then
    s_present=$((s_present + 1))
    lines=$(wc -l <"$OUT/samples.csv")
    rows=$(grep -vc '^#' "$OUT/samples.csv" || true)
    if [ "$(tail -c 1 "$OUT/samples.csv" | od -An -c | tr -d ' ')" != '\n' ] || { [ "$rows" != "$N" ] && [ "$rows" != 100 ]; } || [ "$lines" != $((rows + 1)) ]; then
      echo "kill-test: samples.csv after kill $k is torn ($lines lines)" >&2
      s_corrupt=$((s_corrupt + 1))
    fi
  fi
  # the next run into the same file completes and leaves no temp file
  if ! "$BIN/jarzyn-serve" sample --model "$TMP/model.onnx" --n 100 --steps 2 --seed "$k" --weighted \
    --out "$OUT/samples.csv" >/dev/null 2>"$TMP/next.err"; then
    echo "kill-test: sampling after kill $k failed: $(cat "$TMP/next.err")" >&2
    s_corrupt=$((s_corrupt + 1))
  fi
  s_stale=$((s_stale + $(temps "$OUT")))
done
echo "kill-test: sampling: $serve_kills kills, $s_left temp files left by the kills, $s_present outputs checked, $s_corrupt corrupt, $s_panics panics, $s_stale temp files after the next run"
if [ $((t_corrupt + t_stale + t_panics + s_corrupt + s_stale + s_panics)) -ne 0 ]; then
  echo "kill-test: FAIL" >&2
  exit 1
fi
echo "kill-test: OK: $KILLS kills, 0 corrupt loads, 0 stale temp files after the next run"
